"""Benchmark the competition broadcast: invite N consenting citizens through Telegram.

The bot is `kominn run` in a child process (as operators run it): the Telegram service
(python-telegram-bot 22, its HTTP layer and flood limiter) and the scheduler (APScheduler: the
follow-up scan queues one `campaign_invite` per person, the dispatcher delivers). `--inline`
builds the same services with `bot.app.build()` in this process instead (then the fake and
the bot share one interpreter, and a long garbage collection stalls both). The Bot API is the
fake (tests/fakes/telegram_api.py) with Telegram's limits enforced (30 messages/s overall, 1
per second per chat), so a message sent too fast is refused with a 429 as Telegram would.

    .venv/bin/python benchmarks/broadcast.py                      # 10,000 people, SQLite file
    .venv/bin/python benchmarks/broadcast.py --n 1000 [--inline]
    .venv/bin/python benchmarks/broadcast.py --db postgresql+psycopg://kominn:kominn@127.0.0.1:5432/kominn_bench

The database is emptied and migrated first (use a scratch database). Printed:

* queueing: how long the scan took to queue the invitations;
* delivery: messages/s over the broadcast (first to last message) beside Telegram's ceiling
  of 30/s, the busiest and the median full second as counted by the fake Bot API, the time
  to finish (from start to the last message);
* 429s the fake gave and how many of them were left unhandled (a row that ended `failed` or
  was never sent), duplicates (a person with more than one invitation) and losses (a
  consenting person without one).

Quiet hours are off for the run (KOMINN_QUIET_HOURS=off): a night run would otherwise wait
for the morning, which is what the tests check. Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from benchmarks.common import fresh_schema, kominn_env, start_kominn_run, stop  # noqa: E402
from bot.app import App, build  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.features import campaigns  # noqa: E402
from bot.runtime import open_runtime  # noqa: E402
from storage.db import transaction  # noqa: E402
from storage.models import Outbox, Person, utcnow  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

CEILING = 30  # Telegram: about 30 messages per second for a bot, overall
FIRST_CHAT = 10_000_000
DONE_STATES = ("sent", "failed", "cancelled")


def seed_people(db: Any, n: int) -> list[str]:
    """N Telegram citizens who asked for invitations, in one bulk insert."""
    chats = [str(FIRST_CHAT + i) for i in range(n)]
    rows = [{"channel": "telegram", "channel_user_id": chat, "chat_id": chat,
             "display_name": f"Innbygger {i}", "language": "nb", "invite_consent": True,
             "created_at": utcnow()} for i, chat in enumerate(chats)]
    with transaction(db) as session:
        session.execute(insert(Person), rows)
        campaigns.create(session, title="Sykkelbyen Asker",
                         question="Hvordan kan vi få flere til å sykle til skolen?",
                         opens_at=utcnow() - timedelta(minutes=1),
                         closes_at=utcnow() + timedelta(days=14), by="benchmark")
    return chats


def progress(db: Any) -> tuple[int, int]:
    """(invitations queued, invitations finished: sent, failed or cancelled)."""
    with Session(db) as session:
        queued = session.exec(select(func.count()).select_from(Outbox).where(
            Outbox.kind == "campaign_invite")).one()
        done = session.exec(select(func.count()).select_from(Outbox).where(
            Outbox.kind == "campaign_invite", col(Outbox.state).in_(DONE_STATES))).one()
    return queued, done


async def wait_until_done(db: Any, n: int, started: float, timeout: float,
                          alive: Any = lambda: True) -> float:
    """Poll the outbox until every invitation is finished; when all were queued."""
    queued_at = float("nan")
    last_report = started
    while time.time() - started < timeout and alive():
        await asyncio.sleep(0.5)
        queued, done = await asyncio.to_thread(progress, db)
        if queued >= n and queued_at != queued_at:
            queued_at = time.time()
        if time.time() - last_report >= 15:
            last_report = time.time()
            print(f"  … {time.time() - started:5.0f} s: queued {queued}, finished {done}",
                  flush=True)
        if queued >= n and done >= queued:
            break
    return queued_at


async def broadcast_inline(app: App, n: int, timeout: float) -> dict[str, float]:
    """Start the services here, wait until every invitation is finished, stop them."""
    started = time.time()
    for service in app.services:
        await service.start()
    try:
        queued_at = await wait_until_done(app.runtime.db, n, started, timeout)
    finally:
        for service in reversed(app.services):
            await service.stop()
    return {"started": started, "queued_at": queued_at}


def bot_env(settings: Settings) -> dict[str, str]:
    return kominn_env(DATABASE_URL=settings.database_url,
                      TELEGRAM_BOT_TOKEN=settings.telegram_bot_token or "",
                      TELEGRAM_API_BASE_URL=settings.telegram_api_base_url,
                      KOMINN_HTTP_PORT="0", KOMINN_QUIET_HOURS="off", KOMINN_LOG_LEVEL="WARNING")


async def broadcast_process(settings: Settings, db: Any, n: int, timeout: float,
                            workdir: Path) -> dict[str, float]:
    """`kominn run` in a child process until every invitation is finished."""
    log_path = workdir / "kominn-run.log"
    started = time.time()
    with log_path.open("wb") as log:
        proc = start_kominn_run(bot_env(settings), workdir, log)
        try:
            queued_at = await wait_until_done(db, n, started, timeout,
                                              lambda: proc.poll() is None)
        finally:
            stop(proc)
    if proc.returncode not in (0, -signal.SIGTERM):
        print(f"kominn run exited with {proc.returncode}; its log: {log_path}")
    return {"started": started, "queued_at": queued_at}


def report(fake: FakeTelegramAPI, db: Any, chats: list[str], times: dict[str, float]) -> None:
    sent = [r for r in fake.sent() if r["method"] == "sendMessage"]
    per_chat = Counter(str(r["chat_id"]) for r in sent)
    stamps = sorted(r["time"] for r in sent)
    with Session(db) as session:
        states = Counter(session.exec(select(Outbox.state).where(
            Outbox.kind == "campaign_invite")).all())
    if not stamps:
        print("nothing was sent")
        return
    span = stamps[-1] - stamps[0]
    per_second = fake.messages_per_second()
    seconds = sorted(per_second)
    full = [per_second[s] for s in seconds[1:-1]] or [len(stamps)]
    rate = (len(stamps) - 1) / span if span > 0 else float("nan")
    unhandled = states.get("failed", 0) + sum(
        count for state, count in states.items() if state not in DONE_STATES)
    duplicates = sum(1 for count in per_chat.values() if count > 1)
    lost = sum(1 for chat in chats if per_chat.get(chat, 0) == 0)
    print(f"queued {sum(states.values())} invitations in "
          f"{times['queued_at'] - times['started']:.1f} s from start (the scan runs at start)")
    print(f"delivery: {rate:.2f} messages/s over {span:.1f} s "
          f"(Telegram's ceiling: {CEILING}/s, {100 * rate / CEILING:.0f} %)")
    print(f"  per second (fake's count): busiest {max(per_second.values())}, "
          f"median full second {statistics.median(full):.0f}, "
          f"seconds over {CEILING}: {sum(1 for c in per_second.values() if c > CEILING)}")
    over = [(second - seconds[0], per_second[second]) for second in seconds
            if per_second[second] > CEILING]
    if over:
        print(f"  seconds over {CEILING} (seconds into the run, count): {over[:20]}")
    print(f"  time to finish: {stamps[-1] - times['started']:.1f} s from start "
          f"({len(stamps)} messages)")
    print(f"429s from the fake: {fake.flood_429s} seen, {unhandled} unhandled "
          f"(outbox states {dict(states)})")
    print(f"duplicates: {duplicates}   lost: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="consenting citizens")
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up after this many seconds (default: n/20 + 120)")
    parser.add_argument("--inline", action="store_true",
                        help="run the services in this process instead of `kominn run`")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    url = args.db or f"sqlite:///{workdir}/broadcast.db"
    fresh_schema(url)
    logging.basicConfig(level=logging.WARNING)
    with FakeTelegramAPI() as fake:
        fake.enforce_limits(global_per_second=CEILING, per_chat_per_second=1)
        settings: Settings = load_settings(
            _env_file=None, database_url=url, quiet_hours="off",
            telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url,
            telegram_webhook_url=None, slack_bot_token=None)
        runtime = open_runtime(settings)
        print(f"database: {runtime.db.dialect.name}; {args.n} consenting citizens; "
              f"TELEGRAM_MAX_MESSAGES_PER_SECOND={settings.telegram_max_messages_per_second:g}; "
              f"bot: {'in this process' if args.inline else '`kominn run` (child process)'}")
        chats = seed_people(runtime.db, args.n)
        timeout = args.timeout or args.n / 20 + 120
        if args.inline:
            times = asyncio.run(broadcast_inline(build(runtime), args.n, timeout))
        else:
            times = asyncio.run(broadcast_process(settings, runtime.db, args.n, timeout,
                                                  workdir))
        report(fake, runtime.db, chats, times)
        runtime.db.dispose()


if __name__ == "__main__":
    main()
