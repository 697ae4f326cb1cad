"""Flood control: how fast messages go out, overall and per chat.

PTB's `AIORateLimiter` (overall cap `TELEGRAM_MAX_MESSAGES_PER_SECOND`, 20/min in groups, a
429's `retry_after` waited out and the request retried), plus a small per-chat bucket for
private chats (a burst of 3, then 1 message/s). Its overall bucket is replaced by a `Pacer`
that spaces messages evenly a little under the cap, so no second ever carries more than the
cap, and a 429 holds every message, not only the one refused.

Both `kominn run` and `kominn jobs run-due` send through a `ChatRateLimiter`: a backlog the
latter delivers must stay under Telegram's ceiling too.

Several workers on PostgreSQL share one ceiling: their overall pacer is a `SharedPacer`,
which takes each message's slot on one grid in the database (`storage.pace`), so the sum of
all workers' sends stays under the cap. Interactive replies take the next slot at once; mass
mailings (`bulk()`, the dispatcher's notices) only a slot at most `BULK_AHEAD` away, so a
citizen's answer never waits behind a broadcast for longer than that. The per-chat pace stays
per process (a person's turns are answered one after the other, whichever worker has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from adapters.telegram.errors import retry_after_seconds
from storage.pace import ensure_pace, hold_pace, take_slot

log = logging.getLogger("kominn.telegram")

CHAT_BURST, CHAT_RATE = 3, 1.0  # per private chat: burst, then messages per second
# Overall messages go out evenly spaced (no burst) a little under the cap: requests reach
# Telegram with a few ms of jitter, and a second must never count more than the cap.
OVERALL_PACE = 0.97
PACER_WINDOW = 1.02  # seconds in which at most the cap may go out, whatever happened before
FLOOD_RETRIES = 3
PACE_NAME = "telegram"  # the send_pace row every worker of the bot shares
BULK_AHEAD = 0.1  # seconds ahead a mass mailing may take a slot (interactive: any)
# Shared by workers: a slot woken more than `LATE` after its time (a stalled event loop) is
# given up and a fresh one taken, so a late message does not crowd the next second.
LATE = 0.05
_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("telegram_bulk", default=False)


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Messages sent inside are mass mailing (notices, invitations, digests): they give way to
    interactive replies at the shared pacer."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


class Pacer:
    """Turns `1/rate` apart on a fixed grid, taken in arrival order (an async context manager,
    like the limiter it replaces). A turn woken a little late does not push the later ones
    back, so the rate holds; no burst follows a quiet spell. Turns a stalled event loop (a
    long garbage collection) let pass are not all taken at once when it wakes: no more than
    `cap` go out within `PACER_WINDOW` seconds, ever. `pause()` (Telegram answered 429) moves
    every turn behind the wait, including those already promised."""

    def __init__(self, rate: float, cap: float) -> None:
        self._interval = 1 / rate
        self._next = 0.0
        self._pauses = 0
        self._recent: deque[float] = deque(maxlen=max(1, int(cap)))

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now, pauses = loop.time(), self._pauses
            turn = max(now, self._next)
            self._next = turn + self._interval
            if turn > now:
                await asyncio.sleep(turn - now)
            if pauses == self._pauses and await self._within_window(loop):
                self._recent.append(loop.time())
                return

    async def _within_window(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait until fewer than `cap` messages went out in the last window; False if a pause
        came meanwhile (then the turn is taken again behind it)."""
        pauses = self._pauses
        while len(self._recent) == self._recent.maxlen:
            wait = self._recent[0] + PACER_WINDOW - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        return pauses == self._pauses

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)
        self._pauses += 1

    async def __aexit__(self, *_: object) -> None:
        return None


class SharedPacer:
    """The overall pacer of every worker of one bot (PostgreSQL): each message takes the next
    slot of one evenly spaced grid in the database (one UPDATE … RETURNING, on the database's
    clock) and waits for it, so all workers together send at most `rate` a second. A 429
    moves every worker's next slot behind its wait (`pause`)."""

    def __init__(self, db: Engine, rate: float, *, name: str = PACE_NAME,
                 ahead: float = BULK_AHEAD) -> None:
        self._db = db
        self._interval = 1 / rate
        self._name = name
        self._ahead = ahead
        self._threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="telegram-pace")
        self._ready = False
        # While the database cannot be asked, this worker paces itself (it cannot store any
        # answer meanwhile either, so little goes out).
        self._alone = Pacer(rate, rate / OVERALL_PACE)

    async def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: call(*args, **kwargs))

    async def __aenter__(self) -> None:
        try:
            await self._take()
        except SQLAlchemyError:
            log.warning("shared pace unavailable; pacing this worker alone",
                        extra={"event": "telegram_pace_failed"})
            await self._alone.__aenter__()

    async def prepare(self) -> None:
        """The shared row exists and a connection is open before the first message (whose
        slot would otherwise come late by a connection's set-up)."""
        if not self._ready:
            await self._call(ensure_pace, self._db, self._name)
            self._ready = True

    async def _take(self) -> None:
        loop = asyncio.get_running_loop()
        await self.prepare()
        urgent = not _BULK.get()
        while True:
            slot, next_at, now = await self._call(
                take_slot, self._db, self._name, self._interval, urgent=urgent,
                ahead=self._ahead)
            if slot is None:  # a mailing: look again when a slot is near
                await asyncio.sleep(max(self._interval, next_at - now - self._ahead))
                continue
            due = loop.time() + (slot - now)
            if slot > now:
                await asyncio.sleep(slot - now)
            if loop.time() - due <= LATE:
                return
            urgent = True  # woken too late to use the slot (a stalled loop): a fresh one

    def pause(self, seconds: float) -> None:
        self._alone.pause(seconds)
        task = asyncio.ensure_future(self._call(hold_pace, self._db, self._name, seconds))
        task.add_done_callback(_log_if_failed)

    async def __aexit__(self, *_: object) -> None:
        return None


