from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, func, select

from bot.retention import prune
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import DialogState, Idea, ProcessedUpdate, utcnow
from tests.helpers import ChatPerson


def test_dialog_state_and_update_ids_pruned_after_30_days(runtime: Runtime,
                                                          kari: ChatPerson) -> None:
    kari.submit()
    kari.say("/ny")
    later = utcnow() + timedelta(days=29)
    with transaction(runtime.db) as session:
        assert prune(session, later, 30) == (0, 0)
    with transaction(runtime.db) as session:
        states, updates = prune(session, utcnow() + timedelta(days=31), 30)
    assert states == 1 and updates > 5
    with Session(runtime.db) as session:
        assert session.exec(select(func.count()).select_from(DialogState)).one() == 0
        assert session.exec(select(func.count()).select_from(ProcessedUpdate)).one() == 0
        assert session.exec(select(func.count()).select_from(Idea)).one() == 1
