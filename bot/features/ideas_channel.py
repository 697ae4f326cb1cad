"""New ideas are posted to the employees' Slack channel (SLACK_IDEAS_CHANNEL) when it is set.

The post is an outbox row written in the transaction that created the idea (whichever channel
it came from), delivered later by the dispatcher through the Slack sender, once per idea.
The Slack service calls `configure()` with the settings when it is built, so only a process
that serves Slack queues these posts (a CSV import in the shell does not flood the channel).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.followups.notices import enqueue, renderer
from bot.i18n import Translator
from bot.ideas import book
from bot.ideas.triage import excerpt
from dialogs.refs import format_ref
from dialogs.types import Choice, Reply
from storage.models import Idea

KIND = "slack_new_idea"
CHANNEL = STAFF_CHANNEL
STATUS_PAYLOAD = "status:"  # a button payload the Slack adapter answers with the status view

_ideas_channel: str | None = None


def configure(settings: Settings | None) -> None:
    """Where new ideas go (None: nowhere)."""
    global _ideas_channel
    _ideas_channel = settings.slack_ideas_channel if settings is not None else None


def ideas_channel() -> str | None:
    return _ideas_channel


def on_created(session: Session, idea: Idea) -> None:
    if not _ideas_channel:
        return
    ref = format_ref(idea.id or 0)
    enqueue(session, kind=KIND, dedupe_key=f"{KIND}:{idea.id}", channel=CHANNEL,
            address=_ideas_channel,
            payload={"ref": ref, "title": idea.title, "excerpt": excerpt(idea.description),
                     "focus_area": idea.focus_area, "place": idea.place,
                     "channel": idea.channel})


@renderer(KIND)
def render_new_idea(payload: dict[str, Any], t: Translator) -> list[Reply]:
    """Plain text (the Slack sender escapes it) and a button that opens the status view."""
    lines = [t("slack.new_idea_post", ref=payload["ref"], title=payload["title"])]
    meta = [payload.get("focus_area") or t("slack.no_area"),
            channel_label(t, payload.get("channel"))]
    if payload.get("place"):
        meta.append(payload["place"])
    lines.append(" · ".join(meta))
    if payload.get("excerpt"):
        lines.append(payload["excerpt"])
    return [Reply("\n".join(lines), (Choice(t("slack.button.show"),
                                            STATUS_PAYLOAD + payload["ref"]),))]


def channel_label(t: Translator, channel: str | None) -> str:
    """"Telegram", "Slack", "nettprat" …; an unknown channel name as it is."""
    key = f"slack.channel.{channel}"
    label = t(key)
    return (channel or "") if label == key else label


if on_created not in book.ON_CREATED:
    book.ON_CREATED.append(on_created)
