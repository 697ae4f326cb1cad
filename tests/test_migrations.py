"""Alembic is the only way the schema changes: empty → head, and the latest migration
round-trips (downgrade, upgrade) on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.config import load_settings
from bot.runtime import open_database
from storage.db import make_engine
from storage.migrate import (
    SchemaBehind,
    alembic_config,
    current_revisions,
    downgrade,
    head_revisions,
    upgrade,
)


def test_empty_database_upgrades_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revisions(engine) == head_revisions(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"person", "idea", "status_change", "support", "dialog_state", "processed_update",
            "outbox", "duplicate_candidate"} <= tables
    engine.dispose()


def test_latest_migration_round_trips(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    script = ScriptDirectory.from_config(alembic_config(database_url))
    for head in script.get_heads():
        previous = script.get_revision(head).down_revision or "base"
        downgrade(engine, previous if isinstance(previous, str) else previous[0])
        upgrade(engine)
    assert current_revisions(engine) == head_revisions(database_url)
    engine.dispose()


def test_refuses_database_behind_head_unless_embedded_sqlite(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    downgrade(engine, "base")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", database_url)
    settings = load_settings(_env_file=None)
    if settings.is_default_sqlite:
        open_database(settings).dispose()  # the embedded default upgrades itself
        assert current_revisions(make_engine(database_url)) == head_revisions(database_url)
    else:
        with pytest.raises(SchemaBehind, match="kominn db upgrade"):
            open_database(settings)
