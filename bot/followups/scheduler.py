"""The clock of `kominn run`: APScheduler 3.11 (`AsyncIOScheduler`) in the server's event loop.

Jobs hold no state; the database is the truth. Every ~2 s the dispatcher delivers due outbox
rows through the running channel senders (so a status change reaches the citizen within
seconds), every minute the follow-up rules queue what has fallen due, and every hour old
conversation leftovers are pruned. A restart, a missed run or a second worker on the same
PostgreSQL loses and repeats nothing: the rules are idempotent and rows are claimed.

Several workers: every worker dispatches (they claim disjoint rows with SKIP LOCKED, and a
row a dead worker claimed is due again when its lease runs out). The scan and the pruning run
once per tick across workers: each worker looks every couple of seconds, and only the one
whose conditional UPDATE of the job's `job_run` row wins runs it (`storage.pace.take_tick`).
Work another process creates that the scan must pick up — a competition from `kominn
campaigns create` — nudges the scan in its own transaction, so it runs at the next look
(within seconds) instead of at the next minute.

`run_due()` is the same work once, at a chosen moment, for `kominn jobs run-due`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.routing import BaseRoute

from bot.channels import Sender
from bot.followups.dispatcher import Policy, dispatch
from bot.followups.retention import Pruned, prune
from bot.followups.rules import create_due
from bot.observability.metrics import MeteredSender
from storage.db import transaction
from storage.models import utcnow
from storage.pace import RETENTION_JOB, SCAN_JOB, take_tick

if TYPE_CHECKING:  # the runtime assembles the features, which include the follow-ups
    from bot.runtime import Runtime

log = logging.getLogger("kominn.scheduler")

DISPATCH_SECONDS = 2.0
SCAN_SECONDS = 60.0
RETENTION_SECONDS = 3600.0
LOOK_SECONDS = 2.0  # how often a worker asks whether the scan (or pruning) is its to run
STOP_GRACE_SECONDS = 10.0


async def run_due(runtime: Runtime, senders: Mapping[str, Sender],
                  now: datetime | None = None, policy: Policy | None = None) -> dict[str, Any]:
    """Queue everything due at `now`, deliver what the senders can take, and report counts."""
    now = now or utcnow()
    created = await asyncio.to_thread(create_due, runtime.db, runtime.settings,
                                      runtime.features.rules, now)
    result = await dispatch(runtime.db, runtime.settings, runtime.features.renderers, senders,
                            now, policy)
    return {"now": now.isoformat(), "created": created, **result.as_dict()}


def prune_leftovers(runtime: Runtime, now: datetime) -> Pruned:
    """Storage limitation: dialog state, update ids and finished notices' content older than
    KOMINN_RETENTION_DAYS."""
    with transaction(runtime.db) as session:
        return prune(session, now, runtime.settings.retention_days)


class SchedulerService:
    """A `kominn run` service: starts the scheduler in the running loop, stops it gracefully
    (a delivery in progress is allowed to finish before the loop goes away)."""

    name = "scheduler"

    def __init__(self, runtime: Runtime, senders: Mapping[str, Sender], *,
                 dispatch_seconds: float = DISPATCH_SECONDS, scan_seconds: float = SCAN_SECONDS,
                 retention_seconds: float = RETENTION_SECONDS,
                 look_seconds: float = LOOK_SECONDS) -> None:
        """`scan_seconds`/`retention_seconds`: how often the job runs across all workers;
        each worker looks every `look_seconds` (at most) whether a run is due."""
        self.runtime = runtime
        self.senders = senders  # the app's, filled by the channel services before start
        self.routes: list[BaseRoute] = []
        self.every = {SCAN_JOB: scan_seconds, RETENTION_JOB: retention_seconds}
        self.intervals = {"dispatch": dispatch_seconds,
                          "scan": min(look_seconds, scan_seconds),
                          "retention": min(look_seconds * 30, retention_seconds)}
        self.scheduler: AsyncIOScheduler | None = None
        # One lock per job (asyncio locks bind to a loop on first use, not here).
        self._busy = {name: asyncio.Lock() for name in self.intervals}

    async def start(self) -> None:
        settings = self.runtime.settings
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(),
                                     timezone=settings.zone)
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "dispatch": self.dispatch_once, "scan": self.scan_once,
            "retention": self.prune_once}
        for name, job in jobs.items():
            # Overlapping runs return at once (see _exclusive); allowing a few instances keeps
            # APScheduler from warning about "maximum number of running instances" on a slow
            # network, and coalescing folds missed runs into one.
            scheduler.add_job(job, "interval", seconds=self.intervals[name], id=name,
                              name=f"kominn {name}", next_run_time=datetime.now(settings.zone),
                              coalesce=True, max_instances=3, misfire_grace_time=None)
        scheduler.start()
        self.scheduler = scheduler
        log.info("scheduler started", extra={"event": "scheduler_started",
                                             "count": len(jobs)})

    async def stop(self) -> None:
        if self.scheduler is None:
            return
        self.scheduler.pause()
        try:
            await asyncio.wait_for(self._idle(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("scheduler stopped with a job still running",
                        extra={"event": "scheduler_stop_timeout"})
        self.scheduler.shutdown(wait=False)
        self.scheduler = None

    async def _idle(self) -> None:
        for lock in self._busy.values():
            async with lock:
                pass

    async def _exclusive(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        """One run of a job at a time in this process; errors are logged, never raised into
        the scheduler (the next run simply tries again)."""
        lock = self._busy[name]
        metrics = self.runtime.metrics
        if lock.locked():
            metrics.job_run(name, "skipped")
            return
        async with lock:
            try:
                await work()
            except Exception:  # noqa: BLE001 - a job must survive any one failure
                metrics.job_run(name, "failed")
                log.exception("scheduled job failed", extra={"event": "job_failed",
                                                             "service": name})
            else:
                metrics.job_run(name, "ok")

    async def dispatch_once(self) -> None:
        runtime = self.runtime
        # Counted per channel for /metrics (sends, 429s, failures) without the dispatcher
        # knowing; built per run because the channel services fill `senders` after start-up.
        senders = {channel: MeteredSender(sender, runtime.metrics)
                   for channel, sender in self.senders.items()}
        await self._exclusive("dispatch", lambda: dispatch(
            runtime.db, runtime.settings, runtime.features.renderers, senders))

    async def scan_once(self) -> None:
        """The follow-up rules, if this tick is this worker's (once per tick across workers,
        or at once after a nudge)."""
        runtime = self.runtime
        await self._exclusive("scan", lambda: asyncio.to_thread(self._ticked, SCAN_JOB, lambda: (
            create_due(runtime.db, runtime.settings, runtime.features.rules, utcnow()))))

    async def prune_once(self) -> None:
        await self._exclusive("retention", lambda: asyncio.to_thread(
            self._ticked, RETENTION_JOB, lambda: prune_leftovers(self.runtime, utcnow())))

    def _ticked(self, name: str, work: Callable[[], object]) -> object:
        if not take_tick(self.runtime.db, name, self.every[name]):
            return None
        return work()


def service(runtime: Runtime, senders: Mapping[str, Sender]) -> SchedulerService:
    """What `bot.app.build()` adds to `kominn run`."""
    return SchedulerService(runtime, senders)
