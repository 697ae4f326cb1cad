"""Storage limitation (GDPR art. 5): conversation leftovers are deleted after
KOMINN_RETENTION_DAYS (default 30). Ideas, supports and history are the public record and stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session

from storage.models import DialogState, ProcessedUpdate


def prune(session: Session, now: datetime, days: int) -> tuple[int, int]:
    """Delete dialog state untouched and update ids older than `days`; (states, updates)."""
    cutoff = now - timedelta(days=days)
    states = session.exec(delete(DialogState).where(  # type: ignore[call-overload]
        DialogState.updated_at < cutoff))
    updates = session.exec(delete(ProcessedUpdate).where(  # type: ignore[call-overload]
        ProcessedUpdate.at < cutoff))
    return states.rowcount or 0, updates.rowcount or 0
