"""Flood control: how fast messages go out, overall and per chat.

PTB's `AIORateLimiter` (overall cap `TELEGRAM_MAX_MESSAGES_PER_SECOND`, 20/min in groups, a
429's `retry_after` waited out and the request retried), plus a small per-chat bucket for
private chats (a burst of 3, then 1 message/s). Its overall bucket is replaced by a `Pacer`
that spaces messages evenly a little under the cap, so no second ever carries more than the
cap, and a 429 holds every message, not only the one refused.

Both `kominn run` and `kominn jobs run-due` send through a `ChatRateLimiter`: a backlog the
latter delivers must stay under Telegram's ceiling too.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

from adapters.telegram.errors import retry_after_seconds

CHAT_BURST, CHAT_RATE = 3, 1.0  # per private chat: burst, then messages per second
# Overall messages go out evenly spaced (no burst) a little under the cap: requests reach
# Telegram with a few ms of jitter, and a second must never count more than the cap.
OVERALL_PACE = 0.97
PACER_WINDOW = 1.02  # seconds in which at most the cap may go out, whatever happened before
FLOOD_RETRIES = 3


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
                 chat_rate: float = CHAT_RATE) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=FLOOD_RETRIES)
        if overall_max_rate:
            # PTB's bucket lets a full second's worth through at once after a quiet spell, so
            # a broadcast's first second carried up to twice the cap; one message at a time,
            # 1/rate apart, never exceeds it in any second.
            self._base_limiter = Pacer(  # type: ignore[assignment]
                overall_max_rate * OVERALL_PACE, overall_max_rate)
        self._chats: dict[int, AsyncLimiter] = {}
        self._chat_burst, self._chat_rate = chat_burst, chat_rate

    def _pausing(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """A 429 holds every message for its retry_after, as Telegram asks, not only the one
        refused: PTB's own pause is lifted by whichever request finishes next, and the
        messages it held would then go out in one burst."""
        pacer = self._base_limiter
        if not isinstance(pacer, Pacer):
            return callback

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                pacer.pause(retry_after_seconds(exc))
                raise

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
        callback = self._pausing(callback)
        limiter = self._chat_limiter(data.get("chat_id"), endpoint)
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
