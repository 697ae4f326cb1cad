"""The read-only ports of `dialogs/`, implemented over one database session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.dedup.index import SimilarIndex
from bot.i18n import Translator, translator
from bot.ideas import book
from dialogs import campaigns
from dialogs.core import CampaignView, IdeaView, SimilarIdea
from dialogs.lifecycle import Status
from dialogs.refs import format_ref
from storage.models import Campaign, Idea, Person


def idea_view(session: Session, idea: Idea) -> IdeaView:
    return IdeaView(
        number=idea.id or 0, ref=format_ref(idea.id or 0), title=idea.title,
        description=idea.description, status=Status(idea.status), focus_area=idea.focus_area,
        place=idea.place, created_at=idea.created_at, status_changed_at=idea.status_changed_at,
        public_note=idea.public_note,
        supporters=book.supporter_count(session, idea.id or 0),
        merged_into=format_ref(idea.merged_into_id) if idea.merged_into_id else None,
        campaign_id=idea.campaign_id,
    )


def campaign_view(campaign: Campaign, now: datetime) -> CampaignView:
    is_open = campaigns.state(campaign.opens_at, campaign.closes_at, campaign.closed_at,
                              now) == "open"
    return CampaignView(id=campaign.id or 0, title=campaign.title, question=campaign.question,
                        text=campaign.text, focus_area=campaign.focus_area,
                        opens_at=campaign.opens_at, closes_at=campaign.closes_at, is_open=is_open)


_IDEAS_SINCE = select(func.count()).select_from(Idea).where(
    Idea.author_id == bindparam("author_id"), Idea.created_at >= bindparam("since"))


class DatabasePorts:
    """What a dialog step may ask, answered from the step's own transaction."""

    def __init__(self, session: Session, person: Person, settings: Settings,
                 index: SimilarIndex | None, now: datetime) -> None:
        self.session = session
        self.person = person
        self.settings = settings
        self.index = index
        self.now = now

    def idea(self, number: int) -> IdeaView | None:
        """Only what the person may see: a public idea, or their own (a hidden idea, or one
        waiting for review, is as unknown to others as on the board)."""
        idea = self.session.get(Idea, number)
        if idea is None or not (book.is_public(idea, self.settings.publish)
                                or idea.author_id == self.person.id):
            return None
        return idea_view(self.session, idea)

    def my_ideas(self) -> Sequence[tuple[IdeaView, str]]:
        return [(idea_view(self.session, i), rel)
                for i, rel in book.ideas_of(self.session, self.person.id or 0)]

    def similar(self, title: str, description: str, limit: int = 3) -> Sequence[SimilarIdea]:
        """Ideas shown to the citizen: those `SimilarIndex.offered` allows (at or above the
        dedup threshold, public, not merged or declined). The text's language is detected
        with the person's chosen language as the prior."""
        if self.index is None:
            return []
        found = []
        for number, score in self.index.similar(title, description, limit=limit,
                                                language=self.person.language):
            idea = self.session.get(Idea, number)
            if idea is None or not self.index.offered(idea, score, self.settings.publish):
                continue
            found.append(SimilarIdea(number=number, ref=format_ref(number), title=idea.title,
                                     status=Status(idea.status), score=score))
        return found

    def focus_areas(self) -> Sequence[str]:
        return self.settings.focus_areas

    def asks_email(self) -> bool:
        return self.person.channel == "web" and bool(self.settings.smtp_url)

    def email_address(self, text: str) -> str | None:
        from email_validator import EmailNotValidError, validate_email

        try:
            return str(validate_email(text.strip(), check_deliverability=False).normalized)
        except EmailNotValidError:
            return None

    def personal_data(self) -> dict[str, Any]:
        return book.personal_data(self.session, self.person)

    def ideas_submitted_today(self) -> int:
        if self.person.id is None:
            return 0
        return self.session.execute(_IDEAS_SINCE, {
            "author_id": self.person.id, "since": self.now - timedelta(days=1)}).scalar_one()

    def campaign(self, campaign_id: int) -> CampaignView | None:
        campaign = self.session.get(Campaign, campaign_id)
        return campaign_view(campaign, self.now) if campaign is not None else None

    def open_campaigns(self) -> Sequence[CampaignView]:
        rows = self.session.exec(select(Campaign).where(
            col(Campaign.closed_at).is_(None), col(Campaign.opens_at) <= self.now,
            col(Campaign.closes_at) > self.now).order_by(col(Campaign.closes_at))).all()
        return [campaign_view(c, self.now) for c in rows]

    def ideas_in_progress(self, limit: int = 10) -> Sequence[IdeaView]:
        rows = self.session.exec(select(Idea).where(Idea.status == Status.USEFUL.value)
                                 .order_by(col(Idea.status_changed_at).desc())
                                 .limit(limit)).all()
        return [idea_view(self.session, i) for i in rows]

    def translator(self, language: str) -> Translator:
        return translator(language)
