"""The realisation report as a terminal table (rich), JSON and CSV.

The table is for people (labels in the operator's language, percentages, Norwegian number
format); JSON and CSV are for machines (stable English keys, rates 0–1), whatever the locale.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from babel.numbers import format_decimal
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bot.i18n import Translator, translator
from bot.reports.realisation import BENEFIT_KEYS, STATUSES

CSV_COLUMNS = ("section", "name", "value", "submitted", *STATUSES, "realisation_rate",
               "supporters")


def percent(rate: float | None, language: str) -> str:
    """`33,3 %` in Norwegian (a no-break space before the sign), `33.3%` in English."""
    if rate is None:
        return "–"
    value = format_decimal(round(rate * 100, 1), format="#,##0.#", locale=_babel(language))
    return f"{value}%" if language == "en" else f"{value}\u00a0%"


def number(value: float | None, language: str) -> str:
    if value is None:
        return "–"
    return format_decimal(value, format="#,##0.#", locale=_babel(language))


def _babel(language: str) -> str:
    return {"nb": "nb_NO", "nn": "nn_NO"}.get(language, "en")


# --- table ------------------------------------------------------------------------------------

def period_text(report: dict[str, Any], t: Translator) -> str:
    period = report["period"]
    return t("report.period", start=period["from"] or t("report.open_start"),
             end=period["to"] or t("report.open_end"))


def headline(report: dict[str, Any], t: Translator) -> str:
    share = t("report.headline_share", realised=report["realised"],
              n=report["submitted"] - report["merged"])
    return t("report.headline", rate=percent(report["realisation_rate"], t.language),
             share=share, left_out=t("report.headline_merged", n=report["merged"]))


def table(report: dict[str, Any], language: str = "nb") -> Group:
    """Every section as rich renderables, in reading order."""
    t = translator(language)
    parts: list[Any] = [
        Text(t("report.title"), style="bold"),
        Text(period_text(report, t), style="dim"),
        Text(headline(report, t), style="bold green"),
    ]
    if report["submitted"] == 0:
        parts.append(Text(t("report.empty")))
    else:
        parts += [_stages(report, t), _funnel(report, t),
                  _groups(report["by_area"], t("report.by_area"), t("report.area"), t),
                  _groups(report["by_channel"], t("report.by_channel"), t("report.channel"), t),
                  _months(report, t)]
    parts.append(_key_figures(report, t))
    if report["campaigns"]:
        parts.append(_campaigns(report, t))
    return Group(*parts)


def print_table(report: dict[str, Any], language: str = "nb",
                console: Console | None = None) -> None:
    (console or Console()).print(table(report, language), highlight=False)


def _table(title: str, first: str, *numeric: str, header: bool = True) -> Table:
    """A compact table: first column text, the others right-aligned numbers."""
    out = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                show_header=header, pad_edge=False)
    out.add_column(first)
    for name in numeric:
        out.add_column(name, justify="right")
    return out


def _stages(report: dict[str, Any], t: Translator) -> Table:
    stages = report["stages"]
    base = stages["submitted"]
    out = _table(t("report.stages"), "", t("report.count"), t("report.share"), header=False)
    for key in ("submitted", "useful", "realised"):
        share = stages[key] / base if base else None
        out.add_row(t(f"report.stage_{key}"), str(stages[key]), percent(share, t.language))
    return out


def _funnel(report: dict[str, Any], t: Translator) -> Table:
    total = report["submitted"]
    out = _table(t("report.funnel"), t("report.status"), t("report.count"), t("report.share"))
    for status, count in report["funnel"].items():
        out.add_row(t(f"status.{status}"), str(count),
                    percent(count / total if total else None, t.language))
    return out


def _groups(groups: dict[str, Any], title: str, label: str, t: Translator) -> Table:
    out = _table(title, label, t("report.submitted"), t("report.merged"), t("report.realised"),
                 t("report.rate"))
    for name, entry in groups.items():
        out.add_row(name, str(entry["submitted"]), str(entry["merged"]), str(entry["realised"]),
                    percent(entry["rate"], t.language))
    return out


def _months(report: dict[str, Any], t: Translator) -> Table:
    out = _table(t("report.by_month"), t("report.month"), t("report.submitted"),
                 *(t(f"status.{s}") for s in STATUSES), t("report.rate_short"))
    for month, entry in report["by_month"].items():
        out.add_row(month, str(entry["submitted"]),
                    *(str(entry["statuses"][s]) for s in STATUSES),
                    percent(entry["rate"], t.language))
    return out


def _key_figures(report: dict[str, Any], t: Translator) -> Table:
    lang = t.language
    medians = report["median_days"]
    triage = report["triage"]
    benefit = report["benefit_check"]
    out = _table(t("report.key_figures"), "", "", header=False)
    out.add_row(t("report.median_new_useful"), number(medians["new_to_useful"], lang))
    out.add_row(t("report.median_useful_realised"), number(medians["useful_to_realised"], lang))
    out.add_row(t("report.supported_share"),
                f"{percent(report['supported_share'], lang)} ({report['supported']})")
    out.add_row(t("report.benefit"), " / ".join(str(benefit[k]) for k in BENEFIT_KEYS))
    pending = triage["pending"]
    oldest = triage["oldest_days"]
    out.add_row(t("report.triage"), t("report.triage_value", pending=pending, n=oldest,
                                      days=number(oldest, lang))
                if pending else "0")
    decided = triage["decided"]
    out.add_row(t("report.triage_precision"),
                t("report.triage_precision_value", share=percent(triage["precision"], lang),
                  merged=triage["merged"], decided=decided) if decided else "–")
    return out


def _campaigns(report: dict[str, Any], t: Translator) -> Table:
    out = _table(t("report.campaigns"), t("report.campaign"), t("report.ideas"),
                 t("report.supporters"), t("report.realised"))
    for c in report["campaigns"]:
        out.add_row(c["title"], str(c["ideas"]), str(c["supporters"]), str(c["realised"]))
    return out


# --- machine formats --------------------------------------------------------------------------

def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


def csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One long table: a row per group (total, area, channel, month) with its counts and
    rate, then one row per single figure (`value`) and per campaign."""
    rows = [_group_row("total", "all", {
        "submitted": report["submitted"], "rate": report["realisation_rate"],
        "statuses": report["funnel"]})]
    for section, key in (("area", "by_area"), ("channel", "by_channel"), ("month", "by_month")):
        rows += [_group_row(section, name, entry) for name, entry in report[key].items()]
    rows += [{"section": "stage", "name": k, "value": v} for k, v in report["stages"].items()]
    rows += [{"section": "median_days", "name": k, "value": v}
             for k, v in report["median_days"].items()]
    rows.append({"section": "supported", "name": "count", "value": report["supported"]})
    rows.append({"section": "supported", "name": "share", "value": report["supported_share"]})
    rows += [{"section": "benefit_check", "name": k, "value": v}
             for k, v in report["benefit_check"].items()]
    rows.append({"section": "triage", "name": "pending", "value": report["triage"]["pending"]})
    rows.append({"section": "triage", "name": "oldest_days",
                 "value": report["triage"]["oldest_days"]})
    rows.append({"section": "triage", "name": "precision",
                 "value": report["triage"]["precision"]})
    rows += [{"section": "campaign", "name": c["title"], "submitted": c["ideas"],
              "realised": c["realised"], "supporters": c["supporters"]}
             for c in report["campaigns"]]
    return rows


def _group_row(section: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"section": section, "name": name, "submitted": entry["submitted"],
            **entry["statuses"], "realisation_rate": entry["rate"]}


def to_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
