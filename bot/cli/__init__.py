"""The `kominn` command line: one module per command group; `main` is the composition root."""
