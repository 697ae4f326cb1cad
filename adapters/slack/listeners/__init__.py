"""Every listener of the Slack app, registered once on one SlackBot, in the shape of Slack's
bolt-python starter template: one `register(bot)` per listener group, each its own module.

This is also the one place where the app's parts are put together: the `/kominn` sub-command
table (the core's and the competitions') and the status view's sections (the core's, the
competition an idea answers, and — for moderators — who wants to collaborate). Nothing
registers itself on import.
"""

from __future__ import annotations

from adapters.slack import blocks as kit
from adapters.slack import campaign_blocks
from adapters.slack.bot import SlackBot
from adapters.slack.listeners import actions, campaigns, commands, events, views
from adapters.slack.listeners.commands import Subcommand, Subcommands


def subcommands() -> dict[str, Subcommand]:
    """`/kominn <word>`: the core sub-commands and the competitions'."""
    return {**commands.subcommands(), **campaigns.subcommands()}


def status_sections() -> kit.StatusSections:
    """The status view: the idea itself, the competition it answers; for moderators also the
    collaboration answers and the invite button."""
    return kit.StatusSections(
        public=(*kit.CORE_SECTIONS.public, campaign_blocks.campaign_section),
        moderator=(*kit.CORE_SECTIONS.moderator, campaign_blocks.collab_section))


def register(bot: SlackBot, table: dict[str, Subcommand] | None = None) -> None:
    """Add every listener to the bot's Bolt app; `table` replaces `subcommands()` (tests)."""
    commands.register(bot, Subcommands(subcommands() if table is None else table))
    actions.register(bot)
    views.register(bot)
    events.register(bot)
    campaigns.register(bot)
