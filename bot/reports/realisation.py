"""The realisation report: how many ideas go NYTT → NYTTIG → NYTTIGGJORT, in numbers.

Pure computation over the database, shared by `kominn report`, the chart and Slack's
`/kominn report`. Every figure is about the ideas *submitted* in the window (`start`..`end`,
both dates inclusive, in the municipality's time zone), with their status as it is now: the
strategy's headline figure is the realisation rate = realised ÷ (submitted − merged), because a
merged idea lives on in the idea it was merged into and must not count twice.

Rates are 0–1 (0.0 when nothing counts yet). Medians are in days (None without a sample).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.i18n import translator
from bot.localtime import local_day, to_utc
from dialogs.lifecycle import Status
from storage.models import BenefitAnswer, Campaign, DuplicateCandidate, Idea, StatusChange, Support

STATUSES = tuple(s.value for s in Status)
BENEFIT_KEYS = ("Ja", "Delvis", "Nei")
_BENEFIT_ALIASES = {
    "yes": "Ja", "ja": "Ja", "partly": "Delvis", "delvis": "Delvis", "partially": "Delvis",
    "no": "Nei", "nei": "Nei",
}
DEFAULT_ZONE = ZoneInfo("Europe/Oslo")


@dataclass(frozen=True)
class _Row:
    """The few columns of an idea the report needs (no text, no person)."""

    id: int
    created_at: datetime
    status: str
    focus_area: str | None
    channel: str
    campaign_id: int | None


def compute(session: Session, *, start: date | datetime | None = None,
            end: date | datetime | None = None, locale: str = "nb",
            zone: ZoneInfo | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the report as plain JSON-ready data."""
    zone = zone or DEFAULT_ZONE
    now = now or datetime.now(UTC)
    lower, upper = window(start, end, zone)
    rows = _ideas(session, lower, upper)
    changes = _changes(session, lower, upper)
    counted = [r for r in rows if r.status != Status.MERGED.value]
    backed = _supported_ids(session, lower, upper)
    supported = sum(1 for r in counted if r.id in backed)
    no_area = translator(locale)("report.no_area")
    last_day = upper - timedelta(microseconds=1) if upper else None
    result: dict[str, Any] = {
        "period": {"from": _day(lower, zone), "to": _day(last_day, zone)},
        "generated_at": now.isoformat(),
        "locale": locale,
        **_group(rows),
        "funnel": _statuses(rows),
        "stages": _stages(counted, changes),
        "by_area": _by(rows, lambda r: r.focus_area or no_area),
        "by_channel": _by(rows, lambda r: r.channel),
        "by_month": _by_month(rows, zone),
        "median_days": _medians(rows, changes),
        "supported": supported,
        "supported_share": _rate(supported, len(counted)),
        "benefit_check": _benefit(session, lower, upper),
        "triage": _triage(session, now),
        "campaigns": _campaigns(session, rows, _support_counts(session, lower, upper),
                                lower, upper),
    }
    return result


