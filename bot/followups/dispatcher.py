"""The outbox dispatcher: delivers due outbox rows through the channel senders, at least once,
never twice on purpose.

A row moves `pending → sending → sent`; a failed attempt goes back to `pending` with an
exponential backoff, and after `max_attempts` (or a permanent error) it is parked as `failed`,
where `kominn jobs list` shows it. `cancelled` rows were meant for a person who is gone.

Claiming is what makes several workers safe: a claim sets `state='sending'` and pushes `due_at`
forward by a lease, in one short transaction. On PostgreSQL the candidate rows are locked with
`SELECT … FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without waiting;
on SQLite (one writer at a time) each row is taken by a conditional UPDATE that only succeeds
while the row is still due. A worker that dies mid-send leaves its rows `sending`; when the
lease runs out they are due again and another worker takes them (at-least-once; the dedupe key
stops the same notice from ever being queued twice). The SQL of all this — the claim, the
quiet-hours postponement, the outcomes — lives with the table in storage/outbox.py; this module
holds the policy (what is due for whom, retries, order, quiet hours) and the sending.

Order: notices about a person's own idea (status news, merges, benefit checks, reminders) go
before mass mailings (competition invitations and reminders, collaboration invitations,
digests), then by due time — a broadcast of 10,000 invitations at Telegram's 30 messages/s
takes minutes, and a citizen's "KI-12 is now Nyttig" must not wait behind it.

Quiet hours: a notice to a person (citizen channels) that falls due inside the night window is
postponed to the window's end. Staff channels (Slack) are not delayed, and answers inside a
conversation never pass through here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlmodel import Session

from bot.channels import STAFF_CHANNEL, DeliveryError, Sender
from bot.config import Settings
from bot.i18n import translator
from bot.retry import retry_transient
from bot.wiring import Renderer
from dialogs.types import Reply
from storage import outbox
from storage.db import transaction
from storage.models import Outbox, Person, utcnow
from storage.outbox import (
    CANCELLED,
    FAILED,
    PENDING,
    SENT,
)

log = logging.getLogger("kominn.dispatcher")

# Channels where the recipients are staff, not citizens: no quiet hours (Slack has its own
# do-not-disturb, and the moderators' channel is not a person).
STAFF_CHANNELS = frozenset({STAFF_CHANNEL})
# Kinds sent to many people at once: claimed after every other due notice (see above).
MASS_KINDS = frozenset({"campaign_invite", "campaign_reminder", "campaign_outcome",
                        "collab_invite", "weekly_digest"})


@dataclass(frozen=True)
class Policy:
    """How hard to try: batch size per claim, attempts before parking, backoff, lease."""

    batch: int = 50
    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)
    # Batches per run: enough for a whole broadcast, since between runs the scheduler waits
    # up to its interval, idle time a sender paced at 30/s cannot make up.
    max_batches: int = 400

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The defaults with the configured first retry delay (KOMINN_RETRY_SECONDS)."""
        return cls(base_delay=timedelta(seconds=settings.retry_seconds))

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """30 s, 1 min, 2 min, … capped; a server's Retry-After wins when it is longer."""
        delay = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass(frozen=True)
class Claimed:
    """A row this worker owns until its lease ends (a detached copy of what sending needs)."""

    id: int
    kind: str
    channel: str
    address: str | None
    payload: str
    attempts: int
    language: str


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    postponed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed,
                "cancelled": self.cancelled, "postponed": self.postponed,
                "sent_by_kind": dict(sorted(self.kinds.items()))}


# --- quiet hours ------------------------------------------------------------------------------

def quiet_until(now: datetime, window: tuple[int, int] | None, zone: tzinfo) -> datetime | None:
    """The end of the quiet window (UTC) when `now` falls inside it, else None.

    `window` is (start hour, end hour) in local time; (21, 8) spans midnight. Equal hours mean
    no window at all."""
    if window is None or window[0] == window[1]:
        return None
    start, end = window
    local = now.astimezone(zone)
    hour = local.hour
    inside = start <= hour < end if start < end else (hour >= start or hour < end)
    if not inside:
        return None
    day = local.date()
    if start > end and hour >= start:
        day += timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(now.tzinfo)


def _postpone_quiet(session: Session, channels: list[str], now: datetime,
                    until: datetime) -> int:
    """Citizen rows due now wait for the morning (also those whose lease ran out)."""
    citizen = [c for c in channels if c not in STAFF_CHANNELS]
    if not citizen:
        return 0
    return outbox.postpone_due(session, citizen, now, until)


