"""Helpers every `kominn` command shares: settings, database, output, one-line failures."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from bot.config import ConfigError, Settings, get_settings
from bot.ideas.book import IdeaBook
from storage.migrate import SchemaBehind

if TYPE_CHECKING:
    from sqlalchemy import Engine as DbEngine

    from bot.runtime import Runtime


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable


def runtime(index_wait: float = 3.0) -> Runtime:
    """The runtime of every command that serves or delivers: the features of the settings,
    and the citizens' way into a competition (Telegram's deep link). `index_wait`: how long
    to wait for the similar-ideas index (`bot.runtime.open_runtime`)."""
    from adapters.telegram.links import campaign_links
    from bot.runtime import open_runtime

    try:
        return open_runtime(settings(), campaign_links=campaign_links, index_wait=index_wait)
    except SchemaBehind as exc:
        fail(f"{exc}")


def database() -> DbEngine:
    from bot.runtime import open_database

    try:
        return open_database(settings())
    except SchemaBehind as exc:
        fail(f"{exc}")


def idea_book() -> IdeaBook:
    """Changes made from the shell are followed like any other (follow-ups, Slack posts)."""
    from bot.features import assemble

    return assemble(settings()).ideas


def check_format(fmt: str, allowed: tuple[str, ...] = ("table", "json")) -> str:
    if fmt not in allowed:
        fail(f"--format must be one of: {', '.join(allowed)}")
    return fmt


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def console(stderr: bool = False) -> Console:
    """Where tables and text go: what citizens wrote is printed as written — no Rich markup
    ("[/]" in a title would end the command), no emoji codes, no highlighting."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)
