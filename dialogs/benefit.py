"""The benefit check conversation: 30 days after an idea was realised its author is asked
"did it help?" (Ja / Delvis / Nei), then may add a comment.

The question arrives as a scheduled notice (bot/followups/rules.py renders it) whose buttons are
global payloads `g:benefit:<idea number>:<yes|partly|no>`, so they stay valid however long the
person waits. The answer is stored at once (a `Custom("benefit.answer")` effect the bot
applies); the comment step is optional and never blocks another conversation in progress.
"""

from __future__ import annotations

from dialogs.core import Context, Custom, Flow, Outcome, Part, State, Texts
from dialogs.payload import global_choice, step_choice
from dialogs.text import clean, has_words
from dialogs.types import Choice, Incoming, Reply

FLOW = "benefit"
ANSWERS = ("yes", "partly", "no")
COMMENT_MAX = 1000
ANSWER_EFFECT = "benefit.answer"
COMMENT_EFFECT = "benefit.comment"


def answer_choices(number: int, t: Texts) -> tuple[Choice, ...]:
    """The three buttons under the benefit-check question."""
    return tuple(global_choice(t(f"followups.button_{answer}"), f"benefit:{number}:{answer}")
                 for answer in ANSWERS)


def act_answer(state: State, args: list[str], ctx: Context) -> Outcome:
    """A press on Ja / Delvis / Nei: only the idea's author may answer (buttons can be forged)."""
    if len(args) != 2 or not args[0].isdigit() or args[1] not in ANSWERS:
        return _expired(state, ctx)
    number = int(args[0])
    mine = {view.number: relation for view, relation in ctx.ports.my_ideas()}
    if mine.get(number) != "author":
        return _expired(state, ctx)
    effect = Custom(ANSWER_EFFECT, {"idea": number, "answer": args[1]})
    thanks = Reply(ctx.t("followups.benefit_thanks"))
    if state.flow is not None and state.flow != FLOW:
        # In the middle of something else: keep that conversation, just take the answer.
        return Outcome(state, (thanks, ctx.open_question(state)), (effect,))
    moved = State(flow=FLOW, step="comment", data={"idea": number, "_history": []},
                  token=state.token + 1)
    return Outcome(moved, (thanks, prompt(moved, ctx)), (effect,))


def prompt(state: State, ctx: Context) -> Reply:
    return Reply(ctx.t("followups.benefit_ask_comment"),
                 (step_choice(state, ctx.t("followups.button_skip"), "skip"),))


def on_input(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    t = ctx.t
    if action == "skip":
        return Outcome(state.cleared(), (Reply(t("followups.benefit_done")),))
    text = clean(incoming.text, multiline=True)
    if action is not None or not text or not has_words(text):
        return Outcome(state, (Reply(t("followups.benefit_comment_empty")), prompt(state, ctx)))
    if len(text) > COMMENT_MAX:
        return Outcome(state, (Reply(t("followups.benefit_comment_long", max=COMMENT_MAX,
                                       n=len(text))), prompt(state, ctx)))
    effect = Custom(COMMENT_EFFECT, {"idea": state.data.get("idea"), "comment": text})
    return Outcome(state.cleared(), (Reply(t("followups.benefit_comment_thanks")),), (effect,))


def _expired(state: State, ctx: Context) -> Outcome:
    reply = Reply(ctx.t("choice.expired"))
    if state.flow is None:
        return Outcome(state, (reply,))
    return Outcome(state, (reply, ctx.open_question(state)))


PART = Part(actions={"benefit": act_answer}, flows={FLOW: Flow(prompt, on_input)})
