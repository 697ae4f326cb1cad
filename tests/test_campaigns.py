"""Idea competitions: create, take part (list, button, deep link), invitations, reminder,
close, outcome — with an explicit clock."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import Session, select

from bot.features import campaigns
from bot.followups import rules
from bot.ideas import book
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Idea, Outbox, Person, utcnow
from tests.helpers import IDEA, ChatPerson
from tests.test_cli import kominn

QUESTION = "Hvordan kan vi få flere til å sykle til skolen?"


def make_campaign(runtime: Runtime, *, opens_in: timedelta = timedelta(0),
                  closes_in: timedelta = timedelta(days=10)) -> int:
    now = utcnow()
    with transaction(runtime.db) as session:
        campaign = campaigns.create(session, title="Sykkelbyen Asker", question=QUESTION,
                                    opens_at=now + opens_in, closes_at=now + closes_in,
                                    focus_area="Areal og transport", by="test")
        return campaign.id or 0


def outbox(runtime: Runtime, kind: str) -> list[Outbox]:
    with Session(runtime.db) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == kind)))


def run_rules(runtime: Runtime, when) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return rules.create_due(runtime.db, runtime.settings, runtime.features.rules, when)


def test_list_join_and_bound_submission(runtime: Runtime, kari: ChatPerson) -> None:
    number = make_campaign(runtime)
    kari.say("/konkurranser")
    assert "Sykkelbyen Asker" in kari.text and QUESTION in kari.text
    kari.press("Delta: Sykkelbyen")
    assert QUESTION in kari.text
    kari.say("Sykkelparkering ved skolene")
    kari.say("Trygg og overbygd sykkelparkering ved alle barneskoler i kommunen.")
    kari.press("Areal og transport")
    kari.press("Hopp over")
    kari.press("Ja")
    if any("Min idé er ny" in b for b in kari.buttons()):
        kari.press("Min idé er ny")
    kari.press("Send inn")
    assert "KI-1" in kari.text
    with Session(runtime.db) as session:
        idea = session.get(Idea, 1)
        assert idea is not None and idea.campaign_id == number


def test_deep_link_and_closed_competition(runtime: Runtime, kari: ChatPerson,
                                          ola: ChatPerson) -> None:
    number = make_campaign(runtime)
    kari.say(f"/start k{number}")
    assert QUESTION in kari.text
    kari.say("Sykkelparkering ved skolene")
    with transaction(runtime.db) as session:
        campaigns.close(session, campaigns.get(session, number), utcnow())
    kari.say("Trygg og overbygd sykkelparkering ved alle barneskoler i kommunen.")
    kari.press("Areal og transport")
    kari.press("Hopp over")
    kari.press("Nei")
    kari.press("Send inn")
    assert "avsluttet" in kari.text
    ola.say(f"/start k{number}")
    assert "avsluttet" in ola.text
    ola.say("/start k999")
    assert "finner ikke" in ola.text
    with Session(runtime.db) as session:
        assert session.exec(select(Idea)).all() == []


def test_invitations_once_to_consenting_people_only(runtime: Runtime, kari: ChatPerson,
                                                   ola: ChatPerson) -> None:
    kari.submit()
    kari.press("Ja, inviter meg")
    assert "invitert" in kari.text
    ola.say("/innstillinger")
    assert "Invitasjoner til nye idékonkurranser: av" in ola.text
    number = make_campaign(runtime, opens_in=timedelta(days=2))
    now = utcnow()
    assert run_rules(runtime, now)["campaign_invitations"] == 0  # not open yet
    assert run_rules(runtime, now + timedelta(days=2, minutes=1))["campaign_invitations"] == 1
    assert run_rules(runtime, now + timedelta(days=2, hours=1))["campaign_invitations"] == 0
    (row,) = outbox(runtime, "campaign_invite")
    assert row.address == "kari" and json.loads(row.payload)["id"] == number


def test_reminder_three_days_before_close_for_unfinished(runtime: Runtime, kari: ChatPerson,
                                                         ola: ChatPerson) -> None:
    number = make_campaign(runtime, closes_in=timedelta(days=5))
    kari.say(f"/start k{number}")
    kari.say("Sykkelparkering ved skolene")
    ola.say(f"/start k{number}")
    ola.say("/avbryt")
    now = utcnow()
    assert run_rules(runtime, now + timedelta(days=1))["campaign_reminders"] == 0
    assert run_rules(runtime, now + timedelta(days=2, hours=1))["campaign_reminders"] == 1
    assert run_rules(runtime, now + timedelta(days=3))["campaign_reminders"] == 0
    (row,) = outbox(runtime, "campaign_reminder")
    assert row.address == "kari"


def test_close_summary_and_outcome(runtime: Runtime, kari: ChatPerson, ola: ChatPerson) -> None:
    runtime.settings.slack_ideas_channel = "C_IDEAS"
    runtime.settings.slack_bot_token = "xoxb-test"
    number = make_campaign(runtime, closes_in=timedelta(days=5))
    ref_k = kari.submit(title="Sykkelparkering ved skolene", start=f"/start k{number}",
                        description="Trygg og overbygd sykkelparkering ved barneskolene.")
    ref_o = ola.submit(title="Sykkelbuss om morgenen", start=f"/start k{number}",
                       description="Voksne sykler sammen med barna til skolen hver morgen.")
    with Session(runtime.db) as session:
        assert {i.campaign_id for i in session.exec(select(Idea))} == {number}
    run_rules(runtime, utcnow() + timedelta(days=5, minutes=1))
    (summary,) = outbox(runtime, "campaign_summary")
    assert summary.address == "C_IDEAS" and json.loads(summary.payload)["ideas"] == 2
    kari.say(f"/start k{number}")
    assert "avsluttet" in kari.text
    with transaction(runtime.db) as session:
        campaigns.choose(session, campaigns.get(session, number), [ref_k], utcnow())
    outcomes = {json.loads(r.payload)["ref"]: json.loads(r.payload)["chosen"]
                for r in outbox(runtime, "campaign_outcome")}
    assert outcomes == {ref_k: True, ref_o: False}


def test_current_shows_competitions_and_useful_ideas(runtime: Runtime, kari: ChatPerson) -> None:
    ref = kari.submit()
    with transaction(runtime.db) as session:
        runtime.ideas.set_status(session, book.get_idea(session, ref), Status.USEFUL,
                                by="test", note="Parkvesenet ser på plassering i vår.")
    make_campaign(runtime)
    kari.say("/aktuelt")
    assert "Sykkelbyen Asker" in kari.text
    assert IDEA["title"] in kari.text and "Parkvesenet ser på plassering" in kari.text


def test_settings_toggle_consents(runtime: Runtime, kari: ChatPerson) -> None:
    kari.say("/innstillinger")
    kari.press("Invitasjoner: slå på")
    kari.say("/innstillinger")
    assert "Invitasjoner til nye idékonkurranser: på" in kari.text
    kari.press("Oppfølging: slå på")
    with Session(runtime.db) as session:
        person = session.exec(select(Person).where(Person.channel_user_id == "kari")).one()
        assert person.invite_consent is True and person.follow_up_consent is True


def test_cli_create_list_close_choose(settings) -> None:  # type: ignore[no-untyped-def]
    created = kominn(settings, "campaigns", "create", "--title", "Grønnere sentrum",
                     "--question", "Hva vil du plante i Asker sentrum?",
                     "--closes", "2099-01-31T12:00", env={"TELEGRAM_BOT_USERNAME": "kominn_bot"})
    assert created.returncode == 0, created.stderr
    assert "campaign 1" in created.stdout
    assert "https://t.me/kominn_bot?start=k1" in created.stdout
    bad = kominn(settings, "campaigns", "create", "--title", "X", "--question", "Hva da?",
                 "--closes", "2001-01-01")
    assert bad.returncode == 1 and "refused" in bad.stderr
    listed = json.loads(kominn(settings, "campaigns", "list", "--format", "json").stdout)
    assert listed[0]["state"] == "open" and listed[0]["ideas"] == 0
    assert kominn(settings, "campaigns", "close", "1").returncode == 0
    listed = json.loads(kominn(settings, "campaigns", "list", "--format", "json").stdout)
    assert listed[0]["state"] == "closed"
    refused = kominn(settings, "campaigns", "choose", "1", "KI-5")
    assert refused.returncode == 1


def test_closing_early_sends_the_summary_at_once(runtime: Runtime) -> None:
    runtime.settings.slack_ideas_channel = "C_IDEAS"
    runtime.settings.slack_bot_token = "xoxb-test"
    number = make_campaign(runtime, closes_in=timedelta(days=20))
    with transaction(runtime.db) as session:
        campaigns.close(session, campaigns.get(session, number), utcnow())
    run_rules(runtime, utcnow())
    run_rules(runtime, utcnow() + timedelta(days=21))
    (summary,) = outbox(runtime, "campaign_summary")
    assert json.loads(summary.payload)["state"] == "closed"


def test_deep_link_before_opening_says_when(runtime: Runtime, kari: ChatPerson) -> None:
    number = make_campaign(runtime, opens_in=timedelta(days=3))
    kari.say(f"/start k{number}")
    assert "åpner" in kari.text and "avsluttet" not in kari.text
