"""Learning each municipality's judgement: moderators' triage decisions as labelled pairs,
thresholds fitted on them (`kominn dedup calibrate`), and the stored result every worker uses.

A decision (Slå sammen = duplicate, Ikke duplikat = not; "Hopp over" is none) is stored with
the two texts as they were (`storage.models.DedupDecision`, written by `bot.ideas.triage.decide`
in the decision's transaction). Calibration scores every labelled pair — the decisions plus an
optional CSV of pairs — with the detector, picks the dedup threshold with the best F1 and the
triage threshold as the highest one keeping TRIAGE_RECALL of the duplicates (and at least the
current gap below the dedup threshold), and reports F1
before (the current thresholds) and after, cross-validated over two folds split by the first
text, so no text is both fitted and judged on. Below MIN_PAIRS labelled pairs (or MIN_EACH of
either label) it refuses: a threshold fitted on a handful of decisions moves by chance.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from bot.dedup.detector import Channels, DuplicateFinder
from bot.dedup.evaluate import Pair, build_finder, metrics
from storage.models import DedupDecision, DedupSetting, utcnow

__all__ = ["MIN_EACH", "MIN_PAIRS", "WEIGHTS", "TooFewPairs", "apply", "calibrate", "channels_of",
           "decision_pairs", "pairs_csv", "reset", "settings_of", "stored_thresholds",
           "use_stored"]

MIN_PAIRS = 40  # labelled pairs needed to calibrate at all
MIN_EACH = 10  # … of which at least this many duplicates and this many non-duplicates
TRIAGE_RECALL = 0.9  # the triage threshold keeps this share of duplicates
DEDUP, TRIAGE = "dedup_threshold", "triage_threshold"
SURFACE, TITLE = "surface_weight", "title_channel"  # the channel weights (bot.dedup.scoring)
SHORT, RAREST = "short_text_penalty", "rarest_word_penalty"  # … and the two discounts
WEIGHTS = {SURFACE: "surface", TITLE: "title", SHORT: "short", RAREST: "rarest"}
SHORT_GRID = (0.0, 15.0, 30.0, 45.0, 60.0)  # short-text discounts tried by calibrate
RAREST_GRID = (0.0, 10.0, 20.0, 40.0, 60.0)  # rarest-word penalties tried
COLUMNS = ("title_a", "description_a", "title_b", "description_b", "label")


class TooFewPairs(ValueError):
    """Not enough labelled pairs to calibrate on."""


def decision_pairs(session: Session) -> list[Pair]:
    """Every stored triage decision as a labelled pair, oldest first."""
    rows = session.exec(select(DedupDecision).order_by(DedupDecision.id))  # type: ignore[arg-type]
    return [Pair(r.title_a, r.description_a, r.title_b, r.description_b, r.duplicate)
            for r in rows]


def pairs_csv(pairs: Sequence[Pair]) -> str:
    """Pairs in the `kominn dedup eval` CSV format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in pairs:
        writer.writerow([p.title_a, p.description_a, p.title_b, p.description_b, int(p.label)])
    return out.getvalue()


def _fit(scores: Sequence[float], labels: Sequence[bool], gap: float) -> tuple[float, float]:
    """(dedup threshold with the best F1 — the higher on a tie —, triage threshold: the highest
    keeping TRIAGE_RECALL of the duplicates, and at least `gap` below the dedup threshold)."""
    best = max(range(101), key=lambda t: (metrics(scores, labels, t)["f1"], t))
    keeping = [t for t in range(best + 1) if metrics(scores, labels, t)["recall"] >= TRIAGE_RECALL]
    triage = max(keeping, default=0)
    return float(best), float(max(0.0, min(triage, best - gap)))


def _fit_channels(grid: Sequence[Channels], scores: Sequence[Sequence[float]],
                  labels: Sequence[bool], current: Channels) -> tuple[int, float]:
    """(index into `grid`, dedup threshold) with the best F1; on a tie the weights nearest the
    current ones, then the higher threshold."""
    def key(i: int) -> tuple[float, float, float]:
        column = [row[i] for row in scores]
        threshold = max(range(101), key=lambda t: (metrics(column, labels, t)["f1"], t))
        distance = (abs(grid[i].short - current.short) + abs(grid[i].rarest - current.rarest)
                    ) / 100.0 + abs(grid[i].surface - current.surface) + abs(
                        grid[i].title - current.title)
        return metrics(column, labels, threshold)["f1"], -distance, float(threshold)
    keys = [key(i) for i in range(len(grid))]
    best = max(range(len(grid)), key=keys.__getitem__)
    return best, keys[best][2]


def _fold(pair: Pair) -> int:
    return zlib.crc32(pair.title_a.encode("utf-8")) % 2


