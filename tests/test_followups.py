"""Follow-up rules: who hears what, and when — each rule with an explicit clock (`now`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.channels import DeliveryError, Sender
from bot.conversation.engine import Engine
from bot.followups.dispatcher import DispatchResult, dispatch
from bot.followups.rules import create_due, digest_moment
from bot.ideas import book
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from dialogs.types import Reply
from storage.db import transaction
from storage.models import BenefitAnswer, DialogState, Outbox, Person
from tests.helpers import IDEA, ChatPerson

OSLO = ZoneInfo("Europe/Oslo")
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO).astimezone(UTC)  # a Wednesday morning


class RecordingSender:
    """A channel that records what it was asked to send; `fail` first calls raise `error`."""

    def __init__(self, channel: str = "terminal", *, fail: int = 0,
                 error: Exception | None = None) -> None:
        self.channel = channel
        self.fail = fail
        self.error = error or DeliveryError("channel down")
        self.sent: list[tuple[str, list[Reply]]] = []

    async def send(self, address: str, replies: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise self.error
        self.sent.append((address, list(replies)))

    def texts(self, address: str | None = None) -> list[str]:
        return [r.text for a, replies in self.sent for r in replies
                if address is None or a == address]


def with_settings(rt: Runtime, **changes: Any) -> Runtime:
    """The same database with other settings (moderator channel, quiet hours, …)."""
    settings = rt.settings.model_copy(update=changes)
    return Runtime(settings, rt.db, rt.index,
                   Engine(rt.db, settings, rt.index, features=rt.features))


def slack_runtime(rt: Runtime, **changes: Any) -> Runtime:
    return with_settings(rt, slack_bot_token="xoxb-test", moderator_channel="CMOD", **changes)


def add_person(rt: Runtime, name: str, *, consent: bool | None = True,
               language: str | None = None, channel: str = "terminal") -> int:
    with transaction(rt.db) as s:
        person = Person(channel=channel, channel_user_id=name, chat_id=name,
                        follow_up_consent=consent, language=language)
        s.add(person)
        s.flush()
        return person.id or 0


def add_idea(rt: Runtime, author: int | None, *, at: datetime = T0,
             title: str = IDEA["title"]) -> int:
    with transaction(rt.db) as s:
        idea = rt.ideas.create_idea(s, book.NewIdea(
            title=title, description=IDEA["description"], channel="terminal",
            author_id=author, created_at=at), by="test")
        return idea.id or 0


def move(rt: Runtime, number: int, status: Status, at: datetime, note: str | None = None
         ) -> None:
    with transaction(rt.db) as s:
        rt.ideas.set_status(s, book.get_idea(s, number), status, by="test",
                                note=note, at=at)


def support(rt: Runtime, number: int, person_id: int) -> None:
    with transaction(rt.db) as s:
        rt.ideas.add_support(s, book.get_idea(s, number), person_id)


def due(rt: Runtime, now: datetime) -> dict[str, int]:
    """The scheduler's scan at `now`, with the runtime's rules."""
    return create_due(rt.db, rt.settings, rt.features.rules, now)


def deliver(rt: Runtime, senders: Mapping[str, Sender] | Sender, now: datetime,
            **policy: Any) -> DispatchResult:
    from bot.followups.dispatcher import Policy

    if not isinstance(senders, Mapping):
        senders = {senders.channel: senders}
    return asyncio.run(dispatch(rt.db, rt.settings, rt.features.renderers, senders, now,
                                Policy(**policy)))


def rows(rt: Runtime, kind: str | None = None) -> list[Outbox]:
    with Session(rt.db) as s:
        query = select(Outbox).order_by(col(Outbox.id))
        if kind:
            query = query.where(Outbox.kind == kind)
        return list(s.exec(query).all())


# --- listeners ---------------------------------------------------------------------------------

def test_status_change_reaches_author_and_consenting_supporters_once(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    ola = add_person(runtime, "ola", language="en")
    per = add_person(runtime, "per", consent=False)
    anne = add_person(runtime, "anne", consent=None)
    number = add_idea(runtime, kari)
    for supporter in (ola, per, anne):
        support(runtime, number, supporter)
    move(runtime, number, Status.USEFUL, T0 + timedelta(days=2), note="Vi ser på saken")

    sender = RecordingSender()
    result = deliver(runtime, sender, T0 + timedelta(days=2))
    assert result.sent == 2
    assert sorted(a for a, _ in sender.sent) == ["kari", "ola"]
    [kari_text] = sender.texts("kari")
    assert "KI-1" in kari_text and "Nyttig" in kari_text and "Vi ser på saken" in kari_text
    assert "idéen din" in kari_text
    [ola_text] = sender.texts("ola")
    assert "which you support" in ola_text and "Useful" in ola_text
    # Delivered once: running again, or the same change seen again, sends nothing more.
    assert deliver(runtime, sender, T0 + timedelta(days=3)).sent == 0
    assert len(sender.sent) == 2


def test_notice_not_due_before_its_time(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    number = add_idea(runtime, kari)
    move(runtime, number, Status.USEFUL, T0 + timedelta(hours=1))
    sender = RecordingSender()
    assert deliver(runtime, sender, T0 + timedelta(minutes=59)).sent == 0
    assert deliver(runtime, sender, T0 + timedelta(hours=1)).sent == 1


def test_merge_tells_followers_which_idea_they_now_follow(runtime: Runtime) -> None:
    kari, ola, per = (add_person(runtime, n) for n in ("kari", "ola", "per"))
    kept = add_idea(runtime, kari, title="Benker rundt Semsvannet")
    dup = add_idea(runtime, ola, title="Flere benker ved vannet")
    support(runtime, dup, per)
    with transaction(runtime.db) as s:
        runtime.ideas.merge(s, book.get_idea(s, dup), book.get_idea(s, kept),
                           by="test", at=T0)
    sender = RecordingSender()
    deliver(runtime, sender, T0)
    assert sorted(a for a, _ in sender.sent) == ["ola", "per"]  # kari's idea was kept
    [ola_text] = sender.texts("ola")
    assert "KI-2" in ola_text and "KI-1" in ola_text and "Du følger nå KI-1" in ola_text
    assert len(rows(runtime, "merged")) == 2


def test_support_milestones_tell_the_author(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari")
    number = add_idea(runtime, kari)
    for i in range(6):
        support(runtime, number, add_person(runtime, f"p{i}", consent=False))
    counts = [json.loads(r.payload)["count"] for r in rows(runtime, "supported")]
    assert counts == [1, 5]


def test_no_consent_no_scheduled_notice(runtime: Runtime) -> None:
    kari = add_person(runtime, "kari", consent=False)
    number = add_idea(runtime, kari)
    other = add_idea(runtime, kari, title="Lys i lysløypa på Vettre")
    support(runtime, number, add_person(runtime, "ola", consent=False))
    move(runtime, number, Status.USEFUL, T0)
    move(runtime, number, Status.REALISED, T0)
    moderated = slack_runtime(runtime)
    due(moderated, T0 + timedelta(days=60))
    # Only what goes to the staff channel: the nudge about the idea still new, the digest.
    assert sorted(r.kind for r in rows(runtime)) == ["stale_moderator", "weekly_digest"]
    assert json.loads(rows(runtime, "stale_moderator")[0].payload)["idea"] == other
    assert all(r.person_id is None for r in rows(runtime))


# --- scans: each fires once, at the right time and not before -----------------------------------

def test_stale_idea_author_note_and_moderator_nudge_once(runtime: Runtime) -> None:
    rt = slack_runtime(runtime)
    kari = add_person(rt, "kari")
    number = add_idea(rt, kari, at=T0)
    early = due(rt, T0 + timedelta(days=14) - timedelta(minutes=1))
    assert early["stale"] == 0
    assert due(rt, T0 + timedelta(days=14))["stale"] == 2
    assert due(rt, T0 + timedelta(days=20))["stale"] == 0
    author, staff = RecordingSender(), RecordingSender("slack")
    deliver(rt, {"terminal": author, "slack": staff}, T0 + timedelta(days=20))
    assert "fortsatt til vurdering" in author.texts("kari")[0]
    assert any("KI-1" in t and "14 dager" in t for t in staff.texts("CMOD"))
    # Reopened after a decline: a new stretch of "new" counts afresh.
    move(rt, number, Status.DECLINED, T0 + timedelta(days=21), note="Ikke nå")
    move(rt, number, Status.NEW, T0 + timedelta(days=22))
    assert due(rt, T0 + timedelta(days=35))["stale"] == 0
    assert due(rt, T0 + timedelta(days=36))["stale"] == 2


def test_stale_period_is_configurable(runtime: Runtime) -> None:
    rt = with_settings(runtime, stale_days=3)
    add_idea(rt, add_person(rt, "kari"), at=T0)
    assert due(rt, T0 + timedelta(days=2))["stale"] == 0
    assert due(rt, T0 + timedelta(days=3))["stale"] == 1


def test_benefit_check_after_realised_and_answers_stored(runtime: Runtime) -> None:
    kari_id = add_person(runtime, "kari")
    number = add_idea(runtime, kari_id)
    realised = T0 + timedelta(days=10)
    move(runtime, number, Status.USEFUL, T0 + timedelta(days=5))
    move(runtime, number, Status.REALISED, realised)
    assert due(runtime, realised + timedelta(days=30) - timedelta(seconds=1))["benefit_check"] == 0
    assert due(runtime, realised + timedelta(days=30))["benefit_check"] == 1
    assert due(runtime, realised + timedelta(days=31))["benefit_check"] == 0
    sender = RecordingSender()
    deliver(runtime, sender, realised + timedelta(days=31))
    question = sender.sent[-1][1][0]
    assert "Har det hjulpet?" in question.text
    assert [c.label for c in question.choices] == ["Ja", "Delvis", "Nei"]

    # Someone else pressing a (forged) button stores nothing.
    ola = ChatPerson(runtime.engine, "ola")
    ola.press_payload(question.choices[0].payload)
    kari = ChatPerson(runtime.engine, "kari")
    kari.replies = [question]
    kari.press("Delvis")
    assert "Takk for svaret" in kari.text and "Hopp over" in kari.buttons()
    kari.say("Benkene brukes mye, men det trengs flere.")
    assert "Kommentaren er lagret" in kari.text
    with Session(runtime.db) as s:
        answers = s.exec(select(BenefitAnswer)).all()
    assert [(a.idea_id, a.person_id, a.answer, a.comment) for a in answers] == [
        (number, kari_id, "partly", "Benkene brukes mye, men det trengs flere.")]
    # Changing one's mind later updates the same answer.
    kari.replies = [question]
    kari.press("Ja")
    kari.press("Hopp over")
    with Session(runtime.db) as s:
        assert [a.answer for a in s.exec(select(BenefitAnswer))] == ["yes"]


def test_benefit_answer_keeps_a_conversation_in_progress(runtime: Runtime) -> None:
    add_person(runtime, "kari")
    number = add_idea(runtime, 1)
    move(runtime, number, Status.USEFUL, T0)
    move(runtime, number, Status.REALISED, T0)
    kari = ChatPerson(runtime.engine, "kari")
    kari.say("/ny")
    kari.press_payload(f"g:benefit:{number}:no")
    assert "Takk for svaret" in kari.text and "tittel" in kari.text  # still submitting
    kari.say("Lys i lysløypa på Vettre")
    assert "Beskriv" in kari.text
    with Session(runtime.db) as s:
        assert [a.answer for a in s.exec(select(BenefitAnswer))] == ["no"]


def chat_at(rt: Runtime, user: str, moment: datetime) -> ChatPerson:
    """A person chatting while the engine's clock says `moment`."""
    engine = Engine(rt.db, rt.settings, rt.index, features=rt.features, clock=lambda: moment)
    return ChatPerson(engine, user)


