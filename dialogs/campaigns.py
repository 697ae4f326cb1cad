"""Idea competitions (idékonkurranser) and "what's going on" for citizens.

`/konkurranser` lists the open competitions, each with a button to take part; a deep link
`https://t.me/<bot>?start=k<ID>` arrives as `/start k<ID>` and starts a submission bound to
that competition, which asks the competition's question. `/aktuelt` shows open competitions and
the ideas being worked on (`useful`) with their latest public note. `/innstillinger` lets the
person change language, follow-ups and invitations to new competitions.
"""

from __future__ import annotations

from datetime import datetime

from dialogs import citizen, submit
from dialogs.core import CampaignView, Context, Outcome, Part, SetConsent, State
from dialogs.payload import global_choice
from dialogs.text import shorten
from dialogs.types import Reply


def state(opens_at: datetime, closes_at: datetime, closed_at: datetime | None,
          now: datetime) -> str:
    """"upcoming", "open" or "closed": a competition takes ideas from its opening until it
    closes or is closed early (the one rule for the chat, Slack, the CLI and the report)."""
    if closed_at is not None or now >= closes_at:
        return "closed"
    return "open" if now >= opens_at else "upcoming"


def cmd_competitions(state: State, args: str, ctx: Context) -> Outcome:
    t = ctx.t
    campaigns = ctx.ports.open_campaigns()
    if not campaigns:
        return _answer(state, ctx, Reply(t("campaigns.none_open")))
    lines = [t("campaigns.header")]
    lines += [_line(c, ctx) for c in campaigns]
    choices = tuple(global_choice(t("campaigns.button_join", title=shorten(c.title, 40)),
                                  f"camp:{c.id}") for c in campaigns[:10])
    return _answer(state, ctx, Reply("\n\n".join(lines), choices))


def _line(campaign: CampaignView, ctx: Context) -> str:
    line = ctx.t("campaigns.line", title=campaign.title, question=campaign.question,
                 closes=ctx.date(campaign.closes_at))
    return f"{line}\n{campaign.text}" if campaign.text else line


def act_join(state: State, args: list[str], ctx: Context) -> Outcome:
    """The button under a competition (or its invitation): start a bound submission."""
    if not args or not args[0].isdigit():
        return Outcome(state, (Reply(ctx.t("choice.expired")),))
    return join(state, int(args[0]), ctx)


def start_link(state: State, args: str, ctx: Context) -> Outcome:
    """`/start k12`: the Telegram deep link of competition 12."""
    number = args[1:]
    if not number.isdigit():
        return citizen.cmd_start(state, "", ctx)
    return join(state, int(number), ctx)


def join(state: State, campaign_id: int, ctx: Context) -> Outcome:
    campaign = ctx.ports.campaign(campaign_id)
    if campaign is None:
        return Outcome(state, (Reply(ctx.t("campaigns.not_found")),))
    if not campaign.is_open and ctx.now < campaign.opens_at:
        return Outcome(state, (Reply(ctx.t("campaigns.not_yet", title=campaign.title,
                                           opens=ctx.date(campaign.opens_at))),))
    if not campaign.is_open:
        return Outcome(state, (Reply(ctx.t("campaigns.closed", title=campaign.title)),))
    return submit.start(state, ctx, campaign_id=campaign_id)


def cmd_current(state: State, args: str, ctx: Context) -> Outcome:
    """What is going on: open competitions and ideas being worked on."""
    t = ctx.t
    parts = []
    campaigns = ctx.ports.open_campaigns()
    if campaigns:
        parts.append(t("campaigns.current_competitions"))
        parts += [_line(c, ctx) for c in campaigns]
    ideas = ctx.ports.ideas_in_progress(10)
    if ideas:
        parts.append(t("campaigns.current_ideas"))
        for idea in ideas:
            line = t("campaigns.current_idea", ref=idea.ref, title=idea.title,
                     date=ctx.date(idea.status_changed_at))
            if idea.public_note:
                line += "\n" + t("status.note", note=shorten(idea.public_note, 300))
            parts.append(line)
    if not parts:
        parts.append(t("campaigns.current_nothing"))
    choices = tuple(global_choice(t("campaigns.button_join", title=shorten(c.title, 40)),
                                  f"camp:{c.id}") for c in campaigns[:10])
    return _answer(state, ctx, Reply("\n\n".join(parts), choices))


def cmd_settings(state: State, args: str, ctx: Context) -> Outcome:
    t, person = ctx.t, ctx.person
    follow = t("campaigns.on") if person.follow_up_consent else t("campaigns.off")
    invite = t("campaigns.on") if person.invite_consent else t("campaigns.off")
    choices = (
        global_choice(t("campaigns.button_follow", state=t("campaigns.off") if
                        person.follow_up_consent else t("campaigns.on")),
                      f"set:follow:{'off' if person.follow_up_consent else 'on'}"),
        global_choice(t("campaigns.button_invite", state=t("campaigns.off") if
                        person.invite_consent else t("campaigns.on")),
                      f"set:invite:{'off' if person.invite_consent else 'on'}"),
        global_choice(t("campaigns.button_language"), "langmenu"),
    )
    return _answer(state, ctx, Reply(t("campaigns.settings", follow=follow, invite=invite),
                                     choices))


def act_setting(state: State, args: list[str], ctx: Context) -> Outcome:
    if len(args) != 2 or args[0] not in ("follow", "invite") or args[1] not in ("on", "off"):
        return Outcome(state, (Reply(ctx.t("choice.expired")),))
    value = args[1] == "on"
    effect = SetConsent(follow_up=value) if args[0] == "follow" else SetConsent(invite=value)
    key = f"campaigns.set_{args[0]}_{args[1]}"
    return _answer(state, ctx, Reply(ctx.t(key)), (effect,))


def act_language_menu(state: State, args: list[str], ctx: Context) -> Outcome:
    return citizen.cmd_language(state, "", ctx)


def _answer(state: State, ctx: Context, reply: Reply, effects: tuple = ()) -> Outcome:
    """Answer without leaving a conversation in progress: its question is repeated."""
    replies = (reply,) if state.flow is None else (reply, ctx.open_question(state))
    return Outcome(state, replies, effects)


PART = Part(
    commands={"konkurranser": cmd_competitions, "competitions": cmd_competitions,
              "aktuelt": cmd_current, "current": cmd_current,
              "innstillinger": cmd_settings, "settings": cmd_settings},
    actions={"camp": act_join, "set": act_setting, "langmenu": act_language_menu},
    start_payloads={"k": start_link})
