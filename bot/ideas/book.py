"""The idea book: every idea's record, and every change to it.

Changes go through one `IdeaBook` (engine, CLI, Slack and import alike), so the lifecycle
rules, the audit history and what follows a change (follow-up notices, the Slack ideas channel)
are the same whoever acts. What follows is the book's `IdeaListeners`, given when the runtime
is assembled (`bot.features.assemble`); listeners run inside the caller's transaction, so a
notice exists exactly when its change does. Reading needs no book: the queries here are plain
functions over a session."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from dialogs.lifecycle import MoveNotAllowed, Status, check_move
from dialogs.refs import format_ref, parse_ref
from storage.db import scrub_after_commit
from storage.models import (
    BenefitAnswer,
    CollabAnswer,
    DialogState,
    DuplicateCandidate,
    Idea,
    Person,
    ProcessedUpdate,
    StatusChange,
    Support,
    utcnow,
)

ANONYMOUS = "innbygger"


class IdeaNotFound(LookupError):
    pass


@dataclass(frozen=True)
class NewIdea:
    title: str
    description: str
    channel: str
    focus_area: str | None = None
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    author_id: int | None = None
    campaign_id: int | None = None
    created_at: datetime | None = None


def public_clause(publish: str) -> Any:
    """Which ideas public views show (board, idea pages, Open311, export, the similar ideas
    offered to citizens): not hidden, and — under KOMINN_PUBLISH=after-review — published."""
    visible = Idea.hidden_at.is_(None)  # type: ignore[union-attr]
    if publish == "after-review":
        return and_(visible, Idea.published_at.is_not(None))  # type: ignore[union-attr]
    return visible


def is_public(idea: Idea, publish: str) -> bool:
    return idea.hidden_at is None and (publish != "after-review" or idea.published_at is not None)


def ref_of(idea: Idea) -> str:
    assert idea.id is not None
    return format_ref(idea.id)


def get_idea(session: Session, ref: str | int) -> Idea:
    number = ref if isinstance(ref, int) else parse_ref(ref)
    idea = session.get(Idea, number) if number is not None else None
    if idea is None:
        raise IdeaNotFound(f"no idea {ref if isinstance(ref, str) else format_ref(ref)}")
    return idea


def supporters(session: Session, idea_id: int) -> list[Support]:
    return list(session.exec(select(Support).where(Support.idea_id == idea_id)
                             .order_by(col(Support.created_at))))


def supporter_count(session: Session, idea_id: int) -> int:
    return session.exec(select(func.count()).select_from(Support)
                        .where(Support.idea_id == idea_id)).one()


def supporter_counts(session: Session, idea_ids: list[int]) -> dict[int, int]:
    """Supporters of each of `idea_ids` in one grouped query (ideas without any are absent):
    the board's rows and the open-data export's batches."""
    if not idea_ids:
        return {}
    query = (select(Support.idea_id, func.count()).where(col(Support.idea_id).in_(idea_ids))
             .group_by(col(Support.idea_id)))
    return {idea_id: count for idea_id, count in session.exec(query)}


def history(session: Session, idea_id: int) -> list[StatusChange]:
    return list(session.exec(select(StatusChange).where(StatusChange.idea_id == idea_id)
                             .order_by(col(StatusChange.at), col(StatusChange.id))))


def _ensure_support(session: Session, idea_id: int, person_id: int) -> None:
    exists = session.exec(select(Support).where(
        Support.idea_id == idea_id, Support.person_id == person_id)).first()
    if not exists:
        session.add(Support(idea_id=idea_id, person_id=person_id))


def _retarget_candidates(session: Session, old_id: int, new_id: int) -> None:
    """Pending pairs that named the merged idea now name the kept one (never a self-pair,
    never a second row for the same pair)."""
    pending = session.exec(select(DuplicateCandidate).where(
        DuplicateCandidate.state == "pending",
        or_(col(DuplicateCandidate.idea_a_id) == old_id,
            col(DuplicateCandidate.idea_b_id) == old_id))).all()
    for cand in pending:
        a = new_id if cand.idea_a_id == old_id else cand.idea_a_id
        b = new_id if cand.idea_b_id == old_id else cand.idea_b_id
        if a == b or (a, b) == (cand.idea_a_id, cand.idea_b_id):
            cand.state = "resolved"
        else:
            low, high = sorted((a, b))
            clash = session.exec(select(DuplicateCandidate).where(
                DuplicateCandidate.idea_a_id == low, DuplicateCandidate.idea_b_id == high)).first()
            if clash:
                cand.state = "resolved"
            else:
                cand.idea_a_id, cand.idea_b_id = low, high
        session.add(cand)
    session.flush()


def queue_candidates(session: Session, idea_id: int, matches: list[tuple[int, float]]) -> int:
    """Queue (idea, match) pairs in one round trip: one query for the pairs already known,
    one insert for the rest. Returns how many were new."""
    pairs = {tuple(sorted((idea_id, number))): score for number, score in matches
             if number != idea_id}
    if not pairs:
        return 0
    known = {tuple(k) for k in session.execute(_KNOWN_PAIRS, {"idea": idea_id})}
    new = [pair for pair in pairs if pair not in known]
    if new:
        now = utcnow()
        session.execute(_INSERT_PAIR, [
            {"idea_a_id": a, "idea_b_id": b, "score": pairs[(a, b)], "state": "pending",
             "created_at": now, "decided_by": None, "decided_at": None} for a, b in new])
    return len(new)


# Built once: every submitted idea runs these (constructing them costs more than running them).
_PAIRS = DuplicateCandidate.__table__  # type: ignore[attr-defined]
_KNOWN_PAIRS = sa_select(_PAIRS.c.idea_a_id, _PAIRS.c.idea_b_id).where(
    or_(_PAIRS.c.idea_a_id == bindparam("idea"), _PAIRS.c.idea_b_id == bindparam("idea")))
_INSERT_PAIR = insert(_PAIRS)


def ideas_of(session: Session, person_id: int) -> list[tuple[Idea, str]]:
    """The person's own ideas and the ideas they support, newest first."""
    own = session.exec(select(Idea).where(Idea.author_id == person_id)).all()
    backed = session.exec(select(Idea).join(Support, col(Support.idea_id) == Idea.id)
                          .where(Support.person_id == person_id)).all()
    pairs = [(i, "author") for i in own] + [(i, "supporter") for i in backed]
    return sorted(pairs, key=lambda p: p[0].created_at, reverse=True)


