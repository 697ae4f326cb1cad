"""What several benchmarks share: an empty database, and `kominn run` as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from sqlalchemy import text

from storage.db import make_engine
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def fresh_schema(url: str) -> None:
    """Bring the database at `url` to the newest schema, empty: on PostgreSQL the public
    schema is dropped first (a SQLite URL is expected to name a new file)."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()


def kominn_env(**settings: str) -> dict[str, str]:
    """The environment of a `kominn run` child: ours without any KomInn, Telegram or Slack
    setting (so the benchmark decides them all), plus `settings` (NAME=value)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "SLACK_", "KOMINN_"))}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


def start_kominn_run(env: dict[str, str], workdir: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """A graceful stop (SIGTERM), killed after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
