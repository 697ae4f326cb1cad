"""Follow-ups: rules that queue notices in the outbox, the dispatcher that sends them, the clock."""
