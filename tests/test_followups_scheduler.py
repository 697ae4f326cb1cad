"""The APScheduler service of `kominn run`: jobs read the database, so a moved clock
(time-machine) or a restart finds exactly what is due."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import time_machine
from sqlmodel import Session

from bot.app import App, build
from bot.followups.scheduler import SchedulerService, run_due
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import JobRun, Person, utcnow
from storage.pace import RETENTION_JOB, SCAN_JOB, nudge, take_tick
from tests.test_campaigns import make_campaign
from tests.test_followups import RecordingSender, add_idea, add_person, move, rows


async def until(predicate: Callable[[], object], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def service_with(runtime: Runtime, sender: RecordingSender) -> SchedulerService:
    app = App(runtime)
    app.senders[sender.channel] = sender
    return SchedulerService(app.runtime, app.senders, dispatch_seconds=0.2, scan_seconds=0.5)


async def test_kominn_run_builds_the_scheduler_with_its_jobs(runtime: Runtime) -> None:
    app = build(runtime)
    [scheduler] = [s for s in app.services if s.name == "scheduler"]
    assert isinstance(scheduler, SchedulerService)
    await scheduler.start()
    try:
        jobs = {job.id: job.trigger.interval for job in scheduler.scheduler.get_jobs()}  # type: ignore[union-attr]
        # Every worker looks often; the scan runs once a minute and the pruning once an hour
        # across workers (whoever wins the tick).
        assert jobs == {"dispatch": timedelta(seconds=2), "scan": timedelta(seconds=2),
                        "retention": timedelta(minutes=1)}
        assert scheduler.every == {"scan": 60.0, "retention": 3600.0}
    finally:
        await scheduler.stop()
    assert scheduler.scheduler is None


async def test_status_change_is_delivered_by_the_running_scheduler(runtime: Runtime) -> None:
    sender = RecordingSender()
    service = service_with(runtime, sender)
    await service.start()
    try:
        kari = await asyncio.to_thread(add_person, runtime, "kari")
        number = await asyncio.to_thread(add_idea, runtime, kari, at=utcnow())
        await asyncio.to_thread(move, runtime, number, Status.USEFUL, utcnow())
        await until(lambda: sender.sent)
        await asyncio.sleep(0.5)  # a few more dispatcher runs: nothing is sent twice
    finally:
        await service.stop()
    assert len(sender.sent) == 1 and "Nyttig" in sender.texts()[0]


async def test_periodic_scan_fires_when_the_clock_reaches_the_period(runtime: Runtime) -> None:
    """Nothing before 14 days; with the clock moved past them, the running scheduler's own
    scan queues the note and its dispatcher delivers it, once."""
    kari = add_person(runtime, "kari")
    add_idea(runtime, kari, at=utcnow())
    sender = RecordingSender()
    service = service_with(runtime, sender)
    await service.start()
    try:
        await asyncio.sleep(1.2)  # at least two scans and several dispatches
        assert sender.sent == [] and rows(runtime) == []
    finally:
        await service.stop()
    with time_machine.travel(datetime.now(UTC) + timedelta(days=14, minutes=1), tick=True):
        restarted = service_with(runtime, sender)
        await restarted.start()
        try:
            await until(lambda: sender.sent)
            await asyncio.sleep(1.2)
        finally:
            await restarted.stop()
    assert [r.kind for r in rows(runtime)] == ["stale_author"]
    assert len(sender.sent) == 1 and "fortsatt til vurdering" in sender.texts()[0]


async def test_run_due_queues_and_delivers_at_the_given_moment(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    number = add_idea(runtime, kari, at=start)
    move(runtime, number, Status.USEFUL, start)
    move(runtime, number, Status.REALISED, start)
    sender = RecordingSender()
    early = await run_due(runtime, {"terminal": sender}, start + timedelta(days=29))
    assert early["created"]["benefit_check"] == 0 and early["sent"] == 2  # the two moves
    later = await run_due(runtime, {"terminal": sender}, start + timedelta(days=30))
    assert later["created"]["benefit_check"] == 1 and later["sent_by_kind"] == {
        "benefit_check": 1}
    again = await run_due(runtime, {"terminal": sender}, start + timedelta(days=40))
    assert again["created"]["benefit_check"] == 0 and again["sent"] == 0


def test_a_tick_is_taken_by_one_worker_and_a_nudge_brings_the_next_one_forward(
        runtime: Runtime) -> None:
    """Several workers look for the scan every couple of seconds: exactly one of them runs
    each tick; a nudge (a competition created by another process) runs it at the next look."""
    now = 1_000_000.0
    assert take_tick(runtime.db, SCAN_JOB, 60, now=now)
    assert not take_tick(runtime.db, SCAN_JOB, 60, now=now)  # a second worker, same moment
    assert not take_tick(runtime.db, SCAN_JOB, 60, now=now + 30)
    assert take_tick(runtime.db, SCAN_JOB, 60, now=now + 60)
    with transaction(runtime.db) as session:
        nudge(session, SCAN_JOB)
    assert take_tick(runtime.db, SCAN_JOB, 60, now=now + 61)
    assert not take_tick(runtime.db, SCAN_JOB, 60, now=now + 62)
    assert take_tick(runtime.db, RETENTION_JOB, 3600, now=now)  # each job its own tick


async def test_a_competition_created_elsewhere_invites_within_seconds(runtime: Runtime) -> None:
    """`kominn campaigns create` (another process) nudges the scan: the running scheduler
    queues and sends the invitations at its next look, not at the next minute's scan."""
    sender = RecordingSender()
    app = App(runtime)
    app.senders[sender.channel] = sender
    service = SchedulerService(app.runtime, app.senders, dispatch_seconds=0.2,
                               scan_seconds=3600, look_seconds=0.2)
    kari = await asyncio.to_thread(add_person, runtime, "kari")
    with transaction(runtime.db) as session:
        person = session.get(Person, kari)
        assert person is not None
        person.invite_consent = True
        session.add(person)
    await service.start()
    try:
        await until(lambda: take_tick_ran(runtime))  # the start's scan is done: an hour to go
        await asyncio.to_thread(make_campaign, runtime)
        await until(lambda: sender.sent)
    finally:
        await service.stop()
    assert len(sender.sent) == 1 and "Sykkelbyen Asker" in sender.texts()[0]


def take_tick_ran(runtime: Runtime) -> bool:
    with Session(runtime.db) as session:
        row = session.get(JobRun, SCAN_JOB)
        return row is not None and row.ran_at > 0 and not row.due
