"""Citizens submitting ideas at the same time through Telegram: the real stack end to end.

N simulated citizens (default 200) each complete a whole submission (/ny, title, description,
focus-area button, place, consent button, [similar ideas: "Min idé er ny"], "Send inn") against
the fake Bot API (tests/fakes/telegram_api.py). The bot is `kominn run` in a child process
(default; as operators run it) or the TelegramService in this process (`--inline`), polling
the fake, on SQLite (WAL) unless `--database-url` says otherwise.

Citizens start at random moments within --ramp seconds. Each waits for the bot's answer to a
step, then acts after a random pause: --think before a tap or command, --typing before a typed
answer (defaults: 2–6 s and 8–30 s, people on a phone; `--think 0 0 --typing 0 0 --ramp 0`
is a closed-loop stress test). Printed:
  * updates handled per second over the load phase, and how many citizens were mid-submission
    at once;
  * reply latency p50/p95/max: from enqueuing an update at the fake to the arrival there of
    the answer the citizen waits for (and of the first answer message);
  * lost replies (a step never answered within --timeout) and duplicated replies (more
    messages in a chat than steps taken), and 429s the fake gave (with --fake-limits).

    .venv/bin/python benchmarks/telegram_load.py [--citizens 200] [--ramp 30]
        [--think 2 6] [--typing 8 30] [--rate 30] [--fake-limits] [--inline]
        [--database-url URL]

`--rate` is TELEGRAM_MAX_MESSAGES_PER_SECOND for the bot (30, Telegram's guideline; 0 = no
overall cap). Every step costs one message, so once citizens together take more than ~30 steps
a second, answers queue behind the cap and latency grows with the run: that is Telegram's
limit, not the bot's; `--rate 0` shows what the bot itself needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import kominn_env, start_kominn_run, stop  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402
from tests.test_faults import (  # noqa: E402  (the answers a walking citizen expects)
    ASK_AREA,
    ASK_CONSENT,
    ASK_DESCRIPTION,
    ASK_PLACE,
    ASK_TITLE,
    RECEIPT,
    SIMILAR,
    SUMMARY,
)

AREAS = ["Vekst og utvikling", "Areal og transport", "Folkehelse", "Annet",
         "Tettsteder og knutepunkter"]
PLACES = ["Asker sentrum", "Heggedal", "Vollen", "Slemmestad", "Holmen", "Vettre", "Drengsrud"]
THINGS = ["lekeplass", "sykkelvei", "busstopp", "gatelys", "benker", "badeplass", "bibliotek",
          "skolevei", "søppelkasser", "turvei", "parkering", "fotballbane", "hundepark",
          "ladestasjon", "gangbro", "skatepark", "grillplass", "bysykler", "drikkefontene"]
WHY = ["barna trenger et trygt sted", "eldre vil hvile underveis", "det er mørkt om vinteren",
       "mange sykler hit hver dag", "det flyter over i helgene", "turistene finner ikke fram",
       "ungdommen mangler et samlingssted", "bussen stopper for langt unna"]




@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # to the awaited answer
    first: list[float] = field(default_factory=list)  # to the first answer message
    steps: dict[int, int] = field(default_factory=dict)  # chat → steps answered or tried
    spans: list[tuple[float, float]] = field(default_factory=list)  # (first act, receipt)
    lost: int = 0
    finished: int = 0


class Inbox:
    """Bot messages per chat, collected from the fake by one poller for all citizens."""

    def __init__(self, fake: FakeTelegramAPI) -> None:
        self.fake = fake
        self.by_chat: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.events: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.seq = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.pull()
            await asyncio.sleep(0.005)
        self.pull()

    def pull(self) -> None:
        # `fake.sent(after=…)` scans every record each time; 200 times a second over
        # thousands of records that would cost this process more CPU than the bot spends.
        # The fake appends records in order, so read on from where we stopped.
        with self.fake._lock:  # noqa: SLF001 - a cursor over the fake's record list
            new = [dict(r) for r in self.fake._sent[self.seq:]]  # noqa: SLF001
        self.seq += len(new)
        for record in new:
            self.by_chat[record["chat_id"]].append(record)
            self.events[record["chat_id"]].set()


class Citizen:
    def __init__(self, number: int, fake: FakeTelegramAPI, inbox: Inbox, stats: Stats,
                 args: argparse.Namespace) -> None:
        self.id = 700_000 + number
        self.n = number
        self.fake, self.inbox, self.stats = fake, inbox, stats
        self.think, self.typing = tuple(args.think), tuple(args.typing)
        self.ramp, self.timeout = args.ramp, args.timeout
        self.rng = random.Random(number)
        stats.steps[self.id] = 0

    async def step(self, act: Callable[[], object], expect: tuple[str, ...]) -> str | None:
        """Act, then wait for the answer that starts with one of `expect`; its text."""
        messages = self.inbox.by_chat[self.id]
        seen = len(messages)
        self.stats.steps[self.id] += 1
        started = time.time()
        act()
        deadline = time.monotonic() + self.timeout
        event = self.inbox.events[self.id]
        while True:
            event.clear()  # the collector runs on this loop: clear-then-scan misses nothing
            for record in messages[seen:]:
                text = record["plain_text"] or ""
                if text.startswith(expect):
                    self.stats.first.append(messages[seen]["time"] - started)
                    self.stats.latencies.append(record["time"] - started)
                    return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stats.lost += 1
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def pause(self, typing: bool = False) -> None:
        """A person reading the answer, then tapping (or typing the next answer)."""
        await asyncio.sleep(self.rng.uniform(*(self.typing if typing else self.think)))

    def say(self, text: str) -> Callable[[], object]:
        return lambda: self.fake.user_message(self.id, text, first_name=f"Innbygger{self.n}")

    def press(self, label: str) -> Callable[[], object]:
        return lambda: self.fake.press_button(self.id, label)

    async def submit(self) -> None:
        rng = self.rng
        thing, place, why = rng.choice(THINGS), rng.choice(PLACES), rng.choice(WHY)
        title = f"{thing.capitalize()} ved {place} ({self.n})"
        description = f"Jeg foreslår {thing} ved {place}, fordi {why}. Hilsen innbygger {self.n}."
        # (act, the answer it waits for, whether the next act is typed)
        script: list[tuple[Callable[[], object], tuple[str, ...], bool]] = [
            (self.say("/ny"), (ASK_TITLE,), True),
            (self.say(title), (ASK_DESCRIPTION,), True),
            (self.say(description), (ASK_AREA,), False),
            (self.press(rng.choice(AREAS)), (ASK_PLACE,), True),
            (self.say(place), (ASK_CONSENT,), False),
            (self.press("Ja"), (SUMMARY, SIMILAR), False),
        ]
        await asyncio.sleep(rng.uniform(0, self.ramp))
        self.began = time.monotonic()
        for act, expect, typing in script:
            text = await self.step(act, expect)
            if text is None:
                return
            await self.pause(typing)
        if text.startswith(SIMILAR):
            if await self.step(self.press("Min idé er ny"), (SUMMARY,)) is None:
                return
            await self.pause()
        if await self.step(self.press("Send inn"), (RECEIPT,)) is not None:
            self.stats.finished += 1
            self.stats.spans.append((self.began, time.monotonic()))


# --- the bot -----------------------------------------------------------------------------------

def bot_env(fake: FakeTelegramAPI, database_url: str, rate: float) -> dict[str, str]:
    return kominn_env(DATABASE_URL=database_url, TELEGRAM_BOT_TOKEN=fake.token,
                      TELEGRAM_API_BASE_URL=fake.base_url,
                      TELEGRAM_MAX_MESSAGES_PER_SECOND=str(rate), KOMINN_HTTP_PORT="0",
                      KOMINN_QUIET_HOURS="off")


async def run_inline(args: argparse.Namespace, fake: FakeTelegramAPI, database_url: str,
                     load: Callable[[], Any]) -> Any:
    for key, value in bot_env(fake, database_url, args.rate).items():
        os.environ[key] = value
    from adapters.telegram.service import TelegramService
    from bot.config import load_settings
    from bot.logs import configure
    from bot.runtime import open_runtime

    settings = load_settings(_env_file=None, log_level="WARNING")
    configure(settings)
    runtime = open_runtime(settings)
    service = TelegramService(settings, runtime.engine, chat_rate=args.chat_rate)
    await service.start()
    try:
        return await load()
    finally:
        await service.stop()


async def run_process(args: argparse.Namespace, fake: FakeTelegramAPI, database_url: str,
                      workdir: Path, load: Callable[[], Any]) -> Any:
    log = (workdir / "bot.log").open("wb")
    proc = start_kominn_run(bot_env(fake, database_url, args.rate), workdir, log)
    try:
        await fake.await_condition(lambda: fake.call_count("deleteWebhook") or proc.poll(), 60)
        if proc.poll() is not None:
            raise SystemExit(f"kominn run exited:\n{(workdir / 'bot.log').read_text()}")
        return await load()
    finally:
        stop(proc)


# --- report ------------------------------------------------------------------------------------

def _concurrent(spans: list[tuple[float, float]]) -> list[int]:
    """How many submissions were under way at each start."""
    return [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(args: argparse.Namespace, fake: FakeTelegramAPI, inbox: Inbox, stats: Stats,
           seconds: float) -> None:
    inbox.pull()
    sent = sum(stats.steps.values())
    answered = len(stats.latencies)
    duplicated = sum(max(0, len(inbox.by_chat[chat]) - steps)
                     for chat, steps in stats.steps.items())
    ms = [1000 * v for v in stats.latencies]
    first_ms = [1000 * v for v in stats.first]
    mode = (f"in-process TelegramService, per-chat pacing {args.chat_rate:g}/s" if args.inline
            else "kominn run (child process)")
    print(f"Telegram load: {args.citizens} citizens starting within {args.ramp:g} s; "
          f"tap after {args.think[0]:g}–{args.think[1]:g} s, "
          f"type after {args.typing[0]:g}–{args.typing[1]:g} s")
    print(f"  bot                  {mode}, overall cap {args.rate:g} msg/s"
          f"{', fake enforces Telegram limits' if args.fake_limits else ''}")
    print(f"  database             {args.database_url or 'SQLite (WAL), temporary file'}")
    peak = max(_concurrent(stats.spans), default=0)
    print(f"  submissions          {stats.finished}/{args.citizens} completed in {seconds:.1f} s"
          f" (up to {peak} citizens mid-submission at once)")
    print(f"  updates handled      {answered} ({answered / seconds:.1f}/s)")
    print(f"  reply latency        p50 {pct(ms, .5):.0f} ms · p95 {pct(ms, .95):.0f} ms · "
          f"max {max(ms, default=float('nan')):.0f} ms · "
          f"mean {statistics.fmean(ms) if ms else float('nan'):.0f} ms")
    print(f"  first message        p50 {pct(first_ms, .5):.0f} ms · "
          f"p95 {pct(first_ms, .95):.0f} ms")
    print(f"  lost replies         {stats.lost} (of {sent} updates sent)")
    print(f"  duplicated replies   {duplicated}")
    print(f"  429 from the fake    {fake.flood_429s}")


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kominn-tgload-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'kominn.db'}"
    if args.database_url:  # the embedded SQLite upgrades itself; others need the migrations
        from storage.db import make_engine
        from storage.migrate import upgrade

        engine = make_engine(database_url)
        upgrade(engine)
        engine.dispose()
    with FakeTelegramAPI() as fake:
        if args.fake_limits:
            fake.enforce_limits(global_per_second=30, per_chat_per_second=1, per_chat_burst=3)
        inbox, stats = Inbox(fake), Stats()

        async def load() -> float:
            stop = asyncio.Event()
            collector = asyncio.create_task(inbox.run(stop))
            citizens = [Citizen(n, fake, inbox, stats, args) for n in range(args.citizens)]
            started = time.monotonic()
            await asyncio.gather(*(c.submit() for c in citizens))
            seconds = time.monotonic() - started
            await asyncio.sleep(args.settle)  # late duplicates would show up here
            stop.set()
            await collector
            return seconds

        if args.inline:
            seconds = await run_inline(args, fake, database_url, load)
        else:
            seconds = await run_process(args, fake, database_url, workdir, load)
        report(args, fake, inbox, stats, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--ramp", type=float, default=30,
                        help="citizens start at random moments within this many seconds")
    parser.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0),
                        metavar=("MIN", "MAX"), help="seconds from an answer to a tap")
    parser.add_argument("--typing", type=float, nargs=2, default=(8.0, 30.0),
                        metavar=("MIN", "MAX"),
                        help="seconds from an answer to a typed reply (title, description…)")
    parser.add_argument("--rate", type=float, default=30,
                        help="TELEGRAM_MAX_MESSAGES_PER_SECOND for the bot (0 = no cap)")
    parser.add_argument("--fake-limits", action="store_true",
                        help="the fake answers 429 above Telegram's limits (30/s, 1/s a chat)")
    parser.add_argument("--inline", action="store_true",
                        help="run the bot in this process instead of `kominn run`")
    parser.add_argument("--chat-rate", type=float, default=1.0,
                        help="with --inline: per-chat pacing, messages/s after a burst of 3 "
                             "(0 = none; `kominn run` always paces at 1/s)")
    parser.add_argument("--database-url", default=None,
                        help="default: a new SQLite file; another database is migrated first "
                             "(use an empty one: ideas there count for the similar-ideas step)")
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds a citizen waits for an answer before counting it lost")
    parser.add_argument("--settle", type=float, default=2.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
