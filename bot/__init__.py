"""KomInn bot."""
