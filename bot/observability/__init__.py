"""What an operator watches: Prometheus metrics (`GET /metrics`) and readiness (`GET /readyz`).

The counters live in one `Metrics` object per runtime (no process-global registry, so each
test and each runtime starts from zero) and are bumped by thin wrappers around the engine,
the duplicate index, the senders and the scheduler's jobs — the code that does the work does
not know it is measured. Gauges that the database already knows (outbox backlog, triage
queue, ideas per status) are read from it at scrape time, so every worker reports the same
truth about shared state.
"""
