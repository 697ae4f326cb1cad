"""The Slack app end to end: the real Bolt AsyncApp behind KomInn's Starlette route, driven with
correctly signed requests (tests/fakes/slack_signing.py) and answering through a local fake
Slack Web API and fake response_urls (tests/fakes/slack_api.py). Nothing of Bolt is mocked;
the database is the test's own (SQLite, or PostgreSQL with KOMINN_TEST_DATABASE_URL). The
bench (fixtures, request and reading helpers) is tests/slack_fixtures.py."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlmodel import Session, select

from adapters.slack import blocks as kit
from adapters.slack import service as adapter
from adapters.slack.answer import CommandContext
from adapters.slack.listeners import subcommands
from adapters.slack.listeners.commands import Subcommand, Subcommands
from adapters.slack.sender import SlackSender
from bot.app import App, starlette_app
from bot.channels import DeliveryError
from bot.features import ideas_channel
from bot.ideas import book
from bot.runtime import Runtime
from bot.staff import desk
from dialogs.types import Choice, Document, Reply
from storage.db import transaction
from storage.models import DuplicateCandidate, Idea, Outbox, Person, StatusChange, Support
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import (
    app_home_opened_event,
    block_action_body,
    event_body,
    signed_headers,
    slash_command_body,
    view_submission_body,
)
from tests.helpers import ChatPerson
from tests.slack_fixtures import (
    EMPLOYEE,
    GROUP_MOD,
    HOSTILE,
    MOD,
    SECRET,
    buttons,
    command,
    drain,
    make_idea,
    new_idea_values,
    post,
    press,
    shown,
)

fake, rt, service, http, slack_settings = (bench.fake, bench.rt, bench.service, bench.http,
                                           bench.slack_settings)
kari, ola = bench.kari, bench.ola  # citizens of the Slack-configured runtime


def make_pair(rt: Runtime, score: float = 81.0) -> tuple[str, str, int]:
    older = make_idea(rt, "Flere benker ved Semsvannet", "Flere benker rundt vannet, takk.")
    newer = make_idea(rt, "Benker rundt Semsvannet", "Vi trenger benker rundt Semsvannet.")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 1 if older == "KI-1" else 2, [(2, score)])
        pair = session.exec(select(DuplicateCandidate)).one()
        return older, newer, pair.id or 0


def idea(rt: Runtime, ref: str) -> Idea:
    with Session(rt.db) as session:
        found = book.get_idea(session, ref)
        session.expunge(found)
        return found


def history(rt: Runtime) -> list[tuple[int, str | None, str, str]]:
    with Session(rt.db) as session:
        return [(h.idea_id, h.from_status, h.to_status, h.by)
                for h in session.exec(select(StatusChange).order_by(StatusChange.id))]


# --- wiring and verification ------------------------------------------------------------------

async def test_served_by_the_shared_starlette_app(rt: Runtime, fake: FakeSlackAPI) -> None:
    app = App(rt)
    app.add(adapter.service(app.runtime))
    assert app.senders["slack"].channel == "slack"
    assert [s.name for s in app.services] == ["slack"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=starlette_app(app)),
                                 base_url="http://testserver") as http:
        body = slash_command_body(text="help", response_url=fake.response_url("cmd"))
        response = await http.post("/slack/events", content=body,
                                   headers=signed_headers(body, SECRET))
        assert response.status_code == 200
        (answer,) = await fake.await_responses("cmd")
        assert "/kominn" in shown(answer)
        await drain()


def _forged(body: str) -> dict[str, str]:
    return signed_headers(body, "not-the-secret")


def _stale(body: str) -> dict[str, str]:
    return signed_headers(body, SECRET, timestamp=int(time.time()) - 6 * 60)


def _unsigned(body: str) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("make_headers", [_forged, _stale, _unsigned])
async def test_forged_stale_and_unsigned_requests_get_401(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, make_headers: Any) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    body = slash_command_body(text="set KI-1 nyttig", user_id=MOD,
                              response_url=fake.response_url("cmd"))
    response = await http.post(adapter.PATH, content=body, headers=make_headers(body))
    assert response.status_code == 401
    await drain()
    assert fake.calls() == [] and fake.responses("cmd") == []
    assert idea(rt, "KI-1").status == "new"


# --- every sub-command ------------------------------------------------------------------------

async def test_help_and_unknown_words(http: httpx.AsyncClient, fake: FakeSlackAPI) -> None:
    (employee,) = await command(http, fake, "help")
    assert employee["response_type"] == "ephemeral"
    for word in ("status KI-n", "search", "list", "ny", "report"):
        assert word in shown(employee)
    assert "er for moderatorene" in shown(employee)
    (moderator,) = await command(http, fake, "hjelp", user=MOD)
    assert "For moderatorer" in shown(moderator) and "set KI-n STATUS" in shown(moderator)
    (unknown,) = await command(http, fake, "tull")
    assert "Ukjent kommando «tull»" in shown(unknown) and "status KI-n" in shown(unknown)
    (empty,) = await command(http, fake, "")
    assert "status KI-n" in shown(empty)


async def test_status_shows_detail_history_supporters_and_duplicates(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson,
        ola: ChatPerson) -> None:
    ref = kari.submit()
    ola.say(f"/status {ref}")
    with transaction(rt.db) as session:
        person = session.exec(select(Person).where(Person.channel_user_id == "ola")).first()
        person_id = person.id if person else None
    with transaction(rt.db) as session:
        rt.ideas.add_support(session, book.get_idea(session, ref), person_id or 0)
        rt.ideas.set_status(session, book.get_idea(session, ref),
                                book.Status.USEFUL, by=f"slack:{MOD}", note="Vi ser på det")
    other = make_idea(rt, "Benker langs turstien ved Semsvannet")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 1, [(2, 77.0)])

    (view,) = await command(http, fake, f"status {ref.lower()}")
    text = shown(view)
    assert view["blocks"][0]["type"] == "header" and ref in view["blocks"][0]["text"]["text"]
    assert "*Status:* Nyttig" in text and "*Støttespillere:* 1" in text
    assert "Vi ser på det" in text and "Folkehelse" in text and "Semsvannet" in text
    assert f"Nytt → Nyttig (<@{MOD}>)" in text
    assert f"*{other}*" in text and "77 % likhet" in text
    assert buttons(view) == {}  # an employee gets no move buttons

    (moderated,) = await command(http, fake, f"status {ref}", user=MOD)
    assert set(buttons(moderated)) == {"→ Nyttiggjort", "→ Avslått", "Inviter til samarbeid"}

    (missing,) = await command(http, fake, "status KI-99")
    assert "Fant ingen idé KI-99" in shown(missing)
    (usage,) = await command(http, fake, "status tja")
    assert "/kominn status KI-12" in shown(usage)


async def test_search_uses_the_similar_index_and_finds_keywords(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet", "Eldre trenger benker langs turstien.")
    make_idea(rt, "Gatelys i Asker sentrum", "Det er for mørkt i sentrum om kvelden.")
    make_idea(rt, "Sykkelvei til skolen", "Tryggere sykkelvei for barna til Bleiker skole.",
              status="declined")

    (found,) = await command(http, fake, "search benker semsvannet")
    text = shown(found)
    assert "KI-1" in text and "KI-2" not in text
    assert "likhet" in text  # ranked by the similar-ideas index, with its score
    assert buttons(found)["Vis"]["value"] == "KI-1"
    (closed,) = await command(http, fake, "søk sykkelvei")
    assert "KI-3" in shown(closed)  # declined ideas are outside the index, found by keyword
    (none,) = await command(http, fake, "search zeppelin")
    assert "Ingen treff for «zeppelin»" in shown(none)
    (usage,) = await command(http, fake, "search")
    assert "/kominn search" in shown(usage)


async def test_list_filters_newest_first_ten_at_a_time(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    for n in range(12):
        make_idea(rt, f"Idé nummer {n + 1} om parken", area="Folkehelse" if n % 2 else "Annet")
    make_idea(rt, "Nyttig idé om bussen", area="Areal og transport", status="useful")

    (first,) = await command(http, fake, "list")
    text = shown(first)
    assert "Idéer 1–10 av 13" in text
    assert text.index("KI-13") < text.index("KI-12") < text.index("KI-4")
    assert "KI-3 " not in text and "*KI-3*" not in text
    more = buttons(first)["Vis flere"]
    (second,) = await press(http, fake, more, user=EMPLOYEE)
    assert second["replace_original"] is True
    assert "Idéer 11–13 av 13" in shown(second) and "*KI-1*" in shown(second)
    assert "Vis flere" not in buttons(second)

    (useful,) = await command(http, fake, "list nyttig")
    assert "Idéer 1–1 av 1" in shown(useful) and "*KI-13*" in shown(useful)
    (area,) = await command(http, fake, "list nytt folkehelse")
    assert "av 6" in shown(area) and "Folkehelse" in shown(area)
    (unknown,) = await command(http, fake, "list Månen")
    assert "Ukjent område «Månen»" in shown(unknown)


async def test_report_renders_the_report_figures(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_idea(rt, "Flere benker ved Semsvannet", status="realised")
    make_idea(rt, "Gatelys i sentrum")
    make_idea(rt, "Gatelys i sentrum igjen", status="merged")
    (report,) = await command(http, fake, "report")
    text = shown(report)
    assert "Realiseringsgrad:* 50 %" in text and "1 av 2 idéer" in text
    assert "Nyttiggjort: *1*" in text and "Slått sammen: *1*" in text
    assert "Per satsningsområde" in text and "Per kanal" in text and "Telegram" in text
    assert "Nyttesjekk" in text

    figures = {"realisation_rate": 0.125, "submitted": 9, "merged": 1, "realised": 1,
               "funnel": {"new": 5, "useful": 2, "realised": 1, "declined": 0, "merged": 1},
               "by_area": {"Folkehelse": {"submitted": 4, "merged": 0, "realised": 1,
                                          "rate": 0.25}},
               "by_channel": {"slack": {"submitted": 9, "merged": 1, "realised": 1,
                                        "rate": 0.125}},
               "by_month": {"2026-01": {"submitted": 9, "merged": 1, "realised": 1,
                                        "rate": 0.125}},
               "benefit_check": {"Ja": 3, "Delvis": 1, "Nei": 0}}
    monkeypatch.setattr(desk, "report", lambda db, settings: figures)
    (fixed,) = await command(http, fake, "rapport")
    text = shown(fixed)
    assert "12,5 %" in text and "1 av 8 idéer" in text and "Nytt: *5*" in text
    assert "• Folkehelse: 25 % (1 av 4)" in text and "• Slack: 12,5 % (1 av 8)" in text
    assert "2026-01" in text and "Ja 3 · Delvis 1 · Nei 0" in text


# --- ny: the submission modal -----------------------------------------------------------------

async def test_ny_opens_a_modal_and_the_submission_creates_an_idea(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet", "Flere benker rundt Semsvannet for eldre.")
    response = await post(http, slash_command_body(text="ny", trigger_id="TRIG9",
                                                   response_url=fake.response_url("cmd")))
    assert response.status_code == 200
    (call,) = await fake.await_calls("views.open")
    assert call["args"]["trigger_id"] == "TRIG9"
    modal = call["args"]["view"]
    assert modal["callback_id"] == kit.NEW_IDEA_VIEW
    area_block = next(b for b in modal["blocks"] if b["block_id"] == "area")
    assert [o["text"]["text"] for o in area_block["element"]["options"]] == \
        rt.settings.focus_areas

    body = view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values(
        "Benker rundt Semsvannet", "Vi trenger flere benker rundt Semsvannet for de eldre.",
        place="Semsvannet"), user_id=EMPLOYEE, private_metadata=modal["private_metadata"])
    done = await post(http, body)
    assert done.status_code == 200 and done.text == ""  # the modal closes
    (receipt,) = await fake.await_responses("cmd")
    assert "*KI-2*" in shown(receipt)
    created = idea(rt, "KI-2")
    assert (created.channel, created.focus_area, created.place) == \
        ("slack", "Folkehelse", "Semsvannet")
    with Session(rt.db) as session:
        author = session.get(Person, created.author_id)
        assert author is not None and (author.channel, author.channel_user_id) == \
            ("slack", EMPLOYEE)
        assert author.follow_up_consent is True
        pairs = session.exec(select(DuplicateCandidate)).all()
        assert [(p.idea_a_id, p.idea_b_id) for p in pairs] == [(1, 2)]  # queued for triage
    assert history(rt)[-1] == (2, None, "new", f"slack:{EMPLOYEE}")


async def test_ny_validates_like_the_citizen_chat(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    body = view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values("Kort", "Også kort", "99"))
    response = await post(http, body)
    errors = response.json()["errors"]
    assert response.json()["response_action"] == "errors"
    assert set(errors) == {"title", "description", "area"}
    assert "minst 5 tegn" in errors["title"] and "minst 20 tegn" in errors["description"]
    emoji = await post(http, view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values(
        "🎉🎉🎉🎉🎉🎉", "En helt grei beskrivelse av idéen min.")))
    assert "ord" in emoji.json()["errors"]["title"]
    with Session(rt.db) as session:
        assert session.exec(select(Idea)).all() == []


# --- triage -----------------------------------------------------------------------------------

async def test_triage_merge_keeps_the_older_idea(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson,
        ola: ChatPerson) -> None:
    older = kari.submit()
    newer = ola.submit(title="Benker ved Semsvannet", description="Det trengs flere benker "
                       "langs turstien rundt Semsvannet, så eldre kan hvile seg.")
    with Session(rt.db) as session:
        assert session.exec(select(DuplicateCandidate)).one().state == "pending"

    (pair,) = await command(http, fake, "triage", user=MOD)
    fields = next(b for b in pair["blocks"] if "fields" in b)["fields"]
    assert older in fields[0]["text"] and "eldst" in fields[0]["text"]
    assert newer in fields[1]["text"] and "Nytt" in fields[1]["text"]
    assert "likhet" in shown(pair) and "1 i køen" in shown(pair)
    labels = buttons(pair)
    assert set(labels) == {f"Slå sammen (behold {older})", f"Behold {newer} i stedet",
                           "Ikke duplikat", "Hopp over"}

    decided, following = await press(http, fake, labels[f"Slå sammen (behold {older})"], n=2)
    assert decided["replace_original"] is True
    assert f"*{newer}* er slått sammen med *{older}* – avgjort av <@{MOD}>" in shown(decided)
    assert "Ingen mulige duplikater" in shown(following)
    assert idea(rt, newer).status == "merged" and idea(rt, newer).merged_into_id == 1
    with Session(rt.db) as session:
        backers = session.exec(select(Support.person_id).where(Support.idea_id == 1)).all()
        assert len(backers) == 1  # ola, the author of the merged idea, now follows KI-1
        cand = session.exec(select(DuplicateCandidate)).one()
        assert (cand.state, cand.decided_by) == ("merged", f"slack:{MOD}")
    assert history(rt)[-1] == (2, "new", "merged", f"slack:{MOD}")


async def test_triage_keep_the_other_and_not_duplicate(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    older, newer, _ = make_pair(rt)
    (pair,) = await command(http, fake, "triage", user=GROUP_MOD)
    decided, _ = await press(http, fake, buttons(pair)[f"Behold {newer} i stedet"],
                             user=GROUP_MOD, n=2)
    assert f"*{older}* er slått sammen med *{newer}*" in shown(decided)
    assert idea(rt, older).merged_into_id == 2

    third = make_idea(rt, "Gatelys i sentrum")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 2, [(3, 55.0)])
    (pair,) = await command(http, fake, "triage", user=MOD)
    decided, _ = await press(http, fake, buttons(pair)["Ikke duplikat"], n=2)
    assert f"*{newer}* og *{third}* er ikke duplikater – avgjort av <@{MOD}>" in shown(decided)
    assert idea(rt, third).status == "new"
    with Session(rt.db) as session:
        states = sorted(c.state for c in session.exec(select(DuplicateCandidate)))
        assert states == ["merged", "not_duplicate"]


async def test_hopp_over_shows_the_next_pair_and_leaves_it_pending(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_pair(rt)
    make_idea(rt, "Gatelys i sentrum")
    make_idea(rt, "Lys i sentrum om kvelden")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 3, [(4, 60.0)])
    (first,) = await command(http, fake, "triage", user=MOD)
    assert "KI-1" in shown(first) and "2 i køen" in shown(first)
    (second,) = await press(http, fake, buttons(first)["Hopp over"])
    assert second["replace_original"] is True and "KI-3" in shown(second)
    (again,) = await press(http, fake, buttons(second)["Hopp over"])
    assert "KI-1" in shown(again)  # wraps around
    with Session(rt.db) as session:
        assert {c.state for c in session.exec(select(DuplicateCandidate))} == {"pending"}


async def test_two_moderators_pressing_at_once_only_one_decides(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    older, newer, _ = make_pair(rt)
    (pair,) = await command(http, fake, "triage", user=MOD)
    labels = buttons(pair)
    merge, distinct = labels[f"Slå sammen (behold {older})"], labels["Ikke duplikat"]
    bodies = [block_action_body(merge["action_id"], merge["value"], user_id=MOD,
                                response_url=fake.response_url("m1")),
              block_action_body(distinct["action_id"], distinct["value"], user_id=GROUP_MOD,
                                response_url=fake.response_url("m2"))]
    answers = await asyncio.gather(*(post(http, b) for b in bodies))
    assert [a.status_code for a in answers] == [200, 200]
    first = (await fake.await_responses("m1"))[0]
    second = (await fake.await_responses("m2"))[0]
    await drain()
    outcomes = [shown(first), shown(second)]
    assert sum("allerede avgjort" in o for o in outcomes) == 1
    with Session(rt.db) as session:
        cand = session.exec(select(DuplicateCandidate)).one()
    winner = MOD if cand.state == "merged" else GROUP_MOD
    assert cand.decided_by == f"slack:{winner}"
    assert all(f"avgjort av <@{winner}>" in o for o in outcomes)
    merged_rows = [h for h in history(rt) if h[2] == "merged"]
    assert len(merged_rows) == (1 if cand.state == "merged" else 0)

    (late,) = await press(http, fake, merge, user=MOD, name="late")
    assert "allerede avgjort" in shown(late) and f"<@{winner}>" in shown(late)
    assert len([h for h in history(rt) if h[2] == "merged"]) == len(merged_rows)


async def test_merge_the_lifecycle_forbids_changes_nothing(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet", status="realised")
    make_idea(rt, "Benker rundt Semsvannet")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 1, [(2, 70.0)])
    (pair,) = await command(http, fake, "triage", user=MOD)
    (refused,) = await press(http, fake, buttons(pair)["Behold KI-2 i stedet"])
    assert "kan ikke slås sammen" in shown(refused)
    with Session(rt.db) as session:
        assert session.exec(select(DuplicateCandidate)).one().state == "pending"
    assert idea(rt, "KI-1").status == "realised"


# --- status moves -----------------------------------------------------------------------------

async def test_set_moves_only_as_the_strategy_allows(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    make_idea(rt, "Benker ved Semsvannet")
    (moved,) = await command(http, fake, "set ki-1 nyttig Vi ser på dette", user=MOD)
    assert "KI-1: Nytt → *Nyttig*" in shown(moved) and "Vi ser på dette" in shown(moved)
    assert idea(rt, "KI-1").public_note == "Vi ser på dette"
    (no_reason,) = await command(http, fake, "set KI-2 avslått", user=MOD)
    assert "begrunnelse" in shown(no_reason)
    (jump,) = await command(http, fake, "set KI-2 nyttiggjort", user=MOD)
    assert "kan ikke flyttes" in shown(jump)
    (bad,) = await command(http, fake, "set KI-2 kanskje", user=MOD)
    assert "Ukjent status «kanskje»" in shown(bad)
    (merged,) = await command(http, fake, "set KI-2 sammenslått KI-1", user=MOD)
    assert "Slått sammen med:* KI-1" in shown(merged)
    (missing,) = await command(http, fake, "set KI-9 nyttig", user=MOD)
    assert "Fant ingen idé KI-9" in shown(missing)
    (usage,) = await command(http, fake, "set", user=MOD)
    assert "/kominn set KI-n STATUS" in shown(usage)
    assert [h[1:] for h in history(rt)][2:] == [("new", "useful", f"slack:{MOD}"),
                                                ("new", "merged", f"slack:{MOD}")]


async def test_status_view_buttons_open_a_modal_and_declining_needs_a_reason(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    (view,) = await command(http, fake, "status KI-1", user=MOD, name="view")
    decline = buttons(view)["→ Avslått"]
    response = await post(http, block_action_body(decline["action_id"], decline["value"],
                                                  user_id=MOD, trigger_id="TRIG7",
                                                  response_url=fake.response_url("view")))
    assert response.status_code == 200
    (call,) = await fake.await_calls("views.open")
    modal = call["args"]["view"]
    assert call["args"]["trigger_id"] == "TRIG7" and modal["callback_id"] == kit.MOVE_VIEW
    assert "Nytt → *Avslått*" in shown(modal)

    empty = await post(http, view_submission_body(kit.MOVE_VIEW, {"note": {"value": " "}},
                                                  user_id=MOD,
                                                  private_metadata=modal["private_metadata"]))
    assert empty.json()["response_action"] == "errors" and "note" in empty.json()["errors"]
    assert idea(rt, "KI-1").status == "new"

    done = await post(http, view_submission_body(
        kit.MOVE_VIEW, {"note": {"value": "Dette ligger utenfor kommunens ansvar."}},
        user_id=MOD, private_metadata=modal["private_metadata"]))
    assert done.status_code == 200 and done.text == ""
    updated = (await fake.await_responses("view", n=2))[1]
    assert updated["replace_original"] is True
    assert "KI-1: Nytt → *Avslått*" in shown(updated)
    assert set(buttons(updated)) == {"→ Nytt"}  # a declined idea can only be reopened
    assert idea(rt, "KI-1").public_note == "Dette ligger utenfor kommunens ansvar."

    # the same (stale) button again: the idea moved meanwhile, nothing changes
    stale = await post(http, view_submission_body(
        kit.MOVE_VIEW, {"note": {"value": "Igjen"}}, user_id=MOD,
        private_metadata=modal["private_metadata"]))
    assert stale.status_code == 200
    again = (await fake.await_responses("view", n=3))[2]
    assert "fått ny status i mellomtiden" in shown(again)
    assert [h[2] for h in history(rt)] == ["new", "declined"]


# --- authorization ----------------------------------------------------------------------------

async def test_non_moderators_are_refused_and_nothing_changes(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kominn.moderation")
    make_pair(rt)
    (triage,) = await command(http, fake, "triage", user=EMPLOYEE)
    assert "bare moderatorene" in shown(triage)
    (setting,) = await command(http, fake, "set KI-1 nyttig", user=EMPLOYEE)
    assert "bare moderatorene" in shown(setting)
    (pair,) = await command(http, fake, "triage", user=MOD)
    (pressed,) = await press(http, fake, buttons(pair)["Ikke duplikat"], user=EMPLOYEE)
    assert "bare moderatorene" in shown(pressed) and "replace_original" not in pressed
    move = {"action_id": f"{kit.MOVE}useful", "value": "KI-1|useful|new"}
    (moving,) = await press(http, fake, move, user=EMPLOYEE)
    assert "bare moderatorene" in shown(moving)
    meta = json.dumps({"ref": "KI-1", "to": "useful", "from": "new",
                       "url": fake.response_url("modal")})
    await post(http, view_submission_body(kit.MOVE_VIEW, {"note": {"value": "x"}},
                                          user_id=EMPLOYEE, private_metadata=meta))
    (modal,) = await fake.await_responses("modal")
    assert "bare moderatorene" in shown(modal)
    await drain()

    assert fake.call_count("views.open") == 0
    assert history(rt) == [(1, None, "new", "test"), (2, None, "new", "test")]
    with Session(rt.db) as session:
        assert session.exec(select(DuplicateCandidate)).one().state == "pending"
    refusals = [r for r in caplog.records if getattr(r, "event", "") == "moderator_refused"]
    assert [getattr(r, "kind", None) for r in refusals] == ["triage", "set", "triage", "move",
                                                            "move"]
    assert all(EMPLOYEE not in r.getMessage() and getattr(r, "user_hash", "") for r in refusals)
    assert fake.call_count("usergroups.users.list") == 1  # cached between checks


# --- escaping ---------------------------------------------------------------------------------

async def test_hostile_citizen_text_pings_and_links_nobody(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson) -> None:
    ref = kari.submit(title="Benker <!channel> ved vannet",
                      description=f"Beskrivelse: {HOSTILE}", place="<@U0BOSS> plassen")
    make_idea(rt, "Benker ved vannet <!here>", f"Samme idé {HOSTILE}")
    with transaction(rt.db) as session:
        book.queue_candidates(session, 1, [(2, 90.0)])
        rt.ideas.set_status(session, book.get_idea(session, "KI-2"),
                                book.Status.USEFUL, by="cli", note=HOSTILE)
    messages = []
    messages += await command(http, fake, f"status {ref}", user=MOD)
    messages += await command(http, fake, "status KI-2", user=MOD)
    messages += await command(http, fake, "search benker vannet")
    messages += await command(http, fake, "list")
    messages += await command(http, fake, "triage", user=MOD)
    messages += await command(http, fake, "search <!channel>")
    await post(http, event_body(app_home_opened_event(MOD), event_id="EvHostile"))
    (home_call,) = await fake.await_calls("views.publish")
    messages.append(home_call["args"]["view"])
    await SlackSender(fake.async_client()).send("CIDEAS", notice(_outbox(rt, 1), rt, _nb()))
    messages.append(fake.messages("CIDEAS")[0])

    everything = "\n".join(shown(m) for m in messages)
    for raw in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example|her>"):
        assert raw not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;@U0BOSS&gt;" in everything
    assert "&lt;https://evil.example|her&gt; &amp;" in everything
    header = messages[0]["blocks"][0]["text"]
    assert header["type"] == "plain_text" and "<!channel>" in header["text"]  # shown, not parsed


def notice(row: Outbox, rt: Runtime, t: Any) -> list[Reply]:
    """An outbox row's replies as the dispatcher renders them."""
    return rt.features.render(row.kind, json.loads(row.payload or "{}"), t)


