"""Logging: plain text for people, or one JSON object per line (`KOMINN_LOG_FORMAT=json`) for
log shippers. Records carry structure (event, channel, ref, duration) — never message text:
the code logs no personal text at INFO or above, database errors hide their parameters
(storage/db.py), and chatty libraries are held at WARNING."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.config import Settings

# Fields we put in `extra=`; anything else a library adds is left out of the JSON line.
FIELDS = ("event", "channel", "ref", "duration_ms", "service", "attempt", "kind", "count",
          "status", "user_hash")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if hasattr(record, n))
        return f"{base} {extras}" if extras else base


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Libraries that log request bodies or message contents at INFO stay at WARNING.
    for noisy in ("httpx", "httpcore", "telegram", "slack_bolt", "slack_sdk", "apscheduler",
                  "alembic", "uvicorn.access", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
