"""Block Kit for idea competitions and invitations to collaborate: pure, like `blocks.py`.

The competitions list (state, dates in the municipality's zone, figures, chosen ideas, the
Telegram link, and for moderators "Endre", "Avslutt" and "Marker valgte"), the create/edit,
choose and invite modals, and the two status-view sections the app adds to every status view
(`adapters.slack.listeners` assembles them): the competition an idea answers, and — for
moderators only — who said yes to collaboration invitations with the "Inviter til samarbeid"
button on a `useful` idea.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, tzinfo
from typing import Any

from adapters.slack import blocks as kit
from bot.features import campaigns, collaboration
from bot.features.ideas_channel import channel_label
from bot.i18n import Translator
from bot.staff import campaigns as sc
from bot.staff.desk import IdeaDetail
from dialogs.lifecycle import Status
from dialogs.text import shorten

Block = dict[str, Any]

# action and view ids
EDIT = "kominn_campaign_edit"
CLOSE = "kominn_campaign_close"
CHOOSE = "kominn_campaign_choose"
INVITE = "kominn_collab_invite"
CAMPAIGN_VIEW = "kominn_campaign"
CHOOSE_VIEW = "kominn_campaign_chosen"
COLLAB_VIEW = "kominn_collab"

QUESTION_SHOWN = 500
YES_SHOWN = 30


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
    """The competitions, newest first; moderators get the buttons to run them."""
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
    return kit.input_block(block_id, label, element, optional=optional, hint=hint)


def _datepicker(t: Translator, initial: date | None) -> Block:
    element: Block = {"type": "datepicker", "action_id": "value",
                      "placeholder": kit.plain(t("slack_campaigns.pick_date"))}
    if initial is not None:
        element["initial_date"] = initial.isoformat()
    return element


def campaign_modal(t: Translator, areas: Sequence[str], zone: tzinfo, metadata: str, *,
                   today: date, line: sc.CampaignLine | None = None) -> Block:
    """Create (no line) or edit (prefilled; the opening is shown, not editable)."""
    options = [{"text": kit.plain(a), "value": str(i)} for i, a in enumerate(areas)][:100]
    area: Block = {"type": "static_select", "action_id": "value", "options": options,
                   "placeholder": kit.plain(t("slack.modal.pick_area"))}
    if line is not None and line.focus_area is not None and line.focus_area in areas:
        area["initial_option"] = options[list(areas).index(line.focus_area)]
    blocks = [
        _text_input("title", t("slack_campaigns.field.title"),
                    max_length=campaigns.TITLE_MAX, initial=line.title if line else None),
        _text_input("question", t("slack_campaigns.field.question"),
                    max_length=campaigns.QUESTION_MAX, multiline=True,
                    initial=line.question if line else None,
                    hint=t("slack_campaigns.field.question_hint")),
        kit.input_block("area", t("field.area"), area, optional=True),
    ]
    if line is None:
        blocks.append(kit.input_block("opens", t("slack_campaigns.field.opens"),
                                      _datepicker(t, today)))
    else:
        blocks += kit.sections(t("slack_campaigns.field.opened",
                                 opens=kit.minute(line.opens_at, zone)))
    closes = kit.local(line.closes_at, zone).date() if line else None
    blocks.append(kit.input_block("closes", t("slack_campaigns.field.closes"),
                                  _datepicker(t, closes),
                                  hint=t("slack_campaigns.field.closes_hint")))
    blocks.append(_text_input("text", t("slack_campaigns.field.text"),
                              max_length=campaigns.TEXT_MAX, multiline=True,
                              initial=(line.text if line else None), optional=True,
                              hint=t("slack_campaigns.field.text_hint")))
    title = "slack_campaigns.modal_edit" if line else "slack_campaigns.modal_new"
    submit = "slack.modal.save" if line else "slack_campaigns.create"
    return kit.modal(CAMPAIGN_VIEW, t(title), t(submit), metadata, blocks, t)


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
        blocks.append(kit.input_block("refs", t("slack_campaigns.field.chosen"), element))
    else:
        blocks.append(_text_input("refs", t("slack_campaigns.field.chosen_refs"),
                                  max_length=2000, initial=", ".join(line.chosen),
                                  hint=t("slack_campaigns.field.chosen_hint")))
    return kit.modal(CHOOSE_VIEW, t("slack_campaigns.modal_choose"),
                  t("slack_campaigns.button.choose"), metadata, blocks, t)


def collab_modal(t: Translator, ref: str, metadata: str) -> Block:
    blocks = kit.sections(t("slack_campaigns.collab_text", ref=ref))
    blocks.append(_text_input("text", t("slack_campaigns.field.collab"),
                              max_length=collaboration.TEXT_MAX, multiline=True,
                              hint=t("slack_campaigns.field.collab_hint")))
    return kit.modal(COLLAB_VIEW, t("slack_campaigns.modal_collab"),
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
    if isinstance(summary, collaboration.CollabSummary) and summary.invites:
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

