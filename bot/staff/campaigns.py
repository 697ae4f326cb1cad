"""Idea competitions and invitations to collaborate as moderators run them from their work chat
(Slack today): the form rules, the list, edit/close/choose, the collaboration invitation, and
what an idea's status view adds (its competition; who said yes to collaborating).

The decisions live here so the Slack adapter stays a thin translation of clicks into calls;
`bot.features.campaigns` and `bot.features.collaboration` own the rules of competitions and
invitations themselves.
Every function taking a database engine is one unit of work and blocking (adapters call it
from a worker thread after acknowledging the request).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.features import campaigns, collaboration
from bot.features.campaigns import Existing
from bot.ideas import book
from bot.localtime import local_date, local_day, parse_day
from dialogs import fields
from dialogs.fields import FormProblem
from dialogs.refs import format_ref
from storage import outbox
from storage.db import transaction
from storage.models import Campaign, Idea

log = logging.getLogger("kominn.staff")

COLLAB_TEXT_MIN = 3
CLOSES_AT = time(23, 59)  # a competition closes at the end of its last day, local time
LISTED = 15  # competitions shown in one list message (two blocks each; Slack allows 50)
CHOICES = 100  # ideas offered in the "mark chosen" multi-select (Slack's option limit)
_REFS = re.compile(r"\bki\s*-?\s*(\d{1,9})\b", re.IGNORECASE)


# --- the create/edit form ---------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignForm:
    """A validated create/edit form; `opens_at` is None when editing (it cannot change)."""

    title: str
    question: str
    text: str | None
    focus_area: str | None
    closes_at: datetime
    opens_at: datetime | None = None


def closing_time(day: date, zone: tzinfo) -> datetime:
    """When a competition whose last day is `day` closes: the end of that day, local time
    (the Slack form's date picker and `kominn campaigns create --closes DATE` alike)."""
    return local_day(day, zone, CLOSES_AT)


def _day(value: str | None) -> date | None:
    """A date picker's day; None when none was picked (or it is unreadable)."""
    try:
        return parse_day(value) if value else None
    except ValueError:
        return None


def check_form(title: str | None, question: str | None, text: str | None, area: str | None,
               opens: str | None, closes: str | None, *, areas: Sequence[str], zone: tzinfo,
               now: datetime, existing: Existing | None = None
               ) -> tuple[CampaignForm | None, list[FormProblem]]:
    """The modal's days and list position turned into what `campaigns.check_campaign` judges
    (the one set of competition rules): it opens at the start of its first day (default
    today) and closes at the end of its last; editing to the same last day keeps the time it
    had (the CLI may have set any)."""
    opens_at = local_day(_day(opens) or local_date(now, zone), zone)
    closes_day = _day(closes)
    closes_at = closing_time(closes_day, zone) if closes_day else None
    if existing is not None and closes_day == local_date(existing.closes_at, zone):
        closes_at = existing.closes_at
    draft, problems = campaigns.check_campaign(
        title=title, question=question, text=text, focus_area=fields.picked_area(area, areas),
        opens_at=opens_at, closes_at=closes_at, areas=areas, zone=zone, now=now,
        existing=existing)
    if draft is None:
        return None, problems
    return CampaignForm(draft.title, draft.question, draft.text, draft.focus_area,
                        draft.closes_at, None if existing is not None else draft.opens_at), []


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignLine:
    """One competition as the list (and the edit form) shows it."""

    id: int
    title: str
    question: str
    text: str | None
    focus_area: str | None
    opens_at: datetime
    closes_at: datetime
    state: str  # open, upcoming, closed
    ideas: int
    supporters: int
    realised: int
    chosen: list[str]
    outcome_sent: bool

    @property
    def existing(self) -> Existing:
        return Existing(self.opens_at, self.closes_at, self.state == "closed")


@dataclass(frozen=True)
class IdeaOption:
    ref: str
    title: str
    chosen: bool


def _line(session: Session, campaign: Campaign, now: datetime) -> CampaignLine:
    figures = campaigns.summary(session, campaign, now)
    return CampaignLine(
        id=campaign.id or 0, title=campaign.title, question=campaign.question,
        text=campaign.text, focus_area=campaign.focus_area, opens_at=campaign.opens_at,
        closes_at=campaign.closes_at, state=figures["state"], ideas=figures["ideas"],
        supporters=figures["supporters"], realised=figures["realised"],
        chosen=list(figures["chosen"]), outcome_sent=campaign.outcome_at is not None)


def list_campaigns(db: DbEngine, now: datetime, limit: int = LISTED
                   ) -> tuple[list[CampaignLine], int]:
    """The newest competitions first (by opening), with their figures; and how many exist."""
    with Session(db) as session:
        total = session.exec(select(func.count()).select_from(Campaign)).one()
        rows = session.exec(select(Campaign).order_by(col(Campaign.opens_at).desc(),
                                                      col(Campaign.id).desc()).limit(limit))
        return [_line(session, c, now) for c in rows], total


def campaign_line(db: DbEngine, campaign_id: int, now: datetime) -> CampaignLine | None:
    with Session(db) as session:
        campaign = session.get(Campaign, campaign_id)
        return _line(session, campaign, now) if campaign is not None else None


def idea_options(db: DbEngine, campaign_id: int,
                 limit: int | None = CHOICES) -> list[IdeaOption]:
    """The competition's answers (merged ones left out: their twin carries them), oldest first."""
    with Session(db) as session:
        rows = session.exec(select(Idea).where(Idea.campaign_id == campaign_id,
                                               Idea.status != "merged")
                            .order_by(col(Idea.id)).limit(limit))
        return [IdeaOption(format_ref(i.id or 0), i.title, i.chosen) for i in rows]


# --- changing ---------------------------------------------------------------------------------

def create_campaign(db: DbEngine, form: CampaignForm, *, by: str) -> int:
    with transaction(db) as session:
        campaign = campaigns.create(session, title=form.title, question=form.question,
                                    closes_at=form.closes_at, opens_at=form.opens_at,
                                    focus_area=form.focus_area, text=form.text, by=by)
        number = campaign.id or 0
    log.info("campaign created", extra={"event": "campaign_created", "campaign": number})
    return number


def update_campaign(db: DbEngine, campaign_id: int, form: CampaignForm) -> None:
    with transaction(db) as session:
        campaigns.update(session, campaigns.get(session, campaign_id), title=form.title,
                         question=form.question, text=form.text, focus_area=form.focus_area,
                         closes_at=form.closes_at)
    log.info("campaign updated", extra={"event": "campaign_updated", "campaign": campaign_id})


def close_campaign(db: DbEngine, campaign_id: int, now: datetime) -> bool:
    """Close now; False when it was already closed (by someone else, or by its time)."""
    with transaction(db) as session:
        campaign = campaigns.get(session, campaign_id)
        if campaigns.state_of(campaign, now) == "closed":
            return False
        campaigns.close(session, campaign, now)
    log.info("campaign closed", extra={"event": "campaign_closed", "campaign": campaign_id})
    return True


@dataclass(frozen=True)
class Chosen:
    refs: list[str]
    told: int  # outcome notices queued by this choice


def parse_refs(text: str | None) -> tuple[list[str], list[str]]:
    """"KI-3, ki 7 KI12" → (["KI-3", "KI-7", "KI-12"], unreadable words)."""
    refs: list[str] = []
    for match in _REFS.finditer(text or ""):
        ref = format_ref(int(match.group(1)))
        if ref not in refs:
            refs.append(ref)
    bad = _REFS.sub(" ", text or "").replace(",", " ").replace(";", " ").split()
    return refs, bad


def choose(db: DbEngine, campaign_id: int, refs: Sequence[str], now: datetime) -> Chosen:
    """Mark the chosen answers; `bot.features.campaigns.choose` closes the competition and tells
    every participant the outcome (once per idea: a later choice marks, but tells nobody again)."""
    prefix = f"campaign_outcome:{campaign_id}:"
    with transaction(db) as session:
        before = outbox.count_with_prefix(session, prefix)
        chosen = campaigns.choose(session, campaigns.get(session, campaign_id), list(refs), now)
        told = outbox.count_with_prefix(session, prefix) - before
    log.info("campaign chosen", extra={"event": "campaign_chosen", "campaign": campaign_id,
                                       "count": len(chosen)})
    return Chosen([format_ref(i.id or 0) for i in chosen], told)


def invite_collaborators(db: DbEngine, ref: str, text: str, *, by: str) -> int:
    """Invite the idea's followers to collaborate; how many were asked. Raises
    `IdeaNotFound` or `CollabError` (not `useful`, text too short/long)."""
    with transaction(db) as session:
        invite, asked = collaboration.invite(session, book.get_idea(session, ref), text, by=by)
        number = invite.id
    log.info("collaboration invited", extra={"event": "collab_invited", "invite": number,
                                             "count": asked})
    return asked
