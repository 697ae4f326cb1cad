"""Invitations to collaborate on a `useful` idea: who is asked, how it reads, what they said.

Moderators invite from Slack; the author and the supporters who agreed to follow-ups get one
notice each through the outbox (quiet hours respected); answers are stored per person and
shown only to moderators, by the name their channel knows them by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.followups.listeners import followers
from bot.i18n import Translator
from bot.wiring import Applied, Feature
from dialogs import collab as collab_dialogs
from dialogs.lifecycle import Status
from dialogs.refs import format_ref
from dialogs.types import Reply
from storage.models import CollabAnswer, CollabInvite, Idea, Person, utcnow
from storage.outbox import enqueue_for_person

TEXT_MAX = 1000


class CollabError(ValueError):
    pass


def invite(session: Session, idea: Idea, text: str, *, by: str) -> tuple[CollabInvite, int]:
    """Create the invitation and queue it to every follower; (invite, people asked)."""
    text = text.strip()
    if Status(idea.status) is not Status.USEFUL:
        raise CollabError("only ideas that are being worked on (useful) can invite collaborators")
    if not 3 <= len(text) <= TEXT_MAX:
        raise CollabError(f"the invitation needs a text of 3–{TEXT_MAX} characters")
    row = CollabInvite(idea_id=idea.id or 0, text=text, created_by=by)
    session.add(row)
    session.flush()
    asked = 0
    for person, _role in followers(session, idea):
        if enqueue_for_person(session, person, kind="collab_invite",
                              dedupe_key=f"collab_invite:{row.id}:{person.id}",
                              payload={"invite": row.id, "ref": format_ref(idea.id or 0),
                                       "title": idea.title, "text": text}):
            asked += 1
    return row, asked


def answers(session: Session, idea_id: int) -> list[dict[str, Any]]:
    """Every answer to the idea's invitations — for moderators only."""
    rows = session.exec(select(CollabAnswer, CollabInvite, Person)
                        .join(CollabInvite, col(CollabInvite.id) == CollabAnswer.invite_id)
                        .join(Person, col(Person.id) == CollabAnswer.person_id)
                        .where(CollabInvite.idea_id == idea_id)
                        .order_by(col(CollabAnswer.at))).all()
    return [{"invite": invite.id, "answer": answer.answer, "at": answer.at.isoformat(),
             "channel": person.channel,
             "name": person.display_name or ("innbygger" if person.erased_at else
                                             person.channel_user_id)}
            for answer, invite, person in rows]


def apply_answer(applied: Applied, data: dict[str, Any]) -> None:
    """Store (or change) one person's answer; an unknown invitation is ignored."""
    session, person = applied.session, applied.person
    if session.get(CollabInvite, data["invite"]) is None:
        return
    row = session.exec(select(CollabAnswer).where(
        CollabAnswer.invite_id == data["invite"], CollabAnswer.person_id == person.id)).first()
    if row is None:
        row = CollabAnswer(invite_id=data["invite"], person_id=person.id or 0,
                           answer=data["answer"])
    row.answer, row.at = data["answer"], utcnow()
    session.add(row)


def render_invite(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("collab.invite", ref=p["ref"], title=p["title"], text=p["text"]),
                  collab_dialogs.answer_choices(p["invite"], t))]


# --- what the moderators' status view adds -------------------------------------------------

@dataclass(frozen=True)
class YesAnswer:
    name: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class CollabSummary:
    """For moderators only: invitations sent for the idea, and who said yes."""

    invites: int
    yes: list[YesAnswer] = field(default_factory=list)


def status_extra(session: Session, idea: Idea) -> dict[str, Any]:
    """The idea's collaboration answers (the adapter shows them to moderators only)."""
    invites = session.exec(select(func.count()).select_from(CollabInvite).where(
        CollabInvite.idea_id == idea.id)).one()
    yes = [YesAnswer(a["name"], a["channel"], datetime.fromisoformat(a["at"]))
           for a in answers(session, idea.id or 0) if a["answer"] == "yes"]
    return {"collab": CollabSummary(invites, yes)}


FEATURE = Feature(
    "collaboration",
    dialogs=collab_dialogs.PART,
    effects={collab_dialogs.ANSWER_EFFECT: apply_answer},
    renderers={"collab_invite": render_invite},
    status_extras=(status_extra,),
)
