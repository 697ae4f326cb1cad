"""`kominn ideas …`: look at ideas and move them through their lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from bot.cli.common import check_format, console, database, fail, idea_book, print_json, settings
from bot.i18n import translator
from bot.localtime import stored_as_local
from storage.models import Idea

ideas_app = typer.Typer(no_args_is_help=True, help="Look at and move ideas.")
FormatOption = Annotated[str, typer.Option("--format", help="table or json")]


@ideas_app.command("list")
def ideas_list(
    status: Annotated[str | None, typer.Option(help="new, useful, realised, declined, merged")]
    = None,
    area: Annotated[str | None, typer.Option(help="focus area")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    fmt: FormatOption = "table",
) -> None:
    """All ideas, newest first."""
    from sqlmodel import Session

    from bot.ideas.records import idea_record
    from dialogs.fields import match_area
    from dialogs.lifecycle import parse_status

    check_format(fmt)
    query = select(Idea).order_by(col(Idea.created_at).desc(), col(Idea.id).desc())
    if status:
        try:
            query = query.where(Idea.status == parse_status(status).value)
        except ValueError as exc:
            fail(str(exc))
    if area:
        # A configured area in any case; another name as given (older ideas may carry it).
        wanted = match_area(area, settings().focus_areas) or area
        query = query.where(Idea.focus_area == wanted)
    if limit:
        query = query.limit(limit)
    with Session(database()) as session:
        records = [_with_hiding(idea_record(session, idea), idea)
                   for idea in session.exec(query)]
    if fmt == "json":
        print_json(records)
        return
    t = translator(settings().locale)
    zone = settings().zone
    english = t.language == "en"
    table = Table("Ref", "Title" if english else "Tittel", "Status",
                  "Area" if english else "Område", "Date" if english else "Dato",
                  "Support" if english else "Støtte", "Hidden" if english else "Skjult")
    hidden = "hidden" if english else "skjult"
    for r in records:
        table.add_row(r["ref"], r["title"], t(f"status.{r['status']}"), r["focus_area"] or "",
                      stored_as_local(r["created_at"], zone, "%Y-%m-%d"),
                      str(r["supporters_count"]), hidden if r["hidden"] else "")
    console().print(table)


def _with_hiding(record: dict[str, Any], idea: Idea) -> dict[str, Any]:
    """The operator's view says whether an idea is off the public views, since when and why
    (`kominn ideas hide`); the open-data export leaves such ideas out altogether."""
    record["hidden"] = idea.hidden_at is not None
    record["hidden_at"] = idea.hidden_at.isoformat() if idea.hidden_at else None
    record["hidden_reason"] = idea.hidden_reason
    return record


@ideas_app.command("show")
def ideas_show(ref: str, fmt: FormatOption = "table") -> None:
    """One idea with its supporters and history."""
    from sqlmodel import Session

    from bot.ideas.book import IdeaNotFound, get_idea
    from bot.ideas.records import idea_detail

    check_format(fmt)
    with Session(database()) as session:
        try:
            idea = get_idea(session, ref)
            detail = _with_hiding(idea_detail(session, idea), idea)
        except IdeaNotFound as exc:
            fail(str(exc), 1)
    if fmt == "json":
        print_json(detail)
        return
    t = translator(settings().locale)
    zone = settings().zone
    out = console()
    out.print(f"{detail['ref']} {detail['title']}", style="bold")
    out.print(f"{t('status.' + detail['status'])} · {detail['focus_area'] or '–'} · "
              f"{detail['place'] or '–'} · {detail['channel']} · "
              f"{stored_as_local(detail['created_at'], zone, '%Y-%m-%d %H:%M')}")
    if detail["hidden"]:
        out.print(f"hidden from the public since "
                  f"{stored_as_local(detail['hidden_at'], zone, '%Y-%m-%d %H:%M')}: "
                  f"{detail['hidden_reason']}")
    out.print(detail["description"])
    if detail["merged_into"]:
        out.print(f"→ {detail['merged_into']}")
    out.print(f"supporters: {len(detail['supporters'])}")
    for h in detail["history"]:
        out.print(f"  {stored_as_local(h['at'], zone, '%Y-%m-%d %H:%M')}  {h['from'] or '–'} → "
                  f"{h['to']}  ({h['by']}){'  ' + h['note'] if h['note'] else ''}")


@ideas_app.command("set-status")
def ideas_set_status(
    ref: str, status: str,
    note: Annotated[str | None, typer.Option(help="public note (required to decline)")] = None,
) -> None:
    """Move an idea through its lifecycle (only the moves the strategy allows)."""
    from bot.ideas.book import IdeaNotFound, get_idea
    from dialogs.lifecycle import parse_status
    from storage.db import transaction

    ideas = idea_book()
    try:
        target = parse_status(status)
        with transaction(database()) as session:
            ideas.set_status(session, get_idea(session, ref), target, by="cli", note=note)
    except (ValueError, IdeaNotFound) as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"{ref.upper()} → {target.value}")


@ideas_app.command("merge")
def ideas_merge(
    ref: str,
    into: Annotated[str, typer.Option("--into", help="the idea to keep")],
    note: Annotated[str | None, typer.Option(help="public note")] = None,
) -> None:
    """Mark REF a duplicate of --into: its supporters follow the kept idea."""
    from bot.ideas.book import IdeaNotFound, get_idea
    from dialogs.lifecycle import MoveNotAllowed
    from storage.db import transaction

    ideas = idea_book()
    try:
        with transaction(database()) as session:
            ideas.merge(session, get_idea(session, ref), get_idea(session, into), by="cli",
                        note=note)
    except (MoveNotAllowed, IdeaNotFound) as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"{ref.upper()} → merged into {into.upper()}")


@ideas_app.command("hide")
def ideas_hide(
    ref: str,
    reason: Annotated[str, typer.Option(help="why (the author is told)")],
) -> None:
    """Take an idea off every public view (board, Open311, export, similar ideas)."""
    from bot.ideas.book import IdeaNotFound, get_idea
    from storage.db import transaction

    ideas = idea_book()
    try:
        with transaction(database()) as session:
            changed = ideas.hide(session, get_idea(session, ref), reason, by="cli")
    except (ValueError, IdeaNotFound) as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"{ref.upper()} {'hidden' if changed else 'was already hidden: nothing changed'}")


@ideas_app.command("unhide")
def ideas_unhide(ref: str) -> None:
    """Show a hidden idea on the public pages again (the author is told)."""
    _change(ref, "unhide", "shown again", unchanged="was not hidden: nothing changed")


@ideas_app.command("publish")
def ideas_publish(ref: str) -> None:
    """"Publiser": show a new idea publicly under KOMINN_PUBLISH=after-review."""
    _change(ref, "publish", "published")


def _change(ref: str, method: str, done: str, unchanged: str = "") -> None:
    from bot.ideas.book import IdeaNotFound, get_idea
    from storage.db import transaction

    ideas = idea_book()
    try:
        with transaction(database()) as session:
            changed = getattr(ideas, method)(session, get_idea(session, ref), by="cli")
    except IdeaNotFound as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"{ref.upper()} {unchanged if changed is False and unchanged else done}")
