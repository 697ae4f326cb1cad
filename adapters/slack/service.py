"""The Slack app for employees and moderators, on slack-bolt's AsyncApp.

HTTP mode: Bolt's Starlette handler at `POST /slack/events` on the shared server of
`kominn run` (signatures verified: forged or stale requests get 401). Socket Mode instead when
SLACK_APP_TOKEN is set. SLACK_API_URL points the Web API client elsewhere (GovSlack, tests).

Every listener acknowledges first and works afterwards: Bolt answers Slack as soon as `ack()`
is called (process_before_response is off), the database work then runs in a worker thread
and the answer travels through `respond()` (the response_url), `chat.postMessage`, or a view.
The adapter stays thin: decisions live in bot.staff, bot.triage and bot.moderation.

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
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.slack import blocks as kit
from bot.channels import DeliveryError
from bot.features import ideas_channel
from bot.i18n import LANGUAGES, Translator, normalize_language, translator
from bot.ideas import triage
from bot.ideas.book import IdeaNotFound
from bot.ideas.moderation import (
    BadRequest,
    Moderators,
    StatusChanged,
    log_refused,
    parse_set,
    targets,
)
from bot.runtime import Runtime
from bot.staff import desk
from dialogs.lifecycle import MoveNotAllowed, Status, parse_status
from dialogs.refs import format_ref, parse_ref
from dialogs.text import shorten
from dialogs.types import Incoming, Reply

log = logging.getLogger("kominn.slack")

CHANNEL = "slack"
EVENT_CHANNEL = "slack-event"  # processed_update rows of Events API deliveries
COMMAND = "/kominn"
PATH = "/slack/events"
T = TypeVar("T")

# Web API errors where sending again cannot help.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "user_not_found", "account_inactive",
    "invalid_auth", "not_authed", "token_revoked", "no_permission", "restricted_action",
    "cannot_dm_bot", "user_disabled", "msg_too_long", "no_text", "invalid_blocks",
    "invalid_arguments", "missing_scope"})


# A link in citizen text stays a visible URL; Slack must not unfold a preview of it.
NO_PREVIEWS = {"unfurl_links": False, "unfurl_media": False}


# --- each person's language -------------------------------------------------------------------

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
        self._cache.put(user_id, language, self.ttl)


# --- answering --------------------------------------------------------------------------------

@dataclass
class Answer:
    """Where the answer to one request goes: its response_url (ephemeral, may replace the
    message that was clicked), else a direct message from the app (App Home, modals)."""

    client: AsyncWebClient
    user_id: str
    t: Translator  # the person's language
    url: str | None = None

    async def send(self, blocks: Sequence[dict[str, Any]], *, replace: bool = False,
                   text: str | None = None) -> None:
        text = text or kit.fallback(blocks)
        if self.url:
            body: dict[str, Any] = {"text": text, "blocks": list(blocks),
                                    "response_type": "ephemeral", **NO_PREVIEWS}
            if replace:
                body["replace_original"] = True
            response = await AsyncWebhookClient(self.url).send_dict(body)
            if response.status_code >= 400:
                log.warning("response_url refused", extra={"event": "slack_respond_failed",
                                                           "status": response.status_code})
            return
        await self.client.chat_postMessage(channel=self.user_id, text=text, blocks=list(blocks),
                                           **NO_PREVIEWS)

    async def say(self, text: str, *, replace: bool = False) -> None:
        await self.send(kit.sections(text), replace=replace, text=text)


# --- /kominn sub-commands ---------------------------------------------------------------------

@dataclass
class CommandContext:
    bot: SlackBot
    user_id: str
    channel_id: str
    args: list[str]
    trigger_id: str
    response_url: str | None
    client: AsyncWebClient
    t: Translator  # the person's language

    @property
    def answer(self) -> Answer:
        return Answer(self.client, self.user_id, self.t, self.response_url)

    @property
    def rest(self) -> str:
        return " ".join(self.args)


Handler = Callable[[CommandContext], Awaitable[None]]


@dataclass(frozen=True)
class Subcommand:
    handler: Handler
    moderator_only: bool = False


# `/kominn <word> …` → handler. Later features add theirs (e.g. "konkurranse").
SUBCOMMANDS: dict[str, Subcommand] = {}
# Later features add listeners of their own to every SlackBot's Bolt app: fn(bot).
LISTENERS: list[Callable[[SlackBot], None]] = []
ALIASES = {"søk": "search", "sok": "search", "liste": "list", "new": "ny", "hjelp": "help",
           "rapport": "report", "sett": "set", "sprak": "språk", "language": "språk",
           "lang": "språk"}


def subcommand(name: str, *, moderator_only: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        SUBCOMMANDS[name] = Subcommand(handler, moderator_only)
        return handler

    return register


@subcommand("help")
async def _help(ctx: CommandContext) -> None:
    moderator = await ctx.bot.moderators.is_moderator(ctx.user_id)
    await ctx.answer.send(kit.help_blocks(ctx.t, moderator=moderator))


@subcommand("status")
async def _status(ctx: CommandContext) -> None:
    if not ctx.args or parse_ref(ctx.args[0]) is None:
        await ctx.answer.say(ctx.t("slack.status_usage"))
        return
    await ctx.bot.show_status(ctx.answer, format_ref(parse_ref(ctx.args[0]) or 0))


@subcommand("search")
async def _search(ctx: CommandContext) -> None:
    bot = ctx.bot
    if not ctx.rest.strip():
        await ctx.answer.say(ctx.t("slack.search_usage"))
        return
    lines = await bot.db(desk.search, bot.runtime.db, bot.runtime.index, ctx.rest)
    await ctx.answer.send(kit.search_blocks(ctx.rest, lines, ctx.t, bot.zone))


@subcommand("list")
async def _list(ctx: CommandContext) -> None:
    bot = ctx.bot
    status: Status | None = None
    words = list(ctx.args)
    if words:
        try:
            status = parse_status(words[0])
            words.pop(0)
        except ValueError:
            status = None
    area = None
    if words:
        area = desk.match_area(bot.settings, " ".join(words))
        if area is None:
            await ctx.answer.say(ctx.t("slack.unknown_area", area=kit.esc(" ".join(words)),
                                       areas=kit.esc(", ".join(bot.settings.focus_areas))))
            return
    await ctx.answer.send(await bot.list_page(ctx.t, status, area, 0))


@subcommand("ny")
async def _new(ctx: CommandContext) -> None:
    await ctx.bot.open_new_idea(ctx.client, ctx.trigger_id, ctx.answer)


@subcommand("triage", moderator_only=True)
async def _triage(ctx: CommandContext) -> None:
    await ctx.bot.show_next_pair(ctx.answer)


@subcommand("set", moderator_only=True)
async def _set(ctx: CommandContext) -> None:
    bot = ctx.bot
    try:
        request = parse_set(ctx.args)
    except BadRequest as exc:
        await ctx.answer.say(ctx.t(exc.key, **exc.params))
        return
    await bot.apply_move(ctx.answer, ctx.user_id, request, expected=None, replace=False)


@subcommand("report")
async def _report(ctx: CommandContext) -> None:
    bot = ctx.bot
    figures = await bot.db(desk.report, bot.runtime.db, bot.settings)
    await ctx.answer.send(kit.report_blocks(figures, ctx.t))


@subcommand("språk")
async def _language(ctx: CommandContext) -> None:
    """`/kominn språk nb|nn|en` stores the person's choice; without one, says the current."""
    bot = ctx.bot
    if not ctx.args:
        language, why = await bot.language_for(ctx.user_id)
        await ctx.answer.say(ctx.t(f"slack.language.current_{why}",
                                   language=ctx.t(f"slack.language.name.{language}"))
                             + "\n" + ctx.t("slack.language.usage"))
        return
    wanted = ctx.args[0].casefold() if len(ctx.args) == 1 else None
    if wanted not in LANGUAGES:
        await ctx.answer.say(ctx.t("slack.language.unknown",
                                   value=kit.esc(shorten(ctx.rest, 30))))
        return
    await bot.choose_language(ctx.user_id, wanted)
    t = translator(wanted)
    await Answer(ctx.client, ctx.user_id, t, ctx.response_url).say(
        t("slack.language.chosen", language=t(f"slack.language.name.{wanted}")))


