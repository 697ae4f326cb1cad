"""`kominn dedup …`: ask the duplicate detector, and measure it on labelled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session

from bot.cli.common import check_format, console, database, fail, print_json, runtime, settings

if TYPE_CHECKING:
    from bot.dedup.detector import DuplicateFinder

dedup_app = typer.Typer(no_args_is_help=True, help="The duplicate detector.")


def detector() -> tuple[DuplicateFinder, str]:
    """The detector as every worker runs it (`bot.dedup.index.SimilarIndex`): the
    environment's thresholds and the default weights, overridden by the calibration stored
    in the database (`kominn dedup calibrate --apply`); and where they came from. Without a
    database file (the embedded SQLite not created yet) or a reachable database, the
    environment's: this does not create one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from bot.dedup import calibrate as cal
    from bot.dedup.detector import DuplicateFinder

    cfg = settings()
    finder = DuplicateFinder(cfg.dedup_threshold, cfg.triage_threshold)
    environment = ("the environment (KOMINN_DEDUP_THRESHOLD, KOMINN_TRIAGE_THRESHOLD) and the "
                   "default weights")
    url = make_url(cfg.database_url)
    if url.get_backend_name() == "sqlite" and (
            url.database in (None, "", ":memory:") or not Path(url.database).exists()):
        return finder, f"{environment}: no database at {cfg.database_url}"
    try:
        with Session(database()) as session:
            stored = cal.stored_thresholds(session)
    except OperationalError as exc:
        return finder, f"{environment}: database unreachable ({type(exc.orig).__name__})"
    if not stored:
        return finder, f"{environment}: no calibration stored"
    cal.use_stored(finder, stored, (finder.dedup_threshold, finder.triage_threshold,
                                    finder.channels))
    return finder, "the calibration stored in the database (dedup calibrate --apply)"


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
                             "shown_to_citizens": rt.index.offered(idea, score,
                                                                   rt.settings.publish)})
    if fmt == "json":
        print_json(rows)
        return
    t = translator(rt.settings.locale)
    table = Table("Ref", "Score", "Title", "Status", "Shown")
    for r in rows:
        table.add_row(r["ref"], f"{r['score']:.1f}", r["title"], t(f"status.{r['status']}"),
                      "✓" if r["shown_to_citizens"] else "")
    console().print(table)
    if not rows:
        typer.echo(f"no idea at or above the triage threshold ({rt.index.triage_threshold:g})")


@dedup_app.command("eval")
def evaluate(
    pairs: Path,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    threshold: Annotated[float | None, typer.Option(min=0, max=100)] = None,
) -> None:
    """Precision, recall and F1 on labelled pairs (CSV), with a threshold sweep.

    For the detector as the workers run it: the calibration stored in the database when
    there is one (`dedup calibrate --apply`), else the environment's thresholds."""
    from bot.dedup import calibrate as cal
    from bot.dedup import evaluate

    check_format(fmt)
    try:
        labelled = evaluate.load_pairs(pairs)  # its errors name the file
    except (OSError, ValueError) as exc:
        fail(f"cannot evaluate: {exc}")
    finder, source = detector()
    used = cal.settings_of(finder)
    try:
        result = evaluate.evaluate(labelled, threshold=threshold, finder=finder)
    except (OSError, ValueError) as exc:
        fail(f"cannot evaluate {pairs}: {exc}")
    result["detector"] = {**used, "source": source}
    if fmt == "json":
        print_json(result)
        return
    typer.echo(f"detector        dedup {used[cal.DEDUP]:g}, triage {used[cal.TRIAGE]:g}, "
               f"trigrams {used[cal.SURFACE]:g}, title {used[cal.TITLE]:g}, "
               f"short {used[cal.SHORT]:g}, rarest {used[cal.RAREST]:g}")
    typer.echo(f"                from {source}")
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
    pairs: Annotated[Path | None, typer.Argument(
        help="more labelled pairs (the `dedup eval` CSV format)", show_default=False)] = None,
    apply: Annotated[bool, typer.Option(
        "--apply", help="store the fitted thresholds and weights in the database, where every "
        "worker uses them instead of the environment's")] = False,
    reset: Annotated[bool, typer.Option(
        "--reset", help="remove the stored calibration: back to the environment's thresholds "
        "and the default weights (fits nothing)")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    weights: Annotated[bool, typer.Option(
        "--weights/--thresholds-only",
        help="also fit the short-text discount and the rarest-word penalty")] = True,
) -> None:
    """Fit the thresholds, short-text discount and rarest-word penalty; F1 before/after.

    Fitted on the moderators' triage decisions plus PAIRS.csv, cross-validated; --apply
    stores the result for every worker."""
    from bot.dedup import calibrate as cal
    from bot.dedup import evaluate

    check_format(fmt)
    clash = [name for name, given in (("--apply", apply), ("PAIRS", pairs is not None),
                                      ("--thresholds-only", not weights)) if given]
    if reset and clash:
        fail(f"--reset removes the stored calibration and fits nothing: it cannot go with "
             f"{', '.join(clash)}")
    engine = database()
    if reset:
        cal.reset(engine)
        typer.echo("calibration removed: the environment's thresholds apply "
                   f"({settings().dedup_threshold:g} / {settings().triage_threshold:g})")
        return
    with Session(engine) as session:
        labelled = cal.decision_pairs(session)
    decided = len(labelled)
    try:
        if pairs is not None:
            labelled += evaluate.load_pairs(pairs)
        base, _ = detector()  # from where the workers are now
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
