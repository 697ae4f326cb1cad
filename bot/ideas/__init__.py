"""Ideas: the record of every idea and each change to it, lifecycle moves, the triage queue."""
