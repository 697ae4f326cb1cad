"""The rules for an idea's fields, in one place: their limits and how their text is cleaned.

The citizen chat (`dialogs.submit`), the employees' Slack modal (`bot.staff.desk`) and the CSV
import (`bot.reports.opendata`) all ask these functions, so an idea is accepted by the same
rules whichever way it came in. Each check returns the cleaned text and, when the text is not
acceptable, a `Problem` naming a text key of the chat; a caller with its own wording (the
import's reasons for the operator) maps the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialogs.text import clean, has_words

TITLE_MIN, TITLE_MAX = 5, 120
DESCRIPTION_MIN, DESCRIPTION_MAX = 20, 3000
PLACE_MAX = 200

NEED_WORDS = "submit.need_words"
TITLE_TOO_SHORT, TITLE_TOO_LONG = "submit.title_too_short", "submit.title_too_long"
DESCRIPTION_TOO_SHORT = "submit.description_too_short"
DESCRIPTION_TOO_LONG = "submit.description_too_long"
PLACE_TOO_LONG = "submit.place_too_long"


@dataclass(frozen=True)
class Problem:
    """Why a field's text is refused: a text key (citizen.po) and the values it shows."""

    key: str
    params: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FormProblem:
    """A field of a form (a Slack modal, the CLI's options) that is not acceptable: which
    field, and the text key and values saying why — so the form can mark that field."""

    field: str
    key: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Checked:
    """A field's cleaned text, and its problem when it is not acceptable."""

    value: str
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_title(text: str | None) -> Checked:
    """One line of 5–120 characters with at least one letter or digit (empty is too short)."""
    return _check(clean(text), TITLE_MIN, TITLE_MAX, TITLE_TOO_SHORT, TITLE_TOO_LONG)


def check_description(text: str | None) -> Checked:
    """20–3000 characters with words; paragraphs kept, runs of blank lines folded."""
    return _check(clean(text, multiline=True), DESCRIPTION_MIN, DESCRIPTION_MAX,
                  DESCRIPTION_TOO_SHORT, DESCRIPTION_TOO_LONG)


def check_place(text: str | None) -> Checked:
    """Optional: empty is fine (value ""); otherwise words, at most 200 characters."""
    value = clean(text)
    if not value:
        return Checked(value)
    if not has_words(value):
        return Checked(value, Problem(NEED_WORDS))
    if len(value) > PLACE_MAX:
        return Checked(value, Problem(PLACE_TOO_LONG, {"max": PLACE_MAX, "n": len(value)}))
    return Checked(value)


def picked_area(value: str | None, areas: Sequence[str]) -> str | None:
    """The focus area at the position a form's list selected (Slack's modals send the
    position); any other value stays as sent, so the area rules refuse it. Nothing is None."""
    if value and value.isdigit() and int(value) < len(areas):
        return areas[int(value)]
    return value or None


def match_area(text: str | None, areas: Sequence[str], *, partial: bool = False) -> str | None:
    """The configured focus area someone typed, in its configured spelling: the same name in
    any case and spacing; with `partial` (a search word), else the first that starts with it,
    else the first that contains it. None when nothing (or nothing usable) matches."""
    wanted = " ".join((text or "").split()).casefold()
    if not wanted:
        return None
    folded = [(" ".join(area.split()).casefold(), area) for area in areas]
    tests: list[Callable[[str], bool]] = [lambda name: name == wanted]
    if partial:
        tests += [lambda name: name.startswith(wanted), lambda name: wanted in name]
    for test in tests:
        hit = next((area for name, area in folded if test(name)), None)
        if hit is not None:
            return hit
    return None


def _check(value: str, low: int, high: int, too_short: str, too_long: str) -> Checked:
    """The rule both required texts share: words first, then the length window."""
    if value and not has_words(value):
        return Checked(value, Problem(NEED_WORDS))
    if len(value) < low:
        return Checked(value, Problem(too_short, {"min": low, "n": len(value)}))
    if len(value) > high:
        return Checked(value, Problem(too_long, {"max": high, "n": len(value)}))
    return Checked(value)
