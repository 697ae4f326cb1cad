"""Texts: gettext catalogs (`bot/locale/<lang>/LC_MESSAGES/*.po`) read with Babel.

Message ids are stable keys (`submit.ask_title`); every language has its own catalog. Each
feature keeps its own domain file (citizen.po, slack.po, followups.po, …) so they can grow
independently. A key missing in nynorsk falls back to bokmål, then to the key itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from gettext import c2py
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("nb", "nn", "en")
DEFAULT_LANGUAGE = "nb"
_FALLBACK = {"nn": "nb", "en": "nb", "nb": None}


@cache
def catalog(language: str) -> dict[str, str]:
    """All messages of one language, merged over its domain files."""
    messages: dict[str, str] = {}
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as fp:
            for message in read_po(fp, locale=language):
                if message.id and message.string and not message.fuzzy \
                        and not message.pluralizable:
                    messages[str(message.id)] = str(message.string)
    return messages


@cache
def plural_catalog(language: str) -> tuple[Callable[[int], int], dict[str, tuple[str, ...]]]:
    """The plural forms of one language (`msgid`/`msgid_plural`/`msgstr[n]` entries, keyed by
    the msgid) and the catalog's `Plural-Forms` rule choosing the form for a count."""
    forms: dict[str, tuple[str, ...]] = {}
    rule: Callable[[int], int] = lambda n: int(n != 1)  # noqa: E731 - nb, nn and en
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as fp:
            po = read_po(fp, locale=language)
        for message in po:
            strings = message.string
            if message.pluralizable and not message.fuzzy and isinstance(strings, tuple | list) \
                    and all(strings):
                forms[str(message.id[0])] = tuple(str(s) for s in strings)
                rule = c2py(po.plural_expr)
    return rule, forms


class _SafeDict(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def normalize_language(code: str | None) -> str | None:
    """Platform language codes → ours: nb/no → nb, nn → nn, anything else → en."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].casefold()
    if base in ("nb", "no"):
        return "nb"
    if base == "nn":
        return "nn"
    return "en"


class Translator:
    """`t("key", name=value)` in one language; callable, so dialogs see a plain function."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, /, **params: object) -> str:
        text = lookup(self.language, key)
        if not params:
            return text
        return Formatter().vformat(text, (), _SafeDict(params))


    def plural(self, key: str, n: int, /, **params: object) -> str:
        """`ngettext`: the form of `key` for count `n` ("1 støttespiller", "3
        støttespillere"); `n` is also a parameter of the text."""
        lang: str | None = self.language
        while lang is not None:
            rule, forms = plural_catalog(lang)
            if key in forms:
                text = forms[key][min(rule(n), len(forms[key]) - 1)]
                return Formatter().vformat(text, (), _SafeDict({"n": n, **params}))
            lang = _FALLBACK.get(lang)
        return key


def lookup(language: str, key: str) -> str:
    lang: str | None = language
    while lang is not None:
        text = catalog(lang).get(key)
        if text is not None:
            return text
        lang = _FALLBACK.get(lang)
    return key


@lru_cache(maxsize=8)
def translator(language: str | None) -> Translator:
    return Translator(language or DEFAULT_LANGUAGE)