def personal_data(session: Session, person: Person) -> dict[str, Any]:
    """Everything held about one person (the `/data` answer, GDPR art. 15)."""
    state = session.exec(select(DialogState).where(DialogState.person_id == person.id)).all()
    answers = session.exec(select(BenefitAnswer).where(BenefitAnswer.person_id == person.id)).all()
    collab = session.exec(select(CollabAnswer).where(CollabAnswer.person_id == person.id)).all()
    return {
        "person": {
            "channel": person.channel, "channel_user_id": person.channel_user_id,
            "chat_id": person.chat_id, "display_name": person.display_name,
            "email": person.email,
            "language": person.language, "follow_up_consent": person.follow_up_consent,
            "invite_consent": person.invite_consent, "created_at": person.created_at.isoformat(),
        },
        "ideas": [_idea_dict(i) for i, rel in ideas_of(session, person.id or 0) if rel == "author"],
        "supports": [ref_of(i) for i, rel in ideas_of(session, person.id or 0)
                     if rel == "supporter"],
        "benefit_answers": [{"idea": format_ref(a.idea_id), "answer": a.answer,
                             "comment": a.comment, "at": a.at.isoformat()} for a in answers],
        "collaboration_answers": [{"invite": c.invite_id, "answer": c.answer,
                                   "at": c.at.isoformat()} for c in collab],
        "dialogs": [{"flow": s.flow, "step": s.step, "data": json.loads(s.data or "{}"),
                     "updated_at": s.updated_at.isoformat()} for s in state],
    }


