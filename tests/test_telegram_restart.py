"""`kominn run` as the operator runs it (a child process polling the fake Bot API), killed
with SIGKILL in the middle of a dialog and started again: the dialog goes on at the same step,
and nothing is answered twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import Runtime
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.helpers import IDEA
from tests.test_telegram_webhook import free_port

ROOT = Path(__file__).resolve().parents[1]
KARI = 4301


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


class Bot:
    """`kominn run` with Telegram pointed at the fake; stderr kept for failures."""

    def __init__(self, fake: FakeTelegramAPI, database_url: str, workdir: Path) -> None:
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "KOMINN_HTTP_PORT": str(free_port()),
            "KOMINN_QUIET_HOURS": "off",
            "KOMINN_MAX_MESSAGES_PER_MINUTE": "1000",
        }
        for key in ("TELEGRAM_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
            self.env.pop(key, None)
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = (self.workdir / f"run{self.runs}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli",
                                      "run"], cwd=self.workdir,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def answered(fake: FakeTelegramAPI, text: str, expect: str, *, press: bool = False,
             timeout: float = 20) -> list[dict]:
    after = fake.checkpoint()
    if press:
        fake.press_button(KARI, text)
    else:
        fake.user_message(KARI, text)
    return fake.wait_for(lambda: [m for m in fake.sent(KARI, after=after)
                                  if expect in (m["plain_text"] or "")], timeout)


def test_killed_mid_dialog_and_restarted(fake: FakeTelegramAPI, runtime: Runtime,
                                         tmp_path: Path) -> None:
    bot = Bot(fake, runtime.settings.database_url, tmp_path)
    bot.start()
    try:
        answered(fake, "/ny", "tittel")
        answered(fake, IDEA["title"], "Beskriv")
        answered(fake, IDEA["description"], "satsningsområde")
        # Killed between two messages of Kari's, once the bot has recorded its answer as sent
        # (a kill between sending and recording would send that answer again at start: the
        # price of never losing one, tested in test_telegram.py).
        fake.wait_for(lambda: not runtime.engine.undelivered("telegram"), 10)
        assert bot.stop(signal.SIGKILL) == -signal.SIGKILL

        # While the bot is down Kari taps a button of the last message, and writes on.
        fake.press_button(KARI, IDEA["area"])
        after = fake.checkpoint()
        bot.start()
        fake.wait_for(lambda: [m for m in fake.sent(KARI, after=after)
                               if "sted" in (m["plain_text"] or "")], 30)
        answered(fake, "Semsvannet", "kontakte")
        answered(fake, "Ja", "Se over", press=True)
        receipt = answered(fake, "Send inn", "registrert som", press=True)
        assert "KI-1" in receipt[0]["plain_text"]
        # A graceful stop (uvicorn re-raises SIGTERM after shutting down cleanly).
        assert bot.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in bot.logs()
    except BaseException:
        if bot.proc is not None and bot.proc.poll() is None:
            bot.proc.kill()
        print(bot.logs())
        raise
    # One answer per step, none repeated after the restart.
    texts = fake.texts(KARI)
    assert len(texts) == 7, texts
    assert not fake.pending_updates()
    assert "Traceback" not in bot.logs()
