"""Benchmark the web channel: N concurrent web citizens submitting an idea through the HTTP
endpoints of `kominn run` (a child process, no tokens), then the public board at many ideas.

    .venv/bin/python benchmarks/web_load.py                      # 200 citizens, SQLite file
    .venv/bin/python benchmarks/web_load.py --n 50 --think 1 3 --board-ideas 10000
    .venv/bin/python benchmarks/web_load.py --db postgresql+psycopg://kominn:kominn@127.0.0.1:5432/kominn_bench

The database is emptied and migrated first (use a scratch database). Each citizen opens
/chat, then goes through the whole submission (8 turns, as chat.js posts them: fetch with
`Accept: application/json`), thinking 3–10 s (`--think`) before each turn. Printed:

* chat turns: count, p50/p95/max response time beside the target p95 < 200 ms, errors;
* ideas stored beside citizens (each exactly once: the double-submit guard must not lose or
  repeat one);
* the board after adding `--board-ideas` (default 100,000) ideas: p50/p95 of `/ideer`,
  `/ideer?status=…`, `/ideer?omrade=…`, a deep page and one idea page, beside the target
  p95 < 100 ms.

For the same machine's Telegram figures run benchmarks/telegram_load.py beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import fresh_schema, kominn_env, start_kominn_run, stop  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.models import Idea  # noqa: E402

_HIDDEN = re.compile(r'name="(csrf|turn)" value="([^"]*)"')
_BUTTON = re.compile(r'name="choice" value="([^"]*)">([^<]*)</button>')
TITLE = "Flere benker ved Semsvannet nr {n}"
DESCRIPTION = "Det trengs flere benker langs turstien rundt Semsvannet, så eldre kan hvile ({n})."


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Citizen:
    def __init__(self, base: str, number: int, think: tuple[float, float],
                 timings: list[float], errors: list[str]) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=60)
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
    engine = make_engine(url)
    areas = ["Vekst og utvikling", "Areal og transport", "Folkehelse", "Annet"]
    statuses = ["new", "new", "useful", "realised", "declined"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for first in range(0, count, 5000):
            rows = [{"title": f"Idé {n}", "description": f"Beskrivelse av idé nummer {n}.",
                     "channel": "web", "status": statuses[n % 5], "focus_area": areas[n % 4],
                     "chosen": False, "created_at": start + timedelta(minutes=n),
                     "updated_at": start + timedelta(minutes=n),
                     "status_changed_at": start + timedelta(minutes=n),
                     "published_at": start + timedelta(minutes=n)}
                    for n in range(first, min(count, first + 5000))]
            conn.execute(insert(Idea), rows)
    engine.dispose()


async def board(base: str, rounds: int) -> dict[str, list[float]]:
    paths = {"/ideer": "/ideer", "status": "/ideer?status=useful",
             "area": "/ideer?omrade=Folkehelse", "page 200": "/ideer?side=200",
             "idea page": "/ideer/KI-5000"}
    timings: dict[str, list[float]] = {name: [] for name in paths}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(rounds):
            for name, path in paths.items():
                started = time.perf_counter()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
    return timings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get(base + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("kominn run did not come up")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent web citizens")
    parser.add_argument("--think", type=float, nargs=2, default=(3.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--db", default=None, help="database URL (default: a new SQLite file)")
    parser.add_argument("--board-ideas", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20, help="board requests per page")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kominn-web-bench-"))
    url = args.db or f"sqlite:///{workdir / 'kominn.db'}"
    fresh_schema(url)
    port = free_port()
    env = kominn_env(DATABASE_URL=url, KOMINN_HTTP_PORT=str(port), KOMINN_QUIET_HOURS="off",
                     KOMINN_LOG_LEVEL="WARNING", KOMINN_MAX_IDEAS_PER_DAY="100",
                     KOMINN_WEB_MAX_MESSAGES_PER_ADDRESS="1000000")
    base = f"http://127.0.0.1:{port}"
    with (workdir / "kominn.log").open("wb") as log:
        proc = start_kominn_run(env, workdir, log)
        try:
            await wait_ready(base)
            timings: list[float] = []
            errors: list[str] = []
            started = time.perf_counter()
            await asyncio.gather(*(Citizen(base, n, tuple(args.think), timings, errors).run()
                                   for n in range(args.n)))
            elapsed = time.perf_counter() - started
            engine = make_engine(url)
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(Idea)).scalar_one()
                distinct = conn.execute(select(func.count(func.distinct(Idea.title)))).scalar_one()
            engine.dispose()
            print(f"database: {url.split('://')[0]}; {args.n} web citizens, think "
                  f"{args.think[0]:g}–{args.think[1]:g} s, {elapsed:.0f} s in all")
            print(f"chat turns: {len(timings)}, p50 {percentile(timings, 0.5):.1f} ms, "
                  f"p95 {percentile(timings, 0.95):.1f} ms (target < 200 ms), "
                  f"max {max(timings, default=0):.1f} ms, errors {len(errors)}")
            for error in sorted(set(errors))[:5]:
                print(f"  error: {error}")
            print(f"ideas stored: {stored} (distinct {distinct}) for {args.n} citizens")
            add_ideas(url, args.board_ideas)
            pages = await board(base, args.rounds)
            print(f"board at {args.board_ideas + stored:,} ideas ({args.rounds} requests each; "
                  f"target p95 < 100 ms):")
            for name, values in pages.items():
                print(f"  {name:10} p50 {statistics.median(values):6.1f} ms  "
                      f"p95 {percentile(values, 0.95):6.1f} ms")
        finally:
            stop(proc)


if __name__ == "__main__":
    asyncio.run(main())
