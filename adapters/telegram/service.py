"""Telegram channel on python-telegram-bot 22: a thin layer over the engine.

Update → `Incoming` → `engine.handle` (in a thread: the engine is synchronous SQLModel) →
replies rendered as HTML messages with inline keyboards → `engine.mark_delivered`.

Control flow, and why:

* **Polling by hand, offset confirmed only after handling.** PTB's `Updater` asks for the next
  batch (whose offset confirms the previous one to Telegram) as soon as it has queued the last
  one, whether or not it was handled; a `kill -9` then loses what was queued but not yet
  handled. Here the poll loop feeds a batch into `application.update_queue` and only asks for
  the next batch (confirming this one) once every update of the batch is *handled*, i.e. its
  new dialog state and replies are committed by the engine. Sending is not awaited: replies
  stored but not yet confirmed as sent are re-sent at the next start (`engine.undelivered`).
  So: kill before the commit → Telegram delivers the update again → handled once; kill after
  the commit → the stored replies are sent at start. A reply may then reach the person twice
  if the kill fell between sending it and `mark_delivered` (at-least-once out). Those marks
  are written in batches on a thread of their own, not behind the updates waiting for the
  engine, which keeps that window to tens of milliseconds under load (benchmarks/faults.py).
* **Webhook** (`TELEGRAM_WEBHOOK_URL`): the route checks the secret header (403 before anything
  else), queues the update like the poll loop does and answers 200 only once it is handled,
  so Telegram keeps (and retries) what a crash interrupted.
* **Order and concurrency.** Updates of one chat are handled and answered in arrival order,
  different chats concurrently: each update gets a ticket in its chat's line when it is
  queued; handling waits for the previous update of the chat to be handled, sending waits for
  its replies to be sent. The two stages are separate so a slow send (flood control) in one
  chat never holds up the poll loop.
* **Exactly once.** The engine records every update id with its replies, so an update
  delivered again (after a crash, a webhook retry, or `getUpdates` overlap) is not handled
  twice; an update id already in flight in this process is not even queued twice.
* **Flood control.** PTB's `AIORateLimiter` (overall cap `TELEGRAM_MAX_MESSAGES_PER_SECOND`,
  20/min in groups, a 429's `retry_after` waited out and the request retried), plus a small
  per-chat bucket for private chats (a burst of 3, then 1 message/s).
* **Failed sends.** Connection failures (nothing reached Telegram) are retried. A read or
  write timeout is ambiguous (Telegram may have delivered the message), so it is not retried:
  a duplicate is worse than the rare lost message the person can ask again for. An answer
  Telegram failed to take (5xx, connection trouble beyond those retries) is tried again from
  the first reply not sent, backing off from 1 s to 30 s while the service runs, so an outage
  delays answers but loses none; what a stop leaves unsent stays stored for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import io
import itertools
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeDefault,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels import DeliveryError
from bot.config import ConfigError, Settings
from bot.conversation.engine import Engine
from bot.i18n import normalize_language, translator
from bot.runtime import Runtime
from dialogs.types import Incoming, Location, Reply

log = logging.getLogger("kominn.telegram")

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]

# The command menu, in this order. A command shows up once the dialogs know it and the
# catalogs describe it (`telegram.command.<name>`), so later features only add a line here.
COMMAND_MENU = ("ny", "status", "mine", "avbryt", "hjelp", "sprak", "slett", "data",
                "konkurranser", "aktuelt")
# (Telegram language_code, our language): "" is every language without its own menu.
MENU_LANGUAGES = (("", "nb"), ("nb", "nb"), ("nn", "nn"), ("en", "en"))

POLL_TIMEOUT = 25  # seconds a getUpdates long poll may wait for news
WEBHOOK_WAIT = 25  # seconds a webhook request waits for its update to be handled
STOP_WAIT = 10  # seconds stop() gives updates in flight to finish
RESEND_MAX_WAIT = 30.0  # seconds at most between tries of an answer Telegram failed to take
MAX_TEXT = 4096  # Telegram's limits, in UTF-16 code units of the visible text
MAX_CAPTION = 1024
COMPACT_LABEL = 14  # buttons with labels up to this long share a row
CHAT_BURST, CHAT_RATE = 3, 1.0  # per private chat: burst, then messages per second
# Webhook mode: an unconfirmed answer younger than this may still be on its way from another
# worker, so a starting worker leaves it alone that long (see `_resend_undelivered`).
RESEND_GRACE = 60.0
# Overall messages go out evenly spaced (no burst) a little under the cap: requests reach
# Telegram with a few ms of jitter, and a second must never count more than the cap.
OVERALL_PACE = 0.97
PACER_WINDOW = 1.02  # seconds in which at most the cap may go out, whatever happened before
SEND_ATTEMPTS = 3
FLOOD_RETRIES = 3
MAX_CONCURRENT_UPDATES = 512
DB_WORKERS = 8  # engine threads on PostgreSQL
HTTP_CONNECTIONS = 32
HTTP_POOL_WAIT = 30.0  # seconds a request may wait for a pooled connection

T = TypeVar("T")


def service(runtime: Runtime) -> TelegramService:
    """The Telegram part of `kominn run` (polling, or webhook when TELEGRAM_WEBHOOK_URL is set)."""
    return TelegramService(runtime.settings, runtime.engine)


# --- rendering ----------------------------------------------------------------------------------

def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons (short labels share rows), then link buttons, one per row."""
    buttons = [InlineKeyboardButton(c.label, callback_data=c.payload) for c in reply.choices]
    if buttons and all(len(c.label) <= COMPACT_LABEL for c in reply.choices):
        width = 2 if len(buttons) == 4 else 3
        rows = [buttons[i:i + width] for i in range(0, len(buttons), width)]
    else:
        rows = [[button] for button in buttons]
    rows += [[InlineKeyboardButton(label, url=url)] for label, url in reply.links]
    return InlineKeyboardMarkup(rows) if rows else None


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split plain text into pieces Telegram accepts, at line breaks or spaces when possible."""
    parts: list[str] = []
    rest = text
    while _utf16(rest) > limit:
        cut = limit
        while _utf16(rest[:cut]) > limit:
            cut -= 1
        window = rest[:cut]
        at = window.rfind("\n")
        if at <= cut // 2:
            at = window.rfind(" ")
        if at > cut // 2:
            cut = at + 1
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


async def send_rendered(bot: Bot, chat_id: int | str, reply: Reply) -> None:
    """Send one neutral reply the way every Telegram path shows it (`kominn run` and `kominn
    jobs run-due` alike, so a notice looks the same whoever delivers it): HTML with the text
    escaped (nothing a citizen typed becomes markup), split when too long with the keyboard on
    the last part, link previews off, a document with the text as caption when it fits."""
    markup = keyboard(reply)
    if reply.document is not None:
        caption = reply.text if _utf16(reply.text) <= MAX_CAPTION else ""
        if reply.text and not caption:
            await _send_text(bot, chat_id, reply.text, None)
        document = reply.document
        await _retrying(lambda: bot.send_document(
            chat_id=chat_id,
            document=InputFile(io.BytesIO(document.content), filename=document.filename),
            caption=html.escape(caption) or None, parse_mode=ParseMode.HTML,
            reply_markup=markup))
        return
    await _send_text(bot, chat_id, reply.text, markup)


async def _send_text(bot: Bot, chat_id: int | str, text: str,
                     markup: InlineKeyboardMarkup | None) -> None:
    """Text in as many messages as it takes; only the last carries the keyboard, so the
    buttons sit under the end of what they answer."""
    if not text.strip():
        return
    parts = chunks(text)
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        await _retrying(lambda part=part, last=last: bot.send_message(
            chat_id=chat_id, text=html.escape(part, quote=False), parse_mode=ParseMode.HTML,
            reply_markup=markup if last else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True)))


def incoming_from(update: Update) -> Incoming | None:
    """The neutral form of a private-chat message or button press (None for anything else)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    base: dict[str, Any] = {
        "channel": CHANNEL, "user_id": str(user.id), "chat_id": str(chat.id),
        "update_id": str(update.update_id), "language": user.language_code,
        "display_name": user.full_name,
    }
    if update.callback_query is not None:
        return Incoming(**base, choice=update.callback_query.data or "")
    message = update.message
    if message is None:
        return None
    if message.location is not None:
        location = Location(message.location.latitude, message.location.longitude)
        return Incoming(**base, location=location)
    return Incoming(**base, text=message.text or message.caption or "")


