"""Invitations to collaborate: who is asked, answers stored, listed for moderators."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from bot.features import collaboration
from bot.ideas import book
from bot.runtime import Runtime
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import Outbox
from tests.helpers import ChatPerson


def test_invite_answers_and_moderator_list(runtime: Runtime, kari: ChatPerson,
                                           ola: ChatPerson) -> None:
    ref = kari.submit(consent=True)
    per = ChatPerson(runtime.engine, "per")
    for person, consent in ((ola, "Ja"), (per, "Nei")):
        person.say("/ny")
        person.say("Flere benker rundt Semsvannet")
        person.say("Vi trenger flere benker langs turstien ved Semsvannet for de eldre.")
        person.press("Folkehelse")
        person.press("Hopp over")
        person.press(consent)
        person.press(f"Støtt {ref}")
    with transaction(runtime.db) as session:
        idea = book.get_idea(session, ref)
        with pytest.raises(collaboration.CollabError):
            collaboration.invite(session, idea, "Verksted 3. mars kl. 18", by="slack:UMOD")
        runtime.ideas.set_status(session, idea, Status.USEFUL, by="test")
        invite, asked = collaboration.invite(session, idea, "Verksted 3. mars kl. 18 på rådhuset",
                                      by="slack:UMOD")
    assert asked == 2  # the author and the supporter who said yes to follow-ups, not per
    with Session(runtime.db) as session:
        rows = session.exec(select(Outbox).where(Outbox.kind == "collab_invite")).all()
    assert sorted(r.address for r in rows) == ["kari", "ola"]
    assert json.loads(rows[0].payload)["text"] == "Verksted 3. mars kl. 18 på rådhuset"
    kari.press_payload(f"g:collab:{invite.id}:yes")
    assert "tar kontakt" in kari.text
    ola.press_payload(f"g:collab:{invite.id}:no")
    ola.press_payload(f"g:collab:{invite.id}:yes")  # changed their mind
    ola.press_payload("g:collab:999:yes")  # an unknown invitation stores nothing
    with Session(runtime.db) as session:
        listed = collaboration.answers(session, 1)
    assert [(a["name"], a["answer"]) for a in listed] == [("kari", "yes"), ("ola", "yes")]
