"""KomInn read by an independent Open311 client: the `georeport` library from PyPI (requests +
xmltodict), in XML (the format GeoReport v2 requires) and JSON, over real HTTP — plus the
XML documents themselves, parsed with the standard library, and `jurisdiction_id`."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from georeport import GeoReport

from bot.app import App, starlette_app
from bot.config import Settings
from bot.ideas import book
from bot.runtime import Runtime, open_runtime
from dialogs.lifecycle import Status
from storage.db import transaction

TRICKY = 'Benker & bord <ved> "Semsvannet"'


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    """`kominn run`'s Starlette app on a free port, with KI-1 (realised) and KI-2 (new)."""
    runtime = open_runtime(settings.model_copy(update={"open311_jurisdiction": "asker.kommune.no",
                                                       "open311_contact": "innovasjon@asker"}))
    with transaction(runtime.db) as s:
        first = runtime.ideas.create_idea(s, book.NewIdea(
            title=TRICKY, description="Fire benker & to bord.", channel="telegram",
            focus_area="Folkehelse", place="Semsvannet"), by="test")
        runtime.ideas.set_status(s, first, Status.USEFUL, by="cli")
        runtime.ideas.set_status(s, first, Status.REALISED, by="cli", note="Satt opp")
        runtime.ideas.create_idea(s, book.NewIdea(
            title="Sykkelvei til Heggedal", description="Trygg vei til skolen.",
            channel="telegram", focus_area="Areal og transport"), by="test")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(starlette_app(App(runtime)), log_config=None, lifespan="off")
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not web.started and thread.is_alive():
        time.sleep(0.01)  # waiting for start-up, not a timing assertion
    yield f"http://127.0.0.1:{port}", runtime
    web.should_exit = True
    thread.join()
    sock.close()
    runtime.db.dispose()


def _as_list(value: Any) -> list[dict[str, Any]]:
    """xmltodict gives one child as a dict and several as a list."""
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_georeport_client_reads_kominn(server: tuple[str, Runtime], fmt: str) -> None:
    base, runtime = server
    client = GeoReport(f"{base}/open311/v2", jurisdiction="asker.kommune.no", output_format=fmt)
    services = _as_list(client.get_service_list())
    assert [s["service_name"] for s in services] == runtime.settings.focus_areas
    assert services[0]["service_code"] == "vekst-og-utvikling"

    requests = _as_list(client.get_service_requests())
    assert [r["service_request_id"] for r in requests] == ["KI-2", "KI-1"]
    assert _as_list(client.get_service_requests(status="closed"))[0]["service_request_id"] \
        == "KI-1"
    one = client.get_service_request("KI-1")
    assert one["title"] == TRICKY  # escaped in XML, read back intact
    assert one["status"] == "closed" and one["status_notes"] == "Nyttiggjort: Satt opp"
    assert one["service_code"] == "folkehelse" and one["address"] == "Semsvannet"
    open_one = client.get_service_request("KI-2")
    assert open_one["status"] == "open"
    assert open_one["address"] in (None, "")  # an empty element in XML, null in JSON


def test_wrong_jurisdiction_and_unknown_request_in_xml(server: tuple[str, Runtime]) -> None:
    base, _ = server
    other = GeoReport(f"{base}/open311/v2", jurisdiction="oslo.kommune.no", output_format="xml")
    with pytest.raises(Exception, match="404"):
        other.get_service_list()
    missing = httpx.get(f"{base}/open311/v2/requests/KI-99.xml")
    assert missing.status_code == 404
    root = ET.fromstring(missing.content)
    assert root.tag == "errors"
    assert root.findtext("error/code") == "404"
    bad = httpx.get(f"{base}/open311/v2/requests.xml", params={"status": "pending"})
    assert bad.status_code == 400 and ET.fromstring(bad.content).findtext("error/code") == "400"


def test_xml_documents_follow_the_specification(server: tuple[str, Runtime]) -> None:
    base, _ = server
    response = httpx.get(f"{base}/open311/v2/requests.xml", params={
        "jurisdiction_id": "asker.kommune.no"})
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    first = root.find("request")
    assert first is not None
    assert [child.tag for child in first][:4] == ["service_request_id", "status",
                                                  "status_notes", "service_name"]
    services = ET.fromstring(httpx.get(f"{base}/open311/v2/services.xml").content)
    assert services.tag == "services"
    assert services.findtext("service/metadata") == "false"
    assert services.findtext("service/type") == "realtime"


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_discovery_document(server: tuple[str, Runtime], fmt: str) -> None:
    base, _ = server
    response = httpx.get(f"{base}/open311/discovery.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        doc = response.json()
        [endpoint] = doc["endpoints"]
        formats = endpoint["formats"]
        contact = doc["contact"]
    else:
        root = ET.fromstring(response.content)
        assert root.tag == "discovery"
        endpoint_el = root.find("endpoints/endpoint")
        assert endpoint_el is not None
        endpoint = {child.tag: child.text for child in endpoint_el if child.tag != "formats"}
        formats = [f.text for f in endpoint_el.findall("formats/format")]
        contact = root.findtext("contact")
    assert endpoint["url"] == f"{base}/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["type"] == "production"
    assert set(formats) == {"text/xml", "application/json"}
    assert contact == "innovasjon@asker"
    # The endpoint it names answers: a client can start from discovery alone.
    assert httpx.get(f"{endpoint['url']}/services.{fmt}").status_code == 200
