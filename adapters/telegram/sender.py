"""A Telegram `Sender` built from settings alone: a plain `telegram.Bot` (no polling, no
webhook), for delivering follow-ups outside `kominn run` (`kominn jobs run-due`).

Inside `kominn run` the Telegram adapter's own sender is used; this one renders through the
same `adapters.telegram.service.send_rendered`, so a notice looks the same whichever command
delivers
it: escaped HTML (nothing a citizen typed becomes markup), long texts split with the keyboard
on the last part, short button labels sharing rows, link buttons, documents, no link previews.
Errors become `DeliveryError`s through the same `adapters.telegram.service.send_notice`; only the
bare bot and its pacing are this module's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from telegram import Bot
from telegram.ext import ExtBot

from adapters.telegram.service import ChatRateLimiter, file_url, send_notice
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
        await send_notice(self.bot, int(address) if address.lstrip("-").isdigit() else address,
                          replies)


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
