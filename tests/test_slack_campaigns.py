"""Idea competitions and invitations to collaborate in the Slack app, end to end: the real Bolt
app behind KomInn's route, signed requests, the fake Slack Web API and response_urls
(tests/fakes/), the test's own database (SQLite, or PostgreSQL with KOMINN_TEST_DATABASE_URL).
The bench (fixtures, request and reading helpers) is tests/slack_fixtures.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from adapters.slack import blocks as kit
from adapters.slack import campaign_blocks as ui
from bot.features import campaigns, collaboration
from bot.ideas import book
from bot.runtime import Runtime
from bot.staff import campaigns as sc
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Campaign, CollabInvite, Idea, Outbox, Person, utcnow
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import block_action_body, view_submission_body
from tests.helpers import ChatPerson
from tests.slack_fixtures import (
    EMPLOYEE,
    GROUP_MOD,
    HOSTILE,
    MOD,
    QUESTION,
    buttons,
    campaign_values,
    command,
    drain,
    make_campaign,
    post,
    press,
    shown,
    today,
)
from tests.test_cli import kominn

fake, rt, service, http = bench.fake, bench.rt, bench.service, bench.http
kari, ola = bench.kari, bench.ola  # citizens of the Slack-configured runtime

BOT = "kominn_test_bot"


@pytest.fixture
def slack_settings() -> dict[str, Any]:
    """A Telegram bot name, for the competitions' deep links."""
    return {"telegram_bot_username": BOT}


# --- helpers ----------------------------------------------------------------------------------

def citizen(rt: Runtime, number: int, name: str | None = None) -> int:
    """A Telegram citizen who agreed to follow-ups; their person id."""
    with transaction(rt.db) as session:
        person = Person(channel="telegram", channel_user_id=str(number), chat_id=str(number),
                        display_name=name, follow_up_consent=True)
        session.add(person)
        session.flush()
        return person.id or 0


def answer_idea(rt: Runtime, campaign_id: int, title: str, author: int | None,
                status: str = "new") -> str:
    with transaction(rt.db) as session:
        created = rt.ideas.create_idea(session, book.NewIdea(
            title=title, description=f"{title} – slik at flere barn sykler.", channel="telegram",
            focus_area="Areal og transport", author_id=author, campaign_id=campaign_id),
            by="test")
        if status != "new":
            created.status = status
            session.add(created)
        return book.ref_of(created)


def stored(rt: Runtime, campaign_id: int) -> Campaign:
    with Session(rt.db) as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None
        session.expunge(found)
        return found


def outbox(rt: Runtime, kind: str) -> list[Outbox]:
    with Session(rt.db) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == kind)
                                 .order_by(col(Outbox.id))))


async def submit(http: httpx.AsyncClient, callback: str, values: dict[str, Any], meta: str,
                 user: str = MOD) -> httpx.Response:
    response = await post(http, view_submission_body(callback, values, user_id=user,
                                                     private_metadata=meta))
    assert response.status_code == 200
    return response


async def open_modal(http: httpx.AsyncClient, fake: FakeSlackAPI, button: dict[str, Any],
                     name: str, user: str = MOD) -> dict[str, Any]:
    """Press a button that opens a modal; the modal as views.open received it."""
    before = fake.call_count("views.open")
    response = await post(http, block_action_body(button["action_id"], button["value"],
                                                  user_id=user, trigger_id="TRIGC",
                                                  response_url=fake.response_url(name)))
    assert response.status_code == 200
    call = (await fake.await_calls("views.open", n=before + 1))[before]
    assert call["args"]["trigger_id"] == "TRIGC"
    return dict(call["args"]["view"])


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


# --- the list ---------------------------------------------------------------------------------

