"""A hypothesis state machine over the engine: random people send random texts, commands,
stale buttons; moderators move ideas; the process restarts; people erase themselves.
Invariants hold after every step."""

from __future__ import annotations

import os
from pathlib import Path
from tempfile import mkdtemp

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlmodel import Session, select

from bot.config import load_settings
from bot.runtime import open_runtime
from dialogs.lifecycle import MoveNotAllowed, Status, allowed_moves
from storage.db import make_engine, transaction
from storage.migrate import upgrade
from storage.models import DialogState, Idea, Person, ProcessedUpdate, StatusChange
from tests.conftest import PG_URL, reset_postgres
from tests.helpers import ChatPerson

PEOPLE = ["p1", "p2", "p3"]
WORDS = ["/ny", "/avbryt", "/tilbake", "/status", "/status KI-1", "/mine", "/hjelp", "/sprak",
         "/slett", "/data", "/start", "1", "2", "3", "Ja", "Nei", "Send inn", "Hopp over",
         "Lekeplass ved skolen", "Vi trenger en ny lekeplass ved Bondi skole for de minste."]


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        if PG_URL:
            reset_postgres(PG_URL)
            url = PG_URL
        else:
            url = f"sqlite:///{Path(mkdtemp()) / 'kominn.db'}"
        os.environ["DATABASE_URL"] = url
        os.environ["KOMINN_MAX_MESSAGES_PER_MINUTE"] = "100000"
        os.environ["KOMINN_MAX_IDEAS_PER_DAY"] = "1000"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        self.settings = load_settings(_env_file=None)
        self.runtime = open_runtime(self.settings)
        self.people = {name: ChatPerson(self.runtime.engine, name) for name in PEOPLE}
        self.erased: set[str] = set()

    def teardown(self) -> None:
        self.runtime.db.dispose()

    @rule(who=st.sampled_from(PEOPLE), text=st.one_of(st.sampled_from(WORDS), st.text(max_size=80)))
    def say(self, who: str, text: str) -> None:
        self.people[who].say(text)
        self.erased.discard(who)

    @rule(who=st.sampled_from(PEOPLE), index=st.integers(0, 8))
    def press(self, who: str, index: int) -> None:
        person = self.people[who]
        buttons = [c for r in person.replies for c in r.choices]
        if buttons:
            person.press_payload(buttons[index % len(buttons)].payload)
            self.erased.discard(who)

    @rule(who=st.sampled_from(PEOPLE), token=st.integers(0, 40),
          action=st.sampled_from(["sum:send", "area:0", "consent:yes", "erase:yes", "sim:new"]))
    def stale_button(self, who: str, token: int, action: str) -> None:
        self.people[who].press_payload(f"{token}:{action}")
        self.erased.discard(who)

    @rule(who=st.sampled_from(PEOPLE))
    def submit(self, who: str) -> None:
        self.people[who].say("/avbryt")
        self.people[who].submit(title=f"Idé fra {who} om lys", description="Beskrivelse " * 3)
        self.erased.discard(who)

    @rule(who=st.sampled_from(PEOPLE))
    def erase(self, who: str) -> None:
        person = self.people[who]
        person.say("/slett")
        person.press("Ja, slett")
        self.erased.add(who)

    @rule(number=st.integers(1, 6), move=st.sampled_from(list(Status)))
    def moderate(self, number: int, move: Status) -> None:
        target = move
        with transaction(self.runtime.db) as session:
            idea = session.get(Idea, number)
            if idea is None:
                return
            try:
                if target is Status.MERGED:
                    other = session.get(Idea, 1 if number != 1 else 2)
                    if other is not None:
                        self.runtime.ideas.merge(session, idea, other, by="test")
                else:
                    self.runtime.ideas.set_status(session, idea, target, by="test", note="fordi")
            except MoveNotAllowed:
                pass

    @rule()
    def restart(self) -> None:
        self.runtime.db.dispose()
        self.runtime = open_runtime(self.settings)
        for person in self.people.values():
            person.engine = self.runtime.engine

    @invariant()
    def ideas_are_whole_and_history_is_allowed(self) -> None:
        with Session(self.runtime.db) as session:
            ideas = session.exec(select(Idea)).all()
            assert len({i.id for i in ideas}) == len(ideas)
            for idea in ideas:
                assert idea.id and len(idea.title) >= 5 and len(idea.description) >= 20
                moves = session.exec(select(StatusChange).where(StatusChange.idea_id == idea.id)
                                     .order_by(StatusChange.at, StatusChange.id)).all()
                assert moves[0].from_status is None and moves[0].to_status == "new"
                for move in moves[1:]:
                    assert Status(move.to_status) in allowed_moves(Status(move.from_status))
                assert moves[-1].to_status == idea.status

    @invariant()
    def erased_people_leave_nothing_personal(self) -> None:
        with Session(self.runtime.db) as session:
            for who in self.erased:
                assert session.exec(select(Person).where(Person.channel_user_id == who)
                                    ).first() is None
                assert session.exec(select(DialogState).where(DialogState.user_id == who)
                                    ).first() is None
                assert session.exec(select(ProcessedUpdate).where(ProcessedUpdate.user_id == who)
                                    ).first() is None
            for person in session.exec(select(Person).where(Person.erased_at.is_not(None))):
                assert person.display_name is None and person.language is None
                assert person.chat_id is None


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
