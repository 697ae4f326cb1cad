"""E-mail follow-ups for web citizens who gave an address at the follow-up step: the outbox's
rows of channel `email` go through `MailSender` (aiosmtplib to KOMINN_SMTP_URL), through the
same dispatcher, backoff and quiet hours as the chat channels.

Each mail is plain text plus simple HTML in the person's language (its subject and stop line
too, not KOMINN_LOCALE's), with `List-Unsubscribe`
(and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, RFC 8058) and a stop link in the text;
the notice's buttons (e.g. the benefit check's Ja/Delvis/Nei) become links back to KomInn. A
link carries a signed token (the person's web id, and the button's payload): it opens a page
with one button, so nothing happens on a mere GET (mail scanners follow links).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import escape
from sqlalchemy import Engine as DbEngine
from sqlalchemy import func
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import Response

from adapters.web import bounce
from adapters.web.bounce import envelope_sender
from adapters.web.render import Renderer, Turn
from adapters.web.session import Sessions, choose_language
from bot.channels import DeliveryError
from bot.config import Settings
from bot.i18n import translator
from bot.runtime import Runtime
from dialogs.types import Incoming, Reply
from storage import outbox
from storage.models import Person

CHANNEL = "email"
STOP_PATH = "/epost/stopp"
ANSWER_PATH = "/epost/svar"
TIMEOUT = 30.0
log = logging.getLogger("kominn.web.mail")


class MailLinks:
    """Signed links in mails: stop e-mails, or press a notice's button as the person."""

    def __init__(self, secret: str, public_url: str) -> None:
        self.signer = URLSafeSerializer(secret, salt="kominn.web.mail")
        self.secret = secret
        self.base = public_url.rstrip("/")

    def stop(self, address: str) -> str:
        return f"{self.base}{STOP_PATH}?t={self.signer.dumps({'a': address})}"

    def answer(self, address: str, payload: str) -> str:
        return f"{self.base}{ANSWER_PATH}?t={self.signer.dumps({'a': address, 'p': payload})}"

    def read(self, token: str) -> dict[str, str] | None:
        try:
            data = self.signer.loads(token)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("a"), str) else None


class MailSender:
    """The dispatcher's `Sender` for channel `email` (the address is the person's e-mail)."""

    channel = CHANNEL
    concurrency = 4

    def __init__(self, settings: Settings, links: MailLinks, db: DbEngine) -> None:
        assert settings.smtp_url
        parts = urlsplit(settings.smtp_url)
        self.host = parts.hostname or "localhost"
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.mail_from = settings.mail_from
        self.bounces = settings.mail_bounces
        self.links = links
        self.db = db
        self.locale = settings.locale

    def language(self, address: str) -> str:
        """The language of the person with this address (as the notice's text is rendered
        in), else KOMINN_LOCALE."""
        with Session(self.db) as db:
            language = db.exec(select(Person.language).where(
                Person.email == address, Person.erased_at.is_(None))).first()  # type: ignore[union-attr]
        return language or self.locale

    def message(self, address: str, replies: Sequence[Reply],
                language: str | None = None) -> EmailMessage:
        t = translator(language or self.locale)
        stop = self.links.stop(address)
        text_parts, html_parts = [], []
        for reply in replies:
            text_parts.append(reply.text)
            html_parts.append(f"<p>{escape(reply.text)}</p>".replace("\n", "<br>\n"))
            for choice in reply.choices:
                url = self.links.answer(address, choice.payload)
                text_parts.append(f"{choice.label}: {url}")
                html_parts.append(f'<p><a href="{escape(url)}">{escape(choice.label)}</a></p>')
            for label, url in reply.links:
                text_parts.append(f"{label}: {url}")
                html_parts.append(f'<p><a href="{escape(url)}">{escape(label)}</a></p>')
        text_parts.append(f"-- \n{t('web.mail.footer_stop')}: {stop}")
        html_parts.append(f'<hr><p><a href="{escape(stop)}">{escape(t("web.mail.footer_stop"))}'
                          "</a></p>")
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = address
        message["Subject"] = t("web.mail.subject")
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain="kominn")
        message["List-Unsubscribe"] = f"<{stop}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content("\n\n".join(text_parts))
        message.add_alternative(f'<!doctype html><html lang="{escape(t.language)}"><body>'
                                + "\n".join(html_parts)
                                + "</body></html>", subtype="html")
        message["Content-Language"] = language or self.locale  # after: parts take Content-*
        return message

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        language = await asyncio.to_thread(self.language, address)
        # VERP: a bounce that comes later by mail names the address it is about.
        sender = (envelope_sender(self.bounces, self.links.secret, address) if self.bounces
                  else None)
        try:
            await aiosmtplib.send(
                self.message(address, replies, language), sender=sender,
                hostname=self.host, port=self.port,
                username=self.username, password=self.password, use_tls=self.tls,
                start_tls=False if self.tls else None, timeout=TIMEOUT)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.code}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}") from exc


