"""Open data: export without personal data, and CSV import that is all-or-nothing, validated
row by row, and feeds the dedup index and the triage queue like a chat submission."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, func, select

from bot.features import CITIZEN
from bot.i18n import translator
from bot.ideas import book
from bot.ideas.records import idea_record
from bot.reports import opendata
from bot.runtime import Runtime, open_runtime
from bot.wiring import Feature, Features
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import DuplicateCandidate, Idea, Person
from tests.helpers import IDEA, ChatPerson
from tests.test_cli import kominn

OSLO = ZoneInfo("Europe/Oslo")
NB = translator("nb")

def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


GOOD = csv_text([
    ["title", "description", "focus_area", "place", "created_at", "channel"],
    ["Benker rundt Semsvannet",
     "Det trengs flere benker langs turstien rundt Semsvannet, så eldre kan hvile.",
     "folkehelse", "Semsvannet", "2024-03-05", "email"],
    ["Lading for elsykler på Asker stasjon",
     "Vi trenger ladepunkter for elsykler ved innfartsparkeringen på stasjonen.",
     "Areal og transport", "", "2024-03-07T14:30:00+01:00", ""],
    ["Gatelys i Vettrebakken", "Vettrebakken er helt mørk om kvelden, og barn går der.",
     "", "Vettre", "", "skjema"],
])

# Semicolons, as Norwegian spreadsheets save; line 6 is blank.
BAD = csv_text([
    ["title", "description", "focus_area", "created_at", "channel"],
    ["Benker rundt Semsvannet", "Det trengs flere benker langs turstien rundt Semsvannet.",
     "Folkehelse", "2024-03-05", "email"],
    ["Kort", "Det trengs flere benker langs turstien rundt Semsvannet.", "Folkehelse", "", ""],
    ["Gode ideer om sykkel", "For kort", "Sykling", "5. mars", ""],
    ["Framtidig idé om fjorden", "En idé som sier den kom inn om mange år fra nå.", "Annet",
     "2999-01-01", "E-post!"],
    [],
    ["Siste gode rad her", "Denne raden er helt i orden og skulle vært importert.", "Annet",
     "", ""],
], delimiter=";")


def count(rt: Runtime, model: type) -> int:
    with Session(rt.db) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def do_import(rt: Runtime, text: str) -> opendata.ImportResult:
    return opendata.import_csv(rt.db, rt.index, rt.ideas, text, t=NB,
                               focus_areas=rt.settings.focus_areas, zone=OSLO)


# --- import -----------------------------------------------------------------------------------

def test_bad_rows_are_all_reported_and_nothing_changes(runtime: Runtime, kari: ChatPerson
                                                       ) -> None:
    kari.submit()
    result = do_import(runtime, BAD)
    assert result.refs == [] and result.rows == 5
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [3, 4, 5]  # line 1 is the header, line 6 is blank
    assert "tittelen må ha 5–120 tegn (har 4)" in reasons[3]
    assert "beskrivelsen må ha 20–3000 tegn" in reasons[4]
    assert "ukjent satsningsområde 'Sykling'" in reasons[4]
    assert "ugyldig created_at '5. mars'" in reasons[4]
    assert "ligger fram i tid" in reasons[5] and "ugyldig kanal 'E-post!'" in reasons[5]
    assert count(runtime, Idea) == 1
    assert count(runtime, DuplicateCandidate) == 0


def test_good_file_is_stored_with_dates_channels_and_areas(runtime: Runtime) -> None:
    result = do_import(runtime, GOOD)
    assert result.ok and result.refs == ["KI-1", "KI-2", "KI-3"]
    with Session(runtime.db) as s:
        ideas = {i.id: i for i in s.exec(select(Idea))}
        history = book.history(s, 1)
    assert ideas[1].focus_area == "Folkehelse"  # the configured spelling
    assert ideas[1].created_at == datetime(2024, 3, 4, 23, 0, tzinfo=UTC)  # local midnight
    assert ideas[2].created_at == datetime(2024, 3, 7, 13, 30, tzinfo=UTC)
    assert [i.channel for i in ideas.values()] == ["email", "import", "skjema"]
    assert (ideas[3].focus_area, ideas[3].place, ideas[2].place) == (None, "Vettre", None)
    assert ideas[3].author_id is None
    assert [(h.from_status, h.to_status, h.by, h.at) for h in history] == [
        (None, "new", "import", ideas[1].created_at)]
    # Imported now: a worker refreshing its index from `updated_at` must see it.
    assert datetime.now(UTC) - ideas[1].updated_at < timedelta(minutes=5)


def test_imported_ideas_enter_the_index_and_the_triage_queue(runtime: Runtime,
                                                             kari: ChatPerson) -> None:
    kari.submit()  # KI-1: the benches at Semsvannet
    twin = csv_text([["title", "description"], [IDEA["title"], IDEA["description"]],
                     [IDEA["title"] + " igjen", IDEA["description"] + " Gjerne snart."]])
    result = do_import(runtime, twin)
    assert result.refs == ["KI-2", "KI-3"]
    with Session(runtime.db) as s:
        pairs = {(c.idea_a_id, c.idea_b_id) for c in s.exec(select(DuplicateCandidate))
                 if c.state == "pending"}
    assert {(1, 2), (1, 3), (2, 3)} <= pairs  # against the base and within the file
    assert result.queued == len(pairs)
    assert {n for n, _ in runtime.index.similar(IDEA["title"], IDEA["description"])} >= {2, 3}
    # …and a citizen is now shown the imported idea as a similar one.
    ola = ChatPerson(runtime.engine, "ola")
    ola.say("/ny")
    ola.say(IDEA["title"])
    ola.say(IDEA["description"])
    ola.press(IDEA["area"])
    ola.press("Hopp over")
    ola.press("Nei")
    assert any("KI-2" in b or "KI-3" in b for b in ola.buttons()), ola.buttons()


def test_a_failure_while_storing_rolls_back_everything_and_the_index(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[int] = []

    def fail_on_third(session, idea) -> None:  # type: ignore[no-untyped-def]
        created.append(idea.id)
        if len(created) == 3:
            raise RuntimeError("disk full")

    failing = Feature("failing", listeners=book.IdeaListeners(created=(fail_on_third,)))
    broken = open_runtime(runtime.settings, Features.of(CITIZEN, failing))
    with pytest.raises(RuntimeError):
        do_import(broken, GOOD)
    assert created == [1, 2, 3]
    assert count(runtime, Idea) == 0
    assert runtime.index.similar("Benker rundt Semsvannet", "turstien Semsvannet eldre") == []


@pytest.mark.parametrize(("text", "message"), [
    ("", "ingen rader"),
    ("title,description\n", "ingen rader"),
    ("title,place\nEn tittel,Et sted\n", "mangler kolonnene: description"),
])
def test_unusable_files(runtime: Runtime, text: str, message: str) -> None:
    with pytest.raises(opendata.ImportFileError, match=message):
        do_import(runtime, text)


def test_row_with_wrong_field_count_and_quoted_multiline(runtime: Runtime) -> None:
    text = ('\ufefftitle,description\n'
            '"Tittel over to linjer","Første linje av beskrivelsen,\nog andre linje her."\n'
            'En rad,med,for mange felt\n')
    result = do_import(runtime, text)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (4, "raden har 3 felt, overskriften har 2")]


# --- export -----------------------------------------------------------------------------------

def make_ideas(runtime: Runtime) -> None:
    with transaction(runtime.db) as s:
        person = Person(channel="telegram", channel_user_id="tg-kari", chat_id="chat-kari",
                        display_name="Kari Nordmann")
        s.add(person)
        s.flush()
        first = runtime.ideas.create_idea(s, book.NewIdea(
            title="Benker ved Semsvannet", description="Flere benker, så eldre kan hvile seg.",
            channel="telegram", focus_area="Folkehelse", place="Semsvannet",
            latitude=59.85, longitude=10.45, author_id=person.id), by="telegram:citizen")
        second = runtime.ideas.create_idea(s, book.NewIdea(
            title="Benk, takk", description="En benk ved Semsvannet, gjerne med \"utsikt\".",
            channel="terminal"), by="test")
        runtime.ideas.add_support(s, first, _other(s))
        runtime.ideas.set_status(s, first, Status.USEFUL, by="cli", note="Vi ser på")
        runtime.ideas.merge(s, second, first, by="cli")


def _other(session: Session) -> int:
    other = Person(channel="telegram", channel_user_id="tg-ola", display_name="Ola Nordmann")
    session.add(other)
    session.flush()
    return other.id or 0


def test_export_holds_no_personal_data(runtime: Runtime) -> None:
    make_ideas(runtime)
    out = io.StringIO()
    with Session(runtime.db) as s:
        assert opendata.export(s, out, "json") == 2
        records = {r["ref"]: r for r in json.loads(out.getvalue())}
        full = idea_record(s, s.get(Idea, 1))
    text = out.getvalue()
    for personal in ("Kari", "Nordmann", "tg-", "chat-kari", "author", "latitude", "person"):
        assert personal not in text, personal
    values = [v for record in records.values() for v in record.values()]
    assert 59.85 not in values and 10.45 not in values  # the shared location
    first = records["KI-1"]
    assert tuple(first) == opendata.EXPORT_FIELDS
    assert {k: v for k, v in full.items() if k in first} == \
        {k: v for k, v in first.items() if k in full}  # same values as `ideas list`
    assert (first["status"], first["supporters_count"], first["public_note"]) == \
        ("useful", 1, "Vi ser på")  # Ola (KI-2, merged into it, had no author)
    assert (records["KI-2"]["merged_into"], records["KI-2"]["status"]) == ("KI-1", "merged")


def test_export_csv_round_trips_through_a_csv_reader(runtime: Runtime) -> None:
    make_ideas(runtime)
    out = io.StringIO()
    with Session(runtime.db) as s:
        opendata.export(s, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == opendata.EXPORT_FIELDS
    assert [r["ref"] for r in rows] == ["KI-1", "KI-2"]
    assert rows[1]["description"] == 'En benk ved Semsvannet, gjerne med "utsikt".'
    assert (rows[0]["merged_into"], rows[1]["merged_into"]) == ("", "KI-1")


def test_export_streams_in_batches(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opendata, "BATCH", 2)
    with transaction(runtime.db) as s:
        for n in range(5):
            idea = runtime.ideas.create_idea(s, book.NewIdea(
                title=f"Idé nummer {n}", description="En beskrivelse som er lang nok.",
                channel="import"), by="test")
            if n == 3:
                runtime.ideas.add_support(s, idea, _other(s))
    out = io.StringIO()
    with Session(runtime.db) as s:
        assert opendata.export(s, out, "json") == 5
    records = json.loads(out.getvalue())
    assert [r["supporters_count"] for r in records] == [0, 0, 0, 1, 0]
    empty = io.StringIO()
    opendata.write_json([], empty)
    assert json.loads(empty.getvalue()) == []


# --- the CLI, end to end ----------------------------------------------------------------------

def test_cli_import_bad_file_changes_nothing_then_good_file_shows_everywhere(
        settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(BAD, encoding="utf-8")
    good.write_text(GOOD, encoding="utf-8")
    refused = kominn(settings, "import", str(bad), env={"COLUMNS": "200"})
    assert refused.returncode == 1
    assert "3 av 5 rader ble avvist. Ingenting er importert" in refused.stderr
    assert "tittelen må ha 5–120 tegn (har 4)" in refused.stdout
    assert json.loads(kominn(settings, "ideas", "list", "--format", "json").stdout) == []

    done = kominn(settings, "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "3 ideer importert: KI-1, KI-2, KI-3" in done.stdout
    listed = json.loads(kominn(settings, "ideas", "list", "--format", "json").stdout)
    assert {(i["ref"], i["channel"], i["created_at"][:10]) for i in listed} >= {
        ("KI-1", "email", "2024-03-04"), ("KI-2", "import", "2024-03-07")}
    report = json.loads(kominn(settings, "report", "--from", "2024-03-01", "--to",
                               "2024-03-31", "--format", "json").stdout)
    assert report["submitted"] == 2 and set(report["by_channel"]) == {"email", "import"}
    assert report["by_area"]["Folkehelse"]["submitted"] == 1

    exported = kominn(settings, "export")
    assert exported.returncode == 0 and "3 ideer eksportert." in exported.stderr
    assert [r["ref"] for r in csv.DictReader(io.StringIO(exported.stdout))] == \
        ["KI-1", "KI-2", "KI-3"]
    target = tmp_path / "ideas.json"
    assert kominn(settings, "export", "--format", "json", "--output", str(target)
                  ).returncode == 0
    assert len(json.loads(target.read_text(encoding="utf-8"))) == 3
