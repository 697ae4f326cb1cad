"""One set of idea field rules (dialogs.fields) for the chat, the Slack modal and the CSV
import: the same text is accepted or refused, and cleaned the same way, whichever way it came."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.i18n import translator
from bot.reports import opendata
from bot.runtime import Runtime
from bot.staff import desk
from dialogs import fields
from storage.models import Idea
from tests.helpers import IDEA, ChatPerson

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
    return opendata.import_csv(runtime.db, runtime.index, out.getvalue(), t=NB,
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
