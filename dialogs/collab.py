"""Invitations to collaborate (invitasjon til samarbeid): on an idea being worked on, the
municipality asks its author and supporters whether they want to take part (e.g. a workshop).
The invitation arrives as a notice with global buttons `g:collab:<invite id>:<yes|no>`."""

from __future__ import annotations

from dialogs.core import Context, Custom, Outcome, Part, State, Texts
from dialogs.payload import global_choice
from dialogs.types import Choice, Reply

ANSWER_EFFECT = "collab.answer"


def answer_choices(invite_id: int, t: Texts) -> tuple[Choice, ...]:
    return (global_choice(t("collab.button_yes"), f"collab:{invite_id}:yes"),
            global_choice(t("collab.button_no"), f"collab:{invite_id}:no"))


def act_answer(state: State, args: list[str], ctx: Context) -> Outcome:
    if len(args) != 2 or not args[0].isdigit() or args[1] not in ("yes", "no"):
        return Outcome(state, (Reply(ctx.t("choice.expired")),))
    reply = Reply(ctx.t(f"collab.thanks_{args[1]}"))
    replies = (reply,) if state.flow is None else (
        reply, ctx.open_question(state))
    return Outcome(state, replies, (Custom(ANSWER_EFFECT, {"invite": int(args[0]),
                                                           "answer": args[1]}),))


PART = Part(actions={"collab": act_answer})
