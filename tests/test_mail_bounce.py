"""Bounces that come back by mail after the SMTP server accepted: VERP envelope senders
(`bounces+<token>@domain`), `kominn mail bounce` reading a delivery status notification
(RFC 3464's own examples, and Postfix's form with a forward) from standard input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from adapters.web import bounce
from adapters.web.mail import record_bounce
from adapters.web.session import signing_secret
from bot.runtime import Runtime
from storage.models import Outbox, Person
from tests.test_cli import kominn
from tests.test_web_mail import Inbox, _submit_with_email, mail_status_news
from tests.web_client import WebPerson, web_client
from tests.web_server import free_port

DSN = Path(__file__).with_name("data") / "dsn"
BOUNCES = "bounces@kommune.no"


def _dsn(name: str, to: str) -> bytes:
    return (DSN / name).read_text(encoding="utf-8").replace("{to}", to).encode()


def _person(runtime: Runtime, uid: str, address: str) -> None:
    with Session(runtime.db) as db:
        db.add(Person(channel="web", channel_user_id=uid, email=address))
        db.commit()


def _email_of(runtime: Runtime, uid: str) -> str | None:
    with Session(runtime.db) as db:
        return db.exec(select(Person.email).where(Person.channel_user_id == uid)).one()


class Envelopes(Inbox):
    def __init__(self) -> None:
        super().__init__()
        self.senders: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.senders.append(envelope.mail_from)
        return await super().handle_DATA(server, session, envelope)


def test_the_token_names_one_address_and_fits_a_local_part() -> None:
    sender = bounce.envelope_sender(BOUNCES, "s" * 32, "Kari@Example.no")
    local, _, domain = sender.partition("@")
    assert domain == "kommune.no" and local.startswith("bounces+") and len(local) <= 64
    assert bounce.token_of(sender) == bounce.token("s" * 32, "kari@example.no")  # no case
    assert bounce.token("s" * 32, "ola@example.no") != bounce.token_of(sender)
    assert bounce.token("t" * 32, "kari@example.no") != bounce.token_of(sender)
    assert bounce.token_of("bounces@kommune.no") is None


def test_rfc3464_multi_recipient_report_is_read() -> None:
    report = bounce.parse(_dsn("rfc3464-multi.eml", "<owner-ietf-mime@cs.utk.edu>"))
    assert report is not None
    assert [(f.address, f.status, f.permanent) for f in report.failures] == [
        ("arathib@vnet.ibm.com", "5.0.0", True), ("johnh@hpnjld.njd.hp.com", "4.0.0", False),
        ("wsnell@sdcc13.ucsd.edu", "5.0.0", True)]
    assert "not a registered gateway user" in report.failures[0].diagnostic
    assert bounce.parse(b"From: a@b.no\nSubject: Ferie\n\nJeg er borte til mandag.\n") is None


async def test_a_hard_bounce_by_mail_stops_mail_to_that_address_only(runtime: Runtime) -> None:
    """The whole way: a web citizen's mail leaves with the VERP envelope sender, it is
    accepted, later RFC 3464's multi-recipient report comes back and the MTA pipes it into
    `kominn mail bounce`."""
    handler = Envelopes()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime.settings.smtp_url = f"smtp://127.0.0.1:{port}"
        runtime.settings.public_url = "http://kominn.test"
        runtime.settings.mail_bounces = BOUNCES
        _submit_with_email(WebPerson(web_client(runtime)), "arathib@vnet.ibm.com")
        _person(runtime, "another", "wsnell@sdcc13.ucsd.edu")  # failed too, not ours to stop
        sent = await mail_status_news(runtime)
        assert sent.sent == 1
    finally:
        controller.stop()
    [verp] = handler.senders
    secret = signing_secret(runtime.db, None)
    assert verp == bounce.envelope_sender(BOUNCES, secret, "arathib@vnet.ibm.com")
    result = kominn(runtime.settings, "mail", "bounce",
                    stdin=_dsn("rfc3464-multi.eml", f"<{verp}>").decode(),
                    env={"ORIGINAL_RECIPIENT": verp})
    assert result.returncode == 0, result.stderr
    assert "arathib@vnet.ibm.com: 5.0.0 permanent, e-mail stopped" in result.stdout
    with Session(runtime.db) as db:
        author = db.exec(select(Person).where(Person.email.is_(None),  # type: ignore[union-attr]
                                              Person.channel == "web")).all()
        assert len(author) == 1
        [row] = db.exec(select(Outbox).where(Outbox.channel == "email")).all()
        assert row.state == "failed" and row.last_error is not None
        assert row.last_error.startswith("bounced 5.0.0")
    assert _email_of(runtime, "another") == "wsnell@sdcc13.ucsd.edu"


def test_a_transient_failure_changes_nothing(runtime: Runtime) -> None:
    _person(runtime, "louis", "louisl@larry.slip.umd.edu")
    secret = signing_secret(runtime.db, None)
    verp = bounce.envelope_sender(BOUNCES, secret, "louisl@larry.slip.umd.edu")
    lines = record_bounce(runtime.db, secret, _dsn("rfc3464-simple.eml", f"<{verp}>"), None)
    assert lines == ["louisl@larry.slip.umd.edu: 4.0.0 transient, nothing changed"]
    assert _email_of(runtime, "louis") == "louisl@larry.slip.umd.edu"


def test_a_forwarded_address_is_matched_through_the_original_headers(runtime: Runtime) -> None:
    """Postfix's report: the failed recipient is where kari@example.no forwards to; the
    original message's headers (text/rfc822-headers) name the address we mailed."""
    _person(runtime, "kari", "Kari@example.no")
    secret = signing_secret(runtime.db, None)
    verp = bounce.envelope_sender(BOUNCES, secret, "kari@example.no")
    lines = record_bounce(runtime.db, secret, _dsn("postfix-forwarded.eml", verp), None)
    assert lines == ["kari@example.no: 5.1.1 permanent, e-mail stopped"]
    assert _email_of(runtime, "kari") is None


def test_a_bounce_without_our_token_is_ignored(runtime: Runtime) -> None:
    _person(runtime, "kari", "arathib@vnet.ibm.com")
    secret = signing_secret(runtime.db, None)
    forged = "bounces+0123456789abcdef@kommune.no"
    for to in (forged, "bounces@kommune.no"):
        lines = record_bounce(runtime.db, secret, _dsn("rfc3464-multi.eml", to), None)
        assert lines == ["no recipient matches the bounce address's token: ignored"]
    result = kominn(runtime.settings, "mail", "bounce", stdin="Subject: hei\n\nhei\n")
    assert result.returncode == 0 and "ignored" in result.stdout
    assert _email_of(runtime, "kari") == "arathib@vnet.ibm.com"
