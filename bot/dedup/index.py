"""The live similar-ideas index: a `DuplicateFinder` over the ideas citizens may be shown,
loaded from the database at start and kept current on every write.

Several workers share one database, so each worker also refreshes from the database (ideas
changed since its last look, and the thresholds `kominn dedup calibrate --apply` stored)
before answering, at most every few seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.dedup.calibrate import DEDUP, TRIAGE, stored_thresholds
from bot.dedup.detector import DuplicateFinder
from dialogs.lifecycle import Status
from dialogs.refs import format_ref, parse_ref
from storage.models import Idea

# Realised ideas are matched too ("this was already done"); merged/declined are not offered.
MATCHABLE = frozenset({Status.NEW.value, Status.USEFUL.value, Status.REALISED.value})


class SimilarIndex:
    def __init__(self, engine: Engine, finder: DuplicateFinder | None = None,
                 refresh_seconds: float = 5.0) -> None:
        self.engine = engine
        self.finder = finder or DuplicateFinder()
        self.refresh_seconds = refresh_seconds
        self._watermark: datetime | None = None
        self._last_refresh = 0.0
        self._lock = threading.Lock()
        # the environment's thresholds, used whenever no calibrated ones are stored
        self._defaults = (self.finder.dedup_threshold, self.finder.triage_threshold)

    def load(self) -> None:
        """Read every matchable idea (at start); later calls only read what changed."""
        with self._lock, Session(self.engine) as session:
            query = select(Idea)
            if self._watermark is not None:
                query = query.where(Idea.updated_at >= self._watermark)
            for idea in session.exec(query.order_by(Idea.updated_at)):
                self.update(idea)
                if self._watermark is None or idea.updated_at > self._watermark:
                    self._watermark = idea.updated_at
            self._apply_settings(session)
            self._last_refresh = time.monotonic()

    def _apply_settings(self, session: Session) -> None:
        """Calibrated thresholds from the database, or the environment's when none are."""
        try:
            stored = stored_thresholds(session)
        except Exception:  # a database not yet upgraded to 0002_dedup: keep the defaults
            session.rollback()
            stored = {}
        self.finder.dedup_threshold = stored.get(DEDUP, self._defaults[0])
        self.finder.triage_threshold = stored.get(TRIAGE, self._defaults[1])

    def maybe_refresh(self) -> None:
        if time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.load()

    def update(self, idea: Idea) -> None:
        """Add, replace or drop one idea according to its status."""
        ref = format_ref(idea.id or 0)
        if idea.status in MATCHABLE:
            self.finder.add(ref, idea.title, idea.description)
        else:
            self.finder.remove(ref)

    def similar(self, title: str, description: str, limit: int = 3) -> list[tuple[int, float]]:
        """(idea number, score) best first, at or above the triage threshold."""
        self.maybe_refresh()
        found = []
        for match in self.finder.similar(title, description, limit=limit):
            number = parse_ref(match.ref)
            if number is not None:
                found.append((number, float(match.score)))
        return found

    @property
    def dedup_threshold(self) -> float:
        return float(self.finder.dedup_threshold)

    @property
    def triage_threshold(self) -> float:
        return float(self.finder.triage_threshold)
