"""Structured logs: with `KOMINN_LOG_FORMAT=json` every line `kominn run` (and a CLI command)
writes is one JSON object carrying event, channel, ref and duration where they apply; and no
log line at INFO or above holds what a citizen typed, their name or their Telegram id — also
when something fails (then the details, which may quote a database row, go to DEBUG only)."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.engine import Engine
from bot.logs import JsonFormatter
from bot.runtime import Runtime
from dialogs.types import Incoming, Reply
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_cli import KOMINN
from tests.test_faults import BotProcess
from tests.test_telegram import Citizen, running

USER = 987_654_321
NAME = "Wilhelmina"
TITLE = "Quokkabenker ved Zxyvann"
DESCRIPTION = "Jeg ønsker quokkabenker ved Zxyvann, for blåbærkvist trengs langs stien der."
PLACE = "Zxyvannstranda"
TYPO = "Qwx"  # a title too short: answered with a hint, and must not be logged either
# What must never appear in a log line at INFO or above (case-insensitive).
PERSONAL = ("quokka", "zxyvann", "blåbærkvist", "wilhelmina", "qwx", str(USER))


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def personal_in(line: str) -> list[str]:
    low = line.casefold()
    return [word for word in PERSONAL if word in low]


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed; a line that is not one JSON object fails the test."""
    entries = []
    for line in output.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


async def submit(citizen: Citizen) -> None:
    """A whole submission with distinctive text, a typo on the way, then /status and /data."""
    await citizen.say("/start", expect="personvern", count=2)
    await citizen.say("/ny", expect="tittel")
    await citizen.say(TYPO, expect="tegn")
    await citizen.say(TITLE, expect="beskriv")
    await citizen.say(DESCRIPTION, expect="satsningsområde")
    await citizen.press("Folkehelse", expect="sted")
    await citizen.say(PLACE, expect="kontakte")
    await citizen.press("Ja", expect="se over")
    await citizen.press("Send inn", expect="registrert som KI-1")
    await citizen.say("/status KI-1", expect="KI-1")
    await citizen.say("/data", expect=None)


def walk_sync(fake: FakeTelegramAPI) -> None:
    """The same submission from a plain thread (the bot is a child process)."""
    import asyncio

    asyncio.run(submit(Citizen(fake, USER, name=NAME)))


def test_kominn_run_writes_json_lines_without_citizen_text(
        fake: FakeTelegramAPI, runtime: Runtime, tmp_path: Path) -> None:
    bot = BotProcess(fake, runtime.settings.database_url, tmp_path, KOMINN_LOG_FORMAT="json",
                     KOMINN_LOG_LEVEL="INFO")
    bot.start()
    try:
        walk_sync(fake)
        moved = subprocess.run([KOMINN, "ideas", "set-status", "KI-1", "useful", "--note",
                                "Vi ser på saken"], env=bot.env, capture_output=True,
                               text=True, timeout=60)
        assert moved.returncode == 0, moved.stderr
        fake.wait_for(lambda: any("Nyttig" in t for t in fake.texts(USER)), 15)
        assert bot.stop() in (0, -15)
    finally:
        bot.ensure_dead()
    entries = json_lines(bot.logs()) + json_lines(moved.stderr)

    leaks = [(e["level"], e["message"]) for e in entries if personal_in(json.dumps(
        e, ensure_ascii=False))]
    assert leaks == []
    by_event: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_event.setdefault(entry.get("event", ""), []).append(entry)
    handled = by_event["update_handled"]
    assert len(handled) == 11  # one per update the citizen sent
    assert all(e["channel"] == "telegram" and isinstance(e["duration_ms"], float)
               for e in handled)
    [submitted] = by_event["idea_submitted"]
    assert (submitted["ref"], submitted["channel"], submitted["level"]) == (
        "KI-1", "telegram", "info")
    sent = by_event["outbox_sent"]
    assert sent and all(e["channel"] == "telegram" and e["kind"] for e in sent)
    assert {"telegram_polling", "service_started", "scheduler_started"} <= by_event.keys()
    # uvicorn's own lines go through the same formatter.
    assert any(e["logger"].startswith("uvicorn") for e in entries)


class QuotingEngine(Engine):
    """Fails the way a database error does: its message quotes the row, i.e. the text."""

    failing = True

    def handle(self, incoming: Incoming) -> list[Reply]:
        if self.failing and incoming.text == DESCRIPTION:
            raise RuntimeError(f"INSERT failed [parameters: ({incoming.text!r},)]")
        return super().handle(incoming)


async def test_engine_and_adapter_log_no_citizen_text_at_info(
        runtime: Runtime, fake: FakeTelegramAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = QuotingEngine(runtime.db, runtime.settings, runtime.index,
                            features=runtime.features)
    citizen = Citizen(fake, USER, name=NAME)
    async with running(runtime, fake, engine=engine):
        await citizen.say("/ny", expect="tittel")
        await citizen.say(TITLE, expect="beskriv")
        await citizen.say(DESCRIPTION, expect="gikk galt")  # the apology
        engine.failing = False  # the database is back
        await submit(citizen)
    formatter = JsonFormatter()
    lines = [(r.levelno, formatter.format(r)) for r in caplog.records]
    loud = [line for level, line in lines if level >= logging.INFO]
    assert loud and all("\n" not in line for line in loud)
    assert [line for line in loud if personal_in(line)] == []
    # The failure was reported at ERROR by kind, its details (with the text) only at DEBUG.
    failure = [json.loads(line) for level, line in lines if level == logging.ERROR]
    assert [(e["event"], e["status"]) for e in failure] == [("telegram_failure", "RuntimeError")]
    assert any(level == logging.DEBUG and "blåbærkvist" in line for level, line in lines)


def test_json_formatter_keeps_one_line_per_record() -> None:
    """A message or error spanning lines still makes one JSON object on one line; of a
    traceback only the last line (the error's kind) is kept."""
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        record = logging.LogRecord("kominn.x", logging.ERROR, __file__, 1, "two\nlines", None,
                                   exc_info=__import__("sys").exc_info())
    record.event, record.ref, record.duration_ms = "x_failed", "KI-7", 12.5
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["event"], entry["ref"], entry["duration_ms"], entry["level"]) == (
        "x_failed", "KI-7", 12.5, "error")
    assert entry["message"] == "two\nlines"
    assert entry["error"] == "second line"
    assert "Traceback" not in line
