"""Wiring shared by every entry point: settings → database (schema checked) → index → engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine as DbEngine

from bot.channels import CampaignLinks, no_campaign_links
from bot.config import Settings
from bot.conversation.engine import Engine
from bot.dedup.detector import DuplicateFinder
from bot.dedup.index import STARTUP_WAIT, SimilarIndex
from bot.features import assemble
from bot.ideas.book import IdeaBook
from bot.observability.metrics import Metrics
from bot.wiring import Features
from dialogs.types import Incoming, Reply
from storage.db import make_engine
from storage.migrate import ensure_schema


@dataclass
class Runtime:
    settings: Settings
    db: DbEngine
    index: SimilarIndex
    engine: Engine
    campaign_links: CampaignLinks = no_campaign_links
    metrics: Metrics = field(default_factory=Metrics)

    def campaign_link(self, campaign_id: int) -> str | None:
        """Where a citizen joins competition `campaign_id` (see `bot.channels.CampaignLinks`)."""
        return self.campaign_links(self.settings, campaign_id)

    @property
    def features(self) -> Features:
        """What this runtime's engine, dispatcher, scheduler and staff views are built from."""
        return self.engine.features

    @property
    def ideas(self) -> IdeaBook:
        """Every change to ideas, with the listeners of this runtime's features."""
        return self.engine.features.ideas


def open_database(settings: Settings) -> DbEngine:
    """The database, at the code's schema: the embedded SQLite upgrades itself; any other
    database must be upgraded by the operator (`kominn db upgrade`), or we refuse to start."""
    db = make_engine(settings.database_url)
    ensure_schema(db, auto_upgrade=settings.is_default_sqlite)
    return db


def open_runtime(settings: Settings, features: Features | None = None,
                 campaign_links: CampaignLinks = no_campaign_links,
                 index_wait: float = 3.0) -> Runtime:
    """Everything an entry point needs; `features` default to `bot.features.assemble`. The
    composition root passes what comes from the adapters (e.g. the channel that links citizens
    into a competition); this module imports no adapter. The similar-ideas index is built in
    the background; this waits for it at most `index_wait` seconds (`kominn run`: not at all,
    see bot/dedup/index.py for what citizens get meanwhile)."""
    features = features or assemble(settings)
    db = open_database(settings)
    metrics = Metrics()
    index = MeteredIndex(db, DuplicateFinder(settings.dedup_threshold,
                                             settings.triage_threshold), metrics=metrics)
    index.start(index_wait)  # built in the background; see bot/dedup/index.py
    logging.getLogger("kominn").debug("index started")
    metrics.watch(db, lambda: len(index.finder))
    engine = MeteredEngine(db, settings, index, features=features, metrics=metrics)
    return Runtime(settings, db, index, engine, campaign_links=campaign_links, metrics=metrics)


class MeteredEngine(Engine):
    """The engine with each turn counted and timed for `/metrics` (bot/observability)."""

    def __init__(self, *args: object, metrics: Metrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.metrics = metrics

    def handle(self, incoming: Incoming) -> list[Reply]:
        with self.metrics.turn(incoming.channel):
            return super().handle(incoming)


class MeteredIndex(SimilarIndex):
    """The duplicate index with each query timed for `/metrics`."""

    def __init__(self, *args: object, metrics: Metrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.metrics = metrics

    def similar(self, title: str, description: str, limit: int = 3,
                wait: float = STARTUP_WAIT, language: str | None = None) -> list[tuple[int, float]]:
        with self.metrics.dedup_query():
            return super().similar(title, description, limit, wait, language)
