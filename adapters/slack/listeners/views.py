"""Submitted modals of the core app: a lifecycle move's note, and a new idea.

A modal's answer is its ack: validation errors go back in it, shown under the field, in the
language the modal was opened in (no Web API call may delay an ack). Once acknowledged, the
work runs in the background and the result is said to the person.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack.answer import Answer
from adapters.slack.bot import SlackBot, guarded
from adapters.slack.payload import user_of, view_element, view_meta, view_value
from bot.ideas.moderation import BadRequest, parse_set
from bot.staff import desk
from dialogs.lifecycle import Status


def register(bot: SlackBot) -> None:
    """The move and new-idea modals' submissions."""
    app = bot.bolt

    @app.view(kit.MOVE_VIEW)
    async def on_move_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                             client: AsyncWebClient) -> None:
        """The move as offered (`expected`): if someone moved the idea meanwhile, nothing is
        overwritten and the moderator sees the new state."""
        note = view_value(view, "note")
        meta = view_meta(view)
        t = bot.modal_translator(meta, user_of(body))
        try:
            target, current = Status(meta["to"]), Status(meta["from"])
            request = parse_set([meta["ref"], target.value, *([note] if note else [])])
        except BadRequest as exc:
            await ack(response_action="errors", errors={"note": t(exc.key, **exc.params)})
            return
        except (ValueError, KeyError, TypeError):
            await ack()
            return
        await ack()
        answer = Answer(client, user_of(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "move", answer):
            return
        await guarded(lambda b, a: b.apply_move(a, a.user_id, request, expected=current,
                                                replace=True))(bot, answer)

    @app.view(kit.NEW_IDEA_VIEW)
    async def on_new_idea(ack: Any, body: dict[str, Any], view: dict[str, Any],
                          client: AsyncWebClient) -> None:
        """An employee's idea: checked like a citizen's, then queued for triage."""
        meta = view_meta(view)
        t = bot.modal_translator(meta, user_of(body))
        follow = view_element(view, "follow_up").get("selected_options") or []
        new, problems = desk.check_new_idea(
            user_of(body), view_value(view, "title"), view_value(view, "description"),
            (view_element(view, "area").get("selected_option") or {}).get("value"),
            view_value(view, "place"), bool(follow), bot.settings.focus_areas)
        if problems:
            await ack(response_action="errors", errors={
                p.field: t(p.key, **p.params) for p in problems})
            return
        await ack()
        assert new is not None
        answer = Answer(client, new.user_id, t, meta.get("url"))

        async def submit(b: SlackBot, a: Answer) -> None:
            ref = await b.db(desk.submit_idea, b.runtime, new)
            await a.say(a.t("slack.new_idea_receipt", ref=ref))

        await guarded(submit)(bot, answer)
