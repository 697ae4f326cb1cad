"""Operator commands for the realisation report and open data:
`kominn report`, `kominn export`, `kominn import` (registered on the main app by `register`).

Machine output (JSON, CSV) goes to stdout alone; progress bars and notes go to stderr, so
`kominn export > ideas.csv` and `kominn report --format json | jq` stay clean.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.i18n import Translator, translator
from bot.localtime import parse_day

if TYPE_CHECKING:
    from bot.reports.opendata import ImportResult

ReportFormat = Annotated[str, typer.Option("--format", help="table, json or csv")]
ExportFormat = Annotated[str, typer.Option("--format", help="csv or json")]


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("export")(export)
    app.command("import")(import_)


def _t() -> Translator:
    from bot.cli import common as cli

    return translator(cli.settings().locale)


def _date(value: str | None, t: Translator) -> date | None:
    from bot.cli import common as cli

    if value is None:
        return None
    try:
        return parse_day(value.strip())
    except ValueError:
        cli.fail(t("report.bad_date", value=value))
        raise  # unreachable


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress bar on stderr; yields `start(label, total) -> advance(n)`."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True,
                   disable=not console.is_terminal)  # no stray lines in logs and pipes
    with bar:
        def start(label: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(label, total=total)
            return lambda n: bar.advance(task, n)

        yield start


def report(
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
    fmt: ReportFormat = "table",
    chart: Annotated[Path | None, typer.Option("--chart", help="also draw a PNG here")] = None,
) -> None:
    """The realisation rate (realised ÷ (submitted − merged)) and the funnel, overall and per
    focus area, channel and month of submission, for the ideas submitted in the period."""
    from sqlmodel import Session

    from bot.cli import common as cli
    from bot.reports import render
    from bot.reports.realisation import compute

    cli.check_format(fmt, ("table", "json", "csv"))
    settings = cli.settings()
    t = translator(settings.locale)
    first, last = _date(start, t), _date(end, t)
    if chart is not None:
        _writable(chart)  # before any output: a missing folder is made, or one line
    with Session(cli.database()) as session:
        try:
            figures = compute(session, start=first, end=last, locale=settings.locale,
                              zone=settings.zone)
        except ValueError as exc:
            cli.fail(str(exc))
    if fmt == "json":
        typer.echo(render.to_json(figures))
    elif fmt == "csv":
        typer.echo(render.to_csv(figures), nl=False)
    else:
        render.print_table(figures, settings.locale, cli.console())
    if chart is not None:
        from bot.reports.chart import render as render_chart

        try:
            render_chart(figures, chart, settings.locale)
        except OSError as exc:
            cli.fail(f"cannot write {chart}: {exc.strerror or exc}", 1)
        typer.echo(t("report.chart_written", path=chart), err=True)


def export(
    fmt: ExportFormat = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="file (default: stdout)")] = None,
) -> None:
    """Every idea as open data, without personal data (CSV or JSON)."""
    from sqlmodel import Session

    from bot.cli import common as cli
    from bot.reports import opendata

    cli.check_format(fmt, ("csv", "json"))
    t = _t()
    err = cli.console(stderr=True)
    # The database first: one that cannot be used leaves an earlier export file as it was.
    with Session(cli.database()) as session, contextlib.ExitStack() as files:
        out: TextIO = sys.stdout
        if output is not None:
            try:
                out = files.enter_context(
                    _writable(output).open("w", encoding="utf-8", newline=""))
            except OSError as exc:
                cli.fail(f"cannot write {output}: {exc.strerror or exc}", 1)
        with _progress(err) as start:
            advance = start(t("report.exporting"), opendata.count_ideas(session))
            count = opendata.export(session, out, fmt, advance, publish=cli.settings().publish)
    err.print(t("report.export_done", n=count))


def import_(file: Annotated[Path, typer.Argument(help="CSV: title, description, "
                                                      "[focus_area, place, created_at, channel]")]
            ) -> None:
    """Bring in ideas that came by other routes (e-mail, forms). Every row is checked; if any
    row is bad, nothing is imported and each rejected row is listed with its reason."""
    from bot.cli import common as cli
    from bot.reports import opendata

    settings = cli.settings()
    t = translator(settings.locale)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        cli.fail(t("report.import_unreadable", path=file, error=exc), 1)
    rt = cli.runtime()
    out = cli.console()
    labels = {"check": t("report.import_checking"), "store": t("report.import_saving")}
    try:
        with _progress(cli.console(stderr=True)) as start:
            result = opendata.import_csv(
                rt.db, rt.index, rt.ideas, text, t=t, focus_areas=settings.focus_areas,
                zone=settings.zone, progress=lambda phase, total: start(labels[phase], total))
    except opendata.ImportFileError as exc:
        cli.fail(str(exc), 1)
    if result.rejected:
        _print_rejected(out, result, t)
        cli.fail(t("report.import_nothing", count=len(result.rejected), n=result.rows), 1)
    out.print(t("report.import_done", n=len(result.refs), refs=_refs(result.refs)))
    if result.queued:
        out.print(t("report.import_queued", n=result.queued))


def _print_rejected(out: Console, result: ImportResult, t: Translator) -> None:
    table = Table(t("report.import_line"), t("report.import_reason"),
                  title=t("report.import_rejected_title"), title_justify="left")
    for row in result.rejected:
        table.add_row(str(row.line), row.reason)
    out.print(table)


def _writable(path: Path) -> Path:
    """An output file's folder is created when missing (as `kominn db backup` does); one line
    when that cannot be done."""
    from bot.cli import common as cli

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cli.fail(f"cannot write {path}: {exc.strerror or exc}", 1)
    return path


def _refs(refs: list[str]) -> str:
    """All refs of a small import; first and last of a big one."""
    return ", ".join(refs) if len(refs) <= 10 else f"{refs[0]} … {refs[-1]}"
