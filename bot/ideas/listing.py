"""The public board's reads (`/ideer`): one page of public ideas, newest first, filtered by
status and focus area or ranked by a search, with how many match.

What it costs at 100,000 ideas (benchmarks/web_load.py prints it per filter, cold and warm):

* the count reads the covering index `ix_idea_board_count` (status, focus_area, hidden_at,
  published_at: the filters and `book.public_clause`'s columns), never the table's rows;
* a page reached by "next" or "previous" seeks from the idea at its edge (`after` / `before`:
  keyset paging on the (created_at, id) order that `ix_idea_created_id` and the filter indexes
  serve), so page 5,000 costs what page 2 does; a page asked for by number alone skips rows
  from whichever end of the list is nearer, so at most half the list.

Nothing is remembered between requests: every count is exact when the page is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, tuple_
from sqlmodel import Session, col, select

from bot.ideas.book import public_clause, supporter_counts
from dialogs.lifecycle import Status
from dialogs.refs import format_ref
from storage.models import Idea

PAGE = 20
SEARCH_LIMIT = 200  # ideas a search considers (ranked by the duplicate detector, or by title)


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


LISTED = tuple(s.value for s in Status if s is not Status.MERGED)


def public_ideas(query: Any, publish: str, *, status: str | None = None,
                 counting: bool = False) -> Any:
    """Only what the public board shows (`public_clause`: not hidden; published under
    KOMINN_PUBLISH=after-review); merged ideas live on in the idea they were merged into, so
    they are listed only when asked for by status.

    `counting`: "not merged" said as "one of the other statuses", so that a count by focus
    area seeks `ix_idea_board_count` once per status (SQLite without ANALYZE statistics
    otherwise reads every row of the area); a page keeps `!=`, which lets the order's index
    serve it (with IN, SQLite sorts the whole list)."""
    query = query.where(public_clause(publish))
    if status:
        return query.where(Idea.status == status)
    if counting:
        return query.where(col(Idea.status).in_(LISTED))
    return query.where(Idea.status != Status.MERGED.value)


_NEWEST = (col(Idea.created_at).desc(), col(Idea.id).desc())
_OLDEST = (col(Idea.created_at).asc(), col(Idea.id).asc())


def listing(session: Session, publish: str, *, status: str | None, area: str | None,
            ranked: list[int] | None, text: str | None, page: int,
            after: int | None = None, before: int | None = None) -> Listing:
    """One page of the board. `ranked`: idea numbers best first (a search); `text`: the
    plain-text fallback when the ranking found nothing (the newest `SEARCH_LIMIT` titles
    that hold it);
    `after` / `before`: the idea just before (after) this page in the list, from a "next"
    ("previous") link, to seek from."""
    columns = select(col(Idea.id), col(Idea.title), col(Idea.status), col(Idea.focus_area),
                     col(Idea.created_at))  # type: ignore[call-overload]
    count = select(func.count()).select_from(Idea)
    filters: list[Any] = []
    if area:
        filters.append(Idea.focus_area == area)
    if ranked is not None:
        filters.append(col(Idea.id).in_(ranked))
    elif text:
        ranked = _title_matches(session, publish, status, filters, text)
        filters.append(col(Idea.id).in_(ranked))
    columns = public_ideas(columns.where(*filters), publish, status=status)
    total = session.exec(public_ideas(count.where(*filters), publish, status=status,
                                       counting=True)).one()
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 1), pages)
    if ranked is not None:
        found = {row[0]: row for row in session.exec(columns)}
        chosen = [found[n] for n in ranked if n in found][(page - 1) * PAGE:page * PAGE]
    else:
        chosen = _page(session, columns, total, page, after=after, before=before)
    counts = supporter_counts(session, [row[0] for row in chosen])
    rows = [Row(r[0], format_ref(r[0]), r[1], r[2], r[3], r[4], counts.get(r[0], 0))
            for r in chosen]
    return Listing(rows, total, page, pages)


def _page(session: Session, columns: Any, total: int, page: int, *, after: int | None,
          before: int | None) -> list[Any]:
    edge = _position(session, after if after is not None else before)
    if edge is not None and after is not None:  # "next": the ideas older than the edge
        return list(session.exec(columns.where(_key() < tuple_(*edge))
                                 .order_by(*_NEWEST).limit(PAGE)))
    if edge is not None:  # "previous": the ideas newer than the edge, nearest first
        return list(session.exec(columns.where(_key() > tuple_(*edge))
                                 .order_by(*_OLDEST).limit(PAGE)))[::-1]
    start, end = (page - 1) * PAGE, min(page * PAGE, total)
    if start <= total - end:
        return list(session.exec(columns.order_by(*_NEWEST).offset(start).limit(PAGE)))
    # nearer the oldest end: skip from there and turn the page round
    return list(session.exec(columns.order_by(*_OLDEST).offset(total - end)
                             .limit(end - start)))[::-1]


def _title_matches(session: Session, publish: str, status: str | None, filters: list[Any],
                   text: str) -> list[int]:
    """The newest `SEARCH_LIMIT` public ideas whose title holds `text` (case-insensitive), in
    one walk of the board's order that stops when it has them — as many as a ranked search
    considers. SQLite's LIKE ignores ASCII case by itself (lower() on every title costs three
    times the walk); PostgreSQL's ILIKE."""
    pattern = f"%{_escape(text)}%"
    title = col(Idea.title)
    match = (title.like(pattern, escape="\\") if session.get_bind().dialect.name == "sqlite"
             else title.ilike(pattern, escape="\\"))
    query = public_ideas(select(Idea.id).where(*filters, match), publish, status=status)
    return list(session.exec(query.order_by(*_NEWEST).limit(SEARCH_LIMIT)))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key() -> Any:
    return tuple_(col(Idea.created_at), col(Idea.id))


def _position(session: Session, number: int | None) -> tuple[datetime, int] | None:
    """Where idea `number` stands in the board's order (a hidden one too: only its place in
    the list is used)."""
    if number is None:
        return None
    created = session.exec(select(Idea.created_at).where(Idea.id == number)).first()
    return (created, number) if created is not None else None
