"""`kominn dedup similar` and `kominn dedup eval` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import Settings
from tests.test_cli import SUBMISSION, kominn

pytestmark = pytest.mark.once  # the CLI's output: the same on every database

DATA = Path(__file__).parent / "data"


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


BRACKETS = "\n".join([
    "/ny", "Skilt [/] ved [b]Vollen",
    "Det mangler skilt [link=http://x]her[/link] ved Vollen brygge, ingen finner fram.",
    "2", "Vollen", "1", "1", "",
])


def test_similar_prints_citizen_text_as_written(settings: Settings) -> None:
    kominn(settings, "chat", "--user", "eva", stdin=BRACKETS)
    table = kominn(settings, "dedup", "similar", "Skilt ved Vollen brygge",
                   env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "Skilt [/] ved [b]Vollen" in table.stdout


def test_similar_does_not_mark_a_hidden_idea_shown(settings: Settings) -> None:
    """The "Shown" column follows the citizen's step: a hidden idea is not offered."""
    kominn(settings, "chat", "--user", "kari", stdin=SUBMISSION)
    query = ("dedup", "similar", "Lys i lysløypa ved Vettre", "Lysløypa er for mørk om kvelden",
             "--format", "json")
    assert json.loads(kominn(settings, *query).stdout)[0]["shown_to_citizens"] is True
    hidden = kominn(settings, "ideas", "hide", "KI-1", "--reason", "Til kontroll")
    assert hidden.returncode == 0, hidden.stderr
    (found,) = json.loads(kominn(settings, *query).stdout)
    assert found["ref"] == "KI-1" and found["shown_to_citizens"] is False


def test_eval_measures_the_stored_calibration(settings: Settings) -> None:
    """After `calibrate --apply`, `eval` scores as the workers do, and says where from."""
    from bot.dedup import calibrate as cal
    from storage.db import make_engine

    pairs = str(DATA / "norwegian_pairs.csv")
    before = json.loads(kominn(settings, "dedup", "eval", pairs, "--format", "json").stdout)
    assert before["threshold"] == settings.dedup_threshold
    assert "environment" in before["detector"]["source"]
    engine = make_engine(settings.database_url)
    cal.apply(engine, {"dedup_threshold": 18.0, "triage_threshold": 9.0,
                       "short_text_penalty": 60.0, "rarest_word_penalty": 60.0})
    engine.dispose()
    after = json.loads(kominn(settings, "dedup", "eval", pairs, "--format", "json").stdout)
    assert after["threshold"] == 18.0 and after["triage_threshold"] == 9.0
    assert after["detector"]["short_text_penalty"] == 60.0
    assert "calibration" in after["detector"]["source"]
    assert after["f1"] != before["f1"]
    table = kominn(settings, "dedup", "eval", pairs).stdout
    assert "dedup 18, triage 9" in table and "calibration stored in the database" in table


def test_eval_needs_no_database_and_creates_none(tmp_path: Path, settings: Settings) -> None:
    absent = tmp_path / "none" / "kominn.db"
    result = kominn(settings, "dedup", "eval", str(DATA / "norwegian_pairs.csv"),
                    env={"DATABASE_URL": f"sqlite:///{absent}"})
    assert result.returncode == 0, result.stderr
    assert "no database" in result.stdout and "threshold       40" in result.stdout
    assert not absent.exists()


def test_eval_names_a_missing_file_once(settings: Settings, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    result = kominn(settings, "dedup", "eval", missing)
    assert result.returncode == 2
    assert result.stderr.count(missing) == 1, result.stderr


def test_calibrate_refuses_reset_with_apply_and_says_what_it_fits(settings: Settings) -> None:
    refused = kominn(settings, "dedup", "calibrate", "--apply", "--reset")
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "--apply" in refused.stderr
    assert "calibration removed" not in refused.stdout
    shown = kominn(settings, "dedup", "calibrate", "--help", env={"COLUMNS": "200"}).stdout
    assert "channel weights" not in shown
    assert "short-text discount" in shown and "rarest-word penalty" in shown
    assert "back to the environment's thresholds" in shown