def shared_pace(db: Engine) -> Callable[[float], SharedPacer]:
    """`ChatRateLimiter(pace=…)` for workers sharing `db`: one ceiling for all."""
    return lambda rate: SharedPacer(db, rate * OVERALL_PACE)


class ChatRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (overall and group caps, 429 retries) plus a per-private-chat
    bucket for messages: Telegram tolerates short bursts in a chat, then about one per second.

    Taking the keyboard off a tapped message is not a message: it is not counted against the
    overall cap (which would otherwise spend a third of it on edits during a busy hour). If
    Telegram ever objects, the edit fails quietly and the engine still answers a second tap
    with "that choice has expired"."""

    SEND_ENDPOINTS = frozenset({"sendMessage", "sendDocument"})
    UNCAPPED_ENDPOINTS = frozenset({"editMessageReplyMarkup"})

    def __init__(self, overall_max_rate: float, chat_burst: int = CHAT_BURST,
                 chat_rate: float = CHAT_RATE, *,
                 pace: Callable[[float], Any] | None = None,
                 observe: Callable[[str, bool], None] | None = None) -> None:
        """`pace`: builds the overall pacer for the cap (`shared_pace` on PostgreSQL: one
        ceiling for every worker); by default a `Pacer` of this process. `observe(method,
        rate_limited)` hears of every message request Telegram took or refused with 429 (the
        runtime's metrics)."""
        super().__init__(overall_max_rate=overall_max_rate, max_retries=FLOOD_RETRIES)
        if overall_max_rate:
            # PTB's bucket lets a full second's worth through at once after a quiet spell, so
            # a broadcast's first second carried up to twice the cap; one message at a time,
            # 1/rate apart, never exceeds it in any second.
            limiter: Any = (pace(overall_max_rate) if pace is not None
                             else Pacer(overall_max_rate * OVERALL_PACE, overall_max_rate))
            self._base_limiter = limiter
        self._chats: dict[int, AsyncLimiter] = {}
        self._chat_burst, self._chat_rate = chat_burst, chat_rate
        self._observe = observe

    async def initialize(self) -> None:
        """PTB calls this when the bot starts: the shared pacer connects before any send."""
        prepare = getattr(self._base_limiter, "prepare", None)
        if prepare is not None:
            with contextlib.suppress(SQLAlchemyError):  # the first send tries again
                await prepare()

    def _pausing(self, callback: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
        """A 429 holds every message for its retry_after, as Telegram asks, not only the one
        refused: PTB's own pause is lifted by whichever request finishes next, and the
        messages it held would then go out in one burst. Each try is also observed."""
        pacer: Any = self._base_limiter
        pauses = hasattr(pacer, "pause")
        observe = self._observe if endpoint in self.SEND_ENDPOINTS else None
        if not pauses and observe is None:
            return callback

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                if pauses:
                    pacer.pause(retry_after_seconds(exc))
                if observe is not None:
                    observe(endpoint, True)
                raise
            if observe is not None:
                observe(endpoint, False)
            return result

        return call

    def _chat_limiter(self, chat_id: object, endpoint: str) -> AsyncLimiter | None:
        if endpoint not in self.SEND_ENDPOINTS or not self._chat_rate:
            return None
        try:
            key = int(str(chat_id))
        except ValueError:
            return None
        if key <= 0:  # groups and channels: the group limiter of the base class applies
            return None
        if len(self._chats) > 1024:
            for other, idle in list(self._chats.items()):
                if idle.has_capacity(idle.max_rate):
                    del self._chats[other]
        limiter = self._chats.get(key)
        if limiter is None:
            limiter = self._chats[key] = AsyncLimiter(self._chat_burst,
                                                      self._chat_burst / self._chat_rate)
        return limiter

    async def process_request(self, callback: Callable[..., Any], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        if endpoint in self.UNCAPPED_ENDPOINTS:
            return await callback(*args, **kwargs)
        callback = self._pausing(callback, endpoint)
        limiter = self._chat_limiter(data.get("chat_id"), endpoint)
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)


def _log_if_failed(task: asyncio.Future[Any]) -> None:
    """A shared pause that could not be recorded: this worker still pauses alone."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("shared pause not recorded", extra={"event": "telegram_pace_failed"})
