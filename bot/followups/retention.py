"""Storage limitation (GDPR art. 5): conversation leftovers are deleted after
KOMINN_RETENTION_DAYS (default 30). Ideas, supports and history are the public record and stay.

Finished notices (sent or cancelled) lose their recipient and content after the same time but
keep their row: the outbox's dedupe key is the memory of what was sent, and without it a
scheduled rule would send the same notice again. Failed notices keep everything until sent or
given up on by an operator (`kominn jobs requeue`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from storage import outbox
from storage.models import DialogState, ProcessedUpdate


@dataclass(frozen=True)
class Pruned:
    """How many rows the retention pass deleted or emptied."""

    states: int
    updates: int
    notices: int


def prune(session: Session, now: datetime, days: int) -> Pruned:
    """Delete dialog state untouched and update ids older than `days`, and empty the notices
    finished before then."""
    cutoff = now - timedelta(days=days)
    states = session.exec(delete(DialogState).where(
        col(DialogState.updated_at) < cutoff))
    updates = session.exec(delete(ProcessedUpdate).where(
        col(ProcessedUpdate.at) < cutoff))
    notices = outbox.empty_finished(session, cutoff)
    return Pruned(states.rowcount or 0, updates.rowcount or 0, notices)
