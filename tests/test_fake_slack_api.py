"""Tests for the fake Slack Web API and the signed-request helpers, driven by the real Bolt.

Why through the real ``AsyncApp`` + Starlette adapter: these fakes exist so the KomInn Slack
adapter can be tested end to end. If Bolt did not accept our signatures, did not parse our
payloads, or could not talk to the fake (auth.test, respond(), files_upload_v2), every adapter
test built on them would be meaningless. So nothing of Bolt is mocked here.

The tests also pin down Bolt behaviour the adapter relies on (ack timing with and without
``process_before_response``, lazy listeners, one cached auth.test, no retry de-duplication).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import (
    BOT_USER_ID,
    TEAM_ID,
    app_home_opened_event,
    block_action_body,
    event_body,
    message_event,
    sign,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
ENDPOINT = "/slack/events"


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(
        usergroups={"S_INNOV": ["U1", "U2"]}, users={"U1": "Kari Nordmann"}
    ) as server:
        yield server


def make_app(fake: FakeSlackAPI, *, process_before_response: bool = False) -> AsyncApp:
    # Only client=, no token=: Bolt takes the token from the client and logs a warning
    # ("client prioritized, token skipped") if both are given.
    return AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=fake.url),
        signing_secret=SECRET,
        process_before_response=process_before_response,
    )


def asgi(app: AsyncApp) -> Starlette:
    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route(ENDPOINT, endpoint=endpoint, methods=["POST"])])


@pytest.fixture
async def http_for() -> AsyncIterator[Any]:
    """Factory: an httpx client that talks to a Bolt app in-process (ASGI, same event loop)."""
    clients: list[httpx.AsyncClient] = []

    def build(app: AsyncApp) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi(app)), base_url="http://testserver"
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def post_signed(http: httpx.AsyncClient, body: str, **kwargs: Any) -> httpx.Response:
    return await http.post(ENDPOINT, content=body, headers=signed_headers(body, SECRET, **kwargs))


# --------------------------------------------------------------------------- signing helpers


def test_signature_matches_slack_sdk_verifier() -> None:
    body, ts = slash_command_body(), int(time.time())
    verifier = SignatureVerifier(SECRET)
    assert sign(body, SECRET, ts) == verifier.generate_signature(timestamp=str(ts), body=body)
    headers = signed_headers(body, SECRET, ts)
    assert verifier.is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert signed_headers("{}", SECRET)["Content-Type"] == "application/json"
    retry = signed_headers("{}", SECRET, retry_num=1, extra={"X-Extra": "1"})
    assert retry["X-Slack-Retry-Num"] == "1" and retry["X-Slack-Retry-Reason"] == "http_timeout"
    assert retry["X-Extra"] == "1"


def test_body_builders_have_slack_shapes() -> None:
    cmd = {k: v[0] for k, v in parse_qs(slash_command_body(text="status KI-1")).items()}
    assert cmd["command"] == "/kominn" and cmd["text"] == "status KI-1"
    assert cmd["user_id"] == "U1" and cmd["trigger_id"] == "T1" and cmd["channel_id"] == "C1"

    form = parse_qs(block_action_body("vote", "KI-1", user_id="U7"))
    payload = json.loads(form["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U7", "username": "u7", "name": "u7", "team_id": TEAM_ID}
    assert payload["container"]["message_ts"] == payload["message"]["ts"]
    (action,) = payload["actions"]
    assert action["action_id"] == "vote" and action["value"] == "KI-1"
    assert action["type"] == "button"

    in_modal = json.loads(parse_qs(block_action_body("pick", "1", view={"id": "V9"}))["payload"][0])
    assert in_modal["container"] == {"type": "view", "view_id": "V9"}
    assert "response_url" not in in_modal

    sub = json.loads(
        parse_qs(view_submission_body("new_idea", {"b": {"title": "Idea"}}))["payload"][0]
    )
    assert sub["view"]["state"]["values"] == {
        "b": {"title": {"type": "plain_text_input", "value": "Idea"}}
    }

    envelope = json.loads(event_body(app_home_opened_event("U1"), event_id="Ev9"))
    assert envelope["type"] == "event_callback" and envelope["event_id"] == "Ev9"
    assert envelope["event"]["type"] == "app_home_opened"
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID


# --------------------------------------------------------------------------- Bolt: commands


@pytest.mark.parametrize("process_before_response", [False, True])
async def test_slash_command_is_acked_and_respond_reaches_response_url(
    fake: FakeSlackAPI, http_for: Any, process_before_response: bool
) -> None:
    app = make_app(fake, process_before_response=process_before_response)

    @app.command("/kominn")
    async def kominn(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(f"Status for {command['text'].split()[1]}", response_type="ephemeral")

    body = slash_command_body(text="status KI-1", response_url=fake.response_url("cmd"))
    response = await post_signed(http_for(app), body)

    assert response.status_code == 200
    assert response.text == ""  # bare ack(): empty 200, the reply travels via response_url
    if process_before_response:
        # the listener finished before the HTTP answer was produced
        assert len(fake.responses("cmd")) == 1
    (sent,) = await fake.await_responses("cmd")
    assert sent["text"] == "Status for KI-1"
    assert sent["response_type"] == "ephemeral"
    # AsyncApp verifies its token lazily: auth.test on the first request, then cached
    assert fake.call_count("auth.test") == 1
    await post_signed(http_for(app), body)
    await fake.await_responses("cmd", n=2)
    assert fake.call_count("auth.test") == 1


@pytest.mark.parametrize("process_before_response", [False, True])
async def test_ack_timing_depends_on_process_before_response(
    fake: FakeSlackAPI, http_for: Any, process_before_response: bool
) -> None:
    app = make_app(fake, process_before_response=process_before_response)
    fake.delay("chat.postMessage", 0.6)
    finished = asyncio.Event()

    @app.command("/kominn")
    async def kominn(ack: Any, client: AsyncWebClient, command: dict[str, Any]) -> None:
        await ack()
        await client.chat_postMessage(channel=command["channel_id"], text="slow")
        finished.set()

    started = time.monotonic()
    response = await post_signed(http_for(app), slash_command_body())
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    if process_before_response:
        assert elapsed >= 0.6  # HTTP answer waits for the whole listener: keep it < 3 s
    else:
        assert elapsed < 0.5  # ack() answers at once; the listener goes on in the background
    # the call is recorded on arrival, before its (delayed) answer
    await fake.await_calls("chat.postMessage")
    assert fake.messages("C1")[0]["text"] == "slow"
    # don't leave the background listener pending when the test's loop closes
    await asyncio.wait_for(finished.wait(), 5)


async def test_lazy_listener_runs_after_ack_with_process_before_response(
    fake: FakeSlackAPI, http_for: Any
) -> None:
    app = make_app(fake, process_before_response=True)
    fake.delay("chat.postMessage", 0.6)
    finished = asyncio.Event()

    async def ack_fast(ack: Any) -> None:
        await ack("Working on it")

    async def work(client: AsyncWebClient, command: dict[str, Any]) -> None:
        await client.chat_postMessage(channel=command["channel_id"], text="done")
        finished.set()

    app.command("/kominn")(ack=ack_fast, lazy=[work])

    started = time.monotonic()
    response = await post_signed(http_for(app), slash_command_body())
    assert time.monotonic() - started < 0.5
    assert response.status_code == 200 and response.text == "Working on it"
    calls = await fake.await_calls("chat.postMessage")
    assert calls[0]["args"]["text"] == "done"
    await asyncio.wait_for(finished.wait(), 5)  # lazy task got its (delayed) answer


# --------------------------------------------------------------------------- Bolt: verification


def _unsigned(body: str) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded"}


def _forged(body: str) -> dict[str, str]:
    return signed_headers(body, "not-the-secret")


def _stale(body: str) -> dict[str, str]:
    return signed_headers(body, SECRET, timestamp=int(time.time()) - 6 * 60)


def _tampered(body: str) -> dict[str, str]:
    return signed_headers(body.replace("KI-1", "KI-2"), SECRET)


@pytest.mark.parametrize("make_headers", [_unsigned, _forged, _stale, _tampered])
async def test_bad_signatures_get_401(fake: FakeSlackAPI, http_for: Any, make_headers: Any) -> None:
    app = make_app(fake)
    seen: list[str] = []

    @app.command("/kominn")
    async def kominn(ack: Any, command: dict[str, Any]) -> None:
        seen.append(command["text"])
        await ack()

    body = slash_command_body(text="status KI-1")
    response = await http_for(app).post(ENDPOINT, content=body, headers=make_headers(body))
    assert response.status_code == 401
    assert seen == []
    assert fake.calls() == []  # verification runs before authorization (auth.test)


# --------------------------------------------------------------------------- Bolt: Web API


async def test_message_event_handler_posts_via_fake(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake)

    @app.message("hei")
    async def greet(message: dict[str, Any], say: Any, client: AsyncWebClient) -> None:
        await client.chat_postMessage(
            channel=message["channel"],
            text="Hei!",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Hei!*"}}],
        )
        await say("second")

    response = await post_signed(http_for(app), event_body(message_event("hei", "U1")))
    assert response.status_code == 200
    calls = await fake.await_calls("chat.postMessage", n=2)
    assert calls[0]["args"]["channel"] == "DU1"
    assert calls[0]["args"]["blocks"][0]["text"]["text"] == "*Hei!*"
    assert calls[0]["token"] == TOKEN
    assert [m["text"] for m in fake.messages("DU1")] == ["Hei!", "second"]


async def test_own_bot_messages_are_ignored_by_bolt(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake, process_before_response=True)
    seen: list[str] = []

    @app.message("")
    async def any_message(message: dict[str, Any]) -> None:
        seen.append(message["user"])

    http = http_for(app)
    await post_signed(http, event_body(message_event("echo", BOT_USER_ID), event_id="Ev1"))
    await post_signed(http, event_body(message_event("hi", "U1"), event_id="Ev2"))
    assert seen == ["U1"]  # Bolt compares with auth.test's user_id/bot_id from the fake


async def test_retried_events_are_not_deduplicated_by_bolt(
    fake: FakeSlackAPI, http_for: Any
) -> None:
    app = make_app(fake, process_before_response=True)
    seen: list[str] = []

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.append(body["event_id"])
        await client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [], "callback_id": "home"}
        )

    http = http_for(app)
    body = event_body(app_home_opened_event("U1"), event_id="Ev42")
    assert (await post_signed(http, body)).status_code == 200
    assert (await post_signed(http, body, retry_num=1)).status_code == 200
    assert seen == ["Ev42", "Ev42"]  # the adapter must de-duplicate by event_id / X-Slack-Retry-Num
    home_view = fake.home_view("U1")
    assert home_view is not None and home_view["callback_id"] == "home"


async def test_usergroup_members_come_from_fake(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake, process_before_response=True)

    @app.command("/kominn")
    async def kominn(ack: Any, client: AsyncWebClient) -> None:
        members = (await client.usergroups_users_list(usergroup="S_INNOV"))["users"]
        await ack(",".join(members))

    http = http_for(app)
    assert (await post_signed(http, slash_command_body())).text == "U1,U2"
    fake.set_usergroup_members("S_INNOV", ["U3"])
    assert (await post_signed(http, slash_command_body())).text == "U3"
    assert fake.call_count("usergroups.users.list") == 2
    # Bolt's listener client adds team_id as a default param to form/GET calls
    assert fake.calls("usergroups.users.list")[0]["args"] == {
        "usergroup": "S_INNOV",
        "team_id": TEAM_ID,
    }

    with pytest.raises(SlackApiError) as err:
        await fake.async_client().usergroups_users_list(usergroup="S_NOPE")
    assert err.value.response["error"] == "no_such_subteam"


async def test_files_upload_v2_records_bytes(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake, process_before_response=True)

    @app.command("/kominn")
    async def export(ack: Any, client: AsyncWebClient, command: dict[str, Any]) -> None:
        await ack()
        await client.files_upload_v2(
            channel=command["channel_id"],
            content=b"id;title\nKI-1;Benker\n",
            filename="ideas.csv",
            title="Ideas export",
            initial_comment="Here you go",
        )

    response = await post_signed(http_for(app), slash_command_body(text="export"))
    assert response.status_code == 200
    (upload,) = fake.uploads()
    assert upload["content"] == b"id;title\nKI-1;Benker\n"
    assert upload["title"] == "Ideas export" and upload["filename"] == "ideas.csv"
    assert upload["channel"] == "C1" and upload["initial_comment"] == "Here you go"
    assert [c["method"] for c in fake.calls()][-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


async def test_block_action_reaches_action_handler(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake)
    seen: list[tuple[str, str, str]] = []

    @app.action("vote")
    async def vote(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append((body["user"]["id"], action["value"], body["container"]["message_ts"]))
        await respond(text=f"Voted for {action['value']}", replace_original=True)

    body = block_action_body("vote", "KI-1", user_id="U2", response_url=fake.response_url("btn"))
    response = await post_signed(http_for(app), body)
    assert response.status_code == 200
    (sent,) = await fake.await_responses("btn")
    assert sent == {"text": "Voted for KI-1", "replace_original": True}
    assert seen == [("U2", "KI-1", "1700000000.000100")]


async def test_view_submission_errors_come_back_in_ack(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake)

    @app.view("new_idea")
    async def submit(ack: Any, view: dict[str, Any]) -> None:
        title = view["state"]["values"]["title_block"]["title"]["value"]
        meta = json.loads(view["private_metadata"])
        await ack(response_action="errors", errors={"title_block": f"{title}/{meta['lang']}"})

    body = view_submission_body(
        "new_idea", {"title_block": {"title": "x"}}, private_metadata='{"lang": "nb"}'
    )
    response = await post_signed(http_for(app), body)
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": {"title_block": "x/nb"}}


async def test_failing_auth_test_is_a_200_with_apology(fake: FakeSlackAPI, http_for: Any) -> None:
    app = make_app(fake, process_before_response=True)
    seen: list[str] = []

    @app.command("/kominn")
    async def kominn(ack: Any) -> None:
        seen.append("called")
        await ack()

    fake.fail_next("auth.test", error="invalid_auth", status=200)
    http = http_for(app)
    first = await post_signed(http, slash_command_body())
    assert first.status_code == 200 and "reinstall" in first.text  # Bolt's user-facing text
    assert seen == []
    assert (await post_signed(http, slash_command_body())).status_code == 200
    assert seen == ["called"] and fake.call_count("auth.test") == 2  # not cached on failure


# --------------------------------------------------------------------------- the fake itself


async def test_fault_knobs(fake: FakeSlackAPI) -> None:
    client = fake.async_client()
    fake.fail_next("chat.postMessage", retry_after=3)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "3"
    assert err.value.response["error"] == "ratelimited"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert [c["status"] for c in fake.calls("chat.postMessage")] == [429, 200]

    fake.fail_next("views.open", error="expired_trigger_id", status=200)
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await client.views_open(trigger_id="T1", view={"type": "modal", "blocks": []})

    fake.delay("users.info", 0.3)
    started = time.monotonic()
    user = (await client.users_info(user="U1"))["user"]
    assert time.monotonic() - started >= 0.3
    assert user["profile"]["display_name"] == "Kari Nordmann"

    with pytest.raises(RuntimeError, match="await_calls"):
        fake.wait_for("users.info")
    with pytest.raises(TimeoutError):
        await fake.await_calls("chat.delete", timeout=0.05)


async def test_views_messages_and_unknown_methods(fake: FakeSlackAPI) -> None:
    client = fake.async_client()
    opened = await client.views_open(trigger_id="T1", view={"type": "modal", "blocks": []})
    view_id = opened["view"]["id"]
    await client.views_update(view_id=view_id, view={"type": "modal", "callback_id": "step2"})
    view = fake.view(view_id)
    assert view is not None and view["callback_id"] == "step2"
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=view_id, hash="stale", view={"type": "modal"})

    posted = await client.chat_postMessage(channel="C1", text="v1")
    await client.chat_update(channel="C1", ts=posted["ts"], text="v2")
    assert [m["text"] for m in fake.messages("C1")] == ["v2"]
    await client.chat_postEphemeral(channel="C1", user="U1", text="psst")
    assert fake.ephemerals("U1")[0]["text"] == "psst"
    assert (await client.conversations_open(users="U1"))["channel"]["id"] == "DU1"

    await client.api_call("reactions.add", json={"name": "tada"})
    assert fake.unknown_methods() == ["reactions.add"]

    anonymous = AsyncWebClient(base_url=fake.url)
    with pytest.raises(SlackApiError, match="not_authed"):
        await anonymous.auth_test()


def test_sync_client_form_body_and_blocking_wait(fake: FakeSlackAPI) -> None:
    # slack_sdk sends data= as a form body; token in the body instead of a header
    WebClient(base_url=fake.url).api_call(
        "chat.postMessage",
        data={"token": TOKEN, "channel": "C1", "text": "form", "blocks": '[{"type":"divider"}]'},
    )
    (call,) = fake.wait_for("chat.postMessage", timeout=2)
    assert call["token"] == TOKEN
    assert call["args"] == {"channel": "C1", "text": "form", "blocks": [{"type": "divider"}]}


def test_subprocess_uses_fake_via_env(fake: FakeSlackAPI) -> None:
    script = (
        "import os; from slack_sdk import WebClient; "
        "WebClient(token='xoxb-sub', base_url=os.environ['SLACK_API_URL'])"
        ".chat_postMessage(channel='C9', text='from child')"
    )
    env = {**os.environ, **fake.env()}
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", script], env=env, cwd=root, check=True, timeout=30)
    (call,) = fake.wait_for("chat.postMessage", timeout=5)
    assert call["args"]["text"] == "from child" and call["token"] == "xoxb-sub"
