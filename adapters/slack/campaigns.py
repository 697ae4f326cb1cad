"""Idea competitions and invitations to collaborate in the Slack app.

`/kominn konkurranse` lists the competitions for anyone (state, dates in the municipality's
zone, figures, chosen ideas, the Telegram link); moderators get "Endre", "Avslutt" and "Marker
valgte" on each, and `/kominn konkurranse ny` opens the create modal. In `/kominn status KI-n`
moderators — and only they — see who said yes to collaboration invitations and, on a `useful`
idea, the "Inviter til samarbeid" button.

Registered on import (adapters/slack/service.py imports this module): a sub-command, a listener hook
run for every SlackBot, a public status section and a moderator-only one. Every click and
submit is checked against the moderator list again, so a forged payload is refused politely.
Rules and database work live in bot.staff_campaigns, bot.campaigns and bot.collab.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import date, tzinfo
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack import service as core
from bot.features import campaigns, collaboration
from bot.features.ideas_channel import channel_label
from bot.i18n import Translator
from bot.ideas.book import IdeaNotFound
from bot.staff import campaigns as sc
from bot.staff.desk import IdeaDetail, Problem
from dialogs.lifecycle import Status
from dialogs.refs import format_ref, parse_ref
from dialogs.text import shorten
from storage.models import utcnow

log = logging.getLogger("kominn.slack")

Block = dict[str, Any]

# action and view ids
EDIT = "kominn_campaign_edit"
CLOSE = "kominn_campaign_close"
CHOOSE = "kominn_campaign_choose"
INVITE = "kominn_collab_invite"
CAMPAIGN_VIEW = "kominn_campaign"
CHOOSE_VIEW = "kominn_campaign_chosen"
COLLAB_VIEW = "kominn_collab"

SUBCOMMAND = "konkurranse"
QUESTION_SHOWN = 500
YES_SHOWN = 30


# --- blocks -----------------------------------------------------------------------------------

def _state(t: Translator, state: str) -> str:
    return t(f"slack_campaigns.state.{state}")


def campaign_text(line: sc.CampaignLine, t: Translator, zone: tzinfo, link: str) -> str:
    return t("slack_campaigns.line", id=line.id, title=kit.esc(line.title),
             state=_state(t, line.state),
             question=kit.esc(shorten(line.question, QUESTION_SHOWN)),
             area=kit.esc(line.focus_area or t("slack.no_area")),
             opens=kit.minute(line.opens_at, zone), closes=kit.minute(line.closes_at, zone),
             ideas=line.ideas, supporters=line.supporters, realised=line.realised,
             chosen=", ".join(line.chosen) or "–", link=kit.esc(link))


def campaign_actions(line: sc.CampaignLine, t: Translator) -> Block:
    elements = [kit.button(t("slack_campaigns.button.edit"), EDIT, str(line.id))]
    if line.state != "closed":
        close = kit.button(t("slack_campaigns.button.close"), CLOSE, str(line.id), "danger")
        close["confirm"] = {
            "title": kit.plain(t("slack_campaigns.confirm_close_title"), 100),
            "text": kit.plain(t("slack_campaigns.confirm_close", title=line.title), 300),
            "confirm": kit.plain(t("slack_campaigns.button.close"), 30),
            "deny": kit.plain(t("slack.modal.cancel"), 30)}
        elements.append(close)
    if line.ideas:
        elements.append(kit.button(t("slack_campaigns.button.choose"), CHOOSE, str(line.id)))
    return {"type": "actions", "block_id": f"campaign_{line.id}", "elements": elements}


def list_blocks(lines: Sequence[sc.CampaignLine], total: int, t: Translator, zone: tzinfo, *,
                moderator: bool, link: Callable[[int], str | None],
                notice: str | None = None) -> list[Block]:
    """The competitions, newest first, each with `link(id)` (where citizens join it);
    moderators get the buttons to run them."""
    blocks: list[Block] = kit.sections(notice) if notice else []
    blocks.append({"type": "header", "text": kit.plain(t("slack_campaigns.title"),
                                                       kit.HEADER_MAX)})
    if not lines:
        blocks += kit.sections(t("slack_campaigns.none"))
    for line in lines:
        text = campaign_text(line, t, zone, link(line.id) or "–")
        blocks += kit.sections(text)
        if moderator:
            blocks.append(campaign_actions(line, t))
    if total > len(lines):
        blocks.append(kit.context(t("slack_campaigns.more", n=len(lines), total=total)))
    if moderator:
        blocks.append(kit.context(t("slack_campaigns.how_to_create")))
    return blocks[:50]


def _text_input(block_id: str, label: str, *, max_length: int, multiline: bool = False,
                initial: str | None = None, optional: bool = False,
                hint: str | None = None) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": "value",
                      "max_length": max_length, "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:max_length]
    return _input(block_id, label, element, optional=optional, hint=hint)


def _input(block_id: str, label: str, element: Block, *, optional: bool = False,
           hint: str | None = None) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": kit.plain(label, 2000),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = kit.plain(hint, 2000)
    return block


def _datepicker(t: Translator, initial: date | None) -> Block:
    element: Block = {"type": "datepicker", "action_id": "value",
                      "placeholder": kit.plain(t("slack_campaigns.pick_date"))}
    if initial is not None:
        element["initial_date"] = initial.isoformat()
    return element


def _modal(callback_id: str, title: str, submit: str, metadata: str,
           blocks: list[Block], t: Translator) -> Block:
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata[:3000],
            "title": kit.plain(title, kit.MODAL_TITLE_MAX),
            "submit": kit.plain(submit, kit.MODAL_TITLE_MAX),
            "close": kit.plain(t("slack.modal.cancel"), kit.MODAL_TITLE_MAX),
            "blocks": blocks}


def campaign_modal(t: Translator, areas: Sequence[str], zone: tzinfo, metadata: str, *,
                   today: date, line: sc.CampaignLine | None = None) -> Block:
    """Create (no line) or edit (prefilled; the opening is shown, not editable)."""
    options = [{"text": kit.plain(a), "value": str(i)} for i, a in enumerate(areas)][:100]
    area: Block = {"type": "static_select", "action_id": "value", "options": options,
                   "placeholder": kit.plain(t("slack.modal.pick_area"))}
    if line is not None and line.focus_area in areas:
        area["initial_option"] = options[list(areas).index(line.focus_area)]
    blocks = [
        _text_input("title", t("slack_campaigns.field.title"),
                    max_length=campaigns.TITLE_MAX, initial=line.title if line else None),
        _text_input("question", t("slack_campaigns.field.question"),
                    max_length=campaigns.QUESTION_MAX, multiline=True,
                    initial=line.question if line else None,
                    hint=t("slack_campaigns.field.question_hint")),
        _input("area", t("field.area"), area, optional=True),
    ]
    if line is None:
        blocks.append(_input("opens", t("slack_campaigns.field.opens"), _datepicker(t, today)))
    else:
        blocks += kit.sections(t("slack_campaigns.field.opened",
                                 opens=kit.minute(line.opens_at, zone)))
    closes = kit.local(line.closes_at, zone).date() if line else None
    blocks.append(_input("closes", t("slack_campaigns.field.closes"), _datepicker(t, closes),
                         hint=t("slack_campaigns.field.closes_hint")))
    blocks.append(_text_input("text", t("slack_campaigns.field.text"),
                              max_length=campaigns.TEXT_MAX, multiline=True,
                              initial=(line.text if line else None), optional=True,
                              hint=t("slack_campaigns.field.text_hint")))
    title = "slack_campaigns.modal_edit" if line else "slack_campaigns.modal_new"
    submit = "slack.modal.save" if line else "slack_campaigns.create"
    return _modal(CAMPAIGN_VIEW, t(title), t(submit), metadata, blocks, t)


def choose_modal(t: Translator, line: sc.CampaignLine, options: Sequence[sc.IdeaOption],
                 metadata: str) -> Block:
    """A multi-select of the competition's ideas; a text field of refs when they are too many
    for one select (Slack allows 100 options)."""
    key = "slack_campaigns.choose_again" if line.outcome_sent else "slack_campaigns.choose_text"
    blocks = kit.sections(t(key, title=kit.esc(line.title)))
    if len(options) <= sc.CHOICES:
        items = [{"text": kit.plain(f"{o.ref} {o.title}"), "value": o.ref} for o in options]
        element: Block = {"type": "multi_static_select", "action_id": "value",
                          "options": items,
                          "placeholder": kit.plain(t("slack_campaigns.pick_ideas"))}
        initial = [item for item, o in zip(items, options, strict=True) if o.chosen]
        if initial:
            element["initial_options"] = initial
        blocks.append(_input("refs", t("slack_campaigns.field.chosen"), element))
    else:
        blocks.append(_text_input("refs", t("slack_campaigns.field.chosen_refs"),
                                  max_length=2000, initial=", ".join(line.chosen),
                                  hint=t("slack_campaigns.field.chosen_hint")))
    return _modal(CHOOSE_VIEW, t("slack_campaigns.modal_choose"),
                  t("slack_campaigns.button.choose"), metadata, blocks, t)


def collab_modal(t: Translator, ref: str, metadata: str) -> Block:
    blocks = kit.sections(t("slack_campaigns.collab_text", ref=ref))
    blocks.append(_text_input("text", t("slack_campaigns.field.collab"),
                              max_length=collaboration.TEXT_MAX, multiline=True,
                              hint=t("slack_campaigns.field.collab_hint")))
    return _modal(COLLAB_VIEW, t("slack_campaigns.modal_collab"),
                  t("slack_campaigns.send"), metadata, blocks, t)


def campaign_section(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    """Public part of the status view: the competition the idea answers."""
    campaign = d.extras.get("campaign")
    if not campaign:
        return []
    key = "slack_campaigns.status.chosen" if campaign["chosen"] else "slack_campaigns.status.in"
    return kit.sections(t(key, id=campaign["id"], title=kit.esc(campaign["title"])))


def collab_section(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    """Moderators only: who said yes to collaborating, and the button to invite."""
    summary = d.extras.get("collab")
    blocks: list[Block] = []
    if isinstance(summary, sc.CollabSummary) and summary.invites:
        lines = [t("slack_campaigns.status.collab", n=summary.invites, yes=len(summary.yes))]
        lines += [t("slack_campaigns.status.yes_line", name=kit.esc(shorten(a.name, 100)),
                    channel=kit.esc(channel_label(t, a.channel)), date=kit.day(a.at, zone))
                  for a in summary.yes[:YES_SHOWN]]
        if len(summary.yes) > YES_SHOWN:
            lines.append(t("slack_campaigns.status.yes_more", n=len(summary.yes) - YES_SHOWN))
        blocks += kit.sections("\n".join(lines))
    if d.status == Status.USEFUL.value:
        blocks.append({"type": "actions", "block_id": f"collab_{d.ref}", "elements": [
            kit.button(t("slack_campaigns.button.invite"), INVITE, d.ref, "primary")]})
    return blocks


# --- reading submitted views ------------------------------------------------------------------

def _state_values(view: dict[str, Any]) -> dict[str, Any]:
    return view.get("state", {}).get("values", {})


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return (_state_values(view).get(block_id) or {}).get("value") or {}


def _errors(problems: Sequence[Problem], t: Translator) -> dict[str, str]:
    return {p.field: t(p.key, **p.params) for p in problems}


def _campaign_id(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() else None


# --- the sub-command --------------------------------------------------------------------------

async def show_list(bot: core.SlackBot, answer: core.Answer, *, replace: bool = False,
                    notice: str | None = None) -> None:
    lines, total = await bot.db(sc.list_campaigns, bot.runtime.db, utcnow())
    moderator = await bot.moderators.is_moderator(answer.user_id)
    await answer.send(list_blocks(lines, total, answer.t, bot.zone, moderator=moderator,
                                  link=bot.runtime.campaign_link,
                                  notice=notice), replace=replace)


async def _open(bot: core.SlackBot, client: AsyncWebClient, trigger_id: str,
                answer: core.Answer, view: Block) -> None:
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views.open failed", extra={"event": "slack_views_open_failed",
                                                "status": exc.response.get("error")})
        await answer.say(answer.t("slack.modal_failed"))


async def open_campaign_modal(bot: core.SlackBot, client: AsyncWebClient, trigger_id: str,
                              answer: core.Answer, line: sc.CampaignLine | None) -> None:
    meta = json.dumps({"id": line.id if line else None, "url": answer.url,
                       "lang": answer.t.language})
    today = utcnow().astimezone(bot.zone).date()
    await _open(bot, client, trigger_id, answer, campaign_modal(
        answer.t, bot.settings.focus_areas, bot.zone, meta, today=today, line=line))


@core.subcommand(SUBCOMMAND)
async def _competitions(ctx: core.CommandContext) -> None:
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


for _alias in ("konkurranser", "competition", "competitions"):
    core.ALIASES.setdefault(_alias, SUBCOMMAND)


# --- listeners --------------------------------------------------------------------------------

def register(bot: core.SlackBot) -> None:
    """Add the competition and collaboration listeners to one SlackBot's Bolt app. Every answer
    speaks the person's language: `answer.t`, or the modal's own (`modal_translator`) in an ack."""
    app = bot.bolt

    @app.action(EDIT)
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

    @app.action(CLOSE)
    async def on_close(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        number = _campaign_id(action.get("value"))
        if number is None or not await bot.allowed(answer.user_id, "campaign_close", answer):
            return

        async def close(b: core.SlackBot, a: core.Answer) -> None:
            try:
                done = await b.db(sc.close_campaign, b.runtime.db, number, utcnow())
            except campaigns.CampaignError:
                await a.say(a.t("slack_campaigns.not_found", id=number))
                return
            key = "slack_campaigns.closed" if done else "slack_campaigns.already_closed"
            await show_list(b, a, replace=True, notice=a.t(key, id=number))

        await core._guarded(close)(bot, answer)

    @app.action(CHOOSE)
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
        await _open(bot, client, body.get("trigger_id", ""), answer,
                    choose_modal(t, line, options, meta))

    @app.action(INVITE)
    async def on_invite(ack: Any, body: dict[str, Any], action: dict[str, Any],
                        client: AsyncWebClient) -> None:
        await ack()
        answer = await bot.answer_for(body, client)
        number = parse_ref(str(action.get("value") or ""))
        if number is None or not await bot.allowed(answer.user_id, "collab_invite", answer):
            return
        meta = json.dumps({"ref": format_ref(number), "url": answer.url,
                           "lang": answer.t.language})
        await _open(bot, client, body.get("trigger_id", ""), answer,
                    collab_modal(answer.t, format_ref(number), meta))

    @app.view(CAMPAIGN_VIEW)
    async def on_campaign_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                                 client: AsyncWebClient) -> None:
        meta = core.view_meta(view)
        t = bot.modal_translator(meta, core._user(body))
        number = _campaign_id(meta.get("id"))
        existing = None
        if number is not None:
            line = await bot.db(sc.campaign_line, bot.runtime.db, number, utcnow())
            if line is None:
                await ack()
                return
            existing = line.existing
        form, problems = sc.check_form(
            core._value(view, "title"), core._value(view, "question"),
            core._value(view, "text"),
            (_element(view, "area").get("selected_option") or {}).get("value"),
            _element(view, "opens").get("selected_date"),
            _element(view, "closes").get("selected_date"),
            areas=bot.settings.focus_areas, zone=bot.zone, now=utcnow(), existing=existing)
        if problems:
            await ack(response_action="errors", errors=_errors(problems, t))
            return
        await ack()
        answer = core.Answer(client, core._user(body), t, meta.get("url"))
        if form is None or not await bot.allowed(answer.user_id, "campaign_save", answer):
            return
        by = f"slack:{answer.user_id}"

        async def save(b: core.SlackBot, a: core.Answer) -> None:
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

        await core._guarded(save)(bot, answer)

    @app.view(CHOOSE_VIEW)
    async def on_choose_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        meta = core.view_meta(view)
        t = bot.modal_translator(meta, core._user(body))
        number = _campaign_id(meta.get("id"))
        element = _element(view, "refs")
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
        answer = core.Answer(client, core._user(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "campaign_choose", answer):
            return

        async def choose(b: core.SlackBot, a: core.Answer) -> None:
            try:
                chosen = await b.db(sc.choose, b.runtime.db, number, refs, utcnow())
            except (campaigns.CampaignError, IdeaNotFound):
                await a.say(t("slack_campaigns.not_saved"))
                return
            await show_list(b, a, replace=True, notice=t(
                "slack_campaigns.chosen", id=number, refs=", ".join(chosen.refs),
                n=chosen.told))

        await core._guarded(choose)(bot, answer)

    @app.view(COLLAB_VIEW)
    async def on_collab_submit(ack: Any, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        meta = core.view_meta(view)
        t = bot.modal_translator(meta, core._user(body))
        number = parse_ref(str(meta.get("ref") or ""))
        text = (core._value(view, "text") or "").strip()
        if number is None:
            await ack()
            return
        if not sc.COLLAB_TEXT_MIN <= len(text) <= collaboration.TEXT_MAX:
            await ack(response_action="errors", errors={"text": t(
                "slack_campaigns.length", min=sc.COLLAB_TEXT_MIN, max=collaboration.TEXT_MAX)})
            return
        await ack()
        answer = core.Answer(client, core._user(body), t, meta.get("url"))
        if not await bot.allowed(answer.user_id, "collab_invite", answer):
            return
        ref = format_ref(number)

        async def send(b: core.SlackBot, a: core.Answer) -> None:
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

        await core._guarded(send)(bot, answer)


if register not in core.LISTENERS:
    core.LISTENERS.append(register)
if campaign_section not in kit.STATUS_SECTIONS:
    kit.STATUS_SECTIONS.append(campaign_section)
if collab_section not in kit.MODERATOR_SECTIONS:
    kit.MODERATOR_SECTIONS.append(collab_section)
