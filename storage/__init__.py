"""KomInn storage."""
