"""The Slack `Sender`: follow-ups and notices from the outbox, for `kominn run` and for
`kominn jobs run-due` alike.

One class, built from an AsyncWebClient: the Slack service makes it from its own client, and
`open_sender(settings)` makes the same class from settings alone (slack_sdk's AsyncWebClient at
SLACK_API_URL). So a notice looks the same whichever command delivers it — its text escaped
(`&`, `<`, `>`: nobody can ping `@channel` or smuggle a link), its choices and links as
buttons (the Slack app's listeners answer them whichever process sent them), documents as
files, no link previews. Slack's errors become `DeliveryError`s the dispatcher understands.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from bot.channels import STAFF_CHANNEL, DeliveryError
from bot.config import Settings
from dialogs.types import Reply

# Web API errors where sending again cannot help.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "user_not_found", "account_inactive",
    "invalid_auth", "not_authed", "token_revoked", "no_permission", "restricted_action",
    "cannot_dm_bot", "user_disabled", "msg_too_long", "no_text", "invalid_blocks",
    "invalid_arguments", "missing_scope"})


class SlackSender:
    """bot.channels.Sender for "slack": address is a channel id (or a user id for a DM)."""

    channel = STAFF_CHANNEL

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        """Each reply as one message (Block Kit with its buttons), then its document if any."""
        try:
            for reply in replies:
                if reply.text or reply.choices or reply.links:
                    await self.client.chat_postMessage(
                        channel=address, blocks=kit.reply_blocks(reply),
                        text=kit.esc(reply.text)[:3000] or " ",
                        unfurl_links=False, unfurl_media=False)
                if reply.document is not None:
                    await self._upload(address, reply)
        except SlackApiError as exc:
            raise delivery_error(exc) from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}") from None

    async def _upload(self, address: str, reply: Reply) -> None:
        assert reply.document is not None
        channel = address
        if address[:1] in ("U", "W"):  # a person: files need the DM's conversation id
            opened = await self.client.conversations_open(users=address)
            channel = opened["channel"]["id"]
        await self.client.files_upload_v2(channel=channel, content=reply.document.content,
                                          filename=reply.document.filename)


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """A Web API refusal as the dispatcher needs it: wait (429), give up, or retry later."""
    error = str(exc.response.get("error") or "unknown")
    if exc.response.status_code == 429 or error == "ratelimited":
        retry = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after") or "30"
        return DeliveryError(f"slack: {error}", retry_after=float(retry))
    return DeliveryError(f"slack: {error}", permanent=error in PERMANENT_ERRORS)


@contextlib.asynccontextmanager
async def open_sender(settings: Settings) -> AsyncIterator[SlackSender]:
    """The sender for `kominn jobs run-due`, its HTTP session (if any) closed on exit."""
    if not settings.slack_bot_token:
        raise RuntimeError("SLACK_BOT_TOKEN is not set")
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    try:
        yield SlackSender(client)
    finally:
        session = getattr(client, "session", None)
        if session is not None and not session.closed:
            await session.close()
