"""The moderators' triage queue of suspected duplicates: show the next pending pair, decide it.

Channel-neutral (Slack is the first user). A decision is taken with a conditional
`UPDATE … WHERE state = 'pending'` as the first statement of its transaction, so when two
moderators press at the same moment exactly one UPDATE hits the row: PostgreSQL makes the
second wait for the first commit and then re-checks the condition; SQLite lets one writer at a
time. The loser learns who decided instead (`AlreadyDecided`), and nothing is done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bot.ideas import book
from dialogs.refs import format_ref
from dialogs.text import shorten
from storage.db import transaction
from storage.models import DedupDecision, DuplicateCandidate, Idea, utcnow

PENDING = "pending"
MERGED: Final = "merged"
NOT_DUPLICATE: Final = "not_duplicate"
Decision = Literal["merged", "not_duplicate"]
EXCERPT_LINES, EXCERPT_CHARS = 3, 280


@dataclass(frozen=True)
class IdeaCard:
    """One side of a pair, as a moderator needs to judge it."""

    number: int
    ref: str
    title: str
    excerpt: str
    status: str
    supporters: int
    created_at: datetime
    focus_area: str | None


@dataclass(frozen=True)
class Pair:
    id: int
    a: IdeaCard
    b: IdeaCard
    score: float
    state: str
    decided_by: str | None
    decided_at: datetime | None
    kept: str | None = None  # after a merge: the ref of the idea that stayed

    @property
    def older(self) -> IdeaCard:
        """The idea kept by default: the one submitted first."""
        return min((self.a, self.b), key=lambda c: (c.created_at, c.number))

    @property
    def newer(self) -> IdeaCard:
        return self.b if self.older is self.a else self.a

    def card(self, number: int) -> IdeaCard | None:
        return next((c for c in (self.a, self.b) if c.number == number), None)


class PairNotFound(LookupError):
    pass


class AlreadyDecided(Exception):
    """Someone else decided this pair first; `pair` says who and what."""

    def __init__(self, pair: Pair) -> None:
        super().__init__(f"pair {pair.id} already {pair.state}")
        self.pair = pair


def excerpt(text: str) -> str:
    """The first few lines of a description, shortened."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return shorten("\n".join(lines[:EXCERPT_LINES]), EXCERPT_CHARS)


def card(session: Session, idea: Idea) -> IdeaCard:
    return IdeaCard(number=idea.id or 0, ref=format_ref(idea.id or 0), title=idea.title,
                    excerpt=excerpt(idea.description), status=idea.status,
                    supporters=book.supporter_count(session, idea.id or 0),
                    created_at=idea.created_at, focus_area=idea.focus_area)


def pair_of(session: Session, cand: DuplicateCandidate) -> Pair:
    a = session.get(Idea, cand.idea_a_id)
    b = session.get(Idea, cand.idea_b_id)
    if a is None or b is None:  # pragma: no cover - foreign keys keep both
        raise PairNotFound(f"pair {cand.id} names a missing idea")
    kept = None
    if cand.state == MERGED:
        dropped = a if a.merged_into_id == b.id else b
        kept = format_ref(dropped.merged_into_id or 0)
    return Pair(id=cand.id or 0, a=card(session, a), b=card(session, b), score=cand.score,
                state=cand.state, decided_by=cand.decided_by, decided_at=cand.decided_at,
                kept=kept)


def queue_length(session: Session) -> int:
    return session.exec(select(func.count()).select_from(DuplicateCandidate)
                        .where(DuplicateCandidate.state == PENDING)).one()


def precision(session: Session) -> tuple[int, int]:
    """(pairs merged, pairs decided): the share of queued pairs moderators judged duplicates."""
    rows = dict(session.exec(select(DuplicateCandidate.state, func.count())
                             .where(col(DuplicateCandidate.state).in_((MERGED, NOT_DUPLICATE)))
                             .group_by(DuplicateCandidate.state)).all())
    merged = rows.get(MERGED, 0)
    return merged, merged + rows.get(NOT_DUPLICATE, 0)


