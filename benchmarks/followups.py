"""Benchmark the follow-up outbox: rule scans, dispatcher throughput, and several workers
sharing one database.

    .venv/bin/python benchmarks/followups.py                       # SQLite file in a temp dir
    .venv/bin/python benchmarks/followups.py --db postgresql+psycopg://kominn:kominn@127.0.0.1:5432/kominn_bench

The database is emptied and migrated first (use a scratch database). Printed:

* `create_due` over `--ideas` ideas (a third still new past the stale period, a third realised
  past the benefit check, each with a consenting author): first scan (queues), second scan
  (finds everything already queued), in seconds;
* dispatcher throughput (rows/s) with a sender that does nothing, one worker;
* the same rows with `--workers` workers in threads (each its own loop and connections):
  rows/s, and a check that every row was sent exactly once.

Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from benchmarks.common import fresh_schema  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.features import assemble  # noqa: E402
from bot.followups.dispatcher import Policy, dispatch  # noqa: E402
from bot.followups.rules import create_due  # noqa: E402
from storage.db import make_engine, transaction  # noqa: E402
from storage.models import Idea, Outbox, Person, StatusChange  # noqa: E402
from storage.outbox import enqueue  # noqa: E402

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


class NullSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.addresses: list[str] = []

    async def send(self, address: str, replies: Any) -> None:
        self.addresses.append(address)


def seed_ideas(db: Any, n: int) -> None:
    old = NOW - timedelta(days=60)
    with transaction(db) as s:
        for i in range(n):
            person = Person(channel="terminal", channel_user_id=f"p{i}", chat_id=f"p{i}",
                            follow_up_consent=True)
            s.add(person)
            s.flush()
            status = ("new", "realised", "useful")[i % 3]
            idea = Idea(title=f"Idé {i}", description="Beskrivelse av idéen.", channel="terminal",
                        status=status, author_id=person.id, created_at=old, updated_at=old,
                        status_changed_at=old)
            s.add(idea)
            s.flush()
            s.add(StatusChange(idea_id=idea.id or 0, to_status=status, at=old, by="bench"))


def seed_rows(db: Any, n: int, prefix: str) -> None:
    with transaction(db) as s:
        for i in range(n):
            enqueue(s, kind="stale_moderator", dedupe_key=f"{prefix}:{i}", channel="slack",
                    address=f"C{i}", payload={"ref": f"KI-{i}", "title": "x", "days": 14},
                    due_at=NOW)


def clear_outbox(db: Any) -> None:
    with transaction(db) as s:
        s.exec(text("DELETE FROM outbox"))  # type: ignore[call-overload]


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument("--ideas", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    fresh_schema(url)
    settings = load_settings(_env_file=None, database_url=url, quiet_hours="off")
    db = make_engine(url)
    print(f"database: {db.dialect.name}")

    seed_ideas(db, args.ideas)
    features = assemble(settings)
    first, created = timed(create_due, db, settings, features.rules, NOW)
    second, again = timed(create_due, db, settings, features.rules, NOW)
    print(f"create_due over {args.ideas} ideas: first {first:.2f} s "
          f"(queued {sum(created.values())}), second {second:.2f} s "
          f"(queued {sum(again.values())})")

    clear_outbox(db)
    seed_rows(db, args.rows, "one")
    sender = NullSender("slack")
    policy = Policy(batch=100, max_batches=10_000)
    elapsed, _ = timed(lambda: asyncio.run(dispatch(db, settings, features.renderers,
                                                    {"slack": sender}, NOW, policy)))
    print(f"dispatch, 1 worker: {args.rows / elapsed:.0f} rows/s ({elapsed:.2f} s)")

    clear_outbox(db)
    seed_rows(db, args.rows, "many")
    senders = [NullSender("slack") for _ in range(args.workers)]
    barrier = threading.Barrier(args.workers)

    def work(s: NullSender) -> None:
        engine = make_engine(url)
        barrier.wait()
        asyncio.run(dispatch(engine, settings, features.renderers, {"slack": s}, NOW, policy))
        engine.dispose()

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    sent = Counter(a for s in senders for a in s.addresses)
    with Session(db) as s:
        states = Counter(r.state for r in s.exec(select(Outbox)))
    print(f"dispatch, {args.workers} workers: {args.rows / elapsed:.0f} rows/s "
          f"({elapsed:.2f} s); per worker {[len(s.addresses) for s in senders]}; "
          f"sent twice: {sum(1 for n in sent.values() if n > 1)}; "
          f"unsent: {args.rows - len(sent)}; states {dict(states)}")
    db.dispose()


if __name__ == "__main__":
    main()
