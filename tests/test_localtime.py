"""Local time read one way (bot.localtime): a date or a time without an offset is the
municipality's, whichever command, form, file or URL it came from."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot import localtime
from bot.cli.jobs import run_moment
from bot.reports.realisation import window
from bot.staff import campaigns as sc

OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-03-05", datetime(2024, 3, 4, 23, 0, tzinfo=UTC)),  # local midnight (winter)
    ("2024-07-05", datetime(2024, 7, 4, 22, 0, tzinfo=UTC)),  # local midnight (summer)
    ("2024-03-05T14:30", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
    ("2024-03-05 14:30:00", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
    ("2024-03-05T14:30:00Z", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ("2024-03-05T14:30:00+01:00", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
    ("2024-03-31T02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # in the spring gap
])
def test_parse_moment(text: str, expected: datetime) -> None:
    parsed = localtime.parse_moment(text, OSLO)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "5. mars", "2024-13-01", "i morgen", "2024-03-05T25:00"])
def test_parse_moment_refuses_what_is_not_iso(text: str) -> None:
    with pytest.raises(ValueError):
        localtime.parse_moment(text, OSLO)


def test_days() -> None:
    assert localtime.parse_day("2026-03-02") == date(2026, 3, 2)
    with pytest.raises(ValueError):
        localtime.parse_day("2026-03-02T10:00")
    assert localtime.local_day(date(2026, 3, 2), OSLO) == datetime(2026, 3, 1, 23, tzinfo=UTC)
    assert localtime.local_day(date(2026, 7, 2), OSLO, time(23, 59)) == datetime(
        2026, 7, 2, 21, 59, tzinfo=UTC)
    assert localtime.local_date(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), OSLO) == date(
        2026, 3, 2)


def test_every_reader_means_the_same_instant() -> None:
    """The CLI's --now, the Slack date picker, the report's --from and the import's and
    Open311's dates: one day, one instant (local midnight)."""
    midnight = localtime.parse_moment("2026-03-02", OSLO)
    assert run_moment("2026-03-02", OSLO) == midnight
    assert window(date(2026, 3, 2), None, OSLO)[0] == midnight
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    form, problems = sc.check_form("Sykkelbyen", "Hva trenger syklistene?", None, None,
                                   "2026-03-02", "2026-03-09", areas=[], zone=OSLO, now=now)
    assert problems == [] and form is not None and form.opens_at == midnight
