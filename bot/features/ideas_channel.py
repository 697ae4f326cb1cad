"""New ideas are posted to the employees' Slack channel (SLACK_IDEAS_CHANNEL) when it is set.

The post is an outbox row written in the transaction that created the idea (whichever channel
it came from: chat, Slack or a CSV import), delivered later by the dispatcher through the
Slack sender, once per idea. `feature(settings)` listens for new ideas only when Slack and
the channel are configured; the renderer is always there, so rows queued earlier still
render after the setting is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from bot.channels import STAFF_CHANNEL
from bot.config import Settings
from bot.i18n import Translator
from bot.ideas import book
from bot.ideas.triage import excerpt
from bot.wiring import Feature
from dialogs.refs import format_ref
from dialogs.types import Choice, Reply
from storage.models import Idea
from storage.outbox import enqueue

KIND = "slack_new_idea"
CHANNEL = STAFF_CHANNEL
STATUS_PAYLOAD = "status:"  # a button payload the Slack adapter answers with the status view
PUBLISH_PAYLOAD = "publish:"  # "Publiser" (KOMINN_PUBLISH=after-review): moderators only

def on_created(channel_id: str, review: bool = False) -> Callable[[Session, Idea], None]:
    """The listener that queues a post about each new idea to `channel_id` (with "Publiser"
    when new ideas wait for a moderator's review before they are public)."""

    def post(session: Session, idea: Idea) -> None:
        ref = format_ref(idea.id or 0)
        enqueue(session, kind=KIND, dedupe_key=f"{KIND}:{idea.id}", channel=CHANNEL,
                address=channel_id,
                payload={"ref": ref, "title": idea.title, "excerpt": excerpt(idea.description),
                         "focus_area": idea.focus_area, "place": idea.place,
                         "channel": idea.channel, "review": review})

    return post


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
    choices = [Choice(t("slack.button.show"), STATUS_PAYLOAD + payload["ref"])]
    if payload.get("review"):
        choices.append(Choice(t("slack.button.publish"), PUBLISH_PAYLOAD + payload["ref"]))
    return [Reply("\n".join(lines), tuple(choices))]


def channel_label(t: Translator, channel: str | None) -> str:
    """"Telegram", "Slack", "nettprat" …; an unknown channel name as it is."""
    key = f"slack.channel.{channel}"
    label = t(key)
    return (channel or "") if label == key else label


def feature(settings: Settings) -> Feature:
    channel_id = settings.slack_ideas_channel if settings.slack_enabled else None
    review = settings.publish == "after-review"
    listeners = book.IdeaListeners(created=(on_created(channel_id, review),)) if channel_id \
        else book.IdeaListeners()
    return Feature("ideas_channel", renderers={KIND: render_new_idea}, listeners=listeners)
