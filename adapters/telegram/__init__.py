"""The Telegram channel for citizens (python-telegram-bot)."""
