"""The contracts between the core and the channel adapters.

A channel adapter offers a `Service` (a part of `kominn run` with its own life and HTTP routes)
and, when it can deliver messages outside a conversation (follow-ups, notices), a `Sender`
that the dispatcher uses. Adapters import these contracts and the runtime, never the
composition root (`bot.app`), which imports them to start them.

`CampaignLinks` is how code outside the citizens' chat channel (the Slack competition list)
gets the link that brings a citizen into an idea competition without knowing the channel: the
wiring (`bot.runtime.open_runtime`) takes it from the adapter (Telegram's deep link)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from bot.config import Settings
from dialogs.types import Reply

STAFF_CHANNEL = "slack"
"""The work chat of employees and moderators (Slack today): where staff look up and move ideas,
and where the moderators' notices go. Its people are staff, not citizens: no quiet hours."""


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


class Service(Protocol):
    """A part of `kominn run` with its own life: started after the HTTP server is up, stopped
    before it goes down. `sender` (optional attribute) is what the dispatcher sends through;
    `not_found` (optional, `async (request, exc) -> Response`) answers addresses no route
    serves (the web's own page)."""

    name: str
    routes: list[BaseRoute]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class CampaignLinks(Protocol):
    """The link that opens a chat with competition `campaign_id` chosen, for the configured
    bot; None when no channel offers one."""

    def __call__(self, settings: Settings, campaign_id: int) -> str | None: ...


def no_campaign_links(settings: Settings, campaign_id: int) -> str | None:
    """`CampaignLinks` when no channel was wired in."""
    return None
