"""The outbox's named queries (storage/outbox.py), kept with the table: queuing, claiming,
outcomes, the operators' views, erasure and retention — and storage importing nothing of ours."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from bot.runtime import Runtime
from storage import outbox
from storage.db import transaction
from storage.models import Outbox, Person

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
STORAGE = Path(__file__).resolve().parents[1] / "storage"


def queue(session: Session, key: str, *, kind: str = "status_changed", channel: str = "terminal",
          due: datetime = T0, person_id: int | None = None) -> Outbox | None:
    return outbox.enqueue(session, kind=kind, dedupe_key=key, channel=channel, address=key,
                          payload={"ref": "KI-1"}, due_at=due, person_id=person_id)


def person(session: Session, name: str, erased: bool = False) -> Person:
    row = Person(channel="terminal", channel_user_id=name, chat_id=name,
                 erased_at=T0 if erased else None)
    session.add(row)
    session.flush()
    return row


def test_storage_imports_nothing_of_ours() -> None:
    ours = {"bot", "dialogs", "adapters", "tests", "benchmarks"}
    for path in STORAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & ours, (path, names)


def test_enqueue_is_idempotent_and_spares_the_erased(runtime: Runtime) -> None:
    with transaction(runtime.db) as s:
        assert queue(s, "a:1") is not None
        assert queue(s, "a:1") is None
        gone = person(s, "gone", erased=True)
        assert outbox.enqueue_for_person(s, gone, kind="k", dedupe_key="a:2", payload={}) is None
        assert outbox.keys_with_prefix(s, "a:") == {"a:1"}
        assert outbox.count_with_prefix(s, "a:") == 1


def test_claim_takes_due_rows_once_with_a_lease_mass_kinds_last(runtime: Runtime) -> None:
    lease = T0 + timedelta(minutes=5)
    with transaction(runtime.db) as s:
        queue(s, "mass:1", kind="campaign_invite", due=T0 - timedelta(hours=1))
        queue(s, "own:1", due=T0)
        queue(s, "later:1", due=T0 + timedelta(hours=1))
        queue(s, "slack:1", channel="slack")
    with transaction(runtime.db) as s:
        taken = outbox.claim_due(s, ["terminal"], T0, lease, batch=10,
                                 last_kinds=frozenset({"campaign_invite"}))
        assert [r.dedupe_key for r in taken] == ["own:1", "mass:1"]
        assert {(r.state, r.due_at.replace(tzinfo=UTC), r.attempts) for r in taken} == {
            ("sending", lease, 1)}
    with transaction(runtime.db) as s:  # claimed: not due again until the lease ends
        assert outbox.claim_due(s, ["terminal"], T0, lease, batch=10,
                                last_kinds=frozenset()) == []
        again = outbox.claim_due(s, ["terminal"], lease, lease + timedelta(minutes=5),
                                 batch=10, last_kinds=frozenset())
        assert sorted(r.attempts for r in again) == [2, 2]


def test_outcomes_counts_requeue_forget_and_retention(runtime: Runtime) -> None:
    with transaction(runtime.db) as s:
        kari, gone = person(s, "kari"), person(s, "gone")
        ok = queue(s, "ok", person_id=kari.id)
        bad = queue(s, "bad", person_id=kari.id)
        lost = queue(s, "lost", person_id=gone.id)
        queue(s, "later", due=T0 + timedelta(days=1))
        assert ok and bad and lost
        outbox.set_state(s, ok.id, outbox.SENT, sent_at=T0 - timedelta(days=40))
        outbox.set_state(s, bad.id, outbox.FAILED, error="TimedOut")
        outbox.set_state(s, lost.id, outbox.FAILED, error="TimedOut")
        gone.erased_at = T0
        s.add(gone)
    with transaction(runtime.db) as s:
        assert sorted(outbox.counts_by_kind(s, T0)) == [
            ("status_changed", "failed", 2), ("status_changed", "scheduled", 1),
            ("status_changed", "sent", 1)]
        assert [r.dedupe_key for r in outbox.failed(s)] == ["bad", "lost"]
        moved, rest = outbox.requeue_failed(s, T0, None)
        assert (moved, rest) == ([bad.id], [lost.id])  # the erased person's row stays parked
        assert outbox.waiting_by_channel(s, T0, []) == {"terminal": 1}
        assert outbox.with_erasure(s, [lost.id])[lost.id][1] is not None
        assert outbox.empty_finished(s, T0 - timedelta(days=30)) == 1
        assert outbox.forget_person(s, gone.id) == 1
    with Session(runtime.db) as s:
        emptied = s.exec(select(Outbox).where(Outbox.dedupe_key == "ok")).one()
        assert (emptied.address, emptied.payload) == (None, "{}")
        assert s.exec(select(Outbox).where(Outbox.dedupe_key == "lost")).first() is None
