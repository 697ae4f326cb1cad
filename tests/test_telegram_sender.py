"""`kominn jobs run-due` on Telegram (adapters/telegram/sender.py) renders a notice exactly as
`kominn run` does: the real console script and the real PTB Bot against the fake Bot API,
compared message by message with what `TelegramService.send_reply` sends for the same reply."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.telegram.render import MAX_TEXT, chunks
from adapters.telegram.sender import open_sender
from bot.channels import DeliveryError
from bot.config import Settings
from bot.i18n import translator
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from dialogs.types import Choice, Document, Reply
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_cli import KOMINN
from tests.test_followups import T0, add_idea, add_person, move, rows
from tests.test_telegram import running, telegram_runtime

CITIZEN = 4242  # receives from `kominn jobs run-due`
MIRROR = 4343  # receives the same replies from the `kominn run` service
TITLE = "Benk & bord ved <b>Holmenbukta</b>"
NOTE_LINE = "Vi har sett på <b>benken</b> & bordet – «se kartet» på https://example.org/kart"


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def run_due(settings: Settings, fake: FakeTelegramAPI, at: str) -> None:
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url}
    for key in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "TELEGRAM_WEBHOOK_URL"):
        env.pop(key, None)
    result = subprocess.run([KOMINN, "jobs", "run-due", "--now", at], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr


def wire(message: dict[str, Any]) -> tuple[Any, ...]:
    """What the person sees of a sent message: text as sent, parse mode, keyboard, preview."""
    params = message["params"]
    return (message["method"], message["text"], message.get("caption"), message["parse_mode"],
            message["reply_markup"], params.get("link_preview_options"))


async def test_run_due_renders_notices_like_kominn_run(
        settings: Settings, runtime: Runtime, fake: FakeTelegramAPI) -> None:
    citizen = add_person(runtime, str(CITIZEN), channel="telegram")
    number = add_idea(runtime, citizen, at=T0, title=TITLE)
    note = "\n".join(f"{i}. {NOTE_LINE}" for i in range(80))
    assert len(note) > MAX_TEXT
    move(runtime, number, Status.USEFUL, T0, note=note)
    move(runtime, number, Status.REALISED, T0 + timedelta(hours=1))
    later = T0 + timedelta(days=settings.benefit_check_days, hours=2)

    run_due(settings, fake, later.isoformat())

    notices = sorted((r for r in rows(runtime) if r.channel == "telegram"),
                     key=lambda r: (r.due_at, r.id))
    assert [(r.kind, r.state) for r in notices] == [
        ("status_changed", "sent"), ("status_changed", "sent"), ("benefit_check", "sent")]
    t = translator(settings.locale)
    replies = [reply for row in notices
               for reply in runtime.features.render(row.kind, json.loads(row.payload or "{}"), t)]
    delivered = fake.sent(CITIZEN)

    # The long status notice: escaped HTML in parts, its button only under the last part.
    long_reply = replies[0]
    parts = chunks(long_reply.text)
    assert len(parts) >= 2
    first = delivered[:len(parts)]
    assert [m["plain_text"] for m in first] == parts
    assert all(m["parse_mode"] == "HTML" for m in delivered)
    assert "&lt;b&gt;benken&lt;/b&gt; &amp; bordet" in first[0]["text"]
    assert "&lt;b&gt;Holmenbukta&lt;/b&gt;" in first[0]["text"]
    assert [m["reply_markup"] for m in first[:-1]] == [None] * (len(parts) - 1)
    assert first[-1]["reply_markup"]["inline_keyboard"] == [
        [{"text": "Se status", "callback_data": f"g:status:{number}"}]]
    assert all(m["params"]["link_preview_options"] == {"is_disabled": True} for m in delivered)
    # The benefit check: its three short answers share one row, as keyboard() lays them out.
    [benefit] = [m for m in delivered if "nyttiggjort" in m["plain_text"]]
    assert [[b["text"] for b in row] for row in benefit["reply_markup"]["inline_keyboard"]] \
        == [["Ja", "Delvis", "Nei"]]

    # And all of it exactly as the `kominn run` service sends the same replies.
    async with running(runtime, fake) as service:
        for reply in replies:
            await service.send_reply(MIRROR, reply)
    assert [wire(m) for m in delivered] == [wire(m) for m in fake.sent(MIRROR)]


async def test_open_sender_sends_documents_and_buttons_like_the_service(
        runtime: Runtime, fake: FakeTelegramAPI) -> None:
    settings = telegram_runtime(runtime, fake).settings
    replies = [
        Reply("Dine data <json> & mer", document=Document("data.json", b'{"a": 1}')),
        Reply("x & y " * 300, (Choice("Ok", "g:help"),), document=Document("b.json", b"{}")),
        Reply("Velg <én>", tuple(Choice(label, f"c:{label}") for label in "ABCD"),
              links=(("Les mer", "https://example.org/ki-1"),)),
    ]
    async with open_sender(settings) as sender:
        await sender.send(str(CITIZEN), replies)
    delivered = fake.sent(CITIZEN)
    assert delivered[0]["caption"] == "Dine data &lt;json&gt; &amp; mer"
    assert [m["method"] for m in delivered] == ["sendDocument", "sendMessage", "sendDocument",
                                                "sendMessage"]
    assert delivered[2]["caption"] is None  # too long for a caption: sent as text before it
    assert [[b["text"] for b in row] for row in delivered[3]["reply_markup"]["inline_keyboard"]] \
        == [["A", "B"], ["C", "D"], ["Les mer"]]
    async with running(runtime, fake) as service:
        for reply in replies:
            await service.send_reply(MIRROR, reply)
    assert [wire(m) for m in delivered] == [wire(m) for m in fake.sent(MIRROR)]


async def test_open_sender_maps_telegram_errors(runtime: Runtime, fake: FakeTelegramAPI) -> None:
    settings = telegram_runtime(runtime, fake).settings
    async with open_sender(settings) as sender:
        fake.block_user(CITIZEN)
        with pytest.raises(DeliveryError) as blocked:
            await sender.send(str(CITIZEN), [Reply("hei")])
        assert blocked.value.permanent
        fake.block_user(CITIZEN, blocked=False)
        fake.fail_next("sendMessage", 5, status=502)
        with pytest.raises(DeliveryError) as down:
            await sender.send(str(CITIZEN), [Reply("hei")])
        assert not down.value.permanent and down.value.retry_after is None
    assert fake.sent(CITIZEN) == []
