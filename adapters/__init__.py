"""KomInn adapters."""
