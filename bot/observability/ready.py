"""`GET /readyz`: is this worker ready for traffic? Liveness (`/healthz`) only says the
process and database answer; readiness also needs the schema at the code's migrations (a
worker started before `kominn db upgrade` must not take traffic) and the duplicate index
loaded (or citizens would not be offered similar ideas)."""

from __future__ import annotations

from sqlalchemy import Engine as DbEngine
from sqlalchemy import text

from storage.migrate import current_revisions, head_revisions


def readiness(db: DbEngine, index_loaded: bool) -> tuple[bool, dict[str, str]]:
    """(ready, {check: "ok" or what is wrong})."""
    checks: dict[str, str] = {}
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = type(exc).__name__
        checks["migrations"] = "unknown"
    else:
        url = db.url.render_as_string(hide_password=False)
        current, heads = current_revisions(db), head_revisions(url)
        checks["migrations"] = "ok" if current == heads else (
            f"at {','.join(sorted(current)) or 'none'}, code at {','.join(sorted(heads))}: "
            "run `kominn db upgrade`")
    checks["dedup_index"] = "ok" if index_loaded else "not loaded"
    return all(v == "ok" for v in checks.values()), checks
