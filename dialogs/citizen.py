"""The citizen conversation: commands, menu buttons and the flows they start.

`step()` is the one entry point the engine calls; what it understands is `ctx.dialogs`, the
`Conversation` joined from this module's `PART` and those of the feature dialogs
(`dialogs.campaigns`, `dialogs.benefit`, `dialogs.collab`, `dialogs.resume`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from dialogs import submit
from dialogs.core import (
    AddSupport,
    Context,
    ErasePerson,
    Flow,
    Outcome,
    Part,
    SetLanguage,
    State,
)
from dialogs.payload import GLOBAL, global_choice, match_typed, split, step_choice
from dialogs.refs import format_ref, parse_ref
from dialogs.text import clean
from dialogs.types import Choice, Document, Incoming, Reply


def step(state: State, incoming: Incoming, ctx: Context) -> Outcome:
    """One turn of the conversation."""
    if incoming.choice is not None:
        return _on_choice(state, incoming.choice, incoming, ctx)
    text = clean(incoming.text, multiline=True)
    if text.startswith("/"):
        name, _, args = text[1:].partition(" ")
        name = name.split("@")[0].casefold()
        handler = ctx.dialogs.commands.get(name)
        if handler is None:
            return _with_prompt(state, ctx, Reply(ctx.t("command.unknown", command=name[:30])))
        return handler(state, args.strip(), ctx)
    if state.flow is not None:
        flow = ctx.dialogs.flows[state.flow]
        current = flow.prompt(state, ctx)
        typed = match_typed(text, current.choices) if current.choices else None
        if typed is not None:
            return _on_choice(state, typed.payload, incoming, ctx)
        return flow.on_input(state, incoming, None, ctx)
    if incoming.location is not None:
        return Outcome(state, (Reply(ctx.t("idle.location")),))
    number = parse_ref(text)
    if number is not None:
        return _status_of(state, number, ctx)
    if not text:
        return Outcome(state, (Reply(ctx.t("idle.empty")),))
    return Outcome(state, (Reply(ctx.t("idle.help"), _menu(ctx)),))


def _on_choice(state: State, payload: str, incoming: Incoming, ctx: Context) -> Outcome:
    token, action = split(payload)
    if token == GLOBAL:
        name, *args = action.split(":")
        handler = ctx.dialogs.actions.get(name)
        if handler is None:
            return _expired(state, ctx)
        return handler(state, args, ctx)
    if state.flow is None or token != str(state.token):
        return _expired(state, ctx)
    return ctx.dialogs.flows[state.flow].on_input(state, incoming, action, ctx)


def _expired(state: State, ctx: Context) -> Outcome:
    return _with_prompt(state, ctx, Reply(ctx.t("choice.expired")))


def _with_prompt(state: State, ctx: Context, reply: Reply) -> Outcome:
    """Answer, then repeat the open question so the person knows where they are."""
    if state.flow is None:
        return Outcome(state, (reply,))
    return Outcome(state, (reply, ctx.open_question(state)))


def _menu(ctx: Context) -> tuple[Choice, ...]:
    return menu(ctx.t)


def menu(t: Callable[..., str]) -> tuple[Choice, ...]:
    """The citizen's main menu: new idea, my ideas, help."""
    return (
        global_choice(t("button.new_idea"), "new"),
        global_choice(t("button.my_ideas"), "mine"),
        global_choice(t("button.help"), "help"),
    )


def greeting(t: Callable[..., str]) -> tuple[Reply, ...]:
    """What `/start` says (and the web chat shows somebody new): the greeting, then the
    privacy notice with the main menu."""
    return (Reply(t("start.greeting")), Reply(t("privacy.notice"), menu(t)))


# --- commands ------------------------------------------------------------------------------

def cmd_start(state: State, args: str, ctx: Context) -> Outcome:
    handler = ctx.dialogs.start_payloads.get(args[:1]) if args else None
    if handler is not None:
        return handler(state, args, ctx)
    replies = list(greeting(ctx.t))
    if state.flow is not None:
        replies.append(ctx.open_question(state))
    return Outcome(state, tuple(replies))


def cmd_new(state: State, args: str, ctx: Context) -> Outcome:
    return submit.start(state, ctx)


def cmd_status(state: State, args: str, ctx: Context) -> Outcome:
    if not args:
        return cmd_mine(state, args, ctx)
    number = parse_ref(args)
    if number is None:
        return _with_prompt(state, ctx, Reply(ctx.t("status.bad_ref", text=args[:40])))
    return _status_of(state, number, ctx)


def _status_of(state: State, number: int, ctx: Context) -> Outcome:
    t = ctx.t
    idea = ctx.ports.idea(number)
    if idea is None:
        return _with_prompt(state, ctx, Reply(t("status.not_found", ref=format_ref(number))))
    lines = [t("status.view", ref=idea.ref, title=idea.title, status=t(f"status.{idea.status}"),
               date=ctx.date(idea.status_changed_at),
               supporters=idea.supporters)]
    if idea.merged_into:
        lines.append(t("status.merged_into", ref=idea.merged_into))
    if idea.public_note:
        lines.append(t("status.note", note=idea.public_note))
    return _with_prompt(state, ctx, Reply("\n".join(lines)))


def cmd_mine(state: State, args: str, ctx: Context) -> Outcome:
    t = ctx.t
    mine = ctx.ports.my_ideas()
    if not mine:
        return _with_prompt(state, ctx, Reply(t("mine.none"), (global_choice(
            t("button.new_idea"), "new"),)))
    lines = [t("mine.header")]
    for idea, relation in mine[:20]:
        lines.append(t(f"mine.line_{relation}", ref=idea.ref, title=idea.title,
                       status=t(f"status.{idea.status}")))
    return _with_prompt(state, ctx, Reply("\n".join(lines)))


