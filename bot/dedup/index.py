"""The live similar-ideas index: a `DuplicateFinder` over the ideas citizens may be shown,
loaded from the database at start and kept current on every write.

Several workers share one database, so each worker also refreshes from the database (ideas
changed since its last look, and the thresholds `kominn dedup calibrate --apply` stored)
before answering, at most every few seconds. The look reaches `OVERLAP` back behind the
newest change it saw: a transaction stamps `updated_at` when it starts but becomes visible
when it commits, so an idea stamped a moment before the newest one seen (a slower
transaction, or another machine's clock a little behind) would otherwise never be read.
Reading a few ideas twice is harmless (`update` replaces).

Start-up: `start()` builds the index from the database in a background thread (bulk: the
ideas' columns streamed, every idea analysed, postings filled a chunk at a time —
`DuplicateFinder.add_many`) and waits for it at most `block_seconds` (`kominn run`: 0), so a
worker with 100,000 ideas serves citizens at once (benchmarks/startup.py). Until the
first build is done, the citizen's similar-ideas step waits at most STARTUP_WAIT seconds and
then goes on without similar ideas (the citizen is shown none); queueing a new idea for the
moderators' triage waits for the build (TRIAGE_WAIT), so no pair is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.dedup.calibrate import stored_thresholds, use_stored
from bot.dedup.detector import DuplicateFinder
from bot.ideas.book import is_public
from dialogs.lifecycle import Status
from dialogs.refs import format_ref, parse_ref
from storage.models import Idea

# Realised ideas are matched too ("this was already done"); merged/declined are not offered.
MATCHABLE = frozenset({Status.NEW.value, Status.USEFUL.value, Status.REALISED.value})
OVERLAP = timedelta(seconds=30)  # how far behind its newest change a refresh looks again
STARTUP_WAIT = 1.0  # seconds a citizen's similar-ideas step waits for the first build
TRIAGE_WAIT = 120.0  # … and queueing for triage, which must not miss a pair
log = logging.getLogger("kominn.dedup")


class SimilarIndex:
    def __init__(self, engine: Engine, finder: DuplicateFinder | None = None,
                 refresh_seconds: float = 5.0) -> None:
        self.engine = engine
        # `is None`, not `or`: a finder is falsy while empty (`__len__`), which it always is
        # here, and `or` swapped the runtime's for one with the environment's thresholds.
        self.finder = finder if finder is not None else DuplicateFinder()
        self.refresh_seconds = refresh_seconds
        self._watermark: datetime | None = None
        self._last_refresh = 0.0
        self._lock = threading.Lock()
        # the environment's thresholds, used whenever no calibrated ones are stored
        self._defaults = (self.finder.dedup_threshold, self.finder.triage_threshold,
                          self.finder.channels)
        self._ready = threading.Event()
        self._builder: threading.Thread | None = None

    def start(self, block_seconds: float = 3.0) -> None:
        """Build the index in the background; return when built or after `block_seconds`."""
        if self._builder is None:
            self._builder = threading.Thread(target=self.load, name="kominn-index", daemon=True)
            self._builder.start()
        if not self._ready.wait(block_seconds):
            log.info("similar-ideas index still building", extra={"event": "index_building"})

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the first build (started by `start`); True when the index is ready."""
        if self._builder is None and not self._ready.is_set():
            self.load()
        return self._ready.wait(timeout)

    def load(self) -> None:
        """Read every matchable idea (at start, in bulk); later calls only read what changed."""
        with self._lock, Session(self.engine) as session:
            watermark = self._watermark
            if watermark is None:
                self._build(session)
            else:
                query = select(Idea).where(col(Idea.updated_at) >= watermark - OVERLAP)
                for idea in session.exec(query.order_by(col(Idea.updated_at))).all():
                    self.update(idea)
                    if self._watermark is None or idea.updated_at > self._watermark:
                        self._watermark = idea.updated_at
            self._apply_settings(session)
            self._last_refresh = time.monotonic()
        self._ready.set()

    def _build(self, session: Session) -> None:
        """The first load: the matchable ideas' columns streamed from the database (no ORM
        objects: at 100,000 ideas making them took seconds) into `DuplicateFinder.add_many`."""
        started = time.monotonic()
        newest: list[datetime] = []
        query = sa_select(col(Idea.id), col(Idea.title), col(Idea.description), col(Idea.status),
                          col(Idea.updated_at))
        rows = session.connection().execute(query.execution_options(yield_per=2000))

        def matchable() -> Iterator[tuple[str, str, str]]:
            for number, title, description, status, updated_at in rows:
                if not newest or updated_at > newest[0]:
                    newest[:] = [updated_at]
                if status in MATCHABLE:
                    yield format_ref(number or 0), title, description

        self.finder.add_many(matchable())
        self._watermark = newest[0] if newest else None  # none yet: the next load builds
        log.info("similar-ideas index built", extra={
            "event": "index_built", "count": len(self.finder),
            "duration_ms": round(1000 * (time.monotonic() - started))})

    def _apply_settings(self, session: Session) -> None:
        """Calibrated thresholds and channel weights from the database, or the defaults."""
        # the schema is current: see storage.migrate
        use_stored(self.finder, stored_thresholds(session), self._defaults)

    @property
    def loaded(self) -> bool:
        """True once `load()` has read the ideas (readiness, bot/observability/ready.py)."""
        return self._last_refresh > 0

    def maybe_refresh(self) -> None:
        if self._ready.is_set() and time.monotonic() - self._last_refresh >= self.refresh_seconds:
            self.load()

    def update(self, idea: Idea) -> None:
        """Add, replace or drop one idea according to its status."""
        ref = format_ref(idea.id or 0)
        if idea.status in MATCHABLE:
            self.finder.add(ref, idea.title, idea.description)
        else:
            self.finder.remove(ref)

    def similar(self, title: str, description: str, limit: int = 3,
                wait: float = STARTUP_WAIT, language: str | None = None) -> list[tuple[int, float]]:
        """(idea number, score) best first, at or above the triage threshold; [] when the
        first build is not done within `wait` seconds. `language`: the writer's chosen
        language, the prior of the text's language detection."""
        if not self._ready.is_set() and not self.wait_ready(wait):
            log.info("similar ideas skipped: index building", extra={"event": "index_building"})
            return []
        self.maybe_refresh()
        found = []
        for match in self.finder.similar(title, description, limit=limit, language=language):
            number = parse_ref(match.ref)
            if number is not None:
                found.append((number, float(match.score)))
        return found

    def offered(self, idea: Idea, score: float, publish: str) -> bool:
        """Whether a citizen writing a new idea is shown `idea` (found with `score`) as a
        similar one: the one rule of the citizen's step (bot/conversation/ports.py) and of
        `kominn dedup similar`'s "Shown" — at or above the dedup threshold, public (not
        hidden; published under KOMINN_PUBLISH=after-review), and MATCHABLE (not merged or
        declined)."""
        return (score >= self.dedup_threshold and is_public(idea, publish)
                and idea.status in MATCHABLE)

    @property
    def dedup_threshold(self) -> float:
        return float(self.finder.dedup_threshold)

    @property
    def triage_threshold(self) -> float:
        return float(self.finder.triage_threshold)
