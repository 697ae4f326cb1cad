"""What the `kominn` command line prints, through the real console-script entry point: citizen
text as written, local dates, hidden ideas, output folders, one line for a database that
cannot be used, and help texts."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from tests.test_cli import kominn

pytestmark = pytest.mark.once  # the CLI's output: the same on every database

WIDE = {"COLUMNS": "250"}  # Rich tables fold long cells to the terminal's width
TITLES = ("Skilt [/] ved [b]Vollen", "Lys i [parken] om kvelden")
DESCRIPTION = "Det mangler skilt [link=http://x]her[/link] ved Vollen brygge, [bold]ja[/bold]."


def import_file(settings: Settings, tmp_path: Path, rows: list[str],
                header: str = "title;description;focus_area;place;created_at;channel"
                ) -> None:
    path = tmp_path / "ideas.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    done = kominn(settings, "import", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def one_line(result: object) -> str:
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and "\n" not in stderr, stderr
    return stderr


# --- citizen text with brackets ---------------------------------------------------------------

def test_citizen_text_with_brackets_is_printed_as_written(settings: Settings,
                                                           tmp_path: Path) -> None:
    import_file(settings, tmp_path, [f"{TITLES[0]};{DESCRIPTION};;Vollen;2024-03-05;email",
                                     f"{TITLES[1]};Det er mørkt i [parken] om kvelden.;;;;"])
    listed = kominn(settings, "ideas", "list", env=WIDE)
    assert listed.returncode == 0, listed.stderr
    assert TITLES[0] in listed.stdout and TITLES[1] in listed.stdout
    filtered = kominn(settings, "ideas", "list", "--status", "new", "--limit", "2", env=WIDE)
    assert filtered.returncode == 0 and TITLES[0] in filtered.stdout
    shown = kominn(settings, "ideas", "show", "KI-1", env=WIDE)
    assert shown.returncode == 0, shown.stderr
    assert f"KI-1 {TITLES[0]}" in shown.stdout and DESCRIPTION in shown.stdout
    other = kominn(settings, "ideas", "show", "KI-2", env=WIDE)
    assert "Det er mørkt i [parken] om kvelden." in other.stdout


def test_import_rejected_rows_and_report_print_brackets(settings: Settings,
                                                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("title;description;focus_area\n"
                   "Benk ved Vollen brygge;En benk med utsikt over fjorden.;[/]Park\n",
                   encoding="utf-8")
    refused = kominn(settings, "import", str(bad), env=WIDE)
    assert refused.returncode == 1
    assert "'[/]Park'" in refused.stdout and "Traceback" not in refused.stderr

    created = kominn(settings, "campaigns", "create", "--title", "Park [/] konkurranse",
                     "--question", "Hva skal parken brukes til?", "--closes", "2099-01-31")
    assert created.returncode == 0, created.stderr
    report = kominn(settings, "report", env=WIDE)
    assert report.returncode == 0, report.stderr
    assert "Park [/] konkurranse" in report.stdout


# --- local dates and hidden ideas -------------------------------------------------------------

def test_ideas_list_and_show_give_local_dates_and_say_what_is_hidden(
        settings: Settings, tmp_path: Path) -> None:
    # 2024-03-05 is local midnight in Europe/Oslo: 2024-03-04T23:00 in UTC.
    import_file(settings, tmp_path, ["Hundepark i Vollen;Et inngjerdet område for hunder i "
                                     "Vollen.;Folkehelse;Vollen;2024-03-05;email",
                                     "Benk ved Vollen brygge;En benk med utsikt over fjorden."
                                     ";;;2024-03-06T12:30;"])
    hidden = kominn(settings, "ideas", "hide", "KI-1", "--reason", "Inneholder [navn]")
    assert hidden.returncode == 0, hidden.stderr

    table = kominn(settings, "ideas", "list", env=WIDE).stdout
    row = next(line for line in table.splitlines() if "KI-1" in line)
    assert "2024-03-05" in row and "2024-03-04" not in row and "skjult" in row
    other = next(line for line in table.splitlines() if "KI-2" in line)
    assert "2024-03-06" in other and "skjult" not in other
    english = kominn(settings, "ideas", "list", env={**WIDE, "KOMINN_LOCALE": "en"}).stdout
    assert "Hidden" in english and "hidden" in next(
        line for line in english.splitlines() if "KI-1" in line)

    records = {r["ref"]: r for r in json.loads(
        kominn(settings, "ideas", "list", "--format", "json").stdout)}
    assert records["KI-1"]["hidden"] is True
    assert records["KI-1"]["hidden_reason"] == "Inneholder [navn]"
    assert records["KI-1"]["hidden_at"] is not None
    assert (records["KI-2"]["hidden"], records["KI-2"]["hidden_reason"]) == (False, None)
    assert records["KI-1"]["created_at"].startswith("2024-03-04T23:00")  # JSON stays UTC

    shown = kominn(settings, "ideas", "show", "KI-1", env=WIDE).stdout
    assert "· 2024-03-05 00:00" in shown and "2024-03-04" not in shown
    assert re.search(r"hidden from the public since \d{4}-\d\d-\d\d \d\d:\d\d: "
                     r"Inneholder \[navn\]", shown), shown
    detail = json.loads(kominn(settings, "ideas", "show", "KI-1", "--format", "json").stdout)
    assert detail["hidden"] is True and detail["hidden_reason"] == "Inneholder [navn]"
    assert "hidden from" not in kominn(settings, "ideas", "show", "KI-2").stdout

    assert kominn(settings, "ideas", "unhide", "KI-1").returncode == 0
    again = json.loads(kominn(settings, "ideas", "show", "KI-1", "--format", "json").stdout)
    assert (again["hidden"], again["hidden_reason"]) == (False, None)


# --- output files -----------------------------------------------------------------------------

def test_report_chart_and_export_create_missing_folders(settings: Settings,
                                                        tmp_path: Path) -> None:
    chart = tmp_path / "a" / "b" / "chart.png"
    made = kominn(settings, "report", "--format", "csv", "--chart", str(chart))
    assert made.returncode == 0, made.stderr
    assert chart.read_bytes().startswith(b"\x89PNG")
    target = tmp_path / "c" / "d" / "ideas.csv"
    exported = kominn(settings, "export", "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    assert target.read_text(encoding="utf-8").startswith("ref,")

    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    for args in (("report", "--chart", str(blocker / "chart.png")),
                 ("export", "--output", str(blocker / "x.csv"))):
        refused = kominn(settings, *args)
        assert refused.returncode == 1
        assert one_line(refused).startswith(f"cannot write {blocker}")
        assert refused.stdout == ""  # refused before any output


# --- the database -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [("ideas", "list"), ("db", "upgrade"), ("export",)])
def test_an_unusable_database_url_gives_one_line(settings: Settings, tmp_path: Path,
                                                 command: tuple[str, ...]) -> None:
    cases = {
        f"postgresql+psycopg://kominn:secret@127.0.0.1:{free_port()}/kominn":
            (75, "Connection refused"),
        f"sqlite:///{tmp_path}/missing-folder/x.db": (75, "unable to open database file"),
        "mysql://x": (2, "the driver MySQLdb is not installed"),
    }
    for url, (code, reason) in cases.items():
        result = kominn(settings, *command, env={"DATABASE_URL": url})
        line = one_line(result)
        assert result.returncode == code, (url, line)
        assert "DATABASE_URL" in line and reason in line, line
        assert "secret" not in line


def test_db_backup_of_an_unusable_database_gives_one_line(settings: Settings,
                                                          tmp_path: Path) -> None:
    target = str(tmp_path / "backup.db")
    sqlite = kominn(settings, "db", "backup", target,
                    env={"DATABASE_URL": f"sqlite:///{tmp_path}/missing-folder/x.db"})
    assert sqlite.returncode == 75
    assert "DATABASE_URL" in one_line(sqlite) and "unable to open" in sqlite.stderr
    url = f"postgresql+psycopg://kominn:secret@127.0.0.1:{free_port()}/kominn"
    postgres = kominn(settings, "db", "backup", target, env={"DATABASE_URL": url})
    assert postgres.returncode == 2
    assert one_line(postgres).startswith(
        ("pg_dump failed on the database at DATABASE_URL: ", "pg_dump is not installed"))


def test_mail_bounce_keeps_its_try_again_later(settings: Settings, tmp_path: Path) -> None:
    result = kominn(settings, "mail", "bounce", stdin="From: x@example.org\n\nhello\n",
                    env={"DATABASE_URL": f"sqlite:///{tmp_path}/missing-folder/x.db"})
    assert result.returncode == 75
    assert one_line(result) == "database unavailable, try again later: OperationalError"


def test_a_database_from_newer_code_gives_restores_line(settings: Settings,
                                                        tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    env = {"DATABASE_URL": f"sqlite:///{newer}"}
    assert kominn(settings, "db", "upgrade", env=env).returncode == 0
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_future'")
    ending = ("has schema revision 0099_future, which this code does not know (newer code "
              "wrote it): upgrade KomInn first")
    for command in (("ideas", "list", "--format", "json"), ("db", "upgrade"), ("report",),
                    ("jobs", "list")):
        result = kominn(settings, *command, env=env)
        assert result.returncode == 2, result.stderr
        assert one_line(result) == f"the database (DATABASE_URL) {ending}"
    restored = kominn(settings, "db", "restore", str(newer))  # the same words for a file
    assert restored.returncode == 2 and one_line(restored) == f"{newer} {ending}"


# --- help -------------------------------------------------------------------------------------

def test_help_texts_are_printed_as_written(settings: Settings) -> None:
    env = {"COLUMNS": "100"}
    imported = kominn(settings, "import", "--help", env=env)
    assert imported.returncode == 0
    assert "[focus_area, place, created_at, channel]" in " ".join(imported.stdout.split())
    backup = kominn(settings, "db", "backup", "--help", env=env).stdout
    assert re.search(r"^\s+--force\s+Overwrite an existing file\.", backup, re.M), backup
    assert "<bool>" not in backup
    for group in ((), ("jobs", "requeue"), ("dedup", "calibrate")):
        assert "<bool>" not in kominn(settings, *group, "--help", env=env).stdout
    top = kominn(settings, "--help", env=env).stdout
    commands = top.split("Commands:")[1].strip("\n").splitlines()
    assert len(commands) >= 10
    # One line per command: a docstring's own line breaks do not cut the summary.
    assert all(re.match(r"^  [a-z-]+\s{2,}\S", line) for line in commands), commands
    report = kominn(settings, "report", "--help", env=env).stdout
    assert "overall and per focus area" in report.replace("\n  ", " ")
