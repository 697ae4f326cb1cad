"""Open data: every idea out (CSV or JSON, no personal data) and ideas in from a CSV file.

Export: the public record of each idea, the same field names as `ideas list --format json`
(`bot.ideas.records.idea_record`), minus what could point at a person: no author, no supporters'
identities, no shared coordinates (a citizen's location may be their home), no campaign or
channel internals. Titles, descriptions, places and public notes are public by design.

Import: ideas that came by other routes (e-mail, paper forms). Every row is checked first; a
file with any bad row changes nothing, and the operator gets every rejected row with its
reason. A good file is stored in one transaction through the runtime's `IdeaBook` (so the
listeners — Slack posts, follow-ups — run as for any idea), and each imported idea is matched
against the dedup index and queued for triage like a chat submission.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.dedup.index import SimilarIndex
from bot.dedup.queue import queue_similar
from bot.i18n import Translator
from bot.ideas import book
from bot.localtime import parse_moment
from dialogs import fields
from dialogs.fields import DESCRIPTION_MAX, DESCRIPTION_MIN, TITLE_MAX, TITLE_MIN, Checked
from dialogs.refs import format_ref
from storage.db import transaction
from storage.models import Idea, utcnow

EXPORT_FIELDS = ("ref", "title", "description", "focus_area", "place", "status", "created_at",
                 "updated_at", "status_changed_at", "supporters_count", "merged_into",
                 "public_note")
IMPORT_REQUIRED = ("title", "description")
IMPORT_OPTIONAL = ("focus_area", "place", "created_at", "channel")
DEFAULT_CHANNEL = "import"
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
BATCH = 500

log = logging.getLogger("kominn.opendata")

Progress = Callable[[int], None]


# --- export -----------------------------------------------------------------------------------

def public_record(idea: Idea, supporters: int) -> dict[str, Any]:
    """One idea as open data (a subset of `idea_record`, plus when its status last changed)."""
    return {
        "ref": format_ref(idea.id or 0),
        "title": idea.title,
        "description": idea.description,
        "focus_area": idea.focus_area,
        "place": idea.place,
        "status": idea.status,
        "created_at": idea.created_at.isoformat(),
        "updated_at": idea.updated_at.isoformat(),
        "status_changed_at": idea.status_changed_at.isoformat(),
        "supporters_count": supporters,
        "merged_into": format_ref(idea.merged_into_id) if idea.merged_into_id else None,
        "public_note": idea.public_note,
    }


def count_ideas(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Idea)).one()


def iter_records(session: Session, publish: str = "immediately") -> Iterator[dict[str, Any]]:
    """Every public idea (`book.public_clause`: never a hidden one), oldest first, read in
    batches so a large base never sits in memory whole; supporter counts come with one grouped
    query per batch, not one query per idea."""
    last = 0
    while True:
        batch = session.exec(select(Idea).where(col(Idea.id) > last)
                             .where(book.public_clause(publish))
                             .order_by(col(Idea.id)).limit(BATCH)).all()
        if not batch:
            return
        counts = book.supporter_counts(session, [idea.id for idea in batch if idea.id])
        for idea in batch:
            yield public_record(idea, counts.get(idea.id or 0, 0))
        last = batch[-1].id or last
        session.expunge_all()


def write_csv(records: Iterable[dict[str, Any]], out: TextIO,
              progress: Progress | None = None) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({k: "" if record[k] is None else record[k] for k in EXPORT_FIELDS})
        count += 1
        if progress:
            progress(1)
    return count


def write_json(records: Iterable[dict[str, Any]], out: TextIO,
               progress: Progress | None = None) -> int:
    """A JSON array written record by record (streamed, but one valid document)."""
    out.write("[")
    count = 0
    for record in records:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(record, ensure_ascii=False))
        count += 1
        if progress:
            progress(1)
    out.write("\n]\n" if count else "]\n")
    return count


def export(session: Session, out: TextIO, fmt: str = "csv",
           progress: Progress | None = None, publish: str = "immediately") -> int:
    """Write every public idea as open data; returns how many."""
    writer = {"csv": write_csv, "json": write_json}[fmt]
    return writer(iter_records(session, publish), out, progress)


# --- import -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    refs: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    queued: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and bool(self.refs)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not a CSV, columns missing, no rows)."""


