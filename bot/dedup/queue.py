"""Suspected duplicates for the moderators' triage queue, shared by every way an idea comes in
(citizen chat, Slack, CSV import), so an idea is queued the same way whoever submitted it."""

from __future__ import annotations

from sqlmodel import Session

from bot.dedup.index import TRIAGE_WAIT, SimilarIndex
from bot.ideas import book
from storage.models import Idea


def queue_similar(session: Session, index: SimilarIndex | None, idea: Idea,
                  limit: int = 5, language: str | None = None) -> int:
    """Everything the detector finds at or above the triage threshold goes to the
    moderators' queue (what the citizen saw and called new, and the weaker matches).
    `language`: the author's chosen language, if known (the prior of language detection).
    Returns how many pairs were newly queued."""
    if index is None:
        return 0
    found = [(n, s) for n, s in index.similar(idea.title, idea.description, limit=limit,
                                              wait=TRIAGE_WAIT, language=language) if n != idea.id]
    return book.queue_candidates(session, idea.id or 0, found)
