"""The channel's name, and the Bot API's token and addresses as settings give them: what the
service (`kominn run`) and the standalone sender (`kominn jobs run-due`) both build their bot
from."""

from __future__ import annotations

import re

from bot.config import ConfigError

CHANNEL = "telegram"

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


def check_token(token: str | None) -> str:
    """The token, if it looks like one @BotFather gives; a `ConfigError` naming the key if not."""
    if not token or not _TOKEN.match(token):
        raise ConfigError("Invalid setting TELEGRAM_BOT_TOKEN: should look like "
                          "123456789:AAE… (the token @BotFather gave you)")
    return token


def file_url(base_url: str) -> str:
    """`https://api.telegram.org/bot` → `https://api.telegram.org/file/bot` (also for a local
    Bot API server)."""
    head, sep, _ = base_url.rstrip("/").rpartition("/bot")
    return f"{head}/file/bot" if sep else base_url.rstrip("/") + "/file/bot"
