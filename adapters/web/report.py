"""`/rapport`: the realisation rate, the funnel and ideas per month (bot/reports/realisation.py
`compute()`), each chart an inline SVG with its figures beside it as a table (the text
alternative, and what a screen reader reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_percent
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from adapters.web.render import Renderer
from adapters.web.session import Sessions, choose_language
from bot.i18n import translator
from bot.reports.realisation import STATUSES, compute
from bot.runtime import Runtime

WIDTH = 520
BAR_MAX = 300  # px of the longest funnel bar
MONTH_MAX = 140
MONTHS_SHOWN = 12


class ReportPage:
    def __init__(self, runtime: Runtime, renderer: Renderer, sessions: Sessions,
                 respond: Callable[..., Response]) -> None:
        self.runtime = runtime
        self.renderer = renderer
        self.sessions = sessions
        self.respond = respond

    async def page(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.runtime.settings.locale)
        report = await asyncio.to_thread(self._compute, language)
        html = self.renderer.page("report.html", language, page="report",
                                  **figures(report, language))
        return self.respond(request, session, html, public=True)

    def _compute(self, language: str) -> dict[str, Any]:
        with Session(self.runtime.db) as db:
            return compute(db, locale=language, zone=self.runtime.settings.zone)


def figures(report: dict[str, Any], language: str) -> dict[str, Any]:
    """What the template draws: bar lengths scaled to the largest figure."""
    t = translator(language)
    funnel_counts = [(status, int(report["funnel"].get(status, 0))) for status in STATUSES]
    top = max([count for _, count in funnel_counts] + [1])
    funnel = [{"label": t(f"status.{status}"), "value": count,
               "width": round(BAR_MAX * count / top)} for status, count in funnel_counts]
    months_data = list(report["by_month"].items())[-MONTHS_SHOWN:]
    top_month = max([int(m["submitted"]) for _, m in months_data] + [1])
    locale = {"nb": "nb_NO", "nn": "nn_NO", "en": "en_GB"}.get(language, "nb_NO")
    months = [{"month": month, "submitted": m["submitted"], "realised": m["realised"],
               "label": _month_name(month, locale),
               "height": round(MONTH_MAX * m["submitted"] / top_month),
               "realised_height": round(MONTH_MAX * m["realised"] / top_month)}
              for month, m in months_data]
    return {"rate": format_percent(report["realisation_rate"], locale=locale),
            "funnel": funnel, "months": months, "width": WIDTH}


def _month_name(month: str, locale: str) -> str:
    """"2026-12" → the month's short name ("des.", "Dec"); the chart writes the year below,
    so a label never reads as a day and a month."""
    try:
        return format_date(date(int(month[:4]), int(month[5:7]), 1), "LLL", locale=locale)
    except ValueError:
        return month
