"""A conversation's answers on their way out, and the record that they arrived.

Failed sends: connection failures (nothing reached Telegram) are retried (`render`). A read or
write timeout is ambiguous (Telegram may have delivered the message), so it is not retried: a
duplicate is worse than the rare lost message the person can ask again for. An answer Telegram
failed to take (5xx, connection trouble beyond those retries) is tried again from the first
reply not sent, backing off from 1 s to 30 s while the service runs, so an outage delays
answers but loses none; what a stop leaves unsent stays stored for the next start.

Recording "sent" (`engine.mark_all_delivered`) has a thread of its own and is written in
batches: queued behind the updates waiting for the engine it lagged by up to a second under
load, and every answer sent but not yet recorded is sent again after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from adapters.telegram.api import CHANNEL
from adapters.telegram.errors import error_kind, not_sent
from adapters.telegram.render import send_rendered
from bot.conversation.engine import Engine
from dialogs.types import Reply

log = logging.getLogger("kominn.telegram")

RESEND_MAX_WAIT = 30.0  # seconds at most between tries of an answer Telegram failed to take


class Delivery:
    """Sends replies in order through `bot` and records, in batches, which updates' replies
    went out. `stopping` ends the patient retries."""

    def __init__(self, bot: Bot, engine: Engine, stopping: asyncio.Event) -> None:
        self._bot = bot
        self._engine = engine
        self._stopping = stopping
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-sent")
        self._sent_batch: tuple[list[str], asyncio.Future[None]] | None = None
        self._recording = asyncio.Lock()

    async def deliver(self, chat_id: int, replies: Sequence[Reply], *,
                      patient: bool = False,
                      renew: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Send replies in order; False when a passing failure left some unsent (they stay
        stored, and the next start sends them). `patient` (a conversation's answers): the
        unsent rest is tried again with backoff while the service runs, so a Telegram outage
        delays answers but loses none, and what did go out is not sent twice. `renew` keeps
        the update's sending lease before each new try; once it says no (the lease ran out,
        another worker may send the answer now), this worker stops trying."""
        rest = list(replies)
        for attempt in itertools.count():
            rest = await self._send_in_order(chat_id, rest)
            if not rest:
                return True
            if not patient or self._stopping.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       min(RESEND_MAX_WAIT, 2.0 ** attempt))
            if renew is not None and not await renew():
                log.warning("answer left to another worker (lease ran out)",
                            extra={"event": "telegram_lease_lost"})
                return False
        raise AssertionError("unreachable")

    async def _send_in_order(self, chat_id: int, replies: list[Reply]) -> list[Reply]:
        """The replies a passing failure left unsent (none when all went out or were
        refused for good)."""
        for index, reply in enumerate(replies):
            try:
                await send_rendered(self._bot, chat_id, reply)
            except Forbidden:
                log.info("chat unreachable (blocked)", extra={"event": "telegram_blocked"})
                return []
            except BadRequest as exc:
                log.error("telegram refused a reply", extra={
                    "event": "telegram_bad_request", "status": error_kind(exc)})
                if "chat not found" in str(exc).lower():
                    return []
            except TimedOut as exc:
                if not_sent(exc):
                    return replies[index:]
                log.warning("reply send timed out; not retried (it may have arrived)",
                            extra={"event": "telegram_send_ambiguous"})
            except (NetworkError, RetryAfter, httpx.HTTPError) as exc:
                log.warning("reply not sent", extra={"event": "telegram_send_failed",
                                                     "status": type(exc).__name__})
                return replies[index:]
        return []

    def record_sent(self, update_id: str) -> asyncio.Future[None]:
        """Record that an update's replies went out (`engine.mark_delivered`), together with
        the others sent while the previous batch was written: one write per batch."""
        if self._sent_batch is None:
            batch: tuple[list[str], asyncio.Future[None]] = (
                [], asyncio.get_running_loop().create_future())
            self._sent_batch = batch
            asyncio.ensure_future(self._write_sent(batch))
        self._sent_batch[0].append(update_id)
        return self._sent_batch[1]

    async def _write_sent(self, batch: tuple[list[str], asyncio.Future[None]]) -> None:
        ids, done = batch
        await asyncio.sleep(0)  # sends finishing in this turn of the loop join too
        async with self._recording:  # the batch takes more ids until it is its turn
            if self._sent_batch is batch:
                self._sent_batch = None
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._recorder, self._engine.mark_all_delivered, CHANNEL, ids)
            except Exception as exc:  # noqa: BLE001 - every waiter of the batch hears of it
                done.set_exception(exc)
            else:
                done.set_result(None)

    def shutdown(self) -> None:
        self._recorder.shutdown(wait=False)
