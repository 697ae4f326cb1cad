"""Events API deliveries (App Home opened) and the app's last-resort error handler."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.bot import SlackBot
from bot.staff import desk

log = logging.getLogger("kominn.slack")

EVENT_CHANNEL = "slack-event"  # processed_update rows of Events API deliveries


def register(bot: SlackBot) -> None:
    """App Home, and the error handler for whatever a listener did not catch."""
    app = bot.bolt

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], body: dict[str, Any],
                      client: AsyncWebClient) -> None:
        """Slack retries an event it thinks was lost: each event id is handled once."""
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        if not await bot.db(desk.claim_event, bot.runtime.db, EVENT_CHANNEL,
                            str(body.get("event_id") or "")):
            log.info("slack event already handled", extra={"event": "slack_event_duplicate"})
            return
        try:
            await bot.publish_home(client, str(event["user"]))
        except Exception:  # noqa: BLE001 - the next opening tries again
            log.exception("app home not published", extra={"event": "slack_error"})

    @app.error
    async def on_error(error: Exception) -> None:
        log.error("slack listener failed", extra={"event": "slack_error",
                                                  "status": type(error).__name__})
