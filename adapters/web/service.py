"""The web part of `kominn run`: the chat, the public board and the report page, with the
static files they need — always served, tokens or not.

Every response passes `respond()`: the security headers (a strict CSP), the session cookie
when it changed (Secure when the person came over https, as a trusted proxy tells), and the
cache policy: public pages `public, max-age=60` (varying by language), but never when a cookie
is being set; the chat `no-store`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from adapters.web.board import Board
from adapters.web.chat import EVENTS_PATH, Chat
from adapters.web.mail import ANSWER_PATH, STOP_PATH, MailLinks, MailPages, MailSender
from adapters.web.render import STATIC, Renderer, error_page
from adapters.web.report import ReportPage
from adapters.web.security import HEADERS, Proxies
from adapters.web.session import Sessions, WebSession, signing_secret
from adapters.web.widget import Widget
from bot.runtime import Runtime


def service(runtime: Runtime) -> WebService:
    """The web channel of `kominn run`."""
    return WebService(runtime)


class WebService:
    """A `kominn run` service with routes only (nothing to start: notices wait in the outbox
    and are shown when the person opens the chat, or asks while it is open)."""

    name = "web"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.proxies = Proxies(settings.trusted_proxies)
        self.sessions = Sessions(signing_secret(runtime.db, settings.web_secret))
        self.sender: MailSender | None = None
        self.renderer = Renderer(settings.zone)
        self.chat = Chat(runtime, self.renderer, self.sessions, self.proxies, self.respond)
        board = Board(runtime, self.renderer, self.sessions, self.respond)
        report = ReportPage(runtime, self.renderer, self.sessions, self.respond)
        widget = Widget(settings)
        secret = signing_secret(runtime.db, settings.web_secret)
        links = MailLinks(secret, (settings.public_url or url(runtime).removesuffix("/chat")))
        mail = MailPages(runtime, self.renderer, self.sessions, links, self.respond)
        if settings.smtp_url:  # follow-ups of web citizens who gave an address go by e-mail
            self.sender = MailSender(settings, links, runtime.db)
        self.routes: list[BaseRoute] = [
            Route("/", self.home, methods=["GET"]),
            Route("/chat", self.chat.page, methods=["GET"]),
            Route("/chat", self.chat.post, methods=["POST"]),
            Route(EVENTS_PATH, self.chat.events, methods=["GET"]),
            Route("/mine/{token}", self.chat.mine, methods=["GET"]),
            Route("/ideer", board.listing_page, methods=["GET"]),
            Route("/ideer/{ref}", board.one, methods=["GET"]),
            Route("/rapport", report.page, methods=["GET"]),
            Route("/widget.js", widget.script, methods=["GET"]),
            Route(STOP_PATH, mail.stop, methods=["GET", "POST"]),
            Route(ANSWER_PATH, mail.answer, methods=["GET", "POST"]),
            Route("/widget.json", widget.config, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Any address nobody serves: the site's own page, in the person's language (the
        composition root hands Starlette's 404s here)."""
        session = self.sessions.load(request)
        html = error_page(self.renderer, request, session, self.runtime.settings.locale,
                          "web.error.not_found", back="/ideer")
        return self.respond(request, session, html, public=True, status=404)

    async def home(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        return RedirectResponse("/chat", status_code=307)

    def respond(self, request: Request, session: WebSession, content: str | Response, *,
                public: bool, status: int = 200) -> Response:
        response = content if isinstance(content, Response) else HTMLResponse(content, status)
        if public and session.fresh and session.lang is None:
            session.changed = False  # a public page makes no session of its own
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if public and not session.changed:
            response.headers["Cache-Control"] = "public, max-age=60"
            response.headers["Vary"] = "Accept-Language, Cookie"
        else:
            response.headers["Cache-Control"] = "no-store" if not public else "private, max-age=60"
        self.sessions.save(response, session, secure=self.proxies.https(request))
        return response


def url(runtime: Runtime) -> str:
    """Where the web chat is: KOMINN_PUBLIC_URL, else the local server."""
    settings = runtime.settings
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/chat"
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.http_port}/chat"
