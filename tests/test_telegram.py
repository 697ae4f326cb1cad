"""The Telegram adapter end to end: the real python-telegram-bot Application (its HTTP layer,
rate limiter and update processing) polling the fake Bot API, over the real engine and
database. Nothing of PTB is mocked; time is real but short."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlmodel import Session, select

from adapters.telegram import service as telegram
from adapters.telegram.render import chunks, keyboard
from adapters.telegram.service import TelegramService
from bot.app import App
from bot.channels import DeliveryError
from bot.conversation.engine import Engine
from bot.runtime import Runtime
from dialogs.types import Choice, Document, Incoming, Reply
from storage.models import Idea, Person, ProcessedUpdate
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.helpers import IDEA, ChatPerson

KARI = 4201
OLA = 4202


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def telegram_runtime(runtime: Runtime, fake: FakeTelegramAPI, **settings: Any) -> Runtime:
    """The test runtime, pointed at the fake Bot API."""
    changed = runtime.settings.model_copy(update={
        "telegram_bot_token": fake.token, "telegram_api_base_url": fake.base_url, **settings})
    return dataclasses.replace(runtime, settings=changed)


@asynccontextmanager
async def running(runtime: Runtime, fake: FakeTelegramAPI, *, engine: Engine | None = None,
                  paced: bool = False, **settings: Any) -> AsyncIterator[TelegramService]:
    """The service as `kominn run` builds it. Test citizens answer within milliseconds, so
    the per-chat pacing (meant for people) is off unless `paced`."""
    rt = telegram_runtime(runtime, fake, **settings)
    if engine is not None:
        rt = dataclasses.replace(rt, engine=engine)
    app = App(rt)
    service = telegram.service(app.runtime) if paced else TelegramService(rt.settings, rt.engine,
                                                                  chat_rate=0)
    app.add(service)
    assert app.senders["telegram"] is service.sender
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class Citizen:
    """A Telegram user typing and tapping in the fake's client; waits for the bot's answer."""

    def __init__(self, fake: FakeTelegramAPI, user_id: int, language: str | None = "nb",
                 name: str = "Kari") -> None:
        self.fake = fake
        self.id = user_id
        self.language = language
        self.name = name

    async def _answered(self, send: Any, expect: str | None, count: int) -> list[dict]:
        after = self.fake.checkpoint()
        send()

        def done() -> list[dict] | None:
            sent = self.fake.sent(self.id, after=after)
            texts = [(m["plain_text"] or m.get("caption") or "").casefold() for m in sent]
            if expect is None:
                return sent if len(sent) >= count else None
            return sent if any(expect.casefold() in text for text in texts) else None

        return await self.fake.await_condition(done, timeout=10)

    async def say(self, text: str, expect: str | None = None, count: int = 1) -> list[dict]:
        return await self._answered(
            lambda: self.fake.user_message(self.id, text, language_code=self.language,
                                           first_name=self.name), expect, count)

    async def press(self, label: str, expect: str | None = None, count: int = 1) -> list[dict]:
        return await self._answered(lambda: self.fake.press_button(self.id, label), expect,
                                    count)

    async def locate(self, lat: float, lon: float, expect: str | None = None) -> list[dict]:
        return await self._answered(lambda: self.fake.share_location(self.id, lat, lon),
                                    expect, 1)

    def labels(self) -> list[str]:
        return [label for label, _ in self.fake.buttons(self.id)]

    async def submit(self, title: str = IDEA["title"], place: str | None = "Semsvannet",
                     *, similar: bool = False) -> str:
        """A whole submission by typing and tapping; returns the receipt's KI-n."""
        await self.say("/ny", expect="tittel")
        await self.say(title, expect="beskriv")
        await self.say(IDEA["description"], expect="satsningsområde")
        await self.press(IDEA["area"], expect="sted")
        if place is None:
            await self.press("Hopp over", expect="kontakte")
        else:
            await self.say(place, expect="kontakte")
        if similar:
            await self.press("Ja", expect="ligner")
            await self.press("Min idé er ny", expect="se over")
        else:
            await self.press("Ja", expect="se over")
        sent = await self.press("Send inn", expect="registrert som")
        receipt = next(m["plain_text"] for m in sent if "KI-" in (m["plain_text"] or ""))
        return next(w.rstrip(".,") for w in receipt.split() if w.startswith("KI-"))


