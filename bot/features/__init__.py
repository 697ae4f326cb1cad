"""Feature modules that extend the core (listeners on idea changes, dialog commands, custom
effects) register themselves on import; importing this module wires them all."""
import bot.features.campaigns  # noqa: E402,F401  (idea competitions: commands, rules, renderers)
import bot.features.collaboration  # noqa: E402,F401  (invitations to collaborate)
import bot.features.ideas_channel  # noqa: E402,F401  (new ideas posted to SLACK_IDEAS_CHANNEL)
import bot.followups.rules  # noqa: E402,F401  (follow-up rules, renderers, benefit check)
