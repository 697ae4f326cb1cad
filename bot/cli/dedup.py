"""`kominn dedup …`: ask the duplicate detector, and measure it on labelled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from bot.cli.common import check_format, fail, print_json, runtime, settings

if TYPE_CHECKING:
    from bot.dedup.detector import DuplicateFinder

dedup_app = typer.Typer(no_args_is_help=True, help="The duplicate detector.")


def finder() -> DuplicateFinder:
    """A detector with the configured thresholds (environment or .env)."""
    from bot.dedup.detector import DuplicateFinder

    cfg = settings()
    return DuplicateFinder(cfg.dedup_threshold, cfg.triage_threshold)


@dedup_app.command("similar")
def similar(
    title: str,
    description: Annotated[str, typer.Argument()] = "",
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """The ideas the detector finds similar to TITLE (and DESCRIPTION), with scores."""
    from bot.i18n import translator
    from storage.models import Idea

    check_format(fmt)
    rt = runtime()
    matches = rt.index.similar(title, description, limit=limit)
    rows: list[dict[str, Any]] = []
    with Session(rt.db) as session:
        for number, score in matches:
            idea = session.get(Idea, number)
            if idea is not None:
                rows.append({"ref": f"KI-{number}", "score": round(score, 1),
                             "title": idea.title, "status": idea.status,
                             "shown_to_citizens": score >= rt.index.dedup_threshold})
    if fmt == "json":
        print_json(rows)
        return
    t = translator(rt.settings.locale)
    table = Table("Ref", "Score", "Title", "Status", "Shown")
    for r in rows:
        table.add_row(r["ref"], f"{r['score']:.1f}", r["title"], t(f"status.{r['status']}"),
                      "✓" if r["shown_to_citizens"] else "")
    Console().print(table)
    if not rows:
        typer.echo(f"no idea at or above the triage threshold ({rt.index.triage_threshold:g})")


@dedup_app.command("eval")
def evaluate(
    pairs: Path,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    threshold: Annotated[float | None, typer.Option(min=0, max=100)] = None,
) -> None:
    """Precision, recall and F1 on labelled pairs (CSV), with a threshold sweep."""
    from bot.dedup import evaluate

    check_format(fmt)
    try:
        result = evaluate.evaluate(evaluate.load_pairs(pairs), threshold=threshold,
                                     finder=finder())
    except (OSError, ValueError) as exc:
        fail(f"cannot evaluate {pairs}: {exc}")
    if fmt == "json":
        print_json(result)
    else:
        typer.echo(evaluate.format_table(result))
