"""A local fake of the Telegram Bot API for end-to-end tests and benchmarks.

Why a fake server instead of mocking PTB objects: the adapter must be exercised through the real
``python-telegram-bot`` ``Application`` (its HTTP layer, update parsing, rate limiter, polling
loop and webhook server), because that is where the hard bugs live (retry behaviour, keyboards
that PTB refuses to parse, HTML that Telegram refuses to render, webhook/polling conflicts).
The fake speaks the wire protocol, so everything above the socket is the production code.

The server runs in its own thread with its own event loop. That is deliberate: a sync test, an
async test (whose loop also runs the bot) and a ``kominn run`` child process can all talk to it
without sharing a loop, and a blocked test thread never stalls the server.

Usage::

    with FakeTelegramAPI() as fake:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(fake.base_url)            # f"{fake.url}/bot"; PTB appends the token
            .base_file_url(fake.base_file_url)  # f"{fake.url}/file/bot"
            .build()
        )
        ...
        fake.user_message(42, "hei")
        await fake.await_messages(42, 1)

A child process gets ``TELEGRAM_API_BASE_URL=fake.base_url``.

Responses follow the Bot API envelope exactly: ``{"ok": true, "result": ...}`` on success and
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` on failure.
Parameters are accepted as JSON bodies, url-encoded forms, multipart forms and query strings,
because PTB sends form/multipart data with JSON-encoded nested values.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

__all__ = ["TOKEN", "ApiError", "FakeTelegramAPI"]

JSON = dict[str, Any]
T = TypeVar("T")

#: A syntactically valid bot token; the part before ``:`` is the bot's user id, as on Telegram.
TOKEN = "123456789:AAFakeTokenForKomInnTests-0123456789x"

_REGISTERED = object()  # sentinel: "use the secret token the bot registered with setWebhook"

# Every method the fake implements, keyed by lower case because the Bot API matches method
# names case-insensitively (``/bot<token>/sendmessage`` works on the real server).
_METHODS: dict[str, str] = {
    name.lower(): name
    for name in (
        "getMe",
        "getUpdates",
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
        "answerCallbackQuery",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
        "sendDocument",
        "getFile",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "sendChatAction",
        "close",
        "logOut",
    )
}

# Methods that create a chat message: these are subject to flood limits and blocked users.
_SEND_METHODS = frozenset({"sendMessage", "sendDocument"})

# Parameters that are plain strings on the wire. Everything else may arrive JSON-encoded
# inside a form field (PTB sends ``chat_id=42``, ``reply_markup={"inline_keyboard": ...}``),
# so it is decoded; these must not be, or a text of ``123`` would turn into an int.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "language_code",
        "ip_address",
        "action",
        "inline_message_id",
        "file_id",
        "description",
        "short_description",
        "name",
        "title",
    }
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}

# Telegram's front proxy answers these with an nginx HTML page, not JSON; clients must cope.
_HTML_ERROR_STATUSES = frozenset({502, 504})

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)

# Tags Telegram's HTML parse mode understands; anything else is rejected by the real server.
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)


class ApiError(Exception):
    """A Bot API error response; raised inside method handlers and turned into the envelope."""

    def __init__(
        self,
        code: int,
        description: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.description = description or _DEFAULT_DESCRIPTIONS.get(code, "Error")
        self.retry_after = retry_after
        super().__init__(f"{code}: {self.description}")

    def payload(self) -> JSON:
        """The exact JSON body Telegram sends for this error."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    description: str | None


@dataclass(eq=False)  # identity semantics: a redelivery is a distinct entry
class _Entry:
    """One update waiting on the server; ``delivered`` means handed out but not yet confirmed."""

    update: JSON
    delivered: bool = False


@dataclass(eq=False)  # hashable by identity, kept in a set
class _Poller:
    """A pending getUpdates long poll, so a newer poll can terminate it (409) like Telegram."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    terminated: bool = False


@dataclass
class _Bucket:
    """Token bucket: Telegram's flood control allows short bursts, then a steady rate."""

    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class _Limits:
    global_per_second: float
    per_chat_per_second: float
    per_chat_burst: int
    per_group_per_minute: float | None
    jitter: float


class _TelegramHTML(HTMLParser):
    """Validates HTML the way Telegram's ``parse_mode=HTML`` does and extracts the plain text.

    Only the failures we are sure the real server produces are reported (unknown tags such as
    ``<br>``, unbalanced tags), so the fake never rejects text Telegram would accept.
    """

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.parts: list[str] = []
        self.stack: list[str] = []
        self.error: str | None = None
        starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                starts.append(index + 1)
        self._line_starts = starts

    def _byte_offset(self) -> int:
        line, col = self.getpos()
        index = self._line_starts[line - 1] + col
        return len(self.source[:index].encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error:
            return
        if tag not in _HTML_TAGS:
            self.error = f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}'
            return
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.error:
            return
        if not self.stack or self.stack[-1] != tag:
            expected = f'expected "</{self.stack[-1]}>", ' if self.stack else ""
            self.error = (
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'{expected}found "</{tag}>"'
            )
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def parse(self) -> str:
        """Plain text Telegram would store, or raise the 400 Telegram would answer."""
        self.feed(self.source)
        self.close()
        if not self.error and self.stack:
            self.error = f'Can\'t find end tag corresponding to start tag "{self.stack[-1]}"'
        if self.error:
            raise ApiError(400, f"Bad Request: can't parse entities: {self.error}")
        return "".join(self.parts)


def _utf16_len(text: str) -> int:
    """Telegram measures text limits in UTF-16 code units, not code points."""
    return len(text.encode("utf-16-le")) // 2


