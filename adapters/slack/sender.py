"""A Slack `Sender` built from settings alone (slack_sdk's AsyncWebClient at SLACK_API_URL),
for delivering moderator notices outside `kominn run` (`kominn jobs run-due`).

Idea text comes from citizens, so it is escaped (`&`, `<`, `>`): nobody can ping `@channel`
or smuggle a link. Buttons are left out: only the Slack adapter can answer them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import DeliveryError
from bot.config import Settings
from dialogs.types import Reply

CHANNEL = "slack"
PERMANENT = frozenset({"channel_not_found", "not_in_channel", "is_archived", "invalid_auth",
                       "account_inactive", "token_revoked", "no_permission", "user_not_found"})


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender:
    channel = CHANNEL

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            try:
                await self.client.chat_postMessage(channel=address, text=escape(reply.text),
                                                   unfurl_links=False, unfurl_media=False)
            except SlackApiError as exc:
                error = str(exc.response.get("error", "unknown"))
                retry = exc.response.headers.get("Retry-After") if exc.response.headers \
                    else None
                raise DeliveryError(f"slack: {error}", permanent=error in PERMANENT,
                                    retry_after=float(retry) if retry else None) from exc
            except Exception as exc:  # noqa: BLE001 - network trouble: retry later
                raise DeliveryError(f"slack: {type(exc).__name__}") from exc


@contextlib.asynccontextmanager
async def open_sender(settings: Settings) -> AsyncIterator[SlackSender]:
    if not settings.slack_bot_token:
        raise RuntimeError("SLACK_BOT_TOKEN is not set")
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    try:
        yield SlackSender(client)
    finally:
        session = getattr(client, "session", None)
        if session is not None and not session.closed:
            await session.close()
