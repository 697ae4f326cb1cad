"""Abuse limits and hostile text, end to end through Telegram (the real PTB stack polling the
fake Bot API, which validates HTML like Telegram): a sixth idea in a day is refused politely
and nothing is stored; the 31st message in a minute is refused once and the rest ignored;
markup, control and zero-width characters in what a citizen types reach nobody as markup —
not the citizen's own summary and receipt, not the status answer, not a scheduled notice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlmodel import Session, func, select

from bot.conversation.engine import Engine
from bot.followups.dispatcher import dispatch
from bot.i18n import translator
from bot.ideas import book
from bot.ideas.book import Status
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import DialogState, Idea, Outbox, ProcessedUpdate
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_faults import Burst
from tests.test_telegram import Citizen, running

T = translator("nb")
SPAMMER = 840_000
AUTHOR = 841_000
FLOOD = 842_000


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def count_ideas(runtime: Runtime) -> int:
    with Session(runtime.db) as session:
        return session.exec(select(func.count()).select_from(Idea)).one()


async def test_sixth_idea_in_a_day_is_refused_and_nothing_stored(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    assert runtime.settings.max_ideas_per_day == 5
    async with running(runtime, fake):
        for n in range(5):
            burst = Burst(fake, citizens=1, first=SPAMMER)
            walker = burst.walkers[SPAMMER]
            walker.title = f"Idé nummer {n}: {('benker', 'lys', 'sti', 'bro', 'park')[n]}"
            burst.start()
            await asyncio.to_thread(burst.run_until, lambda b=burst: b.finished == 1, 30)
        assert count_ideas(runtime) == 5
        citizen = Citizen(fake, SPAMMER)
        [refusal] = await citizen.say("/ny", expect="grensen")
        assert refusal["plain_text"] == T("limit.ideas_per_day", n=5)
        # Typing a title anyway starts nothing: the bot is not in a submission.
        await citizen.say("Enda en idé om benker", expect="/ny")
    assert count_ideas(runtime) == 5
    with Session(runtime.db) as session:
        state = session.get(DialogState, ("telegram", str(SPAMMER)))
    assert state is not None and state.flow is None


async def test_the_31st_message_in_a_minute_is_refused_once(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    limited = runtime.settings.model_copy(update={"max_messages_per_minute": 30})
    engine = Engine(runtime.db, limited, runtime.index, features=runtime.features)
    async with running(runtime, fake, engine=engine):
        ids = [fake.user_message(FLOOD, "hei") for _ in range(30)]
        ids += [fake.user_message(FLOOD, "/ny") for _ in range(5)]
        await fake.await_condition(lambda: not fake.pending_updates(), 20)
        await fake.await_condition(lambda: len(fake.sent(FLOOD)) >= 31, 20)
        await asyncio.sleep(0.5)  # more answers would show up now
    texts = fake.texts(FLOOD)
    refusal = T("limit.messages_per_minute")
    assert len(texts) == 31
    assert texts[30] == refusal and texts.count(refusal) == 1
    assert all("/ny" in text for text in texts[:30])  # the idle help, 30 times
    # Nothing of the refused messages was acted on: no submission started.
    with Session(runtime.db) as session:
        state = session.get(DialogState, ("telegram", str(FLOOD)))
        refused = session.exec(select(ProcessedUpdate).where(
            ProcessedUpdate.user_id == f"flood:{FLOOD}")).all()
    assert state is not None and state.flow is None
    assert sorted(int(r.update_id) for r in refused) == ids[30:]


HOSTILE = "Fri <b>parkering & lading</b> <i ved\u200b sk\u00adolen\u0007"
STORED = "Fri <b>parkering & lading</b> <i ved skolen"


async def test_markup_and_invisible_characters_reach_nobody(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    citizen = Citizen(fake, AUTHOR)
    async with running(runtime, fake) as service:
        await citizen.say("/ny", expect="tittel")
        await citizen.say(HOSTILE, expect="beskriv")
        await citizen.say("Gratis <a href='x'>lading</a> & parkering </b> for alle som bor der.",
                          expect="satsningsområde")
        await citizen.press("Folkehelse", expect="sted")
        await citizen.say("Skolen <script>", expect="kontakte")
        await citizen.press("Ja", expect="se over")
        await citizen.press("Send inn", expect="registrert som")
        await citizen.say("/status KI-1", expect="KI-1")
        with transaction(runtime.db) as session:
            idea = book.get_idea(session, 1)
            runtime.ideas.set_status(session, idea, Status.USEFUL, by="test", note="<b>Ja</b> &")
        result = await dispatch(runtime.db, runtime.settings, runtime.features.renderers,
                                {"telegram": service.sender})
        assert result.sent == 1
    with Session(runtime.db) as session:
        idea = session.exec(select(Idea)).one()
        [notice] = session.exec(select(Outbox)).all()
    assert idea.title == STORED
    assert idea.place == "Skolen <script>"
    assert notice.state == "sent"
    # Telegram (the fake) accepted every message: valid HTML, nothing refused.
    assert [f for f in fake.failures if f["method"] == "sendMessage"] == []
    shown = [m for m in fake.sent(AUTHOR) if STORED in (m["plain_text"] or "")]
    assert len(shown) >= 3  # the summary, the status answer, the notice
    for message in shown:
        assert message["parse_mode"] == "HTML"
        assert "&lt;b&gt;parkering &amp; lading&lt;/b&gt; &lt;i ved skolen" in message["text"]
        assert "<b>" not in message["text"] and "\u200b" not in message["text"]
    last = fake.sent(AUTHOR)[-1]
    assert "<b>Ja</b> &" in last["plain_text"] and "&lt;b&gt;Ja" in last["text"]


async def test_lengths_are_enforced_after_invisible_characters_are_gone(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    citizen = Citizen(fake, AUTHOR + 1)
    async with running(runtime, fake):
        await citizen.say("/ny", expect="tittel")
        await citizen.say("x" * 121, expect="for lang (121 tegn)")
        # 300 zero-width spaces around a short title: counted after they are stripped.
        padded = "\u200b" * 150 + "Benker ved stien" + "\u2060" * 150
        await citizen.say(padded, expect="beskriv")
        await citizen.say("Lang tekst om benker. " * 140, expect="for lang")
        await citizen.say("Det trengs benker langs stien, for de eldre.", expect="satsningsområde")
        await citizen.press("Folkehelse", expect="sted")
        await citizen.say("S" * 201, expect="høyst 200")
        await citizen.say("/avbryt", expect=None)
    with Session(runtime.db) as session:
        state = session.get(DialogState, ("telegram", str(AUTHOR + 1)))
    assert count_ideas(runtime) == 0
    assert state is not None and state.flow is None
