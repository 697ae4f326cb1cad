"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the settings each backend needs for concurrent use.

    `hide_parameters`: a database error quoting its statement would otherwise carry what a
    citizen typed into the logs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, echo=echo, hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if parsed.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Deleted content is overwritten with zeros, so an erased person's name does not
            # linger in free pages of the file (see `scrub_after_commit` for the WAL).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, hide_parameters=True, pool_pre_ping=True,
                         pool_size=10, max_overflow=20)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def scrub_after_commit(session: Session) -> None:
    """After this session commits, copy the WAL into the database file and truncate it, so
    older versions of erased rows (still in WAL frames until the next checkpoint) are gone
    from the disk too. SQLite only; on PostgreSQL erased tuples go with VACUUM (README)."""
    engine = session.get_bind()
    if not isinstance(engine, Engine) or not is_sqlite(engine):
        return
    event.listen(session, "after_commit", lambda _s: checkpoint_truncate(engine), once=True)


def checkpoint_truncate(engine: Engine) -> bool:
    """`PRAGMA wal_checkpoint(TRUNCATE)`; False if a reader kept it from finishing (it is
    retried by the next erasure and by SQLite's own checkpoints)."""
    if not is_sqlite(engine):
        return True
    with engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    return not (busy and busy[0])


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll everything back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
