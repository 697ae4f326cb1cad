"""Several `kominn run` workers on one PostgreSQL: how throughput and latency grow with the
number of workers until the database or Telegram's ceiling stops them.

1, 2 and 4 workers (`--workers`) in webhook mode behind a round-robin deliverer that
redelivers one update in ten to another worker (tests/several_workers.py), against the fake
Bot API (tests/fakes/telegram_api.py), which answers 429 above 30 messages/s overall. Citizens
walk the whole submission (/ny … "Send inn", benchmarks/telegram_load.py's script). Three loads
per worker count:

  * demand      --citizens citizens starting within --ramp s, 3–10 s from each answer to the
                next tap or typed answer (a realistic evening after a campaign mail);
  * saturation  --closed-citizens citizens acting the moment their answer arrives (closed
                loop), with the bot's ceiling of 30 messages/s: Telegram's limit binds;
  * uncapped    the same closed loop with no ceiling (bot and fake): what the workers and
                the database manage on this machine.

And `freshness`: how soon an idea stored through one worker is offered as similar by another
(two duplicate indexes on the same database, the second asked every 50 ms as a citizen would
be; each worker refreshes at most every 5 s), and what a refresh costs.

Printed per run: updates handled per second, reply latency p50/p95 (an update queued at the
fake → the answer the citizen waits for arriving there), messages per second (mean over the
run, and the busiest second) against the ceiling, 429s, and lost / doubled answers.

    .venv/bin/python benchmarks/workers.py --database-url postgresql+psycopg://…/kominn_bench
        [--workers 1 2 4] [--citizens 120] [--ramp 10] [--closed-citizens 80]
        [--loads demand saturation uncapped freshness]

The database is emptied (its public schema dropped) before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import fresh_schema  # noqa: E402
from benchmarks.telegram_load import Citizen, Inbox, Stats, pct  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402
from tests.several_workers import RoundRobin, Worker, start_all  # noqa: E402

CEILING = 30


def load_args(args: argparse.Namespace, load: str) -> argparse.Namespace:
    """What the citizens of one load do (telegram_load.Citizen's knobs)."""
    if load == "demand":
        return argparse.Namespace(citizens=args.citizens, think=(3.0, 10.0),
                                  typing=(3.0, 10.0), ramp=args.ramp, timeout=args.timeout)
    return argparse.Namespace(citizens=args.closed_citizens, think=(0.0, 0.0),
                              typing=(0.0, 0.0), ramp=0.0, timeout=args.timeout)


async def one_run(args: argparse.Namespace, workers: int, load: str) -> dict[str, float]:
    fresh_schema(args.database_url)
    rate = 0 if load == "uncapped" else CEILING
    workdir = Path(tempfile.mkdtemp(prefix=f"kominn-workers-{workers}-{load}-"))
    with FakeTelegramAPI(auto_deliver_webhook=False) as fake:
        if rate:
            # Only the overall ceiling is enforced: the citizens here never outpace a chat.
            fake.enforce_limits(CEILING, per_chat_per_second=100, per_chat_burst=100,
                                per_group_per_minute=None)
        pool = [Worker(fake, args.database_url, workdir, n,
                       TELEGRAM_MAX_MESSAGES_PER_SECOND=str(rate), KOMINN_LOG_LEVEL="WARNING")
                for n in range(workers)]
        try:
            await asyncio.to_thread(start_all, pool)
            with RoundRobin(fake, [w.url for w in pool]) as deliverer:
                inbox, stats = Inbox(fake), Stats()
                knobs = load_args(args, load)
                stop = asyncio.Event()
                collector = asyncio.create_task(inbox.run(stop))
                citizens = [Citizen(n, fake, inbox, stats, knobs)
                            for n in range(knobs.citizens)]
                started, wall = time.monotonic(), time.time()
                await asyncio.gather(*(c.submit() for c in citizens))
                seconds = time.monotonic() - started
                await asyncio.sleep(2.0)  # late duplicates would show up here
                stop.set()
                await collector
        finally:
            for worker in pool:
                await asyncio.to_thread(worker.stop)
        inbox.pull()
        per_second = {s: n for s, n in fake.messages_per_second().items() if s >= int(wall)}
        sent = sum(stats.steps.values())
        doubled = sum(max(0, len(inbox.by_chat[chat]) - steps)
                      for chat, steps in stats.steps.items())
        ms = [1000 * v for v in stats.latencies]
        return {"workers": workers, "seconds": seconds, "citizens": knobs.citizens,
                "finished": stats.finished, "updates_per_s": len(stats.latencies) / seconds,
                "p50": pct(ms, .5), "p95": pct(ms, .95),
                "sends_per_s": sum(per_second.values()) / max(1.0, seconds),
                "busiest": max(per_second.values(), default=0), "rate": rate,
                "429s": fake.flood_429s, "lost": stats.lost, "doubled": doubled,
                "updates": sent, "redelivered": deliverer.redeliveries}


def freshness(args: argparse.Namespace, ideas: int = 20) -> str:
    """Seconds from an idea's commit through one worker to another worker offering it."""
    from bot.dedup.index import SimilarIndex
    from storage.db import make_engine, transaction
    from storage.models import Idea, utcnow

    fresh_schema(args.database_url)
    db = make_engine(args.database_url)
    other = SimilarIndex(db)
    other.load()
    delays, refreshes = [], []
    try:
        for n in range(ideas):
            title = f"Vannpost nummer {n} ved turstien i Vardåsen"
            with transaction(db) as session:
                at = utcnow()
                session.add(Idea(title=title, description=f"Drikkevann til turgåere, post {n}, "
                                 "på den lange runden.", channel="telegram", created_at=at,
                                 updated_at=at, status_changed_at=at))
            committed = time.monotonic()
            while True:
                before = other._last_refresh  # noqa: SLF001 - did this call refresh?
                started = time.monotonic()
                found = other.similar(title, f"Drikkevann til turgåere, post {n}")
                if other._last_refresh != before:  # noqa: SLF001
                    refreshes.append(time.monotonic() - started)
                if found and found[0][1] >= 90:
                    delays.append(time.monotonic() - committed)
                    break
                time.sleep(0.05)
            time.sleep(0.7 * (n % 7))  # ideas arrive at any point of the refresh cycle
    finally:
        db.dispose()
    return (f"  freshness  {ideas} ideas stored by one worker, offered by another after "
            f"p50 {pct(delays, .5):.1f} s · max {max(delays):.1f} s "
            f"(refresh every {other.refresh_seconds:g} s; a refresh took "
            f"p50 {1000 * pct(refreshes, .5):.1f} ms)")


def line(r: dict[str, float]) -> str:
    ceiling = f"{r['rate']:g}" if r["rate"] else "none"
    return (f"  {r['workers']:.0f} worker{'s' if r['workers'] > 1 else ' '}  "
            f"{r['finished']:.0f}/{r['citizens']:.0f} done in {r['seconds']:5.1f} s · "
            f"{r['updates_per_s']:5.1f} updates/s · p50 {r['p50']:5.0f} ms · "
            f"p95 {r['p95']:5.0f} ms · sends {r['sends_per_s']:4.1f}/s "
            f"(busiest second {r['busiest']:.0f}, ceiling {ceiling}) · 429s {r['429s']:.0f} · "
            f"lost {r['lost']:.0f} · doubled {r['doubled']:.0f} "
            f"({r['redelivered']:.0f} of {r['updates']:.0f} updates redelivered)")


async def main_async(args: argparse.Namespace) -> None:
    print(f"Several workers on PostgreSQL ({args.database_url.rsplit('@', 1)[-1]}), webhook "
          f"round-robin with one redelivery in ten; fake Bot API enforcing {CEILING}/s "
          "(except uncapped)")
    titles = {"demand": f"demand: {args.citizens} citizens within {args.ramp:g} s, 3–10 s "
                        "think time",
              "saturation": f"saturation: {args.closed_citizens} citizens, closed loop, "
                            f"ceiling {CEILING}/s",
              "uncapped": f"uncapped: {args.closed_citizens} citizens, closed loop, "
                          "no ceiling"}
    for load in args.loads:
        if load == "freshness":
            print(freshness(args), flush=True)
            continue
        print(titles[load], flush=True)
        for workers in args.workers:
            print(line(await one_run(args, workers, load)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True,
                        help="PostgreSQL (emptied before each run)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--loads", nargs="+",
                        default=["demand", "saturation", "uncapped", "freshness"],
                        choices=["demand", "saturation", "uncapped", "freshness"])
    parser.add_argument("--citizens", type=int, default=120)
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--closed-citizens", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("several workers need PostgreSQL: --database-url postgresql+psycopg://…")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
