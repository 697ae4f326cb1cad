"""`kominn campaigns …` through the real entry point: text as written, a date as the last day
(Slack's rule), the deep link, and the "nothing to do" answers."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.staff import campaigns as staff
from tests.helpers import ChatPerson
from tests.test_campaigns import make_campaign
from tests.test_cli import kominn

pytestmark = pytest.mark.once  # the CLI's output: the same on every database

QUESTION = "Hva skal parken i Vollen brukes til?"


def create(settings: Settings, *options: str, env: dict | None = None):  # type: ignore[no-untyped-def]
    return kominn(settings, "campaigns", "create", "--question", QUESTION, *options, env=env)


def test_list_prints_a_title_with_brackets_as_written(settings: Settings) -> None:
    made = create(settings, "--title", "Park [/] konkurranse", "--closes", "2099-01-31")
    assert made.returncode == 0, made.stderr
    assert create(settings, "--title", "Lys i [parken] og [bold]veier[/bold]",
                  "--closes", "2099-01-31").returncode == 0
    listed = kominn(settings, "campaigns", "list", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "Park [/] konkurranse" in listed.stdout
    assert "Lys i [parken] og [bold]veier[/bold]" in listed.stdout


def test_a_closing_date_is_the_last_day_as_in_slack(settings: Settings) -> None:
    """`--closes 2099-01-31` closes at the end of that day, where Slack's form puts it; a time
    given is kept as written."""
    assert create(settings, "--title", "Siste dag", "--closes", "2099-01-31").returncode == 0
    assert create(settings, "--title", "Med klokkeslett",
                  "--closes", "2099-01-31T12:00").returncode == 0
    listed = {c["title"]: datetime.fromisoformat(c["closes_at"]) for c in json.loads(
        kominn(settings, "campaigns", "list", "--format", "json").stdout)}
    form, problems = staff.check_form(
        "Siste dag", QUESTION, None, None, None, "2099-01-31", areas=settings.focus_areas,
        zone=settings.zone, now=datetime.now(settings.zone))
    assert form is not None, problems
    assert listed["Siste dag"] == form.closes_at
    assert listed["Siste dag"].astimezone(settings.zone).date() == date(2099, 1, 31)
    assert listed["Med klokkeslett"].astimezone(settings.zone).hour == 12


def test_the_deep_link_takes_the_name_with_or_without_at(settings: Settings) -> None:
    nameless = create(settings, "--title", "Uten navn", "--closes", "2099-01-31")
    assert nameless.returncode == 0, nameless.stderr
    assert "t.me" not in nameless.stdout and "<bot>" not in nameless.stdout
    assert "TELEGRAM_BOT_USERNAME" in nameless.stderr and "no deep link" in nameless.stderr
    with_at = create(settings, "--title", "Med navn", "--closes", "2099-01-31",
                     env={"TELEGRAM_BOT_USERNAME": "@asker_kominn_bot"})
    assert with_at.returncode == 0, with_at.stderr
    assert "https://t.me/asker_kominn_bot?start=k2" in with_at.stdout.splitlines()
    bad = create(settings, "--title", "Feil navn", "--closes", "2099-01-31",
                 env={"TELEGRAM_BOT_USERNAME": "https://t.me/x"})
    assert bad.returncode == 2 and "TELEGRAM_BOT_USERNAME" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_closing_twice_says_it_was_already_closed(settings: Settings) -> None:
    assert create(settings, "--title", "Lukkes", "--closes", "2099-01-31").returncode == 0
    first = kominn(settings, "campaigns", "close", "1")
    assert first.returncode == 0 and first.stdout.strip() == "campaign 1 closed"
    again = kominn(settings, "campaigns", "close", "1")
    assert again.returncode == 0
    assert again.stdout.strip() == "campaign 1 was already closed: nothing changed"


def test_choosing_an_idea_named_twice_lists_it_once(runtime: Runtime, kari: ChatPerson) -> None:
    number = make_campaign(runtime)
    ref = kari.submit(title="Sykkelparkering ved skolene", start=f"/start k{number}",
                      description="Trygg og overbygd sykkelparkering ved barneskolene.")
    chosen = kominn(runtime.settings, "campaigns", "choose", str(number), ref.lower(), ref)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == f"campaign {number}: chosen {ref}"


def test_the_list_gives_local_times(settings: Settings) -> None:
    """A competition opening on 10 December (Oslo) is listed on 10 December, not the UTC
    evening before."""
    assert create(settings, "--title", "Trygg skolevei", "--opens", "2099-12-10",
                  "--closes", "2100-01-31").returncode == 0
    listed = kominn(settings, "campaigns", "list", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "2099-12-10 00:00" in listed.stdout and "2100-01-31 23:59" in listed.stdout
    assert "2099-12-09" not in listed.stdout
