"""The order in which similar ideas are shown (`DuplicateFinder.similar`).

The matches are ordered by their score plus RANK_OVERLAP (0.5) × the token-set ratio of the
two texts' stems (rapidfuzz, 0–100: every word alike, the common ones too), those at or above
the dedup threshold — the ones a citizen is shown — first. A citizen's rewording of an idea
keeps most of its words but swaps the one naming the thing for a synonym or a typo, and the
rare-word cosine then ranks another idea about the same place just above it; the words it kept
tell them apart. Scores, and so every threshold decision, are the detector's alone: blended
into the score the same overlap lowers every pair file's best F1 (README).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz

__all__ = ["RANK_OVERLAP", "best_first", "word_overlap"]

RANK_OVERLAP = 0.5  # the order of the matches: score + this × token-set ratio of the stems


def word_overlap(query_stems: str, stems: Sequence[str]) -> float:
    """Token-set ratio (0–100) of the query's stems (joined by spaces) and an idea's."""
    return fuzz.token_set_ratio(query_stems, " ".join(stems))


def best_first(found: Iterable[tuple[str, float, float]], dedup_threshold: float,
               limit: int) -> list[tuple[str, float]]:
    """(ref, score) of the `limit` best of `found` — (ref, score, overlap) — in the order
    shown: at or above the dedup threshold first, then by score + RANK_OVERLAP × overlap,
    the lower ref on a tie."""
    ranked = sorted(found, key=lambda f: (f[1] < dedup_threshold, -(f[1] + RANK_OVERLAP * f[2]),
                                          f[0]))
    return [(ref, score) for ref, score, _ in ranked[:limit]]
