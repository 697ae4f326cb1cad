"""What follows a change to an idea, inside the change's transaction, so a notice exists
exactly when the change does: status change → the author and supporters who agreed to
follow-ups; merge → the merged idea's followers learn which idea they now follow; support →
the author hears at milestones (1, 5, 10, 25 … supporters); erasure → nothing more is sent."""

from __future__ import annotations

from typing import Any, TypeGuard

from sqlmodel import Session

from bot.config import Settings
from bot.ideas import book
from dialogs.lifecycle import Status
from storage import outbox
from storage.models import Idea, Person, StatusChange
from storage.outbox import enqueue_for_person

SUPPORT_MILESTONES = frozenset({1, 5, 10, 25, 50, 100, 250, 500, 1000})


def wants_followups(person: Person | None) -> TypeGuard[Person]:
    return (person is not None and person.follow_up_consent is True
            and person.erased_at is None and bool(person.chat_id))


def followers(session: Session, idea: Idea) -> list[tuple[Person, str]]:
    """The author and supporters who agreed to follow-ups, each once: (person, role)."""
    found: list[tuple[Person, str]] = []
    seen: set[int] = set()
    ids = [(idea.author_id, "author")] + [
        (s.person_id, "supporter") for s in book.supporters(session, idea.id or 0)]
    for person_id, role in ids:
        if person_id is None or person_id in seen:
            continue
        seen.add(person_id)
        person = session.get(Person, person_id)
        if wants_followups(person):
            found.append((person, role))
    return found


def moderator_channel(settings: Settings) -> str | None:
    """The Slack channel for nudges and the digest, when Slack can be posted to at all."""
    if not settings.slack_bot_token:
        return None
    return settings.moderator_channel or settings.slack_ideas_channel


def idea_payload(idea: Idea) -> dict[str, Any]:
    return {"idea": idea.id, "ref": book.ref_of(idea), "title": idea.title}



def on_status_changed(session: Session, idea: Idea, change: StatusChange) -> None:
    if change.to_status == Status.MERGED.value:
        return  # on_merged tells them which idea they follow now
    for person, role in followers(session, idea):
        enqueue_for_person(
            session, person, kind="status_changed", dedupe_key=f"status:{change.id}:{person.id}",
            payload={**idea_payload(idea), "role": role, "from": change.from_status,
                     "to": change.to_status, "note": change.note},
            due_at=change.at)


def on_merged(session: Session, idea: Idea, into: Idea, change: StatusChange) -> None:
    for person, role in followers(session, idea):
        enqueue_for_person(
            session, person, kind="merged", dedupe_key=f"merged:{change.id}:{person.id}",
            payload={**idea_payload(idea), "role": role, "into_ref": book.ref_of(into),
                     "into_title": into.title},
            due_at=change.at)


def on_supported(session: Session, idea: Idea, person_id: int) -> None:
    count = book.supporter_count(session, idea.id or 0)
    if count not in SUPPORT_MILESTONES or idea.author_id is None:
        return
    author = session.get(Person, idea.author_id)
    if wants_followups(author):
        enqueue_for_person(session, author,
                           kind="supported", dedupe_key=f"support:{idea.id}:{count}",
                           payload={**idea_payload(idea), "count": count})


def on_erased(session: Session, person: Person) -> None:
    outbox.forget_person(session, person.id)


def on_hidden(session: Session, idea: Idea) -> None:
    """The author is told when a moderator takes their idea off the public pages, and why
    (whatever their follow-up choice: it is about their own text)."""
    author = session.get(Person, idea.author_id) if idea.author_id else None
    if author is None:
        return
    at = idea.hidden_at.isoformat() if idea.hidden_at else ""
    enqueue_for_person(session, author, kind="idea_hidden",
                       dedupe_key=f"hidden:{idea.id}:{at}",
                       payload={**idea_payload(idea), "reason": idea.hidden_reason})


def on_shown(session: Session, idea: Idea) -> None:
    """Shown again: a notice that it was hidden which has not gone out yet is cancelled (it
    is no longer true, and then there is no news); else the author is told."""
    if outbox.cancel_pending(session, f"hidden:{idea.id}:", "shown again before delivery"):
        return
    author = session.get(Person, idea.author_id) if idea.author_id else None
    if author is None:
        return
    at = idea.updated_at.isoformat() if idea.updated_at else ""
    enqueue_for_person(session, author, kind="idea_shown", dedupe_key=f"shown:{idea.id}:{at}",
                       payload=idea_payload(idea))


LISTENERS = book.IdeaListeners(status_changed=(on_status_changed,), merged=(on_merged,),
                               supported=(on_supported,), erased=(on_erased,),
                               hidden=(on_hidden,), shown=(on_shown,))
