"""The outbox: messages to send later, written in the transaction of the change that caused
them. A dedupe key makes queuing idempotent (the queries, `enqueue` among them, live with the
table in storage/outbox.py); the dispatcher (bot/followups/dispatcher.py) delivers.

Each kind of message has a renderer that turns its JSON payload into replies in the
recipient's language at delivery time (so a language change before delivery is honoured).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.i18n import Translator
from dialogs.types import Reply
from storage.models import Outbox
from storage.outbox import enqueue, enqueue_for_person  # noqa: F401  (where features queue)

Renderer = Callable[[dict[str, Any], Translator], list[Reply]]

# kind → renderer; feature modules register theirs at import (see bot/features/).
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        return fn

    return register


def render(row: Outbox, t: Translator) -> list[Reply]:
    return RENDERERS[row.kind](json.loads(row.payload or "{}"), t)
