"""Fault suite, part 2: the database unavailable for a few seconds while messages arrive,
through the real python-telegram-bot stack (TelegramService polling the fake Bot API).

The outage depends on the database under test:
* SQLite: another connection holds the write lock (`BEGIN EXCLUSIVE`) for 3 s. `kominn run`
  waits up to 30 s for a lock (busy timeout) before the engine even sees an error; here the
  bot's busy timeout is cut to 0.1 s so the engine's own retries (bot/conversation/engine.py) are
  what carries the updates through.
* PostgreSQL: the test database refuses connections for 3 s and every session on it is
  terminated (`ALTER DATABASE … ALLOW_CONNECTIONS false` + `pg_terminate_backend`), which is
  what clients see of a restart, without touching other databases on the cluster (other test
  runs share it). With `KOMINN_FAULT_PG_RESTART=1` the local cluster is really stopped for 3 s
  and started again (`pg_ctlcluster <version> main stop/start`; root, local cluster only).

Must hold: every message that arrived during the outage is answered once it is over, exactly
once, no apology for a failure is sent, every idea pressed "Send inn" for exists once, and all
replies are recorded as delivered (nothing is re-sent at the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from bot.followups.dispatcher import dispatch
from bot.i18n import translator
from bot.ideas import book
from bot.ideas.book import Status
from bot.runtime import Runtime
from storage.db import make_engine, transaction
from storage.models import Outbox
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_faults import ASK_TITLE, Burst, ideas_by_author, receipts_sent, undelivered_updates
from tests.test_telegram import running

OUTAGE_SECONDS = 3.0
SEND_IN = 6  # the step of Walker.script() that presses "Send inn"
APOLOGY = translator("nb")("telegram.error")


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def short_busy_timeout(runtime: Runtime) -> None:
    """The bot's SQLite connections give up on a lock after 0.1 s instead of 30 s."""

    @event.listens_for(runtime.db, "connect")
    def _busy(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute("PRAGMA busy_timeout=100")

    runtime.db.dispose()


@contextlib.asynccontextmanager
async def sqlite_locked(database: str) -> AsyncIterator[None]:
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _admin_sql(url: str, *statements: str) -> None:
    """Run statements on the cluster's `postgres` database (ours may refuse connections)."""
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


@contextlib.asynccontextmanager
async def postgres_unavailable(url: str) -> AsyncIterator[None]:
    name = make_url(url).database
    await asyncio.to_thread(
        _admin_sql, url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    try:
        yield
    finally:
        await asyncio.to_thread(_admin_sql, url,
                                f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@contextlib.asynccontextmanager
async def postgres_restarted() -> AsyncIterator[None]:
    version = sorted(os.listdir("/usr/lib/postgresql"), key=float)[-1]
    await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", version, "main", "stop"],
                            check=True)
    try:
        yield
    finally:
        await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", version, "main", "start"],
                                check=True)


def outage(runtime: Runtime) -> contextlib.AbstractAsyncContextManager[None]:
    url = runtime.settings.database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        short_busy_timeout(runtime)
        return sqlite_locked(str(Path(parsed.database or "")))
    if os.environ.get("KOMINN_FAULT_PG_RESTART") == "1":
        assert parsed.host in ("127.0.0.1", "localhost"), "restart only a local cluster"
        return postgres_restarted()
    return postgres_unavailable(url)


async def test_database_unavailable_for_a_few_seconds(
        runtime: Runtime, fake: FakeTelegramAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kominn")
    sending = Burst(fake, citizens=8, first=820_000)  # press "Send inn" during the outage
    sending.hold_at = SEND_IN
    starting = Burst(fake, citizens=4, first=821_000)  # start a submission during it
    # Answered just before: their replies are on the way (slowly) when the outage begins,
    # so recording them as delivered falls into it.
    answered = Burst(fake, citizens=3, first=822_000)
    away = outage(runtime)
    async with running(runtime, fake):
        sending.start()
        await asyncio.to_thread(sending.run_until, lambda: sending.parked == 8, 30)
        fake.delay("sendMessage", 1.0, n=3)
        answered.start()
        ids = {str(w.update_ids[ASK_TITLE]) for w in answered.walkers.values()}
        await fake.await_condition(lambda: ids <= undelivered_updates(runtime.db))
        async with away:
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            sending.release()
            starting.start()
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            # Nothing could be stored yet, so nothing was answered.
            sending.pump()
            assert sending.finished == 0
        await asyncio.to_thread(sending.run_until, lambda: sending.finished == 8, 60)
        await asyncio.to_thread(starting.run_until, lambda: starting.finished == 4, 60)
        await asyncio.to_thread(answered.run_until, lambda: answered.finished == 3, 60)
        await asyncio.sleep(0.3)  # a late duplicate would show up here
        for burst in (sending, starting, answered):
            burst.pump()

    # The engine met the outage and retried (otherwise this test proved nothing).
    retries = [r for r in caplog.records if getattr(r, "event", None) == "db_retry"]
    assert retries
    # Everyone's idea exists once and was answered once; nobody got an apology.
    stored = ideas_by_author(runtime.db)
    for burst in (sending, starting, answered):
        for user_id, walker in burst.walkers.items():
            assert [title for _, title in stored[user_id]] == [walker.title]
            assert receipts_sent(burst)[user_id] == {stored[user_id][0][0]}
            assert APOLOGY not in [r["plain_text"] for r in walker.inbox]
        assert burst.duplicates() == {}
        assert burst.unexpected() == []
    assert undelivered_updates(runtime.db) == set()
    assert fake.pending_updates() == []
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
    bursts = (sending, starting, answered)
    print(f"\nfault suite, database away {OUTAGE_SECONDS:g} s "
          f"({make_url(runtime.settings.database_url).get_backend_name()}): updates sent "
          f"{sum(b.updates_sent for b in bursts)}, faults injected 1 outage "
          f"({len(retries)} engine retries), ideas lost 0, duplicates sent "
          f"{sum(sum(b.duplicates().values()) for b in bursts)}")


async def test_notice_sent_during_an_outage_is_recorded_once_it_is_over(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    """The scheduler's dispatcher sends a notice; the database goes away before it can record
    it as sent. Recording is retried: the row ends `sent` (not left `sending` until its lease
    runs out, when another round would send it a second time)."""
    author = Burst(fake, citizens=1, first=823_000)
    away = outage(runtime)
    async with running(runtime, fake) as service:
        author.start()
        await asyncio.to_thread(author.run_until, lambda: author.finished == 1, 30)
        with transaction(runtime.db) as session:
            idea = book.get_idea(session, 1)
            runtime.ideas.set_status(session, idea, Status.USEFUL, by="test", note="Vi ser på det")
        fake.delay("sendMessage", 1.0, n=1)  # the notice is on its way when the outage starts
        sending = asyncio.create_task(dispatch(runtime.db, runtime.settings,
                                               runtime.features.renderers,
                                               {"telegram": service.sender}))
        await fake.await_condition(lambda: outbox_states(runtime) == ["sending"])
        async with away:
            await asyncio.sleep(OUTAGE_SECONDS)
        result = await sending
    assert result.sent == 1
    assert outbox_states(runtime) == ["sent"]
    assert len([t for t in fake.texts(823_000) if "Vi ser på det" in t]) == 1


def outbox_states(runtime: Runtime) -> list[str]:
    with Session(runtime.db) as session:
        return [row.state for row in session.exec(select(Outbox))]
