"""The buttons under the reminder about a half-finished conversation: "Fortsett" shows the
open question again, "Avbryt" drops what was typed. Global payloads (`g:resume`,
`g:resume:stop`), because the reminder arrives long after the step's own buttons were sent."""

from __future__ import annotations

from dialogs.core import Context, Outcome, Part, State, Texts
from dialogs.payload import global_choice
from dialogs.types import Choice, Reply


def reminder_choices(t: Texts) -> tuple[Choice, ...]:
    return (global_choice(t("followups.button_continue"), "resume"),
            global_choice(t("followups.button_drop"), "resume:stop"))


def act_resume(state: State, args: list[str], ctx: Context) -> Outcome:
    if state.flow is None:
        return Outcome(state, (Reply(ctx.t("followups.resume_nothing")),))
    if args and args[0] == "stop":
        return Outcome(state.cleared(), (Reply(ctx.t("followups.resume_dropped")),))
    return Outcome(state, (ctx.open_question(state),))


PART = Part(actions={"resume": act_resume})