def test_half_finished_dialog_gets_one_reminder_then_is_dropped(runtime: Runtime) -> None:
    kari = chat_at(runtime, "kari", T0)
    kari.say("/ny")
    kari.say(IDEA["title"])
    db = runtime.db
    assert due(runtime, T0 + timedelta(hours=23, minutes=59))["dialog_reminder"] == 0
    assert due(runtime, T0 + timedelta(hours=24))["dialog_reminder"] == 1
    assert due(runtime, T0 + timedelta(hours=48))["dialog_reminder"] == 0
    sender = RecordingSender()
    deliver(runtime, sender, T0 + timedelta(hours=48))
    [reminder] = sender.sent[0][1]
    assert "ikke er sendt inn" in reminder.text
    assert [c.label for c in reminder.choices] == ["Fortsett", "Avbryt"]

    assert due(runtime, T0 + timedelta(days=7) - timedelta(seconds=1)
                      )["dialog_expiry"] == 0
    assert due(runtime, T0 + timedelta(days=7))["dialog_expiry"] == 1
    with Session(db) as s:
        state = s.get(DialogState, ("terminal", "kari"))
        assert state is not None and state.flow is None and state.data == "{}"
    later = chat_at(runtime, "kari", T0 + timedelta(days=8))
    later.replies = [reminder]
    later.press("Fortsett")
    assert "ingenting å fortsette" in later.text


