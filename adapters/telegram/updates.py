"""Incoming: a Telegram `Update` read as the neutral `Incoming` the engine takes, and the chat
it belongs to (the line it waits in, see `ordering`). Nothing here sends or touches the
database: reading an update stays apart from answering it, which is the service's part.
"""

from __future__ import annotations

from typing import Any

from telegram import Update

from adapters.telegram.api import CHANNEL
from dialogs.types import Incoming, Location

# The updates we ask Telegram for, polling or by webhook.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


def incoming_from(update: Update) -> Incoming | None:
    """The neutral form of a private-chat message or button press (None for anything else)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    base: dict[str, Any] = {
        "channel": CHANNEL, "user_id": str(user.id), "chat_id": str(chat.id),
        "update_id": str(update.update_id), "language": user.language_code,
        "display_name": user.full_name,
    }
    if update.callback_query is not None:
        return Incoming(**base, choice=update.callback_query.data or "")
    message = update.message
    if message is None:
        return None
    if message.location is not None:
        location = Location(message.location.latitude, message.location.longitude)
        return Incoming(**base, location=location)
    return Incoming(**base, text=message.text or message.caption or "")


def chat_key(update: Update) -> int | str:
    """Whose line the update waits in: its chat, else its sender, else itself alone."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return f"user:{update.effective_user.id}"
    return f"update:{update.update_id}"