async def test_anyone_lists_competitions_moderators_get_the_buttons(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    zone = rt.settings.zone
    running = make_campaign(rt)
    later = make_campaign(rt, "Grønnere sentrum", opens_in=timedelta(days=5),
                          closes_in=timedelta(days=20))
    over = make_campaign(rt, "Vinterbyen", opens_in=timedelta(days=-30),
                         closes_in=timedelta(days=-1))
    kari = citizen(rt, 1001)
    first = answer_idea(rt, running, "Sykkelparkering ved skolene", kari, status="realised")
    answer_idea(rt, running, "Sykkelbuss om morgenen", citizen(rt, 1002))
    with transaction(rt.db) as session:
        rt.ideas.add_support(session, book.get_idea(session, first),
                                 citizen(rt, 1003))
        book.get_idea(session, first).chosen = True

    (employee,) = await command(http, fake, "konkurranse")
    text = shown(employee)
    assert employee["blocks"][0]["text"]["text"] == "Idékonkurranser"
    assert text.index("Grønnere sentrum") < text.index("Sykkelbyen Asker") < \
        text.index("Vinterbyen")  # the newest opening first
    assert "*Sykkelbyen Asker* (nr. 1) · Åpen" in text
    assert "*Grønnere sentrum* (nr. 2) · Kommer" in text
    assert "*Vinterbyen* (nr. 3) · Avsluttet" in text
    assert QUESTION in text and "*Område:* Areal og transport" in text
    running_row = stored(rt, running)
    assert f"*Stenger:* {kit.minute(running_row.closes_at, zone)}" in text
    assert f"*Åpner:* {kit.minute(stored(rt, later).opens_at, zone)}" in text
    assert "*Idéer:* 2 · *Støttespillere:* 1 · *Realisert:* 1 · *Valgt:* KI-1" in text
    assert f"https://t.me/{BOT}?start=k{running}" in text
    assert buttons(employee) == {}
    assert "konkurranse ny" not in text

    (moderator,) = await command(http, fake, "konkurranser", user=GROUP_MOD)
    rows = [b for b in moderator["blocks"] if b["type"] == "actions"]
    labels = [[e["text"]["text"] for e in b["elements"]] for b in rows]
    assert labels == [["Endre", "Avslutt"], ["Endre", "Avslutt", "Marker valgte"], ["Endre"]]
    assert [b["block_id"] for b in rows] == [f"campaign_{later}", f"campaign_{running}",
                                            f"campaign_{over}"]
    assert "confirm" in buttons(moderator)["Avslutt"]
    assert "`/kominn konkurranse ny`" in shown(moderator)

    (usage,) = await command(http, fake, "konkurranse tull")
    assert "/kominn konkurranse ny" in shown(usage)


async def test_an_empty_list_and_a_long_one(http: httpx.AsyncClient, fake: FakeSlackAPI,
                                            rt: Runtime) -> None:
    (empty,) = await command(http, fake, "konkurranse")
    assert "Ingen idékonkurranser ennå" in shown(empty)
    for n in range(sc.LISTED + 2):
        make_campaign(rt, f"Konkurranse nummer {n + 1}", opens_in=timedelta(hours=n))
    (full,) = await command(http, fake, "konkurranse", user=MOD)
    assert len(full["blocks"]) <= 50
    assert f"Viser de {sc.LISTED} nyeste av {sc.LISTED + 2}" in shown(full)
    assert f"Konkurranse nummer {sc.LISTED + 2}*" in shown(full)
    assert "Konkurranse nummer 1*" not in shown(full)


# --- ny: create -------------------------------------------------------------------------------

async def test_a_moderator_creates_a_competition_in_the_modal(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    zone, day = rt.settings.zone, today(rt)
    ack = await post(http, _command_body(fake, "konkurranse ny", MOD, "TRIGNEW"))
    assert ack.status_code == 200 and ack.text == ""
    (call,) = await fake.await_calls("views.open")
    modal = call["args"]["view"]
    assert call["args"]["trigger_id"] == "TRIGNEW" and modal["callback_id"] == ui.CAMPAIGN_VIEW
    assert [o["text"]["text"] for o in block(modal, "area")["element"]["options"]] == \
        rt.settings.focus_areas
    assert block(modal, "opens")["element"]["initial_date"] == day.isoformat()
    assert block(modal, "closes")["optional"] is False
    assert "initial_date" not in block(modal, "closes")["element"]

    area = rt.settings.focus_areas.index("Areal og transport")
    done = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "  Sykkelbyen   Asker ", QUESTION, area=str(area), closes=day + timedelta(days=14),
        text="Vinnerne blir med og planlegger."), modal["private_metadata"])
    assert done.text == ""  # the modal closes
    (receipt,) = await fake.await_responses("cmd")
    assert "Idékonkurranse nr. 1 «Sykkelbyen Asker» er opprettet" in shown(receipt)
    assert f"https://t.me/{BOT}?start=k1" in shown(receipt)

    row = stored(rt, 1)
    assert (row.title, row.question, row.focus_area, row.text, row.created_by) == (
        "Sykkelbyen Asker", QUESTION, "Areal og transport", "Vinnerne blir med og planlegger.",
        f"slack:{MOD}")
    assert row.opens_at == datetime.combine(day, time(0, 0), tzinfo=zone)
    assert row.closes_at == datetime.combine(day + timedelta(days=14), time(23, 59),
                                             tzinfo=zone)
    assert campaigns.state_of(row, utcnow()) == "open"


