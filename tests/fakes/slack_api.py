"""A local fake of the Slack Web API (plus response_url and file-upload endpoints) for tests.

Why a real HTTP server instead of mocking ``AsyncWebClient``: the Slack adapter is built on Bolt,
and Bolt itself calls the Web API (``auth.test`` on the first request, ``respond()`` via the
response_url, ``files_upload_v2``'s three-step dance). Only a server that speaks HTTP like Slack
exercises that real code path, including slack_sdk's request encoding (JSON vs form vs query
string) and its error handling (``ok: false``, HTTP 429 + ``Retry-After``).

Why a background thread with its own event loop: the same fake must serve

* async tests, whose event loop runs the Bolt app (a server on that loop would be starved while a
  test blocks, and pytest-asyncio gives each test a fresh loop),
* sync tests that block in :meth:`FakeSlackAPI.wait_for`,
* subprocesses started with ``SLACK_API_URL=fake.url`` (see :meth:`FakeSlackAPI.env`).

Usage::

    with FakeSlackAPI(usergroups={"S1": ["U1"]}) as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.calls("chat.postMessage")[0]["args"]["text"] == "hi"

All recorded data is returned as deep copies, so tests can't corrupt the fake's state and reads
are safe while the server thread keeps writing.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from tests.fakes.slack_signing import API_APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["FakeSlackAPI", "fake_slack_api"]

JSONDict = dict[str, Any]
_Answer = tuple[int, JSONDict, dict[str, str]]

# Form/query values Slack accepts as JSON-encoded strings; slack_sdk sends several methods
# (files.completeUploadExternal, GET methods) that way, so decode them for uniform asserts.
_JSON_ARG_KEYS = frozenset({"blocks", "attachments", "view", "files", "metadata", "channels"})


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: float | None


class FakeSlackAPI:
    """Fake Slack Web API server on ``127.0.0.1:<random port>``; a context manager.

    ``url`` ends with ``/api/`` like ``https://slack.com/api/``, so it can be used directly as
    ``AsyncWebClient(base_url=fake.url)`` or as env ``SLACK_API_URL``.

    Configuration: ``usergroups`` maps usergroup id -> member ids (usergroups.users.list);
    ``users`` maps user id -> display name (users.info); ``locales`` maps user id -> Slack
    locale such as ``"en-US"`` (users.info with ``include_locale``, see :meth:`set_locale`);
    ``require_token`` answers ``not_authed`` to calls without a Bearer/``token`` credential,
    as Slack does.
    """

    def __init__(
        self,
        *,
        usergroups: Mapping[str, list[str]] | None = None,
        users: Mapping[str, str] | None = None,
        locales: Mapping[str, str] | None = None,
        team_id: str = TEAM_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        require_token: bool = True,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.require_token = require_token

        self._lock = threading.Condition()
        self._usergroups: dict[str, list[str]] = {k: list(v) for k, v in (usergroups or {}).items()}
        self._users: dict[str, JSONDict] = {}
        for uid, display in (users or {}).items():
            self.set_user(uid, display_name=display)
        for uid, locale in (locales or {}).items():
            self.set_locale(uid, locale)

        self._calls: list[JSONDict] = []
        self._responses: dict[str, list[JSONDict]] = {}
        self._messages: list[JSONDict] = []
        self._ephemerals: list[JSONDict] = []
        self._views: dict[str, JSONDict] = {}
        self._opened_views: list[JSONDict] = []
        self._home_views: dict[str, JSONDict] = {}
        self._pending_files: dict[str, JSONDict] = {}
        self._uploads: list[JSONDict] = []
        self._delays: dict[str, float] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._seq = itertools.count(1)

        self._handlers: dict[str, Callable[[JSONDict], JSONDict]] = {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.port: int = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeSlackAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving in a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("FakeSlackAPI already started")
        self._ready.clear()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="FakeSlackAPI", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeSlackAPI did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("FakeSlackAPI failed to start") from self._startup_error

    def stop(self) -> None:
        """Stop the server and its loop; in-flight (delayed) requests are cut off."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def _run(self) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("*", "/upload/{file_id}", self._handle_upload)
        app.router.add_route("*", "/response/{name}", self._handle_response)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]  # port 0: the OS picked a free one

    # ------------------------------------------------------------------ addresses

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if not self.port:
            raise RuntimeError("FakeSlackAPI is not started (use it as a context manager)")
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Web API base URL ending in ``/api/``: for ``base_url=`` and env ``SLACK_API_URL``."""
        return f"{self.root}/api/"

    def response_url(self, name: str = "x") -> str:
        """A response_url on this server; POSTs to it are recorded under *name*."""
        return f"{self.root}/response/{name}"

    def env(self) -> dict[str, str]:
        """Env vars for a subprocess running the adapter against this fake."""
        return {"SLACK_API_URL": self.url}

    def async_client(self, token: str = "xoxb-test") -> AsyncWebClient:
        """An ``AsyncWebClient`` pointed at this fake (what the adapter builds from the env)."""
        from slack_sdk.web.async_client import AsyncWebClient

        return AsyncWebClient(token=token, base_url=self.url)

    # ------------------------------------------------------------------ configuration

    def set_usergroup_members(self, usergroup_id: str, user_ids: list[str]) -> None:
        """Configure what usergroups.users.list returns for *usergroup_id*."""
        with self._lock:
            self._usergroups[usergroup_id] = list(user_ids)

    def set_user(
        self,
        user_id: str,
        display_name: str = "",
        real_name: str | None = None,
        *,
        name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        locale: str | None = None,
        **profile: Any,
    ) -> None:
        """Configure users.info for *user_id*. Unconfigured users get a default profile
        with an empty display_name (common in real workspaces, so fallbacks get exercised).

        *locale* (``"nb-NO"``, ``"en-US"``…) is returned as ``user.locale`` only when the call
        passes ``include_locale``, like Slack; ``None`` (the default, also for unconfigured
        users) leaves it out, so the adapter's fallback to KOMINN_LOCALE gets exercised."""
        real = real_name if real_name is not None else (display_name or f"User {user_id}")
        prof = {
            "display_name": display_name,
            "display_name_normalized": display_name,
            "real_name": real,
            "real_name_normalized": real,
            **profile,
        }
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name or user_id.lower(),
                "deleted": deleted,
                "real_name": real,
                "tz": "Europe/Oslo",
                "is_bot": is_bot,
                "profile": prof,
            }
            if locale is not None:
                self._users[user_id]["locale"] = locale

    def set_locale(self, user_id: str, locale: str | None) -> None:
        """Set (or with ``None`` remove) the Slack locale users.info reports for *user_id*,
        keeping the rest of the profile (a default one for an unconfigured user)."""
        with self._lock:
            if user_id not in self._users:
                self.set_user(user_id)
            if locale is None:
                self._users[user_id].pop("locale", None)
            else:
                self._users[user_id]["locale"] = locale

    def delay(self, method: str, seconds: float) -> None:
        """Answer every later call of *method* (``"*"`` = all methods) *seconds* late.

        The call is recorded and its effect applied on arrival; only the HTTP answer waits, so
        this models slow Slack/network (e.g. to check the adapter acks within 3 s anyway).
        ``seconds=0`` removes the delay.
        """
        with self._lock:
            if seconds <= 0:
                self._delays.pop(method, None)
            else:
                self._delays[method] = seconds

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: float | None = 1,
        *,
        times: int = 1,
    ) -> None:
        """Make the next *times* calls of *method* fail with ``{"ok": false, "error": error}``.

        ``status=429`` plus ``Retry-After`` is Slack's rate limit; use ``status=200`` for
        ordinary API errors (``error="expired_trigger_id"``, ``"invalid_auth"``...).
        ``retry_after=None`` omits the header. Failed calls are recorded with their error.
        """
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            for _ in range(times):
                queue.append(_Failure(error, status, retry_after))

    def reset(self) -> None:
        """Forget recorded calls/responses/messages and fault knobs; keep users/usergroups."""
        with self._lock:
            self._calls.clear()
            self._responses.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._opened_views.clear()
            self._home_views.clear()
            self._pending_files.clear()
            self._uploads.clear()
            self._delays.clear()
            self._failures.clear()

    # ------------------------------------------------------------------ observing

    def calls(self, method: str | None = None) -> list[JSONDict]:
        """Recorded API calls, oldest first: dicts with ``method``, ``args`` (query + body
        merged, JSON-string fields decoded), ``time``, ``token``, ``http_method``, ``status``,
        ``response`` and ``known`` (False for methods answered by the catch-all)."""
        with self._lock:
            return copy.deepcopy([c for c in self._calls if method in (None, c["method"])])

    def call_count(self, method: str) -> int:
        """How often *method* was called (e.g. to check the adapter caches usergroups)."""
        with self._lock:
            return sum(1 for c in self._calls if c["method"] == method)

    def unknown_methods(self) -> list[str]:
        """Names of called methods the fake has no specific handler for (answered ok)."""
        with self._lock:
            return sorted({c["method"] for c in self._calls if not c["known"]})

    def wait_for(self, method: str, n: int = 1, timeout: float = 10) -> list[JSONDict]:
        """Block until *method* was called at least *n* times; return those calls.

        Refuses to run inside an event loop: blocking there would freeze the Bolt app that is
        supposed to make the call. Use ``await fake.await_calls(...)`` in async tests.
        """
        _refuse_in_event_loop("wait_for", "await_calls")
        with self._lock:
            ok = self._lock.wait_for(lambda: self._count(method) >= n, timeout)
        if not ok:
            raise TimeoutError(self._timeout_message(method, n, timeout))
        return self.calls(method)

    async def await_calls(self, method: str, n: int = 1, timeout: float = 10) -> list[JSONDict]:
        """Async :meth:`wait_for`: lets the caller's loop (and the Bolt app on it) keep going."""
        deadline = time.monotonic() + timeout
        while self.call_count(method) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(self._timeout_message(method, n, timeout))
            await asyncio.sleep(0.005)
        return self.calls(method)

    def responses(self, name: str = "x") -> list[JSONDict]:
        """JSON bodies POSTed to ``response_url(name)``, oldest first."""
        with self._lock:
            return copy.deepcopy(self._responses.get(name, []))

    def wait_for_responses(
        self, name: str = "x", n: int = 1, timeout: float = 10
    ) -> list[JSONDict]:
        """Block until ``response_url(name)`` received *n* posts (not inside an event loop)."""
        _refuse_in_event_loop("wait_for_responses", "await_responses")
        with self._lock:
            ok = self._lock.wait_for(lambda: len(self._responses.get(name, [])) >= n, timeout)
        if not ok:
            raise TimeoutError(
                f"response_url {name!r}: wanted {n} posts, got {self.responses(name)}"
            )
        return self.responses(name)

    async def await_responses(
        self, name: str = "x", n: int = 1, timeout: float = 10
    ) -> list[JSONDict]:
        """Async :meth:`wait_for_responses`."""
        deadline = time.monotonic() + timeout
        while len(self.responses(name)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"response_url {name!r}: wanted {n} posts, got {self.responses(name)}"
                )
            await asyncio.sleep(0.005)
        return self.responses(name)

    def messages(self, channel: str | None = None) -> list[JSONDict]:
        """Messages posted via chat.postMessage (as later edited by chat.update)."""
        with self._lock:
            return copy.deepcopy([m for m in self._messages if channel in (None, m["channel"])])

    def ephemerals(self, user: str | None = None) -> list[JSONDict]:
        """chat.postEphemeral messages (channel, user, text, blocks, ts)."""
        with self._lock:
            return copy.deepcopy([m for m in self._ephemerals if user in (None, m["user"])])

    def opened_views(self) -> list[JSONDict]:
        """Views opened (views.open) or pushed (views.push), in order, as the fake stored them."""
        with self._lock:
            return copy.deepcopy(self._opened_views)

    def view(self, view_id: str) -> JSONDict | None:
        """Current state of a modal/home view by id (after any views.update)."""
        with self._lock:
            return copy.deepcopy(self._views.get(view_id))

    def home_view(self, user_id: str) -> JSONDict | None:
        """The App Home last published for *user_id* with views.publish."""
        with self._lock:
            return copy.deepcopy(self._home_views.get(user_id))

    def uploads(self) -> list[JSONDict]:
        """Completed file uploads: ``file_id, filename, title, content (bytes), channel,
        channels, initial_comment, thread_ts``."""
        with self._lock:
            return copy.deepcopy(self._uploads)

    def _count(self, method: str) -> int:
        return sum(1 for c in self._calls if c["method"] == method)

    def _timeout_message(self, method: str, n: int, timeout: float) -> str:
        with self._lock:
            seen = [c["method"] for c in self._calls]
        return f"{method}: wanted {n} calls within {timeout}s; calls so far: {seen}"

    # ------------------------------------------------------------------ HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, files = await _read_args(request)
        token = _bearer(request.headers.get("Authorization"))
        if token is None and isinstance(args.get("token"), str):
            token = args.pop("token")
        args.update(files)
        with self._lock:
            call: JSONDict = {
                "method": method,
                "args": args,
                "time": time.time(),
                "token": token,
                "http_method": request.method,
                "known": method in self._handlers,
            }
            status, body, headers = self._answer(method, args, token)
            call["status"] = status
            call["response"] = body
            self._calls.append(call)
            self._lock.notify_all()
            delay = self._delays.get(method, self._delays.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, args: JSONDict, token: str | None) -> _Answer:
        """Compute the reply (called with the lock held, so state changes are atomic)."""
        queue = self._failures.get(method)
        if queue:
            failure = queue.popleft()
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(int(failure.retry_after))
            return failure.status, {"ok": False, "error": failure.error}, headers
        if self.require_token and not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": True}, {}
        return 200, handler(args), {}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL from files.getUploadURLExternal (raw bytes or multipart ``file``)."""
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            post = await request.post()
            field = post.get("file") or post.get("filename")
            data = field.file.read() if isinstance(field, web.FileField) else b""
        else:
            data = await request.read()
        with self._lock:
            pending = self._pending_files.get(file_id)
            if pending is None or request.method != "POST":
                return web.Response(status=404, text="file not found")
            pending["content"] = data
            self._lock.notify_all()
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _handle_response(self, request: web.Request) -> web.Response:
        """The response_url receiver: records what Bolt's respond() (a webhook POST) sent."""
        name = request.match_info["name"]
        raw = await request.read()
        try:
            payload: JSONDict = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            self._responses.setdefault(name, []).append(payload)
            self._lock.notify_all()
        return web.Response(text="ok", content_type="text/html")

    # ------------------------------------------------------------------ Web API methods

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "KomInn Test",
            "user": "kominn",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    @staticmethod
    def _channel_id(channel: str) -> str:
        """Posting to a user id lands in the DM with that user (Slack returns the D-id)."""
        return f"D{channel}" if channel[:1] in ("U", "W") else channel

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "ts": ts,
            "text": args.get("text", ""),
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(key) is not None:
                message[key] = args[key]
        cid = self._channel_id(str(channel))
        self._messages.append({"channel": cid, **message})
        return {"ok": True, "channel": cid, "ts": ts, "message": message}

    def _chat_update(self, args: JSONDict) -> JSONDict:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        cid = self._channel_id(str(channel))
        stored = next((m for m in self._messages if m["channel"] == cid and m["ts"] == ts), None)
        if stored is None:  # a message the fake didn't post (e.g. from a test payload)
            stored = {"channel": cid, "type": "message", "user": self.bot_user_id, "ts": ts}
            self._messages.append(stored)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                stored[key] = args[key]
        stored["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        message = {k: v for k, v in stored.items() if k != "channel"}
        return {
            "ok": True,
            "channel": cid,
            "ts": ts,
            "text": stored.get("text", ""),
            "message": message,
        }

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": args["channel"],
                "user": args["user"],
                "text": args.get("text", ""),
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts"),
                "ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _store_view(self, view: JSONDict, view_id: str | None = None, **extra: Any) -> JSONDict:
        view_id = view_id or f"V{next(self._seq):08d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._seq):08x}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": API_APP_ID,
            "bot_id": self.bot_id,
            **extra,
        }
        self._views[view_id] = stored
        return stored

    def _views_open(self, args: JSONDict) -> JSONDict:
        view = args.get("view")
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(view, dict) or not view.get("type"):
            return {"ok": False, "error": "invalid_arguments"}
        stored = self._store_view(view)
        self._opened_views.append(stored)
        return {"ok": True, "view": stored}

    def _views_update(self, args: JSONDict) -> JSONDict:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next(
                (v["id"] for v in self._views.values() if v["external_id"] == args["external_id"]),
                None,
            )
            if view_id is None:
                return {"ok": False, "error": "not_found"}
        if not view_id:
            return {"ok": False, "error": "invalid_arguments"}
        old = self._views.get(view_id)
        if old is not None and args.get("hash") and args["hash"] != old["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        return {"ok": True, "view": self._store_view(view, view_id)}

    def _views_publish(self, args: JSONDict) -> JSONDict:
        user_id, view = args.get("user_id"), args.get("view")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        old = self._home_views.get(user_id)
        if old is not None and args.get("hash") and args["hash"] != old["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        stored = self._store_view(view, old["id"] if old else None)
        self._home_views[user_id] = stored
        return {"ok": True, "view": stored}

    def _usergroups_users_list(self, args: JSONDict) -> JSONDict:
        group = args.get("usergroup")
        if group not in self._usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self._usergroups[group])}

    def _users_info(self, args: JSONDict) -> JSONDict:
        user_id = args.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        if user_id not in self._users:
            self.set_user(user_id)  # the Condition's lock is an RLock: re-entry is fine
        user = dict(self._users[user_id])
        if str(args.get("include_locale", "")).casefold() not in ("1", "true"):
            user.pop("locale", None)  # Slack sends the locale only when asked for it
        return {"ok": True, "user": user}

    def _conversations_open(self, args: JSONDict) -> JSONDict:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) == 1:
            return {"ok": True, "channel": {"id": f"D{users[0]}", "is_im": True}}
        return {"ok": True, "channel": {"id": "G" + "".join(sorted(users)), "is_mpim": True}}

    def _files_get_upload_url(self, args: JSONDict) -> JSONDict:
        if not args.get("filename") or args.get("length") in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._seq):08d}"
        self._pending_files[file_id] = {
            "file_id": file_id,
            "filename": args["filename"],
            "length": int(args["length"]),
            "content": None,
        }
        return {"ok": True, "upload_url": f"{self.root}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: JSONDict) -> JSONDict:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        if any(self._pending_files.get(f.get("id"), {}).get("content") is None for f in files):
            return {"ok": False, "error": "file_not_found"}
        channel = args.get("channel_id")
        channels = args.get("channels")
        if isinstance(channels, str):
            channels = [c for c in channels.split(",") if c]
        out = []
        for f in files:
            pending = self._pending_files.pop(f["id"])
            title = f.get("title") or pending["filename"]
            self._uploads.append(
                {
                    "file_id": f["id"],
                    "filename": pending["filename"],
                    "title": title,
                    "content": pending["content"],
                    "channel": channel,
                    "channels": channels,
                    "initial_comment": args.get("initial_comment"),
                    "thread_ts": args.get("thread_ts"),
                }
            )
            out.append(
                {
                    "id": f["id"],
                    "name": pending["filename"],
                    "title": title,
                    "size": len(pending["content"]),
                    "user": self.bot_user_id,
                }
            )
        return {"ok": True, "files": out}


# ---------------------------------------------------------------------- helpers


def _refuse_in_event_loop(name: str, alternative: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"FakeSlackAPI.{name}() would block the running event loop; use {alternative}()"
    )


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _decode(key: str, value: Any) -> Any:
    if key in _JSON_ARG_KEYS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _read_args(request: web.Request) -> tuple[JSONDict, JSONDict]:
    """Merge query string and body (JSON, form or multipart) the way Slack accepts them."""
    args: JSONDict = {k: _decode(k, v) for k, v in request.query.items()}
    files: JSONDict = {}
    ctype = request.content_type
    if request.method == "POST" and request.can_read_body:
        if ctype == "application/json":
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else {}
            if isinstance(body, dict):
                args.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = {"filename": value.filename, "content": value.file.read()}
                else:
                    args[key] = _decode(key, value)
    return args, files


@pytest.fixture
def fake_slack_api() -> Iterator[FakeSlackAPI]:
    """Pytest fixture: a started FakeSlackAPI, stopped after the test.

    Import it into a conftest (``from tests.fakes.slack_api import fake_slack_api``) to use.
    """
    with FakeSlackAPI() as fake:
        yield fake
