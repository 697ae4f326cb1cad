"""What employees and moderators look up and do from their work chat (Slack today), kept out of
the adapter so it stays thin: status detail, search, lists, the App Home figures, ideas
submitted by employees, and "handle this event once".

Every function is one unit of work on the database and blocking; adapters call them from a
worker thread (`asyncio.to_thread`) after they have acknowledged the request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.dedup.index import SimilarIndex
from bot.dedup.queue import queue_similar
from bot.ideas import book, triage
from bot.ideas.moderation import SetRequest, move
from bot.runtime import Runtime
from dialogs import fields
from dialogs.fields import FormProblem, check_description, check_place, check_title
from dialogs.lifecycle import Status
from dialogs.refs import format_ref, parse_ref
from storage.db import transaction
from storage.models import DuplicateCandidate, Idea, Person, ProcessedUpdate, StatusChange, utcnow

log = logging.getLogger("kominn.staff")

PAGE = 10
NEWEST_ON_HOME = 5


@dataclass(frozen=True)
class IdeaLine:
    """One idea in a list: enough to recognise it and open it."""

    ref: str
    title: str
    status: str
    focus_area: str | None
    created_at: datetime
    supporters: int = 0
    score: float | None = None


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    from_status: str | None
    to_status: str
    by: str
    note: str | None


@dataclass(frozen=True)
class Duplicate:
    """A pending suspected duplicate of the idea (the triage queue), or an idea merged into it."""

    ref: str
    title: str
    score: float | None


@dataclass
class IdeaDetail:
    ref: str
    title: str
    description: str
    status: str
    focus_area: str | None
    place: str | None
    channel: str
    created_at: datetime
    status_changed_at: datetime
    public_note: str | None
    supporters: int
    merged_into: str | None
    history: list[HistoryLine]
    pending_duplicates: list[Duplicate]
    merged_here: list[Duplicate]
    # What the features add (bot/wiring.py StatusExtra: competitions, collaboration answers).
    extras: dict[str, Any] = field(default_factory=dict)
    # KOMINN_PUBLISH=after-review and nobody has moved or published it yet: not public.
    awaiting_review: bool = False


@dataclass(frozen=True)
class HomeStats:
    counts: dict[str, int]
    triage_pending: int
    newest: list[IdeaLine]
    triage_merged: int = 0  # of the queued pairs moderators decided, how many they merged
    triage_decided: int = 0


@dataclass(frozen=True)
class StaffIdea:
    """An idea an employee typed into the Slack modal (already validated)."""

    user_id: str
    title: str
    description: str
    focus_area: str | None
    place: str | None
    follow_up: bool
    display_name: str | None = None


# --- reading ----------------------------------------------------------------------------------

def _line(session: Session, idea: Idea, score: float | None = None) -> IdeaLine:
    return IdeaLine(ref=format_ref(idea.id or 0), title=idea.title, status=idea.status,
                    focus_area=idea.focus_area, created_at=idea.created_at,
                    supporters=book.supporter_count(session, idea.id or 0), score=score)


def status_detail(runtime: Runtime, ref: str) -> IdeaDetail | None:
    """Everything `/kominn status KI-n` shows, with what the runtime's features add; None
    when there is no such idea."""
    number = parse_ref(ref)
    with Session(runtime.db) as session:
        idea = session.get(Idea, number) if number is not None else None
        if idea is None:
            return None
        detail = IdeaDetail(
            ref=format_ref(idea.id or 0), title=idea.title, description=idea.description,
            status=idea.status, focus_area=idea.focus_area, place=idea.place,
            channel=idea.channel, created_at=idea.created_at,
            status_changed_at=idea.status_changed_at, public_note=idea.public_note,
            supporters=book.supporter_count(session, idea.id or 0),
            merged_into=format_ref(idea.merged_into_id) if idea.merged_into_id else None,
            history=[HistoryLine(h.at, h.from_status, h.to_status, h.by, h.note)
                     for h in book.history(session, idea.id or 0)],
            pending_duplicates=_pending_duplicates(session, idea),
            merged_here=[Duplicate(format_ref(i.id or 0), i.title, None) for i in session.exec(
                select(Idea).where(Idea.merged_into_id == idea.id).order_by(col(Idea.id)))],
            awaiting_review=(runtime.settings.publish == "after-review"
                             and idea.published_at is None and idea.hidden_at is None),
        )
        for extra in runtime.features.status_extras:
            detail.extras.update(extra(session, idea))
        return detail


def _pending_duplicates(session: Session, idea: Idea) -> list[Duplicate]:
    rows = session.exec(select(DuplicateCandidate).where(
        DuplicateCandidate.state == triage.PENDING,
        or_(col(DuplicateCandidate.idea_a_id) == idea.id,
            col(DuplicateCandidate.idea_b_id) == idea.id))
        .order_by(col(DuplicateCandidate.score).desc())).all()
    found = []
    for cand in rows:
        other = session.get(Idea, cand.idea_b_id if cand.idea_a_id == idea.id
                            else cand.idea_a_id)
        if other is not None:
            found.append(Duplicate(format_ref(other.id or 0), other.title, cand.score))
    return found


def search(db: DbEngine, index: SimilarIndex | None, words: str,
           limit: int = PAGE) -> list[IdeaLine]:
    """Best fuzzy matches from the live similar-ideas index first, then ideas that contain
    every word (so a short keyword, or a closed idea the index leaves out, is found too)."""
    words = words.strip()
    if not words:
        return []
    found: dict[int, float | None] = {}
    number: int | None  # SQLModel types a selected key as Optional
    score: float | None  # None: found by its words, not by the index
    if index is not None:
        for number, score in index.similar(words, "", limit=limit):
            found.setdefault(number, score)
    with Session(db) as session:
        if len(found) < limit:
            query = select(Idea.id)
            for word in words.split()[:8]:
                pattern = f"%{_like_escape(word.casefold())}%"
                query = query.where(or_(func.lower(Idea.title).like(pattern, escape="\\"),
                                        func.lower(Idea.description).like(pattern, escape="\\")))
            for number in session.exec(query.order_by(col(Idea.created_at).desc())
                                       .limit(limit)):
                if len(found) >= limit:
                    break
                if number is not None:
                    found.setdefault(number, None)
        lines = []
        for number, score in found.items():
            idea = session.get(Idea, number)
            if idea is not None:
                lines.append(_line(session, idea, score))
        return lines


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_ideas(db: DbEngine, status: Status | None = None, area: str | None = None,
               offset: int = 0, limit: int = PAGE) -> tuple[list[IdeaLine], int]:
    """Newest first, `limit` at a time from `offset`; also the total matching."""
    query = select(Idea)
    count = select(func.count()).select_from(Idea)
    if status is not None:
        query = query.where(Idea.status == status.value)
        count = count.where(Idea.status == status.value)
    if area is not None:
        query = query.where(Idea.focus_area == area)
        count = count.where(Idea.focus_area == area)
    with Session(db) as session:
        total = session.exec(count).one()
        rows = session.exec(query.order_by(col(Idea.created_at).desc(), col(Idea.id).desc())
                            .offset(max(0, offset)).limit(limit)).all()
        return [_line(session, i) for i in rows], total


def home_stats(db: DbEngine) -> HomeStats:
    with Session(db) as session:
        counts = dict.fromkeys((s.value for s in Status), 0)
        for status, n in session.exec(select(Idea.status, func.count()).group_by(Idea.status)):
            counts[status] = n
        newest = session.exec(select(Idea).order_by(col(Idea.created_at).desc(),
                                                    col(Idea.id).desc())
                              .limit(NEWEST_ON_HOME)).all()
        merged, decided = triage.precision(session)
        return HomeStats(counts=counts, triage_pending=triage.queue_length(session),
                         newest=[_line(session, i) for i in newest],
                         triage_merged=merged, triage_decided=decided)


def report(db: DbEngine, settings: Settings) -> dict[str, Any]:
    """The realisation report (bot.report), the same figures as `kominn report`."""
    from bot.reports import realisation as report_module

    with Session(db) as session:
        return report_module.compute(session, locale=settings.locale, zone=settings.zone)


def match_area(settings: Settings, text: str) -> str | None:
    """A configured focus area from a search word (`/kominn list … AREA`): the name, the start
    of one, or part of one (`dialogs.fields.match_area`)."""
    return fields.match_area(text, settings.focus_areas, partial=True)


# --- writing ----------------------------------------------------------------------------------

def check_new_idea(user_id: str, title: str | None, description: str | None,
                   area: str | None, place: str | None, follow_up: bool,
                   areas: Sequence[str]) -> tuple[StaffIdea | None, list[FormProblem]]:
    """The same rules as the citizen chat (`dialogs.fields`), so an idea is held to one
    standard whichever way it comes in; plus a configured focus area picked from the list."""
    new_title, new_description = check_title(title), check_description(description)
    new_place = check_place(place)
    chosen = fields.picked_area(area, areas)
    problems = [FormProblem(name, c.problem.key, dict(c.problem.params))
                for name, c in (("title", new_title), ("description", new_description))
                if c.problem is not None]
    if chosen not in areas:
        problems.append(FormProblem("area", "slack.modal.pick_area", {}))
    if new_place.problem is not None:
        problems.append(FormProblem("place", new_place.problem.key,
                                    dict(new_place.problem.params)))
    if problems:
        return None, problems
    return StaffIdea(user_id=user_id, title=new_title.value, description=new_description.value,
                     focus_area=chosen, place=new_place.value or None, follow_up=follow_up), []


def submit_idea(runtime: Runtime, new: StaffIdea) -> str:
    """An employee's idea (channel "slack"), queued for triage like any other; returns KI-n."""
    index = runtime.index
    with transaction(runtime.db) as session:
        person = _slack_person(session, new.user_id)
        person.chat_id = new.user_id
        person.follow_up_consent = new.follow_up
        if new.display_name:
            person.display_name = new.display_name[:200]
        session.add(person)
        session.flush()
        idea = runtime.ideas.create_idea(session, book.NewIdea(
            title=new.title, description=new.description, channel=STAFF_CHANNEL,
            focus_area=new.focus_area, place=new.place, author_id=person.id),
            by=f"slack:{new.user_id}")
        queue_similar(session, index, idea)
    index.update(idea)
    ref = format_ref(idea.id or 0)
    log.info("idea submitted", extra={"event": "idea_submitted", "ref": ref,
                                      "channel": STAFF_CHANNEL})
    return ref


