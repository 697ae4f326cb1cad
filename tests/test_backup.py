"""`kominn db backup` / `kominn db restore` through the console script: consistent while KomInn
writes, refusals for a foreign, newer or occupied target, the integrity and row report."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from bot.config import Settings
from bot.runtime import Runtime, open_runtime
from storage.models import Idea
from tests.conftest import PG_URL
from tests.helpers import ChatPerson
from tests.test_cli import kominn

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="the SQLite file path")


def _ideas(runtime: Runtime) -> int:
    with Session(runtime.db) as session:
        return session.exec(select(func.count()).select_from(Idea)).one()


def _submit(runtime: Runtime, n: int, user: str = "kari") -> None:
    person = ChatPerson(runtime.engine, user)
    for i in range(n):
        person.submit(title=f"Idé nummer {i} fra {user}",
                      description=f"Beskrivelse {i} av en idé om bedre busstilbud i Asker.")


def _count(report: str, table: str) -> int:
    found = re.search(rf"^\s+{table}\s+(\d+)$", report, re.M)
    assert found, report
    return int(found.group(1))


@sqlite_only
def test_backup_while_writing_is_consistent_and_restores(tmp_path: Path, settings: Settings,
                                                         runtime: Runtime) -> None:
    _submit(runtime, 3)
    writer = threading.Thread(target=_submit, args=(runtime, 5, "ola"))
    writer.start()  # KomInn keeps writing while the backup runs
    result = kominn(settings, "db", "backup", str(tmp_path / "kominn.bak"))
    writer.join()
    assert result.returncode == 0, result.stderr
    assert "integrity: ok" in result.stdout
    copy = sqlite3.connect(tmp_path / "kominn.bak")
    ideas, histories = copy.execute(
        "SELECT (SELECT count(*) FROM idea), "
        "(SELECT count(*) FROM status_change WHERE to_status='new')").fetchone()
    copy.close()
    assert 3 <= ideas <= 8 and ideas == histories  # one snapshot: every idea with its history

    target = tmp_path / "restored" / "kominn.db"
    restored = kominn(settings, "db", "restore", str(tmp_path / "kominn.bak"),
                      env={"DATABASE_URL": f"sqlite:///{target}"})
    assert restored.returncode == 0, restored.stderr
    assert "integrity: ok" in restored.stdout
    assert _count(restored.stdout, "idea") == ideas
    back = open_runtime(settings.model_copy(update={"database_url": f"sqlite:///{target}"}))
    assert _ideas(back) == ideas  # a working KomInn database again
    assert ChatPerson(back.engine, "kari").say("/status KI-1")
    back.db.dispose()


@sqlite_only
def test_restore_refuses_foreign_newer_and_occupied(tmp_path: Path, settings: Settings,
                                                    runtime: Runtime) -> None:
    _submit(runtime, 1)
    backup = tmp_path / "ok.bak"
    assert kominn(settings, "db", "backup", str(backup)).returncode == 0
    again = kominn(settings, "db", "backup", str(backup))
    assert again.returncode == 2 and "--force" in again.stderr
    runtime.db.dispose()
    target = {"DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"}

    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database")
    refused = kominn(settings, "db", "restore", str(text_file), env=target)
    assert refused.returncode == 2 and "neither an SQLite database" in refused.stderr

    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    refused = kominn(settings, "db", "restore", str(foreign), env=target)
    assert refused.returncode == 2 and "not a KomInn database" in refused.stderr

    newer = tmp_path / "newer.bak"
    shutil.copy(backup, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    refused = kominn(settings, "db", "restore", str(newer), env=target)
    assert refused.returncode == 2 and "9999_from_the_future" in refused.stderr
    assert "upgrade KomInn first" in refused.stderr

    assert not (tmp_path / "target.db").exists()  # nothing written by a refusal
    assert kominn(settings, "db", "restore", str(backup), env=target).returncode == 0
    occupied = kominn(settings, "db", "restore", str(backup), env=target)
    assert occupied.returncode == 2 and "--force" in occupied.stderr
    forced = kominn(settings, "db", "restore", str(backup), "--force", env=target)
    assert forced.returncode == 0, forced.stderr


@sqlite_only
def test_restore_refuses_a_database_in_use(tmp_path: Path, settings: Settings,
                                           runtime: Runtime) -> None:
    _submit(runtime, 1)
    backup = tmp_path / "ok.bak"
    assert kominn(settings, "db", "backup", str(backup)).returncode == 0
    # The runtime's connections are open: the -shm file says KomInn is running.
    refused = kominn(settings, "db", "restore", str(backup))
    assert refused.returncode == 2 and "stop kominn first" in refused.stderr


@pytest.mark.skipif(not PG_URL or not shutil.which("pg_dump"), reason="PostgreSQL + pg_dump")
def test_postgres_backup_and_restore_with_pg_dump(tmp_path: Path, settings: Settings) -> None:
    runtime = open_runtime(settings)
    _submit(runtime, 2)
    runtime.db.dispose()
    dump = tmp_path / "kominn.dump"
    result = kominn(settings, "db", "backup", str(dump))
    assert result.returncode == 0, result.stderr
    assert dump.read_bytes().startswith(b"PGDMP")

    runtime = open_runtime(settings)
    _submit(runtime, 1, user="ola")
    assert _ideas(runtime) == 3
    runtime.db.dispose()
    refused = kominn(settings, "db", "restore", str(dump))
    assert refused.returncode == 2 and "--force" in refused.stderr
    restored = kominn(settings, "db", "restore", str(dump), "--force")
    assert restored.returncode == 0, restored.stderr
    assert _count(restored.stdout, "idea") == 2
    runtime = open_runtime(settings)
    assert _ideas(runtime) == 2
    runtime.db.dispose()
