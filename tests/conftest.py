"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when
KOMINN_TEST_DATABASE_URL is set — `.ci/run` runs the whole suite both ways)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, make_url, text

from bot.config import Settings, load_settings
from bot.runtime import Runtime, open_runtime
from storage.db import make_engine
from storage.migrate import upgrade
from tests.helpers import ChatPerson


def worker_database(url: str | None) -> str | None:
    """The PostgreSQL database of this test process. Under pytest-xdist (`scripts/test.sh`
    runs each pass on several workers) every worker has its own next to the one given,
    `<name>_gw0`, `<name>_gw1`, … (created by `pytest_configure` when missing): a test resets
    its database's schema, which would pull it from under another worker's test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    given = make_url(url)
    return given.set(database=f"{given.database}_{worker}").render_as_string(
        hide_password=False)


PG_URL = worker_database(os.environ.get("KOMINN_TEST_DATABASE_URL"))

# CI runs property tests with a fixed seed: a red build must be reproducible, never a fluke.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """A pytest-xdist worker's own PostgreSQL database, created next to the given one (the
    role needs CREATEDB, as scripts/postgres.sh makes it) the first time it is needed."""
    given = os.environ.get("KOMINN_TEST_DATABASE_URL")
    if not PG_URL or given == PG_URL:
        return
    name = make_url(PG_URL).database
    engine = create_engine(given or "", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                           {"name": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


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