def _command_body(fake: FakeSlackAPI, text: str, user: str, trigger: str) -> str:
    from tests.fakes.slack_signing import slash_command_body

    return slash_command_body(text=text, user_id=user, trigger_id=trigger,
                              response_url=fake.response_url("cmd"))


async def test_non_moderators_cannot_create_edit_close_or_choose(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    number = make_campaign(rt)
    ref = answer_idea(rt, number, "Sykkelparkering ved skolene", citizen(rt, 1001))
    (refused,) = await command(http, fake, "konkurranse ny")
    assert "bare moderatorene" in shown(refused)
    # forged clicks and submits, as if the buttons had been shown to an employee
    for action in (ui.EDIT, ui.CLOSE, ui.CHOOSE):
        (pressed,) = await press(http, fake, {"action_id": action, "value": str(number)},
                                 user=EMPLOYEE)
        assert "bare moderatorene" in shown(pressed)
    meta = json.dumps({"id": None, "url": fake.response_url("forged")})
    await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Falsk konkurranse", QUESTION, closes=today(rt) + timedelta(days=3)), meta,
        user=EMPLOYEE)
    meta = json.dumps({"id": number, "url": fake.response_url("forged")})
    await submit(http, ui.CHOOSE_VIEW, {"refs": {"value": {
        "type": "multi_static_select", "selected_options": [{"value": ref}]}}}, meta,
        user=EMPLOYEE)
    forged = await fake.await_responses("forged", n=2)
    assert all("bare moderatorene" in shown(m) for m in forged)
    await drain()
    assert fake.call_count("views.open") == 0
    with Session(rt.db) as session:
        assert len(session.exec(select(Campaign)).all()) == 1
        assert session.exec(select(Idea)).one().chosen is False
    assert stored(rt, number).closed_at is None and outbox(rt, "campaign_outcome") == []


async def test_the_modal_says_what_is_wrong(http: httpx.AsyncClient, fake: FakeSlackAPI,
                                            rt: Runtime) -> None:
    day = today(rt)
    meta = json.dumps({"id": None, "url": fake.response_url("cmd")})
    before = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", QUESTION, opens=day + timedelta(days=5),
        closes=day + timedelta(days=2)), meta)
    assert before.json() == {"response_action": "errors", "errors": {
        "closes": "Konkurransen må stenge etter at den åpner."}}
    wrong = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Ja", "Hva", area="99", opens=day - timedelta(days=1), closes=None,
        text="x" * 2001), meta)
    assert wrong.json()["response_action"] == "errors"
    errors = wrong.json()["errors"]
    assert set(errors) == {"title", "question", "area", "opens", "closes", "text"}
    assert errors["title"] == "Skriv mellom 3 og 200 tegn."
    assert "passert" in errors["opens"] and errors["closes"] == "Velg siste dag."
    past = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", QUESTION, closes=day - timedelta(days=1)), meta)
    assert "passert" in past.json()["errors"]["closes"]
    same_day = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", QUESTION, area=None, closes=day), meta)
    assert same_day.text == ""  # opens today, closes tonight: allowed, no area is fine
    await fake.await_responses("cmd")
    with Session(rt.db) as session:
        (only,) = session.exec(select(Campaign)).all()
    assert only.focus_area is None


