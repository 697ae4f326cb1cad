"""Replies as stored JSON: what an update answered is kept with its update id until the
adapter confirms delivery, so a crash between "stored" and "sent" repeats the answer (and
never the work). Documents travel base64-encoded."""

from __future__ import annotations

import base64
import json
from typing import Any

from dialogs.types import Choice, Document, Reply


def encode_replies(replies: list[Reply]) -> str:
    return json.dumps([_encode(r) for r in replies], ensure_ascii=False)


def decode_replies(raw: str | None) -> list[Reply]:
    return [_decode(item) for item in json.loads(raw or "[]")]


def _encode(reply: Reply) -> dict[str, Any]:
    item: dict[str, Any] = {"text": reply.text,
                            "choices": [[c.label, c.payload] for c in reply.choices]}
    if reply.links:
        item["links"] = [list(link) for link in reply.links]
    if reply.document is not None:
        item["document"] = {"filename": reply.document.filename,
                            "mime_type": reply.document.mime_type,
                            "content": base64.b64encode(reply.document.content).decode()}
    return item


def _decode(item: dict[str, Any]) -> Reply:
    document = None
    if "document" in item:
        doc = item["document"]
        document = Document(doc["filename"], base64.b64decode(doc["content"]), doc["mime_type"])
    return Reply(text=item["text"],
                 choices=tuple(Choice(label, payload) for label, payload in item["choices"]),
                 document=document,
                 links=tuple((label, url) for label, url in item.get("links", [])))