def _grid(current: Channels, weights: bool) -> list[Channels]:
    """The weights tried: the two discounts over their grids, the two shares as they are.
    (Fitting the shares as well, or instead, judged worse on held-out pairs: README.)"""
    if not weights:
        return [current]
    grid = [replace(current, short=short, rarest=rarest)
            for short in SHORT_GRID for rarest in RAREST_GRID]
    return grid if current in grid else [current, *grid]


def calibrate(pairs: Sequence[Pair], finder: DuplicateFinder,
              weights: bool = True) -> dict[str, Any]:
    """Fit the thresholds — and with `weights` the short-text discount and rarest-word penalty
    (a grid over both) — on `pairs`; figures before/after, the F1 also two-fold
    cross-validated (weights and threshold fitted on one half, judged on the other)."""
    positives = sum(1 for p in pairs if p.label)
    if len(pairs) < MIN_PAIRS or min(positives, len(pairs) - positives) < MIN_EACH:
        raise TooFewPairs(
            f"{len(pairs)} labelled pairs ({positives} duplicates); calibrating needs at least "
            f"{MIN_PAIRS}, with at least {MIN_EACH} duplicates and {MIN_EACH} non-duplicates")
    build_finder(pairs, finder)
    current_channels = finder.channels
    grid = _grid(current_channels, weights)
    scores = [finder.scores(p.title_a, p.description_a, p.title_b, p.description_b, grid)
              for p in pairs]
    now = [row[grid.index(current_channels)] for row in scores]
    labels = [p.label for p in pairs]
    current = finder.dedup_threshold
    gap = max(0.0, current - finder.triage_threshold)
    folds = [_fold(p) for p in pairs]
    cv_before, cv_after = [], []
    for held in (0, 1):
        fit = [i for i, f in enumerate(folds) if f != held]
        test = [i for i, f in enumerate(folds) if f == held]
        if not test or not fit:
            continue
        chosen, threshold = _fit_channels(
            grid, [scores[i] for i in fit], [labels[i] for i in fit], current_channels)
        test_y = [labels[i] for i in test]
        cv_before.append(metrics([now[i] for i in test], test_y, current)["f1"])
        cv_after.append(metrics([scores[i][chosen] for i in test], test_y, threshold)["f1"])
    chosen, _ = _fit_channels(grid, scores, labels, current_channels)
    fitted = [row[chosen] for row in scores]
    dedup, triage = _fit(fitted, labels, gap)
    return {
        "pairs": len(pairs), "duplicates": positives,
        "before": {DEDUP: current, TRIAGE: finder.triage_threshold,
                   **_named(current_channels),
                   "f1": round(metrics(now, labels, current)["f1"], 4),
                   "f1_cv": round(sum(cv_before) / max(1, len(cv_before)), 4)},
        "after": {DEDUP: dedup, TRIAGE: triage,
                  **_named(grid[chosen]),
                  "f1": round(metrics(fitted, labels, dedup)["f1"], 4),
                  "f1_cv": round(sum(cv_after) / max(1, len(cv_after)), 4)},
    }


def _named(channels: Channels) -> dict[str, float]:
    values = asdict(channels)
    return {name: values[field] for name, field in WEIGHTS.items()}


def channels_of(stored: dict[str, float], default: Channels) -> Channels:
    """The channel weights in stored settings, each falling back to `default`'s."""
    return replace(default, **{field: stored[name] for name, field in WEIGHTS.items()
                               if name in stored})


def use_stored(finder: DuplicateFinder, stored: dict[str, float],
               defaults: tuple[float, float, Channels]) -> None:
    """Set `finder` to the stored calibration, each value falling back to `defaults` (the
    environment's dedup and triage thresholds, the default weights): what every worker's
    index runs with, and what `kominn dedup eval` measures."""
    finder.dedup_threshold = stored.get(DEDUP, defaults[0])
    finder.triage_threshold = stored.get(TRIAGE, defaults[1])
    finder.channels = channels_of(stored, defaults[2])


def settings_of(finder: DuplicateFinder) -> dict[str, float]:
    """The thresholds and weights `finder` scores with, by their stored names."""
    return {DEDUP: finder.dedup_threshold, TRIAGE: finder.triage_threshold,
            **_named(finder.channels)}


def apply(engine: Engine, thresholds: dict[str, float]) -> None:
    """Store calibrated thresholds (and channel weights, when given); every worker's index
    reads them on its next refresh."""
    with Session(engine) as session:
        for name in (DEDUP, TRIAGE, *WEIGHTS):
            if name not in thresholds:
                continue
            row = session.get(DedupSetting, name) or DedupSetting(name=name, value=0.0)
            row.value, row.updated_at = float(thresholds[name]), utcnow()
            session.add(row)
        session.commit()


def reset(engine: Engine) -> None:
    """Forget calibrated settings: back to the environment's defaults."""
    with Session(engine) as session:
        session.exec(delete(DedupSetting))
        session.commit()


def stored_thresholds(session: Session) -> dict[str, float]:
    """The calibrated settings in the database ({} when none)."""
    return {row.name: row.value for row in session.exec(select(DedupSetting))}
