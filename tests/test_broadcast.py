"""Competition invitations as a broadcast: 1,000 consenting citizens through the real
python-telegram-bot stack against the fake Bot API with Telegram's flood limits enforced
(30 messages/s overall, 1/s per chat). Each person gets exactly one invitation, nothing goes
out during quiet hours, and no second of the run carries more than 30 messages.

The big run is inherently ~35 s (1,000 messages at under 30/s); the other tests use a few
dozen people. Nothing here asserts a timing: the per-second counts are what Telegram checks.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
import time as pytime
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlmodel import Session, col, select

from adapters.telegram import pacing
from adapters.telegram import service as telegram
from bot.app import App
from bot.config import Settings, load_settings
from bot.features import campaigns
from bot.followups.dispatcher import dispatch
from bot.followups.rules import create_due
from bot.followups.scheduler import SchedulerService
from bot.runtime import Runtime, open_runtime
from dialogs.payload import global_choice
from dialogs.types import Reply
from storage.db import transaction
from storage.models import Outbox, Person, utcnow
from storage.outbox import enqueue
from tests.fakes.telegram_api import FakeTelegramAPI

OSLO = ZoneInfo("Europe/Oslo")
CEILING = 30
QUESTION = "Hvordan kan vi få flere til å sykle til skolen?"
FIRST_CHAT = 7_000_000


def last_evening() -> datetime:
    """The latest 22:30 in Oslo before now: the competition opens in the quiet hours, and is
    still open on the real clock, which the dialog engine goes by when the button is pressed
    (the scan and the dispatcher get explicit moments)."""
    local = datetime.now(OSLO)
    evening = datetime.combine(local.date(), time(22, 30), tzinfo=OSLO)
    if evening > local:
        evening = datetime.combine(local.date() - timedelta(days=1), time(22, 30), tzinfo=OSLO)
    return evening.astimezone(UTC)


def next_morning(evening: datetime, hour: int, minute: int = 0) -> datetime:
    day = evening.astimezone(OSLO).date() + timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=OSLO).astimezone(UTC)


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        server.enforce_limits(global_per_second=CEILING, per_chat_per_second=1)
        yield server


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The fake Bot API runs in this interpreter: a long garbage collection (100 ms and more
    with a big heap) stalls its thread too, and a request already on the wire is then counted
    in the next second, which Telegram's own clock would not do. The sender keeps its pace
    through a stall by itself (see the pacer tests); the collector waits for the test's end."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def bot_settings(fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch,
                 quiet_hours: str) -> Settings:
    """The test database's settings, as `kominn run` would read them from the environment."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake.token)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("TELEGRAM_MAX_MESSAGES_PER_SECOND", str(CEILING))
    monkeypatch.setenv("KOMINN_QUIET_HOURS", quiet_hours)
    monkeypatch.setenv("KOMINN_TIMEZONE", "Europe/Oslo")
    for key in ("TELEGRAM_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return load_settings(_env_file=None)


@asynccontextmanager
async def telegram_running(settings: Settings) -> AsyncIterator[App]:
    """The Telegram service exactly as `kominn run` builds it (polling the fake, paced)."""
    runtime = open_runtime(settings)
    app = App(runtime)
    service = telegram.service(app.runtime)
    app.add(service)
    await service.start()
    try:
        yield app
    finally:
        await service.stop()
        runtime.db.dispose()


def seed(settings: Settings, n: int, opens_at: datetime) -> tuple[int, list[int]]:
    """N consenting Telegram citizens (one bulk insert), some who did not consent or were
    erased, and a competition; returns its id and the consenting chat ids."""
    chats = [FIRST_CHAT + i for i in range(n)]
    people = [{"channel": "telegram", "channel_user_id": str(chat), "chat_id": str(chat),
               "language": "nb", "invite_consent": True, "created_at": utcnow()}
              for chat in chats]
    others = [(False, None), (None, None), (True, utcnow())]  # said no, never asked, erased
    people += [{"channel": "telegram", "channel_user_id": str(chat), "chat_id": str(chat),
                "invite_consent": consent, "erased_at": erased, "created_at": utcnow()}
               for chat, (consent, erased) in enumerate(others, start=FIRST_CHAT - 10)]
    runtime = open_runtime(settings)
    try:
        with transaction(runtime.db) as session:
            session.execute(insert(Person), people)
            campaign = campaigns.create(session, title="Sykkelbyen Asker", question=QUESTION,
                                        opens_at=opens_at, closes_at=opens_at + timedelta(days=14),
                                        focus_area="Areal og transport", by="test")
            return campaign.id or 0, chats
    finally:
        runtime.db.dispose()


def invites(app: App) -> list[Outbox]:
    with Session(app.runtime.db) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == "campaign_invite")))


