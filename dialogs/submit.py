"""The submission flow: title → description → focus area → place → follow-up consent →
similar ideas (when found) → summary → receipt. Every step validates and re-asks on bad input."""

from __future__ import annotations

from typing import Any

from dialogs.core import (
    AddSupport,
    Context,
    Outcome,
    SetConsent,
    State,
    SubmitIdea,
)
from dialogs.fields import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    NEED_WORDS,
    TITLE_MAX,
    TITLE_MIN,
    Checked,
    check_description,
    check_place,
    check_title,
)
from dialogs.payload import global_choice, step_choice
from dialogs.text import shorten
from dialogs.types import Choice, Incoming, Reply

FLOW = "submit"
EDITABLE = ("title", "description", "area", "place")


def start(state: State, ctx: Context, *, campaign_id: int | None = None) -> Outcome:
    """Begin a new submission (replacing any half-finished one)."""
    if ctx.ports.ideas_submitted_today() >= ctx.max_ideas_per_day:
        return Outcome(state, (Reply(ctx.t("limit.ideas_per_day", n=ctx.max_ideas_per_day)),))
    data: dict[str, Any] = {"campaign_id": campaign_id} if campaign_id else {}
    fresh = State(flow=FLOW, step="title", data={**data, "_history": []}, token=state.token + 1)
    return Outcome(fresh, (prompt(fresh, ctx),))


def prompt(state: State, ctx: Context) -> Reply:
    """The question of the current step, with its buttons."""
    t = ctx.t
    step, data = state.step, state.data
    if step == "title":
        campaign = ctx.ports.campaign(data["campaign_id"]) if data.get("campaign_id") else None
        if campaign is not None:
            return Reply(t("submit.ask_title_campaign", campaign=campaign.title,
                           question=campaign.question, min=TITLE_MIN, max=TITLE_MAX))
        return Reply(t("submit.ask_title", min=TITLE_MIN, max=TITLE_MAX))
    if step == "description":
        return Reply(t("submit.ask_description", min=DESCRIPTION_MIN, max=DESCRIPTION_MAX))
    if step == "area":
        return Reply(t("submit.ask_area"), tuple(step_choice(state, area, f"area:{i}")
                     for i, area in enumerate(ctx.ports.focus_areas())))
    if step == "place":
        return Reply(t("submit.ask_place"),
                     (step_choice(state, t("button.skip"), "place:skip"),))
    if step == "consent":
        return Reply(t("submit.ask_consent"), (
            step_choice(state, t("button.yes"), "consent:yes"),
            step_choice(state, t("button.no"), "consent:no"),
        ))
    if step == "email":
        return Reply(t("submit.ask_email"), (step_choice(state, t("button.skip"), "email:skip"),))
    if step == "similar":
        lines = [t("submit.similar_intro")]
        choices: list[Choice] = []
        for number, ref, title, status, _score in data.get("similar", []):
            lines.append(t("submit.similar_line", ref=ref, title=title,
                           status=t(f"status.{status}")))
            label = t("button.support", ref=ref)
            choices.append(step_choice(state, label, f"sim:support:{number}"))
        choices.append(step_choice(state, t("button.mine_is_new"), "sim:new"))
        return Reply("\n".join(lines), tuple(choices))
    if step == "summary":
        return Reply(summary_text(state, ctx), (
            step_choice(state, t("button.send"), "sum:send"),
            step_choice(state, t("button.edit"), "sum:edit"),
            step_choice(state, t("button.cancel"), "sum:cancel"),
        ))
    if step == "edit":
        return Reply(t("submit.ask_edit"), tuple(
            step_choice(state, t(f"field.{name}"), f"edit:{name}") for name in EDITABLE))
    raise ValueError(f"unknown submit step {step!r}")


