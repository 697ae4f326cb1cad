"""Buttons: the status view's, lists', triage's, App Home's, and those of neutral Replies
(follow-ups and notices from the outbox, whichever process sent them: see `sender.py`).

Each acknowledges at once and works afterwards; a moderator's button is checked against the
moderator list again, so a forged payload is refused politely.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack.answer import Answer
from adapters.slack.bot import SlackBot, guarded
from bot.features import ideas_channel
from bot.ideas import triage
from bot.staff import desk
from dialogs.lifecycle import Status
from dialogs.refs import format_ref, parse_ref


def register(bot: SlackBot) -> None:
    """Every button of the core app."""
    _register_ideas(bot)
    _register_replies(bot)
    _register_triage(bot)
    _register_home(bot)


def _register_ideas(bot: SlackBot) -> None:
    """"Vis" on a listed idea, "more" under a list, and a moderator's lifecycle move."""
    app = bot.bolt

    @app.action(kit.SHOW)
    async def on_show(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        number = parse_ref(str(action.get("value") or ""))
        if number is not None:
            await guarded(lambda b, a: b.show_status(a, format_ref(number)))(
                bot, await bot.answer_for(body, client))

    @app.action(kit.LIST_MORE)
    async def on_more(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        try:
            more = json.loads(action.get("value") or "{}")
            status = Status(more["s"]) if more.get("s") else None
            offset = max(0, int(more.get("o") or 0))
        except (ValueError, KeyError, TypeError):
            return

        async def page(b: SlackBot, answer: Answer) -> None:
            await answer.send(await b.list_page(answer.t, status, more.get("a"), offset),
                              replace=True)

        await guarded(page)(bot, await bot.answer_for(body, client))

    @app.action(re.compile(f"^{kit.MOVE}"))
    async def on_move(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        """A move button opens the note modal (a reason, when declining); the modal's
        metadata carries the move and the state it was offered in (`views.on_move_submit`)."""
        await ack()
        answer = await bot.answer_for(body, client)
        ref, _, rest = str(action.get("value") or "").partition("|")
        target, _, current = rest.partition("|")
        if not await bot.allowed(answer.user_id, "move", answer):
            return
        meta = json.dumps({"ref": ref, "to": target, "from": current, "url": answer.url,
                           "lang": answer.t.language})
        await bot.open_view(client, body.get("trigger_id", ""), answer,
                            kit.move_modal(answer.t, ref, current, target, meta))

    @app.action(kit.PUBLISH)
    async def on_publish(ack: Any, body: dict[str, Any], action: dict[str, Any],
                         client: AsyncWebClient) -> None:
        """"Publiser" on an idea waiting for review (KOMINN_PUBLISH=after-review): public
        from now on; the status view is shown again with what happened."""
        await ack()
        answer = await bot.answer_for(body, client)
        number = parse_ref(str(action.get("value") or ""))
        await _publish(bot, answer, number, replace=True)


async def _publish(bot: SlackBot, answer: Answer, number: int | None, *, replace: bool) -> None:
    """"Publiser" (the status view's, or the ideas channel post's): moderators only, checked
    again here; then the status view with what happened."""
    if number is None or not await bot.allowed(answer.user_id, "publish", answer):
        return

    async def publish(b: SlackBot, a: Answer) -> None:
        ref = await b.db(desk.publish, b.runtime, format_ref(number), a.user_id)
        if ref is None:
            await a.say(a.t("slack.not_found", ref=format_ref(number)))
            return
        await b.show_status(a, ref, replace=replace, notice=a.t("slack.published", ref=ref))

    await guarded(publish)(bot, answer)


def _register_replies(bot: SlackBot) -> None:
    """The buttons `kit.reply_blocks` renders for a neutral Reply."""
    app = bot.bolt

    @app.action(re.compile(f"^{kit.REPLY}\\d+$"))
    async def on_reply(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       client: AsyncWebClient) -> None:
        """A button of a neutral Reply (a follow-up sent through the outbox): "status:KI-n"
        opens the status view, "publish:KI-n" (a new idea's channel post) publishes it for a
        moderator; anything else is the dialog engine's (benefit check, …)."""
        await ack()
        value = str(action.get("value") or "")
        answer = await bot.answer_for(body, client)
        if value.startswith(ideas_channel.PUBLISH_PAYLOAD):  # on a new idea's channel post
            await _publish(bot, answer, parse_ref(value.removeprefix(
                ideas_channel.PUBLISH_PAYLOAD)), replace=False)
            return
        if value.startswith(ideas_channel.STATUS_PAYLOAD):
            number = parse_ref(value.removeprefix(ideas_channel.STATUS_PAYLOAD))
            if number is not None:
                await guarded(lambda b, a: b.show_status(a, format_ref(number)))(bot, answer)
            return
        update_id = f"action:{answer.user_id}:{action.get('action_ts') or ''}"
        await guarded(lambda b, a: b.engine_choice(a, value, update_id))(bot, answer)

    @app.action(re.compile(f"^{kit.LINK}\\d+$"))
    async def on_link(ack: Any) -> None:
        await ack()  # a URL button: Slack opens the link, we only acknowledge


def _register_triage(bot: SlackBot) -> None:
    """The four decisions on a suspected duplicate pair (moderators only)."""

    @bot.bolt.action(kit.TRIAGE_MERGE)
    @bot.bolt.action(kit.TRIAGE_MERGE_OTHER)
    @bot.bolt.action(kit.TRIAGE_DISTINCT)
    @bot.bolt.action(kit.TRIAGE_SKIP)
    async def on_triage(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        kind = str(action.get("action_id"))
        pair_text, _, keep_text = str(action.get("value") or "").partition(":")
        if not pair_text.isdigit():
            return
        if not await bot.allowed(answer.user_id, "triage", answer):
            return
        pair_id = int(pair_text)
        if kind == kit.TRIAGE_SKIP:
            await guarded(lambda b, a: b.show_next_pair(a, after=pair_id, replace=True))(
                bot, answer)
            return
        decision: triage.Decision = (triage.NOT_DUPLICATE if kind == kit.TRIAGE_DISTINCT
                                     else triage.MERGED)
        keep = int(keep_text) if keep_text.isdigit() else None
        await guarded(lambda b, a: b.decide(a, a.user_id, pair_id, decision, keep))(
            bot, answer)


def _register_home(bot: SlackBot) -> None:
    """App Home's "new idea" and (moderators) "start triage"."""
    app = bot.bolt

    @app.action(kit.HOME_NEW)
    async def on_home_new(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await bot.open_new_idea(client, body.get("trigger_id", ""),
                                await bot.answer_for(body, client))

    @app.action(kit.HOME_TRIAGE)
    async def on_home_triage(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        if await bot.allowed(answer.user_id, "triage", answer):
            await guarded(lambda b, a: b.show_next_pair(a))(bot, answer)
