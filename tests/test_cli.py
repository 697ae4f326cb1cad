"""The `kominn` command line, through the real console-script entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from storage.migrate import head_revisions

KOMINN = str(Path(sys.executable).with_name("kominn"))


def kominn(settings: Settings, *args: str, stdin: str = "", env: dict | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DATABASE_URL": settings.database_url,
                "KOMINN_MAX_MESSAGES_PER_MINUTE": "1000", **(env or {})}
    for key in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        full_env.pop(key, None)
    return subprocess.run([KOMINN, *args], input=stdin, capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=cwd)


SUBMISSION = "\n".join([
    "/ny", "Lys i lysløypa på Vettre",
    "Lysløypa på Vettre er mørk etter klokka 21, lys hele kvelden.",
    "2", "Vettre", "1", "1", "/status KI-1", "",
])


def test_chat_submits_and_shows_status(settings: Settings) -> None:
    result = kominn(settings, "chat", "--user", "kari", stdin=SUBMISSION)
    assert result.returncode == 0, result.stderr
    assert "1) Vekst og utvikling" in result.stdout
    assert "KI-1" in result.stdout
    assert "Status: Nytt" in result.stdout


def test_ideas_list_show_set_status_merge(settings: Settings) -> None:
    kominn(settings, "chat", "--user", "kari", stdin=SUBMISSION)
    second = "\n".join(["/ny", "Benk ved Holmenbukta", "En benk med utsikt over fjorden ved "
                        "badeplassen i Holmenbukta.", "4", "1", "2", "1", ""])
    assert "KI-2" in kominn(settings, "chat", "--user", "ola", stdin=second).stdout
    listed = json.loads(kominn(settings, "ideas", "list", "--format", "json").stdout)
    assert [i["ref"] for i in listed] == ["KI-2", "KI-1"]
    assert kominn(settings, "ideas", "list", "--limit", "1", "--format", "json").stdout.count(
        '"ref"') == 1

    refused = kominn(settings, "ideas", "set-status", "KI-1", "realised")
    assert refused.returncode == 1 and "not an allowed move" in refused.stderr
    no_reason = kominn(settings, "ideas", "set-status", "KI-1", "declined")
    assert no_reason.returncode == 1 and "reason" in no_reason.stderr
    assert kominn(settings, "ideas", "set-status", "ki-1", "useful", "--note", "Vi ser på det"
                  ).returncode == 0
    merged = kominn(settings, "ideas", "merge", "KI-2", "--into", "KI-1")
    assert merged.returncode == 0, merged.stderr

    shown = json.loads(kominn(settings, "ideas", "show", "KI-1", "--format", "json").stdout)
    for key in ("ref", "title", "description", "status", "focus_area", "place", "channel",
                "created_at", "supporters", "merged_into", "history"):
        assert key in shown
    assert shown["status"] == "useful"
    assert len(shown["supporters"]) == 1  # KI-2's author now follows KI-1
    assert [(h["from"], h["to"]) for h in shown["history"]] == [(None, "new"), ("new", "useful")]
    two = json.loads(kominn(settings, "ideas", "show", "KI-2", "--format", "json").stdout)
    assert two["merged_into"] == "KI-1" and two["status"] == "merged"
    table = kominn(settings, "ideas", "list", "--status", "merged")
    assert "KI-2" in table.stdout and "KI-1" not in table.stdout


def test_run_without_tokens_serves_the_web_channel(settings: Settings) -> None:
    import httpx

    from tests.web_server import kominn_run

    with kominn_run(settings.database_url) as (base, process):
        page = httpx.get(base + "/chat")
        assert page.status_code == 200 and 'role="log"' in page.text
        assert httpx.get(base + "/ideer").status_code == 200
        assert httpx.get(base + "/static/kominn.css").status_code == 200
    assert f"{base}/chat" in process.stdout.read()  # type: ignore[union-attr]


def test_bad_setting_fails_with_one_line(settings: Settings) -> None:
    result = kominn(settings, "ideas", "list", env={"KOMINN_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "KOMINN_HTTP_PORT" in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_and_default_sqlite_creates_itself(tmp_path: Path, settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the embedded default is SQLite")
    env = {"DATABASE_URL": "sqlite:///./kominn.db"}
    result = kominn(settings, "ideas", "list", "--format", "json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert (tmp_path / "kominn.db").exists()
    upgraded = kominn(settings, "db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0
    assert all(head in upgraded.stdout for head in head_revisions(env["DATABASE_URL"]))


def test_ideas_hide_and_unhide(settings: Settings) -> None:
    assert kominn(settings, "chat", "--user", "kari", stdin=SUBMISSION).returncode == 0
    refused = kominn(settings, "ideas", "hide", "KI-1", "--reason", " ")
    assert refused.returncode == 1 and "reason" in refused.stderr
    hidden = kominn(settings, "ideas", "hide", "KI-1", "--reason", "Personopplysninger")
    assert hidden.returncode == 0, hidden.stderr
    again = kominn(settings, "ideas", "hide", "KI-1", "--reason", "Andre gang")
    assert again.returncode == 0 and "already hidden" in again.stdout
    exported = kominn(settings, "export", "--format", "json")
    assert json.loads(exported.stdout) == []
    assert kominn(settings, "ideas", "unhide", "KI-1").returncode == 0
    assert "was not hidden" in kominn(settings, "ideas", "unhide", "KI-1").stdout
    assert len(json.loads(kominn(settings, "export", "--format", "json").stdout)) == 1
    assert kominn(settings, "ideas", "publish", "KI-1").returncode == 0
