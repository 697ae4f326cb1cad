"""`kominn db …`: the database schema, backups and restores (logic in storage/backup.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import fail, settings
from storage.backup import Report

db_app = typer.Typer(no_args_is_help=True, help="Database schema, backup and restore.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (Alembic) up to the newest."""
    from storage.db import make_engine
    from storage.migrate import current_revisions, upgrade

    engine = make_engine(settings().database_url)
    upgrade(engine)
    typer.echo(f"database at {', '.join(sorted(current_revisions(engine)))}")


@db_app.command("backup")
def db_backup(
    file: Path = typer.Argument(..., help="Where to write the backup."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """A consistent copy of the database, safe while `kominn run` is running (SQLite: the
    online backup API; PostgreSQL: pg_dump --format=custom)."""
    from storage.backup import BackupError, backup

    try:
        report = backup(settings().database_url, file, force=force)
    except BackupError as exc:
        fail(str(exc))
        return
    typer.echo(f"backup written to {file}")
    _print(report)


@db_app.command("restore")
def db_restore(
    file: Path = typer.Argument(..., help="A file written by `kominn db backup`."),
    force: bool = typer.Option(False, "--force",
                               help="Replace a database that holds data or is in use."),
) -> None:
    """Replace the database with a backup: refuses a file that is not KomInn's or comes from
    newer code, and a target holding data or in use unless --force; checks the result."""
    from storage.backup import BackupError, restore
    from storage.migrate import head_revisions, known_revisions

    url = settings().database_url
    try:
        report = restore(file, url, known=known_revisions(url), force=force)
    except BackupError as exc:
        fail(str(exc))
        return
    typer.echo(f"restored {file}")
    _print(report)
    if report.revisions != head_revisions(url):
        typer.echo("the restored schema is older than this code: run `kominn db upgrade`")


def _print(report: Report) -> None:
    typer.echo(f"schema revision: {', '.join(sorted(report.revisions))}")
    typer.echo(f"integrity: {report.integrity}")
    if report.counts:
        width = max(len(name) for name in report.counts)
        for name, count in report.counts.items():
            typer.echo(f"  {name:<{width}}  {count:>8}")
        typer.echo(f"  {'total':<{width}}  {report.rows:>8}")
