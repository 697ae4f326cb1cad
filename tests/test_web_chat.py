"""The web chat beyond one turn: what "Støtt idéen" may offer (the one visibility rule), and
notices that come while the chat is open (`GET /chat/hendelser`, which chat.js asks)."""

from __future__ import annotations

import html
import re

import pytest
from sqlmodel import Session, select

from bot.config import Settings
from bot.ideas.book import NewIdea, get_idea
from bot.runtime import Runtime, open_runtime
from dialogs.lifecycle import Status
from storage.models import Idea, Person, Support
from tests.helpers import IDEA, ChatPerson
from tests.web_client import WebPerson, web_client


def _submit_with_follow_up(person: WebPerson) -> None:
    """A web citizen who wants news and gives no address: the news comes to the chat."""
    person.say("/ny")
    person.say(IDEA["title"])
    person.say(IDEA["description"])
    person.press("Folkehelse")
    person.press("Hopp over")  # the place
    person.press("Ja")  # follow-ups (no KOMINN_SMTP_URL: no e-mail address asked)
    if "Min idé er ny" in person.buttons():
        person.press("Min idé er ny")
    assert "KI-1" in person.press("Send inn")


def test_support_offer_only_for_a_public_idea(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    client = web_client(runtime)
    person = WebPerson(client)
    assert "Støtt KI-1" in person.open("/chat?stott=KI-1")
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.hide(db, idea, "Personopplysninger i teksten", by="moderator-ola")
        db.commit()
    page = person.open("/chat?stott=KI-1")
    assert "Støtt KI-1" not in page and IDEA["title"] not in page


def test_support_offer_waits_for_review_under_after_review(settings: Settings) -> None:
    runtime = open_runtime(settings.model_copy(update={"publish": "after-review"}))
    try:
        ChatPerson(runtime.engine, "kari").submit()
        person = WebPerson(web_client(runtime))
        assert IDEA["title"] not in person.open("/chat?stott=KI-1")
        with Session(runtime.db) as db:
            idea = db.get(Idea, 1)
            assert idea is not None
            runtime.ideas.publish(db, idea, by="moderator-ola")
            db.commit()
        assert "Støtt KI-1" in person.open("/chat?stott=KI-1")
    finally:
        runtime.db.dispose()


def test_notice_reaches_the_open_chat(runtime: Runtime) -> None:
    client = web_client(runtime)
    assert client.get("/chat/hendelser").status_code == 204  # nobody yet
    person = WebPerson(client)
    assert 'data-events="/chat/hendelser"' in person.page
    _submit_with_follow_up(person)
    assert client.get("/chat/hendelser").status_code == 204  # nothing new
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.set_status(db, idea, Status.USEFUL, by="moderator-ola")
        db.commit()
    response = client.get("/chat/hendelser")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "Content-Security-Policy" in response.headers
    entry = response.json()["log"]
    assert 'class="msg bot"' in entry and "Nyttig" in entry and "KI-1" in entry
    assert client.get("/chat/hendelser").status_code == 204  # shown once
    assert "Nyttig" not in person.open()  # and not again when the page is reloaded
    stranger = web_client(runtime)
    WebPerson(stranger)
    assert stranger.get("/chat/hendelser").status_code == 204


def test_somebody_new_sees_what_start_says(runtime: Runtime) -> None:
    """The web chat's greeting is the citizen dialogs' `/start` (one function for both)."""
    start = ChatPerson(runtime.engine, "kari").say("/start")
    page = WebPerson(web_client(runtime)).page
    for reply in start:
        assert html.escape(reply.text.splitlines()[0], quote=False) in page
        for choice in reply.choices:
            assert f'value="{choice.payload}">{choice.label}</button>' in page


def test_one_language_per_person_whichever_control(runtime: Runtime) -> None:
    """The page's language links and the chat's /sprak are one choice: the bot answers in
    the page's language, and the page (every page) renders in the chat's."""
    person = WebPerson(web_client(runtime))
    person.say("/ny")
    assert "Beskriv idéen" in person.say(IDEA["title"])
    page = person.open("/chat?lang=en")
    assert '<html lang="en">' in page
    page = person.say(IDEA["description"])
    assert "Which focus area fits the idea best?" in page
    page = person.say("/sprak")
    page = person.press("Nynorsk")
    assert '<html lang="nn">' in page and "Språket er endra til nynorsk." in page
    assert '<html lang="nn">' in person.open("/ideer")
    # the header link again: the next answer is English, the stored language too
    person.open("/ideer?lang=en")
    person.open()
    assert "Which focus area fits the idea best?" in person.say("hei")
    with Session(runtime.db) as db:
        stored = db.exec(select(Person.language).where(Person.channel == "web")).one()
    assert stored == "en"


def test_json_turn_tells_the_script_the_language(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    person.say("/sprak")
    response = client.post("/chat", data={**person.form(), "choice": person.buttons()["English"]},
                           headers={"Accept": "application/json"})
    assert response.json()["lang"] == "en"
    assert '<html lang="en">' in person.open()


def test_after_review_the_author_is_told_and_sees_their_idea(settings: Settings) -> None:
    runtime = open_runtime(settings.model_copy(update={"publish": "after-review"}))
    try:
        author = WebPerson(web_client(runtime))
        ref = author.submit(IDEA["title"], IDEA["description"])
        assert "Den blir offentlig når kommunen har sett på den." in author.page
        page = author.client.get(f"/ideer/{ref}")
        assert page.status_code == 200 and IDEA["title"] in html.unescape(page.text)
        assert "Bare du ser denne siden" in page.text and "/chat?stott=" not in page.text
        assert page.headers["cache-control"] == "no-store"
        stranger = web_client(runtime)
        assert stranger.get(f"/ideer/{ref}").status_code == 404
        assert IDEA["title"] not in html.unescape(stranger.get("/ideer").text)
        with Session(runtime.db) as db:
            idea = db.get(Idea, 1)
            assert idea is not None
            runtime.ideas.publish(db, idea, by="moderator-ola")
            db.commit()
        assert "Bare du ser" not in author.client.get(f"/ideer/{ref}").text
        assert stranger.get(f"/ideer/{ref}").status_code == 200
    finally:
        runtime.db.dispose()


def test_immediately_the_receipt_says_nothing_of_a_review(runtime: Runtime) -> None:
    author = WebPerson(web_client(runtime))
    author.submit(IDEA["title"], IDEA["description"])
    assert "har sett på den" not in author.page


def merge_a_second_idea_into_the_first(runtime: Runtime) -> None:
    """KI-1 (IDEA) and KI-2, a duplicate of it that a moderator merged into KI-1."""
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    kari.submit(title="Sitteplasser rundt Semsvannet",
                description="Langs Semsvannet er det for få steder å sitte ned og hvile seg.")
    with Session(runtime.db) as db:
        runtime.ideas.merge(db, get_idea(db, 2), get_idea(db, 1), by="moderator-ola")
        db.commit()


def test_support_link_of_a_merged_idea_offers_the_idea_it_went_into(runtime: Runtime) -> None:
    merge_a_second_idea_into_the_first(runtime)
    person = WebPerson(web_client(runtime))
    page = person.open("/chat?stott=KI-2")
    assert "KI-2 er slått sammen med KI-1" in page and "Støtt KI-2" not in page
    page = person.press("Støtt KI-1")
    assert "Du støtter nå KI-1" in page
    with Session(runtime.db) as db:
        assert db.exec(select(Support).where(Support.idea_id == 1)).first() is not None


@pytest.mark.parametrize(("asked", "shown"), [
    ("KI-999", "KI-999"), ("ki 3", "KI-3"), ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;")])
def test_support_link_that_offers_nothing_says_so(runtime: Runtime, asked: str,
                                                  shown: str) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    with Session(runtime.db) as db:
        runtime.ideas.create_idea(db, NewIdea(title="Skjult idé om noe", description="d" * 30,
                                              channel="web"), by="test")
        db.commit()
    with Session(runtime.db) as db:
        idea = db.get(Idea, 2)
        assert idea is not None
        runtime.ideas.hide(db, idea, "Personopplysninger i teksten", by="moderator-ola")
        db.commit()
    client = web_client(runtime)
    page = client.get("/chat", params={"stott": asked}).text
    assert f"Jeg finner ingen idé {shown}." in page and "<b>x</b>" not in page
    hidden = WebPerson(client).open("/chat?stott=KI-2&lang=nn")
    assert "Eg finn ingen idé KI-2." in hidden and "Skjult" not in hidden


def test_a_title_of_spaces_is_too_short_not_missing(runtime: Runtime) -> None:
    person = WebPerson(web_client(runtime))
    person.say("/ny")
    page = person.say("     ")
    assert "Tittelen er for kort – bruk minst 5 tegn." in page
    assert "Skriv svaret som tekst." not in page
    person.say(IDEA["title"])
    assert "Beskrivelsen er for kort" in person.say("   \n   ")


@pytest.mark.parametrize(("command", "lang", "listed", "absent"), [
    ("/hjelp", "nb", ["/innstillinger", "/konkurranser", "/aktuelt"], ["/settings"]),
    ("/hjelp", "nn", ["/innstillinger", "/konkurranser"], ["/settings"]),
    ("/help", "en", ["/settings", "/competitions", "/current"], ["/konkurranser", "/aktuelt"])])
def test_help_lists_every_command_in_the_persons_language(
        runtime: Runtime, command: str, lang: str, listed: list[str], absent: list[str]) -> None:
    person = WebPerson(web_client(runtime))
    person.open(f"/chat?lang={lang}")
    page = person.say(command)
    assert all(name in page for name in listed), page
    assert not any(name in page for name in absent)
    for name in listed:  # and each one is a command
        assert f"Kommandoen {name} kjenn" not in person.say(name)
        assert f"know the command {name}." not in person.page


def test_supporting_twice_says_you_already_do(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    person = WebPerson(web_client(runtime))
    person.open("/chat?stott=KI-1")
    assert "Du støtter nå KI-1" in person.press("Støtt KI-1")
    person.open("/chat?stott=KI-1")
    page = person.press("Støtt KI-1")
    assert "Du støtter allerede KI-1." in page
    with Session(runtime.db) as db:
        assert len(db.exec(select(Support).where(Support.idea_id == 1)).all()) == 1


def test_personal_link_brings_the_persons_language(runtime: Runtime) -> None:
    phone = WebPerson(web_client(runtime))
    phone.say("/sprak")
    phone.press("Nynorsk")
    token = re.search(r'href="(/mine/[^"]+)"', phone.open()).group(1)  # type: ignore[union-attr]
    laptop = WebPerson(web_client(runtime))
    laptop.open("/chat?lang=en")
    assert '<html lang="nn">' in laptop.open(token)  # the redirect to the chat
