"""The features of KomInn, and the one place that assembles them for a runtime.

Read `assemble` top to bottom: the citizen conversation, the follow-ups that keep an idea from
going quiet, then each feature. Each module contributes a `Feature` (bot/wiring.py); nothing
is registered by importing it.
"""

from __future__ import annotations

from bot.config import Settings
from bot.features import benefit, campaigns, collaboration, ideas_channel
from bot.followups import feature as followups
from bot.wiring import Feature, Features
from dialogs import citizen

CITIZEN = Feature("citizen", dialogs=citizen.PART)


def assemble(settings: Settings) -> Features:
    """Every feature of a runtime with these settings."""
    return Features.of(
        CITIZEN,                          # commands, the submission, status, privacy
        followups.FEATURE,                # status news, merges, milestones, reminders, digest
        benefit.FEATURE,                  # "did it help?" after an idea is realised
        campaigns.FEATURE,                # idea competitions (idékonkurranser)
        collaboration.FEATURE,            # invitations to collaborate on a useful idea
        ideas_channel.feature(settings),  # new ideas posted to SLACK_IDEAS_CHANNEL
    )
