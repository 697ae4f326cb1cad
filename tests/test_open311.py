"""The Open311 GeoReport v2 view through the real Starlette app of `kominn run`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.app import App, starlette_app
from bot.ideas import book
from bot.reports.open311 import service_code
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Person

BASE = "/open311/v2"


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """KI-1 realised, KI-2 useful with a note, KI-3 new without area, KI-4 merged into KI-1."""
    with transaction(runtime.db) as s:
        kari = Person(channel="telegram", channel_user_id="tg-kari", chat_id="chat-kari",
                      display_name="Kari Nordmann")
        s.add(kari)
        s.flush()

        def idea(title: str, area: str | None, day: int, **extra):  # type: ignore[no-untyped-def]
            return runtime.ideas.create_idea(s, book.NewIdea(
                title=title, description=f"{title}: en beskrivelse som er lang nok.",
                channel="telegram", focus_area=area, author_id=kari.id,
                created_at=datetime(2024, 3, day, 12, tzinfo=UTC), **extra), by="test")

        first = idea("Benker ved Semsvannet", "Folkehelse", 1, place="Semsvannet",
                     latitude=59.85, longitude=10.45)
        second = idea("Sykkelvei til Heggedal", "Areal og transport", 10)
        idea("Nytt bibliotek", None, 20)
        fourth = idea("Flere benker", "Natur, kultur, miljø og samfunnssikkerhet", 25)
        at = datetime(2024, 4, 1, 8, tzinfo=UTC)
        runtime.ideas.set_status(s, first, Status.USEFUL, by="cli", at=at)
        runtime.ideas.set_status(s, first, Status.REALISED, by="cli", note="Satt opp fire benker",
                                at=at)
        runtime.ideas.set_status(s, second, Status.USEFUL, by="cli", note="Vi ser på traseen",
                                at=at)
        runtime.ideas.merge(s, fourth, first, by="cli", at=at)
    transport = httpx.ASGITransport(app=starlette_app(App(runtime)))
    async with httpx.AsyncClient(transport=transport, base_url="http://kominn.test") as http:
        yield http


def refs(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [r["service_request_id"] for r in response.json()]


async def test_services_are_the_focus_areas(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.get(f"{BASE}/services.json")
    assert response.status_code == 200
    services = response.json()
    assert [s["service_name"] for s in services] == runtime.settings.focus_areas
    assert services[2]["service_code"] == "natur-kultur-miljo-og-samfunnssikkerhet"
    assert {"service_code", "service_name", "description", "metadata", "type", "keywords",
            "group"} <= set(services[0])
    assert services[0]["metadata"] is False and services[0]["type"] == "realtime"


async def test_request_mapping(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/requests/KI-1.json")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    [item] = response.json()
    assert item["service_request_id"] == "KI-1"
    assert item["status"] == "closed"
    assert item["status_notes"] == "Nyttiggjort: Satt opp fire benker"
    assert (item["service_name"], item["service_code"]) == ("Folkehelse", "folkehelse")
    assert item["description"] == "Benker ved Semsvannet: en beskrivelse som er lang nok."
    assert item["title"] == "Benker ved Semsvannet"
    assert item["address"] == "Semsvannet"
    assert item["requested_datetime"] == "2024-03-01T13:00:00+01:00"  # Oslo time, with offset
    assert item["updated_datetime"] > item["requested_datetime"]
    useful = (await client.get(f"{BASE}/requests/ki-2.json")).json()[0]
    assert (useful["status"], useful["status_notes"]) == ("open", "Nyttig: Vi ser på traseen")
    assert useful["updated_datetime"] == "2024-04-01T10:00:00+02:00"
    plain = (await client.get(f"{BASE}/requests/KI-3.json")).json()[0]
    assert (plain["status_notes"], plain["service_name"], plain["address"]) == \
        ("Nytt", None, None)


async def test_no_personal_data(client: httpx.AsyncClient) -> None:
    text = (await client.get(f"{BASE}/requests.json")).text
    for personal in ("Kari", "Nordmann", "tg-kari", "chat-kari", "author", "lat", "long"):
        assert personal not in text, personal
    values = [v for item in json.loads(text) for v in item.values()]
    assert 59.85 not in values and 10.45 not in values  # the shared location


async def test_filters(client: httpx.AsyncClient) -> None:
    assert refs(await client.get(f"{BASE}/requests.json")) == ["KI-4", "KI-3", "KI-2", "KI-1"]
    assert refs(await client.get(f"{BASE}/requests.json?status=open")) == ["KI-3", "KI-2"]
    assert refs(await client.get(f"{BASE}/requests.json?status=closed")) == ["KI-4", "KI-1"]
    assert len(refs(await client.get(f"{BASE}/requests.json?status=open,closed"))) == 4
    assert refs(await client.get(f"{BASE}/requests.json",
                           params={"start_date": "2024-03-05T00:00:00Z",
                                   "end_date": "2024-03-21T00:00:00+01:00"})) == ["KI-3", "KI-2"]
    assert refs(await client.get(f"{BASE}/requests.json?start_date=2024-03-20")) == ["KI-4", "KI-3"]
    assert refs(await client.get(f"{BASE}/requests.json?service_code=folkehelse")) == ["KI-1"]
    both = f"{BASE}/requests.json?service_code=folkehelse,areal-og-transport&status=open"
    assert refs(await client.get(both)) == ["KI-2"]
    assert refs(await client.get(f"{BASE}/requests.json?service_code=nope")) == []
    assert refs(await client.get(f"{BASE}/requests.json?service_request_id=KI-1,ki-3")) == \
        ["KI-3", "KI-1"]


@pytest.mark.parametrize("query", ["status=pending", "start_date=yesterday",
                                   "end_date=2024-13-01"])
async def test_bad_filters_get_a_georeport_error(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"{BASE}/requests.json?{query}")
    assert response.status_code == 400
    [error] = response.json()
    assert error["code"] == 400 and error["description"]


async def test_unknown_request_and_the_rest_of_the_app(client: httpx.AsyncClient) -> None:
    for path in ("requests/KI-99.json", "requests/abc.json"):
        response = await client.get(f"{BASE}/{path}")
        assert response.status_code == 404
        assert response.json()[0]["code"] == 404
    assert (await client.post(f"{BASE}/requests.json")).status_code == 405  # read-only
    assert (await client.get("/healthz")).json()["status"] == "ok"


def test_service_codes_are_ascii_slugs() -> None:
    assert service_code("Vekst og utvikling") == "vekst-og-utvikling"
    assert service_code("Tettsteder og knutepunkter") == "tettsteder-og-knutepunkter"
    assert service_code("Bærekraft på Årø") == "baerekraft-pa-aro"
    assert service_code("???") == "annet"
