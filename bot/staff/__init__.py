"""What employees and moderators look up and do from their work chat (Slack today)."""
