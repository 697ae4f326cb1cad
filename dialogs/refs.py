"""Public idea references: `KI-<n>`, case-insensitive on input."""

from __future__ import annotations

import re

_REF = re.compile(r"^\s*ki\s*-?\s*(\d{1,9})\s*$", re.IGNORECASE)


def format_ref(number: int) -> str:
    return f"KI-{number}"


def parse_ref(text: str) -> int | None:
    """`"ki-12"`, `"KI 12"`, `"KI12"` → 12; anything else → None."""
    match = _REF.match(text or "")
    return int(match.group(1)) if match else None
