"""Follow-ups that fall due with time: the scans the scheduler runs every minute.

`create_due(db, settings, rules, now)` runs each rule once in its own transaction; a rule
reads the database and queues what has fallen due at `now`: an idea still `new` after
KOMINN_STALE_DAYS (author note + moderator nudge), one reminder for a dialog left for
KOMINN_DIALOG_REMINDER_HOURS (dropped after KOMINN_DIALOG_EXPIRY_DAYS), and the weekly digest
to the moderators' channel; features add their own (the benefit check, competitions). Rules
keep no state of their own: every rule is idempotent through the outbox dedupe key, so a
restart, a second worker or a late run loses and repeats nothing. What follows a change at
once (status news, merges, milestones) is in bot/followups/listeners.py.

Consent: scheduled notices go only to people who said yes to follow-ups
(`person.follow_up_consent is True`); the reminder about a half-finished dialog goes to anyone
who has not said no (the question may not have been asked yet).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.followups.listeners import idea_payload, moderator_channel, wants_followups
from bot.wiring import Rule
from dialogs import benefit
from dialogs.lifecycle import Status
from dialogs.refs import format_ref
from storage import outbox
from storage.db import transaction
from storage.models import (
    DialogState,
    DuplicateCandidate,
    Idea,
    Person,
    StatusChange,
)
from storage.outbox import enqueue, enqueue_for_person

log = logging.getLogger("kominn.followups")

# Conversations that are not worth a reminder (the answer that mattered is already stored).
SILENT_FLOWS = frozenset({benefit.FLOW, "erase"})
DIGEST_WEEKDAY, DIGEST_HOUR = 0, 8  # Monday 08:00 local time
DIGEST_LIST = 10


def create_due(db: DbEngine, settings: Settings, rules: Sequence[Rule],
               now: datetime) -> dict[str, int]:
    """Run every rule once at `now`; how many notices (or dropped dialogs) each produced."""
    return {rule.__name__.removeprefix("rule_"): _run(db, rule, settings, now) for rule in rules}


def _run(db: DbEngine, rule: Rule, settings: Settings, now: datetime, tries: int = 3) -> int:
    """One transaction per rule; a concurrent worker queuing the same key first makes ours
    fail on the unique dedupe key — then the rule runs again and finds it done."""
    for attempt in range(tries):
        try:
            with transaction(db) as session:
                return rule(session, settings, now)
        except IntegrityError:
            if attempt == tries - 1:
                raise
    return 0


def rule_stale(session: Session, settings: Settings, now: datetime) -> int:
    """Still `new` after KOMINN_STALE_DAYS: the author hears it is being assessed, and the
    moderators get a nudge — once per stretch of being new (a reopened idea counts afresh:
    the stretch is named by the idea's latest status change)."""
    cutoff = now - timedelta(days=settings.stale_days)
    channel = moderator_channel(settings)
    done = outbox.keys_with_prefix(session, "stale")
    latest = (select(StatusChange.idea_id, func.max(StatusChange.id).label("stretch"))
              .group_by(col(StatusChange.idea_id)).subquery())
    found = session.exec(
        select(Idea, latest.c.stretch).join(latest, latest.c.idea_id == Idea.id)
        .where(Idea.status == Status.NEW.value, col(Idea.status_changed_at) <= cutoff)
        .order_by(col(Idea.status_changed_at))).all()
    queued = 0
    for idea, stretch in found:
        author_key, staff_key = f"stale:{idea.id}:{stretch}", f"stale-mod:{idea.id}:{stretch}"
        payload = {**idea_payload(idea), "days": (now - idea.status_changed_at).days}
        if idea.author_id is not None and author_key not in done:
            author = session.get(Person, idea.author_id)
            if wants_followups(author):
                queued += bool(enqueue_for_person(
                    session, author, kind="stale_author",
                    dedupe_key=author_key, payload=payload, due_at=now))
        if channel and staff_key not in done:
            queued += bool(enqueue(session, kind="stale_moderator", dedupe_key=staff_key,
                                   channel=STAFF_CHANNEL, address=channel, due_at=now,
                                   payload=payload))
    return queued


def rule_dialog_reminder(session: Session, settings: Settings, now: datetime) -> int:
    """One reminder for a conversation left half-finished for KOMINN_DIALOG_REMINDER_HOURS."""
    remind = now - timedelta(hours=settings.dialog_reminder_hours)
    expire = now - timedelta(days=settings.dialog_expiry_days)
    rows = session.exec(select(DialogState).where(
        col(DialogState.flow).is_not(None), col(DialogState.reminded_at).is_(None),
        col(DialogState.person_id).is_not(None),
        col(DialogState.updated_at) <= remind, col(DialogState.updated_at) > expire)).all()
    queued = 0
    for row in rows:
        if not _mark_reminded(session, row, now):
            continue  # the person moved on meanwhile
        person = session.get(Person, row.person_id)
        if row.flow in SILENT_FLOWS or person is None or person.follow_up_consent is False:
            continue
        started = row.started_at or row.updated_at
        queued += bool(enqueue_for_person(
            session, person, kind="dialog_reminder",
            dedupe_key=f"reminder:{person.id}:{int(started.timestamp())}",
            payload={"flow": row.flow}, due_at=now))
    return queued


def _mark_reminded(session: Session, row: DialogState, now: datetime) -> bool:
    """Conditional on the step token, so an answer given meanwhile wins."""
    result = session.exec(update(DialogState).where(
        col(DialogState.channel) == row.channel, col(DialogState.user_id) == row.user_id,
        col(DialogState.token) == row.token, col(DialogState.reminded_at).is_(None),
    ).values(reminded_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


def rule_dialog_expiry(session: Session, settings: Settings, now: datetime) -> int:
    """Drop conversations untouched for KOMINN_DIALOG_EXPIRY_DAYS (what was typed goes)."""
    expire = now - timedelta(days=settings.dialog_expiry_days)
    rows = session.exec(select(DialogState).where(col(DialogState.flow).is_not(None),
                                                  col(DialogState.updated_at) <= expire)).all()
    dropped = 0
    for row in rows:
        result = session.exec(update(DialogState).where(
            col(DialogState.channel) == row.channel, col(DialogState.user_id) == row.user_id,
            col(DialogState.token) == row.token,
        ).values(flow=None, step=None, data="{}", token=row.token + 1, started_at=None,
                 reminded_at=None, updated_at=now)
            .execution_options(synchronize_session=False))
        dropped += result.rowcount or 0
    if dropped:
        log.info("dialogs dropped", extra={"event": "dialogs_expired", "count": dropped})
    return dropped


def digest_moment(now: datetime, settings: Settings) -> datetime:
    """The latest Monday 08:00 (local) at or before `now`."""
    local = now.astimezone(settings.zone)
    monday = local.date() - timedelta(days=(local.weekday() - DIGEST_WEEKDAY) % 7)
    moment = datetime.combine(monday, time(DIGEST_HOUR), tzinfo=settings.zone)
    if moment > local:
        moment -= timedelta(days=7)
    return moment.astimezone(now.tzinfo)


def rule_weekly_digest(session: Session, settings: Settings, now: datetime) -> int:
    """Monday morning: new ideas of the past week, the triage queue and the stale ideas."""
    channel = moderator_channel(settings)
    if not channel:
        return 0
    moment = digest_moment(now, settings)
    year, week, _ = moment.astimezone(settings.zone).isocalendar()
    key = f"digest:{year}-W{week:02d}"
    if outbox.keys_with_prefix(session, key):
        return 0
    return int(enqueue(session, kind="weekly_digest", dedupe_key=key, channel=STAFF_CHANNEL,
                       address=channel, due_at=now,
                       payload=digest_payload(session, settings, moment, f"{year}-W{week:02d}"))
               is not None)


def digest_payload(session: Session, settings: Settings, moment: datetime,
                   week: str) -> dict[str, Any]:
    since = moment - timedelta(days=7)
    new = session.exec(select(Idea).where(col(Idea.created_at) >= since,
                                          col(Idea.created_at) < moment)
                       .order_by(col(Idea.created_at).desc())).all()
    stale_cutoff = moment - timedelta(days=settings.stale_days)
    stale = session.exec(select(Idea).where(Idea.status == Status.NEW.value,
                                            col(Idea.status_changed_at) <= stale_cutoff)
                         .order_by(col(Idea.status_changed_at))).all()
    triage = session.exec(select(func.count()).select_from(DuplicateCandidate).where(
        DuplicateCandidate.state == "pending")).one()
    return {
        "week": week, "stale_days": settings.stale_days, "triage": triage,
        "new_count": len(new),
        "new": [{"ref": format_ref(i.id or 0), "title": i.title} for i in new[:DIGEST_LIST]],
        "stale_count": len(stale),
        "stale": [{"ref": format_ref(i.id or 0), "title": i.title,
                   "days": (moment - i.status_changed_at).days} for i in stale[:DIGEST_LIST]],
    }


RULES: tuple[Rule, ...] = (rule_stale, rule_dialog_expiry, rule_dialog_reminder,
                           rule_weekly_digest)


