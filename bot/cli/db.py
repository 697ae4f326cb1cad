"""`kominn db …`: the database schema."""

from __future__ import annotations

import typer

from bot.cli.common import settings

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (Alembic) up to the newest."""
    from storage.db import make_engine
    from storage.migrate import current_revisions, upgrade

    engine = make_engine(settings().database_url)
    upgrade(engine)
    typer.echo(f"database at {', '.join(sorted(current_revisions(engine)))}")
