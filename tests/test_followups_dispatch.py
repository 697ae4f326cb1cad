"""The dispatcher: quiet hours, retries with backoff, parking, restarts, concurrent workers."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from adapters import console
from bot.channels import DeliveryError
from bot.followups.dispatcher import Policy, claim, dispatch, quiet_until
from bot.runtime import Runtime, open_runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Outbox
from storage.outbox import enqueue
from tests.test_followups import (
    T0,
    RecordingSender,
    add_idea,
    add_person,
    deliver,
    move,
    rows,
    with_settings,
)

OSLO = ZoneInfo("Europe/Oslo")


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO).astimezone(UTC)  # type: ignore[misc]


# --- quiet hours -------------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "window", "end"), [
    ((2026, 3, 4, 22, 0), (21, 8), (2026, 3, 5, 8, 0)),
    ((2026, 3, 5, 3, 30), (21, 8), (2026, 3, 5, 8, 0)),
    ((2026, 3, 4, 21, 0), (21, 8), (2026, 3, 5, 8, 0)),
    ((2026, 3, 4, 8, 0), (21, 8), None),
    ((2026, 3, 4, 20, 59), (21, 8), None),
    ((2026, 3, 4, 13, 0), (12, 14), (2026, 3, 4, 14, 0)),
    ((2026, 3, 4, 11, 0), (12, 14), None),
    ((2026, 3, 28, 23, 0), (21, 8), (2026, 3, 29, 8, 0)),  # the night clocks go forward
    ((2026, 3, 4, 22, 0), (8, 8), None),
])
def test_quiet_window(local: tuple[int, ...], window: tuple[int, int],
                      end: tuple[int, ...] | None) -> None:
    expected = oslo(*end) if end else None
    assert quiet_until(oslo(*local), window, OSLO) == expected


def test_quiet_hours_hold_citizen_notices_until_morning(runtime: Runtime) -> None:
    rt = with_settings(runtime, quiet_hours="21-08")
    evening = oslo(2026, 3, 4, 22, 15)
    kari = add_person(rt, "kari")
    number = add_idea(rt, kari, at=evening - timedelta(days=1))
    move(rt, number, Status.USEFUL, evening)
    with transaction(rt.db) as s:
        enqueue(s, kind="stale_moderator", dedupe_key="staff", channel="slack", address="CMOD",
                payload={"ref": "KI-1", "title": "x", "days": 14}, due_at=evening)
    citizen, staff = RecordingSender(), RecordingSender("slack")
    senders = {"terminal": citizen, "slack": staff}

    result = deliver(rt, senders, evening)
    assert result.postponed == 1 and result.sent == 1
    assert citizen.sent == [] and len(staff.sent) == 1  # staff channels are not delayed
    [row] = rows(rt, "status_changed")
    assert row.state == "pending" and row.due_at == oslo(2026, 3, 5, 8, 0)
    assert deliver(rt, senders, oslo(2026, 3, 5, 7, 59)).sent == 0
    assert deliver(rt, senders, oslo(2026, 3, 5, 8, 0)).sent == 1
    assert len(citizen.sent) == 1


def test_quiet_hours_off_sends_at_night(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    number = add_idea(runtime, kari)
    night = oslo(2026, 3, 5, 2, 0)
    move(runtime, number, Status.USEFUL, night)
    assert deliver(runtime, RecordingSender(), night).sent == 1


# --- failures ----------------------------------------------------------------------------------

def queue_one(rt: Runtime, at: datetime = T0) -> None:
    number = add_idea(rt, add_person(rt, "kari"), at=at)
    move(rt, number, Status.USEFUL, at)


def test_failed_delivery_is_retried_with_backoff_then_parked(runtime: Runtime) -> None:
    queue_one(runtime)
    sender = RecordingSender(fail=100)
    policy = {"max_attempts": 4, "base_delay": timedelta(seconds=30)}
    now = T0
    for attempt, delay in enumerate((30, 60, 120), start=1):
        result = deliver(runtime, sender, now, **policy)
        assert result.retried == 1
        [row] = rows(runtime)
        assert (row.state, row.attempts, row.last_error) == ("pending", attempt, "channel down")
        assert row.due_at == now + timedelta(seconds=delay)
        # not before its time
        assert deliver(runtime, sender, row.due_at - timedelta(seconds=1), **policy).retried == 0
        now = row.due_at
    result = deliver(runtime, sender, now, **policy)
    assert result.failed == 1
    [row] = rows(runtime)
    assert (row.state, row.attempts) == ("failed", 4)
    assert deliver(runtime, sender, now + timedelta(days=1), **policy).failed == 0
    assert sender.sent == []


def test_the_first_retry_waits_the_configured_seconds(runtime: Runtime) -> None:
    """KOMINN_RETRY_SECONDS: the dispatcher's default policy (as `kominn run`'s scheduler
    and `kominn jobs run-due` use it) backs off from the settings' delay."""
    queue_one(runtime)
    rt = with_settings(runtime, retry_seconds=5.0)
    sender = RecordingSender(fail=100)
    now = T0
    for attempt, delay in enumerate((5, 10, 20), start=1):
        result = asyncio.run(dispatch(rt.db, rt.settings, rt.features.renderers,
                                      {sender.channel: sender}, now))
        assert result.retried == 1
        [row] = rows(rt)
        assert (row.attempts, row.due_at) == (attempt, now + timedelta(seconds=delay))
        now = row.due_at


def test_a_retry_that_succeeds_sends_once(runtime: Runtime) -> None:
    queue_one(runtime)
    sender = RecordingSender(fail=1, error=ConnectionError("reset"))
    assert deliver(runtime, sender, T0).retried == 1
    assert deliver(runtime, sender, T0 + timedelta(minutes=1)).sent == 1
    [row] = rows(runtime)
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(sender.sent) == 1