def test_reminder_buttons_resume_or_drop(runtime: Runtime) -> None:
    kari = chat_at(runtime, "kari", T0)
    kari.say("/ny")
    kari.say(IDEA["title"])
    due(runtime, T0 + timedelta(days=1))
    sender = RecordingSender()
    deliver(runtime, sender, T0 + timedelta(days=1))
    later = chat_at(runtime, "kari", T0 + timedelta(days=2))
    later.replies = sender.sent[0][1]
    later.press("Fortsett")
    assert "Beskriv idéen" in later.text
    later.say(IDEA["description"])
    assert "satsningsområde" in later.text
    later.replies = sender.sent[0][1]
    later.press("Avbryt")
    assert "forkastet" in later.text
    later.say("hei")
    assert "satsningsområde" not in later.text


def test_no_reminder_for_someone_who_said_no_to_follow_ups(runtime: Runtime) -> None:
    add_person(runtime, "per", consent=False)
    per = chat_at(runtime, "per", T0)
    per.say("/ny")
    assert due(runtime, T0 + timedelta(days=2)
                      )["dialog_reminder"] == 0
    assert rows(runtime) == []


def test_weekly_digest_once_per_week_to_the_moderators(runtime: Runtime) -> None:
    rt = slack_runtime(runtime)
    add_idea(rt, None, at=T0 - timedelta(days=20), title="Gammel idé som venter")
    add_idea(rt, None, at=T0 - timedelta(days=1), title="Ny idé <!channel>")
    monday = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO).astimezone(UTC)
    assert digest_moment(T0, rt.settings) == monday
    assert due(rt, T0)["weekly_digest"] == 1
    assert due(rt, T0 + timedelta(days=2))["weekly_digest"] == 0
    next_monday = monday + timedelta(days=7)
    assert due(rt, next_monday - timedelta(minutes=1)
                      )["weekly_digest"] == 0
    assert due(rt, next_monday)["weekly_digest"] == 1
    staff = RecordingSender("slack")
    deliver(rt, staff, next_monday)
    digests = [t for t in staff.texts("CMOD") if "ukesoversikt" in t]
    assert len(digests) == 2
    assert "2026-W10" in digests[0] and "2026-W11" in digests[1]
    assert "1 ny idé siste uke:" in digests[1] and "Ny idé <!channel>" in digests[1]
    stale = "1 idé har stått som Nytt i 14 dager eller mer:\n• KI-1 Gammel idé som venter"
    assert stale + " (24 dager)" in digests[1]


def test_no_moderator_channel_no_staff_notices(runtime: Runtime) -> None:
    add_idea(runtime, None, at=T0)
    created = due(runtime, T0 + timedelta(days=30))
    assert created["weekly_digest"] == 0 and created["stale"] == 0


def test_erasure_forgets_queued_notices(runtime: Runtime) -> None:
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    move(runtime, 1, Status.USEFUL, T0)
    assert len(rows(runtime)) == 1
    kari.say("/slett")
    kari.press("Slett")
    assert rows(runtime) == []
