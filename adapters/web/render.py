"""HTML from templates (Jinja2, autoescaped: nothing a citizen typed becomes markup), and a
`Reply` with its `Choice`s as the chat shows them: the text (line breaks kept by CSS), links,
a document inline, and the choices of the latest answer as real `<button>`s of a form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request

from adapters.web.session import WebSession, choose_language
from bot.i18n import translator
from dialogs.types import Choice, Reply

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
_BABEL_LOCALE = {"nb": "nb_NO", "nn": "nn_NO", "en": "en_GB"}


@dataclass(frozen=True)
class Turn:
    """One exchange in the chat's log: what the person said (empty for a page opened with
    nothing said), and the bot's answers."""

    said: str
    replies: tuple[Reply, ...]


@cache
def _templates() -> Environment:
    """The templates, compiled once per process (every web service of the process shares
    them): not by the first request of each page after a start, which cost a board page's
    first request ~100 ms more than the next."""
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


class Renderer:
    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.env = _templates()
        for language in _BABEL_LOCALE:  # Babel's locale data loaded now, as the templates
            self.date(datetime.now(self.zone), language)

    def page(self, template: str, language: str, **context: Any) -> str:
        return self.env.get_template(template).render(**self.common(language), **context)

    def common(self, language: str) -> dict[str, Any]:
        t = translator(language)
        return {"lang": language, "t": t, "plural": t.plural,
                "date": lambda value: self.date(value, language)}

    def date(self, value: datetime, language: str) -> str:
        return format_date(value.astimezone(self.zone).date(), "long",
                           locale=_BABEL_LOCALE.get(language, "nb_NO"))

    def log(self, turns: Sequence[Turn], language: str) -> Markup:
        """The conversation's entries (the inside of the `role="log"` element)."""
        return Markup(self.env.get_template("_log.html").render(
            **self.common(language), turns=turns))

    def controls(self, choices: Sequence[Choice], language: str, *, csrf: str,
                 turn: str) -> Markup:
        """The bot's open choices as buttons, and the labelled text field with Send."""
        asks_place = any(c.payload.endswith(":place:skip") for c in choices)
        # A step that asks for typed text and offers only to skip it (the place, the e-mail
        # address, a benefit comment): chat.js puts the focus in the text field, not on
        # "Hopp over", so what the person types next is their answer.
        typed = any(c.payload.endswith(":skip") for c in choices)
        return Markup(self.env.get_template("_controls.html").render(
            **self.common(language), choices=choices, csrf=csrf, turn=turn,
            asks_place=asks_place, typed=typed))


def error_page(renderer: Renderer, request: Request, session: WebSession, default: str,
               key: str, *, back: str, text: str | None = None) -> str:
    """A small page for a refused request (an invalid link, a failed CSRF check, an unknown
    address) in the person's language, with the site's header and a link on: `key.title`
    and `key.text` (or `text`) from the web catalog."""
    language = choose_language(request, session, default)
    t = translator(language)
    label = t("web.error.to_chat") if back == "/chat" else t("web.idea.back")
    return renderer.page("error.html", language, page="", heading=t(f"{key}.title"),
                         text=t(text or f"{key}.text"), back=back, back_label=label)


def open_choices(turns: Sequence[Turn]) -> tuple[Choice, ...]:
    """The buttons of the latest answer that has any, in the latest turn."""
    if not turns:
        return ()
    for reply in reversed(turns[-1].replies):
        if reply.choices:
            return reply.choices
    return ()


