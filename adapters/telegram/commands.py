"""The command menu Telegram shows next to the message field, per language, published at
every start (a failure to publish it is logged and changes nothing else)."""

from __future__ import annotations

import logging
from collections.abc import Collection

from telegram import Bot, BotCommand, BotCommandScopeDefault
from telegram.error import TelegramError

from bot.i18n import translator

log = logging.getLogger("kominn.telegram")

# The command menu, in this order. A command shows up once the dialogs know it and the
# catalogs describe it (`telegram.command.<name>`), so later features only add a line here.
COMMAND_MENU = ("ny", "status", "mine", "avbryt", "hjelp", "sprak", "slett", "data",
                "konkurranser", "aktuelt")
# (Telegram language_code, our language): "" is every language without its own menu.
MENU_LANGUAGES = (("", "nb"), ("nb", "nb"), ("nn", "nn"), ("en", "en"))


async def publish_commands(bot: Bot, known: Collection[str]) -> None:
    """The menu of the `known` commands (the runtime's conversation) that have a text."""
    names = [name for name in COMMAND_MENU if name in known]
    for code, language in MENU_LANGUAGES:
        t = translator(language)
        commands = [BotCommand(name, t(f"telegram.command.{name}")) for name in names
                    if t(f"telegram.command.{name}") != f"telegram.command.{name}"]
        try:
            await bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                      language_code=code or None)
        except TelegramError as exc:
            log.warning("command menu not set", extra={
                "event": "telegram_commands_failed", "status": type(exc).__name__})
