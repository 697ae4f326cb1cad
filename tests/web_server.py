"""`kominn run` as a subprocess on a free port (no tokens: the web channel alone), for tests
that go through the real server (the CLI test, the browser tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

KOMINN = str(Path(sys.executable).with_name("kominn"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def kominn_run(database_url: str, env: dict[str, str] | None = None,
               ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """(base URL, process) of a `kominn run` serving until the block ends."""
    port = free_port()
    full_env = {**os.environ, "DATABASE_URL": database_url, "KOMINN_HTTP_PORT": str(port),
                "KOMINN_QUIET_HOURS": "off", **(env or {})}
    for key in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        full_env.pop(key, None)
    process = subprocess.Popen([KOMINN, "run"], env=full_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # until the server answers (or the process ended)
            if process.poll() is not None:
                raise AssertionError(f"kominn run ended: {process.stderr.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("kominn run did not answer /healthz")
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
