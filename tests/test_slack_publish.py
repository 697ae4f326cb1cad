"""Slack's "Publiser" under KOMINN_PUBLISH=after-review: a new idea waits off the public pages
until a moderator moves it or presses the button in its status view (moderators only; a
forged press is refused). Signed requests against the fake Slack Web API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from adapters.slack import blocks as kit
from adapters.slack.sender import SlackSender
from bot.features import ideas_channel
from bot.i18n import translator
from bot.ideas.book import is_public
from bot.runtime import Runtime
from storage.models import Idea, Outbox
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_fixtures import EMPLOYEE, MOD, buttons, command, make_idea, press, shown

fake, rt, service, http = bench.fake, bench.rt, bench.service, bench.http


@pytest.fixture
def slack_settings() -> dict[str, Any]:
    return {"publish": "after-review"}


def _public(rt: Runtime, number: int) -> bool:
    with Session(rt.db) as db:
        idea = db.get(Idea, number)
        assert idea is not None
        return is_public(idea, rt.settings.publish)


async def test_a_moderator_publishes_a_waiting_idea_from_its_status_view(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    assert not _public(rt, 1)
    (employee_view,) = await command(http, fake, "status KI-1", user=EMPLOYEE, name="emp")
    assert "Publiser" not in buttons(employee_view)
    (view,) = await command(http, fake, "status KI-1", user=MOD, name="view")
    publish = buttons(view)["Publiser"]
    assert publish["action_id"] == kit.PUBLISH and publish["value"] == "KI-1"
    assert publish["style"] == "primary" and "→ Nyttig" in buttons(view)

    (refused,) = await press(http, fake, publish, user=EMPLOYEE, name="forged")
    assert "bare moderatorene" in shown(refused)
    assert not _public(rt, 1)

    (done,) = await press(http, fake, publish, user=MOD, name="view")
    assert done["replace_original"] is True
    assert "KI-1 er publisert" in shown(done)
    assert "Publiser" not in buttons(done) and "→ Nyttig" in buttons(done)
    assert _public(rt, 1)


async def test_publiser_on_the_new_ideas_channel_post(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    """Where moderators first see a new idea: its post in SLACK_IDEAS_CHANNEL (delivered by
    the Slack sender) carries "Publiser" next to "Vis" while ideas wait for review."""
    make_idea(rt, "Drikkefontene på torget")
    with Session(rt.db) as db:
        (row,) = db.exec(select(Outbox).where(Outbox.kind == ideas_channel.KIND)).all()
    replies = ideas_channel.render_new_idea(json.loads(row.payload or "{}"), translator("nb"))
    await SlackSender(fake.async_client()).send("CIDEAS", replies)
    (post,) = fake.messages("CIDEAS")
    assert set(buttons(post)) == {"Vis", "Publiser"}
    (refused,) = await press(http, fake, buttons(post)["Publiser"], user=EMPLOYEE, name="emp")
    assert "bare moderatorene" in shown(refused) and not _public(rt, 1)
    (done,) = await press(http, fake, buttons(post)["Publiser"], user=MOD, name="mod")
    assert "KI-1 er publisert" in shown(done) and _public(rt, 1)
    assert done.get("replace_original") is not True  # the channel post stays


def test_no_publiser_when_ideas_are_public_at_once() -> None:
    payload = {"ref": "KI-1", "title": "Benker", "channel": "web", "review": False}
    (reply,) = ideas_channel.render_new_idea(payload, translator("nb"))
    assert [choice.label for choice in reply.choices] == ["Vis"]


async def test_a_moved_idea_needs_no_publishing(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Gatelys langs skoleveien")
    (moved,) = await command(http, fake, "set KI-1 nyttig", user=MOD, name="set")
    assert _public(rt, 1)
    (view,) = await command(http, fake, "status KI-1", user=MOD, name="view")
    assert "Publiser" not in buttons(view), shown(moved)
