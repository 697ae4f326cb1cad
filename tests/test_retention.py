from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, func, select

from bot.followups.retention import Pruned, prune
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import DialogState, Idea, Outbox, ProcessedUpdate, utcnow
from storage.outbox import CANCELLED, FAILED, PENDING, SENT, enqueue
from tests.helpers import ChatPerson


def test_dialog_state_and_update_ids_pruned_after_30_days(runtime: Runtime,
                                                          kari: ChatPerson) -> None:
    kari.submit()
    kari.say("/ny")
    later = utcnow() + timedelta(days=29)
    with transaction(runtime.db) as session:
        assert prune(session, later, 30) == Pruned(0, 0, 0)
    with transaction(runtime.db) as session:
        pruned = prune(session, utcnow() + timedelta(days=31), 30)
    assert pruned.states == 1 and pruned.updates > 5
    with Session(runtime.db) as session:
        assert session.exec(select(func.count()).select_from(DialogState)).one() == 0
        assert session.exec(select(func.count()).select_from(ProcessedUpdate)).one() == 0
        assert session.exec(select(func.count()).select_from(Idea)).one() == 1


def test_finished_notices_lose_recipient_and_content_but_keep_their_key(
        runtime: Runtime) -> None:
    """After the retention time a sent notice keeps only what stops it being sent again."""
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=2)
    with transaction(runtime.db) as session:
        for key, state, sent_at in (("sent-old", SENT, old), ("sent-new", SENT, recent),
                                    ("cancelled-old", CANCELLED, None),
                                    ("failed-old", FAILED, None), ("pending-old", PENDING, None)):
            row = enqueue(session, kind="status_changed", dedupe_key=key, channel="telegram",
                          address="4201", payload={"ref": "KI-1", "title": "Lys i løypa"})
            assert row is not None
            row.state, row.sent_at, row.created_at, row.last_error = state, sent_at, old, "x"
            session.add(row)
    with transaction(runtime.db) as session:
        assert prune(session, now, 30).notices == 2
    with Session(runtime.db) as session:
        rows = {r.dedupe_key: r for r in session.exec(select(Outbox))}
    for key in ("sent-old", "cancelled-old"):
        assert (rows[key].address, rows[key].payload, rows[key].last_error) == (None, "{}", None)
    for key in ("sent-new", "failed-old", "pending-old"):
        assert rows[key].address == "4201" and "Lys i løypa" in rows[key].payload
    with transaction(runtime.db) as session:  # the key still refuses the same notice
        assert enqueue(session, kind="status_changed", dedupe_key="sent-old",
                       channel="telegram", address="4201", payload={}) is None
        assert prune(session, now, 30).notices == 0  # nothing left to empty
