"""A neutral `Reply` as Telegram shows it, on every path that sends one (a conversation's
answers in `kominn run`, the dispatcher's notices, `kominn jobs run-due`), so a message looks
the same whoever delivers it.

HTML with the text escaped, so nothing a citizen typed becomes markup; texts longer than
Telegram takes split at line breaks or spaces, the keyboard on the last part so the buttons sit
under the end of what they answer; short button labels sharing rows, link buttons one per row;
a document with the text as its caption when it fits; link previews off. Telegram's limits
count UTF-16 code units of the visible text, not characters.

A send that surely did not reach Telegram (connection refused or reset, connect timeout, a 5xx
from the front proxy) is retried a few times here; anything that may have arrived is not.
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from adapters.telegram.errors import not_sent
from dialogs.types import Reply

MAX_TEXT = 4096  # Telegram's limits, in UTF-16 code units of the visible text
MAX_CAPTION = 1024
COMPACT_LABEL = 14  # buttons with labels up to this long share a row
SEND_ATTEMPTS = 3

T = TypeVar("T")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons (short labels share rows), then link buttons, one per row."""
    buttons = [InlineKeyboardButton(c.label, callback_data=c.payload) for c in reply.choices]
    if buttons and all(len(c.label) <= COMPACT_LABEL for c in reply.choices):
        width = 2 if len(buttons) == 4 else 3
        rows = [buttons[i:i + width] for i in range(0, len(buttons), width)]
    else:
        rows = [[button] for button in buttons]
    rows += [[InlineKeyboardButton(label, url=url)] for label, url in reply.links]
    return InlineKeyboardMarkup(rows) if rows else None


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split plain text into pieces Telegram accepts, at line breaks or spaces when possible."""
    parts: list[str] = []
    rest = text
    while _utf16(rest) > limit:
        cut = limit
        while _utf16(rest[:cut]) > limit:
            cut -= 1
        window = rest[:cut]
        at = window.rfind("\n")
        if at <= cut // 2:
            at = window.rfind(" ")
        if at > cut // 2:
            cut = at + 1
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


async def send_rendered(bot: Bot, chat_id: int | str, reply: Reply) -> None:
    """Send one neutral reply the way every Telegram path shows it (`kominn run` and `kominn
    jobs run-due` alike, so a notice looks the same whoever delivers it): HTML with the text
    escaped (nothing a citizen typed becomes markup), split when too long with the keyboard on
    the last part, link previews off, a document with the text as caption when it fits."""
    markup = keyboard(reply)
    if reply.document is not None:
        caption = reply.text if _utf16(reply.text) <= MAX_CAPTION else ""
        if reply.text and not caption:
            await _send_text(bot, chat_id, reply.text, None)
        document = reply.document
        await _retrying(lambda: bot.send_document(
            chat_id=chat_id,
            document=InputFile(io.BytesIO(document.content), filename=document.filename),
            caption=html.escape(caption) or None, parse_mode=ParseMode.HTML,
            reply_markup=markup))
        return
    await _send_text(bot, chat_id, reply.text, markup)


async def _send_text(bot: Bot, chat_id: int | str, text: str,
                     markup: InlineKeyboardMarkup | None) -> None:
    """Text in as many messages as it takes; only the last carries the keyboard, so the
    buttons sit under the end of what they answer."""
    if not text.strip():
        return
    parts = chunks(text)
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        await _retrying(functools.partial(bot.send_message,
            chat_id=chat_id, text=html.escape(part, quote=False), parse_mode=ParseMode.HTML,
            reply_markup=markup if last else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True)))


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """A send, retried when it surely did not reach Telegram (connection refused or reset,
    connect timeout, a 5xx from the front proxy)."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            return await call()
        except (BadRequest, Forbidden, InvalidToken, RetryAfter):
            raise
        except TimedOut as exc:
            if not not_sent(exc) or attempt == SEND_ATTEMPTS - 1:
                raise
        except NetworkError:
            if attempt == SEND_ATTEMPTS - 1:
                raise
        await asyncio.sleep(0.25 * 2 ** attempt)
    raise AssertionError("unreachable")
