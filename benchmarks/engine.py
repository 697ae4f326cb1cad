"""Dialog turns per second for complete submissions through the engine.

Two runs in one process, same dialog code, same inputs:
  * sqlite  — the real engine on a SQLite file (WAL): state, update ids and ideas persisted,
              one transaction per turn;
  * memory  — the same pure dialog steps with state and ideas held in memory (the ceiling:
              what the dialog logic alone costs).
Target (issue 2): at least 1,000 turns/s on SQLite on a 2-core machine.

One run takes about a second and varies by ±15 % on a shared virtual machine (SQLite's WAL
checkpoints, neighbours), so the SQLite run is repeated on a fresh file (`--repeat`, default 5)
and every run is printed with the median, which the target is checked against.

    .venv/bin/python benchmarks/engine.py [--people 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_settings  # noqa: E402
from bot.features import assemble  # noqa: E402
from bot.i18n import translator  # noqa: E402
from bot.runtime import open_runtime  # noqa: E402
from dialogs import citizen  # noqa: E402
from dialogs.core import Context, PersonView, State, SubmitIdea  # noqa: E402
from dialogs.types import Incoming  # noqa: E402
from tests.test_dialogs import MemoryPorts  # noqa: E402  (the same in-memory ports)

AREAS = ["Vekst og utvikling", "Areal og transport", "Folkehelse", "Annet"]
PLACES = ["Asker sentrum", "Heggedal", "Vollen", "Slemmestad", "Holmen", "Vettre"]
TOPICS = ["lekeplass", "sykkelvei", "busstopp", "gatelys", "benk", "badeplass", "bibliotek",
          "skolevei", "søppelkasser", "turvei", "parkering", "fotballbane"]


def script(n: int) -> list[tuple[str, str | None]]:
    """One person's submission: (text, button label) turns."""
    topic, place = TOPICS[n % len(TOPICS)], PLACES[n % len(PLACES)]
    return [
        ("/ny", None),
        (f"Ny {topic} nummer {n} ved {place}", None),
        (f"Innbygger {n} foreslår en {topic} ved {place}, fordi det mangler i dag "
         f"og mange ville brukt den hver uke.", None),
        ("", AREAS[n % len(AREAS)]),
        (place, None),
        ("", "Nei"),
        ("", "Min idé er ny"),
        ("", "Send inn"),
    ]


def drive(handle: Callable[[Incoming], list[Any]], people: int) -> tuple[int, float]:
    """Run every person's script turn by turn (interleaved); (turns, seconds)."""
    ids = itertools.count(1)
    last: dict[str, list[Any]] = {}
    turns = 0
    scripts = {f"u{n}": script(n) for n in range(people)}
    started = time.perf_counter()
    for step in range(len(next(iter(scripts.values())))):
        for user, turns_of in scripts.items():
            text, label = turns_of[step]
            choice = None
            if label is not None:
                buttons = [c for r in last.get(user, []) for c in r.choices]
                match = [c for c in buttons if c.label == label]
                if not match:
                    continue  # e.g. no similar ideas were offered
                choice = match[0].payload
            incoming = Incoming("bench", user, text=text, choice=choice, update_id=str(next(ids)))
            last[user] = handle(incoming)
            turns += 1
    return turns, time.perf_counter() - started


def memory_handler() -> Callable[[Incoming], list[Any]]:
    states: dict[str, State] = {}
    ports = MemoryPorts(focus=AREAS)
    ctx = Context(PersonView(1, "nb", None, None), translator("nb"), ports,
                  datetime.now(UTC), assemble(load_settings()).conversation,
                  max_ideas_per_day=10**6)

    def handle(incoming: Incoming) -> list[Any]:
        outcome = citizen.step(states.get(incoming.user_id, State()), incoming,
                               replace(ctx, now=datetime.now(UTC)))
        states[incoming.user_id] = outcome.state
        ports.submitted.extend(e for e in outcome.effects if isinstance(e, SubmitIdea))
        return list(outcome.replies)

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="SQLite runs (fresh file each)")
    args = parser.parse_args()

    os.environ.update(KOMINN_MAX_MESSAGES_PER_MINUTE="1000000", KOMINN_MAX_IDEAS_PER_DAY="1000000")
    rates = []
    for _ in range(max(1, args.repeat)):
        folder = Path(tempfile.mkdtemp())
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.db'}"
        runtime = open_runtime(load_settings(_env_file=None))
        turns, seconds = drive(runtime.engine.handle, args.people)
        runtime.db.dispose()
        rates.append(turns / seconds)
    sqlite_rate = statistics.median(rates)
    turns_mem, seconds_mem = drive(memory_handler(), args.people)
    memory_rate = turns_mem / seconds_mem

    print(f"people: {args.people}, turns per run: {turns} (sqlite) / {turns_mem} (memory)")
    print(f"sqlite file (WAL), engine:  {sqlite_rate:8.0f} turns/s  median of {len(rates)} runs "
          f"({', '.join(f'{r:.0f}' for r in rates)})")
    print(f"in memory (ceiling):        {memory_rate:8.0f} turns/s  ({seconds_mem:.2f} s)")
    print(f"sqlite / ceiling: {sqlite_rate / memory_rate:.1%}; target ≥ 1000 turns/s on sqlite: "
          f"{'met' if sqlite_rate >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