# --- the app ----------------------------------------------------------------------------------

class SlackBot:
    """The Bolt app with KomInn's listeners, and the helpers they share."""

    def __init__(self, runtime: Runtime, client: AsyncWebClient, *,
                 signing_secret: str | None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        # KOMINN_LOCALE: shared channels, and whoever's Slack language KomInn has no texts in.
        self.t = translator(self.settings.locale)
        self.zone = self.settings.zone
        self.client = client
        self.locales = Locales(client)
        self.choices = Choices(lambda user_id: self.db(desk.slack_language, runtime.db, user_id))
        bolt_log = logging.getLogger("slack_bolt.kominn")
        if not any(isinstance(f, _SameToken) for f in bolt_log.filters):
            bolt_log.addFilter(_SameToken())
        self.bolt = AsyncApp(
            client=client, signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            process_before_response=False, raise_error_for_unhandled_request=False,
            logger=bolt_log)
        self.moderators = Moderators(self.settings.slack_moderators,
                                     self.settings.slack_moderator_group, self._group_members)
        _register(self)
        for extend in LISTENERS:
            extend(self)

    async def _group_members(self, group: str) -> list[str]:
        response = await self.client.usergroups_users_list(usergroup=group)
        return list(response.get("users") or [])

    async def language_for(self, user_id: str) -> tuple[str, str]:
        """The person's language and why (CHOSEN, FROM_SLACK, DEFAULT): their `/kominn språk`
        choice, else (only with SLACK_USE_USER_LOCALE) their Slack locale, else KOMINN_LOCALE.
        At most a query a minute and a Web API call an hour per person: call after ack."""
        chosen = await self.choices.language(user_id)
        if chosen:
            return chosen, CHOSEN
        if self.settings.slack_use_user_locale:
            from_slack = await self.locales.language(user_id)
            if from_slack:
                return from_slack, FROM_SLACK
        return self.settings.locale, DEFAULT

    async def translator_for(self, user_id: str) -> Translator:
        """The person's own language (`language_for`): call after ack."""
        return translator((await self.language_for(user_id))[0])

    async def choose_language(self, user_id: str, language: str) -> None:
        """Store a person's explicit choice; this worker's cache knows it at once."""
        await self.db(desk.choose_slack_language, self.runtime.db, user_id, language)
        self.choices.remember(user_id, language)

    async def answer(self, client: AsyncWebClient, user_id: str, url: str | None) -> Answer:
        """Where and in which language to answer one person: call after ack."""
        return Answer(client, user_id, await self.translator_for(user_id), url)

    async def answer_for(self, body: dict[str, Any], client: AsyncWebClient) -> Answer:
        """`answer()` for an interaction payload (button, App Home action)."""
        return await self.answer(client, _user(body), body.get("response_url"))

    def modal_translator(self, meta: dict[str, Any], user_id: str) -> Translator:
        """The language a modal was opened in (its private_metadata keeps it) for what is said
        in the ack itself (validation errors), where no Web API call may delay the answer."""
        language = meta.get("lang")
        if language not in LANGUAGES:
            language = self.choices.cached(user_id)
        if language is None and self.settings.slack_use_user_locale:
            language = self.locales.cached(user_id)
        return translator(language) if language else self.t

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking database work off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def allowed(self, user_id: str, action: str, answer: Answer) -> bool:
        """Moderators pass; anyone else is told politely, and the attempt is logged."""
        if await self.moderators.is_moderator(user_id):
            return True
        log_refused(CHANNEL, user_id, action)
        await answer.say(answer.t("slack.not_moderator"))
        return False

    # --- commands ----------------------------------------------------------------------------

    async def run_command(self, ctx: CommandContext, text: str) -> None:
        words = text.split()
        name = ALIASES.get(words[0].casefold(), words[0].casefold()) if words else "help"
        sub = SUBCOMMANDS.get(name)
        if sub is None:
            moderator = await self.moderators.is_moderator(ctx.user_id)
            await ctx.answer.send(kit.help_blocks(ctx.t, moderator=moderator, unknown=words[0]))
            return
        ctx.args = words[1:]
        if sub.moderator_only and not await self.allowed(ctx.user_id, name, ctx.answer):
            return
        log.info("slack command", extra={"event": "slack_command", "kind": name})
        await sub.handler(ctx)

    async def show_status(self, answer: Answer, ref: str, *, replace: bool = False,
                          notice: str | None = None) -> None:
        detail = await self.db(desk.status_detail, self.runtime, ref)
        if detail is None:
            await answer.say(answer.t("slack.not_found", ref=ref), replace=replace)
            return
        moderator = await self.moderators.is_moderator(answer.user_id)
        moves = targets(Status(detail.status)) if moderator else []
        await answer.send(kit.status_blocks(detail, answer.t, self.zone, moves=moves,
                                            notice=notice, moderator=moderator),
                          replace=replace)

    async def list_page(self, t: Translator, status: Status | None, area: str | None,
                        offset: int) -> list[dict[str, Any]]:
        lines, total = await self.db(desk.list_ideas, self.runtime.db, status, area, offset)
        filters = " · ".join(x for x in (kit.status_label(t, status.value) if status
                                         else "", area or "") if x) or t("slack.list.all")
        more = None
        if offset + len(lines) < total:
            more = {"s": status.value if status else None, "a": area,
                    "o": offset + len(lines)}
        return kit.list_blocks(lines, total, offset, filters, more, t, self.zone)

    async def open_new_idea(self, client: AsyncWebClient, trigger_id: str,
                            answer: Answer) -> None:
        """The submission modal; opened at once, the trigger id lives three seconds."""
        meta = json.dumps({"url": answer.url, "lang": answer.t.language})
        try:
            await client.views_open(trigger_id=trigger_id, view=kit.new_idea_modal(
                answer.t, self.settings.focus_areas, meta))
        except SlackApiError as exc:
            log.warning("views.open failed", extra={"event": "slack_views_open_failed",
                                                    "status": exc.response.get("error")})
            await answer.say(answer.t("slack.modal_failed"))

    # --- lifecycle moves ---------------------------------------------------------------------

    async def apply_move(self, answer: Answer, user_id: str, request: Any, *,
                         expected: Status | None, replace: bool) -> None:
        t = answer.t
        try:
            change = await self.db(desk.set_status, self.runtime,
                                   request, by=f"slack:{user_id}", expected=expected)
        except IdeaNotFound as exc:
            named = re.search(r"KI-\d+", str(exc))
            await answer.say(t("slack.not_found", ref=named.group(0) if named else request.ref))
            return
        except StatusChanged as exc:
            await self.show_status(answer, request.ref, replace=replace, notice=t(
                "slack.status_changed", ref=exc.ref, status=kit.status_label(t, exc.status)))
            return
        except MoveNotAllowed:
            await answer.say(t("slack.move_not_allowed", ref=request.ref,
                               status=kit.status_label(t, request.target.value)))
            return
        notice = t("slack.moved", ref=request.ref, old=kit.status_label(t, change.from_status),
                   new=kit.status_label(t, change.to_status))
        await self.show_status(answer, request.ref, replace=replace, notice=notice)

    # --- triage ------------------------------------------------------------------------------

    async def show_next_pair(self, answer: Answer, *, after: int | None = None,
                             replace: bool = False) -> None:
        pair = await self.db(triage.show_next, self.runtime.db, after)
        if pair is None:
            await answer.say(answer.t("slack.triage.empty"), replace=replace)
            return
        pending = await self.db(triage.pending_count, self.runtime.db)
        await answer.send(kit.pair_blocks(pair, answer.t, self.zone, pending), replace=replace)

    async def decide(self, answer: Answer, user_id: str, pair_id: int,
                     decision: triage.Decision, keep: int | None = None) -> None:
        try:
            pair = await self.db(desk.decide_pair, self.runtime,
                                 pair_id, decision, by=f"slack:{user_id}", keep=keep)
        except triage.AlreadyDecided as exc:
            await answer.send(kit.decided_blocks(exc.pair, answer.t, self.zone, already=True),
                              replace=True)
            return
        except triage.PairNotFound:
            await answer.say(answer.t("slack.triage.gone"), replace=True)
            return
        except MoveNotAllowed:
            await answer.say(answer.t("slack.triage.cannot_merge"))
            return
        await answer.send(kit.decided_blocks(pair, answer.t, self.zone), replace=True)
        await self.show_next_pair(answer)

    # --- the dialog engine (buttons of follow-ups) -------------------------------------------

    async def engine_choice(self, answer: Answer, payload: str, update_id: str) -> None:
        """A Slack user pressed a button the engine made: handled once like any channel's.
        The person's language is the engine's platform hint, as Telegram's language_code is:
        their choice or Slack locale, never KOMINN_LOCALE (the engine would store it as theirs).
        """
        language, why = await self.language_for(answer.user_id)
        incoming = Incoming(channel=CHANNEL, user_id=answer.user_id, choice=payload,
                            update_id=update_id, chat_id=answer.user_id,
                            language=None if why == DEFAULT else language)
        replies = await self.db(self.runtime.engine.handle, incoming)
        for reply in replies:
            await answer.send(kit.reply_blocks(reply), text=kit.esc(reply.text)[:3000] or " ")
        await self.db(self.runtime.engine.mark_delivered, CHANNEL, update_id)

    # --- App Home ----------------------------------------------------------------------------

    async def publish_home(self, client: AsyncWebClient, user_id: str) -> None:
        stats = await self.db(desk.home_stats, self.runtime.db)
        moderator = await self.moderators.is_moderator(user_id)
        t = await self.translator_for(user_id)
        await client.views_publish(user_id=user_id, view=kit.home_view(
            stats, t, self.zone, moderator=moderator))


class _SameToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that our client (built
    from the same setting, with SLACK_API_URL) wins over it: true, and not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or body.get("user_id") or "")