async def test_whole_submission_with_buttons(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        await kari.say("/start", expect="personvern", count=2)
        assert "Ny idé" in kari.labels()
        ref = await kari.submit(title="Benker <og> bord & lys ved Semsvannet")
    # Text went out as escaped HTML and arrived as the person typed it.
    summary = next(m for m in fake.sent(KARI) if "Se over" in (m["plain_text"] or ""))
    assert summary["parse_mode"] == "HTML"
    assert "Benker <og> bord & lys" in summary["plain_text"]
    assert "&lt;og&gt;" in summary["text"]
    # Every press was answered and its keyboard taken off the pressed message.
    assert len(fake.callback_answers) == 3
    assert len([e for e in fake.edits if e["method"] == "editMessageReplyMarkup"]) == 3
    assert "Send inn" not in kari.labels()
    with Session(runtime.db) as session:
        idea = session.exec(select(Idea)).one()
        person = session.exec(select(Person)).one()
        assert (idea.title, idea.channel, idea.place) == (
            "Benker <og> bord & lys ved Semsvannet", "telegram", "Semsvannet")
        assert (person.channel_user_id, person.chat_id, person.display_name) == (
            str(KARI), str(KARI), "Kari")
        assert f"KI-{idea.id}" == ref
        # Every reply was confirmed as delivered.
        assert session.exec(select(ProcessedUpdate).where(
            ProcessedUpdate.delivered_at.is_(None))).all() == []  # type: ignore[union-attr]


async def test_status_and_mine(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        ref = await kari.submit(place=None)
        sent = await kari.say(f"/status {ref.lower()}", expect=ref)
        assert "Flere benker ved Semsvannet" in sent[-1]["plain_text"]
        assert "Nytt" in sent[-1]["plain_text"]
        sent = await kari.say("/status", expect="dine idéer")
        assert ref in sent[-1]["plain_text"]
        await kari.say("/status KI-999", expect="KI-999")


async def test_similar_idea_offer_and_support(runtime: Runtime, fake: FakeTelegramAPI,
                                              ola: ChatPerson) -> None:
    existing = ola.submit()  # the same idea, already submitted in the terminal
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        await kari.say("/ny", expect="tittel")
        await kari.say(IDEA["title"], expect="beskriv")
        await kari.say(IDEA["description"], expect="satsningsområde")
        await kari.press(IDEA["area"], expect="sted")
        await kari.press("Hopp over", expect="kontakte")
        sent = await kari.press("Ja", expect="ligner")
        assert existing in sent[-1]["plain_text"]
        assert f"Støtt {existing}" in kari.labels()
        await kari.press(f"Støtt {existing}", expect=f"støtter nå {existing}")
        await kari.say("/mine", expect="(støtter)")
    with Session(runtime.db) as session:
        assert len(session.exec(select(Idea)).all()) == 1


async def test_redelivered_update_is_answered_once(runtime: Runtime,
                                                   fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        after = fake.checkpoint()
        first = fake.user_message(KARI, "/hjelp")
        await fake.await_messages(KARI, 1, after=after)
        fake.redeliver(first)  # Telegram sends the same update_id again
        await kari.say("/status KI-77", expect="KI-77")  # queued behind the redelivery
        await fake.await_condition(lambda: not fake.pending_updates())
    texts = fake.texts(KARI, after=after)
    assert len([t for t in texts if "/ny" in t and "KI-77" not in t]) == 1, texts
    assert len(texts) == 2


async def test_flood_control_429_is_waited_out(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        fake.fail_next("sendMessage", 1, status=429, retry_after=0.2)
        await kari.say("/hjelp", expect="/ny")
    assert [f["status"] for f in fake.failures] == [429]
    assert len(fake.sent(KARI)) == 1
    assert fake.call_count("sendMessage") == 2


async def test_flood_limits_are_respected(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    """Telegram's limits enforced by the fake (a burst of 3 per chat, then 1/s): the bot paces
    itself, so nothing is refused and everything arrives in order."""
    fake.enforce_limits(global_per_second=30, per_chat_per_second=1, per_chat_burst=3)
    kari, ola = Citizen(fake, KARI), Citizen(fake, OLA, name="Ola")
    async with running(runtime, fake, paced=True):
        await asyncio.gather(kari.say("/start", count=2), ola.say("/start", count=2))
        await kari.say("/start", count=2)  # the 4th message in this chat waits its turn
    assert fake.flood_429s == 0
    assert len(fake.sent(KARI)) == 4 and len(fake.sent(OLA)) == 2


async def test_location_at_the_place_step(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        await kari.say("/ny", expect="tittel")
        await kari.say(IDEA["title"], expect="beskriv")
        await kari.say(IDEA["description"], expect="satsningsområde")
        await kari.press(IDEA["area"], expect="sted")
        await kari.locate(59.8416, 10.4431, expect="kontakte")
        sent = await kari.press("Ja", expect="se over")
        assert "delt posisjon" in sent[-1]["plain_text"]
        await kari.press("Send inn", expect="registrert som")
    with Session(runtime.db) as session:
        idea = session.exec(select(Idea)).one()
        assert (idea.latitude, idea.longitude) == (59.8416, 10.4431)


async def test_data_export_and_erasure(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        ref = await kari.submit()
        sent = await kari.say("/data", expect="lagret om deg")
        document = next(m for m in sent if m["method"] == "sendDocument")
        assert document["filename"] == "kominn-data.json"
        assert document["caption"] == "Her er alt vi har lagret om deg."
        exported = json.loads(document["content"])
        assert ref in json.dumps(exported, ensure_ascii=False)
        assert "Kari" in json.dumps(exported, ensure_ascii=False)

        await kari.say("/slett", expect="slette dataene")
        await kari.press("Ja, slett dataene mine", expect="slettet")
    with Session(runtime.db) as session:
        person = session.exec(select(Person)).one()
        assert person.erased_at is not None
        assert (person.display_name, person.chat_id) == (None, None)
        assert person.channel_user_id != str(KARI)
        assert session.exec(select(Idea)).one().title == IDEA["title"]  # the idea stays
        assert session.exec(select(ProcessedUpdate).where(
            ProcessedUpdate.user_id == str(KARI))).all() == []


async def test_old_buttons_expire_politely(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        await kari.say("/ny", expect="tittel")
        await kari.say(IDEA["title"], expect="beskriv")
        await kari.say(IDEA["description"], expect="satsningsområde")
        area_message = fake.last_message(KARI)
        assert area_message is not None
        payload = fake.buttons(KARI)[0][1]
        await kari.press(IDEA["area"], expect="sted")
        # A tap on the old (now keyboard-less) message, as a slow client might still send it.
        after = fake.checkpoint()
        fake.press(KARI, payload, message_id=area_message["message_id"], strict=False)
        sent = await fake.await_messages(KARI, 2, after=after)
        assert "gått ut" in sent[0]["plain_text"]  # then the open question again
        assert "sted" in sent[1]["plain_text"] and "Hopp over" in kari.labels()
    assert len(fake.callback_answers) == 2


async def test_language_from_telegram(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    anne = Citizen(fake, OLA, language="en-GB", name="Anne")
    nils = Citizen(fake, KARI, language="nn", name="Nils")
    async with running(runtime, fake):
        await anne.say("/ny", expect="title")
        await nils.say("/ny", expect="kva er ideen din")
        await anne.say("/sprak", expect="choose language")
        await anne.press("Bokmål", expect="bokmål")
        await anne.say("/ny", expect="Hva er idéen din")


async def test_group_chats_are_refused_once(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    group = -100777
    kari = Citizen(fake, KARI)
    added = {
        "my_chat_member": {
            "chat": {"id": group, "type": "supergroup", "title": "Vellaget"},
            "from": {"id": KARI, "is_bot": False, "first_name": "Kari", "language_code": "nb"},
            "date": 1_700_000_000,
            "old_chat_member": {"user": fake.bot_user, "status": "left"},
            "new_chat_member": {"user": fake.bot_user, "status": "member"},
        }
    }
    async with running(runtime, fake):
        update_id = fake.enqueue(added)
        await fake.await_messages(group, 1)
        fake.redeliver(update_id)
        fake.user_message(KARI, "/ny", chat_type="supergroup", chat_id=group)
        fake.user_message(KARI, "hei alle sammen", chat_type="supergroup", chat_id=group)
        await kari.say("/hjelp", expect="/ny")  # private chats still work, after the above
        await fake.await_condition(lambda: not fake.pending_updates())
    notices = fake.sent(group)
    assert len(notices) == 1
    assert "private samtaler" in notices[0]["plain_text"]
    buttons = notices[0]["reply_markup"]["inline_keyboard"]
    assert buttons[0][0]["url"] == "https://t.me/kominn_test_bot"
    with Session(runtime.db) as session:
        assert session.exec(select(ProcessedUpdate)).all()[0].user_id == str(KARI)
        assert len(session.exec(select(ProcessedUpdate)).all()) == 1


async def test_command_menu_in_bokmal_and_english(runtime: Runtime,
                                                  fake: FakeTelegramAPI) -> None:
    async with running(runtime, fake):
        pass
    names = ["ny", "status", "mine", "avbryt", "hjelp", "sprak", "slett", "data"]
    nb = fake.commands_for("default", "nb")
    en = fake.commands_for("default", "en")
    assert [c["command"] for c in nb][:8] == names
    assert [c["command"] for c in en][:8] == names
    assert fake.commands_for("default", "") == nb
    assert nb[0]["description"] == "Send inn en ny idé"
    assert en[0]["description"] == "Submit a new idea"
    assert fake.commands_for("default", "nn")[0]["description"] == "Send inn ein ny idé"


async def test_replies_stored_before_a_crash_are_sent_at_start(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    # The engine handled update 555 and stored its replies, then the process died unsent.
    runtime.engine.handle(Incoming(channel="telegram", user_id=str(KARI), chat_id=str(KARI),
                                   update_id="555", text="/hjelp"))
    async with running(runtime, fake):
        await fake.await_messages(KARI, 1)
        # Telegram, never told, sends update 555 again: it is not answered a second time.
        redelivered = fake.build_user_message(KARI, "/hjelp")
        redelivered["update_id"] = 555
        fake.enqueue(redelivered)
        await Citizen(fake, KARI).say("/status KI-5", expect="KI-5")
    assert len(fake.sent(KARI)) == 2
    assert runtime.engine.undelivered("telegram") == []


class GatedEngine(Engine):
    """The real engine, held at the door until the test opens it: shows what is confirmed to
    Telegram while an update is being handled."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.db, engine.settings, engine.index, features=engine.features)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def handle(self, incoming: Incoming) -> list[Reply]:
        self.entered.set()
        self.gate.wait(10)
        return super().handle(incoming)


async def test_polling_confirms_an_update_only_after_handling_it(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    engine = GatedEngine(runtime.engine)
    async with running(runtime, fake, engine=engine):
        update_id = fake.user_message(KARI, "/hjelp")
        await asyncio.to_thread(engine.entered.wait, 10)
        await asyncio.sleep(0.2)  # time for a (wrong) next getUpdates to go out
        offsets = [int(r["params"].get("offset") or 0) for r in fake.requests
                   if r["method"] == "getUpdates"]
        assert max(offsets) <= update_id  # nothing confirmed yet: a crash now loses nothing
        assert [u["update_id"] for u in fake.pending_updates()] == [update_id]
        engine.gate.set()
        await fake.await_messages(KARI, 1)
        await fake.await_condition(lambda: not fake.pending_updates())


async def test_one_chat_in_order_while_others_go_on(runtime: Runtime,
                                                    fake: FakeTelegramAPI) -> None:
    async with running(runtime, fake):
        after = fake.checkpoint()
        for n in range(1, 7):
            fake.user_message(KARI, f"/status KI-{n}")
            fake.user_message(OLA, f"/status KI-{n + 10}", first_name="Ola")
        await fake.await_messages(KARI, 6, after=after)
        await fake.await_messages(OLA, 6, after=after)
    def refs(chat: int) -> list[str]:
        return [re.findall(r"KI-\d+", text)[0] for text in fake.texts(chat)]

    assert refs(KARI) == [f"KI-{n}" for n in range(1, 7)]
    assert refs(OLA) == [f"KI-{n + 10}" for n in range(1, 7)]


async def test_sender_delivers_notices(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    async with running(runtime, fake) as service:
        reply = Reply("Status for <KI-1> er endret", (Choice("Se status", "g:status:1"),),
                      links=(("Les mer", "https://example.org/ki-1"),))
        await service.sender.send(str(KARI), [reply])
        message = fake.sent(KARI)[-1]
        assert message["plain_text"] == "Status for <KI-1> er endret"
        assert message["reply_markup"]["inline_keyboard"] == [
            [{"text": "Se status", "callback_data": "g:status:1"}],
            [{"text": "Les mer", "url": "https://example.org/ki-1"}],
        ]
        fake.block_user(OLA)
        with pytest.raises(DeliveryError) as blocked:
            await service.sender.send(str(OLA), [Reply("hei")])
        assert blocked.value.permanent
        fake.fail_next("sendMessage", 5, status=502)
        with pytest.raises(DeliveryError) as down:
            await service.sender.send(str(KARI), [Reply("hei")])
        assert not down.value.permanent
    with pytest.raises(DeliveryError):
        await service.sender.send(str(KARI), [Reply("etter stopp")])


def test_rendering() -> None:
    menu = keyboard(Reply("?", (Choice("Ja", "1:y"), Choice("Nei", "1:n"))))
    assert menu is not None and [len(row) for row in menu.inline_keyboard] == [2]
    areas = keyboard(Reply("?", tuple(Choice(f"Satsningsområde {i}", f"1:a{i}")
                                      for i in range(3))))
    assert areas is not None and [len(row) for row in areas.inline_keyboard] == [1, 1, 1]
    assert keyboard(Reply("bare tekst")) is None
    long = ("ord " * 1500).strip()
    parts = chunks(long)
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == long
    assert chunks("kort") == ["kort"]


async def test_long_reply_and_document_caption(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    async with running(runtime, fake) as service:
        text = "\n".join(f"Linje {i} med <tegn> & mer" for i in range(400))
        await service.send_reply(KARI, Reply(text, (Choice("Ok", "g:help"),)))
        sent = fake.sent(KARI)
        assert len(sent) >= 2 and sent[-1]["reply_markup"] is not None
        assert sent[0]["reply_markup"] is None
        assert "\n".join(m["plain_text"] for m in sent) == text
        await service.send_reply(KARI, Reply("x" * 2000, document=Document("a.json", b"{}")))
        assert fake.documents[-1]["caption"] is None
        assert fake.sent(KARI)[-2]["plain_text"] == "x" * 2000


class BrokenEngine(Engine):
    """The real engine, except that one message makes it fail (as a bug or a dead database
    would): the person gets an apology, and the next message is answered as usual."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.db, engine.settings, engine.index, features=engine.features)

    def handle(self, incoming: Incoming) -> list[Reply]:
        if incoming.text == "boom":
            raise RuntimeError("step failed")
        return super().handle(incoming)


async def test_a_failing_update_gets_an_apology(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    kari = Citizen(fake, KARI)
    async with running(runtime, fake, engine=BrokenEngine(runtime.engine)):
        await kari.say("boom", expect="noe gikk galt")
        await kari.say("/hjelp", expect="/ny")
        await fake.await_condition(lambda: not fake.pending_updates())


async def test_telegram_unreachable_at_start(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    """Telegram down when `kominn run` starts: the service starts anyway (the rest of the
    process is not held up) and connects once Telegram answers."""
    fake.fail_next("getMe", 1, status=502)
    kari = Citizen(fake, KARI)
    async with running(runtime, fake):
        assert fake.call_count("getMe", status=502) == 1
        await kari.say("/hjelp", expect="/ny")
    assert fake.commands_for("default", "nb")
