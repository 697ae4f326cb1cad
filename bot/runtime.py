"""Wiring shared by every entry point: settings → database (schema checked) → index → engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine as DbEngine

from bot.channels import CampaignLinks, no_campaign_links
from bot.config import Settings
from bot.conversation.engine import Engine
from bot.dedup.detector import DuplicateFinder
from bot.dedup.index import SimilarIndex
from bot.features import assemble
from bot.ideas.book import IdeaBook
from bot.wiring import Features
from storage.db import make_engine
from storage.migrate import ensure_schema


@dataclass
class Runtime:
    settings: Settings
    db: DbEngine
    index: SimilarIndex
    engine: Engine
    campaign_links: CampaignLinks = no_campaign_links

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
                 campaign_links: CampaignLinks = no_campaign_links) -> Runtime:
    """Everything an entry point needs; `features` default to `bot.features.assemble`. The
    composition root passes what comes from the adapters (e.g. the channel that links citizens
    into a competition); this module imports no adapter."""
    features = features or assemble(settings)
    db = open_database(settings)
    index = SimilarIndex(db, DuplicateFinder(settings.dedup_threshold, settings.triage_threshold))
    index.start()  # built in the background; see bot/dedup/index.py
    logging.getLogger("kominn").debug("index started")
    return Runtime(settings, db, index, Engine(db, settings, index, features=features),
                   campaign_links=campaign_links)
