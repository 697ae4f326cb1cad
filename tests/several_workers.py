"""Several `kominn run` workers in webhook mode on one PostgreSQL, behind a round-robin webhook
deliverer with redelivery, as an operator would run them behind a load balancer — used by
tests/test_workers_live.py and benchmarks/workers.py.

`RoundRobin` plays Telegram's side of the webhook: it takes each queued update off the fake
Bot API and POSTs it to the next worker; a refused or failed POST (a dead worker, 503) goes to
the next worker after a short wait; one update in `redeliver_every` is POSTed again to another
worker right after the first answered 200 — as Telegram does when it misses the 200 — while the
first worker may still be sending the answer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram_webhook import SECRET, free_port

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """One `kominn run` in webhook mode, as an operator starts it."""

    def __init__(self, fake: FakeTelegramAPI, database_url: str, workdir: Path, number: int,
                 **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/telegram/webhook"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("TELEGRAM_", "SLACK_", "KOMINN_"))}
        self.env = {**base, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url,
                    "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
                    "TELEGRAM_WEBHOOK_URL": self.url, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                    "KOMINN_HTTP_PORT": str(self.port), "KOMINN_QUIET_HOURS": "off",
                    "KOMINN_MAX_MESSAGES_PER_MINUTE": "100000", **env}
        self.fake = fake
        self.log = workdir / f"worker{number}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT,
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code \
                == 200 and any(call.get("params", {}).get("url") == self.url
                               for call in self.fake.requests if call["method"] == "setWebhook")
        except httpx.HTTPError:
            return False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_all(workers: list[Worker], timeout: float = 60) -> None:
    """Start the workers and wait until each serves its webhook (or died)."""
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    while not all(w.ready() or not w.alive for w in workers):
        if time.monotonic() > deadline:
            raise TimeoutError("workers did not start")
        time.sleep(0.2)


class RoundRobin:
    """Telegram's webhook side in front of several workers (see the module docstring).
    Runs its own event loop in a thread; `deliveries`, `redeliveries` and `failed_posts`
    count what it did."""

    def __init__(self, fake: FakeTelegramAPI, urls: list[str], *, redeliver_every: int = 10,
                 connections: int = 40) -> None:
        self.fake = fake
        self.urls = urls
        self.redeliver_every = redeliver_every
        self.connections = connections
        self.deliveries = self.redeliveries = self.failed_posts = 0
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> RoundRobin:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.connections)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            while not self._stop.is_set():
                update = self.fake.take_pending()
                if update is None:
                    await asyncio.sleep(0.005)
                    continue
                task = asyncio.create_task(self._deliver(client, update))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            for task in list(tasks):
                task.cancel()

    async def _post(self, client: httpx.AsyncClient, url: str, update: dict[str, Any]) -> bool:
        try:
            response = await client.post(url, json=update, headers={
                "X-Telegram-Bot-Api-Secret-Token": SECRET})
        except httpx.HTTPError:
            self.failed_posts += 1
            return False
        if response.status_code != 200:
            self.failed_posts += 1
        return response.status_code == 200

    async def _deliver(self, client: httpx.AsyncClient, update: dict[str, Any]) -> None:
        turn = next(self._turn)
        for attempt in itertools.count():
            url = self.urls[(turn + attempt) % len(self.urls)]
            if await self._post(client, url, update):
                break
            await asyncio.sleep(0.2)  # Telegram waits a little before it tries again
        self.deliveries += 1
        if self.redeliver_every and turn % self.redeliver_every == self.redeliver_every - 1:
            # The 200 "got lost": the same update again, to another worker, at once.
            self.redeliveries += 1
            for attempt in itertools.count(1):
                url = self.urls[(turn + attempt) % len(self.urls)]
                if await self._post(client, url, update) or attempt > 3 * len(self.urls):
                    break
                await asyncio.sleep(0.2)
