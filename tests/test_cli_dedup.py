"""`kominn dedup similar` and `kominn dedup eval` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import Settings
from tests.test_cli import SUBMISSION, kominn


def test_similar_finds_a_submitted_idea(settings: Settings) -> None:
    kominn(settings, "chat", "--user", "kari", stdin=SUBMISSION)
    found = json.loads(kominn(settings, "dedup", "similar", "Lys i lysløypa ved Vettre",
                              "Lysløypa er for mørk om kvelden", "--format", "json").stdout)
    assert found[0]["ref"] == "KI-1" and found[0]["score"] >= 47
    assert found[0]["shown_to_citizens"] is True
    none = json.loads(kominn(settings, "dedup", "similar", "Hundepark i Heggedal",
                             "--format", "json").stdout)
    assert none == []


def test_eval_reports_the_contract_keys(settings: Settings, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "title_a,description_a,title_b,description_b,label\n"
        "Lys i lysløypa,Lysløypa er mørk,Belysning i lysløypa,Mørkt i løypa om kvelden,1\n"
        "Lys i lysløypa,Lysløypa er mørk,Ny fotballbane,Banen i Vollen er slitt,0\n"
        "Benk ved vannet,Flere benker,Benker ved Semsvannet,Vi trenger benker,1\n", "utf-8")
    result = kominn(settings, "dedup", "eval", str(pairs), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("pairs", "threshold", "precision", "recall", "f1", "best_threshold", "best_f1"):
        assert key in data
    assert data["pairs"] == 3
    table = kominn(settings, "dedup", "eval", str(pairs), "--threshold", "30")
    assert "precision" in table.stdout and "30" in table.stdout
    missing = kominn(settings, "dedup", "eval", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "cannot evaluate" in missing.stderr
    broken = tmp_path / "broken.csv"
    broken.write_text("title_a,label\nLys i lysløypa,1\n", "utf-8")
    refused = kominn(settings, "dedup", "eval", str(broken))
    assert refused.returncode == 2 and "cannot evaluate" in refused.stderr
    assert "title_b" in refused.stderr  # names the missing column


def test_eval_has_one_entry_point() -> None:
    """`kominn dedup eval` is the only way in; the library has no command line of its own."""
    from bot.dedup import evaluate

    assert not hasattr(evaluate, "main")
