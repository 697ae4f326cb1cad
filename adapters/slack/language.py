"""Each person's language in the Slack app, cached per user.

Each person is answered in the language they chose with `/kominn språk` (stored on their
Person row; see `Choices`), else, only with SLACK_USE_USER_LOCALE, in their Slack language
(users.info's `locale`; see `Locales`), else in KOMINN_LOCALE: Slack's own interface has no
Norwegian, so most employees of a Norwegian municipality have an English Slack locale. It is
looked up after the ack. What goes to shared channels (SLACK_IDEAS_CHANNEL, the moderators'
channel) stays in KOMINN_LOCALE, the language of its many readers; a follow-up notice to one
person follows their stored choice (the dispatcher renders it in `Person.language`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import LANGUAGES, normalize_language

log = logging.getLogger("kominn.slack")

LOCALE_TTL = 3600.0  # a person's Slack language rarely changes; clicks should not cost API calls
LOCALE_FAILED_TTL = 300.0  # a failing users.info (e.g. missing_scope) is not retried every click
LOCALE_CACHE_SIZE = 5000  # bounded: one entry per recently active person
LOCALE_TIMEOUT = 1.5  # seconds; a modal's trigger id expires 3 s after the click


def slack_language(locale: str | None) -> str | None:
    """Slack's `user.locale` ("nb-NO", "nn-NO", "en-GB", …) → nb, nn or en; None for a language
    KomInn has no texts in (the caller falls back to KOMINN_LOCALE, not to English)."""
    base = (locale or "").replace("_", "-").split("-")[0].casefold()
    return normalize_language(base) if base in ("nb", "no", "nn", "en") else None


class _LanguageCache:
    """Per-user languages with an expiry and a size bound (least recently used goes first),
    shared by `Locales` and `Choices`."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size, self.clock = size, clock
        self._entries: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def get(self, user_id: str) -> tuple[bool, str | None]:
        """(known and not expired, the language)."""
        hit = self._entries.get(user_id)
        if hit is None or hit[0] <= self.clock():
            return False, None
        self._entries.move_to_end(user_id)
        return True, hit[1]

    def put(self, user_id: str, language: str | None, ttl: float) -> None:
        """Remember for `ttl` seconds; the least recently used entry goes when full."""
        self._entries[user_id] = (self.clock() + ttl, language)
        self._entries.move_to_end(user_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class Locales:
    """Each person's language from Slack's `users.info` (`include_locale`), cached per user
    with a TTL and a size bound, so a busy moderator does not cost a Web API call per click.
    Never raises: any failure means "unknown" (None), and the answer goes out anyway."""

    def __init__(self, client: AsyncWebClient, *, ttl: float = LOCALE_TTL,
                 failed_ttl: float = LOCALE_FAILED_TTL, size: int = LOCALE_CACHE_SIZE,
                 timeout: float = LOCALE_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl, self.failed_ttl, self.timeout = ttl, failed_ttl, timeout
        self._cache = _LanguageCache(size, clock)

    def cached(self, user_id: str) -> str | None:
        """The language if already known: for what must be said before the ack."""
        return self._cache.get(user_id)[1]

    async def language(self, user_id: str) -> str | None:
        """nb, nn, en, or None (unknown locale, users.info failed, no user)."""
        if not user_id:
            return None
        known, language = self._cache.get(user_id)
        if known:
            return language
        language, ttl = await self._ask(user_id)
        self._cache.put(user_id, language, ttl)
        return language

    async def _ask(self, user_id: str) -> tuple[str | None, float]:
        """users.info once; the answer and how long to trust it."""
        try:
            response = await asyncio.wait_for(
                self.client.users_info(user=user_id, include_locale=True), self.timeout)
        except Exception as exc:  # noqa: BLE001 - a language is never worth a failed answer
            error = (exc.response.get("error") if isinstance(exc, SlackApiError)
                     else type(exc).__name__)
            log.warning("users.info failed", extra={"event": "slack_locale_failed",
                                                    "status": error})
            return None, self.failed_ttl
        return slack_language((response.get("user") or {}).get("locale")), self.ttl


CHOICE_TTL = 60.0  # how soon other workers see a `/kominn språk` made on one of them
CHOICE_CACHE_SIZE = 5000

# Why a person is answered in their language (`/kominn språk` without an argument says it).
CHOSEN, FROM_SLACK, DEFAULT = "chosen", "slack", "default"


class Choices:
    """Each person's explicit language (`/kominn språk`, stored on their Person row), cached
    per user with a TTL and a size bound, so a click does not cost a database query.

    `remember()` updates this worker's cache at once; other workers (several `kominn run`
    processes) keep their cached answer, so they see a new choice within `ttl` seconds.
    Never raises: a failed lookup means "no choice" for that one answer (and is not cached)."""

    def __init__(self, load: Callable[[str], Awaitable[str | None]], *, ttl: float = CHOICE_TTL,
                 size: int = CHOICE_CACHE_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.load, self.ttl = load, ttl
        self._cache = _LanguageCache(size, clock)

    def cached(self, user_id: str) -> str | None:
        """The choice if known without a query: for what must be said before the ack."""
        return self._cache.get(user_id)[1]

    async def language(self, user_id: str) -> str | None:
        """nb, nn, en, or None (no choice made)."""
        if not user_id:
            return None
        known, language = self._cache.get(user_id)
        if known:
            return language
        try:
            stored = await self.load(user_id)
        except Exception as exc:  # noqa: BLE001 - a language is never worth a failed answer
            log.warning("language choice not read", extra={"event": "slack_choice_failed",
                                                           "status": type(exc).__name__})
            return None
        language = stored if stored in LANGUAGES else None
        self.remember(user_id, language)
        return language

    def remember(self, user_id: str, language: str | None) -> None:
        """A choice just made (or just read): this worker knows it without a query."""
        self._cache.put(user_id, language, self.ttl)

