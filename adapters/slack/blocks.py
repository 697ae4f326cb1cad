"""Block Kit for the Slack app: pure functions from KomInn's data to Slack's JSON.

Every piece of text a citizen (or any person) wrote goes through `esc()` before it lands in a
mrkdwn field, so `<!channel>`, `<@U…>` and `<https://x|label>` show as typed and ping or link
nobody; our own formatting (`*bold*`, `<@moderator>`) is added around the escaped text.
Slack's size limits are applied here (3000 characters a section, 75 a button, …).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.features.ideas_channel import channel_label
from bot.i18n import Translator
from bot.ideas.triage import MERGED, NOT_DUPLICATE, IdeaCard, Pair
from bot.staff.desk import HomeStats, IdeaDetail, IdeaLine
from dialogs.fields import DESCRIPTION_MAX, PLACE_MAX, TITLE_MAX
from dialogs.lifecycle import Status
from dialogs.text import shorten
from dialogs.types import Reply

Block = dict[str, Any]
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_MAX = 75
HEADER_MAX = 150
MODAL_TITLE_MAX = 24
VALUE_MAX = 2000
NOTE_MAX = 2000
# A link in citizen text stays a visible URL; Slack must not unfold a preview of it.
NO_PREVIEWS = {"unfurl_links": False, "unfurl_media": False}

# action ids the adapter listens to
SHOW = "kominn_show"
LIST_MORE = "kominn_list_more"
MOVE = "kominn_move_"  # + target status
PUBLISH = "kominn_publish"  # "Publiser" (KOMINN_PUBLISH=after-review), value: the ref
TRIAGE_MERGE = "kominn_triage_merge"
TRIAGE_MERGE_OTHER = "kominn_triage_merge_other"
TRIAGE_DISTINCT = "kominn_triage_distinct"
TRIAGE_SKIP = "kominn_triage_skip"
HOME_NEW = "kominn_home_new"
HOME_TRIAGE = "kominn_home_triage"
REPLY = "kominn_reply_"  # + index: a neutral Reply's choice
LINK = "kominn_link_"  # + index: a URL button
NEW_IDEA_VIEW = "kominn_new_idea"
MOVE_VIEW = "kominn_move"


# --- text helpers -----------------------------------------------------------------------------

def esc(text: object) -> str:
    """Escape for Slack mrkdwn: only &, < and > are control characters there."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = BUTTON_MAX) -> Block:
    return {"type": "plain_text", "text": shorten(text, limit) or " ", "emoji": False}


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def sections(text: str) -> list[Block]:
    """mrkdwn text as one or more sections (a section holds at most 3000 characters)."""
    chunks, current = [], ""
    for line in (text or " ").split("\n"):
        while len(line) > SECTION_MAX:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:SECTION_MAX])
            line = line[SECTION_MAX:]
        if current and len(current) + 1 + len(line) > SECTION_MAX:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    chunks.append(current)
    return [{"type": "section", "text": mrkdwn(c if c.strip() else " ")} for c in chunks]


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(shorten(text, SECTION_MAX))]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    item: Block = {"type": "button", "text": plain(text), "action_id": action_id,
                   "value": value[:VALUE_MAX]}
    if style:
        item["style"] = style
    return item


def who(by: str | None) -> str:
    """`slack:U123` → a mention; anything else (citizen, cli) → escaped as written."""
    if by and by.startswith("slack:") and by[6:].isalnum():
        return f"<@{by[6:]}>"
    return esc(by or "–")


def local(moment: datetime, zone: tzinfo) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone)


def day(moment: datetime | None, zone: tzinfo) -> str:
    return local(moment, zone).strftime("%d.%m.%Y") if moment else "–"


def minute(moment: datetime | None, zone: tzinfo) -> str:
    return local(moment, zone).strftime("%d.%m.%Y %H:%M") if moment else "–"


def status_label(t: Translator, code: str | None) -> str:
    return t(f"status.{code}") if code else "–"


