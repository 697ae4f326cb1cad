"""The webhook route (`TELEGRAM_WEBHOOK_URL`): Telegram POSTs each update to
`/telegram/webhook`.

The route checks the secret header (403 before anything else), queues the update like the poll
loop does and answers 200 only once it is handled, so Telegram keeps (and retries) what a
crash interrupted. A retry arriving while the original is still in flight here waits for the
original instead of being queued again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, Update

from adapters.telegram.ordering import Ticket
from bot.config import ConfigError

log = logging.getLogger("kominn.telegram")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_WAIT = 25  # seconds a webhook request waits for its update to be handled

_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def check_secret(secret: str) -> None:
    if not secret:
        raise ConfigError("Invalid setting TELEGRAM_WEBHOOK_SECRET: required when "
                          "TELEGRAM_WEBHOOK_URL is set")
    if not _SECRET.match(secret):
        raise ConfigError("Invalid setting TELEGRAM_WEBHOOK_SECRET: 1–256 characters of "
                          "A-Z, a-z, 0-9, _ and -")


class Webhook:
    """The route's endpoint. `accepting`: whether the service takes updates now (running, not
    stopping); `take`: the update's ticket, the update queued unless already in flight."""

    def __init__(self, secret: str, bot: Bot, *, accepting: Callable[[], bool],
                 take: Callable[[Update], Awaitable[Ticket]]) -> None:
        self._secret = secret
        self._bot = bot
        self._accepting = accepting
        self._take = take

    def route(self) -> Route:
        return Route(WEBHOOK_PATH, self.handle, methods=["POST"])

    async def handle(self, request: Request) -> Response:
        """Telegram's POST: the secret first; 200 only when the update is handled, so a crash
        before that leaves it with Telegram, which sends it again."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("webhook call with a wrong secret", extra={"event": "telegram_forbidden"})
            return Response(status_code=403)
        if not self._accepting():
            return Response(status_code=503)
        try:
            update = Update.de_json(await request.json(), self._bot)
        except Exception:  # noqa: BLE001 - anything unparsable is the sender's problem
            return Response(status_code=400)
        if update is None:
            return Response(status_code=400)
        ticket = await self._take(update)
        try:
            await asyncio.wait_for(asyncio.shield(ticket.handled), WEBHOOK_WAIT)
        except TimeoutError:
            return Response(status_code=503)
        return Response(status_code=200)