def cmd_cancel(state: State, args: str, ctx: Context) -> Outcome:
    if state.flow is None:
        return Outcome(state, (Reply(ctx.t("cancel.nothing")),))
    return Outcome(state.cleared(), (Reply(ctx.t("cancel.done")),))


def cmd_back(state: State, args: str, ctx: Context) -> Outcome:
    if state.flow is None:
        return Outcome(state, (Reply(ctx.t("back.nothing")),))
    previous = state.back()
    if previous is None:
        return _with_prompt(state, ctx, Reply(ctx.t("back.first_step")))
    return Outcome(previous, (ctx.open_question(previous),))


def cmd_help(state: State, args: str, ctx: Context) -> Outcome:
    return _with_prompt(state, ctx, Reply(ctx.t("help.text"), _menu(ctx)))


def cmd_language(state: State, args: str, ctx: Context) -> Outcome:
    t = ctx.t
    choices = (
        global_choice("Bokmål", "lang:nb"),
        global_choice("Nynorsk", "lang:nn"),
        global_choice("English", "lang:en"),
    )
    return Outcome(state, (Reply(t("language.ask"), choices),))


def cmd_erase(state: State, args: str, ctx: Context) -> Outcome:
    moved = State(flow="erase", step="confirm", data={"resume": [state.flow, state.step]},
                  token=state.token + 1)
    return Outcome(moved, (_erase_prompt(moved, ctx),))


def cmd_data(state: State, args: str, ctx: Context) -> Outcome:
    data = ctx.ports.personal_data()
    document = Document("kominn-data.json",
                        json.dumps(data, ensure_ascii=False, indent=2, default=str).encode())
    return _with_prompt(state, ctx, Reply(ctx.t("data.sent"), document=document))


# --- global buttons --------------------------------------------------------------------------

def act_new(state: State, args: list[str], ctx: Context) -> Outcome:
    return cmd_new(state, "", ctx)


def act_mine(state: State, args: list[str], ctx: Context) -> Outcome:
    return cmd_mine(state, "", ctx)


def act_help(state: State, args: list[str], ctx: Context) -> Outcome:
    return cmd_help(state, "", ctx)


def act_language(state: State, args: list[str], ctx: Context) -> Outcome:
    language = args[0] if args else ""
    if language not in ("nb", "nn", "en"):
        return _expired(state, ctx)
    t = ctx.ports.translator(language)
    reply = Reply(t("language.set"))
    if state.flow is None:
        return Outcome(state, (reply,), (SetLanguage(language),))
    relabelled = replace(ctx, t=t)
    return Outcome(state, (reply, relabelled.open_question(state)),
                   (SetLanguage(language),))


def act_status(state: State, args: list[str], ctx: Context) -> Outcome:
    if not args or not args[0].isdigit():
        return _expired(state, ctx)
    return _status_of(state, int(args[0]), ctx)


def act_support(state: State, args: list[str], ctx: Context) -> Outcome:
    """`g:support:<n>`: back idea n (the web board's "Støtt idéen" opens the chat with it)."""
    if not args or not args[0].isdigit():
        return _expired(state, ctx)
    number = int(args[0])
    idea = ctx.ports.idea(number)
    if idea is None:
        return _with_prompt(state, ctx, Reply(ctx.t("status.not_found", ref=format_ref(number))))
    if idea.merged_into:
        return _with_prompt(state, ctx, Reply(ctx.t("status.merged_into", ref=idea.merged_into)))
    if any(view.number == number and relation == "supporter"
           for view, relation in ctx.ports.my_ideas()):
        return _with_prompt(state, ctx, Reply(ctx.t("submit.supported_already", ref=idea.ref)))
    return Outcome(state, (Reply(ctx.t("submit.supported", ref=idea.ref)),),
                   (AddSupport(number),))


# --- erase flow ------------------------------------------------------------------------------

def _erase_prompt(state: State, ctx: Context) -> Reply:
    t = ctx.t
    return Reply(t("erase.confirm"), (
        step_choice(state, t("button.erase_yes"), "erase:yes"),
        step_choice(state, t("button.cancel"), "erase:no"),
    ))


def _erase_input(state: State, incoming: Incoming, action: str | None, ctx: Context) -> Outcome:
    if action == "erase:yes":
        return Outcome(State(token=state.token + 1), (Reply(ctx.t("erase.done")),),
                       (ErasePerson(),))
    if action == "erase:no":
        return Outcome(State(token=state.token + 1), (Reply(ctx.t("erase.kept")),))
    return Outcome(state, (Reply(ctx.t("submit.pick_button")), _erase_prompt(state, ctx)))


PART = Part(commands={
    "start": cmd_start,
    "ny": cmd_new, "new": cmd_new,
    "status": cmd_status,
    "mine": cmd_mine, "my": cmd_mine,
    "avbryt": cmd_cancel, "cancel": cmd_cancel,
    "tilbake": cmd_back, "back": cmd_back,
    "hjelp": cmd_help, "help": cmd_help,
    "sprak": cmd_language, "språk": cmd_language, "sprak_": cmd_language,
    "language": cmd_language,
    "slett": cmd_erase, "delete": cmd_erase,
    "data": cmd_data,
}, actions={
    "new": act_new,
    "mine": act_mine,
    "help": act_help,
    "lang": act_language,
    "status": act_status,
    "support": act_support,
}, flows={
    submit.FLOW: Flow(submit.prompt, submit.on_input),
    "erase": Flow(_erase_prompt, _erase_input),
})
