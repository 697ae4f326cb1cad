"""Links into the bot: `https://t.me/<bot>` opens a private chat with it, and the deep link
`https://t.me/<bot>?start=k<ID>` opens it with idea competition ID chosen (the bot receives
`/start k<ID>`, see `dialogs.campaigns`).

Code that is not Telegram's (the Slack competition list) gets the competition link through
`bot.channels.CampaignLinks` (`Runtime.campaign_link`), which the wiring
(`bot.runtime.open_runtime`) fills with `campaign_links`, and never builds a Telegram address
itself. `kominn campaigns create`, part of the composition root, prints `campaign_link` for
`bot_username`, which may ask Telegram. Without a bot name there is no link (None), never a
placeholder address: the Slack list shows "–", the CLI says which setting is missing.
"""

from __future__ import annotations

import asyncio

from bot.config import Settings


def chat_link(username: str) -> str:
    """A private chat with the bot."""
    return f"https://t.me/{username}"


def campaign_link(username: str | None, campaign_id: int) -> str | None:
    """The deep link into competition `campaign_id`; None when the bot's name is unknown.
    `username` is the bare name (`bot.config.Settings` strips the "@" people write)."""
    return f"https://t.me/{username}?start=k{campaign_id}" if username else None


def campaign_links(settings: Settings, campaign_id: int) -> str | None:
    """`bot.channels.CampaignLinks` for Telegram: the link for the configured bot
    (TELEGRAM_BOT_USERNAME)."""
    return campaign_link(settings.telegram_bot_username, campaign_id)


def bot_username(settings: Settings) -> str | None:
    """TELEGRAM_BOT_USERNAME, or asked from Telegram (getMe) when only a token is set; None
    when that fails (the link is a convenience; a competition's id is what matters). Blocks:
    for the command line."""
    if settings.telegram_bot_username or not settings.telegram_bot_token:
        return settings.telegram_bot_username

    from telegram import Bot

    async def ask() -> str | None:
        async with Bot(settings.telegram_bot_token or "",
                       base_url=settings.telegram_api_base_url) as bot:
            return bot.username

    try:
        return asyncio.run(ask())
    except Exception:  # noqa: BLE001 - the link is a convenience; the id is what matters
        return None
