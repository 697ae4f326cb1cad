"""The engine: one transaction per step, exactly-once updates, restart safety."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from bot.conversation.engine import Engine
from bot.ideas import book
from bot.runtime import Runtime, open_runtime
from bot.wiring import Feature, Features
from dialogs.core import Custom, Outcome, State
from dialogs.lifecycle import Status
from dialogs.types import Incoming, Reply
from storage.db import transaction
from storage.models import DialogState, Idea, Person, ProcessedUpdate, StatusChange, utcnow
from tests.helpers import IDEA, ChatPerson


def count(rt: Runtime, model: type) -> int:
    with Session(rt.db) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_submission_end_to_end_and_status_shows_nytt(kari: ChatPerson, runtime: Runtime) -> None:
    ref = kari.submit()
    assert ref == "KI-1"
    kari.say(f"/status {ref.lower()}")
    assert "Nytt" in kari.text and IDEA["title"] in kari.text
    with Session(runtime.db) as s:
        idea = s.get(Idea, 1)
        assert idea is not None and idea.title == IDEA["title"] and idea.place == "Semsvannet"
        assert [h.to_status for h in s.exec(select(StatusChange))] == ["new"]


def test_failing_effect_rolls_back_the_whole_step(runtime: Runtime, settings) -> None:  # type: ignore[no-untyped-def]
    def boom(applied, data):  # type: ignore[no-untyped-def]
        applied.session.add(Idea(title="half", description="half-written", channel="x"))
        raise RuntimeError("effect failed")

    def step(state: State, incoming: Incoming, ctx) -> Outcome:  # type: ignore[no-untyped-def]
        return Outcome(State(flow="submit", step="description", token=9),
                       (Reply("x"),), (Custom("boom"),))

    features = Features.of(Feature("boom", effects={"boom": boom}))
    engine = Engine(runtime.db, settings, runtime.index, features=features, step=step)
    with pytest.raises(RuntimeError):
        engine.handle(Incoming("terminal", "kari", text="hi", update_id="u1"))
    assert count(runtime, Idea) == 0
    assert count(runtime, DialogState) == 0
    assert count(runtime, ProcessedUpdate) == 0
    assert count(runtime, Person) == 0


def test_restart_resumes_the_dialog_at_the_same_step(runtime: Runtime, settings) -> None:  # type: ignore[no-untyped-def]
    kari = ChatPerson(runtime.engine, "kari")
    kari.say("/ny")
    kari.say(IDEA["title"])
    runtime.db.dispose()
    fresh = open_runtime(settings)
    again = ChatPerson(fresh.engine, "kari")
    again.say(IDEA["description"])
    assert "satsningsområde" in again.text
    again.press("Folkehelse")
    again.press("Hopp over")
    again.press("Nei")
    again.press("Send inn")
    assert "KI-1" in again.text


def test_redelivered_update_is_handled_once(runtime: Runtime) -> None:
    engine = runtime.engine
    engine.handle(Incoming("telegram", "7", text="/ny", update_id="100"))
    first = engine.handle(Incoming("telegram", "7", text=IDEA["title"], update_id="101"))
    engine.mark_delivered("telegram", "101")
    again = engine.handle(Incoming("telegram", "7", text=IDEA["title"], update_id="101"))
    assert first and again == []
    with Session(runtime.db) as s:
        state = s.get(DialogState, ("telegram", "7"))
        assert state is not None and state.step == "description"


def test_undelivered_replies_are_given_again_once_their_lease_ran_out(runtime: Runtime) -> None:
    """A redelivery while the handling worker's sending lease runs gets nothing (that worker is
    sending the answer); after it ran out (the worker died) exactly one redelivery — or one
    sweep — takes the replies over."""
    now = [utcnow()]
    engine = Engine(runtime.db, runtime.settings, runtime.index, features=runtime.features,
                    clock=lambda: now[0])
    again = Incoming("telegram", "7", text="/hjelp", update_id="5")
    first = engine.handle(again)
    assert engine.undelivered("telegram") == [("5", "7", first)]
    assert engine.handle(again) == []  # another worker: the first one is sending it
    assert engine.take_undelivered("telegram") == []
    now[0] += timedelta(seconds=runtime.settings.send_lease_seconds + 1)
    assert engine.handle(again) == first  # its worker died: this one takes it over …
    assert engine.handle(again) == []  # … and holds a fresh lease
    assert engine.take_undelivered("telegram") == []
    assert engine.renew_lease("telegram", "5")
    now[0] += timedelta(seconds=runtime.settings.send_lease_seconds + 1)
    assert not engine.renew_lease("telegram", "5")  # ran out: no longer ours to send
    assert engine.take_undelivered("telegram") == [("5", "7", first)]  # the sweep's turn
    assert engine.take_undelivered("telegram", any_lease=True) == [("5", "7", first)]
    engine.mark_delivered("telegram", "5")
    assert engine.undelivered("telegram") == []
    assert engine.take_undelivered("telegram", any_lease=True) == []
    now[0] += timedelta(seconds=runtime.settings.send_lease_seconds + 1)
    assert engine.handle(again) == []


def test_message_limit_per_minute(runtime: Runtime, settings) -> None:  # type: ignore[no-untyped-def]
    limited = settings.model_copy(update={"max_messages_per_minute": 30})
    engine = Engine(runtime.db, limited, runtime.index, features=runtime.features)
    answers = [engine.handle(Incoming("telegram", "9", text="hei", update_id=f"m{i}"))
               for i in range(33)]
    assert all(answers[:30])
    assert "mange meldinger" in answers[30][0].text
    assert answers[-1] == []


def test_daily_idea_limit(runtime: Runtime, kari: ChatPerson) -> None:
    for i in range(5):
        kari.submit(title=f"Idé nummer {i} om lekeplass", description=f"Beskrivelse {i} " * 5)
    kari.say("/ny")
    assert "grensen" in kari.text
    assert count(runtime, Idea) == 5


def test_similar_idea_offer_and_support(runtime: Runtime, kari: ChatPerson,
                                        ola: ChatPerson) -> None:
    kari.submit()
    ola.say("/ny")
    ola.say("Flere benker rundt Semsvannet")
    ola.say("Vi trenger flere benker langs turstien ved Semsvannet for de eldre.")
    ola.press("Folkehelse")
    ola.press("Hopp over")
    ola.press("Ja")
    assert "KI-1" in ola.text
    ola.press("Støtt KI-1")
    assert "støtter nå KI-1" in ola.text
    ola.say("/mine")
    assert "KI-1" in ola.text and "(støtter)" in ola.text
    assert count(runtime, Idea) == 1


def test_mine_is_new_queues_triage(runtime: Runtime, kari: ChatPerson, ola: ChatPerson) -> None:
    from storage.models import DuplicateCandidate

    kari.submit()
    ref = ola.submit(title="Flere benker rundt Semsvannet",
                     description="Vi trenger flere benker langs turstien ved Semsvannet.")
    assert ref == "KI-2"
    with Session(runtime.db) as s:
        pairs = s.exec(select(DuplicateCandidate)).all()
    assert [(p.idea_a_id, p.idea_b_id) for p in pairs] == [(1, 2)]


def test_bad_input_never_crashes(kari: ChatPerson, runtime: Runtime) -> None:
    for text in ["", "   ", "😀😀", "x" * 10_000, "a\u200bb\u0000c", "/ukjent", "/status KI-999999",
                 "/status banana", "/avbryt", "/tilbake"]:
        assert kari.say(text), text
    assert kari.press_payload("3:area:1")
    assert "gått ut" in kari.text
    kari.say("/ny")
    kari.say("x" * 10_000)
    assert "for lang" in kari.text
    assert count(runtime, Idea) == 0


def test_erase_anonymises_and_keeps_ideas(runtime: Runtime, kari: ChatPerson,
                                          ola: ChatPerson) -> None:
    ref = kari.submit()
    ola.say(f"/status {ref}")
    kari.say("/slett")
    kari.press("Ja, slett")
    assert "slettet" in kari.text
    with Session(runtime.db) as s:
        person = s.exec(select(Person).where(Person.display_name == "kari")).first()
        assert person is None
        idea = s.get(Idea, 1)
        assert idea is not None and idea.title
        erased = s.get(Person, idea.author_id)
        assert erased is not None and erased.erased_at is not None
        assert erased.channel_user_id.startswith("erased-")
        assert s.exec(select(ProcessedUpdate).where(ProcessedUpdate.user_id == "kari")).all() == []


def test_data_export_holds_my_idea(kari: ChatPerson) -> None:
    import json

    kari.submit()
    kari.say("/data")
    document = next(r.document for r in kari.replies if r.document)
    data = json.loads(document.content)
    assert data["ideas"][0]["ref"] == "KI-1"
    assert data["person"]["channel_user_id"] == "kari"


def test_an_update_redelivered_after_erasure_is_not_handled_again(runtime: Runtime) -> None:
    engine = runtime.engine
    engine.handle(Incoming("telegram", "7", text="/ny", update_id="900"))
    engine.handle(Incoming("telegram", "7", text="/slett", update_id="901"))
    erase = engine.handle(Incoming("telegram", "7", text="", update_id="902",
                                   choice=next(c.payload for r in engine.handle(Incoming(
                                       "telegram", "7", text="/slett", update_id="903"))
                                       for c in r.choices if "slett" in c.label.casefold())))
    assert "slettet" in erase[0].text
    assert engine.handle(Incoming("telegram", "7", text="/ny", update_id="900")) == []
    with Session(runtime.db) as s:
        assert s.exec(select(ProcessedUpdate).where(ProcessedUpdate.user_id == "7")).all() == []
        assert s.exec(select(DialogState).where(DialogState.user_id == "7")).all() == []


def _state_row(rt: Runtime, user: str) -> DialogState:
    with Session(rt.db) as s:
        row = s.get(DialogState, ("terminal", user))
        assert row is not None
        return row


def test_dialog_state_times_follow_the_flow(runtime: Runtime) -> None:
    """`started_at` marks when the current flow began; a reminder the scheduler marked during
    the flow is kept by later turns of it, and cleared only when a flow starts again."""
    kari = ChatPerson(runtime.engine, "kari")
    kari.say("/ny")
    started = _state_row(runtime, "kari").started_at
    assert started is not None and _state_row(runtime, "kari").flow == "submit"
    with Session(runtime.db) as s:  # what the reminder rule does (bot/followups/rules.py)
        row = s.get(DialogState, ("terminal", "kari"))
        assert row is not None
        row.reminded_at = started
        s.add(row)
        s.commit()
    kari.say(IDEA["title"])
    row = _state_row(runtime, "kari")
    assert (row.step, row.started_at, row.reminded_at) == ("description", started, started)
    kari.say("/avbryt")
    row = _state_row(runtime, "kari")
    assert row.flow is None and row.started_at is None
    kari.say("/ny")
    row = _state_row(runtime, "kari")
    assert row.flow == "submit" and row.started_at is not None and row.reminded_at is None


def test_status_shows_the_note_of_the_latest_move_only(kari: ChatPerson, runtime: Runtime) -> None:
    """A note explains one decision: a later move without a note must not keep showing it."""
    ref = kari.submit()
    for target, note in ((Status.USEFUL, "Vi ser på dette i budsjettet"), (Status.REALISED, None)):
        with transaction(runtime.db) as session:
            idea = book.get_idea(session, ref)
            runtime.ideas.set_status(session, idea, target, by="test", note=note)
    kari.say(f"/status {ref}")
    assert "Nyttiggjort" in kari.text and "budsjettet" not in kari.text
    with Session(runtime.db) as session:
        history = book.history(session, 1)
    assert [h.note for h in history] == [None, "Vi ser på dette i budsjettet", None]
