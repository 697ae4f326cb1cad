"""`kominn dedup …`: ask the duplicate detector, and measure it on labelled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from bot.cli.common import check_format, database, fail, print_json, runtime, settings

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
    rt.index.wait_ready()
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


@dedup_app.command("decisions")
def decisions(
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """The moderators' triage decisions as labelled pairs (the `dedup eval` CSV format)."""
    from dataclasses import asdict

    from bot.dedup.calibrate import decision_pairs, pairs_csv

    check_format(fmt, ("csv", "json"))
    with Session(database()) as session:
        pairs = decision_pairs(session)
    if fmt == "json":
        print_json([{**asdict(p), "label": int(p.label)} for p in pairs])
    else:
        typer.echo(pairs_csv(pairs), nl=False)


@dedup_app.command("calibrate")
def calibrate(
    pairs: Annotated[Path | None, typer.Argument()] = None,
    apply: Annotated[bool, typer.Option("--apply", help="store the fitted thresholds")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="back to the environment's")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    weights: Annotated[bool, typer.Option(
        "--weights/--thresholds-only", help="also fit the channel weights")] = True,
) -> None:
    """Fit the thresholds and channel weights on the moderators' decisions (plus PAIRS.csv);
    F1 before/after."""
    from bot.dedup import calibrate as cal
    from bot.dedup import evaluate

    check_format(fmt)
    engine = database()
    if reset:
        cal.reset(engine)
        typer.echo("calibration removed: the environment's thresholds apply "
                   f"({settings().dedup_threshold:g} / {settings().triage_threshold:g})")
        return
    with Session(engine) as session:
        labelled = cal.decision_pairs(session)
        stored = cal.stored_thresholds(session)
    decided = len(labelled)
    try:
        if pairs is not None:
            labelled += evaluate.load_pairs(pairs)
        base = finder()
        base.dedup_threshold = stored.get(cal.DEDUP, base.dedup_threshold)
        base.triage_threshold = stored.get(cal.TRIAGE, base.triage_threshold)
        base.channels = cal.channels_of(stored, base.channels)
        result = cal.calibrate(labelled, base, weights=weights)
    except (OSError, ValueError) as exc:
        fail(f"cannot calibrate: {exc}")
    result["decisions"] = decided
    if apply:
        cal.apply(engine, result["after"])
    result["applied"] = apply
    if fmt == "json":
        print_json(result)
        return
    b, a = result["before"], result["after"]
    typer.echo(f"pairs {result['pairs']} ({decided} moderator decisions, "
               f"{result['duplicates']} duplicates)")
    typer.echo("           dedup  triage  trigrams  title  short  rarest  F1     F1 (2-fold CV)")
    for name, row in (("before", b), ("after", a)):
        typer.echo(f"{name:9}  {row['dedup_threshold']:5g}  {row['triage_threshold']:6g}  "
                   f"{row['surface_weight']:8g}  {row['title_channel']:5g}  "
                   f"{row['short_text_penalty']:5g}  {row['rarest_word_penalty']:6g}  "
                   f"{row['f1']:.3f}  {row['f1_cv']:.3f}")
    typer.echo("stored: every worker uses these within a minute" if apply
               else "not stored (add --apply)")
