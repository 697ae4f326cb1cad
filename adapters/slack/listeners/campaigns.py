"""Idea competitions and invitations to collaborate in the Slack app: the `konkurranse`
sub-command and the listeners of its buttons and modals.

`/kominn konkurranse` lists the competitions for anyone; moderators get "Endre", "Avslutt" and
"Marker valgte" on each, and `/kominn konkurranse ny` opens the create modal. In
`/kominn status KI-n` moderators — and only they — get "Inviter til samarbeid" on a `useful`
idea (the status sections are in `campaign_blocks.py`). Every click and submit is checked
against the moderator list again, so a forged payload is refused politely. Rules and database
work live in bot.staff.campaigns, bot.features.campaigns and bot.features.collaboration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack import campaign_blocks as cb
from adapters.slack.answer import Answer, CommandContext
from adapters.slack.bot import SlackBot, guarded
from adapters.slack.listeners.commands import Subcommand
from adapters.slack.payload import user_of, view_element, view_meta, view_value
from bot.features import campaigns, collaboration
from bot.i18n import Translator
from bot.ideas.book import IdeaNotFound
from bot.staff import campaigns as sc
from dialogs.fields import FormProblem
from dialogs.refs import format_ref, parse_ref
from storage.models import utcnow

SUBCOMMAND = "konkurranse"


def subcommands() -> dict[str, Subcommand]:
    """`konkurranse`: anyone lists, moderators create (`ny`; checked in the handler)."""
    return {SUBCOMMAND: Subcommand(_competitions,
                                   aliases=("konkurranser", "competition", "competitions"))}


def register(bot: SlackBot) -> None:
    """Add the competition and collaboration listeners to the SlackBot's Bolt app. Every answer
    speaks the person's language: `answer.t`, or the modal's own (`modal_translator`) in an ack."""
    _register_buttons(bot)
    _register_modals(bot)
    _register_collaboration(bot)


def _errors(problems: Sequence[FormProblem], t: Translator) -> dict[str, str]:
    """A form's problems as Slack shows them: one message under each field."""
    return {p.field: t(p.key, **p.params) for p in problems}


def _campaign_id(value: Any) -> int | None:
    """A competition id from a button or metadata; None for anything forged or missing."""
    text = str(value or "")
    return int(text) if text.isdigit() else None


# --- the sub-command --------------------------------------------------------------------------

async def show_list(bot: SlackBot, answer: Answer, *, replace: bool = False,
                    notice: str | None = None) -> None:
    """The competitions list (after a change: replacing the message that was clicked)."""
    lines, total = await bot.db(sc.list_campaigns, bot.runtime.db, utcnow())
    moderator = await bot.moderators.is_moderator(answer.user_id)
    await answer.send(cb.list_blocks(lines, total, answer.t, bot.zone, moderator=moderator,
                                     link=bot.runtime.campaign_link,
                                     notice=notice), replace=replace)


async def open_campaign_modal(bot: SlackBot, client: AsyncWebClient, trigger_id: str,
                              answer: Answer, line: sc.CampaignLine | None) -> None:
    """Create (no line) or edit; the metadata remembers which, and the language."""
    meta = json.dumps({"id": line.id if line else None, "url": answer.url,
                       "lang": answer.t.language})
    today = utcnow().astimezone(bot.zone).date()
    await bot.open_view(client, trigger_id, answer, cb.campaign_modal(
        answer.t, bot.settings.focus_areas, bot.zone, meta, today=today, line=line))


async def _competitions(ctx: CommandContext) -> None:
    """`konkurranse` lists; `konkurranse ny` opens the create modal (moderators only)."""
    bot = ctx.bot
    word = ctx.args[0].casefold() if ctx.args else ""
    if word in ("ny", "new"):
        if await bot.allowed(ctx.user_id, "campaign_new", ctx.answer):
            await open_campaign_modal(bot, ctx.client, ctx.trigger_id, ctx.answer, None)
        return
    if word:
        await ctx.answer.say(ctx.t("slack_campaigns.usage"))
        return
    await show_list(bot, ctx.answer)