def next_pair(session: Session, after: int | None = None) -> Pair | None:
    """The oldest pending pair; with `after` (Hopp over) the next one after it, wrapping
    around to the start but never back to `after` itself. Skipping leaves a pair pending."""
    pending = select(DuplicateCandidate).where(DuplicateCandidate.state == PENDING)
    cand = None
    if after is not None:
        cand = session.exec(pending.where(col(DuplicateCandidate.id) > after)
                            .order_by(col(DuplicateCandidate.id)).limit(1)).first()
        pending = pending.where(col(DuplicateCandidate.id) != after)
    if cand is None:
        cand = session.exec(pending.order_by(col(DuplicateCandidate.id)).limit(1)).first()
    return pair_of(session, cand) if cand is not None else None


def get_pair(session: Session, pair_id: int) -> Pair:
    cand = session.get(DuplicateCandidate, pair_id)
    if cand is None:
        raise PairNotFound(f"no pair {pair_id}")
    return pair_of(session, cand)


def decide(session: Session, ideas: book.IdeaBook, pair_id: int, decision: Decision, *,
           by: str, keep: int | None = None, at: datetime | None = None) -> Pair:
    """Decide a pending pair once. `merged` merges the other idea into `keep` (default: the
    older one), moving its author and supporters and recording history (`IdeaBook.merge`).
    Raises `AlreadyDecided` if someone was first, `PairNotFound`, or `MoveNotAllowed` when the
    lifecycle forbids the merge (the caller's transaction then rolls the claim back)."""
    now = at or utcnow()
    claimed = session.exec(update(DuplicateCandidate)
                           .where(col(DuplicateCandidate.id) == pair_id,
                                  col(DuplicateCandidate.state) == PENDING)
                           .values(state=decision, decided_by=by[:100], decided_at=now)
                           .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise AlreadyDecided(get_pair(session, pair_id))
    cand = session.exec(select(DuplicateCandidate).where(DuplicateCandidate.id == pair_id)
                        .execution_options(populate_existing=True)).one()
    a, b = session.get(Idea, cand.idea_a_id), session.get(Idea, cand.idea_b_id)
    assert a is not None and b is not None
    # the decision as a labelled pair for `kominn dedup calibrate`: texts as they are now
    session.add(DedupDecision(candidate_id=pair_id, title_a=a.title, description_a=a.description,
                              title_b=b.title, description_b=b.description,
                              duplicate=decision == MERGED, score=cand.score, decided_at=now))
    if decision == MERGED:
        older, newer = sorted((a, b), key=lambda i: (i.created_at, i.id or 0))
        if keep is None or keep == older.id:
            kept, dropped = older, newer
        elif keep == newer.id:
            kept, dropped = newer, older
        else:
            raise PairNotFound(f"KI-{keep} is not part of pair {pair_id}")
        ideas.merge(session, dropped, kept, by=by)
    session.flush()
    return pair_of(session, cand)


# --- units of work for adapters (one transaction each) ----------------------------------------

def pending_count(db: DbEngine) -> int:
    with Session(db) as session:
        return queue_length(session)


def show_next(db: DbEngine, after: int | None = None) -> Pair | None:
    with Session(db) as session:
        return next_pair(session, after)


def decide_pair(db: DbEngine, ideas: book.IdeaBook, pair_id: int, decision: Decision, *,
                by: str, keep: int | None = None) -> tuple[Pair, list[Idea]]:
    """Decide in its own transaction; returns the pair and the ideas whose status changed
    (for the similar-ideas index)."""
    with transaction(db) as session:
        pair = decide(session, ideas, pair_id, decision, by=by, keep=keep)
        changed = [i for i in (session.get(Idea, pair.a.number), session.get(Idea, pair.b.number))
                   if i is not None]
        return pair, changed
