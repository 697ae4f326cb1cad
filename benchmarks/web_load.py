"""Benchmark the web channel beside Telegram: N concurrent web citizens submitting an idea
through the HTTP endpoints of `kominn run` (a child process), then — in the same run, on the
same database and process — the Telegram citizens of benchmarks/telegram_load.py against the
fake Bot API, then the public board at 100,000 ideas, on SQLite and/or PostgreSQL.

    .venv/bin/python benchmarks/web_load.py                      # 200 + 200 citizens, SQLite
    .venv/bin/python benchmarks/web_load.py --database-url sqlite \\
        --database-url postgresql+psycopg://kominn:kominn@127.0.0.1:5432/kominn_bench
    .venv/bin/python benchmarks/web_load.py --n 50 --think 1 3 --telegram 0 --board-ideas 10000

`--database-url` may be given several times (`sqlite` = a new SQLite file); each database is
emptied and migrated first (use a scratch database). Each web citizen opens /chat, then goes
through the whole submission (8 turns, as chat.js posts them: fetch with `Accept:
application/json`), thinking 3–10 s (`--think`) before each turn. The Telegram citizens are
telegram_load.py's (its think and typing times, its 30 msg/s cap). Printed per database:

* web chat turns: count, p50/p95/max response time beside the target p95 < 200 ms, errors;
  ideas stored beside citizens (each exactly once: the double-submit guard must not lose or
  repeat one);
* Telegram: telegram_load.py's report (reply latency from the update to the answer at the fake,
  lost and duplicated replies), and its ideas stored once;
* the board after adding `--board-ideas` (default 100,000) ideas and restarting `kominn run`:
  every filter the page offers (status × focus area), a search, a search nothing matches,
  "next" (seek), a deep page by number and an idea page — the first request of each after the
  restart (cold: nothing cached in the process) and p50/p95 of `--rounds` more (warm), beside
  the target p95 < 100 ms. PostgreSQL gets `VACUUM ANALYZE idea` after the bulk load (as
  autovacuum would after a base grew); SQLite gets no ANALYZE (a deployment never runs one).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import telegram_load  # noqa: E402
from benchmarks.common import fresh_schema, kominn_env, start_kominn_run, stop  # noqa: E402
from bot.config import DEFAULT_FOCUS_AREAS  # noqa: E402
from dialogs.lifecycle import Status  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.models import Idea  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

_HIDDEN = re.compile(r'name="(csrf|turn)" value="([^"]*)"')
_BUTTON = re.compile(r'name="choice" value="([^"]*)">([^<]*)</button>')
_NEXT = re.compile(r'<a href="([^"]*)" rel="next">')
TITLE = "Flere benker ved Semsvannet nr {n}"
DESCRIPTION = "Det trengs flere benker langs turstien rundt Semsvannet, så eldre kan hvile ({n})."


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Citizen:
    def __init__(self, base: str, number: int, think: tuple[float, float],
                 timings: list[float], errors: list[str]) -> None:
        # Idle connections dropped before uvicorn's 5 s keep-alive ends: otherwise a turn after
        # a long think may go out on a connection the server is closing (a ReadError).
        self.client = httpx.AsyncClient(base_url=base, timeout=60,
                                        limits=httpx.Limits(keepalive_expiry=4.0))
        self.number = number
        self.think = think
        self.timings = timings
        self.errors = errors
        self.form: dict[str, str] = {}
        self.buttons: dict[str, str] = {}

    def _read(self, html: str) -> None:
        found = dict(_HIDDEN.findall(html))
        if found:
            self.form = found
        self.buttons = {label: value for value, label in _BUTTON.findall(html)}

    async def turn(self, **data: str) -> None:
        await asyncio.sleep(random.uniform(*self.think))
        started = time.perf_counter()
        response = await self.client.post("/chat", data={**self.form, **data},
                                          headers={"Accept": "application/json"})
        self.timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        self._read(response.json()["controls"])

    async def press(self, label: str) -> None:
        if label not in self.buttons:
            raise RuntimeError(f"no button {label!r}")
        await self.turn(choice=self.buttons[label])

    async def run(self) -> None:
        try:
            self._read((await self.client.get("/chat")).text)
            await self.turn(text="/ny")
            await self.turn(text=TITLE.format(n=self.number))
            await self.turn(text=DESCRIPTION.format(n=self.number))
            await self.press("Folkehelse")
            await self.press("Hopp over")
            await self.press("Nei")
            if "Min idé er ny" in self.buttons:
                await self.press("Min idé er ny")
            await self.press("Send inn")
        except Exception as exc:  # noqa: BLE001 - counted, the others go on
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await self.client.aclose()


def add_ideas(url: str, count: int) -> None:
    """`count` public ideas a minute apart from 2024 on, spread over every status and focus
    area, straight into the table (as an import would leave them)."""
    engine = make_engine(url)
    areas = list(DEFAULT_FOCUS_AREAS)
    statuses = ["new", "new", "useful", "realised", "declined", "new", "useful", "merged"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for first in range(0, count, 5000):
            rows = [{"title": f"Idé {n} om {areas[n % len(areas)].lower()}",
                     "description": f"Beskrivelse av idé nummer {n}, med litt mer tekst om hva "
                                    f"som bør gjøres og hvorfor det er viktig for nabolaget.",
                     "channel": "web", "status": statuses[n % len(statuses)],
                     "focus_area": areas[n % len(areas)],
                     "chosen": False, "created_at": start + timedelta(minutes=n),
                     "updated_at": start + timedelta(minutes=n),
                     "status_changed_at": start + timedelta(minutes=n),
                     "published_at": start + timedelta(minutes=n)}
                    for n in range(first, min(count, first + 5000))]
            conn.execute(insert(Idea), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE idea"))
    engine.dispose()


def board_paths() -> dict[str, str]:
    """Every filter the board offers (status × focus area), a search, a search nothing
    matches (the plain-text fallback), a deep page by number and an idea page."""
    paths: dict[str, str] = {}
    for status in ("", *(s.value for s in Status)):
        for area in ("", *DEFAULT_FOCUS_AREAS):
            query = urlencode({k: v for k, v in (("status", status), ("omrade", area)) if v})
            paths[f"{status or 'all'} / {area[:24] or 'all'}"] = "/ideer" + (
                "?" + query if query else "")
    paths["search 'benker Semsvannet'"] = "/ideer?" + urlencode({"q": "benker Semsvannet"})
    paths["search, no match"] = "/ideer?" + urlencode({"q": "zqxjv"})
    paths["page 2,000 by number"] = "/ideer?side=2000"
    paths["idea page KI-5000"] = "/ideer/KI-5000"
    return paths


async def board(base: str, rounds: int) -> dict[str, list[float]]:
    """Per page: the first request (cold) then `rounds` more; "next" follows each list's
    link from page 1 (a seek from the idea at the page's edge)."""
    paths = board_paths()
    timings: dict[str, list[float]] = {name: [] for name in [*paths, "next (seek) from page 1"]}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        following = ""
        for _ in range(rounds + 1):
            for name, path in paths.items():
                started = time.perf_counter()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
                if name == "all / all":
                    found = _NEXT.search(response.text)
                    following = found.group(1).replace("&amp;", "&") if found else path
            started = time.perf_counter()
            response = await client.get(following)
            timings["next (seek) from page 1"].append((time.perf_counter() - started) * 1000)
    return timings


async def wait_ready(base: str, path: str = "/healthz") -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(1200):
            try:
                if (await client.get(base + path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"kominn run did not come up ({path})")


def telegram_args(args: argparse.Namespace, url: str) -> argparse.Namespace:
    return argparse.Namespace(citizens=args.telegram, ramp=30.0, think=(2.0, 6.0),
                              typing=(8.0, 30.0), rate=30.0, fake_limits=False, inline=False,
                              chat_rate=1.0, database_url=url.split("://")[0] + " (the web run's)",
                              timeout=60.0, settle=2.0)


async def telegram_phase(args: argparse.Namespace, fake: FakeTelegramAPI, url: str) -> None:
    """telegram_load.py's citizens against the `kominn run` already polling `fake`."""
    targs = telegram_args(args, url)
    inbox, stats = telegram_load.Inbox(fake), telegram_load.Stats()
    stop_collecting = asyncio.Event()
    collector = asyncio.create_task(inbox.run(stop_collecting))
    citizens = [telegram_load.Citizen(n, fake, inbox, stats, targs) for n in range(targs.citizens)]
    started = time.monotonic()
    await asyncio.gather(*(c.submit() for c in citizens))
    seconds = time.monotonic() - started
    await asyncio.sleep(targs.settle)
    stop_collecting.set()
    await collector
    telegram_load.report(targs, fake, inbox, stats, seconds)


def stored(url: str, channel: str) -> tuple[int, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        where = Idea.channel == channel
        count = conn.execute(select(func.count()).select_from(Idea).where(where)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(Idea.title)))
                                .where(where)).scalar_one()
    engine.dispose()
    return count, distinct


async def one_database(args: argparse.Namespace, given: str) -> list[tuple[str, float, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="kominn-web-bench-"))
    url = f"sqlite:///{workdir / 'kominn.db'}" if given == "sqlite" else given
    kind = url.split("://")[0]
    fresh_schema(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {"DATABASE_URL": url, "KOMINN_HTTP_PORT": str(port), "KOMINN_QUIET_HOURS": "off",
                "KOMINN_LOG_LEVEL": "WARNING", "KOMINN_MAX_IDEAS_PER_DAY": "100",
                "KOMINN_WEB_MAX_MESSAGES_PER_ADDRESS": "1000000"}
    with FakeTelegramAPI() as fake, (workdir / "kominn.log").open("wb") as log:
        if args.telegram:
            settings.update(TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.base_url,
                            TELEGRAM_MAX_MESSAGES_PER_SECOND="30")
        proc = start_kominn_run(kominn_env(**settings), workdir, log)
        try:
            await wait_ready(base)
            timings: list[float] = []
            errors: list[str] = []
            started = time.perf_counter()
            await asyncio.gather(*(Citizen(base, n, tuple(args.think), timings, errors).run()
                                   for n in range(args.n)))
            elapsed = time.perf_counter() - started
            count, distinct = stored(url, "web")
            print(f"\n=== {kind}: {args.n} web citizens, think "
                  f"{args.think[0]:g}–{args.think[1]:g} s, {elapsed:.0f} s in all "
                  f"(load average {_load()}: the machine's other work counts in every figure)")
            print(f"web chat turns: {len(timings)}, p50 {percentile(timings, 0.5):.1f} ms, "
                  f"p95 {percentile(timings, 0.95):.1f} ms (target < 200 ms), "
                  f"max {max(timings, default=0):.1f} ms, errors {len(errors)}")
            for error in sorted(set(errors))[:5]:
                print(f"  error: {error}")
            print(f"web ideas stored: {count} (distinct {distinct}) for {args.n} citizens")
            if args.telegram:
                await telegram_phase(args, fake, url)
                count, distinct = stored(url, "telegram")
                print(f"  ideas stored         {count} (distinct {distinct}) "
                      f"for {args.telegram} citizens")
        finally:
            stop(proc)
    add_ideas(url, args.board_ideas)
    with (workdir / "kominn-board.log").open("wb") as log:  # a fresh process: nothing cached
        settings.pop("TELEGRAM_BOT_TOKEN", None)
        proc = start_kominn_run(kominn_env(**settings), workdir, log)
        try:
            await wait_ready(base, "/readyz")
            pages = await board(base, args.rounds)
        finally:
            stop(proc)
    total = args.board_ideas + args.n + args.telegram
    print(f"board at {total:,} ideas on {kind} (cold: the first request after a restart; warm: "
          f"{args.rounds} more; target p95 < 100 ms; load average {_load()}):")
    print(f"  {'page':44} {'cold':>8} {'warm p50':>9} {'warm p95':>9}")
    summary = []
    for name, values in pages.items():
        cold, warm = values[0], values[1:]
        summary.append((name, cold, percentile(warm, 0.95)))
        print(f"  {name:44} {cold:6.1f}ms {statistics.median(warm):7.1f}ms "
              f"{percentile(warm, 0.95):7.1f}ms")
    colds = [c for _, c, _ in summary]
    warms = [v for values in pages.values() for v in values[1:]]
    print(f"  all pages: cold p50 {percentile(colds, 0.5):.1f} ms, p95 "
          f"{percentile(colds, 0.95):.1f} ms, max {max(colds):.1f} ms; warm p50 "
          f"{percentile(warms, 0.5):.1f} ms, p95 {percentile(warms, 0.95):.1f} ms")
    return summary


def _load() -> str:
    import os

    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent web citizens")
    parser.add_argument("--think", type=float, nargs=2, default=(3.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--database-url", "--db", action="append", dest="databases",
                        help="a database URL, or `sqlite` for a new SQLite file (default); "
                             "give it twice to measure both in one run")
    parser.add_argument("--telegram", type=int, default=200,
                        help="Telegram citizens after the web ones (0: none)")
    parser.add_argument("--board-ideas", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20, help="warm board requests per page")
    args = parser.parse_args()
    for given in args.databases or ["sqlite"]:
        await one_database(args, given)


if __name__ == "__main__":
    asyncio.run(main())
