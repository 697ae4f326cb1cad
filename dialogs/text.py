"""Cleaning what people type: control and zero-width characters out, whitespace folded."""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean(text: str | None, *, multiline: bool = False) -> str:
    """NFC, no control/format characters (newlines kept when `multiline`), folded spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for char in text:
        if char == "\n":
            kept.append("\n" if multiline else " ")
        elif unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs"):
            continue
        else:
            kept.append(char)
    text = "".join(kept)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def has_words(text: str) -> bool:
    """True when there is at least one letter or digit (not only emoji or punctuation)."""
    return any(char.isalnum() for char in text)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
