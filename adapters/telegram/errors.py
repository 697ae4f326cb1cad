"""Telegram's errors, read the same way on every path: whether a failed request may have
reached Telegram (only one that surely did not is retried: a duplicate message is worse than
the rare lost one the person can ask again for), how long flood control asks us to wait, and
how a failure is logged — by kind, never with what a person wrote.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import httpx
from telegram.error import RetryAfter, TelegramError, TimedOut

from adapters.telegram.api import CHANNEL

log = logging.getLogger("kominn.telegram")


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait a 429 asks for, in seconds (PTB 22 gives an int or a timedelta)."""
    value: float | timedelta | None = exc._retry_after  # noqa: SLF001 - int/timedelta shim
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value or 0)


def not_sent(exc: TimedOut) -> bool:
    """A timeout before the request reached Telegram (connect/pool), so retrying is safe."""
    cause = exc.__cause__
    return isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout) or \
        "Pool timeout" in str(exc)


def error_kind(exc: TelegramError) -> str:
    """The error without anything a person wrote (Telegram's messages carry none, but cut)."""
    return re.sub(r"\s+", " ", str(exc))[:120]


def log_failure(message: str, exc: BaseException) -> None:
    """The kind of failure at ERROR; the traceback (whose database errors may quote what a
    person wrote) only at DEBUG."""
    log.error(message, extra={"event": "telegram_failure", "channel": CHANNEL,
                              "status": type(exc).__name__})
    log.debug("failure details", exc_info=exc)


async def quietly(call: Awaitable[Any]) -> None:
    """Best-effort calls (answer a button press, remove a keyboard): failure changes nothing."""
    try:
        await call
    except (TelegramError, httpx.HTTPError) as exc:
        log.debug("best-effort call failed", extra={"status": type(exc).__name__})
