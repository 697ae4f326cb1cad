"""The metric objects of one runtime and the wrappers that update them where events happen."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.channels import DeliveryError, Sender

if TYPE_CHECKING:
    from sqlalchemy import Engine as DbEngine

    from dialogs.types import Reply

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A turn is one database transaction plus a pure step: milliseconds, seconds when the
# database is struggling.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A duplicate query is in-memory: sub-millisecond for a municipality, tens of ms at 100k ideas.
DEDUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Counters and histograms of this process; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.updates = Counter("kominn_updates_handled", "Updates handled by the dialog "
                               "engine (redeliveries included)", ["channel"], registry=reg)
        self.turn_seconds = Histogram("kominn_turn_seconds", "Time to handle one update, "
                                      "database transaction included", ["channel"],
                                      buckets=TURN_BUCKETS, registry=reg)
        self.sends = Counter("kominn_sends", "Messages handed to a channel by the outbox "
                             "dispatcher", ["channel"], registry=reg)
        self.rate_limited = Counter("kominn_rate_limited", "Sends refused with 429 "
                                    "(retry after)", ["channel"], registry=reg)
        self.send_failures = Counter("kominn_send_failures", "Sends that failed otherwise",
                                     ["channel", "permanent"], registry=reg)
        self.telegram_messages = Counter(
            "kominn_telegram_messages", "Messages Telegram took from this worker: answers and "
            "notices alike", ["method"], registry=reg)
        self.telegram_rate_limited = Counter(
            "kominn_telegram_rate_limited", "Bot API requests Telegram refused with 429 (each "
            "retry counted)", registry=reg)
        self.dedup_seconds = Histogram("kominn_dedup_query_seconds", "Time to find similar "
                                       "ideas (index refresh included)",
                                       buckets=DEDUP_BUCKETS, registry=reg)
        self.job_runs = Counter("kominn_scheduler_job_runs", "Scheduler job runs by outcome "
                                "(ok, failed, skipped: the previous run was still busy)",
                                ["job", "outcome"], registry=reg)

    def telegram_request(self, method: str, rate_limited: bool) -> None:
        """What the Telegram rate limiter saw of one Bot API request (message methods only)."""
        if rate_limited:
            self.telegram_rate_limited.inc()
        else:
            self.telegram_messages.labels(method).inc()

    @contextmanager
    def turn(self, channel: str) -> Iterator[None]:
        """Count and time one handled update (a failed turn is not counted)."""
        started = time.perf_counter()
        yield
        self.turn_seconds.labels(channel).observe(time.perf_counter() - started)
        self.updates.labels(channel).inc()

    @contextmanager
    def dedup_query(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.dedup_seconds.observe(time.perf_counter() - started)

    def job_run(self, job: str, outcome: str) -> None:
        self.job_runs.labels(job, outcome).inc()

    def watch(self, db: DbEngine, index_size: Callable[[], int]) -> None:
        """Add the scrape-time gauges read from the database (bot/observability/collect.py)."""
        from bot.observability.collect import DatabaseCollector

        self.registry.register(DatabaseCollector(db, index_size))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MeteredSender:
    """A `Sender` that counts what it sends and how it fails; everything else is the
    wrapped sender's (attributes are passed through)."""

    def __init__(self, sender: Sender, metrics: Metrics) -> None:
        self.sender = sender
        self.channel = sender.channel
        self.metrics = metrics

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        try:
            await self.sender.send(address, replies)
        except DeliveryError as exc:
            if exc.retry_after is not None:
                self.metrics.rate_limited.labels(self.channel).inc()
            else:
                self.metrics.send_failures.labels(self.channel,
                                                  str(exc.permanent).lower()).inc()
            raise
        self.metrics.sends.labels(self.channel).inc(max(1, len(replies)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sender, name)
