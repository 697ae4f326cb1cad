"""Follow-ups: no idea goes quiet. The rules that decide who hears what, and when.

Two kinds of rules, both writing outbox rows (bot/followups/notices.py) that the dispatcher
delivers:

* **Listeners** on idea changes (bot/ideas/book.py) run inside the transaction of the change, so a
  notice exists exactly when the change does: status change → author and supporters; merge →
  the merged idea's followers learn which idea they now follow; support → the author hears at
  milestones (1, 5, 10, 25 … supporters).
* **Scans** (`create_due(db, settings, now)`) read the database and queue what has fallen due:
  an idea still `new` after KOMINN_STALE_DAYS (author note + moderator nudge), the benefit
  check KOMINN_BENEFIT_CHECK_DAYS after `realised`, one reminder for a dialog left for
  KOMINN_DIALOG_REMINDER_HOURS (dropped after KOMINN_DIALOG_EXPIRY_DAYS), and the weekly digest
  to the moderators' Slack channel. Scans keep no state of their own: every rule is idempotent
  through the outbox dedupe key, so a restart, a second worker or a late run loses and repeats
  nothing.

Consent: scheduled notices go only to people who said yes to follow-ups
(`person.follow_up_consent is True`); the reminder about a half-finished dialog goes to anyone
who has not said no (the question may not have been asked yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.conversation.engine import CUSTOM_EFFECTS, Applied
from bot.followups import dispatcher
from bot.followups.notices import enqueue, enqueue_for_person, renderer
from bot.i18n import Translator
from bot.ideas import book
from dialogs import benefit, resume, submit
from dialogs.lifecycle import Status
from dialogs.payload import global_choice
from dialogs.refs import format_ref
from dialogs.types import Choice, Reply
from storage.db import transaction
from storage.models import (
    BenefitAnswer,
    DialogState,
    DuplicateCandidate,
    Idea,
    Outbox,
    Person,
    StatusChange,
)

log = logging.getLogger("kominn.followups")

SUPPORT_MILESTONES = frozenset({1, 5, 10, 25, 50, 100, 250, 500, 1000})
# Conversations that are not worth a reminder (the answer that mattered is already stored).
SILENT_FLOWS = frozenset({benefit.FLOW, "erase"})
DIGEST_WEEKDAY, DIGEST_HOUR = 0, 8  # Monday 08:00 local time
DIGEST_LIST = 10


# --- who hears -------------------------------------------------------------------------------

def wants_followups(person: Person | None) -> bool:
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
            found.append((person, role))  # type: ignore[arg-type]
    return found


def moderator_channel(settings: Settings) -> str | None:
    """The Slack channel for nudges and the digest, when Slack can be posted to at all."""
    if not settings.slack_bot_token:
        return None
    return settings.moderator_channel or settings.slack_ideas_channel


def _idea_payload(idea: Idea) -> dict[str, Any]:
    return {"idea": idea.id, "ref": book.ref_of(idea), "title": idea.title}


# --- listeners: in the transaction of the change ---------------------------------------------

def on_status_changed(session: Session, idea: Idea, change: StatusChange) -> None:
    if change.to_status == Status.MERGED.value:
        return  # on_merged tells them which idea they follow now
    for person, role in followers(session, idea):
        enqueue_for_person(
            session, person, kind="status_changed", dedupe_key=f"status:{change.id}:{person.id}",
            payload={**_idea_payload(idea), "role": role, "from": change.from_status,
                     "to": change.to_status, "note": change.note},
            due_at=change.at)


def on_merged(session: Session, idea: Idea, into: Idea, change: StatusChange) -> None:
    for person, role in followers(session, idea):
        enqueue_for_person(
            session, person, kind="merged", dedupe_key=f"merged:{change.id}:{person.id}",
            payload={**_idea_payload(idea), "role": role, "into_ref": book.ref_of(into),
                     "into_title": into.title},
            due_at=change.at)


def on_supported(session: Session, idea: Idea, person_id: int) -> None:
    count = book.supporter_count(session, idea.id or 0)
    if count not in SUPPORT_MILESTONES or idea.author_id is None:
        return
    author = session.get(Person, idea.author_id)
    if wants_followups(author):
        enqueue_for_person(session, author,  # type: ignore[arg-type]
                           kind="supported", dedupe_key=f"support:{idea.id}:{count}",
                           payload={**_idea_payload(idea), "count": count})


def on_erased(session: Session, person: Person) -> None:
    dispatcher.forget_person(session, person.id)


# --- scans: what has fallen due at `now` -----------------------------------------------------

Rule = Callable[[Session, Settings, datetime], int]


def create_due(db: DbEngine, settings: Settings, now: datetime) -> dict[str, int]:
    """Run every rule once at `now`; how many notices (or dropped dialogs) each produced."""
    return {rule.__name__.removeprefix("rule_"): _run(db, rule, settings, now) for rule in RULES}


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


def _existing(session: Session, prefix: str) -> set[str]:
    return set(session.exec(select(Outbox.dedupe_key).where(
        col(Outbox.dedupe_key).startswith(prefix))).all())


def rule_stale(session: Session, settings: Settings, now: datetime) -> int:
    """Still `new` after KOMINN_STALE_DAYS: the author hears it is being assessed, and the
    moderators get a nudge — once per stretch of being new (a reopened idea counts afresh:
    the stretch is named by the idea's latest status change)."""
    cutoff = now - timedelta(days=settings.stale_days)
    channel = moderator_channel(settings)
    done = _existing(session, "stale")
    latest = (select(StatusChange.idea_id, func.max(StatusChange.id).label("stretch"))
              .group_by(StatusChange.idea_id).subquery())
    found = session.exec(
        select(Idea, latest.c.stretch).join(latest, latest.c.idea_id == Idea.id)
        .where(Idea.status == Status.NEW.value, col(Idea.status_changed_at) <= cutoff)
        .order_by(col(Idea.status_changed_at))).all()
    queued = 0
    for idea, stretch in found:
        author_key, staff_key = f"stale:{idea.id}:{stretch}", f"stale-mod:{idea.id}:{stretch}"
        payload = {**_idea_payload(idea), "days": (now - idea.status_changed_at).days}
        if idea.author_id is not None and author_key not in done:
            author = session.get(Person, idea.author_id)
            if wants_followups(author):
                queued += bool(enqueue_for_person(
                    session, author, kind="stale_author",  # type: ignore[arg-type]
                    dedupe_key=author_key, payload=payload, due_at=now))
        if channel and staff_key not in done:
            queued += bool(enqueue(session, kind="stale_moderator", dedupe_key=staff_key,
                                   channel=STAFF_CHANNEL, address=channel, due_at=now,
                                   payload=payload))
    return queued


def rule_benefit_check(session: Session, settings: Settings, now: datetime) -> int:
    """KOMINN_BENEFIT_CHECK_DAYS after `realised`, ask the author whether it helped."""
    cutoff = now - timedelta(days=settings.benefit_check_days)
    done = _existing(session, "benefit:")
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
                session, author, kind="benefit_check", dedupe_key=key,  # type: ignore[arg-type]
                payload={**_idea_payload(idea), "days": settings.benefit_check_days},
                due_at=now))
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
    result = session.exec(update(DialogState).where(  # type: ignore[call-overload]
        DialogState.channel == row.channel, DialogState.user_id == row.user_id,
        DialogState.token == row.token, col(DialogState.reminded_at).is_(None),
    ).values(reminded_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


def rule_dialog_expiry(session: Session, settings: Settings, now: datetime) -> int:
    """Drop conversations untouched for KOMINN_DIALOG_EXPIRY_DAYS (what was typed goes)."""
    expire = now - timedelta(days=settings.dialog_expiry_days)
    rows = session.exec(select(DialogState).where(col(DialogState.flow).is_not(None),
                                                  col(DialogState.updated_at) <= expire)).all()
    dropped = 0
    for row in rows:
        result = session.exec(update(DialogState).where(  # type: ignore[call-overload]
            DialogState.channel == row.channel, DialogState.user_id == row.user_id,
            DialogState.token == row.token,
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
    if _existing(session, key):
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


RULES: tuple[Rule, ...] = (rule_stale, rule_benefit_check, rule_dialog_expiry,
                           rule_dialog_reminder, rule_weekly_digest)


# --- renderers: payload → replies in the recipient's language at delivery time ---------------

@renderer("status_changed")
def render_status(p: dict[str, Any], t: Translator) -> list[Reply]:
    lines = [t(f"followups.status_{p.get('role', 'author')}", ref=p["ref"], title=p["title"],
               status=t(f"status.{p['to']}"))]
    if p.get("note"):
        lines.append(t("followups.status_note", note=p["note"]))
    return [Reply("\n".join(lines), (_status_button(t, p["idea"]),))]


@renderer("merged")
def render_merged(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t(f"followups.merged_{p.get('role', 'author')}", ref=p["ref"],
                    title=p["title"], into_ref=p["into_ref"], into_title=p["into_title"]))]


@renderer("supported")
def render_supported(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.supported", ref=p["ref"], title=p["title"], count=p["count"]))]


@renderer("stale_author")
def render_stale_author(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_author", ref=p["ref"], title=p["title"], days=p["days"]))]


@renderer("stale_moderator")
def render_stale_moderator(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_moderator", ref=p["ref"], title=p["title"],
                    days=p["days"]))]


@renderer("benefit_check")
def render_benefit_check(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.benefit_ask", ref=p["ref"], title=p["title"], days=p["days"]),
                  benefit.answer_choices(int(p["idea"]), t))]


@renderer("dialog_reminder")
def render_dialog_reminder(p: dict[str, Any], t: Translator) -> list[Reply]:
    key = "followups.reminder_submit" if p.get("flow") == submit.FLOW else \
        "followups.reminder_other"
    return [Reply(t(key), resume.reminder_choices(t))]


@renderer("weekly_digest")
def render_digest(p: dict[str, Any], t: Translator) -> list[Reply]:
    lines = [t("followups.digest_header", week=p["week"]), "",
             t("followups.digest_new", count=p["new_count"])]
    lines += [t("followups.digest_line", ref=i["ref"], title=i["title"]) for i in p["new"]]
    if p["new_count"] > len(p["new"]):
        lines.append(t("followups.digest_more", count=p["new_count"] - len(p["new"])))
    lines += ["", t("followups.digest_triage", count=p["triage"]), "",
              t("followups.digest_stale", count=p["stale_count"], days=p["stale_days"])]
    lines += [t("followups.digest_stale_line", ref=i["ref"], title=i["title"], days=i["days"])
              for i in p["stale"]]
    if p["stale_count"] > len(p["stale"]):
        lines.append(t("followups.digest_more", count=p["stale_count"] - len(p["stale"])))
    return [Reply("\n".join(lines))]


def _status_button(t: Translator, number: int) -> Choice:
    return global_choice(t("followups.button_status"), f"status:{number}")


# --- benefit-check answers (custom effects of dialogs/benefit.py) ----------------------------

def apply_benefit_answer(applied: Applied, data: dict[str, Any]) -> None:
    """Store (or change) the author's answer; anyone else's press is ignored."""
    session, person = applied.session, applied.person
    idea = session.get(Idea, int(data["idea"]))
    if idea is None or idea.author_id != person.id or data.get("answer") not in benefit.ANSWERS:
        log.warning("benefit answer refused", extra={"event": "benefit_refused"})
        return
    row = _benefit_row(session, idea.id, person.id)
    if row is None:
        row = BenefitAnswer(idea_id=idea.id or 0, person_id=person.id)
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


def _register() -> None:
    for hooks, hook in ((book.ON_STATUS_CHANGED, on_status_changed),
                        (book.ON_MERGED, on_merged),
                        (book.ON_SUPPORTED, on_supported),
                        (book.ON_ERASED, on_erased)):
        if hook not in hooks:
            hooks.append(hook)  # type: ignore[arg-type]
    CUSTOM_EFFECTS[benefit.ANSWER_EFFECT] = apply_benefit_answer
    CUSTOM_EFFECTS[benefit.COMMENT_EFFECT] = apply_benefit_comment


_register()
