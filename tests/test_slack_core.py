"""The channel-neutral core behind the Slack app (bot.triage, bot.moderation, bot.staff) and the
Block Kit helpers: atomic decisions under real concurrency, parsing, caching, limits."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from sqlmodel import Session, select

from adapters.slack import blocks as kit
from bot.conversation.engine import Engine
from bot.i18n import translator
from bot.ideas import book, triage
from bot.ideas.moderation import BadRequest, Moderators, StatusChanged, parse_set, targets
from bot.runtime import Runtime
from bot.staff import desk
from bot.wiring import Feature, Features
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import DuplicateCandidate, StatusChange


def make(rt: Runtime, title: str, status: str = "new") -> int:
    with transaction(rt.db) as session:
        idea = rt.ideas.create_idea(session, book.NewIdea(
            title=title, description=f"{title}: en beskrivelse som er lang nok.",
            channel="telegram", focus_area="Folkehelse"), by="test")
        idea.status = status
        session.add(idea)
    rt.index.update(idea)
    return idea.id or 0


def run_together(n: int, work: Any) -> list[Any]:
    """Start `n` threads at the same instant; each result or exception, in thread order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_concurrent_decisions_only_one_wins(runtime: Runtime) -> None:
    a, b = make(runtime, "Flere benker ved Semsvannet"), make(runtime, "Benker ved Semsvannet")
    with transaction(runtime.db) as session:
        book.queue_candidates(session, a, [(b, 80.0)])
        pair_id = session.exec(select(DuplicateCandidate)).one().id or 0

    def decide(i: int) -> triage.Pair:
        decision: triage.Decision = triage.MERGED if i % 2 else triage.NOT_DUPLICATE
        return desk.decide_pair(runtime, pair_id, decision, by=f"slack:U{i}")

    results = run_together(4, decide)
    won = [r for r in results if isinstance(r, triage.Pair)]
    lost = [r for r in results if isinstance(r, triage.AlreadyDecided)]
    assert len(won) == 1 and len(lost) == 3, results
    assert all(x.pair.decided_by == won[0].decided_by for x in lost)
    with Session(runtime.db) as session:
        merges = session.exec(select(StatusChange).where(StatusChange.to_status == "merged")).all()
    assert len(merges) == (1 if won[0].state == triage.MERGED else 0)
    if won[0].state == triage.MERGED:
        assert won[0].kept == "KI-1"  # the older idea stays by default
        assert runtime.index.similar("Benker ved Semsvannet", "", 5)[0][0] == a


def test_concurrent_status_moves_only_one_applies(runtime: Runtime) -> None:
    make(runtime, "Flere benker ved Semsvannet")
    moves = [parse_set(["KI-1", "nyttig"]), parse_set(["KI-1", "avslått", "Nei", "takk"])]
    results = run_together(2, lambda i: desk.set_status(
        runtime, moves[i], by=f"slack:U{i}", expected=Status.NEW))
    assert sum(isinstance(r, StatusChange) for r in results) == 1, results
    assert sum(isinstance(r, StatusChanged) for r in results) == 1
    with Session(runtime.db) as session:
        assert len(session.exec(select(StatusChange)).all()) == 2  # created + one move


def test_next_pair_fifo_and_skip_wraps(runtime: Runtime) -> None:
    ids = [make(runtime, f"Idé {n} om parken") for n in range(4)]
    with transaction(runtime.db) as session:
        book.queue_candidates(session, ids[0], [(ids[1], 50.0)])
        book.queue_candidates(session, ids[2], [(ids[3], 90.0)])
        first, second = (c.id for c in session.exec(select(DuplicateCandidate)
                                                     .order_by(DuplicateCandidate.id)))
    assert (triage.show_next(runtime.db) or pytest.fail()).id == first
    assert (triage.show_next(runtime.db, after=first) or pytest.fail()).id == second
    assert (triage.show_next(runtime.db, after=second) or pytest.fail()).id == first
    desk.decide_pair(runtime, first or 0, triage.NOT_DUPLICATE, by="slack:U1")
    assert triage.show_next(runtime.db, after=second) is None  # nothing else is waiting
    assert triage.pending_count(runtime.db) == 1