# The same bad competitions, as the modal's fields and as `kominn campaigns create` options
# (days from today): (title, question, text, opens, closes), and the fields both refuse.
BAD_COMPETITIONS = [
    (("Ja", "Hva", "x" * 2001, None, 14), {"title", "question", "text"}),
    (("\u200bJa\u200b\u200b\u200b", QUESTION, "", None, 14), {"title"}),  # cleaned first
    (("Sykkelbyen Asker", QUESTION, "", 5, 2), {"closes"}),
    (("Sykkelbyen Asker", QUESTION, "", -1, 14), {"opens"}),
    (("Sykkelbyen Asker", QUESTION, "", None, -1), {"closes"}),
]


@pytest.mark.parametrize(("values", "fields"), BAD_COMPETITIONS)
async def test_cli_and_slack_refuse_the_same_competitions(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, settings: Any,
        values: tuple[str, str, str, int | None, int], fields: set[str]) -> None:
    title, question, text, opens, closes = values
    day = today(rt)
    opens_day = day + timedelta(days=opens) if opens is not None else None
    closes_day = day + timedelta(days=closes)
    meta = json.dumps({"id": None, "url": fake.response_url("cmd")})
    modal = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        title, question, opens=opens_day, closes=closes_day, text=text), meta)
    assert modal.json()["response_action"] == "errors"
    assert set(modal.json()["errors"]) == fields

    options = ["--title", title, "--question", question, "--closes", closes_day.isoformat()]
    options += ["--text", text] if text else []
    options += ["--opens", opens_day.isoformat()] if opens_day else []
    cli = kominn(settings, "campaigns", "create", *options)
    assert cli.returncode == 1 and cli.stderr.startswith("refused: ")
    assert set(re.findall(r"(?:^refused: |; )(\w+): ", cli.stderr)) == fields
    with Session(rt.db) as session:
        assert session.exec(select(Campaign)).all() == []


def test_the_cli_names_the_areas_it_knows(settings: Any) -> None:
    cli = kominn(settings, "campaigns", "create", "--title", "Sykkelbyen Asker", "--question",
                 QUESTION, "--closes", "2099-01-31", "--area", "Sykling")
    assert cli.returncode == 1
    assert cli.stderr.startswith("refused: area: Choose a focus area")
    assert "(--area must be one of: Vekst og utvikling; " in cli.stderr


# --- edit, close, choose ----------------------------------------------------------------------

async def test_edit_prefills_the_modal_and_updates(http: httpx.AsyncClient,
                                                   fake: FakeSlackAPI, rt: Runtime) -> None:
    zone = rt.settings.zone
    number = make_campaign(rt, closes_in=timedelta(days=10))
    original = stored(rt, number)
    (listed,) = await command(http, fake, "konkurranse", user=MOD, name="list")
    modal = await open_modal(http, fake, buttons(listed)["Endre"], "list")
    assert modal["callback_id"] == ui.CAMPAIGN_VIEW
    assert json.loads(modal["private_metadata"])["id"] == number
    assert block(modal, "title")["element"]["initial_value"] == "Sykkelbyen Asker"
    assert block(modal, "question")["element"]["initial_value"] == QUESTION
    assert block(modal, "area")["element"]["initial_option"]["text"]["text"] == \
        "Areal og transport"
    closes_day = kit.local(original.closes_at, zone).date()
    assert block(modal, "closes")["element"]["initial_date"] == closes_day.isoformat()
    assert not any(b.get("block_id") == "opens" for b in modal["blocks"])
    assert "kan ikke endres" in shown(modal)

    # the same closing day keeps the exact time it had (it was not set to 23:59)
    unchanged = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker 2026", QUESTION, area="0", closes=closes_day), modal[
        "private_metadata"])
    assert unchanged.text == ""
    (updated,) = (await fake.await_responses("list", n=2))[1:]
    assert updated["replace_original"] is True
    assert "Idékonkurranse nr. 1 er endret" in shown(updated)
    assert "*Sykkelbyen Asker 2026*" in shown(updated)
    row = stored(rt, number)
    assert row.closes_at == original.closes_at and row.opens_at == original.opens_at
    assert row.focus_area == rt.settings.focus_areas[0]

    too_early = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", QUESTION, closes=kit.local(original.opens_at, zone).date()
        - timedelta(days=1)), modal["private_metadata"])
    assert "closes" in too_early.json()["errors"]

    later = closes_day + timedelta(days=7)
    await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", "Hvordan kan vi sykle mer?", area=None, closes=later,
        text="Nytt: premie til beste idé."), modal["private_metadata"])
    await fake.await_responses("list", n=3)
    row = stored(rt, number)
    assert (row.question, row.focus_area, row.text) == (
        "Hvordan kan vi sykle mer?", None, "Nytt: premie til beste idé.")
    assert row.closes_at == datetime.combine(later, time(23, 59), tzinfo=zone)
    assert row.opens_at == original.opens_at


