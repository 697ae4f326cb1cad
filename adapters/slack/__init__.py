"""The Slack app for employees and moderators (slack-bolt)."""