def assert_one_invitation_each(fake: FakeTelegramAPI, chats: Sequence[int],
                               campaign_id: int) -> None:
    sent = fake.sent()
    assert Counter(m["chat_id"] for m in sent) == Counter(chats)  # once each, nobody else
    for message in sent:
        assert "Sykkelbyen Asker" in message["plain_text"]
        assert ("Delta", global_choice("", f"camp:{campaign_id}").payload) in [
            (b["text"], b.get("callback_data"))
            for row in message["reply_markup"]["inline_keyboard"] for b in row]


def assert_within_ceiling(fake: FakeTelegramAPI) -> None:
    per_second = fake.messages_per_second()
    assert per_second and max(per_second.values()) <= CEILING, per_second


@pytest.mark.usefixtures("settings", "no_collector")
async def test_thousand_invitations_once_each_paced_and_not_at_night(
        fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = bot_settings(fake, monkeypatch, quiet_hours="21-08")
    opens = last_evening()
    number, chats = seed(settings, 1000, opens)
    async with telegram_running(settings) as app:
        db, senders = app.runtime.db, app.senders
        rules, renderers = app.runtime.features.rules, app.runtime.features.renderers

        # It opens at 22:30: the scan queues one invitation per consenting person, but the
        # dispatcher holds them for the morning.
        evening = opens + timedelta(minutes=1)
        created = await asyncio.to_thread(create_due, db, settings, rules, evening)
        assert created["campaign_invitations"] == 1000
        night = await dispatch(db, settings, renderers, senders, evening)
        assert (night.sent, night.postponed) == (0, 1000)
        again = await asyncio.to_thread(create_due, db, settings, rules,
                                        evening + timedelta(hours=1))
        assert again["campaign_invitations"] == 0
        assert (await dispatch(db, settings, renderers, senders,
                               next_morning(opens, 7, 59))).sent == 0
        assert fake.sent() == []
        assert {row.due_at for row in invites(app)} == {next_morning(opens, 8)}

        # 08:00: everything goes, paced under Telegram's ceiling.
        morning = await dispatch(db, settings, renderers, senders, next_morning(opens, 8))
        assert (morning.sent, morning.retried, morning.failed) == (1000, 0, 0)
        assert fake.flood_429s == 0
        assert_within_ceiling(fake)
        assert_one_invitation_each(fake, chats, number)
        assert {(row.state, row.attempts) for row in invites(app)} == {("sent", 1)}

        # The button starts a submission bound to the competition: its question comes.
        first = chats[0]
        mark = fake.checkpoint()
        fake.press_button(first, "Delta")
        [question] = await fake.await_messages(first, 1, timeout=10, after=mark)
        assert QUESTION in question["plain_text"]

        # Later scans and runs send nobody a second invitation.
        later = next_morning(opens, 9)
        assert (await asyncio.to_thread(create_due, db, settings, rules, later))[
            "campaign_invitations"] == 0
        assert (await dispatch(db, settings, renderers, senders, later)).sent == 0
    assert len(fake.sent()) == 1001 and fake.flood_429s == 0


@pytest.mark.usefixtures("settings", "no_collector")
async def test_broadcast_under_the_scheduler_with_a_second_worker_and_flood_refusals(
        fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `kominn run` does it (the scheduler's scan and dispatcher on the real clock), while
    a second dispatcher competes for the rows and Telegram refuses a few sends with 429:
    refusals are waited out and retried, nobody is missed or invited twice."""
    settings = bot_settings(fake, monkeypatch, quiet_hours="off")
    number, chats = seed(settings, 90, utcnow() - timedelta(minutes=1))
    fake.fail_next("sendMessage", 3, status=429, retry_after=0.2)
    async with telegram_running(settings) as app:
        scheduler = SchedulerService(app.runtime, app.senders, dispatch_seconds=0.2,
                                     scan_seconds=0.5)
        await scheduler.start()
        try:
            await fake.await_condition(lambda: len(invites(app)) == 90, timeout=20)
            await dispatch(app.runtime.db, settings, app.runtime.features.renderers, app.senders)
            await fake.await_condition(
                lambda: all(row.state == "sent" for row in invites(app)), timeout=30)
        finally:
            await scheduler.stop()
    assert [f["status"] for f in fake.failures if f["method"] == "sendMessage"] == [429] * 3
    assert fake.flood_429s == 0
    assert_within_ceiling(fake)
    assert_one_invitation_each(fake, chats, number)


# --- the dispatcher's lanes, without Telegram ---------------------------------------------------

class SlowSender:
    """Records what it is given and how many sends overlapped; each send takes a little while."""

    channel = "terminal"

    def __init__(self, concurrency: int | None) -> None:
        if concurrency is not None:
            self.concurrency = concurrency
        self.order: list[str] = []
        self.busy = self.most = 0

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        self.busy += 1
        self.most = max(self.most, self.busy)
        try:
            await asyncio.sleep(random.uniform(0.001, 0.01))
            number = re.search(r"Tittel-(\d+)", replies[0].text)
            self.order.append(f"{address}:{number.group(1) if number else '?'}")
        finally:
            self.busy -= 1


def queue_notices(runtime: Runtime) -> list[str]:
    """40 notices to 36 addresses, one address with five (in order 0..4)."""
    expected = []
    with transaction(runtime.db) as session:
        for i in range(40):
            address = "same" if i % 8 == 0 else f"chat{i}"
            expected.append(address)
            enqueue(session, kind="campaign_invite", dedupe_key=f"n{i}", channel="terminal",
                    address=address, due_at=utcnow() - timedelta(seconds=1),
                    payload={"id": 1, "title": f"Tittel-{i}", "question": "Hva?",
                             "closes": "-"})
    return expected


@pytest.mark.parametrize(("concurrency", "most"), [(4, 4), (None, 1)])
async def test_sends_overlap_up_to_the_sender_and_keep_order_per_address(
        runtime: Runtime, concurrency: int | None, most: int) -> None:
    addresses = queue_notices(runtime)
    sender = SlowSender(concurrency)
    result = await dispatch(runtime.db, runtime.settings, runtime.features.renderers,
                            {"terminal": sender})
    assert result.sent == 40 and sender.most == most
    assert sorted(entry.split(":")[0] for entry in sender.order) == sorted(addresses)
    same = [int(entry.split(":")[1]) for entry in sender.order if entry.startswith("same:")]
    assert same == [0, 8, 16, 24, 32]
    with Session(runtime.db) as session:
        states = session.exec(select(Outbox.state).where(col(Outbox.kind) == "campaign_invite"))
        assert set(states) == {"sent"}


# --- the Telegram pacer, without a network ------------------------------------------------------

async def paced(pacer: pacing.Pacer, count: int, stall: float = 0.0) -> list[float]:
    """`count` messages through the pacer; after a few, the event loop stalls for `stall`
    seconds (as in a long garbage collection). Returns when each went out (loop time)."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def one() -> None:
        async with pacer:
            stamps.append(loop.time())

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.sleep(0.25)
    pytime.sleep(stall)  # noqa: ASYNC251 - the stall is the point
    await asyncio.gather(*tasks)
    return stamps


async def test_pacer_never_lets_more_than_the_cap_out_within_a_second_even_after_a_stall(
        ) -> None:
    stamps = await paced(pacing.Pacer(rate=4.85, cap=5), 12, stall=0.8)
    # Turns the stall let pass are not all taken at once: any 6 messages span over a second.
    assert min(b - a for a, b in zip(stamps, stamps[5:], strict=False)) >= 1.0


async def test_pacer_holds_everything_for_a_flood_wait() -> None:
    """A 429 moves every turn behind Telegram's retry_after, also turns already promised."""
    pacer = pacing.Pacer(rate=20, cap=20)
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def one() -> None:
        async with pacer:
            stamps.append(loop.time())

    tasks = [asyncio.create_task(one()) for _ in range(5)]
    await asyncio.sleep(0)  # the first goes at once, the others have their turns promised
    paused = loop.time()
    pacer.pause(0.3)
    await asyncio.gather(*tasks)
    assert len(stamps) == 5 and stamps[0] < paused
    assert min(stamps[1:]) >= paused + 0.3
