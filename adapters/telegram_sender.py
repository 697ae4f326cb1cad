"""A Telegram `Sender` built from settings alone: a plain `telegram.Bot` (no polling, no
webhook), for delivering follow-ups outside `kominn run` (`kominn jobs run-due`).

Inside `kominn run` the Telegram adapter's own sender is used; this one renders through the
same `adapters.telegram.send_rendered`, so a notice looks the same whichever command delivers
it: escaped HTML (nothing a citizen typed becomes markup), long texts split with the keyboard
on the last part, short button labels sharing rows, link buttons, documents, no link previews.
Only the error mapping (to `DeliveryError`) and the pacing are this module's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import ExtBot

from adapters.telegram import ChatRateLimiter, send_rendered
from bot.channels import DeliveryError
from bot.config import Settings
from dialogs.types import Reply

CHANNEL = "telegram"


class TelegramSender:
    """`bot.channels.Sender` over a bare Bot: Telegram's errors become `DeliveryError`s the
    dispatcher understands (retry later, wait for flood control, or give up for good)."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            try:
                await send_rendered(self.bot, address, reply)
            except RetryAfter as exc:
                raise DeliveryError("telegram: flood control",
                                    retry_after=_seconds(exc.retry_after)) from exc
            except (Forbidden, BadRequest) as exc:
                # Blocked by the user, chat not found, …: retrying cannot help.
                raise DeliveryError(f"telegram: {exc.message}", permanent=True) from exc
            except InvalidToken as exc:
                raise DeliveryError("telegram: invalid token") from exc
            except TelegramError as exc:  # network trouble, 5xx: retry later
                raise DeliveryError(f"telegram: {type(exc).__name__}") from exc


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def file_url(base_url: str) -> str:
    """https://api.telegram.org/bot → https://api.telegram.org/file/bot (same for a local
    Bot API server)."""
    head, _, _ = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/bot"


@contextlib.asynccontextmanager
async def open_sender(settings: Settings) -> AsyncIterator[TelegramSender]:
    """A sender for the configured bot, its HTTP connections closed on exit."""
    if not settings.telegram_bot_token:
        raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
    # Paced like `kominn run`: a backlog delivered by `kominn jobs run-due` must stay under
    # Telegram's overall ceiling too, or most of it is refused with 429s.
    limiter = ChatRateLimiter(settings.telegram_max_messages_per_second)
    bot = ExtBot(settings.telegram_bot_token, base_url=settings.telegram_api_base_url,
                 base_file_url=file_url(settings.telegram_api_base_url), rate_limiter=limiter)
    async with bot:
        yield TelegramSender(bot)
