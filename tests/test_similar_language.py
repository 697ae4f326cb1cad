"""The similar-ideas step reads a citizen's text in the language the person chose: a short
text with no telling word is analysed as English for a person who chose English."""

from __future__ import annotations

import pytest

from bot.config import Settings, load_settings
from bot.dedup.detector import DuplicateFinder
from bot.runtime import open_runtime
from tests.helpers import ChatPerson

ENGLISH_IDEA = ("Cycling path to Heggedal",
                "A safe cycling path from Heggedal station to the school would help the children.")
# No function word tells the language: only the prior does ("cycling" stems to "cycl" in English).
SHORT = ("Cycling Heggedal", "Cycling path Heggedal station")


def test_the_prior_decides_how_a_short_text_is_read() -> None:
    finder = DuplicateFinder(60, 0)
    finder.add("KI-1", *ENGLISH_IDEA)
    finder.add("KI-2", "Flere benker i parken", "Vi trenger flere benker i parken ved Vollen.")
    as_english = finder.similar(*SHORT, language="en")
    as_default = finder.similar(*SHORT)
    assert [m.ref for m in as_english][:1] == ["KI-1"]
    assert as_english[0].score >= 60 > as_default[0].score
    assert finder.similar(*SHORT, language="nb") == as_default


def offered(person: ChatPerson) -> str:
    person.say("/ny")
    person.say(SHORT[0])
    person.say(SHORT[1])
    person.press("Folkehelse")
    person.press(person.buttons()[-1])  # no place
    person.press(person.buttons()[0])  # yes to follow-ups; then the similar ideas, if any
    return person.text


def test_chat_passes_the_persons_language_to_the_detector(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # a threshold between the two readings' scores (about 45 read as bokmål, 84 as English)
    monkeypatch.setenv("KOMINN_DEDUP_THRESHOLD", "65")
    runtime = open_runtime(load_settings(_env_file=None))
    # its function words tell that the indexed idea is English, whoever wrote it
    ChatPerson(runtime.engine, "kari").submit(title=ENGLISH_IDEA[0], description=ENGLISH_IDEA[1])
    english = ChatPerson(runtime.engine, "emma", language="en")
    norwegian = ChatPerson(runtime.engine, "ola", language="nb")
    assert "KI-1" in offered(english)
    assert "KI-1" not in offered(norwegian)
    runtime.db.dispose()

