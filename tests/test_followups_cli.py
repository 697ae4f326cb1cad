"""`kominn jobs list`, `kominn jobs run-due` and `kominn jobs requeue`, through the real console
script, delivering to the fake Telegram Bot API and the fake Slack Web API."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from bot.channels import DeliveryError
from bot.config import Settings
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Outbox, Person
from storage.outbox import enqueue
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_cli import KOMINN, kominn
from tests.test_followups import T0, RecordingSender, add_idea, add_person, deliver, move, rows


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


# --- jobs requeue ------------------------------------------------------------------------------

def set_state(rt: Runtime, state: str, *row_ids: int) -> None:
    """Put rows where a long outage would leave them: `failed` after 5 attempts, with an error
    (other states keep their attempts)."""
    values: dict[str, Any] = {"state": state}
    if state == "failed":
        values.update(attempts=5, last_error="TimedOut: telegram unreachable")
    with transaction(rt.db) as s:
        s.execute(update(Outbox).where(col(Outbox.id).in_(row_ids)).values(**values))


def status_notices(rt: Runtime, name: str, count: int, channel: str = "terminal") -> list[int]:
    """`count` status_changed rows to one person (one per lifecycle move of their idea)."""
    number = add_idea(rt, add_person(rt, name, channel=channel), at=T0)
    for status in (Status.USEFUL, Status.REALISED)[:count]:
        move(rt, number, status, T0)
    ids = [r.id or 0 for r in rows(rt, "status_changed") if r.address == name]
    assert len(ids) == count
    return ids


def by_id(rt: Runtime) -> dict[int, Outbox]:
    return {r.id or 0: r for r in rows(rt)}


def requeue(settings: Settings, *args: str) -> dict[str, Any]:
    result = kominn(settings, "jobs", "requeue", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_requeue_by_id_moves_failed_rows_and_reports_the_others(
        settings: Settings, runtime: Runtime) -> None:
    parked, done = status_notices(runtime, "kari", 2)
    set_state(runtime, "failed", parked)
    set_state(runtime, "sent", done)
    before = datetime.now(UTC)
    summary = requeue(settings, str(parked), str(done), "999")
    after = datetime.now(UTC)
    assert (summary["requeued"], summary["ids"]) == (1, [parked])
    assert [(s["id"], s["reason"], s.get("state")) for s in summary["skipped"]] == [
        (done, "not_failed", "sent"), (999, "unknown", None)]
    row = by_id(runtime)[parked]
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, None)
    assert before - timedelta(seconds=1) <= row.due_at <= after + timedelta(seconds=1)
    assert by_id(runtime)[done].state == "sent"
    again = kominn(settings, "jobs", "requeue", str(parked))  # the table, and not twice
    assert again.returncode == 0, again.stderr
    assert "requeued: 0" in again.stdout and "not failed (it is pending)" in again.stdout


def test_requeue_all_narrowed_by_kind_and_channel(settings: Settings, runtime: Runtime) -> None:
    notices = status_notices(runtime, "kari", 2)
    with transaction(runtime.db) as s:
        nudge = enqueue(s, kind="stale_moderator", dedupe_key="nudge:1", channel="slack",
                        address="CMOD", payload={"ref": "KI-1", "title": "x", "days": 15})
        nudge_id = nudge.id if nudge else 0
    set_state(runtime, "failed", *notices, nudge_id)
    assert requeue(settings, "--all", "--channel", "telegram")["requeued"] == 0
    summary = requeue(settings, "--all", "--kind", "status_changed")
    assert (summary["requeued"], summary["ids"], summary["skipped"]) == (2, notices, [])
    assert {i: r.state for i, r in by_id(runtime).items()} == {
        notices[0]: "pending", notices[1]: "pending", nudge_id: "failed"}
    assert requeue(settings, "--all", "--channel", "slack")["ids"] == [nudge_id]


def test_bare_requeue_refuses_with_one_line(settings: Settings, runtime: Runtime) -> None:
    [parked] = status_notices(runtime, "kari", 1)
    set_state(runtime, "failed", parked)
    bare = kominn(settings, "jobs", "requeue")
    assert bare.returncode == 2 and bare.stdout == ""
    assert bare.stderr.count("\n") == 1 and "--all" in bare.stderr
    both = kominn(settings, "jobs", "requeue", str(parked), "--all")
    assert both.returncode == 2 and "not both" in both.stderr
    assert by_id(runtime)[parked].state == "failed"


def test_requeue_skips_rows_of_an_erased_person(settings: Settings, runtime: Runtime) -> None:
    [kept] = status_notices(runtime, "kari", 1)
    [gone] = status_notices(runtime, "ola", 1)
    set_state(runtime, "failed", kept, gone)
    with transaction(runtime.db) as s:
        person = s.get(Person, by_id(runtime)[gone].person_id)
        assert person is not None
        person.erased_at = datetime.now(UTC)
        s.add(person)
    by_hand = requeue(settings, str(gone))
    assert by_hand["requeued"] == 0
    assert [(s["id"], s["reason"]) for s in by_hand["skipped"]] == [(gone, "erased")]
    summary = requeue(settings, "--all")
    assert summary["ids"] == [kept]
    assert [(s["id"], s["reason"]) for s in summary["skipped"]] == [(gone, "erased")]
    assert (by_id(runtime)[kept].state, by_id(runtime)[gone].state) == ("pending", "failed")


def test_requeued_notice_is_delivered_by_run_due(settings: Settings, runtime: Runtime) -> None:
    [row_id] = status_notices(runtime, "4242", 1, channel="telegram")
    blocked = RecordingSender("telegram", fail=1, error=DeliveryError("outage", permanent=True))
    assert deliver(runtime, blocked, T0).failed == 1  # parked by the dispatcher itself
    with FakeTelegramAPI() as telegram:
        env = {**os.environ, "DATABASE_URL": settings.database_url,
               "TELEGRAM_BOT_TOKEN": telegram.token,
               "TELEGRAM_API_BASE_URL": telegram.base_url}

        def run_due() -> dict[str, Any]:
            result = subprocess.run([KOMINN, "jobs", "run-due", "--format", "json"],
                                    capture_output=True, text=True, timeout=120, env=env)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        assert run_due()["sent"] == 0 and telegram.texts(4242) == []  # parked stays parked
        assert requeue(settings, str(row_id))["ids"] == [row_id]
        assert run_due()["sent"] == 1
        [note] = telegram.texts(4242)
    assert "KI-1" in note
    row = by_id(runtime)[row_id]
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
