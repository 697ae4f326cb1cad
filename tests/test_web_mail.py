"""E-mail follow-ups for web citizens: the address asked at the follow-up step (optional,
checked), status news mailed through a real SMTP client (aiosmtplib) to a local SMTP server
(aiosmtpd) by the same dispatcher as the chat channels, with List-Unsubscribe and a stop link
that works; refused recipients are permanent failures."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from adapters.web.mail import MailLinks, MailSender
from bot.channels import DeliveryError
from bot.followups.dispatcher import DispatchResult, dispatch
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from dialogs.types import Choice, Reply
from storage.models import Idea, Outbox, Person
from tests.helpers import IDEA
from tests.web_client import WebPerson, web_client
from tests.web_server import free_port


class Inbox:
    def __init__(self, refuse: bool = False) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = refuse

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(  # type: ignore[arg-type]
            envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


def _submit_with_email(person: WebPerson, address: str) -> None:
    person.say("/ny")
    person.say(IDEA["title"])
    person.say(IDEA["description"])
    person.press(IDEA["area"])
    person.press("Hopp over")
    page = person.press("Ja")
    assert "e-post" in page.casefold()
    assert "ikke ut som en e-postadresse" in person.say("ikke en adresse")
    person.say(address)
    if "Min idé er ny" in person.buttons():
        person.press("Min idé er ny")
    assert "KI-1" in person.press("Send inn")


async def mail_status_news(runtime: Runtime) -> DispatchResult:
    """KI-1 becomes Nyttig and the dispatcher mails the news through `kominn run`'s e-mail
    sender."""
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.set_status(db, idea, Status.USEFUL, by="test")
        db.commit()
    from bot.app import build

    return await dispatch(runtime.db, runtime.settings, runtime.features.renderers,
                          {"email": build(runtime).senders["email"]})


async def test_status_news_by_email_with_a_working_stop_link(runtime: Runtime,
                                                             inbox: tuple[Inbox, str]) -> None:
    handler, url = inbox
    runtime.settings.smtp_url = url
    runtime.settings.public_url = "http://kominn.test"
    client = web_client(runtime)
    _submit_with_email(WebPerson(client), "Kari.Nordmann@Example.no")
    with Session(runtime.db) as db:
        person = db.exec(select(Person).where(Person.channel == "web")).one()
        assert person.email == "Kari.Nordmann@example.no"  # the domain normalised
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.set_status(db, idea, Status.USEFUL, by="test", note="Vi ser på det")
        db.commit()
    from bot.app import build

    app = build(runtime)
    assert "email" in app.senders
    result = await dispatch(runtime.db, runtime.settings, runtime.features.renderers,
                            {"email": app.senders["email"]})
    assert result.sent == 1, result
    [message] = handler.messages
    assert message["To"] == "Kari.Nordmann@example.no"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Nyttig" in text and "Vi ser på det" in text and "Nyttig" in html
    stop = re.search(r"<(http://kominn.test(/epost/stopp\?t=[^>]+))>",
                     message["List-Unsubscribe"])
    assert stop is not None and stop.group(1) in text
    assert client.get(stop.group(2)).status_code == 200  # a GET changes nothing
    with Session(runtime.db) as db:
        assert db.exec(select(Person).where(Person.channel == "web")).one().email is not None
    assert client.post(stop.group(2), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with Session(runtime.db) as db:
        assert db.exec(select(Person).where(Person.channel == "web")).one().email is None
    assert client.get("/epost/stopp?t=forged").status_code == 404


async def test_buttons_become_links_and_refusals_are_permanent(runtime: Runtime) -> None:
    handler = Inbox(refuse=True)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime.settings.smtp_url = f"smtp://127.0.0.1:{port}"
        sender = MailSender(runtime.settings, MailLinks("s" * 32, "http://kominn.test"),
                            runtime.db)
        message = sender.message("a@example.no", [Reply("Hjalp det?", (Choice("Ja", "g:b:1"),))])
        assert "Ja: http://kominn.test/epost/svar?t=" in message.get_body(
            ("plain",)).get_content()  # type: ignore[union-attr]
        with pytest.raises(DeliveryError) as failed:
            await sender.send("nobody@example.no", [Reply("Hei")])
        assert failed.value.permanent
    finally:
        controller.stop()


async def test_an_english_citizen_gets_the_mail_in_english(runtime: Runtime,
                                                          inbox: tuple[Inbox, str]) -> None:
    handler, url = inbox
    runtime.settings.smtp_url = url
    runtime.settings.public_url = "http://kominn.test"
    assert runtime.settings.locale == "nb"  # KOMINN_LOCALE stays bokmål
    person = WebPerson(web_client(runtime))
    person.open("/chat?lang=en")
    person.say("/new")
    person.say(IDEA["title"])
    person.say(IDEA["description"])
    person.press(IDEA["area"])
    person.press("Skip")
    assert "e-mail" in person.press("Yes").casefold()
    person.say("jane@example.org")
    if "My idea is new" in person.buttons():
        person.press("My idea is new")
    assert "KI-1" in person.press("Submit")
    result = await mail_status_news(runtime)
    assert result.sent == 1, result
    [message] = handler.messages
    assert message["Subject"] == "News about your idea in KomInn"
    assert message["Content-Language"] == "en"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Useful" in text and "Nyttig" not in text
    assert "Stop e-mails from KomInn: http://kominn.test/epost/stopp?t=" in text
    assert "Stop e-mails from KomInn</a>" in html and "Stopp" not in html
    assert '<html lang="en">' in html


def test_without_smtp_the_chat_keeps_the_follow_ups(runtime: Runtime) -> None:
    person = WebPerson(web_client(runtime))
    person.say("/ny")
    person.say(IDEA["title"])
    person.say(IDEA["description"])
    person.press(IDEA["area"])
    person.press("Hopp over")
    page = person.press("Ja")
    assert "e-postadresse" not in page
    with Session(runtime.db) as db:
        assert db.exec(select(Outbox)).all() == []


def test_a_button_link_in_a_mail_answers_as_the_person(runtime: Runtime) -> None:
    from adapters.web.session import signing_secret

    runtime.settings.smtp_url = "smtp://127.0.0.1:1"
    runtime.settings.public_url = "http://kominn.test"
    client = web_client(runtime)
    _submit_with_email(WebPerson(client), "kari@example.no")
    links = MailLinks(signing_secret(runtime.db, None), "http://kominn.test")
    path = links.answer("kari@example.no", "g:status:1").removeprefix("http://kominn.test")
    shown = client.get(path)
    assert shown.status_code == 200 and "<form method=\"post\">" in shown.text
    answered = client.post(path)
    assert answered.status_code == 200 and "KI-1" in answered.text and "Nytt" in answered.text
    forged = links.answer("someone@else.no", "g:status:1").removeprefix("http://kominn.test")
    assert client.post(forged).status_code == 404
