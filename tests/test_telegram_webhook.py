"""Webhook mode: the `/telegram/webhook` route on the one HTTP server of `kominn run` (uvicorn +
Starlette, as `bot.app` builds it), Telegram's secret header checked before anything else."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from adapters.telegram.service import TelegramService
from bot.app import App, starlette_app
from bot.config import ConfigError
from bot.conversation.engine import Engine
from bot.runtime import Runtime
from dialogs.types import Incoming
from storage.models import ProcessedUpdate, utcnow
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram import KARI, Citizen, telegram_runtime

SECRET = "kominn-webhook_secret-1"


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(runtime: Runtime, fake: FakeTelegramAPI,
                  **options: Any) -> AsyncIterator[str]:
    """uvicorn serving bot.app's Starlette app with the Telegram service in webhook mode
    (`options`: more TelegramService keywords)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rt = telegram_runtime(runtime, fake, telegram_webhook_url=f"{url}/telegram/webhook",
                          telegram_webhook_secret=SECRET)
    app = App(rt)
    app.add(TelegramService(rt.settings, rt.engine, chat_rate=0, **options))
    server = uvicorn.Server(uvicorn.Config(starlette_app(app), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        await fake.await_condition(lambda: server.started or task.done(), timeout=10)
        assert server.started
        yield url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def handled_updates(runtime: Runtime) -> list[ProcessedUpdate]:
    with Session(runtime.db) as session:
        return list(session.exec(select(ProcessedUpdate)).all())


async def test_webhook_refuses_a_wrong_secret_and_serves_the_right_one(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    async with serving(runtime, fake) as url:
        assert fake.webhook["url"] == f"{url}/telegram/webhook"
        assert fake.webhook["secret_token"] == SECRET
        update = fake.build_user_message(KARI, "/hjelp")

        assert await fake.apost_to_webhook(update, secret="wrong-secret") == 403
        assert await fake.apost_to_webhook(update, secret=None) == 403
        assert handled_updates(runtime) == []  # refused before the engine saw anything
        assert fake.sent(KARI) == []

        assert await fake.apost_to_webhook(update) == 200
        # 200 came only after the update was handled: it is recorded already.
        assert [row.update_id for row in handled_updates(runtime)] == [str(update["update_id"])]
        await fake.await_messages(KARI, 1)
        # Telegram retrying the same update gets 200 and no second answer.
        assert await fake.apost_to_webhook(update["update_id"]) == 200

        # Telegram's own deliveries (the fake POSTs queued updates) through a dialog.
        kari = Citizen(fake, KARI)
        await kari.say("/ny", expect="tittel")
        await kari.say("Lys i lysløypa hele vinteren", expect="beskriv")
        await kari.say("Lysløypa er mørk etter klokka ni, og mange går på ski etter jobb.",
                       expect="satsningsområde")
        await kari.press("Folkehelse", expect="sted")

        async with httpx.AsyncClient() as client:
            health = (await client.get(f"{url}/healthz")).json()
            assert "telegram" in health["services"]
            assert (await client.get(f"{url}/telegram/webhook")).status_code == 405
            bad = await client.post(f"{url}/telegram/webhook", content=b"not json",
                                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            assert bad.status_code == 400
    assert len(fake.texts(KARI)) == 5
    assert fake.call_count("getUpdates") == 0
    assert all(d["status"] == 200 for d in fake.webhook_deliveries)


def test_webhook_needs_a_valid_secret(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    for secret, words in ((None, "required"), ("has spaces", "characters")):
        rt = telegram_runtime(runtime, fake, telegram_webhook_url="https://example.org/hook",
                              telegram_webhook_secret=secret)
        with pytest.raises(ConfigError, match=f"TELEGRAM_WEBHOOK_SECRET.*{words}"):
            TelegramService(rt.settings, rt.engine)


async def test_answers_in_another_workers_hands_are_sent_only_once_its_lease_ran_out(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    """Several webhook workers share the database. An answer stored a moment ago and not yet
    confirmed may be on its way from a live worker (its sending lease runs): a starting worker
    sends at once only those whose lease ran out, and the others when their lease runs out
    (the sweep), if still unconfirmed — a redelivery meanwhile sends nothing."""
    short = runtime.settings.model_copy(update={"send_lease_seconds": 1.5})

    def stored(engine: Engine, update_id: str, text: str) -> None:
        engine.handle(Incoming("telegram", str(KARI), text=text, chat_id=str(KARI),
                               update_id=update_id))

    crashed = Engine(runtime.db, short, runtime.index, features=runtime.features,
                     clock=lambda: utcnow() - timedelta(minutes=5))
    live = Engine(runtime.db, short, runtime.index, features=runtime.features)
    stored(crashed, "700001", "/hjelp")  # its worker died five minutes ago
    stored(live, "700002", "/status KI-9")  # another worker: still sending it
    stored(live, "700003", "/status KI-8")  # … and this one it will confirm
    async with serving(runtime, fake, sweep_seconds=0.3):
        first = await fake.await_messages(KARI, 1)
        assert len(fake.sent(KARI)) == 1 and "/mine" in first[0]["plain_text"]  # /hjelp
        redelivered = {**fake.build_user_message(KARI, "/status KI-9"), "update_id": 700002}
        assert await fake.apost_to_webhook(redelivered) == 200  # a redelivery: nothing sent
        live.mark_delivered("telegram", "700003")
        late = await fake.await_messages(KARI, 2, timeout=10)
        assert "KI-9" in late[1]["plain_text"]
        await asyncio.sleep(0.8)
    assert len(fake.sent(KARI)) == 2
    assert runtime.engine.undelivered("telegram") == []
