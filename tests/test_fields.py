"""One set of idea field rules (dialogs.fields) for the chat, the Slack modal and the CSV
import: the same text is accepted or refused, and cleaned the same way, whichever way it came."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.config import Settings
from bot.features import campaigns
from bot.i18n import translator
from bot.reports import opendata
from bot.runtime import Runtime
from bot.staff import desk
from dialogs import fields
from storage.models import Campaign, Idea
from tests.helpers import IDEA, ChatPerson
from tests.test_cli import kominn

NB = translator("nb")
AREAS = ["Folkehelse", "Annet"]
TOO_LONG_PLACE = "Semsvannet " * 20  # 219 characters once the last space is trimmed
DIRTY_TITLE = "Flere\u200b benker\u0007 ved\u00a0 Semsvannet\ufeff"
DIRTY_DESCRIPTION = ("Det trengs\u200d flere benker\u0000 langs turstien rundt Semsvannet."
                     "\r\n\r\n\r\n\r\nSå eldre kan hvile.")
DIRTY_PLACE = "  Sems\u2060vannet\u0008 "


def import_rows(runtime: Runtime, *rows: list[str]) -> opendata.ImportResult:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [["title", "description", "focus_area", "place"], *rows])
    return opendata.import_csv(runtime.db, runtime.index, runtime.ideas, out.getvalue(), t=NB,
                               focus_areas=runtime.settings.focus_areas,
                               zone=ZoneInfo("Europe/Oslo"))


def test_one_place_limit() -> None:
    assert len(TOO_LONG_PLACE.strip()) > fields.PLACE_MAX == 200
    assert fields.check_place("x" * 200).ok
    assert fields.check_place("x" * 201).problem == fields.Problem(
        "submit.place_too_long", {"max": 200, "n": 201})
    assert fields.check_place("  ").ok and fields.check_place(None).value == ""


def test_a_too_long_place_is_refused_by_chat_slack_and_import(runtime: Runtime,
                                                              kari: ChatPerson) -> None:
    kari.say("/ny")
    kari.say(IDEA["title"])
    kari.say(IDEA["description"])
    kari.press(IDEA["area"])
    kari.say(TOO_LONG_PLACE)
    assert "Stedet kan være høyst 200 tegn." in kari.text
    kari.say("x" * 200)
    assert "kontakte" in kari.text  # exactly the limit is accepted: on to the consent step

    new, problems = desk.check_new_idea("U1", IDEA["title"], IDEA["description"], "0",
                                        TOO_LONG_PLACE, True, AREAS)
    assert new is None
    assert [(p.field, NB(p.key, **p.params)) for p in problems] == [
        ("place", "Stedet kan være høyst 200 tegn.")]

    result = import_rows(runtime, [IDEA["title"], IDEA["description"], "", TOO_LONG_PLACE])
    assert result.refs == []
    assert [r.reason for r in result.rejected] == ["stedet kan ha høyst 200 tegn"]


def test_import_cleans_like_the_chat(runtime: Runtime, kari: ChatPerson) -> None:
    kari.submit(title=DIRTY_TITLE, description=DIRTY_DESCRIPTION, place=DIRTY_PLACE)
    result = import_rows(runtime, [DIRTY_TITLE, DIRTY_DESCRIPTION, "", DIRTY_PLACE])
    assert result.ok and result.refs == ["KI-2"]
    new, _ = desk.check_new_idea("U1", DIRTY_TITLE, DIRTY_DESCRIPTION, "0", DIRTY_PLACE,
                                 True, AREAS)
    assert new is not None
    with Session(runtime.db) as session:
        chat, imported = session.exec(select(Idea).order_by(Idea.id)).all()  # type: ignore[arg-type]
    expected = ("Flere benker ved Semsvannet",
                "Det trengs flere benker langs turstien rundt Semsvannet.\n\nSå eldre kan hvile.",
                "Semsvannet")
    assert (chat.title, chat.description, chat.place) == expected
    assert (imported.title, imported.description, imported.place) == expected
    assert (new.title, new.description, new.place) == expected


def test_import_refuses_what_the_chat_refuses(runtime: Runtime) -> None:
    result = import_rows(runtime, ["🙂🙂🙂🙂🙂🙂", IDEA["description"], "", "!!!"],
                         ["\u200bKort\u200b\u200b", IDEA["description"], "", ""])
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "kolonnen title må ha ord, ikke bare symboler eller emoji; "
            "kolonnen place må ha ord, ikke bare symboler eller emoji"),
        (3, "tittelen må ha 5–120 tegn (har 4)")]


# --- focus areas: one matcher (dialogs.fields.match_area) --------------------------------------

CONFIGURED = ["Vekst og utvikling", "Areal og transport", "Folkehelse", "Annet"]


@pytest.mark.parametrize(("typed", "exact", "partial"), [
    ("Folkehelse", "Folkehelse", "Folkehelse"),
    ("  areal   OG transport ", "Areal og transport", "Areal og transport"),
    ("areal", None, "Areal og transport"),  # the start of one
    ("transport", None, "Areal og transport"),  # part of one
    ("Sykling", None, None),
    ("", None, None),
    (None, None, None),
])
def test_match_area(typed: str | None, exact: str | None, partial: str | None) -> None:
    assert fields.match_area(typed, CONFIGURED) == exact
    assert fields.match_area(typed, CONFIGURED, partial=True) == partial


def test_every_entry_knows_an_area_in_any_case(runtime: Runtime, settings: Settings) -> None:
    """The import, the CLI's competitions and idea list, and Slack's list all match an area by
    the same rule, and store or ask for its configured spelling."""
    result = import_rows(runtime, [IDEA["title"], IDEA["description"], " FOLKEHELSE ", ""])
    assert result.ok
    with Session(runtime.db) as session:
        assert session.exec(select(Idea.focus_area)).one() == "Folkehelse"
    listed = kominn(settings, "ideas", "list", "--area", "folkehelse", "--format", "json")
    assert [i["focus_area"] for i in json.loads(listed.stdout)] == ["Folkehelse"]
    created = kominn(settings, "campaigns", "create", "--title", "Sykkelbyen Asker",
                     "--question", "Hva trenger syklistene?", "--closes", "2099-01-31",
                     "--area", "areal og transport")
    assert created.returncode == 0, created.stderr
    with Session(runtime.db) as session:
        assert session.exec(select(Campaign.focus_area)).one() == "Areal og transport"
    assert desk.match_area(runtime.settings, "folke") == "Folkehelse"
    draft, problems = campaigns.check_campaign(
        title="Sykkelbyen", question="Hva trenger syklistene?", text=None,
        focus_area="folkehelse", opens_at=None, closes_at=datetime(2099, 1, 1, tzinfo=UTC),
        areas=runtime.settings.focus_areas, zone=runtime.settings.zone,
        now=datetime(2026, 1, 1, tzinfo=UTC))
    assert problems == [] and draft is not None and draft.focus_area == "Folkehelse"