def _slack_person(session: Session, user_id: str) -> Person:
    """The Slack user's Person row; a new one (not yet added) if they have none."""
    person = session.exec(select(Person).where(
        Person.channel == STAFF_CHANNEL, Person.channel_user_id == user_id)).first()
    return person or Person(channel=STAFF_CHANNEL, channel_user_id=user_id)


def slack_language(db: DbEngine, user_id: str) -> str | None:
    """The language stored for a Slack user (`/kominn språk`), or None."""
    with Session(db) as session:
        return session.exec(select(Person.language).where(
            Person.channel == STAFF_CHANNEL, Person.channel_user_id == user_id)).first()


def choose_slack_language(db: DbEngine, user_id: str, language: str) -> None:
    """Store a Slack user's language on their Person row (created if missing), so their
    answers and the notices sent to them later speak it."""
    try:
        _store_language(db, user_id, language)
    except IntegrityError:  # the row was created concurrently (another click): it exists now
        _store_language(db, user_id, language)


def _store_language(db: DbEngine, user_id: str, language: str) -> None:
    with transaction(db) as session:
        person = _slack_person(session, user_id)
        person.language = language
        person.chat_id = person.chat_id or user_id
        session.add(person)


def set_status(runtime: Runtime, request: SetRequest, *, by: str,
               expected: Status | None = None) -> StatusChange:
    """A moderator's lifecycle move in its own transaction (see `bot.ideas.moderation.move`)."""
    with transaction(runtime.db) as session:
        change = move(session, runtime.ideas, request, by=by, expected=expected)
        changed = [session.get(Idea, change.idea_id)]
        if request.into:
            changed.append(book.get_idea(session, request.into))
    _reindex(runtime.index, [i for i in changed if i is not None])
    log.info("status changed", extra={"event": "status_changed", "ref": request.ref,
                                      "status": change.to_status, "channel": STAFF_CHANNEL})
    return change