async def test_close_from_the_list(http: httpx.AsyncClient, fake: FakeSlackAPI,
                                   rt: Runtime) -> None:
    number = make_campaign(rt)
    (listed,) = await command(http, fake, "konkurranse", user=MOD, name="list")
    close = buttons(listed)["Avslutt"]
    (closed,) = await press(http, fake, close, name="list")
    assert closed["replace_original"] is True
    assert "Idékonkurranse nr. 1 er avsluttet" in shown(closed)
    assert "· Avsluttet" in shown(closed) and "Avslutt" not in buttons(closed)
    row = stored(rt, number)
    assert row.closed_at is not None and campaigns.state_of(row, utcnow()) == "closed"
    (again,) = await press(http, fake, close, name="list")  # the stale button
    assert "var allerede avsluttet" in shown(again)
    assert stored(rt, number).closed_at == row.closed_at
    (missing,) = await press(http, fake, {"action_id": ui.CLOSE, "value": "99"}, name="list")
    assert "Fant ingen idékonkurranse nr. 99" in shown(missing)

    # closed: the edit form keeps the dates
    modal = await open_modal(http, fake, buttons(closed)["Endre"], "list")
    moved = await submit(http, ui.CAMPAIGN_VIEW, campaign_values(
        "Sykkelbyen Asker", QUESTION, closes=today(rt) + timedelta(days=30)),
        modal["private_metadata"])
    assert "beholder datoene" in moved.json()["errors"]["closes"]


async def test_mark_chosen_tells_every_participant(http: httpx.AsyncClient,
                                                   fake: FakeSlackAPI, rt: Runtime) -> None:
    number = make_campaign(rt)
    other = make_campaign(rt, "Grønnere sentrum")
    refs = [answer_idea(rt, number, title, citizen(rt, 1000 + n)) for n, title in enumerate(
        ("Sykkelparkering ved skolene", "Sykkelbuss om morgenen", "Trygge kryss"))]
    stranger = answer_idea(rt, other, "Blomster i sentrum", citizen(rt, 2000))
    (listed,) = await command(http, fake, "konkurranse", user=MOD, name="list")
    row = next(b for b in listed["blocks"] if b.get("block_id") == f"campaign_{number}")
    choose = next(e for e in row["elements"] if e["action_id"] == ui.CHOOSE)
    modal = await open_modal(http, fake, choose, "list")
    assert modal["callback_id"] == ui.CHOOSE_VIEW
    select_element = block(modal, "refs")["element"]
    assert select_element["type"] == "multi_static_select"
    assert [o["value"] for o in select_element["options"]] == refs
    assert "får beskjed om utfallet" in shown(modal)

    def picked(*chosen: str) -> dict[str, Any]:
        return {"refs": {"value": {"type": "multi_static_select",
                                   "selected_options": [{"value": r} for r in chosen]}}}

    none = await submit(http, ui.CHOOSE_VIEW, picked(), modal["private_metadata"])
    assert none.json()["errors"]["refs"] == "Velg minst én idé"
    foreign = await submit(http, ui.CHOOSE_VIEW, picked(refs[0], stranger),
                           modal["private_metadata"])
    assert f"{stranger} er ikke svar på konkurranse nr. {number}" in \
        foreign.json()["errors"]["refs"]
    assert outbox(rt, "campaign_outcome") == []

    done = await submit(http, ui.CHOOSE_VIEW, picked(refs[0], refs[2]),
                        modal["private_metadata"])
    assert done.text == ""
    (result,) = (await fake.await_responses("list", n=2))[1:]
    assert result["replace_original"] is True
    assert f"valgt {refs[0]}, {refs[2]}. 3 deltakere får beskjed" in shown(result)
    assert f"*Valgt:* {refs[0]}, {refs[2]}" in shown(result)
    rows = outbox(rt, "campaign_outcome")
    assert [r.address for r in rows] == ["1000", "1001", "1002"]
    payloads = [json.loads(r.payload) for r in rows]
    assert [p["chosen"] for p in payloads] == [True, False, True]
    assert all(p["chosen_refs"] == [refs[0], refs[2]] for p in payloads)
    assert stored(rt, number).outcome_at is not None

    # once told, a second choice marks the idea but tells nobody again (and says so)
    again = await open_modal(http, fake, choose, "list")
    assert "får ikke ny beskjed" in shown(again)
    assert [o["value"] for o in block(again, "refs")["element"]["initial_options"]] == \
        [refs[0], refs[2]]
    await submit(http, ui.CHOOSE_VIEW, picked(refs[1]), again["private_metadata"])
    (second,) = (await fake.await_responses("list", n=3))[2:]
    assert "0 deltakere får beskjed" in shown(second)
    assert len(outbox(rt, "campaign_outcome")) == 3


