"""Evaluate the duplicate detector on labelled pairs: precision, recall, F1 and a threshold sweep.

Input is a CSV with the columns `title_a, description_a, title_b, description_b, label`
(label 1 = duplicate, 0 = not; descriptions may be empty or missing; other columns are
ignored). Scoring a pair needs word statistics (IDF), so the evaluation first indexes every
distinct text of the file — the same thing the live system does with its idea base — and then
scores each pair with `DuplicateFinder.score`. A pair is predicted duplicate when its score is
at or above the threshold (by default the finder's configured dedup threshold).

The one way to run it is the operator CLI: `kominn dedup eval PAIRS.csv [--format table|json]
[--threshold T]` (bot/cli/dedup.py); this module is the library behind it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.dedup.detector import DuplicateFinder

__all__ = ["Pair", "build_finder", "evaluate", "load_pairs", "metrics", "score_pairs"]

REQUIRED_COLUMNS = ("title_a", "title_b", "label")
_TRUE = {"1", "true", "yes", "ja"}
_FALSE = {"0", "false", "no", "nei"}


@dataclass(frozen=True)
class Pair:
    """Two idea texts and whether a person judged them duplicates."""

    title_a: str
    description_a: str
    title_b: str
    description_b: str
    label: bool


def load_pairs(path: str | Path) -> list[Pair]:
    """Read labelled pairs from a CSV file; anything unusable raises ValueError saying why."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse_pairs(csv.DictReader(handle), path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: not valid CSV ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _parse_pairs(reader: csv.DictReader, path: Path) -> list[Pair]:
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected "
            "title_a,description_a,title_b,description_b,label"
        )
    pairs = []
    for row in reader:
        row = {(k or "").strip(): (v or "") for k, v in row.items() if isinstance(v, str)}
        pairs.append(
            Pair(
                title_a=row.get("title_a", ""),
                description_a=row.get("description_a", ""),
                title_b=row.get("title_b", ""),
                description_b=row.get("description_b", ""),
                label=_parse_label(row.get("label", ""), path, reader.line_num),
            )
        )
    if not pairs:
        raise ValueError(f"{path}: no pairs found")
    return pairs


def _parse_label(raw: str, path: Path, line: int) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{path}, line {line}: label must be 1 (duplicate) or 0 (not), got {raw!r}")


def build_finder(pairs: Sequence[Pair], finder: DuplicateFinder | None = None) -> DuplicateFinder:
    """Index every distinct text of the pairs, so that scoring sees realistic word statistics."""
    finder = finder if finder is not None else DuplicateFinder()
    texts = dict.fromkeys(
        text for p in pairs for text in ((p.title_a, p.description_a), (p.title_b, p.description_b))
    )
    for number, (title, description) in enumerate(texts, start=1):
        finder.add(f"EVAL-{number}", title, description)
    return finder


def score_pairs(pairs: Sequence[Pair], finder: DuplicateFinder) -> list[float]:
    """Score of each pair, 0–100, in order."""
    return [finder.score(p.title_a, p.description_a, p.title_b, p.description_b) for p in pairs]


def metrics(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> dict[str, float]:
    """Precision, recall and F1 when `score >= threshold` predicts a duplicate."""
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and y)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(scores, labels, strict=True) if s < threshold and y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1}


def evaluate(
    pairs: Sequence[Pair], threshold: float | None = None, finder: DuplicateFinder | None = None
) -> dict[str, Any]:
    """Figures for `kominn dedup eval`: the keys pairs, threshold, precision, recall, f1,
    best_threshold, best_f1, plus `sweep` (one row per whole-number threshold 0–100).

    The best threshold is the one with the highest F1; on a tie the higher (more precise) one.
    """
    if not pairs:
        raise ValueError("no pairs to evaluate")
    finder = build_finder(pairs, finder)
    chosen = finder.dedup_threshold if threshold is None else float(threshold)
    scores = score_pairs(pairs, finder)
    labels = [p.label for p in pairs]
    at = metrics(scores, labels, chosen)
    sweep = [metrics(scores, labels, float(t)) for t in range(0, 101)]
    best = max(sweep, key=lambda row: (row["f1"], row["threshold"]))
    return {
        "pairs": len(pairs),
        "threshold": chosen,
        "precision": round(at["precision"], 4),
        "recall": round(at["recall"], 4),
        "f1": round(at["f1"], 4),
        "best_threshold": best["threshold"],
        "best_f1": round(best["f1"], 4),
        "triage_threshold": finder.triage_threshold,
        "triage": _rounded(metrics(scores, labels, finder.triage_threshold)),
        "sweep": [_rounded(row) for row in sweep],
    }


def _rounded(row: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in row.items()}


def format_table(result: dict[str, Any], sweep_step: int = 5) -> str:
    """Human-readable report: the headline figures and every `sweep_step`-th sweep row."""
    lines = [
        f"pairs           {result['pairs']}",
        f"threshold       {result['threshold']:g}",
        f"precision       {result['precision']:.3f}",
        f"recall          {result['recall']:.3f}",
        f"F1              {result['f1']:.3f}",
        f"best threshold  {result['best_threshold']:g}  (F1 {result['best_f1']:.3f})",
        "",
        "threshold  precision  recall  F1",
    ]
    best = result["best_threshold"]
    for row in result.get("sweep", []):
        t = row["threshold"]
        if t % sweep_step == 0 or t in (result["threshold"], best):
            lines.append(f"{t:9g}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:.3f}")
    return "\n".join(lines)
