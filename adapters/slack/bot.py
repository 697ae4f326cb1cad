"""The Slack app itself: Bolt's AsyncApp and what every listener shares.

Built once per Slack service (`service.py`), which then registers the listeners on it
(`listeners.register`). What listeners share lives here: the person's language, where an answer
goes, the moderator check, database work off the event loop, and the views several listeners
show (an idea's status, a list page, the next triage pair, App Home). The adapter stays thin:
decisions live in bot.staff, bot.ideas.triage and bot.ideas.moderation.

Every listener acknowledges first and works afterwards: Bolt answers Slack as soon as `ack()`
is called (process_before_response is off), the database work then runs in a worker thread
and the answer travels through `respond()` (the response_url), `chat.postMessage`, or a view.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack.answer import Answer
from adapters.slack.language import CHOSEN, DEFAULT, FROM_SLACK, Choices, Locales
from adapters.slack.payload import user_of
from bot.channels import STAFF_CHANNEL
from bot.i18n import LANGUAGES, Translator, translator
from bot.ideas import triage
from bot.ideas.book import IdeaNotFound
from bot.ideas.moderation import Moderators, SetRequest, StatusChanged, log_refused, targets
from bot.runtime import Runtime
from bot.staff import desk
from dialogs.lifecycle import MoveNotAllowed, Status
from dialogs.types import Incoming

log = logging.getLogger("kominn.slack")

T = TypeVar("T")


class SlackBot:
    """The Bolt app with KomInn's listeners, and the helpers they share."""

    def __init__(self, runtime: Runtime, client: AsyncWebClient, *,
                 signing_secret: str | None,
                 sections: kit.StatusSections = kit.CORE_SECTIONS) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        # KOMINN_LOCALE: shared channels, and whoever's Slack language KomInn has no texts in.
        self.t = translator(self.settings.locale)
        self.zone = self.settings.zone
        self.client = client
        self.sections = sections  # the status view's parts (see `listeners.status_sections`)
        self.locales = Locales(client)
        self.choices = Choices(lambda user_id: self.db(desk.slack_language, runtime.db, user_id))
        self.bolt = AsyncApp(
            client=client, signing_secret=signing_secret or "",
            request_verification_enabled=bool(signing_secret),
            process_before_response=False, raise_error_for_unhandled_request=False,
            logger=_bolt_logger())
        self.moderators = Moderators(self.settings.slack_moderators,
                                     self.settings.slack_moderator_group, self._group_members)

    async def _group_members(self, group: str) -> list[str]:
        response = await self.client.usergroups_users_list(usergroup=group)
        return list(response.get("users") or [])

    # --- each person's language --------------------------------------------------------------

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

    def modal_translator(self, meta: dict[str, Any], user_id: str) -> Translator:
        """The language a modal was opened in (its private_metadata keeps it) for what is said
        in the ack itself (validation errors), where no Web API call may delay the answer."""
        language = meta.get("lang")
        if language not in LANGUAGES:
            language = self.choices.cached(user_id)
        if language is None and self.settings.slack_use_user_locale:
            language = self.locales.cached(user_id)
        return translator(language) if language else self.t

    # --- answering ---------------------------------------------------------------------------

    async def answer(self, client: AsyncWebClient, user_id: str, url: str | None) -> Answer:
        """Where and in which language to answer one person: call after ack."""
        return Answer(client, user_id, await self.translator_for(user_id), url)

    async def answer_for(self, body: dict[str, Any], client: AsyncWebClient) -> Answer:
        """`answer()` for an interaction payload (button, App Home action)."""
        return await self.answer(client, user_of(body), body.get("response_url"))

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking database work off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def allowed(self, user_id: str, action: str, answer: Answer) -> bool:
        """Moderators pass; anyone else is told politely, and the attempt is logged."""
        if await self.moderators.is_moderator(user_id):
            return True
        log_refused(STAFF_CHANNEL, user_id, action)
        await answer.say(answer.t("slack.not_moderator"))
        return False

    async def open_view(self, client: AsyncWebClient, trigger_id: str, answer: Answer,
                        view: dict[str, Any]) -> None:
        """A modal, opened at once (the trigger id lives three seconds); if Slack refuses,
        the person is told instead of being left with nothing."""
        try:
            await client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed", extra={"event": "slack_views_open_failed",
                                                    "status": exc.response.get("error")})
            await answer.say(answer.t("slack.modal_failed"))

    # --- ideas -------------------------------------------------------------------------------

    async def show_status(self, answer: Answer, ref: str, *, replace: bool = False,
                          notice: str | None = None) -> None:
        """The status view; moderators also get the lifecycle moves and their own sections."""
        detail = await self.db(desk.status_detail, self.runtime, ref)
        if detail is None:
            await answer.say(answer.t("slack.not_found", ref=ref), replace=replace)
            return
        moderator = await self.moderators.is_moderator(answer.user_id)
        moves = targets(Status(detail.status)) if moderator else []
        await answer.send(kit.status_blocks(detail, answer.t, self.zone, parts=self.sections,
                                            moves=moves, notice=notice, moderator=moderator,
                                            publish=moderator and detail.awaiting_review),
                          replace=replace)

    async def list_page(self, t: Translator, status: Status | None, area: str | None,
                        offset: int) -> list[dict[str, Any]]:
        """One page of `/kominn list`, with a "more" button carrying the next offset."""
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
        await self.open_view(client, trigger_id, answer, kit.new_idea_modal(
            answer.t, self.settings.focus_areas, meta))

    async def apply_move(self, answer: Answer, user_id: str, request: SetRequest, *,
                         expected: Status | None, replace: bool) -> None:
        """A lifecycle move; a move someone else made first is shown, not overwritten."""
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
        """The next pending pair (after the one skipped), or "nothing left"."""
        pair = await self.db(triage.show_next, self.runtime.db, after)
        if pair is None:
            await answer.say(answer.t("slack.triage.empty"), replace=replace)
            return
        pending = await self.db(triage.pending_count, self.runtime.db)
        await answer.send(kit.pair_blocks(pair, answer.t, self.zone, pending), replace=replace)

    async def decide(self, answer: Answer, user_id: str, pair_id: int,
                     decision: triage.Decision, keep: int | None = None) -> None:
        """A triage decision, then the next pair; whoever comes second sees who decided."""
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
        incoming = Incoming(channel=STAFF_CHANNEL, user_id=answer.user_id, choice=payload,
                            update_id=update_id, chat_id=answer.user_id,
                            language=None if why == DEFAULT else language)
        replies = await self.db(self.runtime.engine.handle, incoming)
        for reply in replies:
            await answer.send(kit.reply_blocks(reply), text=kit.esc(reply.text)[:3000] or " ")
        if replies:  # none: delivered before, or another worker is sending them
            await self.db(self.runtime.engine.mark_delivered, STAFF_CHANNEL, update_id)

    # --- App Home ----------------------------------------------------------------------------

    async def publish_home(self, client: AsyncWebClient, user_id: str) -> None:
        """The App Home tab: counts per status, the triage queue, the newest ideas."""
        stats = await self.db(desk.home_stats, self.runtime.db)
        moderator = await self.moderators.is_moderator(user_id)
        t = await self.translator_for(user_id)
        await client.views_publish(user_id=user_id, view=kit.home_view(
            stats, t, self.zone, moderator=moderator))


def guarded(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
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


class _SameToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and warns that our client (built
    from the same setting, with SLACK_API_URL) wins over it: true, and not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    """Bolt's logger, with the warning above silenced (once, however many apps are built)."""
    bolt_log = logging.getLogger("slack_bolt.kominn")
    if not any(isinstance(f, _SameToken) for f in bolt_log.filters):
        bolt_log.addFilter(_SameToken())
    return bolt_log
