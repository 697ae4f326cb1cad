"""Ideas as plain, non-personal records: the shape of `ideas list/show --format json`,
and the base of the open-data export."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.ideas import book
from dialogs.refs import format_ref
from storage.models import Idea


def idea_record(session: Session, idea: Idea) -> dict[str, Any]:
    return {
        "ref": format_ref(idea.id or 0),
        "title": idea.title,
        "description": idea.description,
        "status": idea.status,
        "focus_area": idea.focus_area,
        "place": idea.place,
        "channel": idea.channel,
        "created_at": idea.created_at.isoformat(),
        "updated_at": idea.updated_at.isoformat(),
        "supporters_count": book.supporter_count(session, idea.id or 0),
        "merged_into": format_ref(idea.merged_into_id) if idea.merged_into_id else None,
        "public_note": idea.public_note,
        "campaign_id": idea.campaign_id,
    }


def idea_detail(session: Session, idea: Idea) -> dict[str, Any]:
    """`ideas show --format json`: the record plus supporters and the audit history."""
    record = idea_record(session, idea)
    record["supporters"] = [
        {"since": s.created_at.isoformat()} for s in book.supporters(session, idea.id or 0)
    ]
    record["history"] = [
        {"from": h.from_status, "to": h.to_status, "at": h.at.isoformat(), "by": h.by,
         "note": h.note}
        for h in book.history(session, idea.id or 0)
    ]
    return record
