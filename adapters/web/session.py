"""The web citizen's session: a signed cookie (itsdangerous, as Starlette's SessionMiddleware
signs its cookie), HttpOnly, SameSite=Lax, Secure when the person came over https.

It holds a random id (the person is `Person(channel="web", channel_user_id=<id>)`), the CSRF
token, the chosen language and the update ids of the last turns (whose replies are the
transcript the chat page shows). The signing key is KOMINN_WEB_SECRET, or one generated at the
first start and kept in the database (`app_secret`), so sessions survive restarts and are shared
by every worker.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Engine as DbEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import LANGUAGES, normalize_language
from storage.models import AppSecret, Person

COOKIE = "kominn"
MAX_AGE = 365 * 24 * 3600  # a year: the person's ideas stay theirs
SECRET_NAME = "web_session"
TURNS_KEPT = 6


def signing_secret(db: DbEngine, configured: str | None) -> str:
    """KOMINN_WEB_SECRET, else the generated one (created once, race-free across workers)."""
    if configured:
        return configured
    with Session(db) as session:
        stored = session.get(AppSecret, SECRET_NAME)
        if stored is not None:
            return stored.value
        session.add(AppSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48)))
        try:
            session.commit()
        except IntegrityError:  # another worker made it first
            session.rollback()
        stored = session.get(AppSecret, SECRET_NAME)
        assert stored is not None
        return stored.value


@dataclass
class WebSession:
    """What the cookie carries. `changed` says whether it must be sent again."""

    uid: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lang: str | None = None
    turns: list[list[str]] = field(default_factory=list)  # [update id, what the person said]
    changed: bool = False
    fresh: bool = False  # no cookie came with the request

    def person(self) -> str:
        """The anonymous person's id, made on the first message."""
        if self.uid is None:
            self.uid = secrets.token_urlsafe(16)
            self.changed = True
        return self.uid

    def add_turn(self, update_id: str, said: str) -> None:
        if any(turn[0] == update_id for turn in self.turns):
            return
        self.turns = [*self.turns, [update_id, said[:300]]][-TURNS_KEPT:]
        self.changed = True

    def to_dict(self) -> dict[str, Any]:
        return {"u": self.uid, "c": self.csrf, "l": self.lang, "t": self.turns}


class Sessions:
    def __init__(self, secret: str) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="kominn.web.session")
        self.personal = URLSafeSerializer(secret, salt="kominn.web.mine")

    def personal_token(self, uid: str) -> str:
        """The "Mine idéer" link's token: unguessable (signed), the same on every device; it
        stops working when the person erases themselves (`/slett` gives them a new id)."""
        return str(self.personal.dumps(uid))

    def read_personal(self, token: str) -> str | None:
        try:
            uid = self.personal.loads(token)
        except BadSignature:
            return None
        return uid if isinstance(uid, str) else None

    def load(self, request: Request) -> WebSession:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self.serializer.loads(raw, max_age=MAX_AGE)
                return WebSession(uid=data.get("u"),
                                  csrf=data.get("c") or secrets.token_urlsafe(24),
                                  lang=data.get("l"), turns=list(data.get("t") or []))
            except (BadSignature, AttributeError, TypeError):
                pass
        return WebSession(changed=True, fresh=True)

    def save(self, response: Response, session: WebSession, *, secure: bool) -> None:
        if not session.changed:
            return
        response.set_cookie(COOKIE, self.serializer.dumps(session.to_dict()), max_age=MAX_AGE,
                            path="/", httponly=True, samesite="lax", secure=secure)


def choose_language(request: Request, session: WebSession, default: str) -> str:
    """`?lang=nb|nn|en` (remembered in the session), else the session's, else
    Accept-Language, else KOMINN_LOCALE."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        if session.lang != asked:
            session.lang = asked
            session.changed = True
        return asked
    if session.lang in LANGUAGES:
        return session.lang
    return accept_language(request.headers.get("accept-language", "")) or default


def agree_language(session: WebSession, stored: str | None) -> str | None:
    """One language per person, whichever control they used: the page's language links
    (`?lang=`, kept in the session) or the chat's `/sprak` (kept on the person's row, which
    the engine answers in and notices are written in). `stored` is the person's row's
    language (`person_language`). A language the session chose wins: it is returned, to be
    stored on the person (`store_person_language`); a session that chose none takes the
    person's. After a turn `follow_person` carries a `/sprak` choice back to the session, so
    every page then renders in it."""
    if session.lang in LANGUAGES:
        return session.lang if stored is not None and stored != session.lang else None
    if stored in LANGUAGES:
        session.lang, session.changed = stored, True
    return None


def person_language(db: DbEngine, channel: str, uid: str) -> str | None:
    """The language on the web person's row; None when they have none (or no row yet: the
    first turn stores the session's language)."""
    with Session(db) as tx:
        return tx.exec(select(Person.language).where(
            Person.channel == channel, Person.channel_user_id == uid)).first()


def store_person_language(db: DbEngine, channel: str, uid: str, language: str) -> None:
    with Session(db) as tx:
        person = tx.exec(select(Person).where(Person.channel == channel,
                                              Person.channel_user_id == uid)).first()
        if person is not None and person.language != language:
            person.language = language
            tx.add(person)
            tx.commit()


def follow_person(db: DbEngine, session: WebSession, channel: str) -> None:
    """After a turn: the person's language (changed by `/sprak`) becomes the page's."""
    if not session.uid:
        return
    language = person_language(db, channel, session.uid)
    if language in LANGUAGES and language != session.lang:
        session.lang, session.changed = language, True


def accept_language(header: str) -> str | None:
    """The first of nb/nn/en in an Accept-Language header, by quality ("no" counts as nb)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            continue
        base = tag.split("-")[0].casefold()
        if base in ("nb", "no", "nn", "en"):
            return normalize_language(tag)
    return None
