"""What every web request passes: the client's address and scheme (forwarded headers are
believed only from KOMINN_TRUSTED_PROXIES), CSRF tokens, security headers with a strict
Content-Security-Policy (no `unsafe-inline`: scripts and styles are files served by KomInn),
request body limits and the per-address rate limit of the chat.

The per-session limit is the engine's (KOMINN_MAX_MESSAGES_PER_MINUTE, as for Telegram); the
per-address limit here is higher, because many people share a school's or an office's address.
It is kept in the database (`storage/pace.py`, table `rate_hit`), so workers behind one proxy
share one allowance per address instead of giving a client one allowance each.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine
from starlette.requests import Request

from storage.pace import count_hit, forget_hits

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
    """At most `limit` requests per `window` seconds per key, across every worker on the
    database: a sliding-window estimate over per-minute counters (this minute's hits plus the
    previous minute's, weighted by how much of it the window still covers). One UPSERT …
    RETURNING and one read a request. Refused requests count too, so a client that keeps
    flooding stays refused until it slows down. Keys are stored as a keyed hash (`salt`)."""

    def __init__(self, db: Engine, limit: int, window: float = 60.0, *, salt: bytes = b"",
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.limit = limit
        self.window = window
        self.clock = clock
        self._salt = hashlib.sha256(salt).digest()
        self._pruned = -1

    def allow(self, key: str) -> bool:
        now = self.clock()
        bucket = int(now // self.window)
        hashed = hashlib.blake2b(key.encode(), key=self._salt, digest_size=16).hexdigest()
        hits, previous = count_hit(self.db, hashed, bucket)
        if bucket != self._pruned:  # once a minute per worker: older minutes are not needed
            self._pruned = bucket
            forget_hits(self.db, bucket - 1)
        covered = 1.0 - (now / self.window - bucket)
        return previous * covered + hits <= self.limit
