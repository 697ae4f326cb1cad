"""Applying what a dialog step asked for (its effects) inside the step's own transaction, so
the new state and everything it caused are saved together or not at all.

The core effects (a new idea, a support, a language, consent, erasure) are applied here;
`Custom(kind, data)` effects belong to features (a benefit-check answer, a collaboration
answer) and go to the handler the feature contributes for that kind (bot/wiring.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from bot.dedup.index import SimilarIndex
from bot.dedup.queue import queue_similar
from bot.ideas import book
from bot.wiring import Applied, CustomEffect
from dialogs import submit
from dialogs.core import (
    AddSupport,
    Context,
    Custom,
    Effect,
    ErasePerson,
    SetConsent,
    SetLanguage,
    SubmitIdea,
)
from storage.models import Idea

log = logging.getLogger("kominn.engine")

ANONYMOUS_AUTHOR = "citizen"


@dataclass(frozen=True)
class Effects:
    """The effect handlers of one engine: the idea book (with its listeners), the similar
    ideas index (suspected duplicates go to triage) and the features' custom effects."""

    ideas: book.IdeaBook
    index: SimilarIndex | None
    custom: Mapping[str, CustomEffect]

    def apply(self, effect: Effect, applied: Applied, ctx: Context) -> None:
        """Apply one effect inside the step's transaction."""
        session, person = applied.session, applied.person
        if isinstance(effect, SubmitIdea):
            self._submit(effect, applied, ctx)
        elif isinstance(effect, AddSupport):
            idea = book.get_idea(session, effect.number)
            self.ideas.add_support(session, idea, person.id or 0)
        elif isinstance(effect, SetLanguage):
            person.language = effect.language
            session.add(person)
        elif isinstance(effect, SetConsent):
            if effect.follow_up is not None:
                person.follow_up_consent = effect.follow_up
            if effect.invite is not None:
                person.invite_consent = effect.invite
            if effect.email is not None:
                person.email = effect.email or None
            session.add(person)
        elif isinstance(effect, ErasePerson):
            book.forget_updates(session, person.channel, person.channel_user_id)
            self.ideas.erase_person(session, person)
        elif isinstance(effect, Custom):
            self.custom[effect.kind](applied, effect.data)
        else:  # pragma: no cover - the Effect union is closed
            raise TypeError(f"unknown effect {effect!r}")

    def _submit(self, effect: SubmitIdea, applied: Applied, ctx: Context) -> None:
        session, person = applied.session, applied.person
        idea = self.ideas.create_idea(session, book.NewIdea(
            title=effect.title, description=effect.description, channel=applied.incoming.channel,
            focus_area=effect.focus_area, place=effect.place, latitude=effect.latitude,
            longitude=effect.longitude, author_id=person.id, campaign_id=effect.campaign_id,
            created_at=ctx.now), by=f"{applied.incoming.channel}:{ANONYMOUS_AUTHOR}")
        self._queue_similar(session, idea, person.language)
        applied.changed_ideas.append(idea)
        ref = book.ref_of(idea)
        log.info("idea submitted", extra={"event": "idea_submitted", "ref": ref,
                                          "channel": applied.incoming.channel})
        waits = idea.hidden_at is None and not book.is_public(idea, applied.settings.publish)
        applied.replies.append(submit.receipt(
            ctx.t, ref, bool(person.follow_up_consent), offer_invite=person.invite_consent is None,
            after_review=waits))

    def _queue_similar(self, session: Session, idea: Idea, language: str | None) -> None:
        """Suspected duplicates go to the moderators' queue (shared with Slack and import),
        found as the citizen's similar-ideas step found them (their language the prior)."""
        queue_similar(session, self.index, idea, language=language)
