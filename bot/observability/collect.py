"""Gauges computed from the database when Prometheus scrapes: the state that all workers share
(outbox backlog, triage queue, ideas per status) is reported from where it lives, so every
worker gives the same figures and no counter can drift from the truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, select
from sqlmodel import col

from storage.models import DuplicateCandidate, Idea, Outbox
from storage.outbox import FAILED, PENDING, SENDING


class DatabaseCollector(Collector):
    def __init__(self, db: DbEngine, index_size: Callable[[], int]) -> None:
        self.db = db
        self.index_size = index_size

    def describe(self) -> list[Any]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        index = GaugeMetricFamily("kominn_dedup_index_ideas",
                                  "Ideas in this worker's duplicate index")
        index.add_metric([], self.index_size())
        yield index
        up = GaugeMetricFamily("kominn_database_up", "1 if the scrape could read the database")
        try:
            families = self._from_database()
        except Exception:  # noqa: BLE001 - a scrape must answer even when the database does not
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> list[Any]:
        outbox = GaugeMetricFamily("kominn_outbox_rows", "Outbox rows waiting (pending, "
                                   "sending) or given up (failed), per kind",
                                   labels=["kind", "state"])
        ideas = GaugeMetricFamily("kominn_ideas", "Ideas per status", labels=["status"])
        queue = GaugeMetricFamily("kominn_triage_queue", "Duplicate candidates waiting for "
                                  "a moderator")
        age = GaugeMetricFamily("kominn_triage_queue_oldest_seconds", "Age of the oldest "
                                "duplicate candidate waiting (0 when none)")
        with self.db.connect() as conn:
            for kind, state, count in conn.execute(
                    select(col(Outbox.kind), col(Outbox.state), func.count())
                    .where(col(Outbox.state).in_((PENDING, SENDING, FAILED)))
                    .group_by(col(Outbox.kind), col(Outbox.state))):
                outbox.add_metric([kind, state], count)
            for status, count in conn.execute(
                    select(col(Idea.status), func.count()).group_by(col(Idea.status))):
                ideas.add_metric([status], count)
            waiting, oldest = conn.execute(
                select(func.count(), func.min(col(DuplicateCandidate.created_at)))
                .where(col(DuplicateCandidate.state) == "pending")).one()
        queue.add_metric([], waiting)
        age.add_metric([], _age(oldest))
        return [outbox, ideas, queue, age]


def _age(oldest: datetime | str | None) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # a raw SQLite value (the aggregate loses the column type)
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())