async def test_mark_chosen_by_refs_when_there_are_too_many_to_select(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "CHOICES", 2)
    number = make_campaign(rt)
    refs = [answer_idea(rt, number, f"Sykkelidé nummer {n}", citizen(rt, 1000 + n))
            for n in range(3)]
    modal = await open_modal(http, fake, {"action_id": ui.CHOOSE, "value": str(number)},
                             "list")
    assert block(modal, "refs")["element"]["type"] == "plain_text_input"
    bad = await submit(http, ui.CHOOSE_VIEW, {"refs": {"value": "KI-1, hurra"}},
                       modal["private_metadata"])
    assert "Forstod ikke: hurra" in bad.json()["errors"]["refs"]
    await submit(http, ui.CHOOSE_VIEW, {"refs": {"value": "ki 2; KI-3"}},
                 modal["private_metadata"])
    (result,) = await fake.await_responses("list")
    assert f"valgt {refs[1]}, {refs[2]}" in shown(result)
    assert len(outbox(rt, "campaign_outcome")) == 3


# --- invitations to collaborate ---------------------------------------------------------------

def useful_idea(rt: Runtime, kari: ChatPerson, ola: ChatPerson, per: ChatPerson) -> str:
    """kari's idea, supported by ola (follow-ups on) and per (follow-ups off); useful."""
    ref = kari.submit(consent=True)
    for person, consent in ((ola, "Ja"), (per, "Nei")):
        person.say("/ny")
        person.say("Flere benker rundt Semsvannet")
        person.say("Vi trenger flere benker langs turstien ved Semsvannet for de eldre.")
        person.press("Folkehelse")
        person.press("Hopp over")
        person.press(consent)
        person.press(f"Støtt {ref}")
    with transaction(rt.db) as session:
        rt.ideas.set_status(session, book.get_idea(session, ref), Status.USEFUL,
                                by="test")
    return ref


