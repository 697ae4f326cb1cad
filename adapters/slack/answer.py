"""Answering one request in the Slack app: through its response_url, else by direct message.

An `Answer` is made per request, after the ack, in the person's language; listeners and
sub-commands say what to show and never where it goes. `CommandContext` is what a `/kominn`
sub-command gets: the words after its name, the ids Slack sent, and its `Answer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import blocks as kit
from bot.i18n import Translator

if TYPE_CHECKING:
    from adapters.slack.bot import SlackBot

log = logging.getLogger("kominn.slack")


@dataclass
class Answer:
    """Where the answer to one request goes: its response_url (ephemeral, may replace the
    message that was clicked), else a direct message from the app (App Home, modals)."""

    client: AsyncWebClient
    user_id: str
    t: Translator  # the person's language
    url: str | None = None

    async def send(self, blocks: Sequence[dict[str, Any]], *, replace: bool = False,
                   text: str | None = None) -> None:
        """Blocks to this person; `replace` swaps the clicked message (response_url only)."""
        text = text or kit.fallback(blocks)
        if self.url:
            body: dict[str, Any] = {"text": text, "blocks": list(blocks),
                                    "response_type": "ephemeral", **kit.NO_PREVIEWS}
            if replace:
                body["replace_original"] = True
            response = await AsyncWebhookClient(self.url).send_dict(body)
            if response.status_code >= 400:
                log.warning("response_url refused", extra={"event": "slack_respond_failed",
                                                           "status": response.status_code})
            return
        await self.client.chat_postMessage(channel=self.user_id, text=text, blocks=list(blocks),
                                           unfurl_links=False, unfurl_media=False)

    async def say(self, text: str, *, replace: bool = False) -> None:
        """Our own mrkdwn text (anything a person wrote in it is escaped by the caller)."""
        await self.send(kit.sections(text), replace=replace, text=text)


@dataclass
class CommandContext:
    """One `/kominn` request as a sub-command sees it."""

    bot: SlackBot
    user_id: str
    channel_id: str
    args: list[str]
    trigger_id: str
    response_url: str | None
    client: AsyncWebClient
    t: Translator  # the person's language

    @property
    def answer(self) -> Answer:
        return Answer(self.client, self.user_id, self.t, self.response_url)

    @property
    def rest(self) -> str:
        """The words after the sub-command's name, as one string."""
        return " ".join(self.args)
