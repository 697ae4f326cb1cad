"""Idea competitions (idékonkurranser): the municipality asks a question, citizens answer.

Rules that run with the follow-up scans (bot/followups/rules.py), each idempotent through the
outbox dedupe key: when a competition opens, one invitation to everyone who asked for invitations;
three days before it closes, one reminder to those who started an answer but did not send it;
when it closes, a summary to the moderators' Slack channel. When moderators choose ideas, every
participant is told the outcome. Quiet hours and Telegram's rate ceiling are the dispatcher's
and the Telegram sender's business, as for every notice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.followups.listeners import moderator_channel
from bot.i18n import Translator, translator
from bot.ideas import book
from bot.localtime import local_date
from bot.wiring import Feature
from dialogs import campaigns as campaign_dialogs
from dialogs.fields import FormProblem, match_area
from dialogs.payload import global_choice
from dialogs.refs import format_ref
from dialogs.text import clean
from dialogs.types import Reply
from storage import outbox
from storage.models import Campaign, DialogState, Idea, Person, Support, utcnow
from storage.outbox import enqueue, enqueue_for_person
from storage.pace import SCAN_JOB, nudge

REMINDER_BEFORE = timedelta(days=3)
TITLE_MIN, TITLE_MAX = 3, 200
QUESTION_MIN, QUESTION_MAX = 5, 1000
TEXT_MAX = 2000


class CampaignError(ValueError):
    pass


class CampaignRefused(CampaignError):
    """A competition that breaks the rules of `check_campaign`; says every problem."""

    def __init__(self, problems: Sequence[FormProblem]) -> None:
        self.problems = list(problems)
        english = translator("en")
        super().__init__("; ".join(f"{p.field}: {english(p.key, **p.params)}"
                                   for p in self.problems))


# --- the rules of a competition ----------------------------------------------------------------

@dataclass(frozen=True)
class Existing:
    """What the rules need to know of the competition being edited."""

    opens_at: datetime
    closes_at: datetime
    closed: bool


@dataclass(frozen=True)
class Draft:
    """A competition that passed `check_campaign`: cleaned texts, aware UTC times."""

    title: str
    question: str
    text: str | None
    focus_area: str | None
    opens_at: datetime
    closes_at: datetime


def check_campaign(*, title: str | None, question: str | None, text: str | None,
                   focus_area: str | None, opens_at: datetime | None,
                   closes_at: datetime | None, areas: Sequence[str], zone: tzinfo,
                   now: datetime, existing: Existing | None = None
                   ) -> tuple[Draft | None, list[FormProblem]]:
    """Every rule of a competition, field by field, for every form that makes or edits one
    (the Slack modal, `kominn campaigns create`): 3–200 characters of title, 5–1000 of
    question, at most 2000 of text (cleaned like any typed text), a configured focus area or
    none, opening today or later (default now), closing in the future and after it opens.
    Editing keeps the opening; a closed competition keeps its closing time."""
    texts = _check_texts(title, question, text)
    problems = list(texts.problems)
    area = match_area(focus_area, areas)
    if focus_area and area is None:
        problems.append(FormProblem("area", "slack.modal.pick_area", {}))
    starts = existing.opens_at if existing is not None else opens_at or now
    if existing is None and local_date(starts, zone) < local_date(now, zone):
        problems.append(FormProblem("opens", "slack_campaigns.opens_past", {}))
    problems += _check_closes(closes_at, starts, now, existing)
    if problems or closes_at is None:
        return None, problems
    return Draft(texts.title, texts.question, texts.text, area, starts, closes_at), []


@dataclass(frozen=True)
class Texts:
    title: str
    question: str
    text: str | None
    problems: list[FormProblem]


def _check_texts(title: str | None, question: str | None, text: str | None) -> Texts:
    """The competition's own texts, cleaned; the rule every stored competition keeps."""
    clean_title, clean_question = clean(title), clean(question, multiline=True)
    clean_text = clean(text, multiline=True) or None
    problems = [FormProblem(name, "slack_campaigns.length", {"min": low, "max": high})
                for name, value, low, high in (
                    ("title", clean_title, TITLE_MIN, TITLE_MAX),
                    ("question", clean_question, QUESTION_MIN, QUESTION_MAX))
                if not low <= len(value) <= high]
    if clean_text and len(clean_text) > TEXT_MAX:
        problems.append(FormProblem("text", "slack_campaigns.too_long", {"max": TEXT_MAX}))
    return Texts(clean_title, clean_question, clean_text, problems)


def _check_closes(closes_at: datetime | None, opens_at: datetime, now: datetime,
                  existing: Existing | None) -> list[FormProblem]:
    """A closing time that is given and, when it is new or moved, in the future and after the
    opening; a closed competition's closing time cannot move (it would reopen)."""
    if closes_at is None:
        return [FormProblem("closes", "slack_campaigns.closes_missing", {})]
    if existing is not None and closes_at == existing.closes_at:
        return []
    if existing is not None and existing.closed:
        return [FormProblem("closes", "slack_campaigns.closed_keeps_dates", {})]
    if closes_at <= now:
        return [FormProblem("closes", "slack_campaigns.closes_past", {})]
    if closes_at <= opens_at:
        return [FormProblem("closes", "slack_campaigns.closes_before_opens", {})]
    return []


