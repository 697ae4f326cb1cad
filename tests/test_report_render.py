"""The report's shapes: the rich table per locale, JSON, CSV, the PNG chart, and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console
from sqlalchemy import Engine

from bot.reports import chart, render
from tests.test_cli import kominn
from tests.test_report import db, figures  # noqa: F401  (the hand-built database fixture)

WINDOW = {"start": date(2024, 1, 1), "end": date(2024, 4, 30)}


def rendered(report: dict, language: str) -> str:  # type: ignore[type-arg]
    console = Console(record=True, width=140, color_system=None)
    render.print_table(report, language, console)
    return console.export_text()


def test_table_reads_in_bokmal_and_english(db: Engine) -> None:  # noqa: F811
    nb = rendered(figures(db, **WINDOW), "nb")
    assert "Realiseringsgrad: 40 % (2 av 5 ideer; 1 sammenslått er holdt utenfor)" \
        in nb.replace("\u00a0", " ")
    for text in ("Periode: 2024-01-01 – 2024-04-30", "Per satsningsområde", "Uten område",
                 "Slått sammen", "2024-03", "Grønnere sentrum", "1 / 1 / 1", "66,7 %"):
        assert text in nb.replace("\u00a0", " "), text
    en = rendered(figures(db, locale="en", **WINDOW), "en")
    for text in ("Realisation rate: 40% (2 of 5 ideas; 1 merged one left out)",
                 "By focus area", "No focus area", "Median days from New to Useful", "66.7%",
                 "Idea competitions"):
        assert text in en, text
    assert "Realiseringsgrad" not in en


def test_json_shape(db: Engine) -> None:  # noqa: F811
    data = json.loads(render.to_json(figures(db, **WINDOW)))
    for key in ("realisation_rate", "funnel", "by_area", "by_channel", "by_month",
                "benefit_check", "median_days", "supported_share", "triage", "campaigns"):
        assert key in data, key
    assert 0 <= data["realisation_rate"] <= 1
    assert set(data["benefit_check"]) == {"Ja", "Delvis", "Nei"}
    assert set(data["funnel"]) == {"new", "useful", "realised", "declined", "merged"}
    assert set(data["by_month"]["2024-01"]) == {"submitted", "merged", "realised", "rate",
                                                "statuses"}


def test_csv_shape(db: Engine) -> None:  # noqa: F811
    rows = list(csv.DictReader(io.StringIO(render.to_csv(figures(db, **WINDOW)))))
    assert tuple(rows[0]) == render.CSV_COLUMNS
    by_key = {(r["section"], r["name"]): r for r in rows}
    total = by_key[("total", "all")]
    assert (total["submitted"], total["merged"], total["realisation_rate"]) == ("6", "1", "0.4")
    assert by_key[("month", "2024-03")]["submitted"] == "0"
    assert by_key[("area", "Folkehelse")]["realised"] == "2"
    assert by_key[("benefit_check", "Delvis")]["value"] == "1"
    assert by_key[("median_days", "useful_to_realised")]["value"] == "35.0"
    assert by_key[("campaign", "Grønnere sentrum")]["supporters"] == "2"
    assert by_key[("triage", "pending")]["value"] == "2"


def png_facts(data: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    return image.width, image.height, {c for _, c in colours}


def hex_rgb(value: str) -> tuple[int, int, int]:
    return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.parametrize("language", ["nb", "en"])
def test_chart_is_a_real_png_with_the_bars(db: Engine, tmp_path: Path,  # noqa: F811
                                           language: str) -> None:
    target = tmp_path / "report.png"
    data = chart.render(figures(db, locale=language, **WINDOW), target, language)
    assert target.read_bytes() == data
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    width, height, colours = png_facts(data)
    assert (width, height) == (int(chart.WIDTH * chart.DPI), int(chart.DPI * chart.HEIGHT))
    assert len(colours) > 100  # text, anti-aliasing, bars: not a blank canvas
    for status in ("new", "realised", "declined", "merged"):  # statuses present in the data
        assert hex_rgb(chart.COLOURS[status]) in colours, status
    assert hex_rgb(chart.COLOURS["useful"]) in colours  # the "judged useful" funnel bar


def test_chart_of_an_empty_period(db: Engine) -> None:  # noqa: F811
    data = chart.render(figures(db, start=date(2030, 1, 1)), None, "nb")
    width, _, colours = png_facts(data)
    assert width == int(chart.WIDTH * chart.DPI)
    assert hex_rgb(chart.COLOURS["realised"]) not in colours


def test_cli_report_json_csv_table_and_chart(  # type: ignore[no-untyped-def]
        db: Engine, settings, tmp_path: Path) -> None:  # noqa: F811
    png = tmp_path / "out.png"
    result = kominn(settings, "report", "--from", "2024-01-01", "--to", "2024-04-30",
                    "--format", "json", "--chart", str(png))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["realisation_rate"], data["benefit_check"]) == (0.4, {"Ja": 1, "Delvis": 1,
                                                                       "Nei": 1})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_out = kominn(settings, "report", "--format", "csv")
    assert csv_out.stdout.startswith(",".join(render.CSV_COLUMNS))
    table = kominn(settings, "report", env={"KOMINN_LOCALE": "en", "COLUMNS": "120"})
    assert "Realisation rate: 50%" in table.stdout, table.stdout
    bad = kominn(settings, "report", "--from", "1. mai")
    assert bad.returncode == 2 and "1. mai" in bad.stderr
