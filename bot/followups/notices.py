"""The outbox: messages to send later, written in the transaction of the change that caused
them. A dedupe key makes queuing idempotent; the dispatcher (bot/followups/dispatcher.py) delivers.

Each kind of message has a renderer that turns its JSON payload into replies in the
recipient's language at delivery time (so a language change before delivery is honoured).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.i18n import Translator
from dialogs.types import Reply
from storage.models import Outbox, Person, utcnow

Renderer = Callable[[dict[str, Any], Translator], list[Reply]]

# kind → renderer; feature modules register theirs at import (see bot/features/).
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        return fn

    return register


def enqueue(session: Session, *, kind: str, dedupe_key: str, channel: str,
            address: str | None, payload: dict[str, Any], due_at: datetime | None = None,
            person_id: int | None = None) -> Outbox | None:
    """Queue one message unless the same `dedupe_key` was queued before (then None)."""
    if session.exec(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)).first():
        return None
    row = Outbox(kind=kind, dedupe_key=dedupe_key, channel=channel, address=address,
                 payload=json.dumps(payload, ensure_ascii=False, default=str),
                 due_at=due_at or utcnow(), person_id=person_id)
    session.add(row)
    session.flush()
    return row


def enqueue_for_person(session: Session, person: Person, *, kind: str, dedupe_key: str,
                       payload: dict[str, Any], due_at: datetime | None = None) -> Outbox | None:
    """Queue a message to a person on their own channel (nothing for an erased person)."""
    if person.erased_at is not None or not person.chat_id:
        return None
    return enqueue(session, kind=kind, dedupe_key=dedupe_key, channel=person.channel,
                   address=person.chat_id, payload=payload, due_at=due_at, person_id=person.id)


def render(row: Outbox, t: Translator) -> list[Reply]:
    return RENDERERS[row.kind](json.loads(row.payload or "{}"), t)