def _coerce(name: str, value: Any) -> Any:
    if name in _STRING_PARAMS:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _norm_chat_id(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ApiError(400, "Bad Request: chat not found")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
        if value.startswith("@"):
            return value
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    raise ApiError(400, "Bad Request: chat not found")


def _scope_key(scope: Any) -> str:
    """A readable, hashable key for a BotCommandScope (``default``, ``chat:42``, ...)."""
    if not scope:
        return "default"
    if isinstance(scope, str):
        scope = json.loads(scope)
    kind = str(scope.get("type", "default"))
    if kind in ("chat", "chat_administrators"):
        return f"{kind}:{scope.get('chat_id')}"
    if kind == "chat_member":
        return f"chat_member:{scope.get('chat_id')}:{scope.get('user_id')}"
    return kind


def _callback_datas(markup: Any) -> list[str]:
    if not isinstance(markup, dict):
        return []
    return [
        str(button["callback_data"])
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    ]


class FakeTelegramAPI:
    """A fake Bot API server plus a thread-safe control API for tests.

    All recorded data is protected by one lock shared by the server thread and test threads;
    accessors return copies so a test can never observe a half-written record.
    """

    def __init__(
        self,
        token: str | None = TOKEN,
        *,
        bot_first_name: str = "KomInn Test",
        bot_username: str = "kominn_test_bot",
        validate_html: bool = True,
        auto_deliver_webhook: bool = True,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        """Create (not start) the fake.

        ``token``: the only token accepted (others get 401 like Telegram); ``None`` accepts any.
        ``validate_html``: reject malformed ``parse_mode=HTML`` text with Telegram's 400.
        ``auto_deliver_webhook``: while a webhook is set, POST queued updates to it (as
        Telegram does) and retry failed deliveries every ``webhook_retry_delay`` seconds.
        """
        self.token = token or TOKEN
        self._accept_any_token = token is None
        bot_id = int(self.token.split(":", 1)[0]) if self.token.split(":", 1)[0].isdigit() else 1
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._validate_html = validate_html
        self._auto_deliver_webhook = auto_deliver_webhook
        self._webhook_retry_delay = webhook_retry_delay

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)

        # server runtime (owned by the server thread)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._webhook_event: asyncio.Event | None = None
        self._pollers: set[_Poller] = set()
        self._closing = False
        self._port: int | None = None
        self._started_at = time.time()

        # Telegram-side state
        self._next_update_id = 100_000
        self._queue: list[_Entry] = []
        self._updates_by_id: dict[int, JSON] = {}
        self._next_message_id: dict[int | str, int] = {}
        self._messages: dict[tuple[int | str, int], JSON] = {}
        self._bot_message_ids: dict[int | str, list[int]] = {}
        self._users: dict[int, JSON] = {}
        self._chats: dict[int | str, JSON] = {}
        self._callback_ids: set[str] = set()
        self._callback_counter = itertools.count(1)
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._webhook: JSON = self._empty_webhook()
        self._blocked: set[int | str] = set()

        # faults and limits
        self._fail_next: dict[str, deque[_Fault]] = {}
        self._fail_windows: list[tuple[str, float, int]] = []
        self._delays: dict[str, tuple[float, int | None]] = {}
        self._limits: _Limits | None = None
        self._global_bucket: _Bucket | None = None
        self._chat_buckets: dict[int | str, _Bucket] = {}
        self._group_buckets: dict[int | str, _Bucket] = {}
        self._flood_429s = 0

        # records
        self._seq = 0  # one sequence for every record, so ``after=checkpoint()`` works anywhere
        self._sent: list[JSON] = []
        self._edits: list[JSON] = []
        self._deleted: list[JSON] = []
        self._callback_answers: list[JSON] = []
        self._documents: list[JSON] = []
        self._chat_actions: list[JSON] = []
        self._requests: list[JSON] = []
        self._failures: list[JSON] = []
        self._webhook_deliveries: list[JSON] = []
        self._success_times: dict[str, list[float]] = {}

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._port is None:
            raise RuntimeError("FakeTelegramAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_url(...)`` / ``TELEGRAM_API_BASE_URL``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    def start(self) -> FakeTelegramAPI:
        """Start the server thread and block until it listens on a free port."""
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # surfaced to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._closing = False
        self._thread = threading.Thread(target=run, name="FakeTelegramAPI", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeTelegramAPI did not start within 10 s")
        if failure:
            self._thread.join(1)
            loop.close()
            self._thread = None
            self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the server, waking pending long polls so shutdown is immediate."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = None
        self._thread = None
        self._port = None

    def __enter__(self) -> FakeTelegramAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._webhook_event = asyncio.Event()
        self._pump_task = asyncio.create_task(self._webhook_pump())

    async def _astop(self) -> None:
        self._closing = True
        self._wake_in_loop()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _wake(self) -> None:
        """Tell long polls and the webhook pump (in the server loop) that updates arrived."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_in_loop)

    def _wake_in_loop(self) -> None:
        for poller in self._pollers:
            poller.wake.set()
        if self._webhook_event is not None:
            self._webhook_event.set()

    # ------------------------------------------------------------------ HTTP layer

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, JSON]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, JSON] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = {
                            "filename": value.filename,
                            "content": value.file.read(),
                            "mime_type": value.content_type,
                        }
                    else:
                        raw[key] = value
        return {key: _coerce(key, value) for key, value in raw.items()}, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method_raw = request.match_info["method"]
        method = _METHODS.get(method_raw.lower(), method_raw)
        started = time.time()
        params: JSON = {}
        status = 200
        try:
            try:
                params, files = await self._read_params(request)
            except (ValueError, aiohttp.ClientError) as exc:
                raise ApiError(400, f"Bad Request: can't parse request: {exc}") from exc
            if not self._accept_any_token and request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if method_raw.lower() not in _METHODS:
                raise ApiError(404, "Not Found")
            pause = self._take_delay(method)
            if pause:
                await asyncio.sleep(pause)
            with self._lock:
                self._check_faults(method, params)
            if method == "getUpdates":
                result = await self._get_updates(params, request)
            else:
                with self._lock:
                    result = getattr(self, f"_api_{method}")(params, files)
            body: JSON = {"ok": True, "result": result}
            if method in ("setWebhook", "deleteWebhook"):
                body["description"] = self._last_webhook_description
        except ApiError as err:
            status = err.code
            body = err.payload()
        # A client that already hung up (e.g. PTB cancelling its long poll on shutdown) never
        # sees this answer; it is logged but not counted as a failure the bot experienced.
        client_gone = request.transport is None or request.transport.is_closing()
        with self._cond:
            now = time.time()
            self._requests.append(
                {
                    "seq": self._next_seq(),
                    "method": method,
                    "params": params,
                    "status": status,
                    "time": started,
                    "duration": now - started,
                    "client_gone": client_gone,
                }
            )
            if status == 200:
                self._success_times.setdefault(method, []).append(now)
            elif not client_gone:
                self._failures.append(
                    {"method": method, "status": status, "time": now, "response": body}
                )
            self._cond.notify_all()
        if status in _HTML_ERROR_STATUSES:
            phrase = _DEFAULT_DESCRIPTIONS[status]
            page = (
                f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx/1.18.0"
                "</center>\r\n</body>\r\n</html>\r\n"
            )
            return web.Response(text=page, status=status, content_type="text/html")
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not self._accept_any_token and request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        path = request.match_info["path"]
        with self._lock:
            for file_path, content in self._files.values():
                if file_path == path:
                    return web.Response(body=content)
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

    def _take_delay(self, method: str) -> float:
        with self._lock:
            entry = self._delays.get(method)
            if entry is None:
                return 0.0
            seconds, remaining = entry
            if remaining is not None:
                if remaining <= 1:
                    del self._delays[method]
                else:
                    self._delays[method] = (seconds, remaining - 1)
            return seconds

    def _check_faults(self, method: str, params: JSON) -> None:
        """Apply injected failures, blocked users and flood limits (lock held)."""
        queue = self._fail_next.get(method)
        if queue:
            fault = queue.popleft()
            if fault.status == 429:
                retry = fault.retry_after if fault.retry_after is not None else 1
                raise ApiError(
                    429,
                    fault.description or f"Too Many Requests: retry after {math.ceil(retry)}",
                    retry_after=retry,
                )
            raise ApiError(fault.status, fault.description)
        now = time.monotonic()
        self._fail_windows = [w for w in self._fail_windows if w[1] > now]
        for window_method, _until, status in self._fail_windows:
            if window_method == method:
                if status == 429:
                    raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
                raise ApiError(status)
        if method in _SEND_METHODS and "chat_id" in params:
            chat_id = _norm_chat_id(params["chat_id"])
            if chat_id in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            self._check_flood(chat_id, now)

    def _check_flood(self, chat_id: int | str, now: float) -> None:
        limits = self._limits
        if limits is None or self._global_bucket is None:
            return
        buckets = [self._global_bucket]
        chat_bucket = self._chat_buckets.get(chat_id)
        if chat_bucket is None:
            burst = limits.per_chat_burst
            chat_bucket = _Bucket(limits.per_chat_per_second, burst, burst, now)
            self._chat_buckets[chat_id] = chat_bucket
        buckets.append(chat_bucket)
        is_group = isinstance(chat_id, str) or chat_id < 0
        if is_group and limits.per_group_per_minute:
            group_bucket = self._group_buckets.get(chat_id)
            if group_bucket is None:
                per_min = limits.per_group_per_minute
                group_bucket = _Bucket(per_min / 60, per_min, per_min, now)
                self._group_buckets[chat_id] = group_bucket
            buckets.append(group_bucket)
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait_time() for bucket in buckets)
        if wait > limits.jitter:
            self._flood_429s += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        for bucket in buckets:
            bucket.tokens -= 1

    # ------------------------------------------------------------------ Bot API methods

    _last_webhook_description = ""

    def _api_getMe(self, params: JSON, files: dict[str, JSON]) -> JSON:
        return dict(self.bot_user)

    def _api_close(self, params: JSON, files: dict[str, JSON]) -> bool:
        return True

    def _api_logOut(self, params: JSON, files: dict[str, JSON]) -> bool:
        return True

    async def _get_updates(self, params: JSON, request: web.Request) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, min(50.0, float(params.get("timeout") or 0)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        poller = _Poller()
        for other in self._pollers:
            other.terminated = True
            other.wake.set()
        self._pollers.add(poller)
        try:
            while True:
                poller.wake.clear()
                if poller.terminated:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only "
                        "one bot instance is running",
                    )
                with self._lock:
                    if self._webhook["url"]:
                        raise ApiError(
                            409,
                            "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first",
                        )
                    self._confirm(offset)
                    batch = self._queue[:limit]
                    gone = request.transport is None or request.transport.is_closing()
                    if batch and not gone:
                        for entry in batch:
                            entry.delivered = True
                        return [copy.deepcopy(entry.update) for entry in batch]
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing or gone:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poller.wake.wait(), remaining)
        finally:
            self._pollers.discard(poller)

    def _confirm(self, offset: int) -> None:
        """Forget updates confirmed by ``offset`` (lock held).

        Positive offsets confirm every *delivered* update with a smaller id. Requiring
        ``delivered`` lets ``redeliver()`` push an old update_id that the bot will still see.
        A negative offset keeps only the last ``-offset`` updates, as documented by Telegram.
        """
        if offset > 0:
            self._queue = [
                e for e in self._queue if not (e.delivered and e.update["update_id"] < offset)
            ]
        elif offset < 0:
            self._queue = self._queue[offset:]

    def _chat_for(self, chat_id: int | str) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return dict(chat)
        if isinstance(chat_id, int) and chat_id > 0:
            user = self._users.get(chat_id, {})
            return {"id": chat_id, "type": "private", "first_name": user.get("first_name", "?")}
        return {"id": chat_id, "type": "supergroup", "title": f"Chat {chat_id}"}

    def _alloc_message_id(self, chat_id: int | str) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _render_text(self, text: Any, parse_mode: Any, *, caption: bool = False) -> str:
        """Return the plain text Telegram would store, raising its 400s for bad input."""
        raw = "" if text is None else str(text)
        plain = raw
        if isinstance(parse_mode, str) and parse_mode.upper() == "HTML" and self._validate_html:
            plain = _TelegramHTML(raw).parse()
        limit = 1024 if caption else 4096
        if not caption and not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(plain) > limit:
            what = "message caption is too long" if caption else "message is too long"
            raise ApiError(400, f"Bad Request: {what}")
        return plain

    @staticmethod
    def _check_markup(markup: Any) -> JSON | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _new_bot_message(self, chat_id: int | str, extra: JSON, markup: JSON | None) -> JSON:
        message_id = self._alloc_message_id(chat_id)
        message: JSON = {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "chat": self._chat_for(chat_id),
            "date": int(time.time()),
            **extra,
        }
        # Only inline keyboards are echoed back; PTB parses Message.reply_markup as
        # InlineKeyboardMarkup, so echoing a ReplyKeyboardMarkup would break it.
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = message
        self._bot_message_ids.setdefault(chat_id, []).append(message_id)
        return message

    def _api_sendMessage(self, params: JSON, files: dict[str, JSON]) -> JSON:
        chat_id = _norm_chat_id(params.get("chat_id"))
        if "text" not in params:
            raise ApiError(400, "Bad Request: message text is empty")
        plain = self._render_text(params["text"], params.get("parse_mode"))
        markup = self._check_markup(params.get("reply_markup"))
        message = self._new_bot_message(chat_id, {"text": plain}, markup)
        self._sent.append(
            {
                "seq": self._next_seq(),
                "method": "sendMessage",
                "chat_id": chat_id,
                "text": params["text"],
                "plain_text": plain,
                "parse_mode": params.get("parse_mode"),
                "reply_markup": markup,
                "message_id": message["message_id"],
                "time": time.time(),
                "params": params,
            }
        )
        return copy.deepcopy(message)

    def _api_sendDocument(self, params: JSON, files: dict[str, JSON]) -> JSON:
        chat_id = _norm_chat_id(params.get("chat_id"))
        caption = params.get("caption")
        plain_caption = (
            self._render_text(caption, params.get("parse_mode"), caption=True)
            if caption is not None
            else None
        )
        markup = self._check_markup(params.get("reply_markup"))
        upload = files.get("document")
        if upload is None and isinstance(params.get("document"), str):
            ref = str(params["document"])
            if ref.startswith("attach://"):
                upload = files.get(ref.removeprefix("attach://"))
        if upload is not None:
            content: bytes | None = upload["content"]
            filename = upload["filename"] or "document"
            mime_type = upload["mime_type"] or "application/octet-stream"
            file_id = self._store_file("documents", filename, content or b"")
        elif params.get("document"):
            content, filename, mime_type = None, None, None
            file_id = str(params["document"])  # an existing file_id or URL
        else:
            raise ApiError(400, "Bad Request: there is no document in the request")
        document: JSON = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
        if filename:
            document["file_name"] = filename
        if mime_type:
            document["mime_type"] = mime_type
        if content is not None:
            document["file_size"] = len(content)
        extra: JSON = {"document": document}
        if plain_caption is not None:
            extra["caption"] = plain_caption
        message = self._new_bot_message(chat_id, extra, markup)
        record = {
            "seq": self._next_seq(),
            "method": "sendDocument",
            "chat_id": chat_id,
            "text": None,
            "plain_text": None,
            "caption": caption,
            "parse_mode": params.get("parse_mode"),
            "reply_markup": markup,
            "message_id": message["message_id"],
            "filename": filename,
            "content": content,
            "mime_type": mime_type,
            "file_id": file_id,
            "time": time.time(),
            "params": params,
        }
        self._sent.append(record)
        self._documents.append(record)
        return copy.deepcopy(message)

    def _store_file(self, folder: str, filename: str, content: bytes) -> str:
        number = next(self._file_counter)
        file_id = f"BQACAgQAAxkBAAI{number:06d}"
        suffix = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        self._files[file_id] = (f"{folder}/file_{number}.{suffix}", content)
        return file_id

    def _api_getFile(self, params: JSON, files: dict[str, JSON]) -> JSON:
        file_id = str(params.get("file_id", ""))
        stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = stored
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(content),
            "file_path": path,
        }

    def _find_message(self, params: JSON) -> tuple[int | str, int, JSON] | None:
        if params.get("inline_message_id"):
            return None
        chat_id = _norm_chat_id(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        message = self._messages.get((chat_id, message_id))
        if message is None or message.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat_id, message_id, message

    def _api_editMessageText(self, params: JSON, files: dict[str, JSON]) -> JSON | bool:
        if "text" not in params:
            raise ApiError(400, "Bad Request: text must be non-empty")
        plain = self._render_text(params["text"], params.get("parse_mode"))
        markup = self._check_markup(params.get("reply_markup"))
        found = self._find_message(params)
        record = {
            "seq": self._next_seq(),
            "method": "editMessageText",
            "chat_id": found[0] if found else None,
            "message_id": found[1] if found else None,
            "inline_message_id": params.get("inline_message_id"),
            "text": params["text"],
            "plain_text": plain,
            "parse_mode": params.get("parse_mode"),
            "reply_markup": markup,
            "time": time.time(),
            "params": params,
        }
        if found is None:
            self._edits.append(record)
            return True
        _chat_id, _message_id, message = found
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if message.get("text") == plain and message.get("reply_markup") == new_markup:
            raise ApiError(400, _NOT_MODIFIED)
        message["text"] = plain
        message["edit_date"] = int(time.time())
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        self._edits.append(record)
        return copy.deepcopy(message)

    def _api_editMessageReplyMarkup(self, params: JSON, files: dict[str, JSON]) -> JSON | bool:
        markup = self._check_markup(params.get("reply_markup"))
        found = self._find_message(params)
        record = {
            "seq": self._next_seq(),
            "method": "editMessageReplyMarkup",
            "chat_id": found[0] if found else None,
            "message_id": found[1] if found else None,
            "inline_message_id": params.get("inline_message_id"),
            "text": None,
            "reply_markup": markup,
            "time": time.time(),
            "params": params,
        }
        if found is None:
            self._edits.append(record)
            return True
        message = found[2]
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if message.get("reply_markup") == new_markup:
            raise ApiError(400, _NOT_MODIFIED)
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        self._edits.append(record)
        return copy.deepcopy(message)

    def _api_deleteMessage(self, params: JSON, files: dict[str, JSON]) -> bool:
        chat_id = _norm_chat_id(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        if self._messages.pop((chat_id, message_id), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        ids = self._bot_message_ids.get(chat_id, [])
        if message_id in ids:
            ids.remove(message_id)
        self._deleted.append({"chat_id": chat_id, "message_id": message_id, "time": time.time()})
        return True

    def _api_answerCallbackQuery(self, params: JSON, files: dict[str, JSON]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._callback_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._callback_answers.append(
            {
                "seq": self._next_seq(),
                "callback_query_id": query_id,
                "text": params.get("text"),
                "show_alert": bool(params.get("show_alert", False)),
                "url": params.get("url"),
                "cache_time": params.get("cache_time"),
                "time": time.time(),
            }
        )
        return True

    def _api_setMyCommands(self, params: JSON, files: dict[str, JSON]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            name = name.removeprefix("/")
            valid = 1 <= len(name) <= 32 and all(
                c.islower() or c.isdigit() or c == "_" for c in name
            )
            if not valid or not name.isascii():
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            description = str(command.get("description", ""))
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        if commands:
            self._commands[key] = copy.deepcopy(commands)
        else:
            self._commands.pop(key, None)
        return True

    def _api_getMyCommands(self, params: JSON, files: dict[str, JSON]) -> list[JSON]:
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return copy.deepcopy(self._commands.get(key, []))

    def _api_deleteMyCommands(self, params: JSON, files: dict[str, JSON]) -> bool:
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    @staticmethod
    def _empty_webhook() -> JSON:
        return {
            "url": "",
            "secret_token": None,
            "allowed_updates": None,
            "max_connections": None,
            "ip_address": None,
            "set_at": None,
            "last_error_date": None,
            "last_error_message": None,
        }

    def _api_setWebhook(self, params: JSON, files: dict[str, JSON]) -> bool:
        url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            self._queue.clear()
        if not url:  # Telegram treats an empty url as "remove the webhook"
            was_set = bool(self._webhook["url"])
            self._webhook = self._empty_webhook()
            self._last_webhook_description = (
                "Webhook was deleted" if was_set else "Webhook is already deleted"
            )
            return True
        self._webhook = {
            **self._empty_webhook(),
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections"),
            "ip_address": params.get("ip_address"),
            "has_certificate": "certificate" in files,
            "set_at": time.time(),
        }
        self._last_webhook_description = "Webhook was set"
        self._wake()
        return True

    def _api_deleteWebhook(self, params: JSON, files: dict[str, JSON]) -> bool:
        if params.get("drop_pending_updates"):
            self._queue.clear()
        was_set = bool(self._webhook["url"])
        self._webhook = self._empty_webhook()
        self._last_webhook_description = (
            "Webhook was deleted" if was_set else "Webhook is already deleted"
        )
        return True

    def _api_getWebhookInfo(self, params: JSON, files: dict[str, JSON]) -> JSON:
        hook = self._webhook
        info: JSON = {
            "url": hook["url"],
            "has_custom_certificate": bool(hook.get("has_certificate")),
            "pending_update_count": len(self._queue),
        }
        if hook["url"]:
            info["max_connections"] = hook["max_connections"] or 40
            if hook["ip_address"]:
                info["ip_address"] = hook["ip_address"]
            if hook["allowed_updates"]:
                info["allowed_updates"] = hook["allowed_updates"]
            if hook["last_error_date"]:
                info["last_error_date"] = hook["last_error_date"]
                info["last_error_message"] = hook["last_error_message"]
        return info

    def _api_sendChatAction(self, params: JSON, files: dict[str, JSON]) -> bool:
        chat_id = _norm_chat_id(params.get("chat_id"))
        self._chat_actions.append(
            {"chat_id": chat_id, "action": params.get("action"), "time": time.time()}
        )
        return True

    # ------------------------------------------------------------------ webhook delivery

    async def _post_json(self, url: str, update: JSON, secret: str | None) -> int:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with self._session.post(url, data=json.dumps(update), headers=headers) as resp:
            await resp.read()
            return resp.status

    async def _webhook_pump(self) -> None:
        """Deliver queued updates to the webhook one at a time, retrying like Telegram."""
        assert self._webhook_event is not None
        while not self._closing:
            self._webhook_event.clear()
            with self._lock:
                url = self._webhook["url"]
                secret = self._webhook["secret_token"]
                entry = self._queue[0] if (url and self._queue) else None
            if entry is None or not self._auto_deliver_webhook:
                await self._webhook_event.wait()
                continue
            error: str | None = None
            try:
                status: int | None = await self._post_json(url, entry.update, secret)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            ok = status is not None and 200 <= status < 300
            with self._cond:
                self._webhook_deliveries.append(
                    {
                        "update_id": entry.update["update_id"],
                        "url": url,
                        "status": status,
                        "error": error,
                        "time": time.time(),
                    }
                )
                if ok:
                    with contextlib.suppress(ValueError):
                        self._queue.remove(entry)
                else:
                    self._webhook["last_error_date"] = int(time.time())
                    self._webhook["last_error_message"] = error or f"Wrong response: {status}"
                self._cond.notify_all()
            if not ok:
                await asyncio.sleep(self._webhook_retry_delay)

    # ------------------------------------------------------------------ control: updates

    def _user(self, user_id: int, first_name: str | None, language_code: str | None) -> JSON:
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": first_name or "Kari"}
            if language_code is not None:
                user["language_code"] = language_code
            self._users[user_id] = user
        else:
            if first_name is not None:
                user["first_name"] = first_name
            if language_code is not None:
                user["language_code"] = language_code
        return dict(user)

    def _user_chat(
        self, user: JSON, chat_type: str = "private", chat_id: int | None = None
    ) -> JSON:
        if chat_type == "private":
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        else:
            if chat_id is None:
                raise ValueError("group chats need an explicit (negative) chat_id")
            chat = {"id": chat_id, "type": chat_type, "title": f"Test {chat_type} {chat_id}"}
        existing = self._chats.get(chat["id"])
        if existing is None or chat_type == "private":
            self._chats[chat["id"]] = chat
        return dict(self._chats[chat["id"]])

    def _next_update(self) -> int:
        self._next_update_id += 1
        return self._next_update_id

    def build_user_message(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "nb",
        first_name: str = "Kari",
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> JSON:
        """Build (but do not enqueue) a message Update; useful for ``post_to_webhook``.

        A leading ``/command`` gets a ``bot_command`` entity, because PTB's CommandHandler only
        matches messages that carry one, exactly as real Telegram clients send them.
        """
        with self._lock:
            user = self._user(user_id, first_name, language_code)
            chat = self._user_chat(user, chat_type, chat_id)
            message: JSON = {
                "message_id": self._alloc_message_id(chat["id"]),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
                ]
            self._messages[(chat["id"], message["message_id"])] = message
            return {"update_id": self._next_update(), "message": copy.deepcopy(message)}

    def user_message(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "nb",
        first_name: str = "Kari",
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> int:
        """Enqueue a text message from a user; returns its update_id."""
        update = self.build_user_message(
            user_id,
            text,
            language_code=language_code,
            first_name=first_name,
            chat_type=chat_type,
            chat_id=chat_id,
        )
        return self.enqueue(update)

    def build_press(
        self,
        user_id: int,
        callback_data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        strict: bool = True,
    ) -> JSON:
        """Build (but do not enqueue) a callback_query Update for an inline button press.

        With ``message_id=None`` the newest bot message in the chat whose keyboard has a
        button with ``callback_data`` is used (falling back to the newest bot message).
        ``strict`` raises ``ValueError`` if that message has no such button, because the
        real client can only press buttons that exist; pass ``strict=False`` to forge data.
        """
        with self._lock:
            chat_key: int | str = user_id if chat_id is None else chat_id
            ids = self._bot_message_ids.get(chat_key, [])
            if message_id is None:
                candidates = [
                    mid
                    for mid in reversed(ids)
                    if callback_data
                    in _callback_datas(self._messages[(chat_key, mid)].get("reply_markup"))
                ]
                if candidates:
                    message_id = candidates[0]
                elif ids:
                    message_id = ids[-1]
                else:
                    raise ValueError(f"no bot message in chat {chat_key} to press a button on")
            message = self._messages.get((chat_key, message_id))
            if message is None:
                raise ValueError(f"no message {message_id} in chat {chat_key}")
            if strict and callback_data not in _callback_datas(message.get("reply_markup")):
                raise ValueError(
                    f"message {message_id} in chat {chat_key} has no button with callback_data "
                    f"{callback_data!r}; buttons: {_callback_datas(message.get('reply_markup'))}"
                )
            user = self._user(user_id, None, None)
            query_id = str(4_000_000_000_000 + next(self._callback_counter))
            self._callback_ids.add(query_id)
            return {
                "update_id": self._next_update(),
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": copy.deepcopy(message),
                    "chat_instance": str(abs(hash(("chat_instance", chat_key)))),
                    "data": callback_data,
                },
            }

    def press(
        self,
        user_id: int,
        callback_data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        strict: bool = True,
    ) -> int:
        """Enqueue an inline-button press (see ``build_press``); returns its update_id."""
        update = self.build_press(
            user_id, callback_data, message_id=message_id, chat_id=chat_id, strict=strict
        )
        return self.enqueue(update)

    def press_button(self, user_id: int, label: str, *, chat_id: int | None = None) -> int:
        """Press the button whose visible text is ``label`` on the newest bot message with it."""
        with self._lock:
            chat_key: int | str = user_id if chat_id is None else chat_id
            for mid in reversed(self._bot_message_ids.get(chat_key, [])):
                markup = self._messages[(chat_key, mid)].get("reply_markup") or {}
                for row in markup.get("inline_keyboard", []):
                    for button in row:
                        if button.get("text") == label and "callback_data" in button:
                            data = str(button["callback_data"])
                            return self.press(user_id, data, message_id=mid, chat_id=chat_id)
        raise ValueError(f"no inline button labelled {label!r} in chat {chat_key}")

    def share_location(self, user_id: int, lat: float, lon: float) -> int:
        """Enqueue a location message from a user (private chat); returns its update_id."""
        with self._lock:
            user = self._user(user_id, None, None)
            chat = self._user_chat(user)
            message = {
                "message_id": self._alloc_message_id(chat["id"]),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "location": {"latitude": lat, "longitude": lon},
            }
            self._messages[(chat["id"], message["message_id"])] = message
            update = {"update_id": self._next_update(), "message": copy.deepcopy(message)}
        return self.enqueue(update)

    def user_document(
        self,
        user_id: int,
        filename: str,
        content: bytes,
        *,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
    ) -> int:
        """Enqueue a document message from a user; the bot can download it via getFile."""
        with self._lock:
            user = self._user(user_id, None, None)
            chat = self._user_chat(user)
            file_id = self._store_file("documents", filename, content)
            message: JSON = {
                "message_id": self._alloc_message_id(chat["id"]),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "document": {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_name": filename,
                    "mime_type": mime_type,
                    "file_size": len(content),
                },
            }
            if caption is not None:
                message["caption"] = caption
            self._messages[(chat["id"], message["message_id"])] = message
            update = {"update_id": self._next_update(), "message": copy.deepcopy(message)}
        return self.enqueue(update)

    def enqueue(self, update: Mapping[str, Any]) -> int:
        """Queue any raw Update dict for getUpdates / webhook delivery; returns its update_id.

        A missing ``update_id`` is assigned. Re-enqueueing an existing update_id is allowed and
        is how a Telegram redelivery is simulated.
        """
        raw = copy.deepcopy(dict(update))
        with self._cond:
            if "update_id" not in raw:
                raw["update_id"] = self._next_update()
            else:
                self._next_update_id = max(self._next_update_id, int(raw["update_id"]))
            query = raw.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_ids.add(str(query["id"]))
            self._updates_by_id[int(raw["update_id"])] = raw
            self._queue.append(_Entry(raw))
            self._cond.notify_all()
        self._wake()
        return int(raw["update_id"])

    def redeliver(self, update_id: int) -> int:
        """Deliver an earlier update again with the same update_id (Telegram does this after
        timeouts or crashes); the bot must treat it idempotently."""
        with self._lock:
            update = self._updates_by_id.get(update_id)
            if update is None:
                raise KeyError(f"unknown update_id {update_id}")
        return self.enqueue(update)

    def take_pending(self) -> JSON | None:
        """Take the oldest queued update off the queue (as delivered), for a test that
        delivers updates itself (``auto_deliver_webhook=False``: e.g. round-robin to several
        workers); None when nothing is queued."""
        with self._cond:
            if not self._queue:
                return None
            entry = self._queue.pop(0)
            self._cond.notify_all()
            return copy.deepcopy(entry.update)

    def pending_updates(self) -> list[JSON]:
        """Updates the bot has not confirmed yet (what Telegram's pending_update_count counts)."""
        with self._lock:
            return [copy.deepcopy(entry.update) for entry in self._queue]

    def block_user(self, user_id: int, blocked: bool = True) -> None:
        """Make sends to ``user_id`` fail with 403 "bot was blocked by the user"."""
        with self._lock:
            if blocked:
                self._blocked.add(user_id)
            else:
                self._blocked.discard(user_id)

    # ------------------------------------------------------------------ control: webhook

    def _webhook_target(self, secret: Any) -> tuple[str, str | None]:
        with self._lock:
            url = self._webhook["url"]
            registered = self._webhook["secret_token"]
        if not url:
            raise RuntimeError("no webhook is set (the bot never called setWebhook)")
        return url, registered if secret is _REGISTERED else secret

    def _prepare_webhook_update(self, update: Mapping[str, Any] | int) -> JSON:
        if isinstance(update, int):
            with self._lock:
                return copy.deepcopy(self._updates_by_id[update])
        raw = copy.deepcopy(dict(update))
        with self._lock:
            if "update_id" not in raw:
                raw["update_id"] = self._next_update()
            query = raw.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_ids.add(str(query["id"]))
            self._updates_by_id[int(raw["update_id"])] = raw
        return raw

    def post_to_webhook(
        self, update: Mapping[str, Any] | int, secret: Any = _REGISTERED, timeout: float = 10
    ) -> int:
        """POST one update to the registered webhook url and return the HTTP status.

        ``secret`` defaults to the secret_token given to setWebhook; pass ``None`` to omit the
        header or a string to send a wrong one. This blocks the calling thread, so it refuses
        to run inside an event loop (the bot's webhook server may live on that very loop and
        would never answer): use ``await fake.apost_to_webhook(...)`` there.
        """
        _refuse_in_loop("post_to_webhook", "apost_to_webhook")
        url, header = self._webhook_target(secret)
        payload = self._prepare_webhook_update(update)
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._post_json(url, payload, header), loop)
        return future.result(timeout)

    async def apost_to_webhook(
        self, update: Mapping[str, Any] | int, secret: Any = _REGISTERED
    ) -> int:
        """Async variant of ``post_to_webhook`` for tests whose loop also runs the bot."""
        url, header = self._webhook_target(secret)
        payload = self._prepare_webhook_update(update)
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._post_json(url, payload, header), loop)
        return await asyncio.wrap_future(future)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("FakeTelegramAPI is not started")
        return self._loop

    # ------------------------------------------------------------------ control: faults

    def fail_next(
        self,
        method: str,
        n: int = 1,
        *,
        status: int = 429,
        retry_after: float = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls of ``method`` with an error.

        429 carries ``parameters.retry_after`` (Telegram sends whole seconds; a float such as
        0.2 also works with PTB and keeps tests fast). 502/504 come back as nginx HTML pages,
        like Telegram's front proxy, other statuses as JSON envelopes.
        """
        canonical = _METHODS.get(method.lower(), method)
        fault = _Fault(status, retry_after if status == 429 else None, description)
        with self._lock:
            self._fail_next.setdefault(canonical, deque()).extend([fault] * n)

    def fail_for(self, seconds: float, status: int = 500, *, method: str = "sendMessage") -> None:
        """Fail every call of ``method`` (default sendMessage) for the next ``seconds``."""
        canonical = _METHODS.get(method.lower(), method)
        with self._lock:
            self._fail_windows.append((canonical, time.monotonic() + seconds, status))

    def delay(self, method: str, seconds: float, *, n: int | None = None) -> None:
        """Sleep ``seconds`` before answering ``method`` (the next ``n`` calls, or all).

        The call is still executed after the pause, even if the client gave up: Telegram may
        deliver a message whose request timed out, so a naive retry duplicates it.
        ``delay(method, 0)`` removes the delay.
        """
        canonical = _METHODS.get(method.lower(), method)
        with self._lock:
            if seconds <= 0:
                self._delays.pop(canonical, None)
            else:
                self._delays[canonical] = (seconds, n)

    def enforce_limits(
        self,
        global_per_second: float = 30,
        per_chat_per_second: float = 1,
        *,
        per_chat_burst: int = 1,
        per_group_per_minute: float | None = 20,
        jitter: float = 0.05,
    ) -> None:
        """Answer 429 + retry_after when sends exceed Telegram's documented flood limits.

        Token buckets: ``global_per_second`` across all chats (burst of the same size),
        ``per_chat_per_second`` per chat with ``per_chat_burst`` tokens (1 = strict; the real
        server tolerates short bursts), and ``per_group_per_minute`` for groups/channels.
        A call arriving at most ``jitter`` seconds early is still accepted: a client limiter
        that paces correctly (PTB's AIORateLimiter) sees its requests reordered and bunched by
        a few milliseconds on the way, and should not be punished for that.
        Rejected calls are counted in ``flood_429s``.
        """
        with self._lock:
            now = time.monotonic()
            self._limits = _Limits(
                global_per_second,
                per_chat_per_second,
                per_chat_burst,
                per_group_per_minute,
                jitter,
            )
            self._global_bucket = _Bucket(
                global_per_second, global_per_second, global_per_second, now
            )
            self._chat_buckets.clear()
            self._group_buckets.clear()

    def disable_limits(self) -> None:
        """Turn flood limits off again."""
        with self._lock:
            self._limits = None
            self._global_bucket = None

    @property
    def flood_429s(self) -> int:
        """How many calls were refused by ``enforce_limits``."""
        with self._lock:
            return self._flood_429s

    # ------------------------------------------------------------------ control: observing

    def sent(self, chat_id: int | str | None = None, *, after: int = 0) -> list[JSON]:
        """Outgoing messages (sendMessage and sendDocument), oldest first.

        Each record: seq, method, chat_id, text (as sent), plain_text (after HTML parsing),
        parse_mode, reply_markup (dict), message_id, time, params; documents also filename,
        content, mime_type, caption. ``after`` filters on ``seq`` (see ``checkpoint``).
        """
        with self._lock:
            return [
                dict(record)
                for record in self._sent
                if (chat_id is None or record["chat_id"] == chat_id) and record["seq"] > after
            ]

    def texts(self, chat_id: int | str | None = None, *, after: int = 0) -> list[str]:
        """Plain texts of sent messages: the quickest thing to assert on."""
        return [r["plain_text"] for r in self.sent(chat_id, after=after) if r["plain_text"]]

    def last_message(self, chat_id: int | str) -> JSON | None:
        """The newest bot message in a chat as Telegram stores it (edits applied)."""
        with self._lock:
            ids = self._bot_message_ids.get(chat_id)
            return copy.deepcopy(self._messages[(chat_id, ids[-1])]) if ids else None

    def buttons(self, chat_id: int | str, message_id: int | None = None) -> list[tuple[str, str]]:
        """(label, callback_data) of the inline keyboard on a bot message (default: newest)."""
        with self._lock:
            ids = self._bot_message_ids.get(chat_id, [])
            mid = message_id if message_id is not None else (ids[-1] if ids else None)
            message = self._messages.get((chat_id, mid)) if mid is not None else None
            markup = (message or {}).get("reply_markup") or {}
            return [
                (str(b.get("text")), str(b["callback_data"]))
                for row in markup.get("inline_keyboard", [])
                for b in row
                if "callback_data" in b
            ]

    def checkpoint(self) -> int:
        """Current record sequence number; pass as ``after=`` to only see newer records."""
        with self._lock:
            return self._seq

    @property
    def edits(self) -> list[JSON]:
        """editMessageText / editMessageReplyMarkup calls that succeeded."""
        with self._lock:
            return [dict(r) for r in self._edits]

    @property
    def deleted(self) -> list[JSON]:
        """deleteMessage calls that succeeded."""
        with self._lock:
            return [dict(r) for r in self._deleted]

    @property
    def callback_answers(self) -> list[JSON]:
        """answerCallbackQuery calls: callback_query_id, text, show_alert, url, cache_time."""
        with self._lock:
            return [dict(r) for r in self._callback_answers]

    @property
    def documents(self) -> list[JSON]:
        """sendDocument calls: chat_id, filename, content (bytes), mime_type, caption, ..."""
        with self._lock:
            return [dict(r) for r in self._documents]

    @property
    def chat_actions(self) -> list[JSON]:
        """sendChatAction calls: chat_id, action, time."""
        with self._lock:
            return [dict(r) for r in self._chat_actions]

    @property
    def commands(self) -> dict[tuple[str, str], list[JSON]]:
        """Registered commands keyed by (scope key, language_code); scope keys look like
        ``default``, ``all_private_chats``, ``chat:42``, ``chat_member:-100:42``."""
        with self._lock:
            return copy.deepcopy(self._commands)

    def commands_for(self, scope: str = "default", language_code: str = "") -> list[JSON]:
        """Commands for one scope key and language ('' = all languages)."""
        with self._lock:
            return copy.deepcopy(self._commands.get((scope, language_code), []))

    @property
    def webhook(self) -> JSON:
        """The webhook as last set: url ('' when none), secret_token, allowed_updates, ..."""
        with self._lock:
            return dict(self._webhook)

    @property
    def webhook_deliveries(self) -> list[JSON]:
        """Automatic webhook POSTs: update_id, url, status (None on connection error), error."""
        with self._lock:
            return [dict(r) for r in self._webhook_deliveries]

    @property
    def requests(self) -> list[JSON]:
        """Every API call received: method, params, status, time, duration."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def failures(self) -> list[JSON]:
        """Every call answered with an error: method, status, time, response body."""
        with self._lock:
            return [dict(r) for r in self._failures]

    def call_count(self, method: str, *, status: int | None = None) -> int:
        """Number of calls of ``method`` (optionally only those answered with ``status``)."""
        canonical = _METHODS.get(method.lower(), method)
        with self._lock:
            return sum(
                1
                for r in self._requests
                if r["method"] == canonical and (status is None or r["status"] == status)
            )

    def messages_per_second(self, method: str = "sendMessage") -> dict[int, int]:
        """Successful calls of ``method`` per wall-clock second (``int(time.time())``)."""
        canonical = _METHODS.get(method.lower(), method)
        counts: dict[int, int] = {}
        with self._lock:
            for stamp in self._success_times.get(canonical, []):
                counts[int(stamp)] = counts.get(int(stamp), 0) + 1
        return counts

    # ------------------------------------------------------------------ waiting

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10) -> T:
        """Block until ``predicate()`` is truthy and return its value.

        Re-evaluated whenever the server records something. Refuses to run inside an event
        loop, since blocking that loop would also freeze an in-process bot; use
        ``await_condition`` there.
        """
        _refuse_in_loop("wait_for", "await_condition")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s\n{self.describe()}")
                self._cond.wait(min(remaining, 0.05))

    def wait_for_messages(
        self, chat_id: int | str, n: int = 1, timeout: float = 10, *, after: int = 0
    ) -> list[JSON]:
        """Block until at least ``n`` messages (newer than ``after``) were sent to ``chat_id``."""
        return self.wait_for(lambda: _at_least(self.sent(chat_id, after=after), n), timeout)

    async def await_condition(self, predicate: Callable[[], T], timeout: float = 10) -> T:
        """Async ``wait_for``: polls without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s\n{self.describe()}")
            await asyncio.sleep(0.01)

    async def await_messages(
        self, chat_id: int | str, n: int = 1, timeout: float = 10, *, after: int = 0
    ) -> list[JSON]:
        """Async ``wait_for_messages``."""
        return await self.await_condition(
            lambda: _at_least(self.sent(chat_id, after=after), n), timeout
        )

    def describe(self, last: int = 15) -> str:
        """Recent API traffic, appended to timeout errors so failures explain themselves."""
        with self._lock:
            lines = [f"last {last} API calls:"]
            for r in self._requests[-last:]:
                params = {k: v for k, v in r["params"].items() if k != "document"}
                lines.append(f"  {r['status']} {r['method']} {json.dumps(params, default=str)}")
            lines.append(f"pending updates: {[e.update['update_id'] for e in self._queue]}")
            return "\n".join(lines)


def _at_least(records: list[JSON], n: int) -> list[JSON] | None:
    return records if len(records) >= n else None


def _refuse_in_loop(name: str, alternative: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{name}() blocks the thread and would freeze this event loop (and a bot running on "
        f"it); use `await fake.{alternative}(...)` in async code"
    )