class MailPages:
    """`/epost/stopp` and `/epost/svar`: what the links in a mail open. GET shows one button;
    the POST (the signed token is its authority, as RFC 8058's one-click POST needs) acts."""

    def __init__(self, runtime: Runtime, renderer: Renderer, sessions: Sessions,
                 links: MailLinks, respond: Callable[..., Response]) -> None:
        self.runtime = runtime
        self.renderer = renderer
        self.sessions = sessions
        self.links = links
        self.respond = respond

    async def stop(self, request: Request) -> Response:
        return await self._page(request, "stop")

    async def answer(self, request: Request) -> Response:
        return await self._page(request, "answer")

    async def _page(self, request: Request, action: str) -> Response:
        session = self.sessions.load(request)
        language = choose_language(request, session, self.runtime.settings.locale)
        token = request.query_params.get("t", "")
        data = self.links.read(token)
        person = await asyncio.to_thread(self._person, data["a"]) if data else None
        if person is None:
            html = self.renderer.page("mail.html", language, page="", state="invalid")
            return self.respond(request, session, html, public=False, status=404)
        if request.method == "GET":
            html = self.renderer.page("mail.html", language, page="", state=action,
                                      token=token)
            return self.respond(request, session, html, public=False)
        if action == "stop":
            await asyncio.to_thread(self._stop, data["a"])  # type: ignore[index]
            html = self.renderer.page("mail.html", language, page="", state="stopped")
            return self.respond(request, session, html, public=False)
        uid, person_language = person
        update_id = "mail." + hashlib.sha256(token.encode()).hexdigest()[:32]
        replies = await asyncio.to_thread(self.runtime.engine.handle, Incoming(
            channel="web", user_id=uid, choice=data.get("p"),  # type: ignore[union-attr]
            update_id=update_id, language=person_language))
        html = self.renderer.page("mail.html", language, page="", state="answered",
                                  log=self.renderer.log([Turn("", tuple(replies))], language))
        return self.respond(request, session, html, public=False)

    def _person(self, address: str) -> tuple[str, str | None] | None:
        """(web id, language) of the person with this address."""
        with Session(self.runtime.db) as db:
            person = db.exec(select(Person).where(Person.email == address,
                                                  Person.erased_at.is_(None))).first()  # type: ignore[union-attr]
            return (person.channel_user_id, person.language) if person else None

    def _stop(self, address: str) -> None:
        with Session(self.runtime.db) as db:
            stop_mail(db, address, "stopped")
            db.commit()


def stop_mail(db: Session, address: str, reason: str, *, failed: str | None = None) -> int:
    """No more e-mail to this address (the stop link, a hard bounce): it is removed from
    whoever gave it (compared without case), and what waits to be mailed is cancelled; with
    `failed` (a bounce) the last mail sent to it is marked failed with that error too. Returns
    how many people had it."""
    people = db.exec(select(Person).where(
        func.lower(Person.email) == address.casefold())).all()
    for stored in {person.email for person in people if person.email} | {address}:
        if failed is not None:
            outbox.fail_last_sent(db, CHANNEL, stored, failed)
        outbox.cancel_for_address(db, CHANNEL, stored, reason)
    for person in people:
        person.email = None
        db.add(person)
    return len(people)


def record_bounce(db: DbEngine, secret: str, raw: bytes, recipient: str | None) -> list[str]:
    """A bounce that came by mail (`kominn mail bounce`): a permanent failure for an address
    its VERP token names stops mail to it (as the stop link does) and marks the last mail to
    it failed; a transient one is only logged. Returns one line per recipient, for the
    operator."""
    report = bounce.parse(raw)
    if report is None:
        log.info("not a delivery status notification", extra={"event": "bounce_ignored"})
        return ["not a delivery status notification: ignored"]
    failures = bounce.matching(report, secret, recipient)
    if not failures:
        log.warning("bounce for no address of ours (no or wrong VERP token)",
                    extra={"event": "bounce_unverified"})
        return ["no recipient matches the bounce address's token: ignored"]
    lines = []
    with Session(db) as session:
        for failure in failures:
            if not failure.permanent:
                log.info("transient bounce", extra={"event": "bounce_transient",
                                                    "status": failure.status})
                lines.append(f"{failure.address}: {failure.status} transient, nothing changed")
                continue
            error = f"bounced {failure.status}: {failure.diagnostic}".strip(" :")[:500]
            stop_mail(session, failure.address, f"bounced {failure.status}", failed=error)
            log.warning("permanent bounce: no more e-mail to the address", extra={
                "event": "bounce_permanent", "status": failure.status})
            lines.append(f"{failure.address}: {failure.status} permanent, e-mail stopped")
        session.commit()
    return lines
