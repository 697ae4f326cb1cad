"""Riding out a briefly unavailable database (a locked SQLite, a PostgreSQL restart or
failover): one transaction tried again after a jittered backoff. Shared by the engine (every
update) and the dispatcher (recording a send), so both survive the same outages."""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("kominn.engine")

T = TypeVar("T")
# Attempts after the first while the database is unavailable: the backoff (0.05 s doubling
# to 2 s, ±50 % jitter) then rides out 8–23 s, a PostgreSQL restart or failover; beyond
# that the person gets an apology (and Telegram's webhook would give up waiting at 25 s).
DB_RETRIES = 12


def retry_transient(call: Callable[[], T], channel: str, retries: int = DB_RETRIES) -> T:
    """`call` (one transaction), tried again after a backoff while the database is briefly
    unavailable (a locked SQLite, a PostgreSQL restart); any other error is raised at once."""
    for attempt in itertools.count():
        try:
            return call()
        except (OperationalError, DBAPIError) as exc:
            if attempt >= retries or not transient(exc):
                raise
            wait_for_database(channel, attempt)
    raise AssertionError("unreachable")


def wait_for_database(channel: str, attempt: int) -> None:
    """Back off before the next attempt: 0.05 s doubling to 2 s, with jitter so workers
    that failed together do not come back together."""
    log.warning("database unavailable, retrying", extra={
        "event": "db_retry", "channel": channel, "attempt": attempt + 1})
    time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))


def transient(exc: Exception) -> bool:
    """Database errors worth retrying: locked SQLite, a PostgreSQL restart or lost link."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    text = str(exc).lower()
    return any(word in text for word in (
        "locked", "busy", "could not connect", "connection", "terminating", "server closed",
        "shutting down", "starting up", "recovery", "unable to open"))
