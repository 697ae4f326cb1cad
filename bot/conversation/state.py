"""A person's place in the conversation and the record of handled updates, as the hot path
reads and writes them: plain columns through statements built once (constructing SQLAlchemy
expressions costs more than SQLite takes to run them), one query per update for the person,
their state, whether the update was seen and how many they sent in the last minute."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, col

from bot.conversation.replies import encode_replies
from dialogs.core import State
from dialogs.types import Incoming, Reply
from storage.models import DialogState, Person, ProcessedUpdate


@dataclass(frozen=True)
class StoredState:
    """A person's dialog_state row as the hot path reads it (plain columns, no ORM object:
    it is written back with one prebuilt UPDATE)."""

    flow: str | None
    step: str | None
    data: str | None
    token: int
    started_at: datetime | None


def load_state(stored: StoredState | None) -> State:
    if stored is None or stored.flow is None:
        return State(token=stored.token if stored else 0)
    return State(flow=stored.flow, step=stored.step, data=json.loads(stored.data or "{}"),
                 token=stored.token)


# Statements of the hot path (every update), built once: constructing SQLAlchemy expressions
# costs more than SQLite takes to run them.
_UPDATES = ProcessedUpdate.__table__  # type: ignore[attr-defined]
SEEN_AND_RECENT = sa_select(_UPDATES.c.update_id).where(
    _UPDATES.c.channel == bindparam("channel"),
    or_(_UPDATES.c.update_id == bindparam("update_id"),
        and_(_UPDATES.c.user_id == bindparam("user_id"), _UPDATES.c.at >= bindparam("since"))))
_RECORD_UPDATE = sa_insert(_UPDATES)
MARK_DELIVERED = sa_update(_UPDATES).where(
    _UPDATES.c.channel == bindparam("in_channel"),
    _UPDATES.c.update_id.in_(bindparam("ids", expanding=True)),
    _UPDATES.c.delivered_at.is_(None)).values(delivered_at=bindparam("now"), replies=None,
                                               sending_until=None)
# The sending lease (several workers): `sending_until` is set when the update is handled and
# is not NULL exactly while replies wait to be confirmed as delivered. A worker takes over
# replies only with one of these conditional UPDATEs, which succeed for one worker at most:
# the lease must have run out (its worker died or gave up) — or, at a polling start, where
# this process is the only consumer, any lease (`ANY_LEASE`).
_UNSENT = (_UPDATES.c.channel == bindparam("in_channel"), _UPDATES.c.delivered_at.is_(None),
           _UPDATES.c.replies.is_not(None))
TAKE_OVER = sa_update(_UPDATES).where(
    *_UNSENT, _UPDATES.c.update_id == bindparam("in_update"),
    _UPDATES.c.sending_until < bindparam("now")).values(sending_until=bindparam("until"))
TAKE_EXPIRED = sa_update(_UPDATES).where(
    *_UNSENT, _UPDATES.c.sending_until < bindparam("now"),
).values(sending_until=bindparam("until")).returning(
    _UPDATES.c.update_id, _UPDATES.c.user_id, _UPDATES.c.replies)
TAKE_ANY = sa_update(_UPDATES).where(
    *_UNSENT, _UPDATES.c.sending_until.is_not(None),
).values(sending_until=bindparam("until")).returning(
    _UPDATES.c.update_id, _UPDATES.c.user_id, _UPDATES.c.replies)
# A live worker still trying to send (Telegram unreachable) keeps its lease — only while it
# still holds it: once run out, another worker may have taken it.
RENEW = sa_update(_UPDATES).where(
    *_UNSENT, _UPDATES.c.update_id == bindparam("in_update"),
    _UPDATES.c.sending_until >= bindparam("now")).values(sending_until=bindparam("until"))
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
PERSON_AND_STATE = (
    sa_select(Person, *_STATE_COLUMNS, _SEEN, _RECENT)
    .outerjoin(_STATE, and_(_STATE.c.channel == Person.channel,
                            _STATE.c.user_id == Person.channel_user_id))
    .where(col(Person.channel) == bindparam("channel"),
           col(Person.channel_user_id) == bindparam("user_id")))
STATE_ALONE = sa_select(*_STATE_COLUMNS).where(
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


def record_update(session: Session, incoming: Incoming, user_id: str | None,
                   replies: list[Reply], now: datetime, lease_until: datetime) -> None:
    """The update is handled; its replies are this worker's to send until `lease_until`."""
    encoded = encode_replies(replies) if replies else None
    session.execute(_RECORD_UPDATE, {
        "channel": incoming.channel, "update_id": str(incoming.update_id), "user_id": user_id,
        "replies": encoded, "at": now, "sending_until": lease_until if replies else None})


def save_state(session: Session, stored: StoredState | None, incoming: Incoming,
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
