"""The benefit check (nyttesjekk): KOMINN_BENEFIT_CHECK_DAYS after an idea was realised, its
author is asked whether it helped (Ja / Delvis / Nei, then an optional comment). The report
counts the answers. The conversation is `dialogs/benefit.py`; here are the scheduled rule,
the notice, and the effects that store the answers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot.config import Settings
from bot.followups.listeners import idea_payload, wants_followups
from bot.i18n import Translator
from bot.ideas import book
from bot.wiring import Applied, Feature
from dialogs import benefit
from dialogs.lifecycle import Status
from dialogs.types import Reply
from storage import outbox
from storage.models import BenefitAnswer, Idea, Person
from storage.outbox import enqueue_for_person

log = logging.getLogger("kominn.followups")


def rule_benefit_check(session: Session, settings: Settings, now: datetime) -> int:
    """KOMINN_BENEFIT_CHECK_DAYS after `realised`, ask the author whether it helped."""
    cutoff = now - timedelta(days=settings.benefit_check_days)
    done = outbox.keys_with_prefix(session, "benefit:")
    queued = 0
    ideas = session.exec(select(Idea).where(Idea.status == Status.REALISED.value,
                                            col(Idea.status_changed_at) <= cutoff,
                                            col(Idea.author_id).is_not(None))).all()
    for idea in ideas:
        key = f"benefit:{idea.id}:{idea.author_id}"
        if key in done:
            continue
        author = session.get(Person, idea.author_id)
        answered = session.exec(select(BenefitAnswer.id).where(
            BenefitAnswer.idea_id == idea.id, BenefitAnswer.person_id == idea.author_id)).first()
        if wants_followups(author) and not answered:
            queued += bool(enqueue_for_person(
                session, author, kind="benefit_check", dedupe_key=key,
                payload={**idea_payload(idea), "days": settings.benefit_check_days},
                due_at=now))
    return queued


def render_benefit_check(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.benefit_ask", ref=p["ref"], title=p["title"], n=p["days"]),
                  benefit.answer_choices(int(p["idea"]), t))]



def apply_benefit_answer(applied: Applied, data: dict[str, Any]) -> None:
    """Store (or change) the author's answer; anyone else's press is ignored."""
    session, person = applied.session, applied.person
    idea = session.get(Idea, int(data["idea"]))
    if idea is None or idea.author_id != person.id or data.get("answer") not in benefit.ANSWERS:
        log.warning("benefit answer refused", extra={"event": "benefit_refused"})
        return
    row = _benefit_row(session, idea.id, person.id)
    if row is None:
        row = BenefitAnswer(idea_id=idea.id or 0, person_id=person.id, answer=data["answer"])
    row.answer = data["answer"]
    session.add(row)
    log.info("benefit answer stored", extra={"event": "benefit_answer",
                                             "ref": book.ref_of(idea)})


def apply_benefit_comment(applied: Applied, data: dict[str, Any]) -> None:
    row = _benefit_row(applied.session, data.get("idea"), applied.person.id)
    if row is None:
        return
    row.comment = str(data.get("comment") or "")[:benefit.COMMENT_MAX] or None
    applied.session.add(row)


def _benefit_row(session: Session, idea_id: int | None, person_id: int | None
                 ) -> BenefitAnswer | None:
    return session.exec(select(BenefitAnswer).where(
        BenefitAnswer.idea_id == idea_id, BenefitAnswer.person_id == person_id)).first()


FEATURE = Feature(
    "benefit_check",
    dialogs=benefit.PART,
    effects={benefit.ANSWER_EFFECT: apply_benefit_answer,
             benefit.COMMENT_EFFECT: apply_benefit_comment},
    renderers={"benefit_check": render_benefit_check},
    rules=(rule_benefit_check,),
)
