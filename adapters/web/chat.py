"""The citizen chat as a web page: `GET /chat` shows the conversation, `POST /chat` is one
turn. Each form carries a fresh turn id, which (with the person's id) is the update id the
engine handles once: a double submit is one turn. Without JavaScript the form posts, the
answer is a redirect, and the page is shown again (POST → redirect → GET); with it, chat.js
posts with fetch and gets the new log entries and controls as JSON, and asks
`GET /chat/hendelser` every few seconds for notices that came while the chat is open.

A turn's replies stay in the engine's record of the update (`processed_update.replies`, until
the retention pass deletes it): the page shows the last few turns from there, the session
keeping only their update ids and what the person said.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from adapters.web.render import Renderer, Turn, error_page, open_choices
from adapters.web.security import HEADERS, MAX_BODY, Proxies, RateLimit, csrf_ok, new_token
from adapters.web.session import (
    Sessions,
    WebSession,
    agree_language,
    choose_language,
    follow_person,
    person_language,
    store_person_language,
)
from bot.conversation.replies import decode_replies
from bot.followups.dispatcher import take_pending
from bot.i18n import LANGUAGES, translator
from bot.ideas.book import is_public
from bot.runtime import Runtime
from dialogs.citizen import greeting
from dialogs.refs import parse_ref
from dialogs.types import Choice, Incoming, Location, Reply
from storage.models import Idea, Person, ProcessedUpdate, utcnow
from storage.outbox import has_due_for_address

CHANNEL = "web"
EVENTS_PATH = "/chat/hendelser"
# How often an open chat asks for new notices. They wait in the database (the dispatcher's
# outbox), so a server-sent event stream would poll the database just the same, while holding
# a connection per open chat (and uvicorn's shutdown waiting for it); a short fetch is cheaper.
POLL_SECONDS = 5
_TURN = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
T = TypeVar("T")


class Chat:
    def __init__(self, runtime: Runtime, renderer: Renderer, sessions: Sessions,
                 proxies: Proxies, respond: Callable[..., Response]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.renderer = renderer
        self.sessions = sessions
        self.proxies = proxies
        self.respond = respond
        self.per_address = RateLimit(runtime.db, self.settings.web_max_messages_per_address,
                                     salt=sessions.personal.secret_key)  # all workers'

    async def _run(self, call: Callable[[], T]) -> T:
        return await self.runtime.engine.off_loop(call)

    async def _language(self, request: Request, session: WebSession) -> str:
        """The page's language and the person's chat language, made one (`agree_language`)."""
        chosen = choose_language(request, session, self.settings.locale)
        uid = session.uid
        if uid:
            stored = await asyncio.to_thread(person_language, self.runtime.db, CHANNEL, uid)
            store = agree_language(session, stored)
            if store is not None:  # a write: in the engine's thread, as the engine's writes
                await self._run(lambda: store_person_language(self.runtime.db, CHANNEL, uid,
                                                              store))
        return session.lang if session.lang in LANGUAGES else chosen

    # --- GET /chat ------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        session = self.sessions.load(request)
        language = await self._language(request, session)
        turns = await self._run(lambda: self._turns(session, language))
        support = await self._run(lambda: self._support_offer(request, language))
        if support is not None:
            turns.append(support)
        mine = f"/mine/{self.sessions.personal_token(session.uid)}" if session.uid else None
        html = self.renderer.page(
            "chat.html", language, page="chat", mine=mine, events=EVENTS_PATH,
            poll=POLL_SECONDS,
            log=self.renderer.log(turns, language),
            controls=self.renderer.controls(open_choices(turns), language,
                                            csrf=session.csrf, turn=new_token()))
        return self.respond(request, session, html, public=False)

    def _turns(self, session: WebSession, language: str) -> list[Turn]:
        """Notices waiting for the person, then the last turns; a greeting when new."""
        turns: list[Turn] = []
        if session.uid:
            notices = self._take_notices(session.uid)
            if notices:
                turns.append(Turn("", tuple(notices)))
        ids = [turn[0] for turn in session.turns]
        with Session(self.runtime.db) as db:
            rows = {row.update_id: row for row in db.exec(select(ProcessedUpdate).where(
                ProcessedUpdate.channel == CHANNEL,
                ProcessedUpdate.update_id.in_(ids)))} if ids else {}  # type: ignore[attr-defined]
        erased = False
        for update_id, said in session.turns:
            row = rows.get(update_id)
            if row is None:
                continue
            turns.append(Turn(said, tuple(decode_replies(row.replies))))
            erased = row.user_id is None  # the person erased themselves (/slett) in this turn
        if erased:  # the next message starts as somebody new
            session.uid, session.turns, session.changed = None, [], True
        if not turns:
            turns.append(self._greeting(language))
        return turns

    def _greeting(self, language: str) -> Turn:
        return Turn("", greeting(translator(language)))

    def _support_offer(self, request: Request, language: str) -> Turn | None:
        """`/chat?stott=KI-n`: the board's "Støtt idéen" asks here, with one button. A merged
        idea's link offers the idea it was merged into; a reference that is no public idea
        (hidden, not yet published, unknown, malformed) is answered as `/status` answers it."""
        asked = request.query_params.get("stott")
        if asked is None:
            return None
        t = translator(language)
        number = parse_ref(asked)
        with Session(self.runtime.db) as db:
            idea = db.get(Idea, number) if number is not None else None
            merged_from = None
            for _ in range(10):  # a merge into a merged idea: follow on (never round forever)
                if idea is None or idea.merged_into_id is None:
                    break
                merged_from = merged_from or f"KI-{idea.id}"
                idea = db.get(Idea, idea.merged_into_id)
            if idea is None or not is_public(idea, self.settings.publish) \
                    or idea.merged_into_id is not None:
                shown = f"KI-{number}" if number is not None else asked.strip()[:20]
                return Turn("", (Reply(t("status.not_found", ref=shown)),))
            ref, title, number = f"KI-{idea.id}", idea.title, idea.id
        ask = t("web.support.ask", ref=ref, title=title)
        if merged_from:
            ask = t("web.support.merged", ref=merged_from, into=ref) + "\n" + ask
        return Turn("", (Reply(ask, (Choice(t("web.support.button", ref=ref),
                                            f"g:support:{number}"),)),))

    # --- GET /chat/hendelser ---------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """What chat.js asks every few seconds while the chat is open: notices that came for
        the person since (a status change, a merge, a benefit check), as log entries — 204
        when there are none. The notices wait in the outbox (channel `web`, the person's id
        as address), so any worker answers, whichever process wrote them."""
        session = self.sessions.load(request)
        if not session.uid:
            return self._no_store(Response(status_code=204))
        language = choose_language(request, session, self.settings.locale)  # no DB trip: the
        uid = session.uid  # page, opened just before, made the session's language the person's
        if not await asyncio.to_thread(self._has_notices, uid):  # a read: no writer slot
            return self._no_store(Response(status_code=204))
        notices = await self._run(lambda: self._take_notices(uid))
        if not notices:
            return self._no_store(Response(status_code=204))
        turns = [Turn("", tuple(notices))]
        choices = open_choices(turns)
        data: dict[str, Any] = {"log": str(self.renderer.log(turns, language))}
        if choices:  # e.g. the benefit check's Ja/Delvis/Nei
            data["controls"] = str(self.renderer.controls(choices, language, csrf=session.csrf,
                                                          turn=new_token()))
        return self._no_store(JSONResponse(data))

    def _take_notices(self, uid: str) -> list[Reply]:
        """The person's due web notices, marked sent as they are handed out (the outbox's
        pull delivery: bot/followups/dispatcher.py)."""
        return take_pending(self.runtime.db, self.settings, self.runtime.features.renderers,
                            CHANNEL, uid)

    def _has_notices(self, uid: str) -> bool:
        with Session(self.runtime.db) as db:
            return has_due_for_address(db, CHANNEL, uid, utcnow())

    def _no_store(self, response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- GET /mine/<token> ------------------------------------------------------------------

    async def mine(self, request: Request) -> Response:
        """The personal link: this browser becomes the same web citizen (their ideas, their
        chat), then the chat opens showing their ideas."""
        session = self.sessions.load(request)
        uid = self.sessions.read_personal(request.path_params["token"])
        known = await self._run(lambda: self._known(uid)) if uid else False
        if not known:
            return self._error(request, session, 404, "web.error.link", back="/chat",
                               text="web.mine.invalid")
        if uid and session.uid != uid:
            session.uid, session.turns, session.changed = uid, [], True
            session.lang = None  # the person's own language, not this browser's
            agree_language(session, await asyncio.to_thread(
                person_language, self.runtime.db, CHANNEL, uid))
        return self.respond(request, session, RedirectResponse("/chat", 303), public=False)

    def _error(self, request: Request, session: WebSession, status: int, key: str, *,
               back: str, text: str | None = None) -> Response:
        html = error_page(self.renderer, request, session, self.settings.locale, key,
                          back=back, text=text)
        return self.respond(request, session, html, public=False, status=status)

    def _known(self, uid: str | None) -> bool:
        with Session(self.runtime.db) as db:
            return db.exec(select(Person.id).where(
                Person.channel == CHANNEL, Person.channel_user_id == uid,
                Person.erased_at.is_(None))).first() is not None  # type: ignore[union-attr]

    # --- POST /chat ------------------------------------------------------------------------

    async def post(self, request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("Request too large", 413)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("Request too large", 413)
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return PlainTextResponse("Expected a form", 415)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                              max_num_fields=20).items()}
        session = self.sessions.load(request)
        token = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
        if not csrf_ok(session.csrf if request.cookies.get("kominn") else None, token):
            # No cookie came (blocked), or the page is older than the session: say so in
            # the person's language (chat.js posts the form plainly then, to show this).
            return self._error(request, session, 403, "web.error.csrf", back="/chat")
        language = await self._language(request, session)
        address = self.proxies.client(request)
        if not await asyncio.to_thread(self.per_address.allow, address):  # not the engine's queue
            return PlainTextResponse(translator(language)("web.too_many"), 429,
                                     headers={"Retry-After": "60"})
        turn = str(form.get("turn") or "")
        if not _TURN.match(turn):
            turn = new_token()
        uid = session.person()
        update_id = f"{uid[:16]}.{turn}"
        choice = str(form.get("choice") or "") or None
        location = _location(form) if not choice else None
        text = "" if choice or location else str(form.get("text") or "")[:4000]
        incoming = Incoming(channel=CHANNEL, user_id=uid, text=text, choice=choice,
                            location=location, update_id=update_id, language=language)

        def answer() -> tuple[str, list[Reply]]:  # one trip to the engine's thread
            label = self._label(session, choice) if choice else text
            replies = self.runtime.engine.handle(incoming)
            follow_person(self.runtime.db, session, CHANNEL)  # `/sprak` changes the page's too
            return label, replies

        said, replies = await self._run(answer)
        language = session.lang if session.lang in LANGUAGES else language
        if location is not None:
            said = translator(language)("web.chat.location_shared")
        session.add_turn(update_id, said)
        if "application/json" in request.headers.get("accept", ""):
            turns = [Turn(said, tuple(replies))]
            data: dict[str, Any] = {
                "lang": language,  # another than the page's: chat.js shows the page again
                "log": str(self.renderer.log(turns, language)),
                "controls": str(self.renderer.controls(
                    open_choices(turns) or (), language, csrf=session.csrf, turn=new_token())),
            }
            response: Response = JSONResponse(data)
        else:
            response = RedirectResponse("/chat", status_code=303)
        return self.respond(request, session, response, public=False)

    def _label(self, session: WebSession, payload: str) -> str:
        """What the pressed button said (from the last turn's answers), for the log."""
        if not session.turns:
            return ""
        with Session(self.runtime.db) as db:
            row = db.get(ProcessedUpdate, (CHANNEL, session.turns[-1][0]))
            replies = decode_replies(row.replies) if row is not None else []
        for reply in replies:
            for choice in reply.choices:
                if choice.payload == payload:
                    return choice.label
        return ""


def _location(form: dict[str, str]) -> Location | None:
    """A position the browser shared (geolocation, after the person agreed), if valid."""
    try:
        latitude, longitude = float(form["latitude"]), float(form["longitude"])
    except (KeyError, ValueError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Location(latitude, longitude)