def _nb() -> Any:
    from bot.i18n import translator

    return translator("nb")


def _outbox(rt: Runtime, number: int) -> Outbox:
    with Session(rt.db) as session:
        row = session.exec(select(Outbox).where(Outbox.dedupe_key ==
                                                f"{ideas_channel.KIND}:{number}")).one()
        session.expunge(row)
        return row


# --- App Home and events ----------------------------------------------------------------------

async def test_app_home_shows_counts_queue_and_newest(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_pair(rt)
    make_idea(rt, "Gatelys i sentrum", status="useful")
    response = await post(http, event_body(app_home_opened_event(EMPLOYEE), event_id="Ev1"))
    assert response.status_code == 200
    (call,) = await fake.await_calls("views.publish")
    view = call["args"]["view"]
    assert call["args"]["user_id"] == EMPLOYEE and view["type"] == "home"
    text = shown(view)
    assert "Nytt: *2*" in text and "Nyttig: *1*" in text and "Avslått: *0*" in text
    assert "1 mulig duplikatpar" in text
    assert text.index("*KI-3*") < text.index("*KI-2*") < text.index("*KI-1*")
    assert set(buttons(view)) == {"Ny idé", "Vis"}  # no triage button for an employee

    await post(http, event_body(app_home_opened_event(MOD), event_id="Ev2"))
    calls = await fake.await_calls("views.publish", n=2)
    moderator_view = calls[1]["args"]["view"]
    triage_button = buttons(moderator_view)["Start triage"]

    await post(http, block_action_body(triage_button["action_id"], triage_button["value"],
                                       user_id=MOD, view=moderator_view))
    (dm,) = await fake.await_calls("chat.postMessage")
    assert dm["args"]["channel"] == MOD and "likhet" in shown(dm["args"])
    new = buttons(moderator_view)["Ny idé"]
    await post(http, block_action_body(new["action_id"], new["value"], user_id=MOD,
                                       trigger_id="THOME", view=moderator_view))
    (opened,) = await fake.await_calls("views.open")
    assert opened["args"]["trigger_id"] == "THOME"
    assert opened["args"]["view"]["callback_id"] == kit.NEW_IDEA_VIEW
    show = buttons(moderator_view)["Vis"]
    await post(http, block_action_body(show["action_id"], show["value"], user_id=MOD,
                                       view=moderator_view))
    dms = await fake.await_calls("chat.postMessage", n=2)
    assert "KI-3 Gatelys i sentrum" in json.dumps(dms[1]["args"]["blocks"], ensure_ascii=False)


async def test_a_retried_event_is_handled_once(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kominn.slack")
    body = event_body(app_home_opened_event(EMPLOYEE), event_id="Ev42")
    assert (await post(http, body)).status_code == 200
    await fake.await_calls("views.publish")
    assert (await post(http, body, retry_num=1)).status_code == 200
    assert (await post(http, body, retry_num=2, retry_reason="http_error")).status_code == 200
    for _ in range(500):
        dupes = [r for r in caplog.records
                 if getattr(r, "event", "") == "slack_event_duplicate"]
        if len(dupes) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(dupes) == 2
    await drain()
    assert fake.call_count("views.publish") == 1
    await post(http, event_body(app_home_opened_event(EMPLOYEE), event_id="Ev43"))
    await fake.await_calls("views.publish", n=2)


# --- acknowledged within 3 seconds, whatever the database does --------------------------------

async def test_ack_does_not_wait_for_a_slow_database(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_pair(rt)
    gate, finished = threading.Event(), threading.Event()
    original_detail, original_decide = desk.status_detail, desk.decide_pair

    def slow(original: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            gate.wait(10)  # the database hangs until the test lets it go
            try:
                return original(*args, **kwargs)
            finally:
                finished.set()
        return run

    monkeypatch.setattr(desk, "status_detail", slow(original_detail))
    response = await post(http, slash_command_body(text="status KI-1",
                                                   response_url=fake.response_url("slow")))
    assert response.status_code == 200 and response.text == ""
    assert not finished.is_set() and fake.responses("slow") == []  # acked before the work
    gate.set()
    (answer,) = await fake.await_responses("slow")
    assert "KI-1" in shown(answer)

    gate.clear()
    finished.clear()
    monkeypatch.setattr(desk, "decide_pair", slow(original_decide))
    (pair,) = await command(http, fake, "triage", user=MOD)
    button = buttons(pair)["Ikke duplikat"]
    response = await post(http, block_action_body(button["action_id"], button["value"],
                                                  user_id=MOD,
                                                  response_url=fake.response_url("slowbtn")))
    assert response.status_code == 200 and not finished.is_set()
    gate.set()
    decided = (await fake.await_responses("slowbtn"))[0]
    assert "ikke duplikater" in shown(decided)


# --- new ideas to SLACK_IDEAS_CHANNEL: listener, outbox, renderer, sender ---------------------

async def test_new_ideas_are_queued_for_the_ideas_channel_and_sent_once(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, runtime: Runtime,
        kari: ChatPerson) -> None:
    ref = kari.submit(title="Benker & bord ved <vannet>")
    row = _outbox(rt, 1)
    assert (row.kind, row.channel, row.address, row.person_id) == \
        ("slack_new_idea", "slack", "CIDEAS", None)
    with transaction(rt.db) as session:  # queued once per idea whatever happens again
        for listener in rt.features.listeners.created:
            listener(session, session.get(Idea, 1))
    with Session(rt.db) as session:
        assert len(session.exec(select(Outbox).where(Outbox.kind == "slack_new_idea")).all()) == 1

    replies = notice(row, rt, _nb())
    assert "Ny idé KI-1: Benker & bord ved <vannet>" in replies[0].text  # plain, not escaped
    sender = SlackSender(fake.async_client())
    await sender.send("CIDEAS", replies)
    (message,) = fake.messages("CIDEAS")
    assert "Benker &amp; bord ved &lt;vannet&gt;" in message["text"]
    assert "Folkehelse · terminalen · Semsvannet" in shown(message)
    show = buttons(message)["Vis"]
    assert show["value"] == f"status:{ref}"
    (view,) = await press(http, fake, show, user=EMPLOYEE)
    assert view["blocks"][0]["text"]["text"].startswith(f"{ref} Benker")

    # A runtime without Slack settings (kominn chat on the same database) queues nothing.
    ChatPerson(runtime.engine, "eva").submit(
        title="Gatelys i Asker sentrum",
        description="Det er for mørkt om kvelden i hele sentrum av Asker.")
    with Session(rt.db) as session:
        assert len(session.exec(select(Outbox).where(Outbox.kind == "slack_new_idea")).all()) == 1


async def test_sender_renders_replies_and_maps_errors(fake: FakeSlackAPI) -> None:
    sender = SlackSender(fake.async_client())
    reply = Reply("Hei <@U1> & velkommen", (Choice("Ja", "yes"),), links=(("Les", "https://x.no"),))
    await sender.send("C1", [reply])
    (message,) = fake.messages("C1")
    assert message["text"] == "Hei &lt;@U1&gt; &amp; velkommen"
    posted = fake.calls("chat.postMessage")[0]["args"]
    assert posted["unfurl_links"] is False and posted["unfurl_media"] is False
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e.get("value") or e.get("url") for e in actions["elements"]] == ["yes", "https://x.no"]

    await sender.send("U7", [Reply("Her er filen", document=Document("data.json", b"{}"))])
    (upload,) = fake.uploads()
    assert (upload["channel"], upload["content"], upload["filename"]) == \
        ("DU7", b"{}", "data.json")

    fake.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(DeliveryError) as limited:
        await sender.send("C1", [Reply("x")])
    assert limited.value.retry_after == 7 and not limited.value.permanent
    fake.fail_next("chat.postMessage", error="channel_not_found", status=200)
    with pytest.raises(DeliveryError) as gone:
        await sender.send("C404", [Reply("x")])
    assert gone.value.permanent


def test_slash_command_body_fields_are_what_the_adapter_reads() -> None:
    fields = {k: v[0] for k, v in parse_qs(slash_command_body(text="list")).items()}
    assert {"user_id", "channel_id", "trigger_id", "response_url", "text"} <= set(fields)


def test_the_subcommand_table_holds_the_core_and_the_competitions() -> None:
    table = Subcommands(subcommands())
    assert {"help", "status", "search", "list", "ny", "triage", "set", "report", "språk",
            "konkurranse", "hide", "unhide"} == set(table.entries)
    assert [table.find(word)[0] for word in ("Søk", "hjelp", "sprak", "Konkurranser")] == [
        "search", "help", "språk", "konkurranse"]
    assert table.find("nope") == ("nope", None)


async def test_subcommands_are_one_explicit_table_given_to_the_app(
        rt: Runtime, fake: FakeSlackAPI) -> None:
    """The table is handed to the service when it is built (no registry to patch): here the
    core's with `konkurranse` replaced, moderators only, under an alias of its own."""
    seen: list[list[str]] = []

    async def konkurranse(ctx: CommandContext) -> None:
        seen.append(ctx.args)
        await ctx.answer.say("konkurranser")

    table = {**subcommands(),
             "konkurranse": Subcommand(konkurranse, moderator_only=True, aliases=("konk",))}
    async with bench.serve(adapter.SlackService(rt, subcommands=table)) as http:
        (refused,) = await command(http, fake, "konkurranse ny", user=EMPLOYEE)
        assert "bare moderatorene" in shown(refused) and seen == []
        (done,) = await command(http, fake, "Konk ny Sommer", user=MOD)
        assert shown(done).startswith("konkurranser") and seen == [["ny", "Sommer"]]
        (help_,) = await command(http, fake, "hjelp", user=EMPLOYEE)
        assert "status KI-n" in shown(help_)


def test_manifest_declares_command_events_interactivity_and_scopes() -> None:
    from pathlib import Path

    manifest = (Path(__file__).resolve().parents[1] / "slack" / "manifest.yml").read_text()
    assert "- command: /kominn" in manifest
    assert manifest.count("https://kominn.example.no/slack/events") == 3  # command, events, UI
    assert "home_tab_enabled: true" in manifest and "- app_home_opened" in manifest
    for scope in ("commands", "chat:write", "usergroups:read"):
        assert f"- {scope} " in manifest or f"- {scope}\n" in manifest


async def test_engine_buttons_in_follow_ups_reach_the_dialog_engine(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    """Follow-ups to an employee (e.g. the benefit check) carry the engine's buttons; a press
    in Slack is handled by the same dialog engine as on any other channel."""
    ref = desk.submit_idea(rt, desk.StaffIdea(
        EMPLOYEE, "Flere benker ved Semsvannet", "Det trengs flere benker langs turstien.",
        "Folkehelse", None, True))
    sender = SlackSender(fake.async_client())
    await sender.send(EMPLOYEE, [Reply("Hva vil du se?", (Choice("Mine idéer", "g:mine"),))])
    (dm,) = fake.messages(f"D{EMPLOYEE}")
    (answer,) = await press(http, fake, buttons(dm)["Mine idéer"], user=EMPLOYEE)
    assert ref in shown(answer) and "Flere benker ved Semsvannet" in shown(answer)
    with Session(rt.db) as session:
        people = session.exec(select(Person).where(Person.channel == "slack")).all()
        assert [p.channel_user_id for p in people] == [EMPLOYEE]  # the same person


async def test_a_pair_settled_by_another_merge_says_so(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    for title in ("Flere benker ved Semsvannet", "Benker ved Semsvannet", "Benk ved vannet"):
        make_idea(rt, title)
    with transaction(rt.db) as session:
        for a, b in ((1, 2), (1, 3), (2, 3)):
            book.queue_candidates(session, a, [(b, 70.0)])
        ids = {(c.idea_a_id, c.idea_b_id): c.id for c in session.exec(select(DuplicateCandidate))}
    await press(http, fake, {"action_id": kit.TRIAGE_MERGE, "value": f"{ids[(1, 3)]}:1"}, n=2)
    (stale,) = await press(http, fake, {"action_id": kit.TRIAGE_DISTINCT,
                                        "value": str(ids[(2, 3)])}, name="stale")
    assert "allerede avgjort" in shown(stale) and "allerede løst" in shown(stale)
    with Session(rt.db) as session:
        states = {(c.idea_a_id, c.idea_b_id): c.state
                  for c in session.exec(select(DuplicateCandidate))}
    assert states == {(1, 2): "pending", (1, 3): "merged", (2, 3): "resolved"}


async def test_hide_and_unhide_from_slack(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    (usage,) = await command(http, fake, "hide KI-1", user=MOD)
    assert "/kominn hide KI-n" in shown(usage)
    (hidden,) = await command(http, fake, "hide KI-1 Inneholder et navn", user=MOD)
    assert "KI-1 er skjult" in shown(hidden)
    hidden_idea = idea(rt, "KI-1")
    assert hidden_idea.hidden_at is not None and hidden_idea.hidden_reason == "Inneholder et navn"
    (again,) = await command(http, fake, "hide KI-1 Andre gang", user=MOD)
    assert "KI-1 var allerede skjult" in shown(again)
    assert idea(rt, "KI-1").hidden_reason == "Inneholder et navn"
    (missing,) = await command(http, fake, "hide KI-9 grunn", user=MOD)
    assert "Fant ingen idé KI-9" in shown(missing)
    (shown_again,) = await command(http, fake, "unhide KI-1", user=MOD)
    assert "vises igjen" in shown(shown_again) and idea(rt, "KI-1").hidden_at is None
    (not_hidden,) = await command(http, fake, "unhide KI-1", user=MOD)
    assert "KI-1 var ikke skjult" in shown(not_hidden)
