"""The core follow-ups as one feature: what follows a change to an idea, the scans that fall
due with time, what each notice says, and the buttons under a dialog reminder."""

from __future__ import annotations

from bot.followups import listeners, notices, rules
from bot.wiring import Feature
from dialogs import resume

FEATURE = Feature(
    "followups",
    dialogs=resume.PART,
    renderers=notices.RENDERERS,
    rules=rules.RULES,
    listeners=listeners.LISTENERS,
)
