"""`python -m bot.cli …` is `kominn …` (tests and benchmarks start workers this way)."""

from bot.cli.main import main

main()
