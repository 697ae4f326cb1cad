"""Property test: no sequence of texts, commands and button presses crashes the engine or
leaves an idea without title and description."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot.runtime import Runtime
from storage.models import Idea
from tests.helpers import ChatPerson

ACTIONS = st.one_of(
    st.sampled_from(["/ny", "/avbryt", "/tilbake", "/status", "/status KI-1", "/mine", "/hjelp",
                     "/sprak", "/slett", "/data", "/start", "1", "2", "Ja", "Send inn"]),
    st.text(max_size=200),
    st.builds(lambda n: f"press:{n}", st.integers(0, 6)),
    st.builds(lambda t: f"stale:{t}", st.integers(0, 50)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(ACTIONS, max_size=25))
def test_random_sequences_never_crash(runtime: Runtime, actions: list[str]) -> None:
    person = ChatPerson(runtime.engine, "prop")
    for action in actions:
        if action.startswith("press:"):
            buttons = [c for r in person.replies for c in r.choices]
            if buttons:
                person.press_payload(buttons[int(action[6:]) % len(buttons)].payload)
        elif action.startswith("stale:"):
            person.press_payload(f"{action[6:]}:sum:send")
        else:
            person.say(action)
    with Session(runtime.db) as s:
        for idea in s.exec(select(Idea)):
            assert len(idea.title) >= 5 and len(idea.description) >= 20
