"""Local time, one way: what people and files write is the municipality's time.

Operators, moderators and CSV files write dates and times without an offset, and mean the
local time of `KOMINN_TIMEZONE`; the database holds aware UTC. Every place that reads such a
value (the CLI's options, the Slack date pickers, the CSV import, Open311's date filters, the
report's period) turns it into UTC here, so a date means the same instant everywhere. Callers
keep their own error messages: these functions raise `ValueError`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo


def parse_moment(text: str, zone: tzinfo) -> datetime:
    """ISO 8601 date or date-time as aware UTC: `2024-03-05` is local midnight,
    `2024-03-05T10:00` local time, `…Z` or `…+01:00` as written."""
    return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)


def parse_day(text: str) -> date:
    """An ISO date (`2024-03-05`), a day in the municipality's calendar."""
    return date.fromisoformat(text)


def to_utc(moment: datetime, zone: tzinfo) -> datetime:
    """An aware moment as UTC; a naive one is local time in `zone`."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    return aware.astimezone(UTC)


def local_day(day: date, zone: tzinfo, at: time = time()) -> datetime:
    """A local day (at a local time of it, default its start) as aware UTC."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The day it is in `zone` at an aware moment (what "today" means to the municipality)."""
    return moment.astimezone(zone).date()


def stored_as_local(iso: str, zone: tzinfo, pattern: str) -> str:
    """A stored UTC moment (ISO text; SQLite gives naive values back, which are UTC) written
    in the municipality's time: an idea sent in on 5 March shows 5 March, not the UTC day
    before."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime(pattern)
