"""Moderation for public pages: a hidden idea is absent from every public view (board, idea
page, Open311, export, the similar ideas shown to citizens) and its author is told;
KOMINN_PUBLISH=after-review keeps new ideas off the public pages until a moderator moved or
published them."""

from __future__ import annotations

import io
import json

from sqlmodel import Session, select

from bot.reports.opendata import export
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.models import Idea, Outbox
from tests.helpers import IDEA, ChatPerson
from tests.web_client import WebPerson, web_client


def _hide(runtime: Runtime, number: int, reason: str = "Inneholder personopplysninger") -> None:
    with Session(runtime.db) as db:
        idea = db.get(Idea, number)
        assert idea is not None
        runtime.ideas.hide(db, idea, reason, by="test")
        db.commit()


def _public_views(runtime: Runtime) -> dict[str, str]:
    client = web_client(runtime)
    out = io.StringIO()
    with Session(runtime.db) as db:
        export(db, out, "json", publish=runtime.settings.publish)
    return {"board": client.get("/ideer").text,
            "search": client.get("/ideer?q=benker semsvannet").text,
            "open311": client.get("/open311/v2/requests.json").text,
            "export": out.getvalue()}


def test_hidden_idea_is_absent_from_every_public_view(runtime: Runtime) -> None:
    author = WebPerson(web_client(runtime))
    author.submit(IDEA["title"], IDEA["description"])
    _hide(runtime, 1)
    for name, text in _public_views(runtime).items():
        assert "KI-1" not in text and IDEA["title"] not in text, name
    client = web_client(runtime)
    assert client.get("/ideer/KI-1").status_code == 404
    assert client.get("/open311/v2/requests/KI-1.json").status_code == 404
    # nor offered to a citizen as a similar idea
    ola = ChatPerson(runtime.engine, "ola")
    ola.say("/ny")
    ola.say(IDEA["title"])
    ola.say(IDEA["description"])
    ola.press(IDEA["area"])
    ola.press("Hopp over")
    ola.press("Nei")
    assert "KI-1" not in ola.text
    # the author is told, with the reason, when they come back to the chat
    assert "Inneholder personopplysninger" in author.open()


def test_unhide_brings_it_back(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    _hide(runtime, 1)
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.unhide(db, idea, by="test")
        db.commit()
    assert "KI-1" in _public_views(runtime)["board"]
    assert web_client(runtime).get("/ideer/KI-1").status_code == 200


def _notices(runtime: Runtime) -> list[tuple[str, str]]:
    with Session(runtime.db) as db:
        return [(row.kind, row.state) for row in db.exec(
            select(Outbox).where(Outbox.kind.in_(("idea_hidden", "idea_shown")))  # type: ignore[attr-defined]
            .order_by(Outbox.id)).all()]  # type: ignore[arg-type]


def _unhide(runtime: Runtime, number: int) -> bool:
    with Session(runtime.db) as db:
        idea = db.get(Idea, number)
        assert idea is not None
        changed = runtime.ideas.unhide(db, idea, by="test")
        db.commit()
    return changed


def test_hiding_twice_tells_the_author_once(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari", channel="telegram").submit()
    _hide(runtime, 1, "Språkbruk")
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        assert runtime.ideas.hide(db, idea, "Andre gang", by="test") is False
        db.commit()
        assert idea.hidden_reason == "Språkbruk"
    assert _notices(runtime) == [("idea_hidden", "pending")]


def test_shown_again_before_the_notice_went_out_cancels_it(runtime: Runtime) -> None:
    """The author is never told their idea is hidden once it is public again."""
    ChatPerson(runtime.engine, "kari", channel="telegram").submit()
    _hide(runtime, 1)
    assert _unhide(runtime, 1) is True
    assert _notices(runtime) == [("idea_hidden", "cancelled")]
    assert _unhide(runtime, 1) is False  # not hidden: nothing changes, nobody is told


def test_the_author_told_of_hiding_is_told_it_is_shown_again(runtime: Runtime) -> None:
    author = WebPerson(web_client(runtime))
    author.submit(IDEA["title"], IDEA["description"])
    _hide(runtime, 1)
    assert "Inneholder personopplysninger" in author.open()  # the notice went out
    _unhide(runtime, 1)
    assert _notices(runtime) == [("idea_hidden", "sent"), ("idea_shown", "pending")]
    assert "vises igjen på kommunens offentlige sider" in author.open()


def test_hiding_needs_a_reason_and_tells_a_telegram_author(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari", channel="telegram").submit()
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        try:
            runtime.ideas.hide(db, idea, "  ", by="test")
        except ValueError:
            pass
        else:
            raise AssertionError("hiding without a reason was accepted")
    _hide(runtime, 1, "Språkbruk")
    with Session(runtime.db) as db:
        rows = db.exec(select(Outbox).where(Outbox.kind == "idea_hidden")).all()
        assert len(rows) == 1 and json.loads(rows[0].payload)["reason"] == "Språkbruk"


def test_status_and_support_of_a_hidden_idea_are_for_its_author_only(runtime: Runtime) -> None:
    """`/status KI-n` (and support through the chat) shows no one else a hidden idea."""
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    _hide(runtime, 1)
    ola = ChatPerson(runtime.engine, "ola")
    ola.say("/status KI-1")
    assert "Jeg finner ingen idé KI-1" in ola.text and IDEA["title"] not in ola.text
    ola.press_payload("g:support:1")
    assert "Jeg finner ingen idé KI-1" in ola.text
    kari.say("/status KI-1")
    assert IDEA["title"] in kari.text


def test_status_of_an_idea_waiting_for_review_is_for_its_author_only(runtime: Runtime) -> None:
    runtime.settings.publish = "after-review"
    ChatPerson(runtime.engine, "kari").submit()
    ola = ChatPerson(runtime.engine, "ola")
    ola.say("/status KI-1")
    assert IDEA["title"] not in ola.text
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.publish(db, idea, by="test")
        db.commit()
    ola.say("/status KI-1")
    assert IDEA["title"] in ola.text


def test_after_review_shows_only_moved_or_published_ideas(runtime: Runtime) -> None:
    runtime.settings.publish = "after-review"
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    kari.submit(title="Gatelys langs skoleveien", area="Areal og transport",
                description="Skoleveien er mørk om vinteren; barna trenger gatelys hele veien.")
    views = _public_views(runtime)
    assert "KI-1" not in views["board"] and "KI-2" not in views["board"]
    assert "KI-1" not in views["open311"] and "KI-1" not in views["export"]
    with Session(runtime.db) as db:
        first, second = db.get(Idea, 1), db.get(Idea, 2)
        assert first is not None and second is not None
        runtime.ideas.set_status(db, first, Status.USEFUL, by="test")
        runtime.ideas.publish(db, second, by="test")
        db.commit()
    board = _public_views(runtime)["board"]
    assert "KI-1" in board and "KI-2" in board
