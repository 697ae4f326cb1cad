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
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from bot.dedup.detector import DuplicateFinder
from bot.dedup.evaluate import Pair, build_finder, metrics, score_pairs
from storage.models import DedupDecision, DedupSetting, utcnow

__all__ = ["MIN_EACH", "MIN_PAIRS", "TooFewPairs", "apply", "calibrate", "decision_pairs",
           "pairs_csv", "reset", "stored_thresholds"]

MIN_PAIRS = 40  # labelled pairs needed to calibrate at all
MIN_EACH = 10  # … of which at least this many duplicates and this many non-duplicates
TRIAGE_RECALL = 0.9  # the triage threshold keeps this share of duplicates
DEDUP, TRIAGE = "dedup_threshold", "triage_threshold"
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


def _fold(pair: Pair) -> int:
    return zlib.crc32(pair.title_a.encode("utf-8")) % 2


def calibrate(pairs: Sequence[Pair], finder: DuplicateFinder) -> dict[str, Any]:
    """Fit thresholds on `pairs`; figures before/after (two-fold cross-validated F1)."""
    positives = sum(1 for p in pairs if p.label)
    if len(pairs) < MIN_PAIRS or min(positives, len(pairs) - positives) < MIN_EACH:
        raise TooFewPairs(
            f"{len(pairs)} labelled pairs ({positives} duplicates); calibrating needs at least "
            f"{MIN_PAIRS}, with at least {MIN_EACH} duplicates and {MIN_EACH} non-duplicates")
    build_finder(pairs, finder)
    scores = score_pairs(pairs, finder)
    labels = [p.label for p in pairs]
    current = finder.dedup_threshold
    gap = max(0.0, current - finder.triage_threshold)
    folds = [_fold(p) for p in pairs]
    cv_before, cv_after = [], []
    for held in (0, 1):
        fit_s = [s for s, f in zip(scores, folds, strict=True) if f != held]
        fit_y = [y for y, f in zip(labels, folds, strict=True) if f != held]
        test_s = [s for s, f in zip(scores, folds, strict=True) if f == held]
        test_y = [y for y, f in zip(labels, folds, strict=True) if f == held]
        if not test_s or not fit_s:
            continue
        threshold, _ = _fit(fit_s, fit_y, gap)
        cv_before.append(metrics(test_s, test_y, current)["f1"])
        cv_after.append(metrics(test_s, test_y, threshold)["f1"])
    dedup, triage = _fit(scores, labels, gap)
    return {
        "pairs": len(pairs), "duplicates": positives,
        "before": {DEDUP: current, TRIAGE: finder.triage_threshold,
                   "f1": round(metrics(scores, labels, current)["f1"], 4),
                   "f1_cv": round(sum(cv_before) / max(1, len(cv_before)), 4)},
        "after": {DEDUP: dedup, TRIAGE: triage,
                  "f1": round(metrics(scores, labels, dedup)["f1"], 4),
                  "f1_cv": round(sum(cv_after) / max(1, len(cv_after)), 4)},
    }


def apply(engine: Engine, thresholds: dict[str, float]) -> None:
    """Store calibrated thresholds; every worker's index reads them on its next refresh."""
    with Session(engine) as session:
        for name in (DEDUP, TRIAGE):
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
