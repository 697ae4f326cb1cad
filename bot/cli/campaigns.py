"""`kominn campaigns …`: idea competitions for operators."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from bot.cli.common import check_format, console, database, fail, print_json, settings
from bot.localtime import parse_day, parse_moment, stored_as_local
from dialogs.fields import FormProblem

campaigns_app = typer.Typer(no_args_is_help=True, help="Idea competitions (idékonkurranser).")


def parse_time(value: str, option: str, *, last_day: bool = False) -> datetime:
    """ISO date or time; without a zone it is the municipality's local time. A bare date is
    the start of that day, or with `last_day` (`--closes`) its end, as Slack's form has it
    (`bot.staff.campaigns.closing_time`)."""
    from bot.staff.campaigns import closing_time

    zone = settings().zone
    if last_day:
        with suppress(ValueError):  # a date alone: the last day
            return closing_time(parse_day(value), zone)
    try:
        return parse_moment(value, zone)
    except ValueError:
        fail(f"{option}: not an ISO date/time: {value!r}")


@campaigns_app.command("create")
def create(
    title: Annotated[str, typer.Option(help="the competition's title")],
    question: Annotated[str, typer.Option(help="the question citizens answer")],
    closes: Annotated[str, typer.Option(
        help="ISO time it closes; a date alone is its last day (it closes at the day's end)")],
    opens: Annotated[str | None, typer.Option(
        help="ISO time it opens (default now); a date alone: at the day's start")] = None,
    area: Annotated[str | None, typer.Option(help="focus area")] = None,
    text: Annotated[str | None, typer.Option(help="a short text")] = None,
) -> None:
    """Create an idea competition; prints its id and Telegram deep link."""
    from adapters.telegram import links
    from bot.features import campaigns
    from storage.db import transaction
    from storage.models import utcnow

    cfg = settings()
    closes_at = parse_time(closes, "--closes", last_day=True)
    opens_at = parse_time(opens, "--opens") if opens else None
    draft, problems = campaigns.check_campaign(
        title=title, question=question, text=text, focus_area=area or None, opens_at=opens_at,
        closes_at=closes_at, areas=cfg.focus_areas, zone=cfg.zone, now=utcnow())
    if draft is None:
        fail(_refusal(problems, cfg.focus_areas), 1)
        return
    with transaction(database()) as session:
        number = campaigns.create(session, title=draft.title, question=draft.question,
                                  closes_at=draft.closes_at, opens_at=draft.opens_at,
                                  focus_area=draft.focus_area, text=draft.text, by="cli").id or 0
    typer.echo(f"campaign {number}")
    link = links.campaign_link(links.bot_username(cfg), number)
    if link is not None:
        typer.echo(link)
    elif cfg.telegram_bot_token:
        typer.echo("no deep link: Telegram did not tell the bot's name; set "
                   "TELEGRAM_BOT_USERNAME", err=True)
    else:
        typer.echo("no deep link: no bot name configured (set TELEGRAM_BOT_USERNAME, "
                   "the bot's @username)", err=True)


def _refusal(problems: list[FormProblem], areas: list[str]) -> str:
    """Every broken rule on one line, naming the options (and the areas there are)."""
    from bot.features.campaigns import CampaignRefused

    said = f"refused: {CampaignRefused(problems)}"
    if any(p.field == "area" for p in problems):
        said += f" (--area must be one of: {'; '.join(areas)})"
    return said


@campaigns_app.command("list")
def list_(fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table") -> None:
    """All competitions, newest first, with their figures."""
    from bot.features import campaigns
    from storage.models import utcnow

    check_format(fmt)
    now = utcnow()
    with Session(database()) as session:
        rows = [campaigns.summary(session, c, now) for c in campaigns.list_all(session)]
    if fmt == "json":
        print_json(rows)
        return
    table = Table("Id", "Title", "State", "Opens", "Closes", "Ideas", "Supporters", "Realised",
                  "Chosen")
    zone = settings().zone
    for r in rows:
        table.add_row(str(r["id"]), r["title"], r["state"],
                      stored_as_local(r["opens_at"], zone, "%Y-%m-%d %H:%M"),
                      stored_as_local(r["closes_at"], zone, "%Y-%m-%d %H:%M"),
                      str(r["ideas"]), str(r["supporters"]),
                      str(r["realised"]), ", ".join(r["chosen"]))
    console().print(table)


@campaigns_app.command("close")
def close(campaign_id: int) -> None:
    """Close a competition now: submissions stop, moderators get the summary."""
    from bot.features.campaigns import CampaignError
    from bot.staff.campaigns import close_campaign
    from storage.models import utcnow

    try:
        closed = close_campaign(database(), campaign_id, utcnow())
    except CampaignError as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"campaign {campaign_id} closed" if closed
               else f"campaign {campaign_id} was already closed: nothing changed")


@campaigns_app.command("choose")
def choose(campaign_id: int, refs: list[str]) -> None:
    """Mark the chosen ideas; every participant is told the outcome."""
    from bot.features import campaigns
    from bot.ideas.book import IdeaNotFound
    from storage.db import transaction
    from storage.models import utcnow

    try:
        with transaction(database()) as session:
            chosen = campaigns.choose(session, campaigns.get(session, campaign_id), refs,
                                      utcnow())
            names = ", ".join(f"KI-{i.id}" for i in chosen)
    except (campaigns.CampaignError, IdeaNotFound) as exc:
        fail(f"refused: {exc}", 1)
    typer.echo(f"campaign {campaign_id}: chosen {names}")