def _idea_dict(idea: Idea) -> dict[str, Any]:
    return {"ref": ref_of(idea), "title": idea.title, "description": idea.description,
            "focus_area": idea.focus_area, "place": idea.place, "latitude": idea.latitude,
            "longitude": idea.longitude, "status": idea.status,
            "created_at": idea.created_at.isoformat()}


def forget_updates(session: Session, channel: str, user_id: str) -> None:
    """Processed-update rows name the channel user id and hold replies: both go on erasure,
    but the update ids stay, so an old update delivered again is still not handled twice."""
    for row in session.exec(select(ProcessedUpdate).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.user_id == user_id)):
        row.user_id = None
        row.replies = None
        row.sending_until = None  # nothing left to send
        session.add(row)


@dataclass(frozen=True)
class IdeaListeners:
    """What follows a change to an idea, run inside its transaction; joined with `+` from
    the contributions of each feature (bot/wiring.py)."""

    created: tuple[Callable[[Session, Idea], None], ...] = ()
    supported: tuple[Callable[[Session, Idea, int], None], ...] = ()
    status_changed: tuple[Callable[[Session, Idea, StatusChange], None], ...] = ()
    merged: tuple[Callable[[Session, Idea, Idea, StatusChange], None], ...] = ()
    erased: tuple[Callable[[Session, Person], None], ...] = ()
    hidden: tuple[Callable[[Session, Idea], None], ...] = ()
    shown: tuple[Callable[[Session, Idea], None], ...] = ()  # shown again after `hidden`

    def __add__(self, other: IdeaListeners) -> IdeaListeners:
        return IdeaListeners(*(getattr(self, f) + getattr(other, f) for f in _LISTENER_FIELDS))


_LISTENER_FIELDS = ("created", "supported", "status_changed", "merged", "erased", "hidden",
                    "shown")


