"""The fake Telegram Bot API must be faithful enough that the real PTB stack runs against it.

These tests drive the unmodified python-telegram-bot ``Application``/``Bot`` over HTTP, so a
green run means the fake's wire format (envelopes, Update JSON, multipart parsing, errors) is
what PTB expects, and the fault-injection knobs produce the exceptions the adapter will see.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def build_app(
    fake: FakeTelegramAPI, *, rate_limiter: AIORateLimiter | None = None, timeout: float = 5
) -> Application:
    builder = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .read_timeout(timeout)
        .write_timeout(timeout)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    return builder.build()


@asynccontextmanager
async def polling_app(
    fake: FakeTelegramAPI,
    handlers: Sequence[BaseHandler],
    *,
    rate_limiter: AIORateLimiter | None = None,
) -> AsyncIterator[Application]:
    """Start a polling Application by hand, the way the adapter does, and always tear down."""
    app = build_app(fake, rate_limiter=rate_limiter)
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(update.effective_message.text or "")


async def test_echo_bot_gets_user_message_and_replies(fake: FakeTelegramAPI) -> None:
    async with polling_app(fake, [MessageHandler(filters.TEXT & ~filters.COMMAND, echo)]):
        update_id = fake.user_message(42, "Hei kommunen", first_name="Ola")
        [reply] = await fake.await_messages(42, 1)

    assert reply["method"] == "sendMessage"
    assert reply["text"] == "Hei kommunen"
    assert reply["chat_id"] == 42
    assert reply["message_id"] == 2  # the user's message was 1: ids are per chat
    assert fake.pending_updates() == []  # PTB confirmed the update via offset on shutdown
    assert update_id > 0
    assert fake.failures == []


async def test_command_keyboard_and_callback_query(fake: FakeTelegramAPI) -> None:
    seen: list[tuple[str | None, int | None, str | None]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        user = update.effective_user
        assert user is not None and user.language_code == "nn"
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Ja", callback_data="yes")],
                [InlineKeyboardButton("Nei", callback_data="no")],
            ]
        )
        await update.effective_message.reply_text("Vil du sende inn en idé?", reply_markup=keyboard)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        seen.append((query.data, query.message.message_id, query.from_user.first_name))
        await query.answer("Takk!")
        await query.edit_message_text(f"Du valgte {query.data}")

    handlers: list[BaseHandler] = [CommandHandler("start", start), CallbackQueryHandler(on_button)]
    async with polling_app(fake, handlers):
        fake.user_message(7, "/start", language_code="nn", first_name="Siri")
        [question] = await fake.await_messages(7, 1)
        assert fake.buttons(7) == [("Ja", "yes"), ("Nei", "no")]
        fake.press(7, "no")
        await fake.await_condition(lambda: fake.edits)

    assert seen == [("no", question["message_id"], "Siri")]
    [answer] = fake.callback_answers
    assert answer["text"] == "Takk!"
    [edit] = fake.edits
    assert edit["text"] == "Du valgte no" and edit["message_id"] == question["message_id"]
    last = fake.last_message(7)
    assert last is not None and "reply_markup" not in last  # edit without markup drops it


def test_press_refuses_buttons_that_do_not_exist(fake: FakeTelegramAPI) -> None:
    with pytest.raises(ValueError, match="no bot message"):
        fake.press(1, "yes")


async def test_429_retry_after_is_retried_by_aio_rate_limiter(fake: FakeTelegramAPI) -> None:
    fake.fail_next("sendMessage", 1, status=429, retry_after=1)
    limiter = AIORateLimiter(max_retries=3)
    async with polling_app(fake, [MessageHandler(filters.TEXT, echo)], rate_limiter=limiter):
        started = time.monotonic()
        fake.user_message(42, "still lands")
        [reply] = await fake.await_messages(42, 1, timeout=5)
        elapsed = time.monotonic() - started

    assert reply["text"] == "still lands"
    assert elapsed >= 1.0  # PTB slept retry_after (+0.1 s) before retrying
    assert [(f["method"], f["status"]) for f in fake.failures] == [("sendMessage", 429)]
    assert fake.failures[0]["response"]["parameters"] == {"retry_after": 1}
    assert fake.call_count("sendMessage") == 2


async def test_429_without_rate_limiter_raises_retry_after(fake: FakeTelegramAPI) -> None:
    fake.fail_next("sendMessage", 1, retry_after=0.2)
    async with build_app(fake).bot as bot:
        with pytest.raises(RetryAfter):
            await bot.send_message(5, "x")
        await bot.send_message(5, "y")
    assert fake.texts(5) == ["y"]


async def test_set_get_delete_my_commands(fake: FakeTelegramAPI) -> None:
    async with build_app(fake).bot as bot:
        await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("idea", "Ny idé")])
        await bot.set_my_commands(
            [BotCommand("start", "Start")],
            scope=BotCommandScopeAllPrivateChats(),
            language_code="nn",
        )
        got = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="nn")
        assert [c.command for c in got] == ["start"]
        with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand("Bad-Name", "x")])
        await bot.delete_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="nn")

    assert fake.commands_for("default") == [
        {"command": "start", "description": "Start"},
        {"command": "idea", "description": "Ny idé"},
    ]
    assert ("all_private_chats", "nn") not in fake.commands


async def test_send_document_records_bytes_and_can_be_downloaded(fake: FakeTelegramAPI) -> None:
    payload = "id;tittel\n1;Benker på Torget\n".encode()
    async with build_app(fake).bot as bot:
        message = await bot.send_document(42, payload, filename="ideas.csv", caption="Eksport")
        assert message.document is not None and message.document.file_name == "ideas.csv"
        file = await bot.get_file(message.document.file_id)
        downloaded = await file.download_as_bytearray()

    [doc] = fake.documents
    assert doc["filename"] == "ideas.csv"
    assert doc["content"] == payload
    assert doc["caption"] == "Eksport"
    assert bytes(downloaded) == payload


async def test_user_document_reaches_bot_and_is_downloadable(fake: FakeTelegramAPI) -> None:
    received: list[bytes] = []

    async def on_doc(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message and update.effective_message.document
        file = await update.effective_message.document.get_file()
        received.append(bytes(await file.download_as_bytearray()))

    async with polling_app(fake, [MessageHandler(filters.Document.ALL, on_doc)]):
        fake.user_document(3, "skisse.pdf", b"%PDF-1.4", mime_type="application/pdf")
        await fake.await_condition(lambda: received)
    assert received == [b"%PDF-1.4"]


@asynccontextmanager
async def webhook_receiver(app: Application, secret: str) -> AsyncIterator[str]:
    """A minimal custom webhook server (PTB's own needs tornado), as an adapter would write."""

    async def receive(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != secret:
            return web.Response(status=403)
        await app.update_queue.put(Update.de_json(await request.json(), app.bot))
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_post("/telegram", receive)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/telegram"
    finally:
        await runner.cleanup()


async def test_webhook_set_and_post_to_webhook_delivers(fake: FakeTelegramAPI) -> None:
    app = build_app(fake)
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app, webhook_receiver(app, "s3cret") as url:
        await app.start()
        await app.bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message"])
        assert fake.webhook["url"] == url and fake.webhook["secret_token"] == "s3cret"
        info = await app.bot.get_webhook_info()
        assert info.url == url

        with pytest.raises(Conflict, match="webhook is active"):
            await app.bot.get_updates(timeout=0)

        update = fake.build_user_message(11, "via webhook")
        assert await fake.apost_to_webhook(update) == 200
        assert await fake.apost_to_webhook(update, secret="wrong") == 403
        await fake.await_messages(11, 1)

        # While a webhook is set, queued updates are pushed to it automatically.
        fake.user_message(12, "auto")
        await fake.await_messages(12, 1)
        assert fake.pending_updates() == []

        await app.bot.delete_webhook()
        await app.stop()

    assert fake.texts(11) == ["via webhook"] and fake.texts(12) == ["auto"]
    assert fake.webhook["url"] == ""


async def test_redelivered_update_reaches_bot_again(fake: FakeTelegramAPI) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    async with polling_app(fake, [MessageHandler(filters.TEXT, record)]):
        update_id = fake.user_message(42, "en gang")
        await fake.await_condition(lambda: len(seen) == 1)
        fake.redeliver(update_id)
        await fake.await_condition(lambda: len(seen) == 2)
    assert seen == [update_id, update_id]


def test_raw_envelopes_long_poll_offsets_and_unknown_methods(fake: FakeTelegramAPI) -> None:
    api = f"{fake.base_url}{TOKEN}"
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{api}/noSuchMethod")
        assert response.status_code == 404
        assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}

        bad = client.post(f"{fake.base_url}999:wrong/getMe")
        assert bad.status_code == 401 and bad.json()["ok"] is False

        me = client.get(f"{api}/getme").json()  # method names are case-insensitive
        assert me["ok"] is True and me["result"]["is_bot"] is True

        sent = client.post(f"{api}/sendMessage", json={"chat_id": 9, "text": "123"}).json()
        assert sent["result"]["text"] == "123" and sent["result"]["from"]["id"] == 123456789

        # A long poll returns as soon as an update arrives, not at its timeout.
        threading.Timer(0.2, fake.user_message, args=(9, "wake up")).start()
        started = time.monotonic()
        polled = client.post(f"{api}/getUpdates", data={"timeout": "5"}).json()["result"]
        assert time.monotonic() - started < 2
        [update] = polled
        assert Update.de_json(update, None).effective_message.text == "wake up"  # type: ignore[union-attr]

        # Not confirmed yet: delivered again; confirmed by offset: gone.
        again = client.post(f"{api}/getUpdates", data={"timeout": "0"}).json()["result"]
        assert [u["update_id"] for u in again] == [update["update_id"]]
        offset = update["update_id"] + 1
        empty = client.post(f"{api}/getUpdates", data={"offset": offset}).json()
        assert empty == {"ok": True, "result": []}


async def test_enforce_limits_answers_429_per_chat(fake: FakeTelegramAPI) -> None:
    fake.enforce_limits(global_per_second=30, per_chat_per_second=1)
    async with build_app(fake).bot as bot:
        await bot.send_message(1, "a")
        with pytest.raises(RetryAfter):
            await bot.send_message(1, "b")
        await bot.send_message(2, "c")  # another chat has its own budget
    assert fake.flood_429s == 1
    assert sum(fake.messages_per_second().values()) == 2


async def test_fail_for_window_delay_blocked_user_and_bad_html(fake: FakeTelegramAPI) -> None:
    async with build_app(fake).bot as bot:
        fake.fail_for(0.3, status=500)
        with pytest.raises(NetworkError):
            await bot.send_message(1, "during outage")
        await asyncio.sleep(0.35)
        await bot.send_message(1, "after outage")

        fake.fail_next("sendMessage", 1, status=502)  # nginx HTML page, not JSON
        with pytest.raises(NetworkError):
            await bot.send_message(1, "bad gateway")

        fake.block_user(2)
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(2, "hei")

        with pytest.raises(BadRequest, match='(?i)unsupported start tag "br"'):
            await bot.send_message(1, "linje<br>linje", parse_mode=ParseMode.HTML)
        await bot.send_message(1, "<b>fet</b> &amp; fin", parse_mode=ParseMode.HTML)

    assert fake.texts(1) == ["after outage", "fet & fin"]

    slow = ExtBot(
        TOKEN, base_url=fake.base_url, request=HTTPXRequest(read_timeout=0.2, write_timeout=0.2)
    )
    fake.delay("sendMessage", 0.5, n=1)
    async with slow:
        with pytest.raises(TimedOut):
            await slow.send_message(3, "slow")
    # Like Telegram, the timed-out request was still executed.
    await fake.await_messages(3, 1)


def test_sync_waits_refuse_to_block_an_event_loop(fake: FakeTelegramAPI) -> None:
    async def inside_loop() -> None:
        with pytest.raises(RuntimeError, match="await_condition"):
            fake.wait_for(lambda: True)

    asyncio.run(inside_loop())
    fake.user_message(1, "hei")
    assert fake.wait_for(lambda: fake.pending_updates(), timeout=1)
