"""The public idea board: `/ideer` (newest first, 20 a page, filters by status and focus area,
a search ranked by the duplicate detector) and `/ideer/KI-n` (one idea, its public history,
supporters count, similar ideas and "Støtt idéen").

Public means: titles, descriptions, focus areas, places, statuses, dates, public notes and
counts. Never a name, a channel id, a contact or coordinates (a location shared from a phone
may be the citizen's home). `public_ideas()` is the one place that says which ideas are shown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response

from adapters.web.render import Renderer
from adapters.web.session import Sessions, choose_language
from bot.ideas import book
from bot.ideas.book import is_public, public_clause
from bot.runtime import Runtime
from dialogs.lifecycle import OPEN, Status
from dialogs.refs import format_ref, parse_ref
from storage.models import Idea, Support

PAGE = 20
SEARCH_LIMIT = 200  # ranked matches a search considers
STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class Row:
    number: int
    ref: str
    title: str
    status: str
    focus_area: str | None
    created_at: datetime
    supporters: int


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    total: int
    page: int
    pages: int


def public_ideas(query: Any, publish: str, *, status: str | None = None) -> Any:
    """Only what the public board shows (`public_clause`: not hidden; published under
    KOMINN_PUBLISH=after-review); merged ideas live on in the idea they were merged into, so
    they are listed only when asked for by status."""
    query = query.where(public_clause(publish))
    if status:
        return query.where(Idea.status == status)
    return query.where(Idea.status != Status.MERGED.value)


class Totals:
    """How many ideas a filter matches, remembered for `ttl` seconds: counting 100,000 rows
    is most of a board page's time, and the page itself is cacheable for a minute anyway."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._seen: dict[tuple[str, str | None, str | None], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None, str | None], count: Callable[[], int]) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        total = count()
        with self._lock:
            self._seen[key] = (now, total)
        return total


def listing(session: Session, publish: str, *, status: str | None, area: str | None,
            ranked: list[int] | None, text: str | None, page: int,
            totals: Totals | None = None) -> Listing:
    """One page of the board. `ranked`: idea numbers best first (a search); `text`: the
    plain-text fallback when the ranking found nothing; `totals`: counts of the unsearched
    board, remembered briefly."""
    columns = select(col(Idea.id), col(Idea.title), col(Idea.status), col(Idea.focus_area),
                     col(Idea.created_at))  # type: ignore[call-overload]
    count = select(func.count()).select_from(Idea)
    filters: list[Any] = []
    if area:
        filters.append(Idea.focus_area == area)
    if ranked is not None:
        filters.append(Idea.id.in_(ranked))  # type: ignore[union-attr]
    elif text:
        like = f"%{text.casefold()}%"
        filters.append(or_(func.lower(Idea.title).like(like),
                           func.lower(Idea.description).like(like)))
    columns = public_ideas(columns.where(*filters), publish, status=status)
    count = public_ideas(count.where(*filters), publish, status=status)
    if totals is not None and ranked is None and not text:
        total = totals.get((publish, status, area), lambda: session.exec(count).one())
    else:
        total = session.exec(count).one()
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 1), pages)
    if ranked is not None:
        found = {row[0]: row for row in session.exec(columns)}
        ordered = [found[n] for n in ranked if n in found]
        chosen = ordered[(page - 1) * PAGE:page * PAGE]
    else:
        chosen = list(session.exec(columns.order_by(
            Idea.created_at.desc(), Idea.id.desc())  # type: ignore[attr-defined,union-attr]
            .offset((page - 1) * PAGE).limit(PAGE)))
    counts = supporter_counts(session, [row[0] for row in chosen])
    rows = [Row(r[0], format_ref(r[0]), r[1], r[2], r[3], r[4], counts.get(r[0], 0))
            for r in chosen]
    return Listing(rows, total, page, pages)


def supporter_counts(session: Session, numbers: list[int]) -> dict[int, int]:
    if not numbers:
        return {}
    query = select(Support.idea_id, func.count()).where(
        col(Support.idea_id).in_(numbers)).group_by(col(Support.idea_id))
    return {idea_id: count for idea_id, count in session.exec(query)}


class Board:
    def __init__(self, runtime: Runtime, renderer: Renderer, sessions: Sessions,
                 respond: Callable[..., Response]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.renderer = renderer
        self.sessions = sessions
        self.respond = respond
        self.totals = Totals()

    async def listing_page(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.settings.locale)
        params = request.query_params
        status = params.get("status") if params.get("status") in STATUSES else None
        areas = list(self.settings.focus_areas)
        area = params.get("omrade") if params.get("omrade") in areas else None
        query = (params.get("q") or "").strip()[:200]
        try:
            page = int(params.get("side") or 1)
        except ValueError:
            page = 1

        def read() -> Listing:
            ranked = None
            if query:
                ranked = [n for n, _ in self.runtime.index.similar(query, "", SEARCH_LIMIT)]
            with Session(self.runtime.db) as db:
                return listing(db, self.settings.publish, status=status, area=area,
                               ranked=ranked or None, text=query or None, page=page,
                               totals=self.totals)

        found = await asyncio.to_thread(read)
        html = self.renderer.page(
            "board.html", language, page="board", listing=found, statuses=STATUSES,
            areas=areas, status=status or "", area=area or "", query=query,
            link=lambda n: _page_link(status, area, query, n))
        return self.respond(request, session, html, public=True)

    async def one(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.settings.locale)
        number = parse_ref(request.path_params["ref"])
        view = await asyncio.to_thread(self._idea, number) if number is not None else None
        if view is None:
            html = self.renderer.page("not_found.html", language, page="board",
                                      ref=request.path_params["ref"][:20])
            return self.respond(request, session, html, public=True, status=404)
        html = self.renderer.page("idea.html", language, page="board", **view,
                                  can_support=view["idea"].status in {s.value for s in OPEN})
        return self.respond(request, session, html, public=True)

    def _idea(self, number: int) -> dict[str, Any] | None:
        with Session(self.runtime.db) as db:
            idea = db.get(Idea, number)
            if idea is None or not is_public(idea, self.settings.publish):
                return None
            history = book.history(db, number)
            public = {"ref": format_ref(number), "title": idea.title,
                      "description": idea.description, "focus_area": idea.focus_area,
                      "place": idea.place, "status": idea.status,
                      "created_at": idea.created_at,
                      "merged_into": format_ref(idea.merged_into_id)
                      if idea.merged_into_id else None}
            moves = [{"status": c.to_status, "at": c.at, "note": c.note} for c in history]
            supporters = book.supporter_count(db, number)
            title, description = idea.title, idea.description
        similar = self._similar(number, title, description)
        return {"idea": _Obj(public), "history": moves, "supporters": supporters,
                "similar": similar}

    def _similar(self, number: int, title: str, description: str) -> list[Row]:
        """Similar ideas as the chat offers them (at or above the dedup threshold)."""
        index = self.runtime.index
        numbers = [n for n, score in index.similar(title, description, 4)
                   if n != number and score >= index.dedup_threshold][:3]
        if not numbers:
            return []
        with Session(self.runtime.db) as db:
            found = listing(db, self.settings.publish, status=None, area=None,
                            ranked=numbers, text=None, page=1)
        return found.rows


class _Obj:
    """A dict read with attributes in templates."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _page_link(status: str | None, area: str | None, query: str, page: int) -> str:
    from urllib.parse import urlencode

    params = {k: v for k, v in (("status", status), ("omrade", area), ("q", query),
                                ("side", str(page) if page > 1 else None)) if v}
    return "/ideer" + ("?" + urlencode(params) if params else "")
