"""A Telegram `Sender` built from settings alone: a plain `telegram.Bot` (no polling, no
webhook), for delivering follow-ups outside `kominn run` (`kominn jobs run-due`).

Inside `kominn run` the Telegram adapter's own sender is used; this one renders the same
neutral replies in the simplest faithful way: plain text (no parse mode, so nothing a citizen
typed can break the markup), one inline button per row, link buttons, documents.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.channels import DeliveryError
from bot.config import Settings
from dialogs.types import Reply

CHANNEL = "telegram"
TEXT_MAX, CAPTION_MAX = 4096, 1024


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(c.label[:64], callback_data=c.payload)] for c in reply.choices]
    rows += [[InlineKeyboardButton(label[:64], url=url)] for label, url in reply.links]
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramSender:
    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            try:
                await self._send_one(address, reply)
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

    async def _send_one(self, address: str, reply: Reply) -> None:
        markup = keyboard(reply)
        if reply.document is not None:
            document = InputFile(reply.document.content, filename=reply.document.filename)
            await self.bot.send_document(chat_id=address, document=document,
                                         caption=reply.text[:CAPTION_MAX] or None,
                                         reply_markup=markup)
            return
        await self.bot.send_message(chat_id=address, text=reply.text[:TEXT_MAX],
                                    reply_markup=markup)


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
    from adapters.telegram import ChatRateLimiter

    # Paced like `kominn run`: a backlog delivered by `kominn jobs run-due` must stay under
    # Telegram's overall ceiling too, or most of it is refused with 429s.
    limiter = ChatRateLimiter(settings.telegram_max_messages_per_second)
    bot = ExtBot(settings.telegram_bot_token, base_url=settings.telegram_api_base_url,
                 base_file_url=file_url(settings.telegram_api_base_url), rate_limiter=limiter)
    async with bot:
        yield TelegramSender(bot)
