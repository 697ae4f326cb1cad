"""Backup and restore of a KomInn database (`kominn db backup|restore`).

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies the database page by
page inside one read transaction, so the copy is consistent while `kominn run` keeps writing
(a plain `cp` of a WAL database may catch half a transaction, or miss the WAL). A restore goes
the same way in the other direction, then `PRAGMA integrity_check` and a row count prove the
result. PostgreSQL: `pg_dump --format=custom` and `pg_restore`, the tools that understand the
server's own consistency (a dump is one snapshot).

A restore refuses a file that is not a KomInn database, one whose schema revision this code
does not know (written by newer code: restoring it would run old code on a schema it does not
understand), and a target that holds data or is in use, unless forced.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

from storage.migrate import unknown_schema
from storage.models import SQLModel

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
# Tables every KomInn database has had since the first migration.
REQUIRED = frozenset({"alembic_version", "person", "idea", "outbox", "processed_update"})


class BackupError(RuntimeError):
    """A backup or restore refused or failed; the message says why and what to do."""


@dataclass
class Report:
    """What a backup file or a restored database holds."""

    location: str
    revisions: set[str]
    counts: dict[str, int] = field(default_factory=dict)
    integrity: str = "ok"

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def table_names() -> list[str]:
    return [t.name for t in SQLModel.metadata.sorted_tables]


# --- backup -----------------------------------------------------------------------------------


def backup(url: str, target: Path, *, force: bool = False) -> Report:
    """Write a consistent copy of the database at `url` to `target`."""
    if target.exists() and not force:
        raise BackupError(f"{target} exists: choose a new file or pass --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(parsed), timeout=30)
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)  # all pages in one step: one consistent snapshot
            destination.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            destination.close()
            source.close()
    else:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
              f"--file={partial}", _libpq(parsed)], parsed)
    os.replace(partial, target)
    return inspect_file(target)


# --- what a file holds ------------------------------------------------------------------------


def inspect_file(path: Path) -> Report:
    """The revision and row counts of a backup file; BackupError if it is not KomInn's."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    head = _magic(path)
    if head.startswith(SQLITE_MAGIC):
        return _inspect_sqlite(path)
    if head.startswith(PG_MAGIC):
        return _inspect_dump(path)
    raise BackupError(f"{path} is neither an SQLite database nor a pg_dump archive")


def _inspect_sqlite(path: Path) -> Report:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        _require_tables(path, tables)
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        revisions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        counts = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                  for name in table_names() if name in tables}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    finally:
        conn.close()
    return Report(str(path), revisions, counts, integrity)


def _inspect_dump(path: Path) -> Report:
    listing = _run([_tool("pg_restore"), "--list", str(path)], None)
    tables = set()
    for line in listing.splitlines():  # "215; 1259 16390 TABLE public idea kominn"
        parts = line.split()
        if "TABLE" in parts and "DATA" not in parts and not line.startswith(";"):
            at = parts.index("TABLE")
            if len(parts) > at + 2:
                tables.add(parts[at + 2])
    _require_tables(path, tables)
    data = _run([_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-",
                 str(path)], None)
    revisions: set[str] = set()
    copying = False
    for line in data.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            copying = True
        elif copying and line == "\\.":
            copying = False
        elif copying and line.strip():
            revisions.add(line.strip())
    return Report(str(path), revisions, integrity="not checked (pg_dump archive)")


def _require_tables(path: Path, tables: set[str]) -> None:
    missing = REQUIRED - tables
    if missing:
        names = ", ".join(sorted(missing))
        raise BackupError(f"{path} is not a KomInn database (no table {names})")


# --- restore ----------------------------------------------------------------------------------


def restore(source: Path, url: str, *, known: set[str], force: bool = False) -> Report:
    """Replace the database at `url` with the backup `source`; returns the restored report."""
    found = inspect_file(source)
    unknown = found.revisions - known
    if unknown or not found.revisions:
        raise BackupError(unknown_schema(str(source), found.revisions))
    if found.integrity != "ok" and not found.integrity.startswith("not checked"):
        raise BackupError(f"{source} fails its integrity check: {found.integrity}")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not _magic(source).startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is a PostgreSQL dump: restore it into PostgreSQL")
        return _restore_sqlite(source, Path(_sqlite_path(parsed)), force=force)
    if not _magic(source).startswith(PG_MAGIC):
        raise BackupError(f"{source} is an SQLite file: restore it into SQLite")
    return _restore_postgres(source, parsed, force=force)


def _restore_sqlite(source: Path, target: Path, *, force: bool) -> Report:
    shm = Path(f"{target}-shm")
    if shm.exists() and not force:
        raise BackupError(f"{target} is open ({shm.name} exists): stop kominn first, "
                          "or pass --force")
    if target.exists() and not force:
        rows = _inspect_sqlite_target(target)
        if rows:
            raise BackupError(f"{target} holds {rows} rows: pass --force to replace them")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")  # as KomInn runs it
    finally:
        dst.close()
        src.close()
    restored = _inspect_sqlite(target)
    if restored.integrity != "ok":
        raise BackupError(f"the restored {target} fails its integrity check: "
                          f"{restored.integrity}")
    return restored


def _inspect_sqlite_target(target: Path) -> int:
    try:
        return _inspect_sqlite(target).rows
    except BackupError:  # not ours, or empty: any content counts
        return 0 if target.stat().st_size == 0 else 1


def _restore_postgres(source: Path, url: URL, *, force: bool) -> Report:
    engine = create_engine(url)
    try:
        if not force:
            others, rows = _postgres_use(engine)
            if others:
                raise BackupError(f"{others} other connections use the database: stop the "
                                  "kominn workers first, or pass --force")
            if rows:
                raise BackupError(f"the database holds {rows} rows: pass --force to "
                                  "replace them")
        engine.dispose()
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", f"--dbname={_libpq(url)}",
              str(source)], url)
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            revisions = {r[0] for r in conn.execute(text("SELECT version_num FROM "
                                                         "alembic_version"))}
            counts = {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                      for name in table_names() if name in names}
    finally:
        engine.dispose()
    return Report(url.render_as_string(hide_password=True), revisions, counts,
                  "restored in one transaction (pg_restore --single-transaction)")


def _postgres_use(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        others = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalar_one()
        names = set(inspect(conn).get_table_names())
        rows = sum(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                   for name in table_names() if name in names)
    return int(others), int(rows)


# --- helpers ----------------------------------------------------------------------------------


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(16)


def _sqlite_path(url: URL) -> str:
    if url.database in (None, "", ":memory:"):
        raise BackupError("an in-memory database cannot be backed up or restored")
    return url.database


def _libpq(url: URL) -> str:
    """The URL as libpq reads it, without the password (that goes in PGPASSWORD: a command
    line is visible to every user of the machine)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _run(args: list[str], url: URL | None) -> str:
    env = dict(os.environ)
    if url is not None and url.password:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        # One line (the CLI's failures are one line): the tool's lines joined.
        said = " ".join(done.stderr.split())[:500]
        raise BackupError(f"{Path(args[0]).name} failed on the database at DATABASE_URL: {said}")
    return done.stdout
