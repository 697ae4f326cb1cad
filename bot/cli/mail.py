"""`kominn mail …`: e-mail follow-ups. `bounce` reads a bounce (a delivery status
notification) on standard input, as an MTA pipes it (Postfix: an alias `"|kominn mail
bounce"`; README); the bounce is parsed in adapters/web/bounce.py and recorded by
`record_bounce` in adapters/web/mail.py."""

from __future__ import annotations

import os
import sys

import typer

from bot.cli.common import database, settings

mail_app = typer.Typer(no_args_is_help=True, help="E-mail follow-ups: bounces.")

EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the bounce and pipes it again later


@mail_app.command("bounce")
def mail_bounce(
    recipient: str = typer.Option(
        "", "--recipient",
        help="The address the bounce came to (bounces+<token>@…); default: $ORIGINAL_RECIPIENT "
             "or $RECIPIENT as Postfix sets them, else the bounce's Delivered-To/To."),
) -> None:
    """Read one bounce from standard input: a permanent failure (Status 5.x.x) stops e-mail
    to that address and marks the delivery failed; a transient one (4.x.x) is only logged.
    Exits 0 when the bounce was read (even if it was not ours), 75 when the database could not
    be reached (the MTA tries again)."""
    from sqlalchemy.exc import OperationalError

    from adapters.web.mail import record_bounce
    from adapters.web.session import signing_secret

    raw = sys.stdin.buffer.read(10 * 1024 * 1024)
    envelope = recipient or os.environ.get("ORIGINAL_RECIPIENT") or os.environ.get("RECIPIENT")
    config = settings()
    try:
        db = database()
        lines = record_bounce(db, signing_secret(db, config.web_secret), raw, envelope)
    except OperationalError as exc:
        typer.echo(f"database unavailable, try again later: {type(exc).__name__}", err=True)
        raise typer.Exit(EX_TEMPFAIL) from exc
    for line in lines:
        typer.echo(line)
