"""Socket Mode start-up wiring: with SLACK_APP_TOKEN set, the Slack service serves no HTTP
route, connects with Bolt's AsyncSocketModeHandler on start (apps.connections.open with the
app token, then the WebSocket), handles an envelope through the same listeners, and closes on
stop.

A small local server plays Slack's Socket Mode side (the connections.open answer and the
WebSocket); every other Web API call is passed on to the fake Slack Web API."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web

from adapters.slack import service as adapter
from bot.runtime import Runtime
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import slash_command_body
from tests.slack_fixtures import shown

fake = bench.fake  # the fake Web API fixture

APP_TOKEN = "xapp-1-kominn-test"


@dataclasses.dataclass
class SocketSide:
    url: str
    sockets: asyncio.Queue[web.WebSocketResponse]
    received: asyncio.Queue[Any]  # what the app sent back over the socket (acks)
    opened_with: list[str]


@pytest.fixture
async def socket_side(fake: FakeSlackAPI) -> AsyncIterator[SocketSide]:
    sockets: asyncio.Queue[web.WebSocketResponse] = asyncio.Queue()
    received: asyncio.Queue[Any] = asyncio.Queue()
    opened_with: list[str] = []
    session = aiohttp.ClientSession()

    async def api(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method == "apps.connections.open":
            opened_with.append(request.headers.get("Authorization", ""))
            return web.json_response({"ok": True, "url": f"{root}/link".replace("http", "ws")})
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with session.post(fake.url + method, data=await request.read(),
                                headers=headers, params=request.query) as upstream:
            return web.Response(body=await upstream.read(), status=upstream.status,
                                content_type="application/json")

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})
        await sockets.put(ws)
        async for message in ws:  # until the app closes the connection
            if message.type == aiohttp.WSMsgType.TEXT:
                await received.put(message.json())
        return ws

    app = web.Application()
    app.router.add_route("*", "/api/{method}", api)
    app.router.add_get("/link", link)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    root = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield SocketSide(f"{root}/api/", sockets, received, opened_with)
    await session.close()
    await runner.cleanup()


async def test_socket_mode_connects_handles_an_envelope_and_closes(
        runtime: Runtime, fake: FakeSlackAPI, socket_side: SocketSide) -> None:
    settings = runtime.settings.model_copy(update={
        "slack_bot_token": "xoxb-kominn-test", "slack_signing_secret": None,
        "slack_app_token": APP_TOKEN, "slack_api_url": socket_side.url})
    assert settings.slack_enabled
    service = adapter.service(dataclasses.replace(runtime, settings=settings))
    assert service.socket_mode and service.routes == []  # no HTTP endpoint in Socket Mode
    assert service.socket_handler is None  # built in start(), inside the running loop
    try:
        await service.start()
        assert socket_side.opened_with == [f"Bearer {APP_TOKEN}"]
        ws = await asyncio.wait_for(socket_side.sockets.get(), 5)
        payload: dict[str, Any] = {k: v[0] for k, v in parse_qs(slash_command_body(
            text="help", user_id="UEMP1", response_url=fake.response_url("sock"))).items()}
        await ws.send_json({"envelope_id": "env-1", "type": "slash_commands",
                            "payload": payload, "accepts_response_payload": True})
        ack = await asyncio.wait_for(socket_side.received.get(), 5)
        assert ack["envelope_id"] == "env-1"
        (answer,) = await fake.await_responses("sock")
        assert "status KI-n" in shown(answer)
    finally:
        await service.stop()
    assert service.socket_handler is None
