"""Several workers on one database: the duplicate index of each sees the others' ideas, and
on PostgreSQL the bot's send ceiling is one for all (the shared pacer)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.telegram.pacing import PACER_WINDOW, SharedPacer, bulk
from bot.dedup.index import SimilarIndex
from bot.runtime import Runtime
from storage.db import make_engine, transaction
from storage.models import Idea, utcnow
from tests.conftest import PG_URL

postgres_only = pytest.mark.skipif(not PG_URL, reason="several workers need PostgreSQL")


def store_idea(runtime: Runtime, title: str, description: str, *, stamped_ago: float = 0) -> int:
    at = utcnow() - timedelta(seconds=stamped_ago)
    with transaction(runtime.db) as session:
        idea = Idea(title=title, description=description, channel="telegram", created_at=at,
                    updated_at=at, status_changed_at=at)
        session.add(idea)
        session.flush()
        return idea.id or 0


def test_an_idea_stored_by_another_worker_is_offered_after_the_next_refresh(
        runtime: Runtime) -> None:
    """Worker B's index reads what worker A stored, at its next refresh — also an idea whose
    transaction was stamped before the newest change B had seen (it committed later)."""
    other = SimilarIndex(runtime.db, refresh_seconds=0)
    other.load()
    first = store_idea(runtime, "Lys i lysløypa hele vinteren",
                       "Lysløypa er mørk etter klokka ni, og mange går på ski etter jobb.")
    assert [n for n, _ in other.similar("Lys i lysløypa", "Lysløypa er mørk om kvelden")] \
        == [first]
    late = store_idea(runtime, "Benker langs turstien ved Semsvannet",
                      "Eldre trenger steder å hvile på turen rundt Semsvannet.", stamped_ago=5)
    found = [n for n, _ in other.similar("Benker ved Semsvannet",
                                         "Steder å hvile rundt Semsvannet for eldre")]
    assert found == [late]


async def _entries(pacer: SharedPacer, n: int, times: list[float],
                   lane: list[str] | None = None, name: str = "") -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        async with pacer:
            times.append(loop.time())
            if lane is not None:
                lane.append(name)


def most_in_a_window(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + PACER_WINDOW)
               for i, start in enumerate(times))


@postgres_only
async def test_two_workers_share_one_ceiling(runtime: Runtime) -> None:
    """Two workers (two engines, two pacers) sending as fast as they may: together they never
    exceed the rate in any window, and both get their turns."""
    assert PG_URL is not None
    engines = [make_engine(PG_URL), make_engine(PG_URL)]
    pacers = [SharedPacer(db, 20) for db in engines]
    times: list[list[float]] = [[], []]
    try:
        await asyncio.gather(*(_entries(pacer, 10, t)
                               for pacer, t in zip(pacers, times, strict=True)
                               for _ in range(3)))
    finally:
        for db in engines:
            db.dispose()
    assert len(times[0]) == len(times[1]) == 30
    assert most_in_a_window(times[0] + times[1]) <= 21  # 20/s, the window is 1.02 s


@postgres_only
async def test_interactive_replies_go_before_a_mass_mailing(runtime: Runtime) -> None:
    """A broadcast is under way on one worker; a citizen's answer on another worker takes a
    slot at once instead of queueing behind the rest of the broadcast."""
    assert PG_URL is not None
    engines = [make_engine(PG_URL), make_engine(PG_URL)]
    mailing, chat = SharedPacer(engines[0], 20), SharedPacer(engines[1], 20)
    order: list[str] = []
    times: list[float] = []

    async def broadcast() -> None:
        with bulk():
            await asyncio.gather(*(_entries(mailing, 5, times, order, "bulk")
                                   for _ in range(8)))

    async def answer() -> None:
        while order.count("bulk") < 5:
            await asyncio.sleep(0.01)
        await _entries(chat, 3, times, order, "reply")

    try:
        await asyncio.gather(broadcast(), answer())
    finally:
        for db in engines:
            db.dispose()
    replies = [i for i, name in enumerate(order) if name == "reply"]
    assert len(replies) == 3 and replies[-1] < 15  # not behind the other 30 of the mailing
    assert most_in_a_window(times) <= 21
