"""Reading what Slack sends: who acted, and what a submitted modal holds.

Incoming payloads are read here, apart from answering (`answer.py`) and sending (`sender.py`),
so a listener states what it wants (the user, a field) and not where Slack keeps it.
Everything is defensive: a forged or truncated payload gives "" / None / {}, never a KeyError.
"""

from __future__ import annotations

import json
from typing import Any


def user_of(body: dict[str, Any]) -> str:
    """The user id of a command (`user_id`) or an interaction (`user.id`); "" if none."""
    return str((body.get("user") or {}).get("id") or body.get("user_id") or "")


def view_meta(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted modal's private_metadata (JSON we wrote when opening it); {} if unreadable."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def view_element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The state of one input of a submitted view (every input's action id is "value")."""
    return (view.get("state", {}).get("values", {}).get(block_id) or {}).get("value") or {}


def view_value(view: dict[str, Any], block_id: str) -> str | None:
    """A plain-text input's value from a submitted view."""
    return view_element(view, block_id).get("value")
