"""The dialog engine: load state → run one pure step → save state and effects in one
transaction. Every channel calls `Engine.handle()`; nothing here knows which channel it is.

Exactly-once in: each (channel, update id) is recorded in the same transaction, with the
replies it produced. A redelivered update does no work twice; if its replies were never
confirmed as delivered (`mark_delivered`), they are handed out again, so a crash between
"stored" and "sent" loses no answer.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import and_, bindparam, func, or_
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, select

from bot.config import Settings
from bot.conversation.ports import DatabasePorts
from bot.dedup.index import SimilarIndex
from bot.dedup.queue import queue_similar
from bot.i18n import normalize_language, translator
from bot.ideas import book
from bot.retry import DB_RETRIES, retry_transient, transient, wait_for_database
from dialogs import citizen, submit
from dialogs.core import (
    AddSupport,
    Context,
    Custom,
    Effect,
    ErasePerson,
    Outcome,
    PersonView,
    SetConsent,
    SetLanguage,
    State,
    SubmitIdea,
)
from dialogs.types import Choice, Document, Incoming, Reply
from storage.db import transaction
from storage.models import DialogState, Idea, Person, ProcessedUpdate, utcnow

log = logging.getLogger("kominn.engine")

StepFunction = Callable[[State, Incoming, Context], Outcome]
CustomEffect = Callable[["Applied", dict[str, Any]], None]

# Effects of feature modules (`Custom(kind, data)`), registered by kind.
CUSTOM_EFFECTS: dict[str, CustomEffect] = {}


@dataclass
class Applied:
    """What applying effects needs and produces inside the step's transaction."""

    session: Session
    person: Person
    incoming: Incoming
    settings: Settings
    replies: list[Reply] = field(default_factory=list)
    changed_ideas: list[Idea] = field(default_factory=list)


