"""KomInn dialogs."""