def view_meta(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted modal's private_metadata (JSON we wrote when opening it); {} if unreadable."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _guarded(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Background work after the ack: an unexpected error is logged (no message text) and
    the person gets a short apology instead of silence."""
    async def run(bot: SlackBot, answer: Answer, *args: Any) -> None:
        try:
            await fn(bot, answer, *args)
        except Exception:  # noqa: BLE001 - last line of defence for one request
            log.exception("slack request failed", extra={"event": "slack_error"})
            try:
                await answer.say(answer.t("slack.error"))
            except Exception:  # noqa: BLE001 - nothing more we can do
                log.warning("could not apologise", extra={"event": "slack_error"})

    return run


# --- listeners --------------------------------------------------------------------------------

def _register(bot: SlackBot) -> None:
    app = bot.bolt

    @app.command(COMMAND)
    async def on_command(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user_id = str(command.get("user_id") or "")
        ctx = CommandContext(bot, user_id, str(command.get("channel_id") or ""), [],
                             str(command.get("trigger_id") or ""),
                             command.get("response_url"), client,
                             await bot.translator_for(user_id))
        await _guarded(lambda b, a, c, text: b.run_command(c, text))(
            bot, ctx.answer, ctx, str(command.get("text") or ""))

    @app.action(kit.SHOW)
    async def on_show(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        number = parse_ref(str(action.get("value") or ""))
        if number is not None:
            await _guarded(lambda b, a: b.show_status(a, format_ref(number)))(
                bot, await bot.answer_for(body, client))

    @app.action(re.compile(f"^{kit.REPLY}\\d+$"))
    async def on_reply(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       client: AsyncWebClient) -> None:
        """A button of a neutral Reply (a follow-up sent through the outbox): "status:KI-n"
        opens the status view; anything else is the dialog engine's (benefit check, …)."""
        await ack()
        value = str(action.get("value") or "")
        answer = await bot.answer_for(body, client)
        if value.startswith(ideas_channel.STATUS_PAYLOAD):
            number = parse_ref(value.removeprefix(ideas_channel.STATUS_PAYLOAD))
            if number is not None:
                await _guarded(lambda b, a: b.show_status(a, format_ref(number)))(bot, answer)
            return
        update_id = f"action:{answer.user_id}:{action.get('action_ts') or ''}"
        await _guarded(lambda b, a: b.engine_choice(a, value, update_id))(bot, answer)

    @app.action(re.compile(f"^{kit.LINK}\\d+$"))
    async def on_link(ack: Any) -> None:
        await ack()  # a URL button: Slack opens the link, we only acknowledge

    @app.action(kit.LIST_MORE)
    async def on_more(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        try:
            more = json.loads(action.get("value") or "{}")
            status = Status(more["s"]) if more.get("s") else None
            offset = max(0, int(more.get("o") or 0))
        except (ValueError, KeyError, TypeError):
            return

        async def page(b: SlackBot, answer: Answer) -> None:
            await answer.send(await b.list_page(answer.t, status, more.get("a"), offset),
                              replace=True)

        await _guarded(page)(bot, await bot.answer_for(body, client))

    @app.action(re.compile(f"^{kit.MOVE}"))
    async def on_move(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        ref, _, rest = str(action.get("value") or "").partition("|")
        target, _, current = rest.partition("|")
        if not await bot.allowed(answer.user_id, "move", answer):
            return
        meta = json.dumps({"ref": ref, "to": target, "from": current, "url": answer.url,
                           "lang": answer.t.language})
        try:
            await client.views_open(trigger_id=body.get("trigger_id", ""),
                                    view=kit.move_modal(answer.t, ref, current, target, meta))
        except SlackApiError as exc:
            log.warning("views.open failed", extra={"event": "slack_views_open_failed",
                                                    "status": exc.response.get("error")})
            await answer.say(answer.t("slack.modal_failed"))

    @app.view(kit.MOVE_VIEW)
    async def on_move_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                             client: AsyncWebClient) -> None:
        note = _value(view, "note")
        meta = view_meta(view)
        t = bot.modal_translator(meta, _user(body))
        try:
            target, current = Status(meta["to"]), Status(meta["from"])
            request = parse_set([meta["ref"], target.value, *([note] if note else [])])
        except BadRequest as exc:
            await ack(response_action="errors", errors={"note": t(exc.key, **exc.params)})
            return
        except (ValueError, KeyError, TypeError):
            await ack()
            return
        await ack()
        answer = Answer(client, _user(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "move", answer):
            return
        await _guarded(lambda b, a: b.apply_move(a, a.user_id, request, expected=current,
                                                 replace=True))(bot, answer)

    @app.action(kit.TRIAGE_MERGE)
    @app.action(kit.TRIAGE_MERGE_OTHER)
    @app.action(kit.TRIAGE_DISTINCT)
    @app.action(kit.TRIAGE_SKIP)
    async def on_triage(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        kind = str(action.get("action_id"))
        pair_text, _, keep_text = str(action.get("value") or "").partition(":")
        if not pair_text.isdigit():
            return
        if not await bot.allowed(answer.user_id, "triage", answer):
            return
        pair_id = int(pair_text)
        if kind == kit.TRIAGE_SKIP:
            await _guarded(lambda b, a: b.show_next_pair(a, after=pair_id, replace=True))(
                bot, answer)
            return
        decision: triage.Decision = (triage.NOT_DUPLICATE if kind == kit.TRIAGE_DISTINCT
                                     else triage.MERGED)
        keep = int(keep_text) if keep_text.isdigit() else None
        await _guarded(lambda b, a: b.decide(a, a.user_id, pair_id, decision, keep))(
            bot, answer)

    @app.action(kit.HOME_NEW)
    async def on_home_new(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await bot.open_new_idea(client, body.get("trigger_id", ""),
                                await bot.answer_for(body, client))

    @app.action(kit.HOME_TRIAGE)
    async def on_home_triage(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        if await bot.allowed(answer.user_id, "triage", answer):
            await _guarded(lambda b, a: b.show_next_pair(a))(bot, answer)

    @app.view(kit.NEW_IDEA_VIEW)
    async def on_new_idea(ack: Any, body: dict[str, Any], view: dict[str, Any],
                          client: AsyncWebClient) -> None:
        values = view.get("state", {}).get("values", {})
        meta = view_meta(view)
        t = bot.modal_translator(meta, _user(body))
        follow = values.get("follow_up", {}).get("value", {}).get("selected_options") or []
        new, problems = desk.check_new_idea(
            _user(body), _value(view, "title"), _value(view, "description"),
            (values.get("area", {}).get("value", {}).get("selected_option") or {}).get("value"),
            _value(view, "place"), bool(follow), bot.settings.focus_areas)
        if problems:
            await ack(response_action="errors", errors={
                p.field: t(p.key, **p.params) for p in problems})
            return
        await ack()
        assert new is not None
        answer = Answer(client, new.user_id, t, meta.get("url"))

        async def submit(b: SlackBot, a: Answer) -> None:
            ref = await b.db(desk.submit_idea, b.runtime, new)
            await a.say(a.t("slack.new_idea_receipt", ref=ref))

        await _guarded(submit)(bot, answer)

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], body: dict[str, Any],
                      client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        if not await bot.db(desk.claim_event, bot.runtime.db, EVENT_CHANNEL,
                            str(body.get("event_id") or "")):
            log.info("slack event already handled", extra={"event": "slack_event_duplicate"})
            return
        try:
            await bot.publish_home(client, str(event["user"]))
        except Exception:  # noqa: BLE001 - the next opening tries again
            log.exception("app home not published", extra={"event": "slack_error"})

    @app.error
    async def on_error(error: Exception) -> None:
        log.error("slack listener failed", extra={"event": "slack_error",
                                                  "status": type(error).__name__})


def _value(view: dict[str, Any], block_id: str) -> str | None:
    """A plain-text input's value from a submitted view."""
    return ((view.get("state", {}).get("values", {}).get(block_id) or {}).get("value")
            or {}).get("value")


# --- sender (outbox deliveries) ---------------------------------------------------------------

class SlackSender:
    """bot.channels.Sender for "slack": address is a channel id (or a user id for a DM)."""

    channel = CHANNEL

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        try:
            for reply in replies:
                if reply.text or reply.choices or reply.links:
                    blocks = kit.reply_blocks(reply)
                    await self.client.chat_postMessage(channel=address, blocks=blocks,
                                                       text=kit.esc(reply.text)[:3000] or " ",
                                                       **NO_PREVIEWS)
                if reply.document is not None:
                    await self._upload(address, reply)
        except SlackApiError as exc:
            raise _delivery_error(exc) from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}") from None

    async def _upload(self, address: str, reply: Reply) -> None:
        assert reply.document is not None
        channel = address
        if address[:1] in ("U", "W"):  # a person: files need the DM's conversation id
            opened = await self.client.conversations_open(users=address)
            channel = opened["channel"]["id"]
        await self.client.files_upload_v2(channel=channel, content=reply.document.content,
                                          filename=reply.document.filename)


def _delivery_error(exc: SlackApiError) -> DeliveryError:
    error = str(exc.response.get("error") or "unknown")
    if exc.response.status_code == 429 or error == "ratelimited":
        retry = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after") or "30"
        return DeliveryError(f"slack: {error}", retry_after=float(retry))
    return DeliveryError(f"slack: {error}", permanent=error in PERMANENT_ERRORS)


# --- the service of `kominn run` --------------------------------------------------------------

class SlackService:
    """Slack in `kominn run`: the HTTP route (or a Socket Mode connection) and the sender."""

    name = "slack"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.settings = settings
        self.client = AsyncWebClient(token=settings.slack_bot_token,
                                     base_url=settings.slack_api_url)
        self.socket_mode = bool(settings.slack_app_token)
        self.bot = SlackBot(runtime, self.client, signing_secret=settings.slack_signing_secret)
        self.sender = SlackSender(self.client)
        self.socket_handler: Any = None
        self.routes: list[BaseRoute] = [] if self.socket_mode else [
            Route(PATH, self._endpoint, methods=["POST"])]
        self._http = AsyncSlackRequestHandler(self.bot.bolt)

    async def _endpoint(self, request: Request) -> Response:
        return await self._http.handle(request)

    async def start(self) -> None:
        if self.socket_mode:
            # Built here, not in __init__: the Socket Mode client needs the running loop.
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self.socket_handler = AsyncSocketModeHandler(
                self.bot.bolt, self.settings.slack_app_token, web_client=AsyncWebClient(
                    base_url=self.settings.slack_api_url))
            await self.socket_handler.connect_async()
        log.info("slack ready", extra={"event": "slack_ready",
                                       "kind": "socket" if self.socket_mode else "http"})

    async def stop(self) -> None:
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
            self.socket_handler = None


def service(runtime: Runtime) -> SlackService:
    return SlackService(runtime)


from adapters.slack import campaigns  # noqa: E402,F401  (competitions, collaboration)