def check_stored(campaign: Campaign | None, *, title: str, question: str, text: str | None,
                 opens_at: datetime, closes_at: datetime) -> Texts:
    """What every stored competition keeps, whoever writes it (also a script or a test that
    backdates one): the texts' rules, closing after opening, and a closed competition's
    closing time unmoved. Raises `CampaignRefused`."""
    texts = _check_texts(title, question, text)
    problems = list(texts.problems)
    if campaign is None or closes_at != campaign.closes_at:
        if campaign is not None and campaign.closed_at is not None:
            problems.append(FormProblem("closes", "slack_campaigns.closed_keeps_dates", {}))
        elif closes_at <= opens_at:
            problems.append(FormProblem("closes", "slack_campaigns.closes_before_opens", {}))
    if problems:
        raise CampaignRefused(problems)
    return texts


def create(session: Session, *, title: str, question: str, closes_at: datetime,
           opens_at: datetime | None = None, focus_area: str | None = None,
           text: str | None = None, by: str) -> Campaign:
    """Store a new competition (forms check it first with `check_campaign`)."""
    opens_at = opens_at or utcnow()
    texts = check_stored(None, title=title, question=question, text=text, opens_at=opens_at,
                         closes_at=closes_at)
    campaign = Campaign(title=texts.title, question=texts.question, text=texts.text,
                        focus_area=focus_area, opens_at=opens_at, closes_at=closes_at,
                        created_by=by)
    session.add(campaign)
    session.flush()
    nudge(session, SCAN_JOB)  # invitations go out within seconds, from whichever worker
    return campaign


def update(session: Session, campaign: Campaign, *, title: str, question: str,
           text: str | None, focus_area: str | None, closes_at: datetime) -> Campaign:
    """Change a competition's texts, area or closing time, by the rules `create` applies.

    The opening cannot move (invitations may be out); a closed competition keeps its dates, and
    a competition whose closing time is moved past `now` is not reopened by it."""
    texts = check_stored(campaign, title=title, question=question, text=text,
                         opens_at=campaign.opens_at, closes_at=closes_at)
    campaign.title, campaign.question, campaign.text = texts.title, texts.question, texts.text
    campaign.focus_area, campaign.closes_at = focus_area, closes_at
    session.add(campaign)
    session.flush()
    return campaign


def get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no idea competition {campaign_id}")
    return campaign


def state_of(campaign: Campaign, now: datetime) -> str:
    return campaign_dialogs.state(campaign.opens_at, campaign.closes_at, campaign.closed_at, now)


