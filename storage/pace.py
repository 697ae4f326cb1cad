"""Named queries that several workers coordinate through: the shared send pace (one ceiling
for a bot, PostgreSQL only), the ticks of periodic jobs (a scan runs once per tick across
workers, on either database) and the web chat's requests per client address (`rate_hit`, on
either database).

The pace is an evenly spaced grid of send slots kept in one `send_pace` row, on the
database's clock (`clock_timestamp()`, so workers on different machines agree): a send takes
the next free slot with one UPDATE … RETURNING and waits for it. Mass mailings (`urgent`
False) take a slot only when the next free one is at most `ahead` seconds away; otherwise
they are told when to look again. So interactive replies never queue behind more than
`ahead` seconds of mailings, however large the mailing.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from storage.db import is_sqlite, transaction

_ENSURE_PACE = text("INSERT INTO send_pace (name, next_at, slot) VALUES (:name, 0, 0) "
                    "ON CONFLICT (name) DO NOTHING")
_TAKE_SLOT = text("""
UPDATE send_pace SET
  slot = CASE WHEN :urgent OR send_pace.next_at <= c.t + :ahead
              THEN GREATEST(send_pace.next_at, c.t) ELSE -1 END,
  next_at = CASE WHEN :urgent OR send_pace.next_at <= c.t + :ahead
                 THEN GREATEST(send_pace.next_at, c.t) + :interval ELSE send_pace.next_at END
FROM (SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AS t) AS c
WHERE send_pace.name = :name
RETURNING send_pace.slot, send_pace.next_at, c.t""")
_HOLD = text("""
UPDATE send_pace SET next_at = GREATEST(send_pace.next_at, c.t + :seconds)
FROM (SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AS t) AS c
WHERE send_pace.name = :name""")


def ensure_pace(db: Engine, name: str) -> None:
    with transaction(db) as session:
        session.execute(_ENSURE_PACE, {"name": name})


def take_slot(db: Engine, name: str, interval: float, *, urgent: bool,
              ahead: float) -> tuple[float | None, float, float]:
    """(the slot taken, or None when a mass mailing must look again; the next free slot; the
    database's now), all in epoch seconds of the database's clock."""
    with db.connect() as conn:
        row = conn.execute(_TAKE_SLOT, {"name": name, "interval": interval, "urgent": urgent,
                                        "ahead": ahead}).one()
        conn.commit()
    slot, next_at, now = float(row[0]), float(row[1]), float(row[2])
    return (slot if slot >= 0 else None), next_at, now


def hold_pace(db: Engine, name: str, seconds: float) -> None:
    """Nobody's next send before `seconds` from now (Telegram answered 429 + retry_after)."""
    with db.connect() as conn:
        conn.execute(_HOLD, {"name": name, "seconds": seconds})
        conn.commit()


# --- job ticks ---------------------------------------------------------------------------------

SCAN_JOB, RETENTION_JOB = "scan", "retention"  # the follow-up rules; the pruning

_ENSURE_TICK = text("INSERT INTO job_run (name, ran_at, due) VALUES (:name, 0, false) "
                    "ON CONFLICT (name) DO NOTHING")
_TAKE_TICK = text("UPDATE job_run SET ran_at = :now, due = false "
                  "WHERE name = :name AND (due OR ran_at <= :since)")
_NUDGE = text("UPDATE job_run SET due = true WHERE name = :name")


def take_tick(db: Engine, name: str, every: float, now: float | None = None) -> bool:
    """Whether this worker runs job `name` now: true for the one worker whose conditional
    UPDATE finds the last run (by anyone) at least `every` seconds ago, or a nudge waiting."""
    now = time.time() if now is None else now
    with transaction(db) as session:
        session.execute(_ENSURE_TICK, {"name": name})
        taken = session.execute(_TAKE_TICK, {"name": name, "now": now,
                                             "since": now - every * 0.95})
        return bool(taken.rowcount)  # type: ignore[attr-defined]


def nudge(session: object, name: str) -> None:
    """Ask for job `name` at the next look of any worker (in the caller's transaction, so the
    nudge is seen only with the change that needs it)."""
    session.execute(_ENSURE_TICK, {"name": name})  # type: ignore[attr-defined]
    session.execute(_NUDGE, {"name": name})  # type: ignore[attr-defined]


# --- requests per address and minute ----------------------------------------------------------

_COUNT_HIT = text("INSERT INTO rate_hit (key, bucket, hits) VALUES (:key, :bucket, 1) "
                  "ON CONFLICT (key, bucket) DO UPDATE SET hits = rate_hit.hits + 1 "
                  "RETURNING hits")
_PREVIOUS_HITS = text("SELECT hits FROM rate_hit WHERE key = :key AND bucket = :bucket")
_FORGET_HITS = text("DELETE FROM rate_hit WHERE bucket < :bucket")
_NO_FLUSH = text("SET LOCAL synchronous_commit TO OFF")


def count_hit(db: Engine, key: str, bucket: int) -> tuple[int, int]:
    """Count one request of `key` in minute `bucket`: (its hits in this minute, this one
    included; its hits in the minute before), in one transaction."""
    with db.begin() as conn:
        if not is_sqlite(db):  # a lost count after a crash is harmless: no WAL flush to wait for
            conn.execute(_NO_FLUSH)
        hits = int(conn.execute(_COUNT_HIT, {"key": key, "bucket": bucket}).scalar_one())
        previous = conn.execute(_PREVIOUS_HITS, {"key": key, "bucket": bucket - 1}).scalar()
    return hits, int(previous or 0)


def forget_hits(db: Engine, before: int) -> None:
    """Delete the counts of minutes before `before`."""
    with db.begin() as conn:
        conn.execute(_FORGET_HITS, {"bucket": before})


def shares_pace(db: Engine) -> bool:
    """Only PostgreSQL holds several workers; SQLite's one process paces itself."""
    return not is_sqlite(db)