async def test_invite_to_collaborate_from_the_status_view(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson,
        ola: ChatPerson) -> None:
    ref = useful_idea(rt, kari, ola, ChatPerson(rt.engine, "per"))
    (employee,) = await command(http, fake, f"status {ref}")
    assert "Inviter til samarbeid" not in buttons(employee)
    (view,) = await command(http, fake, f"status {ref}", user=MOD, name="view")
    invite = buttons(view)["Inviter til samarbeid"]
    assert invite["action_id"] == ui.INVITE and invite["value"] == ref
    modal = await open_modal(http, fake, invite, "view")
    assert modal["callback_id"] == ui.COLLAB_VIEW and ref in shown(modal)

    short = await submit(http, ui.COLLAB_VIEW, {"text": {"value": " ok "}},
                         modal["private_metadata"])
    assert short.json()["errors"]["text"] == "Skriv mellom 3 og 1000 tegn."
    assert outbox(rt, "collab_invite") == []

    done = await submit(http, ui.COLLAB_VIEW, {"text": {
        "value": "Verksted 3. mars kl. 18 på rådhuset – vil du være med?"}},
        modal["private_metadata"])
    assert done.text == ""
    (updated,) = (await fake.await_responses("view", n=2))[1:]
    assert updated["replace_original"] is True
    assert f"Invitasjonen til samarbeid om {ref} er sendt til 2 personer" in shown(updated)
    assert "*Samarbeid:* 1 invitasjon sendt · 0 har sagt ja" in shown(updated)
    rows = outbox(rt, "collab_invite")
    assert sorted(r.address for r in rows) == ["kari", "ola"]
    assert {json.loads(r.payload)["text"] for r in rows} == {
        "Verksted 3. mars kl. 18 på rådhuset – vil du være med?"}
    with Session(rt.db) as session:
        assert session.exec(select(CollabInvite)).one().created_by == f"slack:{MOD}"


async def test_collaboration_is_refused_to_employees_and_for_ideas_not_useful(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson) -> None:
    ref = kari.submit(consent=True)
    (view,) = await command(http, fake, f"status {ref}", user=MOD)
    assert "Inviter til samarbeid" not in buttons(view)  # a new idea cannot invite yet
    (pressed,) = await press(http, fake, {"action_id": ui.INVITE, "value": ref},
                             user=EMPLOYEE)
    assert "bare moderatorene" in shown(pressed)
    text = {"text": {"value": "Verksted 3. mars kl. 18 på rådhuset"}}
    meta = json.dumps({"ref": ref, "url": fake.response_url("forged")})
    await submit(http, ui.COLLAB_VIEW, text, meta, user=EMPLOYEE)
    (forged,) = await fake.await_responses("forged")
    assert "bare moderatorene" in shown(forged)
    await submit(http, ui.COLLAB_VIEW, text, meta, user=MOD)
    (not_useful,) = (await fake.await_responses("forged", n=2))[1:]
    assert f"Bare idéer med status Nyttig kan invitere til samarbeid; {ref}" in \
        shown(not_useful)
    meta = json.dumps({"ref": "KI-99", "url": fake.response_url("forged")})
    await submit(http, ui.COLLAB_VIEW, text, meta, user=MOD)
    (missing,) = (await fake.await_responses("forged", n=3))[2:]
    assert "Fant ingen idé KI-99" in shown(missing)
    await drain()
    assert fake.call_count("views.open") == 0
    assert outbox(rt, "collab_invite") == []
    with Session(rt.db) as session:
        assert session.exec(select(CollabInvite)).all() == []


async def test_status_shows_who_said_yes_to_moderators_only(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, kari: ChatPerson,
        ola: ChatPerson) -> None:
    zone = rt.settings.zone
    ref = useful_idea(rt, kari, ola, ChatPerson(rt.engine, "per"))
    telegram = ChatPerson(rt.engine, "4711", channel="telegram")
    telegram.say("/start")
    with transaction(rt.db) as session:
        for person in session.exec(select(Person)):
            if person.channel_user_id == "4711":
                person.display_name, person.follow_up_consent = "Per Hansen", True
                rt.ideas.add_support(session, book.get_idea(session, ref),
                                         person.id or 0)
            if person.channel_user_id == "kari":
                person.display_name = f"Kari {HOSTILE}"
            session.add(person)
        invite, asked = collaboration.invite(session, book.get_idea(session, ref),
                                      "Verksted 3. mars kl. 18", by=f"slack:{MOD}")
    assert asked == 3
    kari.press_payload(f"g:collab:{invite.id}:yes")
    ola.press_payload(f"g:collab:{invite.id}:no")
    telegram.press_payload(f"g:collab:{invite.id}:yes")

    (moderator,) = await command(http, fake, f"status {ref}", user=GROUP_MOD)
    text = shown(moderator)
    assert "*Samarbeid:* 1 invitasjon sendt · 2 har sagt ja" in text
    day = kit.day(utcnow(), zone)
    assert f"• Per Hansen (Telegram) – {day}" in text
    assert f"• Kari {kit.esc(HOSTILE)} (terminalen) – {day}" in text
    assert "ola" not in text.split("*Samarbeid:*")[1]  # said no: not listed
    for raw in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example|her>"):
        assert raw not in text

    (employee,) = await command(http, fake, f"status {ref}")
    assert "Samarbeid" not in shown(employee) and "Per Hansen" not in shown(employee)
    assert "Kari" not in shown(employee)


