"""The Telegram `Sender` for the follow-up dispatcher: notices outside a conversation.

One `TelegramSender`, whichever command delivers: inside `kominn run` over the running
service's bot, in `kominn jobs run-due` over a plain `telegram.Bot` built from settings alone,
no polling, no webhook (`open_sender`). It renders through `render.send_rendered` and turns
Telegram's errors into `DeliveryError`s through `send_notice`, so a notice looks the same
whichever command delivers it: escaped HTML (nothing a citizen typed becomes markup), long
texts split with the keyboard on the last part, short button labels sharing rows, link
buttons, documents, no link previews. Only the bare bot and its pacing are `open_sender`'s own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from adapters.telegram.api import CHANNEL, file_url
from adapters.telegram.errors import error_kind, not_sent, retry_after_seconds
from adapters.telegram.pacing import ChatRateLimiter, bulk, shared_pace
from adapters.telegram.render import send_rendered
from bot.channels import DeliveryError
from bot.config import Settings
from dialogs.types import Reply
from storage.db import make_engine

log = logging.getLogger("kominn.telegram")


async def send_notice(bot: Bot, chat_id: int | str, replies: Sequence[Reply]) -> None:
    """A follow-up notice (`kominn run`'s dispatcher and `kominn jobs run-due` alike), with
    Telegram's errors turned into `DeliveryError`s the dispatcher acts on: give up (blocked,
    chat gone), wait (flood control), retry later (unreachable). A timeout after the request
    was sent is not retried: the notice may have arrived, and twice is worse than once."""
    for reply in replies:
        try:
            await send_rendered(bot, chat_id, reply)
        except (Forbidden, BadRequest) as exc:
            raise DeliveryError(f"telegram: {error_kind(exc)}", permanent=True) from None
        except RetryAfter as exc:
            raise DeliveryError("telegram: flood control",
                                retry_after=retry_after_seconds(exc)) from None
        except InvalidToken:
            raise DeliveryError("telegram: invalid token") from None
        except TimedOut as exc:
            if not_sent(exc):
                raise DeliveryError("telegram: not reachable") from None
            log.warning("notice send timed out; not retried (it may have arrived)",
                        extra={"event": "telegram_send_ambiguous"})
        except (TelegramError, httpx.HTTPError) as exc:
            raise DeliveryError(f"telegram: {type(exc).__name__}") from None


class TelegramSender:
    """`bot.channels.Sender` over a bot: the running service's (`TelegramService.sender`,
    which refuses while the service is not running, so the dispatcher tries again later) or a
    bare one built from settings (`open_sender`, for `kominn jobs run-due`)."""

    channel = CHANNEL
    # Sends the dispatcher may have out at once: the flood limiter paces them, and a few in
    # hand keep it busy through a slow database moment (a broadcast holds ~29/s).
    concurrency = 8

    def __init__(self, bot: Bot, running: Callable[[], bool] = lambda: True) -> None:
        self.bot = bot
        self._running = running

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        if not self._running():
            raise DeliveryError("telegram is not running")
        chat_id = int(address) if address.lstrip("-").isdigit() else address
        with bulk():  # notices give way to the conversations' answers at the shared pacer
            await send_notice(self.bot, chat_id, replies)


@contextlib.asynccontextmanager
async def open_sender(settings: Settings) -> AsyncIterator[TelegramSender]:
    """A sender for the configured bot, its HTTP connections closed on exit."""
    if not settings.telegram_bot_token:
        raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
    # Paced like `kominn run`: a backlog delivered by `kominn jobs run-due` must stay under
    # Telegram's overall ceiling too, or most of it is refused with 429s — on PostgreSQL on
    # the grid the running workers share, so together they stay under it.
    db = None if settings.database_url.startswith("sqlite") else make_engine(
        settings.database_url)
    limiter = ChatRateLimiter(settings.telegram_max_messages_per_second,
                              pace=shared_pace(db) if db is not None else None)
    bot = ExtBot(settings.telegram_bot_token, base_url=settings.telegram_api_base_url,
                 base_file_url=file_url(settings.telegram_api_base_url), rate_limiter=limiter)
    try:
        async with bot:
            yield TelegramSender(bot)
    finally:
        if db is not None:
            db.dispose()
