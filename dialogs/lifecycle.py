"""The idea lifecycle of the municipality's strategy: NYTT → NYTTIG → NYTTIGGJORT.

Status codes are stable English words (stored, exported, used in the CLI); the Norwegian labels
live in the text catalogs under `status.<code>`.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    USEFUL = "useful"
    REALISED = "realised"
    DECLINED = "declined"
    MERGED = "merged"


OPEN = frozenset({Status.NEW, Status.USEFUL})
CLOSED = frozenset({Status.REALISED, Status.DECLINED, Status.MERGED})

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.USEFUL, Status.DECLINED, Status.MERGED}),
    Status.USEFUL: frozenset({Status.REALISED, Status.DECLINED, Status.MERGED}),
    Status.DECLINED: frozenset({Status.NEW}),
    Status.REALISED: frozenset(),
    Status.MERGED: frozenset(),
}


class MoveNotAllowed(ValueError):
    """A lifecycle move the strategy does not allow (e.g. new → realised)."""


def parse_status(value: str) -> Status:
    """Accept a status code or its Norwegian/English label, case-insensitive."""
    key = value.strip().casefold()
    aliases = {
        "nytt": Status.NEW, "ny": Status.NEW,
        "nyttig": Status.USEFUL,
        "nyttiggjort": Status.REALISED, "realized": Status.REALISED,
        "avslått": Status.DECLINED, "avslatt": Status.DECLINED, "avslege": Status.DECLINED,
        "slått sammen": Status.MERGED, "sammenslått": Status.MERGED,
    }
    if key in aliases:
        return aliases[key]
    try:
        return Status(key)
    except ValueError:
        raise ValueError(f"unknown status {value!r}") from None


def allowed_moves(current: Status) -> frozenset[Status]:
    return _ALLOWED[current]


def check_move(current: Status, target: Status, note: str | None = None) -> None:
    """Raise `MoveNotAllowed` unless `current → target` is allowed; declining needs a reason."""
    if target not in _ALLOWED[current]:
        raise MoveNotAllowed(f"{current.value} → {target.value} is not an allowed move")
    if target is Status.DECLINED and not (note or "").strip():
        raise MoveNotAllowed("declining an idea requires a reason (note)")
