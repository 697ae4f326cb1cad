"""What every web request passes: the client's address and scheme (forwarded headers are
believed only from KOMINN_TRUSTED_PROXIES), CSRF tokens, security headers with a strict
Content-Security-Policy (no `unsafe-inline`: scripts and styles are files served by KomInn),
request body limits and the per-address rate limit of the chat.

The per-session limit is the engine's (KOMINN_MAX_MESSAGES_PER_MINUTE, as for Telegram); the
per-address limit here is higher, because many people share a school's or an office's address.
It is kept in this process (a multi-worker deployment gets one allowance per worker).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from starlette.requests import Request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'; "
       "object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}
MAX_BODY = 16 * 1024  # bytes a chat POST may carry (a description is at most a few thousand)


class Proxies:
    """The trusted proxies: only their forwarded headers say who the client is."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, request: Request) -> str:
        """The client's address: the peer, or — when the peer is a trusted proxy — the
        nearest address in X-Forwarded-For that is not itself a trusted proxy."""
        peer = request.client.host if request.client else ""
        if not self.trusted(peer):
            return peer
        forwarded = [part.strip() for part in
                     request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
        for address in reversed(forwarded):
            if not self.trusted(address):
                return address
        return forwarded[0] if forwarded else peer

    def https(self, request: Request) -> bool:
        """Whether the person reached us over https (X-Forwarded-Proto from a trusted proxy)."""
        peer = request.client.host if request.client else ""
        if self.trusted(peer):
            proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
            if proto:
                return proto.casefold() == "https"
        return request.url.scheme == "https"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """The form's (or the `X-CSRF-Token` header's) token is the session's."""
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


class RateLimit:
    """At most `limit` events per `window` seconds per key (a sliding window)."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            if len(self._events) > 100_000:  # forget idle addresses
                for stale in [k for k, v in self._events.items() if not v]:
                    del self._events[stale]
            return True
