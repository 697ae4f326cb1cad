"""End to end: a citizen submits on Telegram (real PTB stack under `kominn run`, fake Bot API),
a moderator moves the idea with `kominn ideas set-status`, and the citizen hears it — then the
benefit check a month later is answered with the buttons."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.config import Settings
from storage.db import make_engine
from storage.models import BenefitAnswer
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.helpers import IDEA
from tests.test_cli import KOMINN

CITIZEN = 4242

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("adapters.telegram.service") is None,
    reason="needs the Telegram adapter (adapters/telegram/service.py with service(runtime))")


def environment(settings: Settings, fake: FakeTelegramAPI) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
           "KOMINN_HTTP_PORT": "0", "KOMINN_QUIET_HOURS": "off",
           "KOMINN_MAX_MESSAGES_PER_MINUTE": "1000"}
    for key in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
                "TELEGRAM_WEBHOOK_URL"):
        env.pop(key, None)
    return env


@contextmanager
def kominn_run(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([KOMINN, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def kominn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KOMINN, *args], env=env, capture_output=True, text=True, timeout=120)


def answer(fake: FakeTelegramAPI, expect: str, act: object) -> str:
    """Do something as the citizen and wait for the bot's message containing `expect`."""
    mark = fake.checkpoint()
    act() if callable(act) else fake.user_message(CITIZEN, str(act))  # type: ignore[operator]
    return fake.wait_for(lambda: next(
        (t for t in fake.texts(CITIZEN, after=mark) if expect.casefold() in t.casefold()), None),
        timeout=20)


def submit_on_telegram(fake: FakeTelegramAPI) -> None:
    answer(fake, "tittel", "/ny")
    answer(fake, "Beskriv", IDEA["title"])
    answer(fake, "satsningsområde", IDEA["description"])
    answer(fake, "sted", lambda: fake.press_button(CITIZEN, "Folkehelse"))
    answer(fake, "oppfølging", lambda: fake.press_button(CITIZEN, "Hopp over"))
    answer(fake, "Se over", lambda: fake.press_button(CITIZEN, "Ja"))
    answer(fake, "KI-1", lambda: fake.press_button(CITIZEN, "Send inn"))


def test_status_change_reaches_the_telegram_citizen_under_kominn_run(
        settings: Settings, tmp_path: Path) -> None:
    with FakeTelegramAPI() as fake:
        env = environment(settings, fake)
        with kominn_run(env, tmp_path / "run.log") as proc:
            submit_on_telegram(fake)
            mark = fake.checkpoint()
            moved = kominn(env, "ideas", "set-status", "KI-1", "useful", "--note",
                           "Vi ser på saken")
            assert moved.returncode == 0, moved.stderr
            # The scheduler's dispatcher runs every 2 s: well within 10 s.
            fake.wait_for_messages(CITIZEN, 1, timeout=10, after=mark)
            [notice] = fake.texts(CITIZEN, after=mark)
            assert "KI-1" in notice and "Nyttig" in notice and "Vi ser på saken" in notice

            # A month after realisation the benefit check comes (run-due at that moment,
            # delivered by the same bot), and the buttons work in the running bot.
            realised = kominn(env, "ideas", "set-status", "KI-1", "realised")
            assert realised.returncode == 0, realised.stderr
            fake.wait_for(lambda: any("Nyttiggjort" in t for t in fake.texts(CITIZEN)), 10)
            later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
            mark = fake.checkpoint()
            due = kominn(env, "jobs", "run-due", "--now", later)
            assert due.returncode == 0, due.stderr
            [question] = fake.texts(CITIZEN, after=mark)
            assert "Har det hjulpet?" in question
            answer(fake, "kommentar", lambda: fake.press_button(CITIZEN, "Delvis"))
            answer(fake, "Kommentaren er lagret", "Det hjelper, men trengs flere benker.")
            assert proc.poll() is None
    with Session(make_engine(settings.database_url)) as s:
        stored = [(a.answer, a.comment) for a in s.exec(select(BenefitAnswer))]
    assert stored == [("partly", "Det hjelper, men trengs flere benker.")]
