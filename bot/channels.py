"""What the core needs from a running channel adapter: a way to send messages outside a
conversation (follow-ups, notices). Adapters implement it; the dispatcher uses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dialogs.types import Reply


class DeliveryError(RuntimeError):
    """Sending failed; `permanent` when retrying cannot help (blocked bot, unknown chat)."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    channel: str

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        """Deliver to a chat/channel address; raise `DeliveryError` on failure."""
        ...