def _seconds(value: float | timedelta | None) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value or 0)


def _not_sent(exc: TimedOut) -> bool:
    """A timeout before the request reached Telegram (connect/pool), so retrying is safe."""
    cause = exc.__cause__
    return isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout) or \
        "Pool timeout" in str(exc)


def _chat_key(update: Update) -> int | str:
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return f"user:{update.effective_user.id}"
    return f"update:{update.update_id}"


# --- flood control ------------------------------------------------------------------------------

class Pacer:
    """Turns `1/rate` apart on a fixed grid, taken in arrival order (an async context manager,
    like the limiter it replaces). A turn woken a little late does not push the later ones
    back, so the rate holds; no burst follows a quiet spell. Turns a stalled event loop (a
    long garbage collection) let pass are not all taken at once when it wakes: no more than
    `cap` go out within `PACER_WINDOW` seconds, ever. `pause()` (Telegram answered 429) moves
    every turn behind the wait, including those already promised."""

    def __init__(self, rate: float, cap: float) -> None:
        self._interval = 1 / rate
        self._next = 0.0
        self._pauses = 0
        self._recent: deque[float] = deque(maxlen=max(1, int(cap)))

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now, pauses = loop.time(), self._pauses
            turn = max(now, self._next)
            self._next = turn + self._interval
            if turn > now:
                await asyncio.sleep(turn - now)
            if pauses == self._pauses and await self._within_window(loop):
                self._recent.append(loop.time())
                return

    async def _within_window(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait until fewer than `cap` messages went out in the last window; False if a pause
        came meanwhile (then the turn is taken again behind it)."""
        pauses = self._pauses
        while len(self._recent) == self._recent.maxlen:
            wait = self._recent[0] + PACER_WINDOW - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        return pauses == self._pauses

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)
        self._pauses += 1

    async def __aexit__(self, *_: object) -> None:
        return None


class ChatRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (overall and group caps, 429 retries) plus a per-private-chat
    bucket for messages: Telegram tolerates short bursts in a chat, then about one per second.

    Taking the keyboard off a tapped message is not a message: it is not counted against the
    overall cap (which would otherwise spend a third of it on edits during a busy hour). If
    Telegram ever objects, the edit fails quietly and the engine still answers a second tap
    with "that choice has expired"."""

    SEND_ENDPOINTS = frozenset({"sendMessage", "sendDocument"})
    UNCAPPED_ENDPOINTS = frozenset({"editMessageReplyMarkup"})

    def __init__(self, overall_max_rate: float, chat_burst: int = CHAT_BURST,
                 chat_rate: float = CHAT_RATE) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=FLOOD_RETRIES)
        if overall_max_rate:
            # PTB's bucket lets a full second's worth through at once after a quiet spell, so
            # a broadcast's first second carried up to twice the cap; one message at a time,
            # 1/rate apart, never exceeds it in any second.
            self._base_limiter = Pacer(  # type: ignore[assignment]
                overall_max_rate * OVERALL_PACE, overall_max_rate)
        self._chats: dict[int, AsyncLimiter] = {}
        self._chat_burst, self._chat_rate = chat_burst, chat_rate

    def _pausing(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """A 429 holds every message for its retry_after, as Telegram asks, not only the one
        refused: PTB's own pause is lifted by whichever request finishes next, and the
        messages it held would then go out in one burst."""
        pacer = self._base_limiter
        if not isinstance(pacer, Pacer):
            return callback

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                pacer.pause(_seconds(exc._retry_after))  # noqa: SLF001 - int/timedelta shim
                raise

        return call

    def _chat_limiter(self, chat_id: object, endpoint: str) -> AsyncLimiter | None:
        if endpoint not in self.SEND_ENDPOINTS or not self._chat_rate:
            return None
        try:
            key = int(str(chat_id))
        except ValueError:
            return None
        if key <= 0:  # groups and channels: the group limiter of the base class applies
            return None
        if len(self._chats) > 1024:
            for other, limiter in list(self._chats.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chats[other]
        limiter = self._chats.get(key)
        if limiter is None:
            limiter = self._chats[key] = AsyncLimiter(self._chat_burst,
                                                      self._chat_burst / self._chat_rate)
        return limiter

    async def process_request(self, callback: Callable[..., Any], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        if endpoint in self.UNCAPPED_ENDPOINTS:
            return await callback(*args, **kwargs)
        callback = self._pausing(callback)
        limiter = self._chat_limiter(data.get("chat_id"), endpoint)
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)


# --- per-chat order -----------------------------------------------------------------------------

def _follow(previous: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
    """Resolve `mine` once `previous` is resolved: a stage is done only after its predecessor."""
    if mine.done():
        return
    if previous is None or previous.done():
        mine.set_result(None)
    else:
        previous.add_done_callback(lambda _: mine.done() or mine.set_result(None))


class Ticket:
    """An update's place in its chat's line: handled after the previous update was handled,
    answered after the previous update was answered."""

    def __init__(self, key: int | str, previous: Ticket | None) -> None:
        loop = asyncio.get_running_loop()
        self.key = key
        self._previous_handled = previous.handled if previous else None
        self._previous_sent = previous.sent if previous else None
        self.handled: asyncio.Future[None] = loop.create_future()
        self.sent: asyncio.Future[None] = loop.create_future()

    async def turn_to_handle(self) -> None:
        if self._previous_handled is not None:
            await asyncio.shield(self._previous_handled)

    async def turn_to_send(self) -> None:
        if self._previous_sent is not None:
            await asyncio.shield(self._previous_sent)

    def mark_handled(self) -> None:
        _follow(self._previous_handled, self.handled)

    def mark_sent(self) -> None:
        self.mark_handled()
        _follow(self._previous_sent, self.sent)


class ChatLines:
    """Tickets per chat; a chat's line is forgotten when its last update is answered."""

    def __init__(self) -> None:
        self._tails: dict[int | str, Ticket] = {}

    def enter(self, key: int | str) -> Ticket:
        ticket = Ticket(key, self._tails.get(key))
        self._tails[key] = ticket
        ticket.sent.add_done_callback(lambda _: self._leave(ticket))
        return ticket

    def _leave(self, ticket: Ticket) -> None:
        if self._tails.get(ticket.key) is ticket:
            del self._tails[ticket.key]

    def __len__(self) -> int:
        return len(self._tails)


class TrackedProcessor(BaseUpdateProcessor):
    """Runs updates concurrently and closes each update's ticket however its processing ended
    (no handler matched, a handler failed), so neither its chat nor the poll loop waits for it."""

    def __init__(self, finish: Callable[[object], None]) -> None:
        super().__init__(MAX_CONCURRENT_UPDATES)
        self._finish = finish

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            self._finish(update)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""


# --- the service --------------------------------------------------------------------------------

class TelegramService:
    """A `kominn run` service: the PTB application, its poll loop or webhook route, and the
    sender the follow-up dispatcher uses."""

    name = "telegram"

    def __init__(self, settings: Settings, engine: Engine, *, chat_burst: int = CHAT_BURST,
                 chat_rate: float = CHAT_RATE, resend_grace: float = RESEND_GRACE) -> None:
        """`chat_burst`/`chat_rate`: the per-private-chat pacing (0 rate: none).
        `resend_grace`: in webhook mode, how old an unconfirmed answer must be before this
        worker sends it again at start (see `_resend_undelivered`)."""
        self.settings = settings
        self._resend_grace = timedelta(seconds=resend_grace)
        self._late_resend: asyncio.Task[None] | None = None
        self._chat_limit = (chat_burst, chat_rate)
        self.engine = engine
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret or ""
        if self.webhook_url:
            _check_secret(self.secret)
        self.application = self._build_application()
        self.routes: list[BaseRoute] = (
            [Route(WEBHOOK_PATH, self._webhook, methods=["POST"])] if self.webhook_url else [])
        self.sender = TelegramSender(self)
        self.lines = ChatLines()
        self._flights: dict[int, Ticket] = {}
        self._running = False
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._groups_told: set[int] = set()
        # The engine is synchronous: it runs in worker threads. SQLite has one writer at a
        # time, and threads queueing on its lock sleep in coarse steps (busy handler), so on
        # SQLite one thread takes the updates in turn; PostgreSQL gets several.
        self._workers = ThreadPoolExecutor(
            max_workers=1 if settings.database_url.startswith("sqlite") else DB_WORKERS,
            thread_name_prefix="telegram-engine")
        # Recording "sent" has a thread of its own and is written in batches: queued behind
        # the updates waiting for the engine it lagged by up to a second under load, and
        # every answer sent but not yet recorded is sent again after a crash.
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-sent")
        self._sent_batch: tuple[list[str], asyncio.Future[None]] | None = None
        self._recording = asyncio.Lock()

    def _build_application(self) -> Application:
        token = self.settings.telegram_bot_token
        if not token or not _TOKEN.match(token):
            raise ConfigError("Invalid setting TELEGRAM_BOT_TOKEN: should look like "
                              "123456789:AAE… (the token @BotFather gave you)")
        application = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
            .base_file_url(file_url(self.settings.telegram_api_base_url))
            .rate_limiter(ChatRateLimiter(self.settings.telegram_max_messages_per_second,
                                          *self._chat_limit))
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
            _log_failure("telegram handler failed", context.error)

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        """Run an engine call in the engine's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, call, *args)

    @property
    def bot(self) -> Any:
        return self.application.bot

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
        await self._publish_commands()
        if self.webhook_url:
            started = self.engine.clock()
            await self._resend_undelivered(before=started - self._resend_grace)
            self._late_resend = asyncio.create_task(self._resend_later(started),
                                                    name="telegram-late-resend")
        else:
            await self._resend_undelivered()
        if not self.application.running:
            await self.application.start()
        self._running = True
        if self.webhook_url:
            try:
                await self.bot.set_webhook(self.webhook_url, secret_token=self.secret,
                                           allowed_updates=ALLOWED_UPDATES)
            except BadRequest as exc:
                raise ConfigError(f"Invalid setting TELEGRAM_WEBHOOK_URL: Telegram refused it "
                                  f"({_error_kind(exc)})") from None
            log.info("telegram webhook set", extra={"event": "telegram_webhook_set"})
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll(), name="telegram-poll")
            log.info("telegram polling", extra={"event": "telegram_polling"})

    async def stop(self) -> None:
        """Finish the batch in hand (so Telegram need not send it again), wait briefly for
        answers in flight, then close. The webhook stays registered: Telegram keeps updates
        for us while we are down."""
        self._stopping.set()
        if self._late_resend is not None:
            self._late_resend.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._late_resend
            self._late_resend = None
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None
        if self._poller is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poller, STOP_WAIT)
            self._poller = None
        pending = [ticket.sent for ticket in self._flights.values()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_WAIT)
        self._running = False
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        self._workers.shutdown(wait=False)
        self._recorder.shutdown(wait=False)

    async def _publish_commands(self) -> None:
        known = self.engine.features.conversation.commands
        names = [name for name in COMMAND_MENU if name in known]
        for code, language in MENU_LANGUAGES:
            t = translator(language)
            commands = [BotCommand(name, t(f"telegram.command.{name}")) for name in names
                        if t(f"telegram.command.{name}") != f"telegram.command.{name}"]
            try:
                await self.bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                               language_code=code or None)
            except TelegramError as exc:
                log.warning("command menu not set", extra={
                    "event": "telegram_commands_failed", "status": type(exc).__name__})

    async def _resend_undelivered(self, before: datetime | None = None) -> None:
        """Replies the engine stored but nobody confirmed as sent: the process died between
        the two. Sent before polling starts, so a redelivered update finds them delivered.

        With a webhook, several workers may share the database, and an answer stored a moment
        ago may be on its way from a live worker: only those older than the grace period are
        sent at start, the rest (stored before this start) once the grace period has passed,
        if nobody confirmed them by then. Polling has one consumer: everything goes at once."""
        rows = await self._db(self.engine.undelivered, CHANNEL, before)
        rows.sort(key=lambda row: int(row[0]) if row[0].isdigit() else 0)
        for update_id, user_id, replies in rows:
            chat = user_id.rpartition(":")[2]  # "flood:<id>" rows are the polite refusal
            if chat.isdigit() and not await self._deliver(int(chat), replies):
                continue
            await self._db(self.engine.mark_delivered, CHANNEL, update_id)
        if rows:
            log.info("resent undelivered replies", extra={
                "event": "telegram_resent", "count": len(rows)})

    async def _resend_later(self, started: datetime) -> None:
        """The second, late pass of `_resend_undelivered` (webhook mode)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._resend_grace.total_seconds())
            return  # stopping
        await self._resend_undelivered(before=started)

    # --- taking updates -------------------------------------------------------------------

    def admit(self, update: Update) -> Ticket | None:
        """Give an update its ticket before it is queued; None if the same update id is
        already in flight here (a redelivery overlapping the original)."""
        if update.update_id in self._flights:
            return None
        ticket = self.lines.enter(_chat_key(update))
        self._flights[update.update_id] = ticket
        ticket.sent.add_done_callback(lambda _: self._flights.pop(update.update_id, None))
        return ticket

    def _finish(self, update: object) -> None:
        if isinstance(update, Update):
            ticket = self._flights.get(update.update_id)
            if ticket is not None:
                ticket.mark_sent()

    def _ticket(self, update: Update) -> Ticket:
        ticket = self._flights.get(update.update_id) or self.admit(update)
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

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(self.bot.get_updates(
                offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES))
            stop = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if fetch not in done:
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
                break
            try:
                updates = fetch.result()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - whatever it was, polling must go on
                failures += 1
                if not await self._poll_failed(exc, failures):
                    return
                continue
            if updates:
                await self.feed(updates)
                offset = max(update.update_id for update in updates) + 1
        if offset is not None:
            # Confirm the last batch, so a restart does not receive it again.
            with contextlib.suppress(TelegramError, httpx.HTTPError):
                await self.bot.get_updates(offset=offset, timeout=0, limit=1,
                                           allowed_updates=ALLOWED_UPDATES)

    async def _poll_failed(self, exc: Exception, failures: int) -> bool:
        """Wait out a failed getUpdates; False when polling cannot go on."""
        if isinstance(exc, InvalidToken):
            log.error("telegram refused the token; polling stopped",
                      extra={"event": "telegram_token_refused"})
            return False
        if isinstance(exc, TimedOut):
            return True
        if isinstance(exc, RetryAfter):
            delay = _seconds(exc._retry_after)  # noqa: SLF001 - int/timedelta shim in PTB 22
        elif isinstance(exc, Conflict):
            delay = 5.0
        else:
            delay = min(30.0, 0.5 * 2 ** min(failures, 6))
        log.warning("getUpdates failed", extra={
            "event": "telegram_poll_failed", "status": type(exc).__name__, "attempt": failures})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return True

    async def _webhook(self, request: Request) -> Response:
        """Telegram's POST: the secret first; 200 only when the update is handled, so a crash
        before that leaves it with Telegram, which sends it again."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook call with a wrong secret", extra={"event": "telegram_forbidden"})
            return Response(status_code=403)
        if not self._running or self._stopping.is_set():
            return Response(status_code=503)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception:  # noqa: BLE001 - anything unparsable is the sender's problem
            return Response(status_code=400)
        if update is None:
            return Response(status_code=400)
        ticket = self._flights.get(update.update_id)
        if ticket is None:
            ticket = self.admit(update)
            assert ticket is not None
            await self.application.update_queue.put(update)
        try:
            await asyncio.wait_for(asyncio.shield(ticket.handled), WEBHOOK_WAIT)
        except TimeoutError:
            return Response(status_code=503)
        return Response(status_code=200)

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
            await _quietly(query.answer())
            return
        incoming = incoming_from(update)
        if incoming is None:
            return
        cleanup = asyncio.create_task(self._close_keyboard(query, chat.id))
        await self._converse(update, incoming, chat.id, cleanup)

    async def _close_keyboard(self, query: CallbackQuery, chat_id: int) -> None:
        """Stop the client's spinner, and take the keyboard off the pressed message so it
        cannot be pressed again (a second tap would only meet "that choice has expired")."""
        await _quietly(query.answer())
        message = query.message
        if isinstance(message, Message) and message.reply_markup is not None:
            await _quietly(self.bot.edit_message_reply_markup(
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
                _log_failure("update failed", exc)
            finally:
                ticket.mark_handled()
            await ticket.turn_to_send()
            if before_send is not None:
                await before_send
            if replies is None:
                t = translator(normalize_language(incoming.language) or self.settings.locale)
                await self._deliver(chat_id, [Reply(t("telegram.error"))], patient=True)
            elif await self._deliver(chat_id, replies, patient=True) and incoming.update_id:
                await asyncio.shield(self._record_sent(incoming.update_id))
        finally:
            ticket.mark_sent()

    def _record_sent(self, update_id: str) -> asyncio.Future[None]:
        """Record that an update's replies went out (`engine.mark_delivered`), together with
        the others sent while the previous batch was written: one write per batch."""
        if self._sent_batch is None:
            batch: tuple[list[str], asyncio.Future[None]] = (
                [], asyncio.get_running_loop().create_future())
            self._sent_batch = batch
            asyncio.ensure_future(self._write_sent(batch))
        self._sent_batch[0].append(update_id)
        return self._sent_batch[1]

    async def _write_sent(self, batch: tuple[list[str], asyncio.Future[None]]) -> None:
        ids, done = batch
        await asyncio.sleep(0)  # sends finishing in this turn of the loop join too
        async with self._recording:  # the batch takes more ids until it is its turn
            if self._sent_batch is batch:
                self._sent_batch = None
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._recorder, self.engine.mark_all_delivered, CHANNEL, ids)
            except Exception as exc:  # noqa: BLE001 - every waiter of the batch hears of it
                done.set_exception(exc)
            else:
                done.set_result(None)

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
        links = ((t("telegram.open_private"), f"https://t.me/{self.bot.username}"),) \
            if self.bot.username else ()
        log.info("added to a group", extra={"event": "telegram_group_added"})
        await self._deliver(change.chat.id, [Reply(t("telegram.group_only"), links=links)])

    # --- sending --------------------------------------------------------------------------

    async def _deliver(self, chat_id: int, replies: Sequence[Reply], *,
                       patient: bool = False) -> bool:
        """Send replies in order; False when a passing failure left some unsent (they stay
        stored, and the next start sends them). `patient` (a conversation's answers): the
        unsent rest is tried again with backoff while the service runs, so a Telegram outage
        delays answers but loses none, and what did go out is not sent twice."""
        rest = list(replies)
        for attempt in itertools.count():
            rest = await self._send_in_order(chat_id, rest)
            if not rest:
                return True
            if not patient or self._stopping.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       min(RESEND_MAX_WAIT, 2.0 ** attempt))

    async def _send_in_order(self, chat_id: int, replies: list[Reply]) -> list[Reply]:
        """The replies a passing failure left unsent (none when all went out or were
        refused for good)."""
        for index, reply in enumerate(replies):
            try:
                await self.send_reply(chat_id, reply)
            except Forbidden:
                log.info("chat unreachable (blocked)", extra={"event": "telegram_blocked"})
                return []
            except BadRequest as exc:
                log.error("telegram refused a reply", extra={
                    "event": "telegram_bad_request", "status": _error_kind(exc)})
                if "chat not found" in str(exc).lower():
                    return []
            except TimedOut as exc:
                if _not_sent(exc):
                    return replies[index:]
                log.warning("reply send timed out; not retried (it may have arrived)",
                            extra={"event": "telegram_send_ambiguous"})
            except (NetworkError, RetryAfter, httpx.HTTPError) as exc:
                log.warning("reply not sent", extra={"event": "telegram_send_failed",
                                                     "status": type(exc).__name__})
                return replies[index:]
        return []

    async def send_reply(self, chat_id: int | str, reply: Reply) -> None:
        """One reply, rendered by `send_rendered` (shared with `kominn jobs run-due`)."""
        await send_rendered(self.bot, chat_id, reply)


class TelegramSender:
    """`bot.channels.Sender` for the follow-up dispatcher: notices outside a conversation."""

    channel = CHANNEL
    # Sends the dispatcher may have out at once: the flood limiter paces them, and a few in
    # hand keep it busy through a slow database moment (a broadcast holds ~29/s).
    concurrency = 8

    def __init__(self, service: TelegramService) -> None:
        self.service = service

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        if not self.service._running:  # noqa: SLF001 - same module
            raise DeliveryError("telegram is not running")
        try:
            chat_id: int | str = int(address)
        except ValueError:
            chat_id = address
        await send_notice(self.service.bot, chat_id, replies)


async def send_notice(bot: Bot, chat_id: int | str, replies: Sequence[Reply]) -> None:
    """A follow-up notice (`kominn run`'s dispatcher and `kominn jobs run-due` alike), with
    Telegram's errors turned into `DeliveryError`s the dispatcher acts on: give up (blocked,
    chat gone), wait (flood control), retry later (unreachable). A timeout after the request
    was sent is not retried: the notice may have arrived, and twice is worse than once."""
    for reply in replies:
        try:
            await send_rendered(bot, chat_id, reply)
        except (Forbidden, BadRequest) as exc:
            raise DeliveryError(f"telegram: {_error_kind(exc)}", permanent=True) from None
        except RetryAfter as exc:
            raise DeliveryError("telegram: flood control",
                                retry_after=_seconds(exc._retry_after)) from None  # noqa: SLF001
        except InvalidToken:
            raise DeliveryError("telegram: invalid token") from None
        except TimedOut as exc:
            if _not_sent(exc):
                raise DeliveryError("telegram: not reachable") from None
            log.warning("notice send timed out; not retried (it may have arrived)",
                        extra={"event": "telegram_send_ambiguous"})
        except (TelegramError, httpx.HTTPError) as exc:
            raise DeliveryError(f"telegram: {type(exc).__name__}") from None


# --- helpers ------------------------------------------------------------------------------------

async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """A send, retried when it surely did not reach Telegram (connection refused or reset,
    connect timeout, a 5xx from the front proxy)."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            return await call()
        except (BadRequest, Forbidden, InvalidToken, RetryAfter):
            raise
        except TimedOut as exc:
            if not _not_sent(exc) or attempt == SEND_ATTEMPTS - 1:
                raise
        except NetworkError:
            if attempt == SEND_ATTEMPTS - 1:
                raise
        await asyncio.sleep(0.25 * 2 ** attempt)
    raise AssertionError("unreachable")


def _log_failure(message: str, exc: BaseException) -> None:
    """The kind of failure at ERROR; the traceback (whose database errors may quote what a
    person wrote) only at DEBUG."""
    log.error(message, extra={"event": "telegram_failure", "channel": CHANNEL,
                              "status": type(exc).__name__})
    log.debug("failure details", exc_info=exc)


async def _quietly(call: Awaitable[Any]) -> None:
    """Best-effort calls (answer a button press, remove a keyboard): failure changes nothing."""
    try:
        await call
    except (TelegramError, httpx.HTTPError) as exc:
        log.debug("best-effort call failed", extra={"status": type(exc).__name__})


def _error_kind(exc: TelegramError) -> str:
    """The error without anything a person wrote (Telegram's messages carry none, but cut)."""
    return re.sub(r"\s+", " ", str(exc))[:120]


def file_url(base_url: str) -> str:
    """`https://api.telegram.org/bot` → `https://api.telegram.org/file/bot` (also for a local
    Bot API server)."""
    head, sep, _ = base_url.rstrip("/").rpartition("/bot")
    return f"{head}/file/bot" if sep else base_url.rstrip("/") + "/file/bot"


_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


def _check_secret(secret: str) -> None:
    if not secret:
        raise ConfigError("Invalid setting TELEGRAM_WEBHOOK_SECRET: required when "
                          "TELEGRAM_WEBHOOK_URL is set")
    if not _SECRET.match(secret):
        raise ConfigError("Invalid setting TELEGRAM_WEBHOOK_SECRET: 1–256 characters of "
                          "A-Z, a-z, 0-9, _ and -")
