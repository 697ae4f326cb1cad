"""The Slack app for employees and moderators in `kominn run`, on slack-bolt's AsyncApp.

HTTP mode: Bolt's Starlette handler at `POST /slack/events` on the shared server of
`kominn run` (signatures verified: forged or stale requests get 401). Socket Mode instead when
SLACK_APP_TOKEN is set. SLACK_API_URL points the Web API client elsewhere (GovSlack, tests).

The parts: `bot.py` (the Bolt app and what its listeners share), `listeners/` (commands,
buttons, modals, events, competitions), `answer.py` (replying to one request), `language.py`
(each person's language), `payload.py` (reading what Slack sends), `blocks.py` and
`campaign_blocks.py` (Block Kit, pure), `sender.py` (outbox deliveries).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.slack import listeners
from adapters.slack.bot import SlackBot
from adapters.slack.listeners.commands import Subcommand
from adapters.slack.sender import SlackSender
from bot.runtime import Runtime

log = logging.getLogger("kominn.slack")

PATH = "/slack/events"


class SlackService:
    """Slack in `kominn run`: the HTTP route (or a Socket Mode connection) and the sender."""

    name = "slack"

    def __init__(self, runtime: Runtime, *,
                 subcommands: dict[str, Subcommand] | None = None) -> None:
        settings = runtime.settings
        self.settings = settings
        self.client = AsyncWebClient(token=settings.slack_bot_token,
                                     base_url=settings.slack_api_url)
        self.socket_mode = bool(settings.slack_app_token)
        self.bot = SlackBot(runtime, self.client, signing_secret=settings.slack_signing_secret,
                            sections=listeners.status_sections())
        listeners.register(self.bot, subcommands)
        self.sender = SlackSender(self.client)
        self.socket_handler: Any = None
        self.routes: list[BaseRoute] = [] if self.socket_mode else [
            Route(PATH, self._endpoint, methods=["POST"])]
        self._http = AsyncSlackRequestHandler(self.bot.bolt)

    async def _endpoint(self, request: Request) -> Response:
        return await self._http.handle(request)

    async def start(self) -> None:
        """Socket Mode connects here; in HTTP mode the route is already served."""
        if self.socket_mode:
            # Built here, not in __init__: the Socket Mode client needs the running loop.
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self.socket_handler = AsyncSocketModeHandler(
                self.bot.bolt, self.settings.slack_app_token, web_client=AsyncWebClient(
                    base_url=self.settings.slack_api_url))
            await self.socket_handler.connect_async()
        log.info("slack ready", extra={"event": "slack_ready",
                                       "kind": "socket" if self.socket_mode else "http"})

    async def stop(self) -> None:
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
            self.socket_handler = None


def service(runtime: Runtime) -> SlackService:
    """The Slack part of `kominn run` (bot.app builds it when the Slack tokens are set)."""
    return SlackService(runtime)