def decide_pair(runtime: Runtime, pair_id: int, decision: triage.Decision, *, by: str,
                keep: int | None = None) -> triage.Pair:
    pair, changed = triage.decide_pair(runtime.db, runtime.ideas, pair_id, decision, by=by,
                                       keep=keep)
    _reindex(runtime.index, changed)
    log.info("triage decided", extra={"event": "triage_decided", "status": decision,
                                      "channel": STAFF_CHANNEL})
    return pair


def _reindex(index: SimilarIndex | None, ideas: Sequence[Idea]) -> None:
    if index is not None:
        for idea in ideas:
            index.update(idea)


def claim_event(db: DbEngine, channel: str, event_id: str) -> bool:
    """True the first time an event id is seen on this channel; a retried delivery (Slack's
    X-Slack-Retry-Num) gets False and must do nothing. Recorded in processed_update, which the
    retention job prunes."""
    try:
        with transaction(db) as session:
            if session.get(ProcessedUpdate, (channel, event_id)) is not None:
                return False
            session.add(ProcessedUpdate(channel=channel, update_id=event_id[:100],
                                        delivered_at=utcnow(), at=utcnow()))
    except IntegrityError:
        return False  # a concurrent delivery of the same event won
    return True


def set_hidden(runtime: Runtime, ref: str, hidden: bool, reason: str,
               by: str) -> tuple[str, bool] | None:
    """`/kominn hide KI-n reason` / `unhide KI-n`: (the ref as stored, whether anything
    changed — False when it was hidden, or shown, already), None if unknown.
    Hiding without a reason raises ValueError (the author is told the reason)."""
    number = parse_ref(ref)
    with transaction(runtime.db) as session:
        idea = session.get(Idea, number) if number is not None else None
        if idea is None:
            return None
        if hidden:
            changed = runtime.ideas.hide(session, idea, reason, by=f"{STAFF_CHANNEL}:{by}")
        else:
            changed = runtime.ideas.unhide(session, idea, by=f"{STAFF_CHANNEL}:{by}")
        return format_ref(number or 0), changed


def publish(runtime: Runtime, ref: str, by: str) -> str | None:
    """Slack's "Publiser" on a new idea waiting for review: the ref as stored, None if
    unknown (publishing twice changes nothing)."""
    number = parse_ref(ref)
    with transaction(runtime.db) as session:
        idea = session.get(Idea, number) if number is not None else None
        if idea is None:
            return None
        runtime.ideas.publish(session, idea, by=f"{STAFF_CHANNEL}:{by}")
        return format_ref(number or 0)
