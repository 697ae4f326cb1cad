"""The `kominn` command line: the composition root for operators. `chat` and `run` are here;
every other command group has its own module in bot/cli/."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli import campaigns, db, dedup, ideas, jobs, mail, report
from bot.cli.common import fail, runtime, settings
from bot.config import ConfigError
from storage.migrate import SchemaAhead

EX_TEMPFAIL = 75  # sysexits.h "try again later", as `kominn mail bounce` exits

# Every command group, each in its own module, added here once. Help is click's plain text,
# not Rich markup: a help text is printed as written ("[focus_area, place]" stays), a flag
# shows no value after it, and docstrings are reflowed to the terminal.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"max_content_width": 120},
                  help="KomInn: the municipality's open door for ideas.")
app.add_typer(ideas.ideas_app, name="ideas")
app.add_typer(db.db_app, name="db")
report.register(app)  # report, export, import
jobs.register(app)  # jobs list, jobs run-due
app.add_typer(campaigns.campaigns_app, name="campaigns")
app.add_typer(dedup.dedup_app, name="dedup")
app.add_typer(mail.mail_app, name="mail")


@app.callback()
def _setup() -> None:
    """Logging is configured once per command, from the same settings; a DATABASE_URL no
    installed driver can open stops here, in one line."""
    from bot.logs import configure

    configure(settings())
    problem = _unusable_database_url(settings().database_url)
    if problem:
        fail(f"Invalid setting DATABASE_URL: {problem}")


def _unusable_database_url(url: str) -> str | None:
    """Why no engine can be made for `url` (unknown kind of database, driver not installed),
    found without connecting; None when one can."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError) as exc:
        return f"{exc} (KomInn runs on sqlite:///… or postgresql+psycopg://…)"
    except ImportError as exc:
        return (f"the driver {exc.name or exc} is not installed (KomInn runs on sqlite:///… "
                "or postgresql+psycopg://…)")
    return None


def _unavailable(exc: Exception) -> str:
    """One line for a database that cannot be reached or used: the key, where it points
    (without a password) and the driver's own first line of reason."""
    from sqlalchemy.engine import make_url

    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    where = make_url(settings().database_url).render_as_string(hide_password=True)
    return (f"database unavailable (DATABASE_URL={where}): "
            f"{reason[0] if reason else type(exc).__name__}")


@app.command()
def chat(user: Annotated[str, typer.Option(help="who you are in the chat")] = "terminal") -> None:
    """Chat with KomInn in the terminal (SQLite ./kominn.db by default, no tokens)."""
    import logging

    from adapters import console

    if settings().log_level != "DEBUG":
        # The terminal is the conversation here: operational logs would talk over it.
        logging.getLogger().setLevel(logging.WARNING)
    console.run(runtime().engine, user)


@app.command()
def run() -> None:
    """Serve the web chat and board, every configured channel (Telegram, Slack) and the
    scheduler in one process. Without tokens: the web channel alone."""
    from adapters.web.service import url
    from bot.app import serve

    # Serve at once: with 100,000 ideas the similar-ideas index takes seconds to build, and
    # until it is built a citizen's similar-ideas step waits for it at most a second
    # (bot/dedup/index.py STARTUP_WAIT) — every other answer needs no index.
    opened = runtime(index_wait=0.0)
    if opened.settings.log_format == "json":  # stdout is one JSON object per line then
        import logging

        logging.getLogger("kominn.app").info("web chat served", extra={
            "event": "web_url", "url": url(opened)})
    else:
        typer.echo(f"KomInn web chat: {url(opened)}  (the idea board: /ideer)")
    serve(opened)


def main() -> None:
    """The entry of every command: what goes wrong with the settings or the database ends in
    one line and a distinct exit code (2: fix a setting or the code; 75: try again later),
    never a traceback."""
    import sqlite3

    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        app()
    except (ConfigError, SchemaAhead) as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
    # SQLAlchemy's wrappers, and sqlite3's own (`kominn db backup` copies with it directly).
    except (OperationalError, InterfaceError, sqlite3.OperationalError) as exc:
        typer.echo(_unavailable(exc), err=True)
        sys.exit(EX_TEMPFAIL)


if __name__ == "__main__":
    main()
