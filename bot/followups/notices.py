"""Notices: what each follow-up says. The outbox holds messages to send later, written in
the transaction of the change that caused them (a dedupe key makes queuing idempotent); the
dispatcher (bot/followups/dispatcher.py) delivers them.

Each kind of message has a renderer that turns its JSON payload into replies in the
recipient's language at delivery time (so a language change before delivery is honoured).
The renderers of the core follow-ups are here (`RENDERERS`); features bring their own
(bot/wiring.py joins them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from bot.i18n import Translator
from dialogs import resume, submit
from dialogs.payload import global_choice
from dialogs.types import Choice, Reply
from storage.models import Outbox, Person, utcnow

Renderer = Callable[[dict[str, Any], Translator], list[Reply]]

def enqueue(session: Session, *, kind: str, dedupe_key: str, channel: str,
            address: str | None, payload: dict[str, Any], due_at: datetime | None = None,
            person_id: int | None = None) -> Outbox | None:
    """Queue one message unless the same `dedupe_key` was queued before (then None)."""
    if session.exec(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)).first():
        return None
    row = Outbox(kind=kind, dedupe_key=dedupe_key, channel=channel, address=address,
                 payload=json.dumps(payload, ensure_ascii=False, default=str),
                 due_at=due_at or utcnow(), person_id=person_id)
    session.add(row)
    session.flush()
    return row


def enqueue_for_person(session: Session, person: Person, *, kind: str, dedupe_key: str,
                       payload: dict[str, Any], due_at: datetime | None = None) -> Outbox | None:
    """Queue a message to a person on their own channel (nothing for an erased person)."""
    if person.erased_at is not None or not person.chat_id:
        return None
    return enqueue(session, kind=kind, dedupe_key=dedupe_key, channel=person.channel,
                   address=person.chat_id, payload=payload, due_at=due_at, person_id=person.id)


# --- the core follow-ups: payload → replies in the recipient's language ---------------------


def render_status(p: dict[str, Any], t: Translator) -> list[Reply]:
    lines = [t(f"followups.status_{p.get('role', 'author')}", ref=p["ref"], title=p["title"],
               status=t(f"status.{p['to']}"))]
    if p.get("note"):
        lines.append(t("followups.status_note", note=p["note"]))
    return [Reply("\n".join(lines), (_status_button(t, p["idea"]),))]


def render_merged(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t(f"followups.merged_{p.get('role', 'author')}", ref=p["ref"],
                    title=p["title"], into_ref=p["into_ref"], into_title=p["into_title"]))]


def render_supported(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.supported", ref=p["ref"], title=p["title"], count=p["count"]))]


def render_stale_author(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_author", ref=p["ref"], title=p["title"], days=p["days"]))]


def render_stale_moderator(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_moderator", ref=p["ref"], title=p["title"],
                    days=p["days"]))]


def render_dialog_reminder(p: dict[str, Any], t: Translator) -> list[Reply]:
    key = "followups.reminder_submit" if p.get("flow") == submit.FLOW else \
        "followups.reminder_other"
    return [Reply(t(key), resume.reminder_choices(t))]


def render_digest(p: dict[str, Any], t: Translator) -> list[Reply]:
    lines = [t("followups.digest_header", week=p["week"]), "",
             t("followups.digest_new", count=p["new_count"])]
    lines += [t("followups.digest_line", ref=i["ref"], title=i["title"]) for i in p["new"]]
    if p["new_count"] > len(p["new"]):
        lines.append(t("followups.digest_more", count=p["new_count"] - len(p["new"])))
    lines += ["", t("followups.digest_triage", count=p["triage"]), "",
              t("followups.digest_stale", count=p["stale_count"], days=p["stale_days"])]
    lines += [t("followups.digest_stale_line", ref=i["ref"], title=i["title"], days=i["days"])
              for i in p["stale"]]
    if p["stale_count"] > len(p["stale"]):
        lines.append(t("followups.digest_more", count=p["stale_count"] - len(p["stale"])))
    return [Reply("\n".join(lines))]


def _status_button(t: Translator, number: int) -> Choice:
    return global_choice(t("followups.button_status"), f"status:{number}")


RENDERERS: dict[str, Renderer] = {
    "status_changed": render_status,
    "merged": render_merged,
    "supported": render_supported,
    "stale_author": render_stale_author,
    "stale_moderator": render_stale_moderator,
    "dialog_reminder": render_dialog_reminder,
    "weekly_digest": render_digest,
}
