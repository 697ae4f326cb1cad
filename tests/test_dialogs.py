"""Dialog steps as pure functions, with in-memory ports: no database, no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.i18n import translator
from dialogs import benefit, campaigns, citizen, collab, resume
from dialogs.core import (
    AddSupport,
    Context,
    Conversation,
    ErasePerson,
    IdeaView,
    PersonView,
    SetConsent,
    SetLanguage,
    SimilarIdea,
    State,
    SubmitIdea,
)
from dialogs.lifecycle import Status
from dialogs.types import Incoming, Location

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@dataclass
class MemoryPorts:
    ideas: dict[int, IdeaView] = field(default_factory=dict)
    similar_found: list[SimilarIdea] = field(default_factory=list)
    submitted_today: int = 0
    focus: list[str] = field(default_factory=lambda: ["Areal og transport", "Folkehelse",
                                                      "Annet"])
    submitted: list[Any] = field(default_factory=list)

    def idea(self, number: int) -> IdeaView | None:
        return self.ideas.get(number)

    def my_ideas(self) -> list[tuple[IdeaView, str]]:
        return [(i, "author") for i in self.ideas.values()]

    def similar(self, title: str, description: str, limit: int = 3) -> list[SimilarIdea]:
        return self.similar_found[:limit]

    def focus_areas(self) -> list[str]:
        return self.focus

    def asks_email(self) -> bool:
        return False

    def email_address(self, text: str) -> str | None:
        return text if "@" in text else None

    def personal_data(self) -> dict[str, Any]:
        return {"person": {"channel": "terminal"}}

    def ideas_submitted_today(self) -> int:
        return self.submitted_today

    def campaign(self, campaign_id: int) -> None:
        return None

    def open_campaigns(self) -> list:
        return []

    def ideas_in_progress(self, limit: int = 10) -> list:
        return []

    def translator(self, language: str):  # type: ignore[no-untyped-def]
        return translator(language)


# Every dialog the citizen conversation has (the engine gets the same from bot.features).
CONVERSATION = Conversation.of(citizen.PART, resume.PART, benefit.PART, campaigns.PART,
                               collab.PART)


def ctx(ports: MemoryPorts | None = None, language: str = "nb") -> Context:
    return Context(PersonView(1, language, None, None), translator(language),
                   ports or MemoryPorts(), NOW, CONVERSATION)


def say(state: State, text: str, c: Context):  # type: ignore[no-untyped-def]
    return citizen.step(state, Incoming("terminal", "u", text=text), c)


def press(state: State, outcome, label: str, c: Context):  # type: ignore[no-untyped-def]
    for reply in outcome.replies:
        for choice in reply.choices:
            if label in choice.label:
                return citizen.step(state, Incoming("terminal", "u", choice=choice.payload), c)
    raise AssertionError(label)


def test_whole_submission_produces_one_submit_effect() -> None:
    c = ctx()
    out = say(State(), "/ny", c)
    assert out.state.step == "title"
    out = say(out.state, "Sykkelvei til Asker sentrum", c)
    assert out.state.step == "description"
    out = say(out.state, "Det mangler en trygg sykkelvei fra Vollen til sentrum.", c)
    assert out.state.step == "area"
    out = press(out.state, out, "Areal og transport", c)
    assert out.state.step == "place"
    out = say(out.state, "Vollen", c)
    out = press(out.state, out, "Ja", c)
    assert out.effects == (SetConsent(follow_up=True),)
    assert out.state.step == "summary"
    assert "Sykkelvei til Asker sentrum" in out.replies[0].text
    out = press(out.state, out, "Send inn", c)
    assert out.state.idle
    (effect,) = out.effects
    assert isinstance(effect, SubmitIdea)
    assert effect.title == "Sykkelvei til Asker sentrum"
    assert effect.focus_area == "Areal og transport"
    assert effect.place == "Vollen"


def test_title_validation_answers_and_stays() -> None:
    c = ctx()
    state = say(State(), "/ny", c).state
    for text, key_word in [("abc", "for kort"), ("x" * 121, "for lang"), ("😀😀😀😀😀😀", "ord"),
                           ("   ", "for kort"), ("", "tekst")]:  # typed spaces are text
        out = say(state, text, c)
        assert out.state.step == "title"
        assert key_word in out.replies[0].text
        assert not out.effects


def test_description_limits() -> None:
    c = ctx()
    state = say(say(State(), "/ny", c).state, "En god tittel", c).state
    assert "for kort" in say(state, "for kort", c).replies[0].text
    assert "for lang" in say(state, "a" * 3001, c).replies[0].text
    assert say(state, "a " * 15, c).state.step == "area"


def test_typed_area_number_and_label_work() -> None:
    c = ctx()
    state = say(say(say(State(), "/ny", c).state, "En god tittel", c).state,
                "En beskrivelse som er lang nok.", c).state
    assert say(state, "2", c).state.data["area"] == "Folkehelse"
    assert say(state, "annet", c).state.data["area"] == "Annet"
    assert say(state, "blah", c).state.step == "area"


def test_location_at_place_step() -> None:
    c = ctx()
    state = State(flow="submit", step="place", data={"title": "t", "description": "d"}, token=5)
    out = citizen.step(state, Incoming("telegram", "u", location=Location(59.83, 10.43)), c)
    assert out.state.step == "consent"
    assert out.state.data["latitude"] == 59.83


def test_stale_button_is_expired_and_changes_nothing() -> None:
    c = ctx()
    first = say(State(), "/ny", c)
    state = say(first.state, "En god tittel", c).state
    out = citizen.step(state, Incoming("terminal", "u", choice="0:area:1"), c)
    assert out.state == state
    assert "gått ut" in out.replies[0].text


def test_back_goes_one_step_back() -> None:
    c = ctx()
    state = say(say(State(), "/ny", c).state, "En god tittel", c).state
    out = say(state, "/tilbake", c)
    assert out.state.step == "title"
    out = say(out.state, "/tilbake", c)
    assert "første steg" in out.replies[0].text


def test_similar_offer_support_instead() -> None:
    ports = MemoryPorts(similar_found=[SimilarIdea(7, "KI-7", "Benker ved vannet",
                                                   Status.NEW, 88.0)])
    c = ctx(ports)
    state = State(flow="submit", step="consent",
                  data={"title": "Benker", "description": "d" * 20, "area": "Annet"}, token=3)
    out = citizen.step(state, Incoming("terminal", "u", choice="3:consent:no"), c)
    assert out.state.step == "similar"
    assert "KI-7" in out.replies[0].text
    out = press(out.state, out, "Støtt KI-7", c)
    assert out.effects == (AddSupport(7),)
    assert out.state.idle


def test_daily_limit_refuses_new_submission() -> None:
    c = ctx(MemoryPorts(submitted_today=5))
    out = say(State(), "/ny", c)
    assert out.state.idle
    assert "grensen" in out.replies[0].text


def test_language_and_erase_effects() -> None:
    c = ctx()
    out = say(State(), "/sprak", c)
    out = press(out.state, out, "Nynorsk", c)
    assert out.effects == (SetLanguage("nn"),)
    assert "nynorsk" in out.replies[0].text
    out = say(State(), "/slett", c)
    out = press(out.state, out, "Ja, slett", c)
    assert out.effects == (ErasePerson(),)


def test_english_texts() -> None:
    out = say(State(), "/new", ctx(language="en"))
    assert "What is your idea" in out.replies[0].text


def test_unknown_command_mid_dialog_repeats_question() -> None:
    c = ctx()
    state = say(State(), "/ny", c).state
    out = say(state, "/banan", c)
    assert "/banan" in out.replies[0].text
    assert out.replies[1].text.startswith("Hva er idéen din")
    assert out.state == state
