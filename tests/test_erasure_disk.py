"""`/slett` reaches the disk: after an erasure no byte of the person's name or channel ids is
left readable in the SQLite database file or its WAL (deleted rows would otherwise linger in
free pages and in old WAL frames until overwritten)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from bot.runtime import Runtime
from storage.models import Person, ProcessedUpdate
from tests.conftest import PG_URL
from tests.helpers import ChatPerson

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="the SQLite files are what is read")

NAME = "Qwyxzandra Pålsdóttir-Vimmelskaft"
USER_ID = "918273645501"
CHAT_ID = "918273645599"


def _raw(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def _secrets() -> list[bytes]:
    return [NAME.encode(), NAME.split()[0].encode(), USER_ID.encode(), CHAT_ID.encode()]


def test_erased_person_leaves_no_bytes_in_sqlite_files(runtime: Runtime) -> None:
    path = Path(make_url(runtime.settings.database_url).database or "")
    citizen = ChatPerson(runtime.engine, USER_ID, channel="telegram", display_name=NAME,
                         chat_id=CHAT_ID)
    ref = citizen.submit()
    citizen.say("/status " + ref)
    citizen.say("/ny")  # an unfinished dialog: state rows keyed by the channel user id
    citizen.say("Halvferdig idé")
    other = ChatPerson(runtime.engine, "kari", channel="telegram", display_name="Kari")
    other.submit(title="Gatelys i Heggedal", description="Mørkt langs skoleveien om vinteren.")
    before = _raw(path)
    assert all(s in before for s in _secrets()[:3]), "the test must see the data first"

    citizen.say("/slett")
    citizen.press("Ja, slett")
    assert "slettet" in citizen.text

    raw = _raw(path)
    for secret in _secrets():
        assert secret not in raw, f"{secret!r} still readable after /slett"
    assert b"Kari" in raw  # somebody else's data stays
    with Session(runtime.db) as session:  # and the database is still whole and usable
        assert session.exec(select(Person).where(Person.display_name == "Kari")).one()
        assert session.exec(select(ProcessedUpdate)).first() is not None
    assert ChatPerson(runtime.engine, "kari", channel="telegram").say("/hjelp")
