"""What the municipality reads: the realisation report, its chart, open data, Open311."""
