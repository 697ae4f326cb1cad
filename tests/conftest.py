"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when
KOMINN_TEST_DATABASE_URL is set — `.ci/run` runs the whole suite both ways)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from bot.config import Settings, load_settings
from bot.runtime import Runtime, open_runtime
from storage.db import make_engine
from storage.migrate import upgrade
from tests.helpers import ChatPerson

PG_URL = os.environ.get("KOMINN_TEST_DATABASE_URL")

# CI runs property tests with a fixed seed: a red build must be reproducible, never a fluke.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass (`.ci/run`'s second), leave out the tests that never open a
    database: they ran exactly the same way on the SQLite pass. A test opens one through the
    `database_url` fixture (all the others build on it) or by reading `PG_URL` itself."""
    if not PG_URL:
        return
    same = [item for item in items if "database_url" not in getattr(item, "fixturenames", ())
            and not hasattr(getattr(item, "module", None), "PG_URL")]
    if same:
        config.hook.pytest_deselected(items=same)
        items[:] = [item for item in items if item not in same]


def reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        reset_postgres(PG_URL)
        yield PG_URL
    else:
        yield f"sqlite:///{tmp_path / 'kominn.db'}"


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KOMINN_QUIET_HOURS", "off")
    # Tests chat fast; the flood limit has its own test with the default of 30.
    monkeypatch.setenv("KOMINN_MAX_MESSAGES_PER_MINUTE", "100000")
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return load_settings(_env_file=None)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = open_runtime(settings)
    yield rt
    rt.db.dispose()


@pytest.fixture
def kari(runtime: Runtime) -> ChatPerson:
    return ChatPerson(runtime.engine, "kari")


@pytest.fixture
def ola(runtime: Runtime) -> ChatPerson:
    return ChatPerson(runtime.engine, "ola")