async def test_competition_texts_are_escaped_and_shown_on_its_ideas(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    number = make_campaign(rt, f"Sommer {HOSTILE}", question=f"Hva nå? {HOSTILE}")
    ref = answer_idea(rt, number, "Sykkelparkering ved skolene", citizen(rt, 1001))
    with transaction(rt.db) as session:
        book.get_idea(session, ref).chosen = True
    messages = await command(http, fake, "konkurranse", user=MOD)
    messages += await command(http, fake, f"status {ref}")
    modal = await open_modal(http, fake, {"action_id": ui.CHOOSE, "value": str(number)},
                             "list")
    everything = "\n".join(shown(m) for m in [*messages, modal])
    for raw in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example|her>"):
        assert raw not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;@U0BOSS&gt;" in everything
    assert f"*Idékonkurranse:* Sommer {kit.esc(HOSTILE)} (nr. {number}) – *valgt*" in \
        shown(messages[1])


# --- the bot side -----------------------------------------------------------------------------

def test_update_validates_like_create(runtime: Runtime) -> None:
    now = utcnow()
    with transaction(runtime.db) as session:
        campaign = campaigns.create(session, title="Sykkelbyen", question=QUESTION,
                                    opens_at=now, closes_at=now + timedelta(days=3), by="test")
        for bad in ({"title": "Ja"}, {"question": "Hva"}, {"text": "x" * 2001},
                    {"closes_at": now - timedelta(days=1)}):
            fields = {"title": "Sykkelbyen", "question": QUESTION, "text": None,
                      "focus_area": None, "closes_at": campaign.closes_at, **bad}
            with pytest.raises(campaigns.CampaignError):
                campaigns.update(session, campaign, **fields)  # type: ignore[arg-type]
        campaigns.update(session, campaign, title=" Sykkelbyen Asker ", question=QUESTION,
                  text="  ", focus_area="Folkehelse", closes_at=now + timedelta(days=9))
        assert (campaign.title, campaign.text, campaign.focus_area) == (
            "Sykkelbyen Asker", None, "Folkehelse")
        campaigns.close(session, campaign, now)
        with pytest.raises(campaigns.CampaignError):
            campaigns.update(session, campaign, title="Sykkelbyen", question=QUESTION, text=None,
                      focus_area=None, closes_at=now + timedelta(days=20))


def test_form_dates_are_local_days(runtime: Runtime) -> None:
    zone = runtime.settings.zone
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Oslo
    form, problems = sc.check_form("Sykkelbyen", QUESTION, None, None, None, "2026-03-02",
                                   areas=[], zone=zone, now=now)
    assert problems == [] and form is not None
    assert form.opens_at == datetime(2026, 3, 2, tzinfo=zone)
    assert form.closes_at == datetime(2026, 3, 2, 23, 59, tzinfo=zone)
    _, problems = sc.check_form("Sykkelbyen", QUESTION, None, None, "2026-03-01", "2026-03-05",
                                areas=[], zone=zone, now=now)
    assert [p.field for p in problems] == ["opens"]
    _, problems = sc.check_form("Sykkelbyen", QUESTION, None, None, None, "mars",
                                areas=[], zone=zone, now=now)
    assert [(p.field, p.key) for p in problems] == [("closes",
                                                      "slack_campaigns.closes_missing")]
    assert sc.parse_refs("KI-3, ki 7 KI12 KI-3 x") == (["KI-3", "KI-7", "KI-12"], ["x"])
