"""`kominn jobs list` and `kominn jobs run-due`, through the real console script, delivering to
the fake Telegram Bot API and the fake Slack Web API."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_cli import KOMINN, kominn
from tests.test_followups import T0, add_idea, add_person, move, rows


def test_jobs_list_counts_by_kind_and_state(settings: Settings, runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    number = add_idea(runtime, kari, at=T0)
    move(runtime, number, Status.USEFUL, T0)
    move(runtime, number, Status.REALISED, datetime.now(UTC) + timedelta(days=1))
    result = kominn(settings, "jobs", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    kinds = json.loads(result.stdout)["kinds"]
    assert kinds["status_changed"] == {"due": 1, "scheduled": 1, "sending": 0, "sent": 0,
                                       "failed": 0, "cancelled": 0}
    table = kominn(settings, "jobs", "list")
    assert "status_changed" in table.stdout and table.returncode == 0


def test_run_due_without_channels_leaves_terminal_notices_for_the_chat(
        settings: Settings, runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    add_idea(runtime, kari, at=T0)
    at = (T0 + timedelta(days=15)).isoformat()
    result = kominn(settings, "jobs", "run-due", "--now", at, "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["created"]["stale"] == 1 and summary["sent"] == 0
    assert summary["waiting"] == {"terminal": 1}
    chat = kominn(settings, "chat", "--user", "kari", stdin="")
    assert "fortsatt til vurdering" in chat.stdout
    again = kominn(settings, "jobs", "run-due", "--now", at, "--format", "json")
    assert json.loads(again.stdout)["created"]["stale"] == 0


def test_run_due_delivers_to_telegram_and_slack(settings: Settings, runtime: Runtime) -> None:
    citizen = add_person(runtime, "4242", channel="telegram")
    add_idea(runtime, citizen, at=T0, title="Benk ved <b>Holmenbukta</b> @channel")
    with FakeTelegramAPI() as telegram, FakeSlackAPI() as slack:
        env = {"TELEGRAM_BOT_TOKEN": telegram.token,
               "TELEGRAM_API_BASE_URL": telegram.base_url,
               "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.url,
               "KOMINN_MODERATOR_CHANNEL": "CMOD", "KOMINN_QUIET_HOURS": "off"}
        # Local time without an offset: KOMINN_TIMEZONE (Europe/Oslo).
        result = subprocess.run(
            [KOMINN, "jobs", "run-due", "--now", "2026-03-19T10:30"], capture_output=True,
            text=True, timeout=120,
            env={**os.environ, "DATABASE_URL": settings.database_url, **env})
        assert result.returncode == 0, result.stderr
        assert "sent" in result.stdout
        [note] = telegram.texts(4242)
        assert "KI-1" in note and "fortsatt til vurdering" in note
        posts = {m["text"] for m in slack.messages("CMOD")}
    assert any("ukesoversikt" in p for p in posts)
    [nudge] = [p for p in posts if "Idé som venter" in p]
    assert "&lt;b&gt;Holmenbukta&lt;/b&gt;" in nudge  # citizens' text cannot become markup
    assert {r.state for r in rows(runtime)} == {"sent"}


def test_run_due_rejects_a_bad_time(settings: Settings) -> None:
    result = kominn(settings, "jobs", "run-due", "--now", "next tuesday")
    assert result.returncode == 2 and "--now" in result.stderr
