"""The public idea board: `/ideer` (newest first, 20 a page, filters by status and focus area,
a search ranked by the duplicate detector) and `/ideer/KI-n` (one idea, its public history,
supporters count, similar ideas and "Støtt idéen").

Public means: titles, descriptions, focus areas, places, statuses, dates, public notes and
counts. Never a name, a channel id, a contact or coordinates (a location shared from a phone
may be the citizen's home). `bot.ideas.book.public_clause` is the one rule for which ideas are
shown; the page's queries are `bot.ideas.listing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.web.render import Renderer
from adapters.web.session import Sessions, choose_language
from bot.ideas import book
from bot.ideas.book import is_public
from bot.ideas.listing import SEARCH_LIMIT, Listing, Row, listing
from bot.runtime import Runtime
from dialogs.lifecycle import OPEN, Status
from dialogs.refs import format_ref, parse_ref
from storage.models import Idea, Person

STATUSES = tuple(s.value for s in Status)


class Board:
    def __init__(self, runtime: Runtime, renderer: Renderer, sessions: Sessions,
                 respond: Callable[..., Response]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.renderer = renderer
        self.sessions = sessions
        self.respond = respond

    async def listing_page(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.settings.locale)
        params = request.query_params
        status = params.get("status") if params.get("status") in STATUSES else None
        areas = list(self.settings.focus_areas)
        area = params.get("omrade") if params.get("omrade") in areas else None
        query = (params.get("q") or "").strip()[:200]
        page = _number(params.get("side")) or 1
        after, before = parse_ref(params.get("etter") or ""), parse_ref(params.get("foer") or "")
        wanted = parse_ref(query)
        if wanted is not None and await asyncio.to_thread(self._public, wanted):
            # A reference ("KI-5", "ki 5": what receipts and notices give) is that idea.
            return self.respond(request, session, RedirectResponse(
                f"/ideer/{format_ref(wanted)}", 303), public=True)

        def read() -> Listing:
            ranked = None
            if query:
                ranked = [n for n, _ in self.runtime.index.similar(query, "", SEARCH_LIMIT)]
            with Session(self.runtime.db) as db:
                return listing(db, self.settings.publish, status=status, area=area,
                               ranked=ranked or None, text=query or None, page=page,
                               after=after, before=before)

        found = await asyncio.to_thread(read)
        html = self.renderer.page(
            "board.html", language, page="board", listing=found, statuses=STATUSES,
            areas=areas, status=status or "", area=area or "", query=query,
            keep_query=_keep_query(request),
            link=lambda n, edge=None, ref=None: _page_link(status, area, query, n, edge, ref))
        return self.respond(request, session, html, public=True)

    async def one(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.settings.locale)
        number = parse_ref(request.path_params["ref"])
        view = await asyncio.to_thread(self._idea, number, session.uid) \
            if number is not None else None
        if view is None:
            html = self.renderer.page("not_found.html", language, page="board",
                                      ref=request.path_params["ref"][:20])
            return self.respond(request, session, html, public=True, status=404)
        pending = view.pop("pending")
        html = self.renderer.page("idea.html", language, page="board", **view, pending=pending,
                                  can_support=not pending
                                  and view["idea"].status in {s.value for s in OPEN})
        return self.respond(request, session, html, public=not pending)

    def _public(self, number: int) -> bool:
        with Session(self.runtime.db) as db:
            idea = db.get(Idea, number)
            return idea is not None and is_public(idea, self.settings.publish)

    def _idea(self, number: int, uid: str | None) -> dict[str, Any] | None:
        """The idea's public view; for its author (this browser's web citizen) also while it
        waits for review under KOMINN_PUBLISH=after-review (`pending`: only they see it)."""
        with Session(self.runtime.db) as db:
            idea = db.get(Idea, number)
            if idea is None or idea.hidden_at is not None:
                return None
            pending = not is_public(idea, self.settings.publish)
            if pending and not (uid and idea.author_id is not None
                                and _person_id(db, uid) == idea.author_id):
                return None
            history = book.history(db, number)
            public = {"ref": format_ref(number), "title": idea.title,
                      "description": idea.description, "focus_area": idea.focus_area,
                      "place": idea.place, "status": idea.status,
                      "created_at": idea.created_at,
                      "merged_into": format_ref(idea.merged_into_id)
                      if idea.merged_into_id else None, "merged_title": None}
            if idea.merged_into_id:
                into = db.get(Idea, idea.merged_into_id)
                if into is not None and is_public(into, self.settings.publish):
                    public["merged_title"] = into.title
            # Older merges noted "→ KI-n" (the target, which the page names anyway).
            moves = [{"status": c.to_status, "at": c.at,
                      "note": None if c.note == f"→ {public['merged_into']}" else c.note}
                     for c in history]
            supporters = book.supporter_count(db, number)
            title, description = idea.title, idea.description
        similar = self._similar(number, title, description)
        return {"idea": _Obj(public), "history": moves, "supporters": supporters,
                "similar": [] if pending else similar, "pending": pending}

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


def _person_id(db: Session, uid: str) -> int | None:
    return db.exec(select(Person.id).where(Person.channel == "web",
                                           Person.channel_user_id == uid)).first()


class _Obj:
    """A dict read with attributes in templates."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _keep_query(request: Request) -> str:
    """The page's own parameters but `lang`, ready for a language link to add its own (the
    same list, search and page in another language)."""
    from urllib.parse import urlencode

    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return urlencode(kept) + "&" if kept else ""


def _page_link(status: str | None, area: str | None, query: str, page: int,
               edge: str | None = None, ref: str | None = None) -> str:
    """A page's address: the filters, its number and — from "next" / "previous" — the idea at
    its edge to seek from (`etter=KI-n` / `foer=KI-n`; a search pages by number alone)."""
    from urllib.parse import urlencode

    seek = (edge, ref) if edge in ("etter", "foer") and ref and not query else (None, None)
    params = {k: v for k, v in (("status", status), ("omrade", area), ("q", query),
                                ("side", str(page) if page > 1 else None), seek) if k and v}
    return "/ideer" + ("?" + urlencode(params) if params else "")