# --- listeners --------------------------------------------------------------------------------

def _register_buttons(bot: SlackBot) -> None:
    """A competition's "Endre", "Avslutt" and "Marker valgte" (moderators only)."""
    app = bot.bolt

    @app.action(cb.EDIT)
    async def on_edit(ack: Any, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        number = _campaign_id(action.get("value"))
        if number is None or not await bot.allowed(answer.user_id, "campaign_edit", answer):
            return
        line = await bot.db(sc.campaign_line, bot.runtime.db, number, utcnow())
        if line is None:
            await answer.say(answer.t("slack_campaigns.not_found", id=number))
            return
        await open_campaign_modal(bot, client, body.get("trigger_id", ""), answer, line)

    @app.action(cb.CLOSE)
    async def on_close(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        number = _campaign_id(action.get("value"))
        if number is None or not await bot.allowed(answer.user_id, "campaign_close", answer):
            return

        async def close(b: SlackBot, a: Answer) -> None:
            try:
                done = await b.db(sc.close_campaign, b.runtime.db, number, utcnow())
            except campaigns.CampaignError:
                await a.say(a.t("slack_campaigns.not_found", id=number))
                return
            key = "slack_campaigns.closed" if done else "slack_campaigns.already_closed"
            await show_list(b, a, replace=True, notice=a.t(key, id=number))

        await guarded(close)(bot, answer)

    @app.action(cb.CHOOSE)
    async def on_choose(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        t = answer.t
        number = _campaign_id(action.get("value"))
        if number is None or not await bot.allowed(answer.user_id, "campaign_choose", answer):
            return
        line = await bot.db(sc.campaign_line, bot.runtime.db, number, utcnow())
        if line is None:
            await answer.say(t("slack_campaigns.not_found", id=number))
            return
        options = await bot.db(sc.idea_options, bot.runtime.db, number, sc.CHOICES + 1)
        if not options:
            await answer.say(t("slack_campaigns.no_ideas", id=number))
            return
        meta = json.dumps({"id": number, "url": answer.url, "lang": t.language})
        await bot.open_view(client, body.get("trigger_id", ""), answer,
                    cb.choose_modal(t, line, options, meta))


def _register_modals(bot: SlackBot) -> None:
    """The create/edit and choose modals' submissions."""
    app = bot.bolt

    @app.view(cb.CAMPAIGN_VIEW)
    async def on_campaign_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                                 client: AsyncWebClient) -> None:
        meta = view_meta(view)
        t = bot.modal_translator(meta, user_of(body))
        number = _campaign_id(meta.get("id"))
        existing = None
        if number is not None:
            line = await bot.db(sc.campaign_line, bot.runtime.db, number, utcnow())
            if line is None:
                await ack()
                return
            existing = line.existing
        form, problems = sc.check_form(
            view_value(view, "title"), view_value(view, "question"),
            view_value(view, "text"),
            (view_element(view, "area").get("selected_option") or {}).get("value"),
            view_element(view, "opens").get("selected_date"),
            view_element(view, "closes").get("selected_date"),
            areas=bot.settings.focus_areas, zone=bot.zone, now=utcnow(), existing=existing)
        if problems:
            await ack(response_action="errors", errors=_errors(problems, t))
            return
        await ack()
        answer = Answer(client, user_of(body), t, meta.get("url"))
        if form is None or not await bot.allowed(answer.user_id, "campaign_save", answer):
            return
        by = f"slack:{answer.user_id}"

        async def save(b: SlackBot, a: Answer) -> None:
            assert form is not None
            try:
                if number is None:
                    created = await b.db(sc.create_campaign, b.runtime.db, form, by=by)
                    link = b.runtime.campaign_link(created) or "–"
                    await a.say(t("slack_campaigns.created", id=created,
                                  title=kit.esc(form.title), link=kit.esc(link)))
                    return
                await b.db(sc.update_campaign, b.runtime.db, number, form)
            except campaigns.CampaignError:
                await a.say(t("slack_campaigns.not_saved"))
                return
            await show_list(b, a, replace=True, notice=t("slack_campaigns.updated", id=number))

        await guarded(save)(bot, answer)

    @app.view(cb.CHOOSE_VIEW)
    async def on_choose_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        meta = view_meta(view)
        t = bot.modal_translator(meta, user_of(body))
        number = _campaign_id(meta.get("id"))
        element = view_element(view, "refs")
        if "selected_options" in element:
            refs = [str(o.get("value") or "") for o in element.get("selected_options") or []]
            bad: list[str] = []
        else:
            refs, bad = sc.parse_refs(element.get("value"))
        if number is None:
            await ack()
            return
        error = None
        if bad:
            error = t("slack_campaigns.bad_refs", words=", ".join(bad[:5]))
        elif not refs:
            error = t("slack_campaigns.pick_ideas")
        else:
            own = {o.ref for o in await bot.db(sc.idea_options, bot.runtime.db, number, None)}
            foreign = [r for r in refs if r not in own]
            if foreign:
                error = t("slack_campaigns.not_answers", refs=", ".join(foreign[:5]), id=number)
        if error:
            await ack(response_action="errors", errors={"refs": error})
            return
        await ack()
        answer = Answer(client, user_of(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "campaign_choose", answer):
            return

        async def choose(b: SlackBot, a: Answer) -> None:
            try:
                chosen = await b.db(sc.choose, b.runtime.db, number, refs, utcnow())
            except (campaigns.CampaignError, IdeaNotFound):
                await a.say(t("slack_campaigns.not_saved"))
                return
            await show_list(b, a, replace=True, notice=t(
                "slack_campaigns.chosen", id=number, refs=", ".join(chosen.refs),
                n=chosen.told))

        await guarded(choose)(bot, answer)


def _register_collaboration(bot: SlackBot) -> None:
    """"Inviter til samarbeid" on a useful idea, and its modal (moderators only)."""
    app = bot.bolt

    @app.action(cb.INVITE)
    async def on_invite(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        number = parse_ref(str(action.get("value") or ""))
        if number is None or not await bot.allowed(answer.user_id, "collab_invite", answer):
            return
        meta = json.dumps({"ref": format_ref(number), "url": answer.url,
                           "lang": answer.t.language})
        await bot.open_view(client, body.get("trigger_id", ""), answer,
                    cb.collab_modal(answer.t, format_ref(number), meta))

    @app.view(cb.COLLAB_VIEW)
    async def on_collab_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        meta = view_meta(view)
        t = bot.modal_translator(meta, user_of(body))
        number = parse_ref(str(meta.get("ref") or ""))
        text = (view_value(view, "text") or "").strip()
        if number is None:
            await ack()
            return
        if not sc.COLLAB_TEXT_MIN <= len(text) <= collaboration.TEXT_MAX:
            await ack(response_action="errors", errors={"text": t(
                "slack_campaigns.length", min=sc.COLLAB_TEXT_MIN, max=collaboration.TEXT_MAX)})
            return
        await ack()
        answer = Answer(client, user_of(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "collab_invite", answer):
            return
        ref = format_ref(number)

        async def send(b: SlackBot, a: Answer) -> None:
            try:
                asked = await b.db(sc.invite_collaborators, b.runtime.db, ref, text,
                                   by=f"slack:{a.user_id}")
            except IdeaNotFound:
                await a.say(t("slack.not_found", ref=ref))
                return
            except collaboration.CollabError:
                await a.say(t("slack_campaigns.collab_not_useful", ref=ref))
                return
            key = "slack_campaigns.collab_sent" if asked else "slack_campaigns.collab_nobody"
            await b.show_status(a, ref, replace=True, notice=t(key, ref=ref, n=asked))

        await guarded(send)(bot, answer)

