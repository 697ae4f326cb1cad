"""The Slack app's test bench, shared by tests/test_slack*.py: the real Bolt AsyncApp behind
KomInn's Starlette route, driven with correctly signed requests (tests/fakes/slack_signing.py)
and answering through a local fake Slack Web API and fake response_urls
(tests/fakes/slack_api.py). Nothing of Bolt is mocked; the database is the test's own (SQLite,
or PostgreSQL with KOMINN_TEST_DATABASE_URL).

A test module imports the helpers by name and takes the fixtures it uses by assignment::

    from tests import slack_fixtures as bench
    fake, rt, service, http, slack_settings = (bench.fake, bench.rt, bench.service, bench.http,
                                               bench.slack_settings)

(an import by name would be "redefined" by every test parameter of that name, for ruff;
``pytest_plugins`` would register them for the whole session). A module that needs other
settings defines its own ``slack_settings`` fixture instead; one test can parametrize it.
The helpers' asserts carry their own messages: pytest rewrites only test modules' asserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from adapters.slack import service as adapter
from adapters.telegram import links
from bot.conversation.engine import Engine
from bot.features import assemble, campaigns
from bot.ideas import book
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import utcnow
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import block_action_body, signed_headers, slash_command_body
from tests.helpers import ChatPerson

SECRET = "kominn-slack-test-secret"
TOKEN = "xoxb-kominn-test"
MOD, GROUP_MOD, EMPLOYEE = "UMOD1", "UGRPMOD", "UEMP1"
GROUP = "SMODS"
HOSTILE = "<!channel> Hei <@U0BOSS> se <https://evil.example|her> & <!here>"
QUESTION = "Hvordan kan flere barn sykle trygt til skolen?"


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def slack_settings() -> dict[str, Any]:
    """Settings a module or test adds to the Slack ones below (override or parametrize)."""
    return {}


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(usergroups={GROUP: [GROUP_MOD]}) as server:
        yield server


@pytest.fixture
def rt(runtime: Runtime, fake: FakeSlackAPI, slack_settings: dict[str, Any]) -> Runtime:
    """The test runtime with Slack configured against the fake."""
    settings = runtime.settings.model_copy(update={
        "slack_bot_token": TOKEN, "slack_signing_secret": SECRET, "slack_api_url": fake.url,
        "slack_moderators": [MOD], "slack_moderator_group": GROUP,
        "slack_ideas_channel": "CIDEAS", **slack_settings})
    engine = Engine(runtime.db, settings, runtime.index, features=assemble(settings))
    return dataclasses.replace(runtime, settings=settings, engine=engine,
                               campaign_links=links.campaign_links)


@pytest.fixture
def kari(rt: Runtime) -> ChatPerson:
    """A citizen of the Slack-configured runtime (new ideas go to the ideas channel)."""
    return ChatPerson(rt.engine, "kari")


@pytest.fixture
def ola(rt: Runtime) -> ChatPerson:
    return ChatPerson(rt.engine, "ola")


@pytest.fixture
def service(rt: Runtime) -> adapter.SlackService:
    return adapter.service(rt)


@pytest.fixture
async def http(service: adapter.SlackService) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(service) as client:
        yield client


@contextlib.asynccontextmanager
async def serve(service: adapter.SlackService) -> AsyncIterator[httpx.AsyncClient]:
    """Bolt in-process over ASGI; background listeners are drained before the loop closes."""
    asgi = Starlette(routes=service.routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                 base_url="http://testserver") as client:
        yield client
        await drain()


# --- requests ---------------------------------------------------------------------------------

async def drain() -> None:
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=5)


async def post(http: httpx.AsyncClient, body: str, **kwargs: Any) -> httpx.Response:
    return await http.post(adapter.PATH, content=body,
                           headers=signed_headers(body, SECRET, **kwargs))


async def command(http: httpx.AsyncClient, fake: FakeSlackAPI, text: str, user: str = EMPLOYEE,
                  name: str = "cmd", n: int = 1, trigger: str = "T1") -> list[dict[str, Any]]:
    """Run `/kominn text`; the empty ack comes first, the answers arrive at the response_url."""
    before = len(fake.responses(name))
    response = await post(http, slash_command_body(text=text, user_id=user, trigger_id=trigger,
                                                   response_url=fake.response_url(name)))
    assert response.status_code == 200 and response.text == "", \
        f"/kominn {text}: not an empty ack: {response.status_code} {response.text!r}"
    answers = await fake.await_responses(name, n=before + n)
    return answers[before:]


async def press(http: httpx.AsyncClient, fake: FakeSlackAPI, button: dict[str, Any],
                user: str = MOD, name: str = "btn", n: int = 1) -> list[dict[str, Any]]:
    before = len(fake.responses(name))
    body = block_action_body(button["action_id"], button["value"], user_id=user,
                             response_url=fake.response_url(name))
    response = await post(http, body)
    assert response.status_code == 200, f"{button['action_id']}: {response.status_code}"
    answers = await fake.await_responses(name, n=before + n)
    return answers[before:]


# --- reading what Slack would show ------------------------------------------------------------

def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Buttons of a message (or view) by their label."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks", []):
        for element in block.get("elements", []) + [block.get("accessory") or {}]:
            if element.get("type") == "button":
                found.setdefault(element["text"]["text"], element)
    return found


def texts(obj: Any) -> list[str]:
    """Every mrkdwn text in a message or view (what Slack would parse for mentions/links),
    plus the message's top-level notification text."""
    found: list[str] = []
    if isinstance(obj, dict):
        if obj.get("type") == "mrkdwn":
            found.append(obj["text"])
        for key, value in obj.items():
            if key == "text" and isinstance(value, str) and obj.get("type") != "plain_text":
                found.append(value)
            else:
                found += texts(value)
    elif isinstance(obj, list):
        for item in obj:
            found += texts(item)
    return found