def window(start: date | datetime | None, end: date | datetime | None,
           zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """[lower, upper) in UTC: a date means the whole local day, so `end` is inclusive."""
    lower = _instant(start, zone) if start is not None else None
    upper = None
    if end is not None:
        upper = _instant(end, zone)
        if not isinstance(end, datetime):
            upper += timedelta(days=1)
    if lower and upper and upper <= lower:
        raise ValueError("the end of the period is before its start")
    return lower, upper


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A moment as given (naive = local), or a whole day from its local start."""
    return to_utc(value, zone) if isinstance(value, datetime) else local_day(value, zone)


def _day(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).date().isoformat() if value else None


def _in_window(query: Any, column: Any, lower: datetime | None, upper: datetime | None) -> Any:
    if lower is not None:
        query = query.where(column >= lower)
    if upper is not None:
        query = query.where(column < upper)
    return query


def _ideas(session: Session, lower: datetime | None, upper: datetime | None) -> list[_Row]:
    # SQLModel types select() for at most four columns (this one takes six).
    query = select(Idea.id, Idea.created_at, Idea.status, Idea.focus_area,  # type: ignore[call-overload]
                   Idea.channel, Idea.campaign_id)
    query = _in_window(query, Idea.created_at, lower, upper).order_by(Idea.id)
    return [_Row(*row) for row in session.exec(query)]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


def _statuses(rows: Iterable[_Row]) -> dict[str, int]:
    counts = Counter(r.status for r in rows)
    return {status: counts.get(status, 0) for status in STATUSES}


def _group(rows: list[_Row]) -> dict[str, Any]:
    """submitted / merged / realised / realisation_rate for one set of ideas."""
    submitted = len(rows)
    merged = sum(1 for r in rows if r.status == Status.MERGED.value)
    realised = sum(1 for r in rows if r.status == Status.REALISED.value)
    return {"submitted": submitted, "merged": merged, "realised": realised,
            "realisation_rate": _rate(realised, submitted - merged)}


def _entry(rows: list[_Row]) -> dict[str, Any]:
    group = _group(rows)
    return {"submitted": group["submitted"], "merged": group["merged"],
            "realised": group["realised"], "rate": group["realisation_rate"],
            "statuses": _statuses(rows)}


def _by(rows: list[_Row], key: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return {name: _entry(members) for name, members in ordered}


def _by_month(rows: list[_Row], zone: ZoneInfo) -> dict[str, dict[str, Any]]:
    """Per month of submission (local time), every month from the first to the last, so a
    quiet month shows as a zero rather than disappearing from the series."""
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        groups[row.created_at.astimezone(zone).strftime("%Y-%m")].append(row)
    if not groups:
        return {}
    return {month: _entry(groups.get(month, [])) for month in _months(min(groups), max(groups))}


def _months(first: str, last: str) -> list[str]:
    year, month = (int(part) for part in first.split("-"))
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True)
class _Change:
    to_status: str
    at: datetime


def _changes(session: Session, lower: datetime | None,
             upper: datetime | None) -> dict[int, list[_Change]]:
    """History rows into useful/realised of the ideas in the window, oldest first (plain
    tuples, not ORM objects: a large base has many)."""
    query = (select(StatusChange.idea_id, StatusChange.to_status, StatusChange.at)
             .join(Idea, col(Idea.id) == StatusChange.idea_id)
             .where(col(StatusChange.to_status).in_(
                 (Status.USEFUL.value, Status.REALISED.value))))
    query = _in_window(query, Idea.created_at, lower, upper)
    by_idea: dict[int, list[_Change]] = defaultdict(list)
    for idea_id, to_status, at in session.exec(query.order_by(StatusChange.at,
                                                               StatusChange.id)):
        by_idea[idea_id].append(_Change(to_status, at))
    return by_idea


def _stages(counted: list[_Row], changes: dict[int, list[_Change]]) -> dict[str, int]:
    """The funnel as stages reached (from the history), merged ideas left out: an idea
    declined after being judged useful still counts as having reached NYTTIG."""
    reached_useful = sum(
        1 for r in counted
        if r.status in (Status.USEFUL.value, Status.REALISED.value)
        or any(c.to_status == Status.USEFUL.value for c in changes.get(r.id, ())))
    realised = sum(1 for r in counted if r.status == Status.REALISED.value)
    return {"submitted": len(counted), "useful": reached_useful, "realised": realised}


def _medians(rows: list[_Row], changes: dict[int, list[_Change]]
             ) -> dict[str, float | None]:
    """Median days from submission to the first NYTTIG, and from the NYTTIG that led to it
    to NYTTIGGJORT."""
    created = {r.id: r.created_at for r in rows}
    to_useful: list[float] = []
    to_realised: list[float] = []
    for idea_id, history in changes.items():
        if idea_id not in created:
            continue
        useful = [c.at for c in history if c.to_status == Status.USEFUL.value]
        realised = [c.at for c in history if c.to_status == Status.REALISED.value]
        if useful:
            to_useful.append(_days(useful[0] - created[idea_id]))
        if realised:
            before = [u for u in useful if u <= realised[0]]
            if before:
                to_realised.append(_days(realised[0] - before[-1]))
    return {"new_to_useful": _median(to_useful), "useful_to_realised": _median(to_realised)}


def _days(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds() / 86400)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _supported_ids(session: Session, lower: datetime | None, upper: datetime | None) -> set[int]:
    """Ideas backed by someone besides their author (the author never has a support row)."""
    query = select(Support.idea_id).join(Idea, col(Idea.id) == Support.idea_id).distinct()
    return set(session.exec(_in_window(query, Idea.created_at, lower, upper)))


def _support_counts(session: Session, lower: datetime | None,
                    upper: datetime | None) -> dict[int, int]:
    """Support rows per campaign idea in the window."""
    query = (select(Support.idea_id, func.count()).join(Idea, col(Idea.id) == Support.idea_id)
             .where(col(Idea.campaign_id).is_not(None)))
    query = _in_window(query, Idea.created_at, lower, upper).group_by(Support.idea_id)
    return {idea_id: count for idea_id, count in session.exec(query)}


def _benefit(session: Session, lower: datetime | None, upper: datetime | None) -> dict[str, int]:
    """The benefit-check answers (did it help?) about realised ideas, as Ja / Delvis / Nei."""
    query = (select(BenefitAnswer.answer).join(Idea, col(Idea.id) == BenefitAnswer.idea_id)
             .where(Idea.status == Status.REALISED.value))
    counts = Counter(_BENEFIT_ALIASES.get((answer or "").strip().casefold())
                     for answer in session.exec(_in_window(query, Idea.created_at, lower, upper)))
    return {key: counts.get(key, 0) for key in BENEFIT_KEYS}


def _triage(session: Session, now: datetime) -> dict[str, Any]:
    """The moderators' queue as it stands now (not limited to the window)."""
    pending, oldest = session.exec(
        select(func.count(), func.min(DuplicateCandidate.created_at))
        .where(DuplicateCandidate.state == "pending")).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    decided = dict(session.exec(
        select(DuplicateCandidate.state, func.count())
        .where(col(DuplicateCandidate.state).in_(("merged", "not_duplicate")))
        .group_by(DuplicateCandidate.state)).all())
    merged, total = decided.get("merged", 0), sum(decided.values())
    return {"pending": pending, "decided": total, "merged": merged,
            "precision": round(merged / total, 4) if total else None,
            "oldest_at": oldest.isoformat() if oldest else None,
            "oldest_days": round(_days(now - oldest), 1) if oldest else None}


def _campaigns(session: Session, rows: list[_Row], supported_counts: dict[int, int],
               lower: datetime | None, upper: datetime | None) -> list[dict[str, Any]]:
    """Idea competitions open during the window or with ideas in it: ideas (merged ones
    excepted: they live on in the kept idea), supporters of those ideas, and how many were
    realised."""
    by_campaign: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.campaign_id is not None and row.status != Status.MERGED.value:
            by_campaign[row.campaign_id].append(row)
    query = select(Campaign)
    if upper is not None:
        query = query.where(Campaign.opens_at < upper)
    if lower is not None:
        query = query.where(Campaign.closes_at >= lower)
    campaigns: dict[int | None, Campaign | None] = {c.id: c for c in session.exec(query)}
    for campaign_id in by_campaign:
        if campaign_id not in campaigns:
            campaigns[campaign_id] = session.get(Campaign, campaign_id)
    result = []
    for campaign in sorted((c for c in campaigns.values() if c is not None),
                           key=lambda c: (c.opens_at, c.id or 0)):
        members = by_campaign.get(campaign.id or 0, [])
        result.append({
            "id": campaign.id, "title": campaign.title,
            "opens_at": campaign.opens_at.isoformat(), "closes_at": campaign.closes_at.isoformat(),
            "ideas": len(members),
            "supporters": sum(supported_counts.get(r.id, 0) for r in members),
            "realised": sum(1 for r in members if r.status == Status.REALISED.value),
        })
    return result
