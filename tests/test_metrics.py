"""`GET /metrics` (Prometheus text, read back with prometheus_client's own parser) and
`GET /readyz`, through the Starlette app of `kominn run` after real work: chats through the
engine, duplicate queries, outbox rows delivered by the scheduler's dispatch job (one channel
answering 429), the triage queue."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.routing import BaseRoute

from bot.app import build, starlette_app
from bot.channels import DeliveryError
from bot.followups.scheduler import SchedulerService
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import utcnow
from storage.outbox import enqueue
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.helpers import ChatPerson
from tests.test_followups import RecordingSender
from tests.test_telegram import Citizen, running


class FakeService:
    """A channel service as the App sees one: a name, routes and a sender."""

    def __init__(self, sender: RecordingSender) -> None:
        self.name = sender.channel
        self.routes: list[BaseRoute] = []
        self.sender = sender

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class CountingPerson(ChatPerson):
    turns = 0

    def _send(self, **kwargs: object) -> list[Any]:
        self.turns += 1
        return super()._send(**kwargs)


async def _get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kominn") as client:
        return await client.get(path)


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def _queue(runtime: Runtime, channel: str, key: str) -> None:
    with transaction(runtime.db) as session:
        enqueue(session, kind="stale_moderator", dedupe_key=key, channel=channel, address="C1",
                payload={"ref": "KI-1", "title": "x", "days": 1}, due_at=utcnow())


async def test_metrics_after_real_work(runtime: Runtime) -> None:
    app = build(runtime)
    app.add(FakeService(RecordingSender("terminal")))
    app.add(FakeService(RecordingSender("slack", fail=1, error=DeliveryError(
        "slack: ratelimited", retry_after=600))))
    kari, ola = CountingPerson(runtime.engine, "kari"), CountingPerson(runtime.engine, "ola")
    kari.submit()
    ola.submit(mine_is_new=True)  # the same idea: offered as similar, queued for triage
    _queue(runtime, "terminal", "m1")
    _queue(runtime, "slack", "m2")
    [scheduler] = [s for s in app.services if isinstance(s, SchedulerService)]
    await scheduler.dispatch_once()  # the jobs the scheduler runs, without its clock
    await scheduler.scan_once()

    response = await _get(starlette_app(app), "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = _samples(response.text)

    handled = got[("kominn_updates_handled_total", (("channel", "terminal"),))]
    assert handled == kari.turns + ola.turns
    assert got[("kominn_turn_seconds_count", (("channel", "terminal"),))] == handled
    assert got[("kominn_dedup_query_seconds_count", ())] >= 2
    assert got[("kominn_dedup_index_ideas", ())] == 2
    assert got[("kominn_ideas", (("status", "new"),))] == 2
    assert got[("kominn_triage_queue", ())] >= 1
    assert got[("kominn_triage_queue_oldest_seconds", ())] >= 0
    assert got[("kominn_sends_total", (("channel", "terminal"),))] == 1
    assert got[("kominn_rate_limited_total", (("channel", "slack"),))] == 1
    assert got[("kominn_outbox_rows", (("kind", "stale_moderator"), ("state", "pending")))] == 1
    for job in ("dispatch", "scan"):
        assert got[("kominn_scheduler_job_runs_total", (("job", job), ("outcome", "ok")))] == 1
    assert got[("kominn_database_up", ())] == 1


async def test_readyz_checks_database_migrations_and_index(runtime: Runtime) -> None:
    web = starlette_app(build(runtime))
    ready = await _get(web, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "migrations": "ok",
                            "dedup_index": "ok"}
    with runtime.db.begin() as conn:  # a database behind the code (or from another branch)
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    behind = await _get(web, "/readyz")
    assert behind.status_code == 503
    assert "kominn db upgrade" in behind.json()["migrations"]
    assert (await _get(web, "/healthz")).status_code == 200  # alive, just not ready


async def test_telegram_answers_and_429s_are_counted(runtime: Runtime) -> None:
    """Every message Telegram takes is counted, answers as well as notices, and each 429."""
    with FakeTelegramAPI() as fake:
        async with running(runtime, fake, paced=True):
            citizen = Citizen(fake, 4711)
            fake.fail_next("sendMessage", 1, status=429, retry_after=0.1)
            await citizen.say("/hjelp")
    samples = _samples(runtime.metrics.render().decode())
    assert samples[("kominn_telegram_messages_total", (("method", "sendMessage"),))] >= 1
    assert samples[("kominn_telegram_rate_limited_total", ())] == 1
