"""Local fakes of external services, used by end-to-end tests and benchmarks."""
