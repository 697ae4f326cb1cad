"""The `kominn` command line: the composition root for operators. `chat` and `run` are here;
every other command group has its own module in bot/cli/."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli import campaigns, db, dedup, ideas, jobs, mail, report
from bot.cli.common import runtime, settings
from bot.config import ConfigError

# Every command group, each in its own module, added here once.
app = typer.Typer(add_completion=False, no_args_is_help=True,
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
    """Logging is configured once per command, from the same settings."""
    from bot.logs import configure

    configure(settings())


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
    try:
        app()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
