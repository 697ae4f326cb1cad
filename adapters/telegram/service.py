"""Telegram channel on python-telegram-bot 22: a thin layer over the engine.

Update → `Incoming` → `engine.handle` (in a thread: the engine is synchronous SQLModel) →
replies rendered as HTML messages with inline keyboards → `engine.mark_delivered`.

`TelegramService` is the part of `kominn run` that owns the PTB application: it starts and
stops it, takes updates (the poll loop or the webhook route), runs the handlers that talk to
the engine, and at start sends what a crash left unsent. What it composes, and why each part
works as it does, is told in the part's own module:

* `polling` — polling by hand, the offset confirmed only after handling, so a `kill -9`
  loses nothing: kill before the commit → Telegram delivers the update again; kill after it →
  the stored replies are sent at the next start (`_resend_undelivered`).
* `webhook` — the route: secret first, 200 only once the update is handled.
* `ordering` — per chat in arrival order, different chats concurrently; handling and sending
  are separate stages so a slow send never holds up the poll loop.
* `pacing` — flood control, overall and per private chat.
* `delivery` — failed sends retried without ever sending twice what may have arrived, and the
  batched record of what went out.
* `render` — a `Reply` as Telegram shows it; `sender` — notices for the dispatcher.

Exactly once: the engine records every update id with its replies, so an update delivered
again (after a crash, a webhook retry, or `getUpdates` overlap) is not handled twice; an
update id already in flight in this process is not even queued twice. Several webhook
workers: the handling worker holds a sending lease on the answer, so a redelivery reaching
another worker meanwhile sends nothing, and a dead worker's answers are sent by whichever
worker takes them over once the lease ran out (at start, or the sweep every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
from starlette.routing import BaseRoute
from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram.api import CHANNEL, check_token, file_url
from adapters.telegram.commands import publish_commands
from adapters.telegram.delivery import Delivery
from adapters.telegram.errors import error_kind, log_failure, quietly
from adapters.telegram.links import chat_link
from adapters.telegram.ordering import InFlight, Ticket, TrackedProcessor
from adapters.telegram.pacing import CHAT_BURST, CHAT_RATE, ChatRateLimiter, shared_pace
from adapters.telegram.polling import poll
from adapters.telegram.render import send_rendered
from adapters.telegram.sender import TelegramSender
from adapters.telegram.updates import ALLOWED_UPDATES, chat_key, incoming_from
from adapters.telegram.webhook import Webhook, check_secret
from bot.config import ConfigError, Settings
from bot.conversation.engine import Engine
from bot.i18n import normalize_language, translator
from bot.runtime import Runtime
from dialogs.types import Incoming, Reply
from storage.pace import shares_pace

log = logging.getLogger("kominn.telegram")

STOP_WAIT = 10  # seconds stop() gives updates in flight to finish
# How often a worker looks for answers whose sending lease ran out (their worker died between
# storing and sending them) and sends them (see `_sweep`).
SWEEP_SECONDS = 5.0
HTTP_CONNECTIONS = 32
HTTP_POOL_WAIT = 30.0  # seconds a request may wait for a pooled connection

T = TypeVar("T")


def service(runtime: Runtime) -> TelegramService:
    """The Telegram part of `kominn run` (polling, or webhook when TELEGRAM_WEBHOOK_URL is set).
    On PostgreSQL every worker paces its sends on one shared grid: one ceiling for the bot."""
    pace = shared_pace(runtime.db) if shares_pace(runtime.db) else None
    return TelegramService(runtime.settings, runtime.engine, pace=pace,
                           observe=runtime.metrics.telegram_request)


class TelegramService:
    """A `kominn run` service: the PTB application, its poll loop or webhook route, and the
    sender the follow-up dispatcher uses."""

    name = "telegram"

    def __init__(self, settings: Settings, engine: Engine, *, chat_burst: int = CHAT_BURST,
                 chat_rate: float = CHAT_RATE, sweep_seconds: float = SWEEP_SECONDS,
                 pace: Callable[[float], Any] | None = None,
                 observe: Callable[[str, bool], None] | None = None) -> None:
        """`chat_burst`/`chat_rate`: the per-private-chat pacing (0 rate: none).
        `sweep_seconds`: how often answers whose sending lease ran out are looked for (see
        `_sweep`). `pace`: the overall pacer for a ceiling (`pacing.shared_pace` on
        PostgreSQL: one ceiling for every worker); None paces this process alone. `observe`:
        hears of each message Telegram took or refused with 429 (`/metrics`)."""
        self.settings = settings
        self._sweep_seconds = sweep_seconds
        self._pace = pace
        self._observe = observe
        self._sweeper: asyncio.Task[None] | None = None
        self._chat_limit = (chat_burst, chat_rate)
        self.engine = engine
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret or ""
        if self.webhook_url:
            check_secret(self.secret)
        self.application = self._build_application()
        self.routes: list[BaseRoute] = [Webhook(
            self.secret, self.bot, accepting=self._accepting, take=self._take,
        ).route()] if self.webhook_url else []
        self.sender = TelegramSender(self.bot, lambda: self._running)
        self.flights = InFlight()
        self._running = False
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._groups_told: set[int] = set()
        self.delivery = Delivery(self.bot, engine, self._stopping)

    def _build_application(self) -> Application:
        token = check_token(self.settings.telegram_bot_token)
        application = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
            .base_file_url(file_url(self.settings.telegram_api_base_url))
            .rate_limiter(ChatRateLimiter(self.settings.telegram_max_messages_per_second,
                                          *self._chat_limit, pace=self._pace,
                                          observe=self._observe))
            # httpcore scans every pooled connection on each request (a syscall or two per
            # connection): PTB's 256 make that the busiest thing under load. A few dozen keep
            # up with Telegram's 30 messages/s; a request waits for a free one rather than fail.
            .connection_pool_size(HTTP_CONNECTIONS)
            .pool_timeout(HTTP_POOL_WAIT)
            .concurrent_updates(TrackedProcessor(self._finish))
            .updater(None)
            .build()
        )
        private = filters.ChatType.PRIVATE
        application.add_handler(MessageHandler(private & ~filters.UpdateType.EDITED,
                                               self._on_message))
        application.add_handler(CallbackQueryHandler(self._on_press))
        application.add_handler(ChatMemberHandler(self._on_member,
                                                  ChatMemberHandler.MY_CHAT_MEMBER))
        application.add_error_handler(self._on_error)
        return application

    async def _on_error(self, _: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed outside the engine call (a bug): log it without the update."""
        if context.error is not None:
            log_failure("telegram handler failed", context.error)

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        """Run an engine call in the engine's threads (shared with the web chat)."""
        return await self.engine.off_loop(call, *args)

    @property
    def bot(self) -> Any:
        return self.application.bot

    @property
    def running(self) -> bool:
        """Started and taking updates (until `stop`)."""
        return self._running

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (getMe), publish the command menu, send what a crash left unsent, then take
        updates: a poll loop, or the webhook. If Telegram cannot be reached, the rest of
        `kominn run` starts anyway and this keeps trying in the background."""
        self._stopping.clear()
        try:
            await self._bring_up()
        except (NetworkError, httpx.HTTPError) as exc:
            if isinstance(exc, BadRequest):
                raise
            log.warning("telegram unreachable; retrying in the background", extra={
                "event": "telegram_connect_retry", "status": type(exc).__name__})
            self._retrying = asyncio.create_task(self._keep_trying(), name="telegram-connect")

    async def _keep_trying(self) -> None:
        for attempt in itertools.count(1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(60.0, 2.0 ** (attempt - 1)))
            if self._stopping.is_set():
                return
            try:
                await self._bring_up()
                return
            except ConfigError as exc:
                log.error(str(exc), extra={"event": "telegram_config_refused"})
                return
            except (TelegramError, httpx.HTTPError) as exc:
                log.warning("telegram still unreachable", extra={
                    "event": "telegram_connect_retry", "attempt": attempt,
                    "status": type(exc).__name__})

    async def _bring_up(self) -> None:
        try:
            await self.application.initialize()
        except InvalidToken:
            raise ConfigError("Invalid setting TELEGRAM_BOT_TOKEN: Telegram refused it") \
                from None
        await publish_commands(self.bot, self.engine.features.conversation.commands)
        # Polling has one consumer (this process): everything a crash left goes at once.
        # With a webhook other workers may be sending some right now: only run-out leases.
        await self._resend_undelivered(any_lease=not self.webhook_url)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="telegram-sweep")
        if not self.application.running:
            await self.application.start()
        self._running = True
        if self.webhook_url:
            try:
                await self.bot.set_webhook(self.webhook_url, secret_token=self.secret,
                                           allowed_updates=ALLOWED_UPDATES)
            except BadRequest as exc:
                raise ConfigError(f"Invalid setting TELEGRAM_WEBHOOK_URL: Telegram refused it "
                                  f"({error_kind(exc)})") from None
            log.info("telegram webhook set", extra={"event": "telegram_webhook_set"})
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(poll(self.bot, self.feed, self._stopping),
                                               name="telegram-poll")
            log.info("telegram polling", extra={"event": "telegram_polling"})

    async def stop(self) -> None:
        """Finish the batch in hand (so Telegram need not send it again), wait briefly for
        answers in flight, then close. The webhook stays registered: Telegram keeps updates
        for us while we are down."""
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None
        if self._poller is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poller, STOP_WAIT)
            self._poller = None
        pending = self.flights.unanswered()
        if pending:
            await asyncio.wait(pending, timeout=STOP_WAIT)
        self._running = False
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        self.delivery.shutdown()

    async def _resend_undelivered(self, *, any_lease: bool = False) -> None:
        """Replies the engine stored but nobody confirmed as sent: their worker died between
        the two. Taken with a fresh lease (`engine.take_undelivered`: at most one worker wins
        each), sent, recorded. At start before polling, so a redelivered update finds them
        delivered; `any_lease` at a polling start (this process is the only consumer)."""
        rows = await self._db(functools.partial(self.engine.take_undelivered, CHANNEL,
                                                any_lease=any_lease))
        rows.sort(key=lambda row: int(row[0]) if row[0].isdigit() else 0)
        for update_id, user_id, replies in rows:
            chat = user_id.rpartition(":")[2]  # "flood:<id>" rows are the polite refusal
            if chat.isdigit() and not await self.delivery.deliver(int(chat), replies):
                continue
            await self._db(self.engine.mark_delivered, CHANNEL, update_id)
        if rows:
            log.info("resent undelivered replies", extra={
                "event": "telegram_resent", "count": len(rows)})

    async def _sweep(self) -> None:
        """Every `sweep_seconds`: answers whose lease ran out (a worker died after storing
        them, and Telegram, having had its 200, will not deliver the update again) are sent
        by whichever worker takes them first."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._sweep_seconds)
                return
            try:
                await self._resend_undelivered()
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                log_failure("sweep of unsent answers failed", exc)

    # --- taking updates -------------------------------------------------------------------

    def admit(self, update: Update) -> Ticket | None:
        """Give an update its ticket before it is queued; None if the same update id is
        already in flight here (a redelivery overlapping the original)."""
        return self.flights.admit(update.update_id, chat_key(update))

    def _finish(self, update: object) -> None:
        if isinstance(update, Update):
            self.flights.finish(update.update_id)

    def _ticket(self, update: Update) -> Ticket:
        ticket = self.flights.get(update.update_id) or self.admit(update)
        assert ticket is not None
        return ticket

    async def feed(self, updates: Sequence[Update]) -> None:
        """Queue a batch and return once every update in it is handled (committed)."""
        handled = []
        for update in updates:
            ticket = self.admit(update)
            if ticket is None:
                continue
            handled.append(ticket.handled)
            await self.application.update_queue.put(update)
        if handled:
            await asyncio.wait(handled)

    def _accepting(self) -> bool:
        return self._running and not self._stopping.is_set()

    async def _take(self, update: Update) -> Ticket:
        """A webhook's update: queued with a ticket of its own, unless the same update is
        already in flight here (then the webhook call waits for that one)."""
        ticket = self.flights.get(update.update_id)
        if ticket is None:
            ticket = self.admit(update)
            assert ticket is not None
            await self.application.update_queue.put(update)
        return ticket

    # --- handlers -------------------------------------------------------------------------

    async def _on_message(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = incoming_from(update)
        if incoming is not None and update.effective_chat is not None:
            await self._converse(update, incoming, update.effective_chat.id)

    async def _on_press(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        chat = update.effective_chat
        if query is None:
            return
        if chat is None or chat.type != ChatType.PRIVATE or query.message is None:
            await quietly(query.answer())
            return
        incoming = incoming_from(update)
        if incoming is None:
            return
        cleanup = asyncio.create_task(self._close_keyboard(query, chat.id))
        await self._converse(update, incoming, chat.id, cleanup)

    async def _close_keyboard(self, query: CallbackQuery, chat_id: int) -> None:
        """Stop the client's spinner, and take the keyboard off the pressed message so it
        cannot be pressed again (a second tap would only meet "that choice has expired")."""
        await quietly(query.answer())
        message = query.message
        if isinstance(message, Message) and message.reply_markup is not None:
            await quietly(self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message.message_id, reply_markup=None))

    async def _converse(self, update: Update, incoming: Incoming, chat_id: int,
                        before_send: asyncio.Task[None] | None = None) -> None:
        ticket = self._ticket(update)
        replies: list[Reply] | None = None
        try:
            await ticket.turn_to_handle()
            try:
                replies = await self._db(self.engine.handle, incoming)
            except Exception as exc:  # noqa: BLE001 - the person gets an apology
                log_failure("update failed", exc)
            finally:
                ticket.mark_handled()
            await ticket.turn_to_send()
            if before_send is not None:
                await before_send
            if replies is None:
                t = translator(normalize_language(incoming.language) or self.settings.locale)
                await self.delivery.deliver(chat_id, [Reply(t("telegram.error"))], patient=True)
            elif replies and await self.delivery.deliver(
                    chat_id, replies, patient=True, renew=self._renewal(incoming.update_id)) \
                    and incoming.update_id:
                # No replies: nothing to record (a redelivery of an answer in the hands of
                # another worker must stay that worker's to confirm).
                await asyncio.shield(self.delivery.record_sent(incoming.update_id))
        finally:
            ticket.mark_sent()

    def _renewal(self, update_id: str | None) -> Callable[[], Awaitable[bool]] | None:
        if update_id is None:
            return None

        async def renew() -> bool:
            return await self._db(self.engine.renew_lease, CHANNEL, str(update_id))

        return renew

    async def _on_member(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """Added to a group: say once, in the group, that we only talk in private."""
        change = update.my_chat_member
        if change is None or change.chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
            return
        was_in = change.old_chat_member.status not in (ChatMemberStatus.LEFT,
                                                       ChatMemberStatus.BANNED)
        is_in = change.new_chat_member.status not in (ChatMemberStatus.LEFT,
                                                      ChatMemberStatus.BANNED)
        if was_in or not is_in or change.chat.id in self._groups_told:
            return
        self._groups_told.add(change.chat.id)
        t = translator(normalize_language(change.from_user.language_code)
                       or self.settings.locale)
        links = ((t("telegram.open_private"), chat_link(self.bot.username)),) \
            if self.bot.username else ()
        log.info("added to a group", extra={"event": "telegram_group_added"})
        await self.delivery.deliver(change.chat.id, [Reply(t("telegram.group_only"),
                                                           links=links)])

    # --- sending --------------------------------------------------------------------------

    async def send_reply(self, chat_id: int | str, reply: Reply) -> None:
        """One reply, rendered by `send_rendered` (shared with `kominn jobs run-due`)."""
        await send_rendered(self.bot, chat_id, reply)
