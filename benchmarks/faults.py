"""The kill -9 fault run at a larger scale, printing its figures.

N citizens (default 300) each walk a whole submission through the fake Bot API as fast as
answers come; `kominn run` (a child process, as operators run it) is killed with SIGKILL K
times (default 4) at random moments of the burst, stays dead for a second while people keep
tapping, and is started again. Printed per round and in total: updates sent, faults injected,
ideas lost (a receipt without its idea, or a citizen who never got one), duplicates sent (an
answer that reached a chat twice: the at-least-once window between sending and recording
it as sent), how many of those fell outside that window (must be 0), and updates that were
stored undelivered at the kills (what the next start re-sent).

    .venv/bin/python benchmarks/faults.py [--citizens 300] [--kills 4] [--rounds 1]
        [--seed 1] [--database-url URL]

Without --database-url each round uses a new SQLite file; another database is emptied and
migrated before each round (use a database of its own).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.common import fresh_schema  # noqa: E402
from storage.db import make_engine  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402
from tests.test_faults import Figures, in_window, kill_during_burst  # noqa: E402


def fresh_database(url: str | None, workdir: Path) -> str:
    if url is None:
        url = f"sqlite:///{workdir / 'kominn.db'}"
    fresh_schema(url)
    return url


def one_round(args: argparse.Namespace, rng: random.Random) -> tuple[Figures, int]:
    workdir = Path(tempfile.mkdtemp(prefix="kominn-faults-"))
    url = fresh_database(args.database_url, workdir)
    db = make_engine(url)
    kill_at = tuple(sorted(rng.uniform(0.05, 0.95) for _ in range(args.kills)))
    try:
        with FakeTelegramAPI() as fake:
            outcome = kill_during_burst(fake, url, db, workdir, citizens=args.citizens,
                                        kill_at=kill_at, timeout=args.timeout)
    finally:
        db.dispose()
    outside = sum(n for key, n in outcome.burst.duplicates().items()
                  if not in_window(outcome.burst, outcome.windows, *key))
    lags = sorted(outcome.figures.lags)
    if lags:
        print(f"  answered but unrecorded at the kills: {len(lags)}, answered "
              f"{lags[len(lags) // 2] * 1000:.0f} ms (median) / {lags[-1] * 1000:.0f} ms (max) "
              "before the kill")
    print(f"  kills at {', '.join(f'{share:.0%}' for share in kill_at)} of the answers: "
          f"{outcome.figures.line()}; duplicates outside the window {outside}; "
          f"lost while down {outcome.figures.lost_while_down}")
    return outcome.figures, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=300)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds the burst may take to reach each point")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"Fault run: {args.citizens} citizens submitting at once, kill -9 of `kominn run` "
          f"{args.kills}× per round, {args.rounds} round(s), "
          f"{args.database_url or 'SQLite (WAL), a new file per round'}")
    total, outside_total = Figures(), 0
    started = time.monotonic()
    for _ in range(args.rounds):
        figures, outside = one_round(args, rng)
        for name in ("updates_sent", "faults_injected", "ideas_lost", "duplicates_sent",
                     "finished", "window", "lost_while_down", "sent_unrecorded"):
            setattr(total, name, getattr(total, name) + getattr(figures, name))
        outside_total += outside
    total.seconds = time.monotonic() - started
    print(f"total: {total.line()}; duplicates outside the window {outside_total}; "
          f"lost while down {total.lost_while_down}")


if __name__ == "__main__":
    main()
