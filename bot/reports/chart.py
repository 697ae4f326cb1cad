"""The realisation report as one picture (PNG) for leaders: the funnel from idea to realised on
the left, the ideas submitted each month stacked by their status now on the right, the headline
rate in the title.

Drawn with matplotlib's object API on the Agg canvas: no display, no global pyplot state, so it
is safe in a server thread (Slack upload) as well as in the CLI.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.i18n import Translator, translator
from bot.reports.realisation import STATUSES
from bot.reports.render import percent, period_text

# Lifecycle colours: open ideas cool, realised green, declined red, merged grey.
COLOURS = {
    "new": "#7fa7d6",
    "useful": "#f2b441",
    "realised": "#2e9d5b",
    "declined": "#d1605e",
    "merged": "#b8b8b8",
}
STAGE_COLOURS = ("#7fa7d6", "#f2b441", "#2e9d5b")
WIDTH, HEIGHT, DPI = 12.0, 5.6, 120


def render(report: dict[str, Any], target: str | Path | BinaryIO | None = None,
           language: str = "nb") -> bytes:
    """Draw the chart; write it to `target` when given, and return the PNG bytes."""
    t = translator(language)
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    funnel_axes, month_axes = figure.subplots(1, 2, width_ratios=(2, 3))
    figure.suptitle(t("report.chart_title", rate=percent(report["realisation_rate"], language),
                      period=period_text(report, t)), fontsize=15, fontweight="bold")
    _funnel(funnel_axes, report, t)
    _months(month_axes, report, t)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    data = buffer.getvalue()
    if isinstance(target, str | Path):
        Path(target).write_bytes(data)
    elif target is not None:
        target.write(data)
    return data


def _funnel(axes: Any, report: dict[str, Any], t: Translator) -> None:
    """Horizontal bars, widest on top: submitted → judged useful → realised, each with its
    count and its share of the submitted ideas."""
    stages = report["stages"]
    keys = ("submitted", "useful", "realised")
    values = [stages[k] for k in keys]
    labels = [t(f"report.stage_{k}") for k in keys]
    positions = list(range(len(keys)))[::-1]
    axes.barh(positions, values, color=STAGE_COLOURS, height=0.65)
    base = stages["submitted"]
    top = max(values + [1])
    for y, value in zip(positions, values, strict=True):
        share = percent(value / base, t.language) if base else "–"
        axes.text(value + top * 0.02, y, f"{value}  ({share})", va="center", fontsize=11)
    axes.set_yticks(positions, labels, fontsize=11)
    axes.set_xlim(0, top * 1.35)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(t("report.chart_funnel"), fontsize=12, loc="left")
    axes.spines[["top", "right"]].set_visible(False)


def _months(axes: Any, report: dict[str, Any], t: Translator) -> None:
    """Stacked bars per month of submission, one colour per current status."""
    months = list(report["by_month"])
    axes.set_title(t("report.chart_monthly"), fontsize=12, loc="left")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_ylabel(t("report.chart_ideas"))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not months:
        axes.text(0.5, 0.5, t("report.empty"), ha="center", va="center", fontsize=12,
                  transform=axes.transAxes)
        axes.set_xticks([])
        return
    bottoms = [0] * len(months)
    positions = list(range(len(months)))
    for status in STATUSES:
        counts = [report["by_month"][m]["statuses"][status] for m in months]
        axes.bar(positions, counts, bottom=bottoms, color=COLOURS[status], width=0.75,
                 label=t(f"status.{status}"))
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
    step = max(1, len(months) // 12)
    axes.set_xticks(positions[::step], months[::step], rotation=45 if len(months) > 6 else 0,
                    ha="right" if len(months) > 6 else "center")
    axes.set_ylim(0, max(bottoms + [1]) * 1.08)
    # Outside on the right, newest status on top, so it never hides a bar.
    handles, labels = axes.get_legend_handles_labels()
    axes.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0),
                frameon=False, fontsize=10)
