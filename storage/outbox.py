"""The outbox's named queries, kept with their table (as a ResultSet keeps its queries).

The outbox holds messages to send later, written in the transaction of the change that caused
them. Everything that reads or writes it goes through these functions: queuing (idempotent
through the dedupe key), the dispatcher's claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a
conditional UPDATE per row on SQLite), delivery outcomes, the terminal's pull, the operators'
counts and requeue, erasure and retention. What a message says (the renderers) and when to
send it (the rules, the dispatcher's policy) live in `bot/followups/`.

A row moves `pending → sending → sent`; a failed attempt goes back to `pending`, a hopeless one
is parked as `failed`; `cancelled` rows were meant for a person who is gone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, exists, func, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.db import is_sqlite
from storage.models import Outbox, Person, utcnow

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
STATES = (PENDING, SENDING, SENT, FAILED, CANCELLED)
_LIVE = (PENDING, SENDING)  # still to be sent (a `sending` row whose lease ran out is due again)


# --- queuing ----------------------------------------------------------------------------------

def enqueue(session: Session, *, kind: str, dedupe_key: str, channel: str,
            address: str | None, payload: dict[str, Any], due_at: datetime | None = None,
            person_id: int | None = None) -> Outbox | None:
    """Queue one message unless the same `dedupe_key` was queued before (then None)."""
    if session.exec(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)).first():
        return None
    row = Outbox(kind=kind, dedupe_key=dedupe_key, channel=channel, address=address,
                 payload=json.dumps(payload, ensure_ascii=False, default=str),
                 due_at=due_at or utcnow(), person_id=person_id)
    session.add(row)
    session.flush()
    return row


def enqueue_for_person(session: Session, person: Person, *, kind: str, dedupe_key: str,
                       payload: dict[str, Any], due_at: datetime | None = None) -> Outbox | None:
    """Queue a message to a person on their own channel — by e-mail when they gave an address
    (channel `email`) — and nothing for an erased person."""
    if person.erased_at is not None or not (person.chat_id or person.email):
        return None
    channel, address = ("email", person.email) if person.email else \
        (person.channel, person.chat_id)
    return enqueue(session, kind=kind, dedupe_key=dedupe_key, channel=channel,
                   address=address, payload=payload, due_at=due_at, person_id=person.id)


def keys_with_prefix(session: Session, prefix: str) -> set[str]:
    """The dedupe keys already queued under a prefix (what a mass mailing has reached)."""
    return set(session.exec(select(Outbox.dedupe_key).where(
        col(Outbox.dedupe_key).startswith(prefix))).all())


def count_with_prefix(session: Session, prefix: str) -> int:
    return session.exec(select(func.count()).select_from(Outbox).where(
        col(Outbox.dedupe_key).startswith(prefix))).one()


# --- claiming (the dispatcher) ----------------------------------------------------------------

def postpone_due(session: Session, channels: Sequence[str], now: datetime,
                 until: datetime) -> int:
    """Rows to people on these channels that are due now wait until `until` (also those
    whose lease ran out); how many. Locked rows are skipped, never waited on."""
    due = select(Outbox.id).where(
        col(Outbox.state).in_(_LIVE), col(Outbox.due_at) <= now,
        col(Outbox.channel).in_(channels), col(Outbox.person_id).is_not(None))
    if not is_sqlite(session.get_bind()):
        due = due.with_for_update(skip_locked=True)  # never wait on (or deadlock with) a peer
    result = session.exec(update(Outbox).where(
        col(Outbox.id).in_(due.scalar_subquery()),
    ).values(state=PENDING, due_at=until).execution_options(synchronize_session=False))
    return result.rowcount or 0


def claim_due(session: Session, channels: Sequence[str], now: datetime, lease_until: datetime,
              *, batch: int, last_kinds: frozenset[str]) -> list[Outbox]:
    """Take up to `batch` rows of these channels due at `now` for this worker until
    `lease_until` (state `sending`, one more attempt); `last_kinds` after every other kind,
    then by due time. PostgreSQL locks the candidates with SKIP LOCKED, so concurrent workers
    take disjoint batches without waiting; SQLite takes each row with a conditional UPDATE."""
    due = (select(Outbox)
           .where(col(Outbox.state).in_(_LIVE), col(Outbox.due_at) <= now,
                  col(Outbox.channel).in_(channels))
           .order_by(_last(last_kinds), col(Outbox.due_at), col(Outbox.id)).limit(batch))
    if is_sqlite(session.get_bind()):
        return _take_some(session, due, now, lease_until)
    rows = list(session.exec(due.with_for_update(skip_locked=True)).all())
    for row in rows:
        row.state, row.due_at, row.attempts = SENDING, lease_until, row.attempts + 1
        session.add(row)
    session.flush()
    return rows


def _last(kinds: frozenset[str]) -> Any:
    return case((col(Outbox.kind).in_(sorted(kinds)), 1), else_=0)


def _take_some(session: Session, due: Any, now: datetime, lease_until: datetime,
               tries: int = 3) -> list[Outbox]:
    """SQLite: take what is still due among the candidates; if another worker took them all
    first, look again (now inside our write transaction, so the second look is current)."""
    for _ in range(tries):
        candidates = session.exec(due).all()
        taken = [row for row in candidates if take(session, row, now, lease_until)]
        if taken or not candidates:
            return taken
    return []


def take(session: Session, row: Outbox, now: datetime, lease_until: datetime) -> bool:
    """Claim one row: succeeds only if it is still due (nobody claimed it meanwhile); the row
    becomes a detached copy showing the claim (the UPDATE is the only write)."""
    taken = session.exec(update(Outbox).where(
        col(Outbox.id) == row.id, col(Outbox.state).in_(_LIVE),
        col(Outbox.due_at) <= now,
    ).values(state=SENDING, due_at=lease_until, attempts=col(Outbox.attempts) + 1)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        return False
    session.expunge(row)
    row.state, row.due_at, row.attempts = SENDING, lease_until, row.attempts + 1
    return True


def due_for_address(session: Session, channel: str, address: str,
                    now: datetime) -> list[Outbox]:
    """Rows due for one address (a channel without push pulls them), oldest first."""
    return list(session.exec(select(Outbox).where(
        Outbox.channel == channel, Outbox.address == address,
        col(Outbox.state).in_(_LIVE), col(Outbox.due_at) <= now,
    ).order_by(col(Outbox.due_at), col(Outbox.id))).all())


def has_due_for_address(session: Session, channel: str, address: str, now: datetime) -> bool:
    """Whether anything is due for one address (the open web chat asks this often: one cheap
    read before the write that takes the rows)."""
    return session.exec(select(Outbox.id).where(
        Outbox.channel == channel, Outbox.address == address,
        col(Outbox.state).in_(_LIVE), col(Outbox.due_at) <= now).limit(1)).first() is not None


def set_state(session: Session, row_id: int | None, state: str, *, error: str | None = None,
              sent_at: datetime | None = None, due_at: datetime | None = None) -> None:
    """Record an outcome (the error, when sent, when to try again) without loading the row."""
    values: dict[str, object] = {"state": state, "last_error": error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    if due_at is not None:
        values["due_at"] = due_at
    session.exec(update(Outbox).where(col(Outbox.id) == row_id)
                 .values(**values).execution_options(synchronize_session=False))


def cancel_for_address(session: Session, channel: str, address: str, reason: str) -> int:
    """Nothing more to this address on this channel (an e-mail stop link, a hard bounce):
    what still waits is cancelled. Returns how many rows."""
    result = session.exec(update(Outbox).where(
        col(Outbox.channel) == channel, col(Outbox.address) == address,
        col(Outbox.state) == PENDING).values(state=CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def cancel_pending(session: Session, key_prefix: str, reason: str) -> int:
    """Cancel what still waits under a dedupe-key prefix (news that became untrue before it
    went out). Returns how many rows."""
    result = session.exec(update(Outbox).where(
        col(Outbox.dedupe_key).startswith(key_prefix), col(Outbox.state) == PENDING)
        .values(state=CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def fail_last_sent(session: Session, channel: str, address: str, error: str) -> int | None:
    """A delivery that was accepted and failed later (a bounce by mail): the last row sent to
    this address becomes `failed` with the reason, as a refused one would have. Its id."""
    row_id = session.exec(select(Outbox.id).where(
        Outbox.channel == channel, Outbox.address == address, Outbox.state == SENT,
    ).order_by(col(Outbox.sent_at).desc(), col(Outbox.id).desc()).limit(1)).first()
    if row_id is not None:
        set_state(session, row_id, FAILED, error=error)
    return row_id


# --- operators (`kominn jobs …`) ---------------------------------------------------------------

def counts_by_kind(session: Session, now: datetime) -> list[tuple[str, str, int]]:
    """(kind, bucket, rows): pending rows split into `due` (at `now`) and `scheduled`, the
    others by their state."""
    bucket = case(
        ((col(Outbox.state) == PENDING) & (col(Outbox.due_at) <= now), "due"),
        (col(Outbox.state) == PENDING, "scheduled"),
        else_=Outbox.state)
    query = select(Outbox.kind, bucket, func.count()).group_by(Outbox.kind, bucket)
    return [(kind, state, n) for kind, state, n in session.exec(query)]


def failed(session: Session) -> list[Outbox]:
    return list(session.exec(select(Outbox).where(Outbox.state == FAILED)
                             .order_by(col(Outbox.id))).all())


def waiting_by_channel(session: Session, now: datetime,
                       except_channels: Sequence[str]) -> dict[str, int]:
    """Pending rows due at `now` per channel, leaving out the given channels."""
    return {channel: n for channel, n in session.exec(
        select(Outbox.channel, func.count()).where(
            Outbox.state == PENDING, col(Outbox.due_at) <= now,
            col(Outbox.channel).not_in(list(except_channels))).group_by(Outbox.channel))}


def requeue_failed(session: Session, now: datetime, ids: list[int] | None, *,
                   kind: str | None = None, channel: str | None = None
                   ) -> tuple[list[int], list[int]]:
    """Move `failed` rows (these ids, or all when None; narrowed by kind/channel) back to
    `pending`, due `now`, with fresh attempts: (the ids that moved, the ids left behind).

    One conditional UPDATE … RETURNING decides: only rows still `failed` at that instant move,
    so a row the dispatcher or a second operator touched meanwhile is never reset twice, and the
    ids it returns are exactly what moved (SQLite ≥ 3.35 and PostgreSQL both return them).
    Rows of an erased person stay parked: nothing may be sent to them."""
    erased = exists().where(col(Person.id) == col(Outbox.person_id),
                            col(Person.erased_at).is_not(None))
    scope: list[ColumnElement[bool]] = []
    if ids is not None:
        scope.append(col(Outbox.id).in_(ids))
    if kind:
        scope.append(col(Outbox.kind) == kind)
    if channel:
        scope.append(col(Outbox.channel) == channel)
    moved = sorted(session.execute(
        update(Outbox).where(col(Outbox.state) == FAILED, ~erased, *scope)
        .values(state=PENDING, due_at=now, attempts=0, last_error=None)
        .returning(col(Outbox.id)).execution_options(synchronize_session=False)).scalars())
    if ids is None:  # --all: the only failed rows in scope left behind are the erased ones
        rest = [n for n in session.exec(select(Outbox.id).where(
            col(Outbox.state) == FAILED, erased, *scope)) if n is not None]  # stored: never None
    else:
        rest = sorted(set(ids) - set(moved))
    return moved, rest


def with_erasure(session: Session, ids: Sequence[int]) -> dict[int, tuple[Outbox, Any]]:
    """{id: (row, when its person was erased or None)} for these ids."""
    if not ids:
        return {}
    return {row.id: (row, erased_at) for row, erased_at in session.exec(
        select(Outbox, Person.erased_at).outerjoin(Person, col(Person.id) == Outbox.person_id)
        .where(col(Outbox.id).in_(ids))) if row.id is not None}


# --- erasure and retention ----------------------------------------------------------------------

def forget_person(session: Session, person_id: int | None) -> int:
    """Erasure: every outbox row addressed to the person goes (address, payload, dedupe key
    are personal data); nothing can be sent to an erased person anyway."""
    result = session.exec(delete(Outbox).where(
        col(Outbox.person_id) == person_id))
    return result.rowcount or 0


def empty_finished(session: Session, cutoff: datetime) -> int:
    """Sent and cancelled rows finished before `cutoff` lose recipient and content but keep
    their row: the dedupe key is the memory of what was sent."""
    result = session.exec(update(Outbox).where(
        col(Outbox.state).in_((SENT, CANCELLED)),
        or_(col(Outbox.sent_at) < cutoff,
            col(Outbox.sent_at).is_(None) & (col(Outbox.created_at) < cutoff)),
        or_(col(Outbox.address).is_not(None), col(Outbox.payload) != "{}"),
    ).values(address=None, payload="{}", last_error=None)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0