class Engine:
    def __init__(self, db: DbEngine, settings: Settings, index: SimilarIndex | None = None,
                 *, step: StepFunction = citizen.step,
                 clock: Callable[[], datetime] = utcnow, retries: int = DB_RETRIES) -> None:
        self.db = db
        self.settings = settings
        self.index = index
        self.step = step
        self.clock = clock
        self.retries = retries

    # --- public API ---------------------------------------------------------------------------

    def handle(self, incoming: Incoming) -> list[Reply]:
        """Handle one update; retried while the database is briefly unavailable."""
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                replies, changed = self._handle_once(incoming)
                break
            except IntegrityError:
                # Two workers raced on the same update (or person): the other one won.
                if attempt == self.retries:
                    raise
                time.sleep(0.01 * (attempt + 1))
            except (OperationalError, DBAPIError) as exc:
                if attempt == self.retries or not transient(exc):
                    raise
                wait_for_database(incoming.channel, attempt)
        for idea in changed:
            if self.index is not None:
                self.index.update(idea)
        log.info("handled update", extra={
            "event": "update_handled", "channel": incoming.channel,
            "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        return replies

    def mark_delivered(self, channel: str, update_id: str | None) -> None:
        """The adapter has sent the replies of this update: no need to send them again."""
        if update_id is not None:
            self.mark_all_delivered(channel, [str(update_id)])

    def mark_all_delivered(self, channel: str, update_ids: list[str]) -> None:
        """`mark_delivered` for many updates in one statement. Retried like `handle` while
        the database is briefly unavailable: a mark lost here would make the next start send
        the replies a second time."""

        def mark() -> None:
            with transaction(self.db) as session:
                session.execute(_MARK_DELIVERED, {
                    "in_channel": channel, "ids": list(update_ids), "now": self.clock()})

        retry_transient(mark, channel, self.retries)

    def undelivered(self, channel: str, before: datetime | None = None,
                    ) -> list[tuple[str, str, list[Reply]]]:
        """(update id, user id, replies) handled but never confirmed as sent — re-send at
        start-up after a crash. `before`: only updates handled before then (younger ones may
        be in the hands of another worker that is sending them right now)."""
        with Session(self.db) as session:
            query = select(ProcessedUpdate).where(
                ProcessedUpdate.channel == channel,
                ProcessedUpdate.delivered_at.is_(None),  # type: ignore[union-attr]
                ProcessedUpdate.replies.is_not(None))  # type: ignore[union-attr]
            if before is not None:
                query = query.where(ProcessedUpdate.at < before)
            rows = session.exec(query).all()
            return [(r.update_id, r.user_id or "", decode_replies(r.replies)) for r in rows]

    # --- one attempt --------------------------------------------------------------------------

    def _handle_once(self, incoming: Incoming) -> tuple[list[Reply], list[Idea]]:
        now = self.clock()
        with transaction(self.db) as session:
            found = session.execute(_PERSON_AND_STATE, {
                "channel": incoming.channel, "user_id": incoming.user_id,
                "update_id": None if incoming.update_id is None else str(incoming.update_id),
                "since": now - timedelta(minutes=1)}).first()
            if incoming.update_id is not None:
                seen, recent = (bool(found[-2]), found[-1]) if found is not None \
                    else self._seen_and_recent(session, incoming, now)
                if seen:
                    return self._repeat(session, incoming), []
                if recent >= self.settings.max_messages_per_minute:
                    return self._refuse_flood(session, incoming, now), []
            person, stored = self._person_and_state(session, incoming, now, found)
            state = _load_state(stored)
            language = person.language or normalize_language(incoming.language) \
                or self.settings.locale
            ports = DatabasePorts(session, person, self.settings, self.index, now)
            ctx = Context(
                person=PersonView(person.id, person.language, person.follow_up_consent,
                                  person.invite_consent),
                t=translator(language), ports=ports, now=now,
                max_ideas_per_day=self.settings.max_ideas_per_day, zone=self.settings.zone)
            outcome = self.step(state, incoming, ctx)
            applied = Applied(session, person, incoming, self.settings,
                              replies=list(outcome.replies))
            for effect in outcome.effects:
                self._apply(effect, applied, ctx)
            if not any(isinstance(e, ErasePerson) for e in outcome.effects):
                _save_state(session, stored, incoming, person, outcome.state, now)
            if incoming.update_id is not None:
                erased = person.erased_at is not None
                _record_update(session, incoming, None if erased else incoming.user_id,
                               applied.replies, now)
            return applied.replies, applied.changed_ideas

    def _seen_and_recent(self, session: Session, incoming: Incoming,
                          now: datetime) -> tuple[bool, int]:
        """For someone not yet known (the person query found no row): was this update handled
        before, and how many updates did they send in the last minute (the flood limit)?"""
        update_id = str(incoming.update_id)
        ids = session.execute(_SEEN_AND_RECENT, {
            "channel": incoming.channel, "update_id": update_id, "user_id": incoming.user_id,
            "since": now - timedelta(minutes=1)}).scalars().all()
        return update_id in ids, len(ids)

    def _repeat(self, session: Session, incoming: Incoming) -> list[Reply]:
        """A redelivered update: its replies again if they were never confirmed as sent."""
        log.info("duplicate update skipped", extra={
            "event": "update_duplicate", "channel": incoming.channel})
        seen = session.get(ProcessedUpdate, (incoming.channel, str(incoming.update_id)))
        if seen is not None and seen.delivered_at is None and seen.replies:
            return decode_replies(seen.replies)
        return []

    def _refuse_flood(self, session: Session, incoming: Incoming, now: datetime) -> list[Reply]:
        """Over the per-minute limit: nothing is stored but the update id; the polite answer is
        given once per minute, so the bot cannot be used to flood the person back."""
        since = now - timedelta(minutes=1)
        refused = session.exec(select(func.count()).select_from(ProcessedUpdate).where(
            ProcessedUpdate.channel == incoming.channel,
            ProcessedUpdate.user_id == f"flood:{incoming.user_id}",
            ProcessedUpdate.at >= since)).one()
        person = session.exec(select(Person).where(
            Person.channel == incoming.channel,
            Person.channel_user_id == incoming.user_id)).first()
        language = (person.language if person else None) or \
            normalize_language(incoming.language) or self.settings.locale
        replies = [] if refused else [Reply(translator(language)(
            "limit.messages_per_minute", n=self.settings.max_messages_per_minute))]
        _record_update(session, incoming, f"flood:{incoming.user_id}", replies, now)
        log.warning("message limit reached", extra={"event": "flood_refused",
                                                     "channel": incoming.channel})
        return replies

    def _person_and_state(self, session: Session, incoming: Incoming, now: datetime,
                          found: Any) -> tuple[Person, StoredState | None]:
        """The person and their dialog state from the hot path's query row (`found`); a
        person not known yet is created."""
        key = {"channel": incoming.channel, "user_id": incoming.user_id}
        person = found[0] if found is not None else None
        stored = StoredState(*found[2:7]) if found is not None and found[1] else None
        if person is None:
            person = Person(channel=incoming.channel, channel_user_id=incoming.user_id,
                            created_at=now)
            session.add(person)
            row = session.execute(_STATE_ALONE, key).first()
            stored = StoredState(*row[1:]) if row is not None else None
        if person.language is None and incoming.language:
            # Remember the platform's language, so scheduled notices speak it too.
            person.language = normalize_language(incoming.language)
        if incoming.display_name and person.display_name != incoming.display_name:
            person.display_name = incoming.display_name[:200]
        chat_id = incoming.chat_id or incoming.user_id
        if person.chat_id != chat_id:
            person.chat_id = chat_id
        if person.id is None:
            session.flush()
        return person, stored

    # --- effects ------------------------------------------------------------------------------

    def _apply(self, effect: Effect, applied: Applied, ctx: Context) -> None:
        session, person = applied.session, applied.person
        if isinstance(effect, SubmitIdea):
            self._submit(effect, applied, ctx)
        elif isinstance(effect, AddSupport):
            idea = book.get_idea(session, effect.number)
            book.add_support(session, idea, person.id or 0)
        elif isinstance(effect, SetLanguage):
            person.language = effect.language
            session.add(person)
        elif isinstance(effect, SetConsent):
            if effect.follow_up is not None:
                person.follow_up_consent = effect.follow_up
            if effect.invite is not None:
                person.invite_consent = effect.invite
            session.add(person)
        elif isinstance(effect, ErasePerson):
            book.forget_updates(session, person.channel, person.channel_user_id)
            book.erase_person(session, person)
        elif isinstance(effect, Custom):
            CUSTOM_EFFECTS[effect.kind](applied, effect.data)
        else:  # pragma: no cover - the Effect union is closed
            raise TypeError(f"unknown effect {effect!r}")

    def _submit(self, effect: SubmitIdea, applied: Applied, ctx: Context) -> None:
        session, person = applied.session, applied.person
        idea = book.create_idea(session, book.NewIdea(
            title=effect.title, description=effect.description, channel=applied.incoming.channel,
            focus_area=effect.focus_area, place=effect.place, latitude=effect.latitude,
            longitude=effect.longitude, author_id=person.id, campaign_id=effect.campaign_id,
            created_at=ctx.now), by=f"{applied.incoming.channel}:{ANONYMOUS_AUTHOR}")
        self._queue_similar(session, idea)
        applied.changed_ideas.append(idea)
        ref = book.ref_of(idea)
        log.info("idea submitted", extra={"event": "idea_submitted", "ref": ref,
                                          "channel": applied.incoming.channel})
        applied.replies.append(submit.receipt(ctx.t, ref, bool(person.follow_up_consent),
                                              offer_invite=person.invite_consent is None))

    def _queue_similar(self, session: Session, idea: Idea) -> None:
        """Suspected duplicates go to the moderators' queue (shared with Slack and import)."""
        queue_similar(session, self.index, idea)


ANONYMOUS_AUTHOR = "citizen"


@dataclass(frozen=True)
class StoredState:
    """A person's dialog_state row as the hot path reads it (plain columns, no ORM object:
    it is written back with one prebuilt UPDATE)."""

    flow: str | None
    step: str | None
    data: str | None
    token: int
    started_at: datetime | None


def _load_state(stored: StoredState | None) -> State:
    if stored is None or stored.flow is None:
        return State(token=stored.token if stored else 0)
    return State(flow=stored.flow, step=stored.step, data=json.loads(stored.data or "{}"),
                 token=stored.token)


# Statements of the hot path (every update), built once: constructing SQLAlchemy expressions
# costs more than SQLite takes to run them.
_UPDATES = ProcessedUpdate.__table__  # type: ignore[attr-defined]
_SEEN_AND_RECENT = sa_select(_UPDATES.c.update_id).where(
    _UPDATES.c.channel == bindparam("channel"),
    or_(_UPDATES.c.update_id == bindparam("update_id"),
        and_(_UPDATES.c.user_id == bindparam("user_id"), _UPDATES.c.at >= bindparam("since"))))
_RECORD_UPDATE = sa_insert(_UPDATES)
_MARK_DELIVERED = sa_update(_UPDATES).where(
    _UPDATES.c.channel == bindparam("in_channel"),
    _UPDATES.c.update_id.in_(bindparam("ids", expanding=True)),
    _UPDATES.c.delivered_at.is_(None)).values(delivered_at=bindparam("now"), replies=None)
_STATE = DialogState.__table__  # type: ignore[attr-defined]
# The first column says whether the person has a state row at all (the join may find none).
_STATE_COLUMNS = (_STATE.c.channel.is_not(None), _STATE.c.flow, _STATE.c.step, _STATE.c.data,
                  _STATE.c.token, _STATE.c.started_at)
# One query per update (the hot path): the person, their dialog state, whether this update
# was handled before and how many updates they sent in the last minute.
_SEEN = sa_select(func.count()).select_from(_UPDATES).where(
    _UPDATES.c.channel == bindparam("channel"),
    _UPDATES.c.update_id == bindparam("update_id")).scalar_subquery()
_RECENT = sa_select(func.count()).select_from(_UPDATES).where(
    _UPDATES.c.channel == bindparam("channel"), _UPDATES.c.user_id == bindparam("user_id"),
    _UPDATES.c.at >= bindparam("since")).scalar_subquery()
_PERSON_AND_STATE = (
    sa_select(Person, *_STATE_COLUMNS, _SEEN, _RECENT)
    .outerjoin(_STATE, and_(_STATE.c.channel == Person.channel,
                            _STATE.c.user_id == Person.channel_user_id))
    .where(Person.channel == bindparam("channel"),
           Person.channel_user_id == bindparam("user_id")))
_STATE_ALONE = sa_select(*_STATE_COLUMNS).where(
    _STATE.c.channel == bindparam("channel"), _STATE.c.user_id == bindparam("user_id"))
# Three shapes of the state write, so a column this turn does not change is never written
# (a reminder marked meanwhile by the scheduler keeps its `reminded_at`).
_STATE_UPDATE = sa_update(_STATE).where(
    _STATE.c.channel == bindparam("key_channel"), _STATE.c.user_id == bindparam("key_user"),
).values(person_id=bindparam("person_id"), flow=bindparam("flow"), step=bindparam("step"),
         token=bindparam("token"), data=bindparam("data"), updated_at=bindparam("updated_at"))
_STATE_UPDATE_STARTED = _STATE_UPDATE.values(started_at=bindparam("started_at"),
                                             reminded_at=None)
_STATE_UPDATE_ENDED = _STATE_UPDATE.values(started_at=None)
_STATE_INSERT = sa_insert(_STATE)


def _record_update(session: Session, incoming: Incoming, user_id: str | None,
                   replies: list[Reply], now: datetime) -> None:
    session.execute(_RECORD_UPDATE, {
        "channel": incoming.channel, "update_id": str(incoming.update_id), "user_id": user_id,
        "replies": encode_replies(replies), "at": now})


def _save_state(session: Session, stored: StoredState | None, incoming: Incoming,
                person: Person, state: State, now: datetime) -> None:
    """Write the dialog state with one prebuilt statement. A flow that starts (or changes)
    gets a new `started_at` and may be reminded again; a finished one has no start."""
    values: dict[str, Any] = {
        "person_id": person.id, "flow": state.flow, "step": state.step, "token": state.token,
        "data": json.dumps(state.data, ensure_ascii=False), "updated_at": now}
    started = state.flow is not None and (
        stored is None or stored.flow != state.flow or stored.started_at is None)
    if stored is None:
        session.execute(_STATE_INSERT, {
            **values, "channel": incoming.channel, "user_id": incoming.user_id,
            "started_at": now if started else None, "reminded_at": None})
        return
    values.update(key_channel=incoming.channel, key_user=incoming.user_id)
    if started:
        session.execute(_STATE_UPDATE_STARTED, {**values, "started_at": now})
    elif state.flow is None:
        session.execute(_STATE_UPDATE_ENDED, values)
    else:
        session.execute(_STATE_UPDATE, values)


# --- replies as stored JSON -------------------------------------------------------------------

def encode_replies(replies: list[Reply]) -> str:
    return json.dumps([_encode(r) for r in replies], ensure_ascii=False)


def decode_replies(raw: str | None) -> list[Reply]:
    return [_decode(item) for item in json.loads(raw or "[]")]


def _encode(reply: Reply) -> dict[str, Any]:
    item: dict[str, Any] = {"text": reply.text,
                            "choices": [[c.label, c.payload] for c in reply.choices]}
    if reply.links:
        item["links"] = [list(link) for link in reply.links]
    if reply.document is not None:
        item["document"] = {"filename": reply.document.filename,
                            "mime_type": reply.document.mime_type,
                            "content": base64.b64encode(reply.document.content).decode()}
    return item


def _decode(item: dict[str, Any]) -> Reply:
    document = None
    if "document" in item:
        doc = item["document"]
        document = Document(doc["filename"], base64.b64decode(doc["content"]), doc["mime_type"])
    return Reply(text=item["text"],
                 choices=tuple(Choice(label, payload) for label, payload in item["choices"]),
                 document=document,
                 links=tuple((label, url) for label, url in item.get("links", [])))