def percent(rate: float | None, t: Translator) -> str:
    value = f"{(rate or 0.0) * 100:.1f}".rstrip("0").rstrip(".")
    if t.language in ("nb", "nn"):
        value = value.replace(".", ",")
    return f"{value} %"


def fallback(blocks: Sequence[Block]) -> str:
    """The notification text of a message (Slack parses it as mrkdwn): the first block's text,
    escaped when it was plain text (a header holds a citizen's title as typed)."""
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and text.get("text", "").strip():
            shown = text["text"] if text.get("type") == "mrkdwn" else esc(text["text"])
            return shorten(shown, 300)
    return "KomInn"


# --- one idea ---------------------------------------------------------------------------------

StatusSection = Callable[[IdeaDetail, Translator, tzinfo], list[Block]]


def _facts(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    lines = [
        t("slack.status.line", status=status_label(t, d.status),
          since=day(d.status_changed_at, zone)),
        t("slack.status.area", area=esc(d.focus_area or t("slack.no_area"))),
    ]
    if d.place:
        lines.append(t("slack.status.place", place=esc(d.place)))
    lines.append(t("slack.status.submitted", date=day(d.created_at, zone),
                   channel=esc(channel_label(t, d.channel))))
    lines.append(t("slack.status.supporters", n=d.supporters))
    if d.merged_into:
        lines.append(t("slack.status.merged_into", ref=d.merged_into))
    if d.public_note:
        lines.append(t("slack.status.note", note=esc(d.public_note)))
    return sections("\n".join(lines))


def _description(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    return sections(esc(shorten(d.description, SECTION_MAX - 100)))


def _history(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    lines = [t("slack.status.history")]
    for h in d.history[-10:]:
        line = t("slack.status.history_line", at=minute(h.at, zone),
                 old=status_label(t, h.from_status), new=status_label(t, h.to_status),
                 by=who(h.by))
        if h.note:
            line += f" – {esc(shorten(h.note, 300))}"
        lines.append(line)
    return sections("\n".join(lines))


def _duplicates(d: IdeaDetail, t: Translator, zone: tzinfo) -> list[Block]:
    lines = []
    if d.pending_duplicates:
        lines.append(t("slack.status.pending_duplicates"))
        lines += [t("slack.dup_line", ref=x.ref, title=esc(shorten(x.title, 100)),
                    score=round(x.score or 0)) for x in d.pending_duplicates[:10]]
    if d.merged_here:
        lines.append(t("slack.status.merged_here"))
        lines += [f"• *{x.ref}* {esc(shorten(x.title, 100))}" for x in d.merged_here[:10]]
    return sections("\n".join(lines)) if lines else []


@dataclass(frozen=True)
class StatusSections:
    """The status view, section by section: `public` for anyone, then `moderator` for
    moderators only (e.g. who said yes to a collaboration invitation). Features add theirs
    (from `IdeaDetail.extras`) where the app is assembled: `adapters.slack.listeners`."""

    public: tuple[StatusSection, ...]
    moderator: tuple[StatusSection, ...] = ()

    def shown(self, *, moderator: bool) -> tuple[StatusSection, ...]:
        """The sections one reader sees, in order."""
        return self.public + self.moderator if moderator else self.public


# The idea itself: what every status view shows, whatever features the app has.
CORE_SECTIONS = StatusSections((_facts, _description, _history, _duplicates))


def status_blocks(d: IdeaDetail, t: Translator, zone: tzinfo, *,
                  parts: StatusSections = CORE_SECTIONS, moves: Sequence[Status] = (),
                  notice: str | None = None, moderator: bool = False,
                  publish: bool = False) -> list[Block]:
    """One idea: a notice (what just happened), its header, its `parts`, and a moderator's
    lifecycle moves as buttons ("Publiser" first when `publish`: it waits for review)."""
    blocks: list[Block] = []
    if notice:
        blocks += sections(notice)
    blocks.append({"type": "header", "text": plain(f"{d.ref} {d.title}", HEADER_MAX)})
    for part in parts.shown(moderator=moderator):
        blocks += part(d, t, zone)
    actions = [button(t("slack.button.publish"), PUBLISH, d.ref, "primary")] if publish else []
    actions += [button(t("slack.button.move", status=status_label(t, target.value)),
                       MOVE + target.value, f"{d.ref}|{target.value}|{d.status}",
                       "danger" if target is Status.DECLINED else None)
                for target in moves]
    if actions:
        blocks.append({"type": "actions", "block_id": f"move_{d.ref}", "elements": actions})
    return blocks[:50]


# --- lists ------------------------------------------------------------------------------------

def idea_line(line: IdeaLine, t: Translator, zone: tzinfo) -> Block:
    text = t("slack.idea_line", ref=line.ref, title=esc(shorten(line.title, 150)),
             status=status_label(t, line.status), date=day(line.created_at, zone),
             area=esc(line.focus_area or t("slack.no_area")), n=line.supporters)
    if line.score is not None:
        text += " · " + t("slack.score", score=round(line.score))
    return {"type": "section", "text": mrkdwn(text),
            "accessory": button(t("slack.button.show"), SHOW, line.ref)}


def list_blocks(lines: Sequence[IdeaLine], total: int, offset: int, filters: str,
                more: dict[str, Any] | None, t: Translator, zone: tzinfo) -> list[Block]:
    if not lines:
        return sections(t("slack.list.empty", filters=esc(filters)))
    head = t("slack.list.head", first=offset + 1, last=offset + len(lines), total=total,
             filters=esc(filters))
    blocks = sections(head) + [idea_line(x, t, zone) for x in lines]
    if more is not None:
        blocks.append({"type": "actions", "elements": [
            button(t("slack.button.more"), LIST_MORE, json.dumps(more, ensure_ascii=False))]})
    return blocks


def search_blocks(query: str, lines: Sequence[IdeaLine], t: Translator,
                  zone: tzinfo) -> list[Block]:
    if not lines:
        return sections(t("slack.search.none", query=esc(shorten(query, 200))))
    return (sections(t("slack.search.head", query=esc(shorten(query, 200)), n=len(lines)))
            + [idea_line(x, t, zone) for x in lines])


# --- triage -----------------------------------------------------------------------------------

def _card(c: IdeaCard, t: Translator, zone: tzinfo, oldest: bool) -> Block:
    text = t("slack.triage.card", ref=c.ref, title=esc(shorten(c.title, 200)),
             excerpt=esc(c.excerpt), status=status_label(t, c.status), n=c.supporters,
             date=day(c.created_at, zone))
    if oldest:
        text = t("slack.triage.oldest") + "\n" + text
    return mrkdwn(shorten(text, FIELD_MAX))


def pair_blocks(pair: Pair, t: Translator, zone: tzinfo, pending: int | None = None
                ) -> list[Block]:
    """The pair side by side (older first) with the four decisions."""
    older, newer = pair.older, pair.newer
    head = t("slack.triage.head", score=round(pair.score))
    if pending is not None:
        head += " · " + t("slack.triage.pending", n=pending)
    return [
        *sections(head),
        {"type": "section", "fields": [_card(older, t, zone, True), _card(newer, t, zone, False)]},
        {"type": "actions", "block_id": f"triage_{pair.id}", "elements": [
            button(t("slack.button.merge", ref=older.ref), TRIAGE_MERGE,
                   f"{pair.id}:{older.number}", "primary"),
            button(t("slack.button.keep_other", ref=newer.ref), TRIAGE_MERGE_OTHER,
                   f"{pair.id}:{newer.number}"),
            button(t("slack.button.not_duplicate"), TRIAGE_DISTINCT, str(pair.id)),
            button(t("slack.button.skip"), TRIAGE_SKIP, str(pair.id)),
        ]},
    ]


def decided_blocks(pair: Pair, t: Translator, zone: tzinfo, *, already: bool = False
                   ) -> list[Block]:
    """What a pair became, and who decided (also shown to whoever comes second)."""
    if pair.state == MERGED:
        dropped = pair.a if pair.kept == pair.b.ref else pair.b
        line = t("slack.triage.merged", dropped=dropped.ref, kept=pair.kept or "?",
                 by=who(pair.decided_by), at=minute(pair.decided_at, zone))
    elif pair.state == "pending":
        line = t("slack.triage.still_pending")
    elif pair.state != NOT_DUPLICATE:  # e.g. settled when one of the ideas was merged elsewhere
        line = t("slack.triage.resolved", a=pair.a.ref, b=pair.b.ref)
    else:
        line = t("slack.triage.distinct", a=pair.a.ref, b=pair.b.ref, by=who(pair.decided_by),
                 at=minute(pair.decided_at, zone))
    if already:
        line = t("slack.triage.already") + "\n" + line
    titles = " · ".join(f"*{c.ref}* {esc(shorten(c.title, 120))}" for c in (pair.a, pair.b))
    return [*sections(line), context(titles)]


# --- report -----------------------------------------------------------------------------------

def _rate_line(name: str, entry: dict[str, Any], t: Translator) -> str:
    return t("slack.report.rate_line", name=esc(name), rate=percent(entry.get("rate"), t),
             realised=entry.get("realised", 0),
             counted=entry.get("submitted", 0) - entry.get("merged", 0))


def report_blocks(report: dict[str, Any], t: Translator) -> list[Block]:
    """`bot.reports.realisation.compute()` as a message: the headline rate, the funnel, the
    breakdowns."""
    blocks: list[Block] = [{"type": "header", "text": plain(t("slack.report.title"), HEADER_MAX)}]
    blocks += sections(t("slack.report.rate", rate=percent(report.get("realisation_rate"), t),
                         realised=report.get("realised", 0),
                         n=report.get("submitted", 0) - report.get("merged", 0)))
    funnel = report.get("funnel") or {}
    blocks.append({"type": "section", "text": mrkdwn(t("slack.report.funnel")), "fields": [
        mrkdwn(f"{status_label(t, code)}: *{count}*") for code, count in funnel.items()][:10]
        or [mrkdwn("–")]})
    for key, title in (("by_area", "slack.report.by_area"),
                       ("by_channel", "slack.report.by_channel")):
        groups = report.get(key) or {}
        if groups:
            names = {n: (channel_label(t, n) if key == "by_channel" else n) for n in groups}
            blocks += sections("\n".join([t(title)] + [_rate_line(names[n], e, t)
                                                       for n, e in list(groups.items())[:12]]))
    months = report.get("by_month") or {}
    if months:
        recent = list(months.items())[-6:]
        blocks += sections("\n".join([t("slack.report.by_month")]
                                     + [_rate_line(m, e, t) for m, e in recent]))
    benefit = report.get("benefit_check") or {}
    if benefit:
        blocks += sections(t("slack.report.benefit", yes=benefit.get("Ja", 0),
                             partly=benefit.get("Delvis", 0), no=benefit.get("Nei", 0)))
    return blocks[:50]


# --- App Home ---------------------------------------------------------------------------------

def home_view(stats: HomeStats, t: Translator, zone: tzinfo, *, moderator: bool) -> Block:
    counts = [mrkdwn(f"{status_label(t, code)}: *{n}*") for code, n in stats.counts.items()]
    blocks: list[Block] = [
        {"type": "header", "text": plain(t("slack.home.title"), HEADER_MAX)},
        *sections(t("slack.home.intro")),
        {"type": "section", "text": mrkdwn(t("slack.home.counts")), "fields": counts[:10]},
        *sections(t("slack.home.triage", n=stats.triage_pending)),
    ]
    if stats.triage_decided:
        share = f"{round(100 * stats.triage_merged / stats.triage_decided)} %"
        blocks += sections(t("slack.home.triage_precision", share=share,
                             merged=stats.triage_merged, decided=stats.triage_decided))
    actions = [button(t("slack.button.new_idea"), HOME_NEW, "new", "primary")]
    if moderator and stats.triage_pending:
        actions.append(button(t("slack.button.start_triage"), HOME_TRIAGE, "triage"))
    blocks.append({"type": "actions", "elements": actions})
    blocks.append({"type": "divider"})
    if stats.newest:
        blocks += sections(t("slack.home.newest"))
        blocks += [idea_line(x, t, zone) for x in stats.newest]
    else:
        blocks += sections(t("slack.home.no_ideas"))
    return {"type": "home", "callback_id": "kominn_home", "blocks": blocks[:100]}


# --- modals -----------------------------------------------------------------------------------

def input_block(block_id: str, label: str, element: Block, *, optional: bool = False,
                hint: str | None = None) -> Block:
    """A modal's input; every element's action id is "value" (see `payload.view_element`)."""
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def modal(callback_id: str, title: str, submit: str, metadata: str, blocks: list[Block],
          t: Translator) -> Block:
    """A modal view with KomInn's cancel button; Slack's title and metadata limits applied."""
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata[:3000],
            "title": plain(title, MODAL_TITLE_MAX), "submit": plain(submit, MODAL_TITLE_MAX),
            "close": plain(t("slack.modal.cancel"), MODAL_TITLE_MAX), "blocks": blocks}


def new_idea_modal(t: Translator, areas: Sequence[str], metadata: str) -> Block:
    follow = {"text": plain(t("slack.modal.follow_up"), 75), "value": "yes"}
    return modal(NEW_IDEA_VIEW, t("slack.modal.new_title"), t("slack.modal.submit"), metadata, [
            input_block("title", t("field.title"), {
                "type": "plain_text_input", "action_id": "value", "max_length": TITLE_MAX}),
            input_block("description", t("field.description"),
                        {"type": "plain_text_input", "action_id": "value", "multiline": True,
                         "max_length": DESCRIPTION_MAX}),
            input_block("area", t("field.area"), {
                "type": "static_select", "action_id": "value",
                "placeholder": plain(t("slack.modal.pick_area")),
                "options": [{"text": plain(a), "value": str(i)}
                            for i, a in enumerate(areas)][:100]}),
            input_block("place", t("field.place"), {
                "type": "plain_text_input", "action_id": "value", "max_length": PLACE_MAX},
                optional=True),
            input_block("follow_up", t("slack.modal.follow_up_label"), {
                "type": "checkboxes", "action_id": "value", "options": [follow],
                "initial_options": [follow]}, optional=True),
    ], t)


def move_modal(t: Translator, ref: str, current: str, target: str, metadata: str) -> Block:
    declining = target == Status.DECLINED.value
    label = t("slack.modal.reason") if declining else t("slack.modal.note")
    return modal(MOVE_VIEW, t("slack.modal.move_title"), t("slack.modal.save"), metadata, [
            *sections(t("slack.modal.move_text", ref=ref, old=status_label(t, current),
                        new=status_label(t, target))),
            input_block("note", label, {"type": "plain_text_input", "action_id": "value",
                                        "multiline": True, "max_length": NOTE_MAX},
                        optional=not declining, hint=t("slack.modal.note_hint")),
    ], t)


# --- neutral replies (the outbox) and help ----------------------------------------------------

def reply_blocks(reply: Reply) -> list[Block]:
    """A channel-neutral Reply: its text escaped, its choices and links as buttons."""
    blocks = sections(esc(reply.text))
    elements = [button(c.label, f"{REPLY}{i}", c.payload) for i, c in enumerate(reply.choices)]
    elements += [{"type": "button", "text": plain(label), "url": url[:3000],
                  "action_id": f"{LINK}{i}"} for i, (label, url) in enumerate(reply.links)]
    if elements:
        blocks.append({"type": "actions", "elements": elements[:25]})
    return blocks


def help_blocks(t: Translator, *, moderator: bool, unknown: str | None = None) -> list[Block]:
    blocks: list[Block] = []
    if unknown is not None:
        blocks += sections(t("slack.unknown_command", word=esc(shorten(unknown, 50))))
    blocks += sections(t("slack.help.everyone"))
    blocks += sections(t("slack.help.moderators") if moderator
                       else t("slack.help.moderators_only"))
    return blocks
