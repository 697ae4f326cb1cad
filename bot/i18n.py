"""Texts: gettext catalogs (`bot/locale/<lang>/LC_MESSAGES/*.po`) read with Babel.

Message ids are stable keys (`submit.ask_title`); every language has its own catalog. Each
feature keeps its own domain file (citizen.po, slack.po, followups.po, …) so they can grow
independently. A key missing in nynorsk falls back to bokmål, then to the key itself.

Every count in a text is a plural entry (`msgid`/`msgid_plural`/`msgstr[0]`, `msgstr[1]`; the
form chosen by the catalog's `Plural-Forms`, or Babel's rule for the language) whose count is
the parameter `n`. A text with two counts is composed of pieces so each noun follows its own
count (`followups.digest_stale` takes its period from `followups.days`); tests/test_i18n.py
fails on a count without plural forms unless the text is a label or fraction it allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from gettext import c2py
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("nb", "nn", "en")
DEFAULT_LANGUAGE = "nb"
_FALLBACK = {"nn": "nb", "en": "nb", "nb": None}


@dataclass(frozen=True)
class _Catalog:
    """One language's messages, merged over its domain files: the single-form texts, the
    plural ones (`msgid`/`msgid_plural`/`msgstr[n]`, keyed by the msgid) and the
    `Plural-Forms` rule choosing a form for a count."""

    messages: dict[str, str]
    forms: dict[str, tuple[str, ...]]
    rule: Callable[[int], int]


def _one_or_more(n: int) -> int:
    return int(n != 1)  # nb, nn and en: one form for 1, another for everything else


@cache
def _load(language: str) -> _Catalog:
    """Every domain file of `language`, each parsed once for both kinds of message."""
    messages: dict[str, str] = {}
    forms: dict[str, tuple[str, ...]] = {}
    rule: Callable[[int], int] = _one_or_more
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as fp:
            po = read_po(fp, locale=language)
        for message in po:
            if not message.id or message.fuzzy:
                continue
            strings = message.string
            if message.pluralizable:
                if isinstance(strings, tuple | list) and strings and all(strings):
                    forms[str(message.id[0])] = tuple(str(s) for s in strings)
                    rule = c2py(po.plural_expr)
            elif strings:
                messages[str(message.id)] = str(strings)
    return _Catalog(messages, forms, rule)


def catalog(language: str) -> dict[str, str]:
    """All single-form messages of one language, merged over its domain files."""
    return _load(language).messages


def plural_catalog(language: str) -> tuple[Callable[[int], int], dict[str, tuple[str, ...]]]:
    """The plural forms of one language (keyed by the msgid) and the rule choosing the form
    for a count."""
    loaded = _load(language)
    return loaded.rule, loaded.forms


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
    """`t("key", name=value)` in one language; callable, so dialogs see a plain function.

    A key with plural forms takes its form from the parameter `n` (`ngettext`):
    `t("web.supporters", n=1)` is "1 støttespiller", with `n=3` "3 støttespillere". So the
    dialogs, which only know a callable, need nothing more to count correctly."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, /, **params: object) -> str:
        text = _text(self.language, key, params.get("n"))
        if not params:
            return text
        return Formatter().vformat(text, (), _SafeDict(params))

    def plural(self, key: str, n: int, /, **params: object) -> str:
        """`ngettext`: the form of `key` for count `n` ("1 støttespiller", "3
        støttespillere"); `n` is also a parameter of the text."""
        return self(key, **{**params, "n": n})


def _text(language: str, key: str, n: object) -> str:
    """The text of `key` in `language` (else its fallbacks, else the key itself); for a key
    with plural forms the form for count `n`."""
    lang: str | None = language
    while lang is not None:
        loaded = _load(lang)
        forms = loaded.forms.get(key)
        if forms is not None:
            index = _form(loaded.rule, n)
            return forms[index] if 0 <= index < len(forms) else forms[-1]
        text = loaded.messages.get(key)
        if text is not None:
            return text
        lang = _FALLBACK.get(lang)
    return key


def _form(rule: Callable[[int], int], n: object) -> int:
    """Which plural form a count takes: the catalog's rule for a whole number; -1 (the last
    form: CLDR's "other" for nb, nn and en) for a fraction (1,5 dager) or no count at all."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if isinstance(n, int) and not isinstance(n, bool):
        return rule(n)
    return -1


def lookup(language: str, key: str) -> str:
    """A single-form text (or, for a key with plural forms, its "many" form)."""
    return _text(language, key, None)


@lru_cache(maxsize=8)
def translator(language: str | None) -> Translator:
    return Translator(language or DEFAULT_LANGUAGE)
