"""The poll loop (when no `TELEGRAM_WEBHOOK_URL` is set): polling by hand, the offset confirmed
only after handling.

PTB's `Updater` asks for the next batch (whose offset confirms the previous one to Telegram) as
soon as it has queued the last one, whether or not it was handled; a `kill -9` then loses what
was queued but not yet handled. Here the poll loop feeds a batch into the application's update
queue and only asks for the next batch (confirming this one) once every update of the batch is
*handled*, i.e. its new dialog state and replies are committed by the engine. Sending is not
awaited: replies stored but not yet confirmed as sent are re-sent at the next start
(`engine.take_undelivered`). So: kill before the commit → Telegram delivers the update again →
handled once; kill after the commit → the stored replies are sent at start. A reply may then
reach the person twice if the kill fell between sending it and `mark_delivered` (at-least-once
out). Those marks are written in batches on a thread of their own, not behind the updates
waiting for the engine, which keeps that window to tens of milliseconds under load
(benchmarks/faults.py; see `delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import httpx
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut

from adapters.telegram.errors import retry_after_seconds
from adapters.telegram.updates import ALLOWED_UPDATES

log = logging.getLogger("kominn.telegram")

POLL_TIMEOUT = 25  # seconds a getUpdates long poll may wait for news


async def poll(bot: Bot, feed: Callable[[Sequence[Update]], Awaitable[None]],
               stopping: asyncio.Event) -> None:
    """Take batches from getUpdates until `stopping` is set (or the token is refused), each
    handed to `feed`, which returns once every update of it is handled; the next getUpdates
    confirms it."""
    offset: int | None = None
    failures = 0
    while not stopping.is_set():
        fetch = asyncio.ensure_future(bot.get_updates(
            offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES))
        stop = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            break
        try:
            updates = fetch.result()
            failures = 0
        except Exception as exc:  # noqa: BLE001 - whatever it was, polling must go on
            failures += 1
            if not await _poll_failed(exc, failures, stopping):
                return
            continue
        if updates:
            await feed(updates)
            offset = max(update.update_id for update in updates) + 1
    if offset is not None:
        # Confirm the last batch, so a restart does not receive it again.
        with contextlib.suppress(TelegramError, httpx.HTTPError):
            await bot.get_updates(offset=offset, timeout=0, limit=1,
                                  allowed_updates=ALLOWED_UPDATES)


async def _poll_failed(exc: Exception, failures: int, stopping: asyncio.Event) -> bool:
    """Wait out a failed getUpdates; False when polling cannot go on."""
    if isinstance(exc, InvalidToken):
        log.error("telegram refused the token; polling stopped",
                  extra={"event": "telegram_token_refused"})
        return False
    if isinstance(exc, TimedOut):
        return True
    if isinstance(exc, RetryAfter):
        delay = retry_after_seconds(exc)
    elif isinstance(exc, Conflict):
        delay = 5.0
    else:
        delay = min(30.0, 0.5 * 2 ** min(failures, 6))
    log.warning("getUpdates failed", extra={
        "event": "telegram_poll_failed", "status": type(exc).__name__, "attempt": failures})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay)
    return True