# --- claiming ---------------------------------------------------------------------------------

def claim(db: DbEngine, settings: Settings, channels: Iterable[str], now: datetime,
          policy: Policy = Policy(), result: DispatchResult | None = None) -> list[Claimed]:
    """Take up to `policy.batch` due rows of these channels for this worker."""
    channels = sorted(set(channels))
    if not channels:
        return []
    result = result if result is not None else DispatchResult()
    lease_until = now + policy.lease
    with transaction(db) as session:
        until = quiet_until(now, settings.quiet_window, settings.zone)
        if until is not None:
            result.postponed += _postpone_quiet(session, channels, now, until)
        rows = outbox.claim_due(session, channels, now, lease_until, batch=policy.batch,
                                last_kinds=MASS_KINDS)
        return _prepared(session, rows, settings, result)


def _prepared(session: Session, rows: list[Outbox], settings: Settings,
              result: DispatchResult) -> list[Claimed]:
    """Copies to send, in each recipient's current language; rows for a person who has been
    erased (or no longer exists) are cancelled instead."""
    claimed = []
    for row in rows:
        language: str = settings.locale
        if row.person_id is not None:
            person = session.get(Person, row.person_id)
            if person is None or person.erased_at is not None:
                outbox.set_state(session, row.id, CANCELLED, error="recipient erased")
                result.cancelled += 1
                continue
            language = person.language or settings.locale
        claimed.append(Claimed(id=row.id or 0, kind=row.kind, channel=row.channel,
                               address=row.address, payload=row.payload,
                               attempts=row.attempts, language=language))
    return claimed


def _set_state_alone(db: DbEngine, row_id: int | None, state: str, **values: Any) -> None:
    with transaction(db) as session:
        outbox.set_state(session, row_id, state, **values)


# --- delivering -------------------------------------------------------------------------------

def render_claimed(item: Claimed, renderers: Mapping[str, Renderer]) -> list[Reply]:
    """The row's replies in the recipient's language (`KeyError`: no feature renders it)."""
    return renderers[item.kind](json.loads(item.payload or "{}"), translator(item.language))


async def dispatch(db: DbEngine, settings: Settings, renderers: Mapping[str, Renderer],
                   senders: Mapping[str, Sender], now: datetime | None = None,
                   policy: Policy | None = None) -> DispatchResult:
    """Deliver everything due at `now` (default: the real clock) that a sender exists for,
    rendered by the renderer of its kind (`Features.renderers`); `policy` defaults to the
    settings' (`Policy.of`).

    Database work runs in a thread so the event loop (which also serves the chat adapters)
    never waits on the database. Sends overlap up to what each sender takes (see `Lanes`),
    and the next batch is claimed while the last sends of this one are still out, so a
    broadcast keeps the sender's rate limiter busy instead of waiting on the database."""
    policy = policy if policy is not None else Policy.of(settings)
    result = DispatchResult()
    lanes = Lanes(senders)
    try:
        for _ in range(policy.max_batches):
            moment = now or utcnow()
            batch = await asyncio.to_thread(claim, db, settings, list(senders), moment, policy,
                                            result)
            for item in batch:
                await lanes.start(item, _deliver(db, senders[item.channel], item, renderers,
                                                 now, policy, result))
            if not batch:
                break
    except Exception:
        await lanes.finish(raising=False)  # what is out may have arrived: record it
        raise
    except BaseException:
        await lanes.cancel()
        raise
    await lanes.finish()
    return result


