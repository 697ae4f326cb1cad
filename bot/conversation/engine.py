"""The dialog engine: load state → run one pure step → save state and effects in one
transaction. Every channel calls `Engine.handle()`; nothing here knows which channel it is.

Exactly-once in: each (channel, update id) is recorded in the same transaction, with the
replies it produced. A redelivered update does no work twice; if its replies were never
confirmed as delivered (`mark_delivered`), they are handed out again, so a crash between
"stored" and "sent" loses no answer.

Answered once across workers: the handling transaction also gives the worker a sending
lease (`sending_until`, `KOMINN_SEND_LEASE_SECONDS`). A redelivery reaching another worker
while the lease runs gets no replies (the first worker is sending them); after it ran out
(that worker died) the redelivery — or any worker's sweep (`take_undelivered`) — takes the
replies over with a conditional UPDATE that one worker at most wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult
from sqlalchemy import Engine as DbEngine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col, func, select

from bot.config import Settings
from bot.conversation import state
from bot.conversation.effects import Effects
from bot.conversation.ports import DatabasePorts
from bot.conversation.replies import decode_replies
from bot.dedup.index import SimilarIndex
from bot.i18n import normalize_language, translator
from bot.retry import DB_RETRIES, retry_transient, transient, wait_for_database
from bot.wiring import Applied, Features
from dialogs import citizen
from dialogs.core import Context, ErasePerson, Outcome, PersonView, State
from dialogs.types import Incoming, Reply
from storage.db import transaction
from storage.models import Idea, Person, ProcessedUpdate, utcnow

log = logging.getLogger("kominn.engine")

StepFunction = Callable[[State, Incoming, Context], Outcome]
T = TypeVar("T")
THREADS = 8  # engine calls at once on PostgreSQL; SQLite takes one writer at a time


class Engine:
    def __init__(self, db: DbEngine, settings: Settings, index: SimilarIndex | None = None,
                 *, features: Features, step: StepFunction = citizen.step,
                 clock: Callable[[], datetime] = utcnow, retries: int = DB_RETRIES) -> None:
        self.db = db
        self.settings = settings
        self.index = index
        self.features = features
        self.effects = Effects(features.ideas, index, features.effects)
        self.step = step
        self.clock = clock
        self.retries = retries
        self.lease = timedelta(seconds=settings.send_lease_seconds)
        self._threads: ThreadPoolExecutor | None = None

    async def off_loop(self, call: Callable[..., T], *args: Any) -> T:
        """Run `call` (a turn, or another database call of a channel) outside the event loop,
        in the one pool every channel of this process shares. On SQLite that is one thread:
        threads queueing on its write lock sleep in coarse steps (the busy handler), so the
        web chat's and Telegram's turns wait in one line rather than in two pools; on
        PostgreSQL `THREADS` run at once."""
        if self._threads is None:
            sqlite = self.settings.database_url.startswith("sqlite")
            self._threads = ThreadPoolExecutor(max_workers=1 if sqlite else THREADS,
                                               thread_name_prefix="engine")
        return await asyncio.get_running_loop().run_in_executor(self._threads, call, *args)

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
                session.execute(state.MARK_DELIVERED, {
                    "in_channel": channel, "ids": list(update_ids), "now": self.clock()})

        retry_transient(mark, channel, self.retries)

    def renew_lease(self, channel: str, update_id: str) -> bool:
        """A live worker still trying to send (Telegram unreachable): keep the update's lease
        another `lease`. False when it had run out already (another worker may have taken the
        replies over, so this one must not send them)."""
        def renew() -> bool:
            now = self.clock()
            with transaction(self.db) as session:
                done = cast(CursorResult[Any], session.execute(state.RENEW, {
                    "in_channel": channel, "in_update": str(update_id), "now": now,
                    "until": now + self.lease}))
                return bool(done.rowcount)

        return retry_transient(renew, channel, self.retries)

    def take_undelivered(self, channel: str, *, any_lease: bool = False,
                         ) -> list[tuple[str, str, list[Reply]]]:
        """(update id, user id, replies) handled but never confirmed as sent, now this
        worker's to send (a fresh lease): those whose lease ran out (their worker died), or —
        `any_lease`, for a polling start where this process is the only consumer — all."""
        def take() -> list[tuple[str, str, list[Reply]]]:
            now = self.clock()
            with transaction(self.db) as session:
                rows = session.execute(state.TAKE_ANY if any_lease else state.TAKE_EXPIRED, {
                    "in_channel": channel, "now": now, "until": now + self.lease}).all()
            return [(r[0], r[1] or "", decode_replies(r[2])) for r in rows]

        return retry_transient(take, channel, self.retries)

    def undelivered(self, channel: str, before: datetime | None = None,
                    ) -> list[tuple[str, str, list[Reply]]]:
        """(update id, user id, replies) handled but never confirmed as sent — re-send at
        start-up after a crash. `before`: only updates handled before then (younger ones may
        be in the hands of another worker that is sending them right now)."""
        with Session(self.db) as session:
            query = select(ProcessedUpdate).where(
                ProcessedUpdate.channel == channel,
                col(ProcessedUpdate.delivered_at).is_(None),
                col(ProcessedUpdate.replies).is_not(None))
            if before is not None:
                query = query.where(ProcessedUpdate.at < before)
            rows = session.exec(query).all()
            return [(r.update_id, r.user_id or "", decode_replies(r.replies)) for r in rows]

    # --- one attempt --------------------------------------------------------------------------

    def _handle_once(self, incoming: Incoming) -> tuple[list[Reply], list[Idea]]:
        now = self.clock()
        with transaction(self.db) as session:
            found = session.execute(state.PERSON_AND_STATE, {
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
            dialog = state.load_state(stored)
            language = person.language or normalize_language(incoming.language) \
                or self.settings.locale
            ports = DatabasePorts(session, person, self.settings, self.index, now)
            ctx = Context(
                person=PersonView(person.id, person.language, person.follow_up_consent,
                                  person.invite_consent),
                t=translator(language), ports=ports, now=now, dialogs=self.features.conversation,
                max_ideas_per_day=self.settings.max_ideas_per_day, zone=self.settings.zone)
            outcome = self.step(dialog, incoming, ctx)
            applied = Applied(session, person, incoming, self.settings,
                              replies=list(outcome.replies))
            for effect in outcome.effects:
                self.effects.apply(effect, applied, ctx)
            if not any(isinstance(e, ErasePerson) for e in outcome.effects):
                state.save_state(session, stored, incoming, person, outcome.state, now)
            if incoming.update_id is not None:
                erased = person.erased_at is not None
                state.record_update(session, incoming, None if erased else incoming.user_id,
                                    applied.replies, now, now + self.lease)
            return applied.replies, applied.changed_ideas

    def _seen_and_recent(self, session: Session, incoming: Incoming,
                          now: datetime) -> tuple[bool, int]:
        """For someone not yet known (the person query found no row): was this update handled
        before, and how many updates did they send in the last minute (the flood limit)?"""
        update_id = str(incoming.update_id)
        ids = session.execute(state.SEEN_AND_RECENT, {
            "channel": incoming.channel, "update_id": update_id, "user_id": incoming.user_id,
            "since": now - timedelta(minutes=1)}).scalars().all()
        return update_id in ids, len(ids)

    def _repeat(self, session: Session, incoming: Incoming) -> list[Reply]:
        """A redelivered update: its replies again if they were never confirmed as sent and
        nobody is sending them (the lease ran out, and this worker won it)."""
        log.info("duplicate update skipped", extra={
            "event": "update_duplicate", "channel": incoming.channel})
        seen = session.get(ProcessedUpdate, (incoming.channel, str(incoming.update_id)))
        if seen is None or seen.delivered_at is not None or not seen.replies:
            return []
        now = self.clock()
        taken = cast(CursorResult[Any], session.execute(state.TAKE_OVER, {
            "in_channel": incoming.channel, "in_update": str(incoming.update_id), "now": now,
            "until": now + self.lease}))
        if not taken.rowcount:
            log.info("answer in another worker's hands", extra={
                "event": "update_answer_leased", "channel": incoming.channel})
            return []
        return decode_replies(seen.replies)

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
        state.record_update(session, incoming, f"flood:{incoming.user_id}", replies, now,
                            now + self.lease)
        log.warning("message limit reached", extra={"event": "flood_refused",
                                                     "channel": incoming.channel})
        return replies

    def _person_and_state(self, session: Session, incoming: Incoming, now: datetime,
                          found: Any) -> tuple[Person, state.StoredState | None]:
        """The person and their dialog state from the hot path's query row (`found`); a
        person not known yet is created."""
        key = {"channel": incoming.channel, "user_id": incoming.user_id}
        person = found[0] if found is not None else None
        stored = state.StoredState(*found[2:7]) if found is not None and found[1] else None
        if person is None:
            person = Person(channel=incoming.channel, channel_user_id=incoming.user_id,
                            created_at=now)
            session.add(person)
            row = session.execute(state.STATE_ALONE, key).first()
            stored = state.StoredState(*row[1:]) if row is not None else None
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

