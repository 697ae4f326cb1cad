"""One Slack sender for `kominn run` and `kominn jobs run-due`: a notice delivered by either
looks the same — buttons included — and its buttons are ones the Slack app answers.

`kominn jobs run-due` runs as the real console script against the fake Slack Web API
(SLACK_API_URL); `kominn run`'s side is the Slack service's own sender behind the dispatcher.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import httpx
from sqlmodel import Session, select

from adapters.slack import blocks as kit
from adapters.slack import service as adapter
from adapters.slack.sender import SlackSender, open_sender
from bot.channels import STAFF_CHANNEL
from bot.features import ideas_channel
from bot.followups.dispatcher import dispatch
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import Outbox
from storage.outbox import enqueue
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.helpers import ChatPerson
from tests.slack_fixtures import EMPLOYEE, TOKEN, buttons, press, shown
from tests.test_cli import KOMINN

fake, rt, service, http, slack_settings = (bench.fake, bench.rt, bench.service, bench.http,
                                           bench.slack_settings)
kari = bench.kari  # a citizen of the Slack-configured runtime

IDEAS, MIRROR = "CIDEAS", "CMIRROR"
OTHER = "UEMP2"  # another employee


def run_due(rt: Runtime, fake: FakeSlackAPI) -> subprocess.CompletedProcess[str]:
    """`kominn jobs run-due` in its own process, Slack configured by the environment only."""
    env = {**os.environ, "DATABASE_URL": rt.settings.database_url, "SLACK_BOT_TOKEN": TOKEN,
           "SLACK_API_URL": fake.url, "KOMINN_QUIET_HOURS": "off"}
    for key in ("TELEGRAM_BOT_TOKEN", "SLACK_APP_TOKEN", "KOMINN_MODERATOR_CHANNEL"):
        env.pop(key, None)
    return subprocess.run([KOMINN, "jobs", "run-due", "--format", "json"], capture_output=True,
                          text=True, timeout=120, env=env)


def mirror(rt: Runtime, address: str, to: str) -> None:
    """Queue every notice sent to `address` once more, the same payload, for `to`."""
    with transaction(rt.db) as session:
        for row in session.exec(select(Outbox).where(Outbox.address == address)).all():
            enqueue(session, kind=row.kind, dedupe_key=f"mirror:{row.id}", channel=row.channel,
                    address=to, payload=json.loads(row.payload or "{}"))


def posted(fake: FakeSlackAPI, channel: str) -> list[dict[str, Any]]:
    """What chat.postMessage was asked to post to `channel`, without the channel itself."""
    calls = [c["args"] for c in fake.calls("chat.postMessage") if c["args"]["channel"] == channel]
    return [{k: v for k, v in args.items() if k not in ("channel", "token")} for args in calls]


async def test_run_due_and_kominn_run_send_the_same_notice_buttons_included(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        service: adapter.SlackService, kari: ChatPerson) -> None:
    """A new idea's post to SLACK_IDEAS_CHANNEL (with its "Vis" button) and a reminder to an
    employee (with the dialog engine's buttons), delivered by `kominn jobs run-due`, are what
    `kominn run` delivers; a press on either button is answered by the Slack app."""
    ref = kari.submit(title="Benker & bord ved <vannet>")  # queued for the ideas channel
    with transaction(rt.db) as session:
        enqueue(session, kind="dialog_reminder", dedupe_key="reminder:emp", channel=STAFF_CHANNEL,
                address=EMPLOYEE, payload={"flow": "support"})
    result = await asyncio.to_thread(run_due, rt, fake)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 2

    mirror(rt, IDEAS, MIRROR)
    mirror(rt, EMPLOYEE, OTHER)
    delivered = await dispatch(rt.db, rt.settings, rt.features.renderers,
                               {STAFF_CHANNEL: service.sender})
    assert delivered.sent == 2
    assert posted(fake, IDEAS) == posted(fake, MIRROR) != []
    assert posted(fake, EMPLOYEE) == posted(fake, OTHER) != []

    (post,) = fake.messages(IDEAS)
    show = buttons(post)["Vis"]
    assert (show["action_id"], show["value"]) == (f"{kit.REPLY}0", f"status:{ref}")
    (view,) = await press(http, fake, show, user=EMPLOYEE)
    assert view["blocks"][0]["text"]["text"].startswith(f"{ref} Benker")

    (dm,) = fake.messages(f"D{EMPLOYEE}")
    assert [b["action_id"] for b in buttons(dm).values()] == [f"{kit.REPLY}0", f"{kit.REPLY}1"]
    (resumed,) = await press(http, fake, buttons(dm)["Fortsett"], user=EMPLOYEE, name="dm")
    assert "ingenting å fortsette med" in shown(resumed)
    with Session(rt.db) as session:
        assert {r.state for r in session.exec(select(Outbox))} == {"sent"}


async def test_open_sender_builds_the_services_sender_class(
        fake: FakeSlackAPI, rt: Runtime, service: adapter.SlackService) -> None:
    async with open_sender(rt.settings) as sender:
        assert type(sender) is type(service.sender) is SlackSender
        assert sender.channel == service.sender.channel == ideas_channel.CHANNEL == "slack"
        await sender.send("C1", [])
    assert fake.calls("chat.postMessage") == []