def shown(message: dict[str, Any]) -> str:
    return "\n".join(texts(message))


# --- data -------------------------------------------------------------------------------------

def make_idea(rt: Runtime, title: str, description: str = "", *, area: str = "Folkehelse",
              status: str = "new", channel: str = "telegram") -> str:
    description = description or f"{title} – en grundig beskrivelse av idéen."
    with transaction(rt.db) as session:
        idea = rt.ideas.create_idea(session, book.NewIdea(
            title=title, description=description, channel=channel, focus_area=area), by="test")
        if status != "new":
            idea.status = status
            session.add(idea)
    rt.index.update(idea)
    return book.ref_of(idea)


def new_idea_values(title: str, description: str, area: str = "3", place: str = "",
                    follow: bool = True) -> dict[str, Any]:
    """The state of a submitted `/kominn ny` modal."""
    option = {"text": {"type": "plain_text", "text": "x"}, "value": "yes"}
    return {
        "title": {"value": title}, "description": {"value": description},
        "area": {"value": {"type": "static_select", "selected_option": {"value": area}}},
        "place": {"value": place},
        "follow_up": {"value": {"type": "checkboxes",
                                "selected_options": [option] if follow else []}},
    }


def today(rt: Runtime) -> date:
    return utcnow().astimezone(rt.settings.zone).date()


def make_campaign(rt: Runtime, title: str = "Sykkelbyen Asker", *, opens_in: timedelta =
                  timedelta(0), closes_in: timedelta = timedelta(days=10),
                  question: str = QUESTION) -> int:
    now = utcnow()
    with transaction(rt.db) as session:
        campaign = campaigns.create(session, title=title, question=question,
                                    opens_at=now + opens_in, closes_at=now + closes_in,
                                    focus_area="Areal og transport", by="test")
        return campaign.id or 0


def campaign_values(title: str, question: str, *, area: str | None = "0",
                    opens: date | None = None, closes: date | None = None,
                    text: str = "") -> dict[str, Any]:
    """The state of a submitted competition modal."""
    return {
        "title": {"value": title}, "question": {"value": question}, "text": {"value": text},
        "area": {"value": {"type": "static_select", "selected_option":
                           {"value": area} if area is not None else None}},
        "opens": {"value": {"type": "datepicker",
                            "selected_date": opens.isoformat() if opens else None}},
        "closes": {"value": {"type": "datepicker",
                             "selected_date": closes.isoformat() if closes else None}},
    }
