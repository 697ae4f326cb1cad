"""`/kominn …`: the slash command and its sub-commands.

The sub-commands are a table (`Subcommands`) handed to `register`: this module offers the
core ones (`subcommands()`), other listener groups offer theirs (e.g. `konkurranse`), and
`adapters.slack.listeners` puts them together in one place. A moderator-only sub-command is
refused politely, and logged, for anyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as kit
from adapters.slack.answer import Answer, CommandContext
from adapters.slack.bot import SlackBot, guarded
from bot.i18n import LANGUAGES, translator
from bot.ideas.moderation import BadRequest, parse_set
from bot.staff import desk
from dialogs.lifecycle import Status, parse_status
from dialogs.refs import format_ref, parse_ref
from dialogs.text import shorten

log = logging.getLogger("kominn.slack")

COMMAND = "/kominn"

Handler = Callable[[CommandContext], Awaitable[None]]


@dataclass(frozen=True)
class Subcommand:
    """`/kominn <name> …`: what runs, whether only moderators may, and other words for it."""

    handler: Handler
    moderator_only: bool = False
    aliases: tuple[str, ...] = ()


class Subcommands:
    """The `/kominn` table: sub-commands by name, each also found by its aliases."""

    def __init__(self, entries: Mapping[str, Subcommand]) -> None:
        self.entries = dict(entries)
        self._names = {alias: name for name, sub in self.entries.items() for alias in sub.aliases}

    def find(self, word: str) -> tuple[str, Subcommand | None]:
        """The sub-command's name (an alias resolved, case ignored) and the sub-command."""
        name = self._names.get(word.casefold(), word.casefold())
        return name, self.entries.get(name)