class Lanes:
    """Concurrent sends, bounded per channel by the sender's `concurrency` attribute (default
    1: one at a time, for a sender without a rate limiter of its own, which must not be
    flooded). Notices to the same address still go one after the other, in claim order."""

    def __init__(self, senders: Mapping[str, Sender]) -> None:
        self._slots = {channel: asyncio.Semaphore(max(1, int(getattr(s, "concurrency", 1))))
                       for channel, s in senders.items()}
        self._tails: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, item: Claimed, work: Coroutine[Any, Any, None]) -> None:
        """Wait for a free slot of the item's channel, then send in the background."""
        slots = self._slots[item.channel]
        try:
            await slots.acquire()
        except BaseException:
            work.close()
            raise
        key = (item.channel, item.address)
        task = asyncio.create_task(self._run(self._tails.get(key), work, slots))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(key, done))

    @staticmethod
    async def _run(previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None],
                   slots: asyncio.Semaphore) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its own business
            await work
        finally:
            slots.release()

    def _forget(self, key: tuple[str, str | None], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def finish(self, *, raising: bool = True) -> None:
        """Wait for every send; a failure (the database went away) is raised here."""
        outcomes = await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for outcome in outcomes:
            if raising and isinstance(outcome, BaseException):
                raise outcome

    async def cancel(self) -> None:
        """Stopping: sends not finished are abandoned; their rows stay claimed until the lease
        runs out, then they are due again (at-least-once)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _deliver(db: DbEngine, sender: Sender, item: Claimed,
                   renderers: Mapping[str, Renderer], now: datetime | None, policy: Policy,
                   result: DispatchResult) -> None:
    """Send one claimed row and record the outcome (counted here, on the event loop: several
    rows finish at once, so the worker threads must not count)."""
    try:
        replies = render_claimed(item, renderers)
    except Exception as exc:  # noqa: BLE001 - a row that cannot render is parked, not retried
        await _failed(db, item, f"render: {type(exc).__name__}", now, True, None, policy, result)
        return
    try:
        if not item.address:
            raise DeliveryError("no address", permanent=True)
        await sender.send(item.address, replies)
    except DeliveryError as exc:
        await _failed(db, item, str(exc), now, exc.permanent, exc.retry_after, policy, result)
    except Exception as exc:  # noqa: BLE001 - unknown trouble: retry with backoff
        await _failed(db, item, f"{type(exc).__name__}: {exc}", now, False, None, policy,
                      result)
    else:
        await asyncio.to_thread(_finish_sent, db, item, now or utcnow())
        result.sent += 1
        result.kinds[item.kind] = result.kinds.get(item.kind, 0) + 1


async def _failed(db: DbEngine, item: Claimed, error: str, now: datetime | None,
                  permanent: bool, retry_after: float | None, policy: Policy,
                  result: DispatchResult) -> None:
    parked = await asyncio.to_thread(_finish_failed, db, item, error, now or utcnow(),
                                     permanent, retry_after, policy)
    if parked:
        result.failed += 1
    else:
        result.retried += 1


def _finish_sent(db: DbEngine, item: Claimed, now: datetime) -> None:
    # Retried while the database is briefly away: a lost "sent" leaves the row `sending`, and
    # when its lease runs out another round sends the notice a second time.
    retry_transient(lambda: _set_state_alone(db, item.id, SENT, sent_at=now), item.channel)
    log.info("notice sent", extra={"event": "outbox_sent", "kind": item.kind,
                                   "channel": item.channel, "attempt": item.attempts})


def _finish_failed(db: DbEngine, item: Claimed, error: str, now: datetime, permanent: bool,
                   retry_after: float | None, policy: Policy) -> bool:
    """Back to `pending` with a backoff, or parked as `failed` (True) when hope is gone."""
    error = error[:500]
    with transaction(db) as session:
        if permanent or item.attempts >= policy.max_attempts:
            outbox.set_state(session, item.id, FAILED, error=error)
            log.error("notice parked as failed", extra={
                "event": "outbox_failed", "kind": item.kind, "channel": item.channel,
                "attempt": item.attempts})
            return True
        outbox.set_state(session, item.id, PENDING, error=error,
                   due_at=now + policy.backoff(item.attempts, retry_after))
        log.warning("notice delivery failed, will retry", extra={
            "event": "outbox_retry", "kind": item.kind, "channel": item.channel,
            "attempt": item.attempts})
        return False


# --- pull delivery (the terminal) -------------------------------------------------------------

def take_pending(db: DbEngine, settings: Settings, renderers: Mapping[str, Renderer],
                 channel: str, address: str, now: datetime | None = None) -> list[Reply]:
    """Due notices for one address on a channel without push (the terminal chat shows them
    when the person comes back), marked sent as they are handed out. Quiet hours do not apply:
    the person is there."""
    now = now or utcnow()
    replies: list[Reply] = []
    with transaction(db) as session:
        for row in outbox.due_for_address(session, channel, address, now):
            if not outbox.take(session, row, now, now):
                continue
            for item in _prepared(session, [row], settings, DispatchResult()):
                try:
                    replies.extend(render_claimed(item, renderers))
                except Exception as exc:  # noqa: BLE001 - park it, show the rest
                    outbox.set_state(session, row.id, FAILED, error=f"render: {type(exc).__name__}")
                    continue
                outbox.set_state(session, row.id, SENT, sent_at=now)
    return replies

