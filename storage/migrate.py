"""Alembic, driven from code: the only way the schema changes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaBehind(RuntimeError):
    """The database is older than the code: `kominn db upgrade` fixes it."""


class SchemaAhead(RuntimeError):
    """The database carries a schema revision this code has no migration for (newer code
    wrote it): only newer code can run on it, so nothing is changed."""


def unknown_schema(what: str, revisions: set[str]) -> str:
    """The one wording for a schema this code does not know, said of a database and of a
    backup file (`kominn db restore`)."""
    return (f"{what} has schema revision {', '.join(sorted(revisions)) or 'none'}, which this "
            "code does not know (newer code wrote it): upgrade KomInn first")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revisions(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def check_known(engine: Engine) -> None:
    """Raise `SchemaAhead` when the database is at a revision this code does not know."""
    current = current_revisions(engine)
    if current - known_revisions(engine.url.render_as_string(hide_password=False)):
        raise SchemaAhead(unknown_schema("the database (DATABASE_URL)", current))


def upgrade(engine: Engine, revision: str = "heads") -> None:
    check_known(engine)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Upgrade (embedded SQLite default) or refuse to run on a database behind head; refuse
    one ahead of the code (`SchemaAhead`) either way."""
    url = engine.url.render_as_string(hide_password=False)
    if current_revisions(engine) == head_revisions(url):
        return
    check_known(engine)
    if auto_upgrade:
        upgrade(engine)
        return
    raise SchemaBehind("the database schema is not up to date: run `kominn db upgrade`")


def known_revisions(url: str) -> set[str]:
    """Every revision this code has a migration for: a database at any other revision was
    written by newer code (or is not ours)."""
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config(url))
            .walk_revisions()}