def test_permanent_error_parks_at_once_and_retry_after_is_honoured(runtime: Runtime) -> None:
    queue_one(runtime)
    blocked = RecordingSender(fail=1, error=DeliveryError("blocked", permanent=True))
    assert deliver(runtime, blocked, T0).failed == 1
    with transaction(runtime.db) as s:
        enqueue(s, kind="stale_moderator", dedupe_key="flood", channel="slack", address="C",
                payload={"ref": "KI-1", "title": "x", "days": 1}, due_at=T0)
    flood = RecordingSender("slack", fail=1, error=DeliveryError("429", retry_after=600))
    assert deliver(runtime, flood, T0).retried == 1
    assert rows(runtime, "stale_moderator")[0].due_at == T0 + timedelta(seconds=600)


def test_row_without_sender_waits(runtime: Runtime) -> None:
    queue_one(runtime)
    assert deliver(runtime, RecordingSender("telegram"), T0).sent == 0
    assert rows(runtime)[0].state == "pending"


# --- restarts ----------------------------------------------------------------------------------

def test_restart_between_queued_and_sent_sends_exactly_once(runtime: Runtime, settings) -> None:  # type: ignore[no-untyped-def]
    queue_one(runtime)
    runtime.db.dispose()  # the process that queued it is gone
    fresh = open_runtime(settings)
    try:
        sender = RecordingSender()
        assert deliver(fresh, sender, T0).sent == 1
        assert deliver(fresh, sender, T0 + timedelta(hours=1)).sent == 0
        assert deliver(runtime, sender, T0 + timedelta(days=1)).sent == 0
        assert len(sender.sent) == 1
    finally:
        fresh.db.dispose()


def test_worker_dying_after_claim_is_covered_by_the_lease(runtime: Runtime) -> None:
    queue_one(runtime)
    lease = timedelta(minutes=5)
    taken = claim(runtime.db, runtime.settings, ["terminal"], T0, Policy(lease=lease))
    assert len(taken) == 1  # ... and this worker dies before sending
    sender = RecordingSender()
    assert deliver(runtime, sender, T0 + lease - timedelta(seconds=1)).sent == 0
    assert deliver(runtime, sender, T0 + lease).sent == 1
    assert deliver(runtime, sender, T0 + 2 * lease).sent == 0
    assert len(sender.sent) == 1 and rows(runtime)[0].attempts == 2


# --- several workers ---------------------------------------------------------------------------

class SlowSender(RecordingSender):
    async def send(self, address: str, replies: object) -> None:
        await asyncio.sleep(0.005)  # let the other workers run in between
        await super().send(address, replies)


def test_concurrent_dispatchers_never_double_send(runtime: Runtime) -> None:
    """Four workers (threads, each with its own event loop and connections) race for the same
    200 rows: on PostgreSQL through SKIP LOCKED, on SQLite through the conditional claim."""
    n_rows, n_workers = 200, 4
    with transaction(runtime.db) as s:
        for i in range(n_rows):
            enqueue(s, kind="stale_moderator", dedupe_key=f"race:{i}", channel="slack",
                    address=f"C{i}", payload={"ref": f"KI-{i}", "title": "x", "days": 1},
                    due_at=T0)
    senders = [SlowSender("slack") for _ in range(n_workers)]
    barrier = threading.Barrier(n_workers)
    errors: list[BaseException] = []

    def work(sender: SlowSender) -> None:
        try:
            barrier.wait()
            asyncio.run(dispatch(runtime.db, runtime.settings, runtime.features.renderers,
                                 {"slack": sender}, T0, Policy(batch=10, max_batches=100)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    addresses = [a for s in senders for a, _ in s.sent]
    assert len(addresses) == n_rows and len(set(addresses)) == n_rows
    assert sum(1 for s in senders if s.sent) >= 2  # the work really was shared
    with Session(runtime.db) as s:
        assert {r.state for r in s.exec(select(Outbox))} == {"sent"}


def test_personal_notices_go_before_a_mass_mailing(runtime: Runtime) -> None:
    """A broadcast queued earlier must not hold back a citizen's status news."""
    with transaction(runtime.db) as s:
        for i in range(30):
            enqueue(s, kind="campaign_invite", dedupe_key=f"invite:{i}", channel="terminal",
                    address=f"p{i}", payload={}, due_at=T0 - timedelta(minutes=5))
        enqueue(s, kind="status_changed", dedupe_key="status:1", channel="terminal",
                address="kari", payload={}, due_at=T0)
    taken = claim(runtime.db, runtime.settings, ["terminal"], T0, Policy(batch=10))
    assert [c.kind for c in taken][:1] == ["status_changed"]
    assert [c.kind for c in taken[1:]] == ["campaign_invite"] * 9


# --- the terminal: shown when the person comes back --------------------------------------------

def test_terminal_notices_are_shown_at_the_next_chat(runtime: Runtime) -> None:
    queue_one(runtime)
    out = io.StringIO()
    console.run(runtime.engine, "kari", stdin=io.StringIO("/status KI-1\n"), out=out)
    text = out.getvalue()
    assert "Nytt om idéen din KI-1" in text and "1) Se status" in text
    assert text.index("Nytt om idéen din") < text.index("Status:")
    assert rows(runtime)[0].state == "sent"
    again = io.StringIO()
    console.run(runtime.engine, "kari", stdin=io.StringIO(""), out=again)
    assert "Nytt om idéen din" not in again.getvalue()
