"""Notices: what each follow-up says. The outbox holds messages to send later, written in
the transaction of the change that caused them (a dedupe key makes queuing idempotent; the
queries live with the table in storage/outbox.py); the dispatcher
(bot/followups/dispatcher.py) delivers them.

Each kind of message has a renderer that turns its JSON payload into replies in the
recipient's language at delivery time (so a language change before delivery is honoured).
The renderers of the core follow-ups are here (`RENDERERS`); features bring their own
(bot/wiring.py joins them).
"""

from __future__ import annotations

from typing import Any

from bot.i18n import Translator
from bot.wiring import Renderer
from dialogs import resume, submit
from dialogs.payload import global_choice
from dialogs.types import Choice, Reply

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
    return [Reply(t("followups.supported", ref=p["ref"], title=p["title"], n=p["count"]))]


def render_stale_author(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_author", ref=p["ref"], title=p["title"], n=p["days"]))]


def render_stale_moderator(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.stale_moderator", ref=p["ref"], title=p["title"],
                    n=p["days"]))]


def render_dialog_reminder(p: dict[str, Any], t: Translator) -> list[Reply]:
    key = "followups.reminder_submit" if p.get("flow") == submit.FLOW else \
        "followups.reminder_other"
    return [Reply(t(key), resume.reminder_choices(t))]


def render_digest(p: dict[str, Any], t: Translator) -> list[Reply]:
    lines = [t("followups.digest_header", week=p["week"]), "",
             t("followups.digest_new", n=p["new_count"])]
    lines += [t("followups.digest_line", ref=i["ref"], title=i["title"]) for i in p["new"]]
    if p["new_count"] > len(p["new"]):
        lines.append(t("followups.digest_more", n=p["new_count"] - len(p["new"])))
    lines += ["", t("followups.digest_triage", n=p["triage"]), "",
              t("followups.digest_stale", n=p["stale_count"],
                period=t("followups.days", n=p["stale_days"]))]
    lines += [t("followups.digest_stale_line", ref=i["ref"], title=i["title"], n=i["days"])
              for i in p["stale"]]
    if p["stale_count"] > len(p["stale"]):
        lines.append(t("followups.digest_more", n=p["stale_count"] - len(p["stale"])))
    return [Reply("\n".join(lines))]


def render_hidden(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.hidden", ref=p["ref"], title=p["title"], reason=p["reason"]))]


def render_shown(p: dict[str, Any], t: Translator) -> list[Reply]:
    return [Reply(t("followups.shown", ref=p["ref"], title=p["title"]))]


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
    "idea_hidden": render_hidden,
    "idea_shown": render_shown,
}