def summary_text(state: State, ctx: Context) -> str:
    t, data = ctx.t, state.data
    place = data.get("place") or (t("submit.shared_location") if data.get("latitude") is not None
                                  else t("submit.no_place"))
    consent = t("button.yes") if data.get("consent") else t("button.no")
    return t("submit.summary", title=data.get("title", ""),
             description=shorten(data.get("description", ""), 600),
             area=data.get("area", ""), place=place, consent=consent)


def on_input(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    """Handle typed text (`action` None) or a pressed button of the current step."""
    handler = _HANDLERS[state.step or ""]
    return handler(state, incoming, action, ctx)


def _ask_again(state: State, ctx: Context, error_key: str, **params: object) -> Outcome:
    return Outcome(state, (Reply(ctx.t(error_key, **params)), prompt(state, ctx)))


def _advance(state: State, ctx: Context, next_step: str, **data: Any) -> Outcome:
    """Go to `next_step`, or back to the summary when the person was editing one field."""
    if state.data.get("editing"):
        data["editing"] = False
        return _to_summary(state, ctx, **data)
    moved = state.goto(next_step, **data)
    return Outcome(moved, (prompt(moved, ctx),))


def _to_summary(state: State, ctx: Context, **data: Any) -> Outcome:
    moved = state.goto("summary", **data)
    return Outcome(moved, (prompt(moved, ctx),))


def _title(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    checked = check_title(incoming.text)
    if action is not None or not incoming.text:  # nothing typed (a button, a location)
        return _ask_again(state, ctx, "submit.need_text")
    return _accept(state, ctx, checked, "description", "title")


def _description(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    checked = check_description(incoming.text)
    if action is not None or not incoming.text:  # only spaces typed: "too short" below
        return _ask_again(state, ctx, "submit.need_text")
    return _accept(state, ctx, checked, "area", "description")


def _accept(state: State, ctx: Context, checked: Checked, next_step: str,
            name: str) -> Outcome:
    """Store a checked text field and move on, or ask again saying what is wrong."""
    if checked.problem is not None:
        return _ask_again(state, ctx, checked.problem.key, **checked.problem.params)
    return _advance(state, ctx, next_step, **{name: checked.value})


def _area(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    areas = list(ctx.ports.focus_areas())
    if action is None:
        return _ask_again(state, ctx, "submit.pick_button")
    name, _, value = action.partition(":")
    if name != "area" or not value.isdigit() or int(value) >= len(areas):
        return _ask_again(state, ctx, "submit.pick_button")
    return _advance(state, ctx, "place", area=areas[int(value)])


def _place(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    if action == "place:skip":
        return _advance(state, ctx, "consent", place=None, latitude=None, longitude=None)
    if action is not None:
        return _ask_again(state, ctx, "submit.pick_button")
    if incoming.location is not None:
        return _advance(state, ctx, "consent", place=None,
                        latitude=incoming.location.latitude,
                        longitude=incoming.location.longitude)
    checked = check_place(incoming.text)
    if not checked.value or (checked.problem and checked.problem.key == NEED_WORDS):
        return _ask_again(state, ctx, "submit.place_help")
    if checked.problem is not None:
        return _ask_again(state, ctx, checked.problem.key, **checked.problem.params)
    return _advance(state, ctx, "consent", place=checked.value, latitude=None, longitude=None)


def _consent(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    if action not in ("consent:yes", "consent:no"):
        return _ask_again(state, ctx, "submit.pick_button")
    consent = action == "consent:yes"
    effects = (SetConsent(follow_up=consent),)
    if consent and ctx.ports.asks_email():
        moved = state.goto("email", consent=consent)
        return Outcome(moved, (prompt(moved, ctx),), effects)
    return _similar_or_summary(state, ctx, effects, consent=consent)


def _similar_or_summary(state: State, ctx: Context, effects: tuple, **data: Any) -> Outcome:
    """After the follow-up question: similar ideas when there are any, else the summary."""
    found = ctx.ports.similar(state.data.get("title", ""), state.data.get("description", ""), 3)
    similar = [[s.number, s.ref, s.title, s.status.value, round(s.score, 1)] for s in found]
    if similar:
        moved = state.goto("similar", similar=similar, **data)
    else:
        moved = state.goto("summary", similar=[], **data)
    return Outcome(moved, (prompt(moved, ctx),), effects)


def _email(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    """The web chat's optional e-mail address for follow-ups ("Hopp over" keeps the chat)."""
    if action == "email:skip":
        return _similar_or_summary(state, ctx, ())
    if action is not None:
        return _ask_again(state, ctx, "submit.pick_button")
    address = ctx.ports.email_address(incoming.text)
    if address is None:
        return _ask_again(state, ctx, "submit.bad_email")
    return _similar_or_summary(state, ctx, (SetConsent(email=address),))


def _similar(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    if action == "sim:new":
        return _to_summary(state, ctx, said_new=True)
    if action and action.startswith("sim:support:"):
        number = int(action.rsplit(":", 1)[1])
        ref = next((s[1] for s in state.data.get("similar", []) if s[0] == number), None)
        if ref is None:
            return _ask_again(state, ctx, "submit.pick_button")
        done = state.cleared()
        return Outcome(done, (Reply(ctx.t("submit.supported", ref=ref)),),
                       (AddSupport(number),))
    return _ask_again(state, ctx, "submit.pick_button")


def _summary(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    if action == "sum:send":
        campaign_id = state.data.get("campaign_id")
        campaign = ctx.ports.campaign(campaign_id) if campaign_id else None
        if campaign is not None and not campaign.is_open:
            return Outcome(state.cleared(),
                           (Reply(ctx.t("campaigns.closed", title=campaign.title)),))
        if ctx.ports.ideas_submitted_today() >= ctx.max_ideas_per_day:
            return Outcome(state.cleared(),
                           (Reply(ctx.t("limit.ideas_per_day", n=ctx.max_ideas_per_day)),))
        data = state.data
        effect = SubmitIdea(
            title=data["title"], description=data["description"], focus_area=data.get("area"),
            place=data.get("place"), latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            similar=tuple((s[0], float(s[4])) for s in data.get("similar", [])),
            said_new=bool(data.get("said_new")), campaign_id=data.get("campaign_id"),
        )
        return Outcome(state.cleared(), (), (effect,))
    if action == "sum:edit":
        moved = state.goto("edit")
        return Outcome(moved, (prompt(moved, ctx),))
    if action == "sum:cancel":
        return Outcome(state.cleared(), (Reply(ctx.t("cancel.done")),))
    return _ask_again(state, ctx, "submit.pick_button")


def _edit(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    name = (action or "").partition(":")[2]
    if not (action or "").startswith("edit:") or name not in EDITABLE:
        return _ask_again(state, ctx, "submit.pick_button")
    moved = state.goto(name, editing=True)
    return Outcome(moved, (prompt(moved, ctx),))


def receipt(t: Any, ref: str, follow_up: bool, offer_invite: bool = False,
            after_review: bool = False) -> Reply:
    """The answer once the idea is stored: it names the new reference (and, when new ideas
    are public only after a review, says so). People not yet asked are offered invitations
    to new idea competitions right there (one press, no extra step)."""
    key = "submit.receipt_follow" if follow_up else "submit.receipt"
    text = t(key, ref=ref) + (" " + t("submit.receipt_review") if after_review else "")
    if not offer_invite:
        return Reply(text)
    return Reply(text + "\n\n" + t("submit.ask_invite"), (
        global_choice(t("button.invite_yes"), "set:invite:on"),
        global_choice(t("button.invite_no"), "set:invite:off"),
    ))


_HANDLERS = {
    "title": _title,
    "description": _description,
    "area": _area,
    "place": _place,
    "consent": _consent,
    "email": _email,
    "similar": _similar,
    "summary": _summary,
    "edit": _edit,
}