@dataclass(frozen=True)
class IdeaBook:
    """Every change to ideas, followed by its listeners. Built once per runtime."""

    listeners: IdeaListeners = field(default_factory=IdeaListeners)

    def create_idea(self, session: Session, new: NewIdea, *, by: str) -> Idea:
        """Store a new idea with its first history row (→ new)."""
        now = new.created_at or utcnow()
        idea = Idea(
            title=new.title, description=new.description, focus_area=new.focus_area,
            place=new.place, latitude=new.latitude, longitude=new.longitude, channel=new.channel,
            author_id=new.author_id, campaign_id=new.campaign_id, status=Status.NEW.value,
            created_at=now, updated_at=now, status_changed_at=now,
        )
        session.add(idea)
        session.flush()
        assert idea.id is not None  # the flush gave it its number
        session.add(StatusChange(idea_id=idea.id, from_status=None, to_status=Status.NEW.value,
                                 at=now, by=by))
        for listener in self.listeners.created:
            listener(session, idea)
        return idea

    def add_support(self, session: Session, idea: Idea, person_id: int) -> bool:
        """Back an idea; False if already supported (or it is the person's own idea)."""
        if idea.author_id == person_id:
            return False
        assert idea.id is not None
        exists = session.exec(select(Support).where(
            Support.idea_id == idea.id, Support.person_id == person_id)).first()
        if exists:
            return False
        session.add(Support(idea_id=idea.id, person_id=person_id))
        session.flush()
        for listener in self.listeners.supported:
            listener(session, idea, person_id)
        return True

    def set_status(self, session: Session, idea: Idea, target: Status, *, by: str,
                   note: str | None = None, at: datetime | None = None) -> StatusChange:
        """A lifecycle move; refused (`MoveNotAllowed`) unless the strategy allows it.
        Use `merge()` to mark a duplicate: it needs the idea it is merged into."""
        if target is Status.MERGED:
            raise MoveNotAllowed("use merge to mark an idea as a duplicate of another")
        current = Status(idea.status)
        check_move(current, target, note)
        return self._record_move(session, idea, current, target, by=by, note=note, at=at)

    def _record_move(self, session: Session, idea: Idea, current: Status, target: Status, *,
                     by: str, note: str | None, at: datetime | None) -> StatusChange:
        now = at or utcnow()
        note = (note or "").strip() or None
        idea.status = target.value
        idea.status_changed_at = now
        idea.updated_at = now
        idea.public_note = note  # the note explains this move; an older one would mislead
        assert idea.id is not None
        idea.published_at = idea.published_at or now  # a moderator has looked at it
        change = StatusChange(idea_id=idea.id, from_status=current.value, to_status=target.value,
                              at=now, by=by, note=note)
        session.add(idea)
        session.add(change)
        session.flush()
        for listener in self.listeners.status_changed:
            listener(session, idea, change)
        return change

    def hide(self, session: Session, idea: Idea, reason: str, *, by: str) -> bool:
        """Take an idea off every public view (board, Open311, export, the similar ideas shown
        to citizens) with a reason its author is told; `unhide` puts it back. False if it
        was hidden already (nothing changes: the author was told once)."""
        reason = reason.strip()
        if not reason:
            raise ValueError("hiding an idea needs a reason (the author is told)")
        if idea.hidden_at is not None:
            return False
        idea.hidden_at = utcnow()
        idea.hidden_reason = reason
        idea.updated_at = idea.hidden_at
        session.add(idea)
        session.flush()
        for listener in self.listeners.hidden:
            listener(session, idea)
        return True

    def unhide(self, session: Session, idea: Idea, *, by: str) -> bool:
        """Show a hidden idea again (its author is told); False if it was not hidden."""
        if idea.hidden_at is None:
            return False
        idea.hidden_at = None
        idea.hidden_reason = None
        idea.updated_at = utcnow()
        session.add(idea)
        session.flush()
        for listener in self.listeners.shown:
            listener(session, idea)
        return True

    def publish(self, session: Session, idea: Idea, *, by: str) -> None:
        """"Publiser": show a new idea publicly under KOMINN_PUBLISH=after-review."""
        idea.published_at = idea.published_at or utcnow()
        session.add(idea)

    def merge(self, session: Session, idea: Idea, into: Idea, *, by: str, note: str | None = None,
              at: datetime | None = None) -> StatusChange:
        """Mark `idea` a duplicate of `into`: its author and supporters now back `into`, and
        pending duplicate candidates that pointed at it follow the kept idea."""
        if idea.id == into.id:
            raise MoveNotAllowed("an idea cannot be merged into itself")
        assert idea.id is not None and into.id is not None
        if Status(into.status) is Status.MERGED:
            raise MoveNotAllowed(
                f"{ref_of(into)} is itself merged; merge into the idea it points at")
        current = Status(idea.status)
        check_move(current, Status.MERGED)
        followers = [s.person_id for s in supporters(session, idea.id)]
        if idea.author_id is not None:
            followers.insert(0, idea.author_id)
        for person_id in followers:
            if person_id != into.author_id:
                _ensure_support(session, into.id, person_id)
        idea.merged_into_id = into.id
        into.updated_at = utcnow()
        session.add(into)
        _retarget_candidates(session, idea.id, into.id)
        change = self._record_move(session, idea, current, Status.MERGED, by=by,
                              note=note, at=at)  # the target is `merged_into_id`
        for listener in self.listeners.merged:
            listener(session, idea, into, change)
        return change

    def erase_person(self, session: Session, person: Person) -> None:
        """Right to erasure: personal fields go, ideas stay as public records by "innbygger",
        supports stay (counts are kept) but point at an anonymous person."""
        person.display_name = None
        person.language = None
        person.chat_id = None
        person.email = None
        person.follow_up_consent = False
        person.invite_consent = False
        user_id = person.channel_user_id
        person.channel_user_id = f"erased-{person.id}"
        person.erased_at = utcnow()
        session.add(person)
        for row in session.exec(select(DialogState).where(or_(
                col(DialogState.person_id) == person.id,
                (col(DialogState.channel) == person.channel)
                & (col(DialogState.user_id) == user_id)))):
            session.delete(row)
        session.flush()
        scrub_after_commit(session)  # SQLite: nothing of the old rows left in the WAL
        for listener in self.listeners.erased:
            listener(session, person)

