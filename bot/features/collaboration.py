"""Invitations to collaborate on a `useful` idea: who is asked, how it reads, what they said.

Moderators invite from Slack; the author and the supporters who agreed to follow-ups get one
notice each through the outbox (quiet hours respected); answers are stored per person and
shown only to moderators, by the name their channel knows them by."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from bot.conversation.engine import CUSTOM_EFFECTS, Applied
from bot.followups import rules
from bot.followups.notices import enqueue_for_person, renderer
from bot.i18n import Translator
from dialogs import collab as collab_dialogs
from dialogs.lifecycle import Status
from dialogs.refs import format_ref
from dialogs.types import Reply
from storage.models import CollabAnswer, CollabInvite, Idea, Person, utcnow

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
    for person, _role in rules.followers(session, idea):
        if enqueue_for_person(session, person, kind="collab_invite",
                              dedupe_key=f"collab_invite:{row.id}:{person.id}",
                              payload={"invite": row.id, "ref": format_ref(idea.id or 0),
                                       "title": idea.title, "text": text}):
            asked += 1
    return row, asked


def answers(session: Session, idea_id: int) -> list[dict[str, Any]]:
    """Every answer to the idea's invitations — for moderators only."""
    rows = session.exec(select(CollabAnswer, CollabInvite, Person)
                        .join(CollabInvite, CollabInvite.id == CollabAnswer.invite_id)
                        .join(Person, Person.id == CollabAnswer.person_id)
                        .where(CollabInvite.idea_id == idea_id)
                        .order_by(CollabAnswer.at)).all()
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


@renderer("collab_invite")
def render_invite(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("collab.invite", ref=p["ref"], title=p["title"], text=p["text"]),
                  collab_dialogs.answer_choices(p["invite"], t))]


CUSTOM_EFFECTS[collab_dialogs.ANSWER_EFFECT] = apply_answer
