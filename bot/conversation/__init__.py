"""The conversation engine: one pure dialog step per update, state and effects saved together."""