def read_rows(text: str, t: Translator) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row. The delimiter is sniffed (`,`, `;` or tab:
    spreadsheets in Norway save with `;`); a leading BOM is ignored."""
    text = text.lstrip("\ufeff")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [name.strip().casefold() for name in next(reader)]
    except StopIteration:
        raise ImportFileError(t("report.import_empty")) from None
    except csv.Error as exc:
        raise ImportFileError(t("report.import_unreadable", path="line 1", error=exc)) from None
    missing = [c for c in IMPORT_REQUIRED if c not in header]
    if missing:
        raise ImportFileError(t("report.import_missing_columns", columns=", ".join(missing)))
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        line = reader.line_num + 1  # where the next record starts (it may span lines)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFileError(t("report.import_unreadable", path=f"line {line}",
                                    error=exc)) from None
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.append((line, {"__error__": t("report.reason_columns", n=len(values),
                                                 expected=len(header))}))
            continue
        rows.append((line, dict(zip(header, values, strict=True))))
    if not rows:
        raise ImportFileError(t("report.import_empty"))
    return rows


def validate(row: dict[str, str], *, t: Translator, focus_areas: list[str], zone: ZoneInfo,
             now: datetime) -> tuple[book.NewIdea | None, list[str]]:
    """The idea a row describes, or every reason it cannot be imported."""
    if "__error__" in row:
        return None, [row["__error__"]]
    reasons: list[str] = []
    title = _checked(fields.check_title(row.get("title")), "title", t, reasons)
    description = _checked(fields.check_description(row.get("description")), "description",
                           t, reasons)
    area = fields.match_area(row.get("focus_area"), focus_areas)
    if area is None and row.get("focus_area", "").strip():
        reasons.append(t("report.reason_area", value=repr(row["focus_area"].strip()),
                         allowed="; ".join(focus_areas)))
    place = _checked(fields.check_place(row.get("place")), "place", t, reasons) or None
    created_at = _created_at(row.get("created_at", ""), zone, now, t, reasons)
    channel = row.get("channel", "").strip().casefold() or DEFAULT_CHANNEL
    if not _CHANNEL.match(channel):
        reasons.append(t("report.reason_channel", value=repr(row["channel"].strip())))
    if reasons:
        return None, reasons
    return book.NewIdea(
        title=title, description=description, channel=channel,
        focus_area=area, place=place, created_at=created_at), []


def _checked(checked: Checked, column: str, t: Translator, reasons: list[str]) -> str:
    """A field cleaned and checked by the chat's rules (`dialogs.fields`); its problem, if
    any, is added to `reasons` in the operator's words."""
    if checked.problem is not None:
        reasons.append(_reason(checked.problem, column, t))
    return checked.value


def _reason(problem: fields.Problem, column: str, t: Translator) -> str:
    """The import's wording of a field problem: the length window as a whole, for a fix in a
    spreadsheet rather than a chat reply."""
    n = problem.params.get("n", 0)
    if problem.key == fields.NEED_WORDS:
        return t("report.reason_need_words", column=column)
    if column == "title":
        return t("report.reason_title_length", min=TITLE_MIN, max=TITLE_MAX, n=n)
    if column == "description":
        return t("report.reason_description_length", min=DESCRIPTION_MIN,
                 max=DESCRIPTION_MAX, n=n)
    return t("report.reason_place_length", max=fields.PLACE_MAX)


def _created_at(value: str, zone: ZoneInfo, now: datetime, t: Translator,
                reasons: list[str]) -> datetime | None:
    """ISO date or date-time; a date or a time without offset is local (the municipality's
    zone). Empty means now."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = parse_moment(value, zone)
    except ValueError:
        reasons.append(t("report.reason_date", value=repr(value)))
        return None
    if parsed > now + timedelta(minutes=5):
        reasons.append(t("report.reason_future", value=value))
        return None
    return parsed


def check(rows: list[tuple[int, dict[str, str]]], *, t: Translator, focus_areas: list[str],
          zone: ZoneInfo, now: datetime | None = None, progress: Progress | None = None
          ) -> tuple[list[book.NewIdea], list[Rejected]]:
    """Validate every row (never stopping at the first bad one)."""
    now = now or utcnow()
    good: list[book.NewIdea] = []
    rejected: list[Rejected] = []
    for line, row in rows:
        new, reasons = validate(row, t=t, focus_areas=focus_areas, zone=zone, now=now)
        if new is None:
            rejected.append(Rejected(line, "; ".join(reasons)))
        else:
            good.append(new)
        if progress:
            progress(1)
    return good, rejected


def store(db: Engine, index: SimilarIndex | None, ideas: book.IdeaBook,
          new_ideas: list[book.NewIdea], *, by: str = "import",
          progress: Progress | None = None) -> tuple[list[str], int]:
    """Create every idea in ONE transaction and queue its suspected duplicates; the index
    learns each idea as it goes (so two rows of the same file can match each other) and
    forgets them again if the transaction fails. Returns (refs, pairs queued)."""
    added: list[Idea] = []
    queued = 0
    try:
        with transaction(db) as session:
            for new in new_ideas:
                idea = ideas.create_idea(session, new, by=by)
                # Imported now, whatever the submission date: workers refreshing their index
                # from `updated_at` must see it.
                idea.updated_at = max(utcnow(), idea.created_at)
                session.add(idea)
                queued += queue_similar(session, index, idea)
                added.append(idea)
                if index is not None:
                    index.update(idea)
                if progress:
                    progress(1)
    except BaseException:
        if index is not None:
            for idea in added:
                index.finder.remove(format_ref(idea.id or 0))
        raise
    log.info("ideas imported", extra={"event": "ideas_imported", "count": len(added),
                                      "channel": ",".join(sorted({i.channel for i in added}))})
    return [format_ref(idea.id or 0) for idea in added], queued


def import_csv(db: Engine, index: SimilarIndex | None, ideas: book.IdeaBook, text: str, *,
               t: Translator, focus_areas: list[str], zone: ZoneInfo,
               progress: Callable[[str, int], Progress] | None = None) -> ImportResult:
    """Check the whole file (its text), then store it all or nothing. `progress(phase,
    total)` returns a callback advanced once per row (the CLI shows a bar)."""
    rows = read_rows(text, t)
    result = ImportResult(rows=len(rows))
    good, result.rejected = check(
        rows, t=t, focus_areas=focus_areas, zone=zone,
        progress=progress("check", len(rows)) if progress else None)
    if result.rejected:
        return result
    result.refs, result.queued = store(
        db, index, ideas, good, progress=progress("store", len(good)) if progress else None)
    return result