def register(bot: SlackBot, table: Subcommands) -> None:
    """The slash command: ack at once, then run the sub-command in the person's language."""

    @bot.bolt.command(COMMAND)
    async def on_command(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user_id = str(command.get("user_id") or "")
        ctx = CommandContext(bot, user_id, str(command.get("channel_id") or ""), [],
                             str(command.get("trigger_id") or ""),
                             command.get("response_url"), client,
                             await bot.translator_for(user_id))

        async def run(b: SlackBot, a: Answer) -> None:
            await run_command(table, ctx, str(command.get("text") or ""))

        await guarded(run)(bot, ctx.answer)


async def run_command(table: Subcommands, ctx: CommandContext, text: str) -> None:
    """Find the sub-command (none: help), check who may run it, run it."""
    words = text.split()
    name, sub = table.find(words[0]) if words else table.find("help")
    if sub is None:
        moderator = await ctx.bot.moderators.is_moderator(ctx.user_id)
        await ctx.answer.send(kit.help_blocks(ctx.t, moderator=moderator, unknown=words[0]))
        return
    ctx.args = words[1:]
    if sub.moderator_only and not await ctx.bot.allowed(ctx.user_id, name, ctx.answer):
        return
    log.info("slack command", extra={"event": "slack_command", "kind": name})
    await sub.handler(ctx)


def subcommands() -> dict[str, Subcommand]:
    """The core sub-commands: looking ideas up, submitting, moderating, the report."""
    return {
        "help": Subcommand(_help, aliases=("hjelp",)),
        "status": Subcommand(_status),
        "search": Subcommand(_search, aliases=("søk", "sok")),
        "list": Subcommand(_list, aliases=("liste",)),
        "ny": Subcommand(_new, aliases=("new",)),
        "triage": Subcommand(_triage, moderator_only=True),
        "set": Subcommand(_set, moderator_only=True, aliases=("sett",)),
        "hide": Subcommand(_hide, moderator_only=True, aliases=("skjul",)),
        "unhide": Subcommand(_unhide, moderator_only=True, aliases=("vis",)),
        "report": Subcommand(_report, aliases=("rapport",)),
        "språk": Subcommand(_language, aliases=("sprak", "language", "lang")),
    }


async def _help(ctx: CommandContext) -> None:
    moderator = await ctx.bot.moderators.is_moderator(ctx.user_id)
    await ctx.answer.send(kit.help_blocks(ctx.t, moderator=moderator))


async def _status(ctx: CommandContext) -> None:
    if not ctx.args or parse_ref(ctx.args[0]) is None:
        await ctx.answer.say(ctx.t("slack.status_usage"))
        return
    await ctx.bot.show_status(ctx.answer, format_ref(parse_ref(ctx.args[0]) or 0))


async def _search(ctx: CommandContext) -> None:
    bot = ctx.bot
    if not ctx.rest.strip():
        await ctx.answer.say(ctx.t("slack.search_usage"))
        return
    lines = await bot.db(desk.search, bot.runtime.db, bot.runtime.index, ctx.rest)
    await ctx.answer.send(kit.search_blocks(ctx.rest, lines, ctx.t, bot.zone))


async def _list(ctx: CommandContext) -> None:
    """`list [STATUS] [AREA]`: a status word first if it is one, the rest names an area."""
    bot = ctx.bot
    status: Status | None = None
    words = list(ctx.args)
    if words:
        try:
            status = parse_status(words[0])
            words.pop(0)
        except ValueError:
            status = None
    area = None
    if words:
        area = desk.match_area(bot.settings, " ".join(words))
        if area is None:
            await ctx.answer.say(ctx.t("slack.unknown_area", area=kit.esc(" ".join(words)),
                                       areas=kit.esc(", ".join(bot.settings.focus_areas))))
            return
    await ctx.answer.send(await bot.list_page(ctx.t, status, area, 0))


async def _new(ctx: CommandContext) -> None:
    await ctx.bot.open_new_idea(ctx.client, ctx.trigger_id, ctx.answer)


async def _triage(ctx: CommandContext) -> None:
    await ctx.bot.show_next_pair(ctx.answer)


async def _set(ctx: CommandContext) -> None:
    try:
        request = parse_set(ctx.args)
    except BadRequest as exc:
        await ctx.answer.say(ctx.t(exc.key, **exc.params))
        return
    await ctx.bot.apply_move(ctx.answer, ctx.user_id, request, expected=None, replace=False)


async def _hide(ctx: CommandContext) -> None:
    """`hide KI-n reason`: off every public view; the author is told the reason."""
    reason = " ".join(ctx.args[1:]).strip()
    if not ctx.args or parse_ref(ctx.args[0]) is None or not reason:
        await ctx.answer.say(ctx.t("slack.hide_usage"))
        return
    done = await ctx.bot.db(desk.set_hidden, ctx.bot.runtime, ctx.args[0], True, reason,
                            ctx.user_id)
    await _say_hidden(ctx, done, "slack.hidden", "slack.already_hidden")


async def _unhide(ctx: CommandContext) -> None:
    if not ctx.args or parse_ref(ctx.args[0]) is None:
        await ctx.answer.say(ctx.t("slack.hide_usage"))
        return
    done = await ctx.bot.db(desk.set_hidden, ctx.bot.runtime, ctx.args[0], False, "",
                            ctx.user_id)
    await _say_hidden(ctx, done, "slack.unhidden", "slack.not_hidden")


async def _say_hidden(ctx: CommandContext, done: tuple[str, bool] | None, changed: str,
                      unchanged: str) -> None:
    if done is None:
        await ctx.answer.say(ctx.t("slack.not_found", ref=kit.esc(ctx.args[0])))
        return
    ref, did = done
    await ctx.answer.say(ctx.t(changed if did else unchanged, ref=ref))


async def _report(ctx: CommandContext) -> None:
    bot = ctx.bot
    figures = await bot.db(desk.report, bot.runtime.db, bot.settings)
    await ctx.answer.send(kit.report_blocks(figures, ctx.t))


async def _language(ctx: CommandContext) -> None:
    """`/kominn språk nb|nn|en` stores the person's choice; without one, says the current."""
    bot = ctx.bot
    if not ctx.args:
        language, why = await bot.language_for(ctx.user_id)
        await ctx.answer.say(ctx.t(f"slack.language.current_{why}",
                                   language=ctx.t(f"slack.language.name.{language}"))
                             + "\n" + ctx.t("slack.language.usage"))
        return
    wanted = ctx.args[0].casefold() if len(ctx.args) == 1 else None
    if wanted not in LANGUAGES:
        await ctx.answer.say(ctx.t("slack.language.unknown",
                                   value=kit.esc(shorten(ctx.rest, 30))))
        return
    await bot.choose_language(ctx.user_id, wanted)
    t = translator(wanted)
    await Answer(ctx.client, ctx.user_id, t, ctx.response_url).say(
        t("slack.language.chosen", language=t(f"slack.language.name.{wanted}")))
