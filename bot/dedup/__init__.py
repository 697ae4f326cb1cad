"""Duplicate detection: normalised text, an in-memory index, the triage queue it feeds."""

from bot.dedup.detector import DuplicateFinder, Match

__all__ = ["DuplicateFinder", "Match"]