def summary(session: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The figures of one competition (also used by the report)."""
    ideas = session.exec(select(Idea).where(Idea.campaign_id == campaign.id)).all()
    ids = [i.id for i in ideas]
    supporters = session.exec(select(func.count()).select_from(Support).where(
        col(Support.idea_id).in_(ids))).one() if ids else 0
    return {
        "id": campaign.id, "title": campaign.title, "question": campaign.question,
        "focus_area": campaign.focus_area, "opens_at": campaign.opens_at.isoformat(),
        "closes_at": campaign.closes_at.isoformat(), "state": state_of(campaign, now),
        "ideas": len(ideas), "supporters": supporters,
        "realised": sum(1 for i in ideas if i.status == "realised"),
        "chosen": [format_ref(i.id or 0) for i in ideas if i.chosen],
    }


def list_all(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(col(Campaign.opens_at).desc())))


def close(session: Session, campaign: Campaign, now: datetime) -> None:
    """Close early (or at its time): submissions stop; moderators get the summary."""
    if campaign.closed_at is None:
        campaign.closed_at = min(now, campaign.closes_at)
        session.add(campaign)
        session.flush()
        nudge(session, SCAN_JOB)  # the moderators' summary within seconds


def choose(session: Session, campaign: Campaign, refs: list[str], now: datetime) -> list[Idea]:
    """Mark the chosen ideas (each once, however often or however spelt it is named); every
    participant is told the outcome (once)."""
    chosen: list[Idea] = []
    for ref in refs:
        idea = book.get_idea(session, ref)
        if idea.campaign_id != campaign.id:
            raise CampaignError(f"{ref.upper()} is not an answer to competition {campaign.id}")
        if any(i.id == idea.id for i in chosen):
            continue
        idea.chosen = True
        session.add(idea)
        chosen.append(idea)
    close(session, campaign, now)
    campaign.outcome_at = now
    session.add(campaign)
    session.flush()
    chosen_refs = [format_ref(i.id or 0) for i in chosen]
    for idea in session.exec(select(Idea).where(Idea.campaign_id == campaign.id)):
        author = session.get(Person, idea.author_id) if idea.author_id else None
        if author is None:
            continue
        enqueue_for_person(session, author, kind="campaign_outcome",
                           dedupe_key=f"campaign_outcome:{campaign.id}:{idea.id}",
                           payload={"title": campaign.title, "ref": format_ref(idea.id or 0),
                                    "chosen": idea.chosen, "chosen_refs": chosen_refs})
    return chosen


# --- rules (run with the follow-up scans) ------------------------------------------------------

def rule_campaign_invitations(session: Session, settings: Settings, now: datetime) -> int:
    """One invitation per person who asked for them, for each open competition."""
    queued = 0
    for campaign in _open(session, now):
        prefix = f"campaign_invite:{campaign.id}:"
        done = outbox.keys_with_prefix(session, prefix)
        people = session.exec(select(Person).where(
            Person.invite_consent == True,  # noqa: E712
            col(Person.erased_at).is_(None), col(Person.chat_id).is_not(None))).all()
        for person in people:
            key = f"{prefix}{person.id}"
            if key in done:
                continue
            enqueue_for_person(session, person, kind="campaign_invite", dedupe_key=key,
                               payload=_campaign_payload(campaign, settings), due_at=now)
            queued += 1
    return queued


def rule_campaign_reminders(session: Session, settings: Settings, now: datetime) -> int:
    """Three days before closing: those who started an answer but did not send it."""
    queued = 0
    for campaign in _open(session, now):
        if now < campaign.closes_at - REMINDER_BEFORE:
            continue
        rows = session.exec(select(DialogState).where(DialogState.flow == "submit")).all()
        for row in rows:
            if json.loads(row.data or "{}").get("campaign_id") != campaign.id or not row.person_id:
                continue
            person = session.get(Person, row.person_id)
            if person is None or person.follow_up_consent is False:
                continue
            if enqueue_for_person(session, person, kind="campaign_reminder",
                                  dedupe_key=f"campaign_reminder:{campaign.id}:{person.id}",
                                  payload=_campaign_payload(campaign, settings),
                                  due_at=now):
                queued += 1
    return queued


def rule_campaign_close(session: Session, settings: Settings, now: datetime) -> int:
    """At closing time: mark closed, and tell the moderators how it went."""
    done = 0
    due = session.exec(select(Campaign).where(or_(
        col(Campaign.closes_at) <= now, col(Campaign.closed_at).is_not(None)))).all()
    for campaign in due:
        close(session, campaign, now)
        channel = moderator_channel(settings)
        if channel and enqueue(session, kind="campaign_summary",
                               dedupe_key=f"campaign_summary:{campaign.id}", channel=STAFF_CHANNEL,
                               address=channel, payload=summary(session, campaign, now),
                               due_at=now):
            done += 1
    return done


def _open(session: Session, now: datetime) -> list[Campaign]:
    return list(session.exec(select(Campaign).where(
        col(Campaign.closed_at).is_(None), col(Campaign.opens_at) <= now,
        col(Campaign.closes_at) > now)))


def _campaign_payload(campaign: Campaign, settings: Settings) -> dict[str, Any]:
    closes = campaign.closes_at.astimezone(settings.zone).strftime("%d.%m.%Y %H:%M")
    return {"id": campaign.id, "title": campaign.title, "question": campaign.question,
            "text": campaign.text, "closes": closes}


# --- how the notices read ----------------------------------------------------------------------

def render_invite(p: dict[str, Any], t: Translator) -> list[Reply]:
    text = t("campaigns.invite", title=p["title"], question=p["question"],
             closes=p["closes"])
    if p.get("text"):
        text += "\n\n" + p["text"]
    return [Reply(text, (global_choice(t("campaigns.button_take_part"), f"camp:{p['id']}"),
                         global_choice(t("campaigns.button_stop_invites"), "set:invite:off")))]


def render_reminder(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("campaigns.reminder", title=p["title"], closes=p["closes"]),
                  (global_choice(t("followups.button_continue"), "resume"),))]


def render_outcome(p: dict[str, Any], t: Translator) -> list[Reply]:
    key = "campaigns.outcome_chosen" if p["chosen"] else "campaigns.outcome_not_chosen"
    chosen = ", ".join(p["chosen_refs"]) or "–"
    return [Reply(t(key, title=p["title"], ref=p["ref"], chosen=chosen))]


def render_summary(p: dict[str, Any], t: Translator) -> list[Reply]:
    figures = ", ".join(t(f"campaigns.summary.{part}", n=p[part])
                        for part in ("ideas", "supporters", "realised"))
    return [Reply(t("campaigns.summary", title=p["title"], figures=figures))]


def status_extra(session: Session, idea: Idea) -> dict[str, Any]:
    """The competition the idea answers, and whether it was chosen (public)."""
    campaign = session.get(Campaign, idea.campaign_id) if idea.campaign_id is not None else None
    if campaign is None:
        return {}
    return {"campaign": {"id": campaign.id, "title": campaign.title, "chosen": bool(idea.chosen)}}


FEATURE = Feature(
    "campaigns",
    dialogs=campaign_dialogs.PART,
    renderers={"campaign_invite": render_invite, "campaign_reminder": render_reminder,
               "campaign_outcome": render_outcome, "campaign_summary": render_summary},
    rules=(rule_campaign_invitations, rule_campaign_reminders, rule_campaign_close),
    status_extras=(status_extra,),
)