def test_parse_set() -> None:
    assert parse_set(["ki-3", "Nyttig", "Vi", "ser", "på", "det"]) == \
        desk.SetRequest("KI-3", Status.USEFUL, "Vi ser på det")
    assert parse_set(["KI-3", "sammenslått", "KI-1"]) == \
        desk.SetRequest("KI-3", Status.MERGED, None, "KI-1")
    for args, key in ((["KI-3"], "slack.set_usage"), (["x", "nytt"], "slack.bad_ref"),
                      (["KI-3", "kanskje"], "slack.bad_status"),
                      (["KI-3", "merged"], "slack.merge_needs_target"),
                      (["KI-3", "avslått"], "slack.decline_needs_reason")):
        with pytest.raises(BadRequest) as err:
            parse_set(args)
        assert err.value.key == key
    assert targets(Status.NEW) == [Status.USEFUL, Status.DECLINED]
    assert targets(Status.DECLINED) == [Status.NEW]
    assert targets(Status.REALISED) == []


async def test_moderators_listed_group_cache_and_failure() -> None:
    now = [0.0]
    calls: list[str] = []
    members = ["UG1"]

    async def fetch(group: str) -> list[str]:
        calls.append(group)
        if members == ["boom"]:
            raise RuntimeError("slack down")
        return list(members)

    mods = Moderators(["UM1", " "], "S1", fetch, ttl=60, retry_after_failure=10,
                      clock=lambda: now[0])
    assert await mods.is_moderator("UM1") and calls == []
    assert await mods.is_moderator("UG1") and not await mods.is_moderator("UX")
    assert calls == ["S1"]  # cached
    members[:] = ["UG2"]
    now[0] = 61
    assert await mods.is_moderator("UG2") and not await mods.is_moderator("UG1")
    members[:] = ["boom"]
    now[0] = 122
    assert await mods.is_moderator("UG2")  # a failed lookup keeps the last known members
    now[0] = 125
    await mods.is_moderator("UX")
    assert len(calls) == 3  # and is not retried before retry_after_failure
    assert not await Moderators([], None, fetch).is_moderator("UG2")


def test_escape_and_section_limits() -> None:
    assert kit.esc("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    long = "\n".join(["x" * 1000] * 7 + ["y" * 7000])
    chunks = kit.sections(long)
    assert all(len(c["text"]["text"]) <= kit.SECTION_MAX for c in chunks)
    assert "".join(c["text"]["text"].replace("\n", "") for c in chunks) == \
        long.replace("\n", "")
    assert kit.who("slack:U1") == "<@U1>" and kit.who("x<y") == "x&lt;y"
    assert kit.percent(0.125, translator("nb")) == "12,5 %"
    assert kit.percent(0.5, translator("en")) == "50 %"
    assert kit.button("x" * 200, "a", "v")["text"]["text"].endswith("…")


def test_check_new_idea_rules() -> None:
    areas = ["Folkehelse", "Annet"]
    new, problems = desk.check_new_idea("U1", "  Flere   benker ", "Det trengs benker langs "
                                         "turstien.\n\n\n\nTakk!", "1", "", True, areas)
    assert problems == [] and new is not None
    assert (new.title, new.focus_area, new.place) == ("Flere benker", "Annet", None)
    assert new.description == "Det trengs benker langs turstien.\n\nTakk!"
    _, problems = desk.check_new_idea("U1", "x" * 121, "y" * 3001, None, "z" * 201, False,
                                       areas)
    assert [(p.field, p.key) for p in problems] == [
        ("title", "submit.title_too_long"), ("description", "submit.description_too_long"),
        ("area", "slack.modal.pick_area"), ("place", "submit.place_too_long")]


def test_status_view_is_extensible(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    make(runtime, "Flere benker ved Semsvannet")
    answering = Feature("answers", status_extras=(lambda session, idea: {"answers": 3},))
    extended = dataclasses.replace(runtime, engine=Engine(
        runtime.db, runtime.settings, runtime.index, features=Features.of(answering)))
    detail = desk.status_detail(extended, "KI-1")
    assert detail is not None and detail.extras == {"answers": 3}

    def answers(d: desk.IdeaDetail, t: Any, zone: Any) -> list[dict[str, Any]]:
        return kit.sections(f"Svar: {d.extras['answers']}")

    def private(d: desk.IdeaDetail, t: Any, zone: Any) -> list[dict[str, Any]]:
        return kit.sections("Bare for moderatorene")

    parts = kit.StatusSections((*kit.CORE_SECTIONS.public, answers), moderator=(private,))
    t, zone = translator("nb"), runtime.settings.zone
    blocks = kit.status_blocks(detail, t, zone, parts=parts)
    assert blocks[-1]["text"]["text"] == "Svar: 3"
    blocks = kit.status_blocks(detail, t, zone, parts=parts, moderator=True)
    assert [b["text"]["text"] for b in blocks[-2:]] == ["Svar: 3", "Bare for moderatorene"]
    assert len(kit.status_blocks(detail, t, zone)) == len(blocks) - 2  # the core alone
