#!/usr/bin/env bash
# The whole test suite: lint, then every test on SQLite and again on PostgreSQL.
# PostgreSQL is installed and started here when missing (CI runs on a clean machine).
#
# The two passes run side by side, each on KOMINN_TEST_WORKERS pytest-xdist workers (default
# 2; 0 runs a pass in one process): most tests wait (for a child `kominn`, a fake server, a
# retry), so one process in a row kept about half a core busy. `--dist loadfile` keeps a
# file's tests on one worker (the browser tests share one Chromium and one `kominn run`).
# Each worker has its own database: a SQLite file in its own tmp_path, on PostgreSQL
# `<name>_gw0`, `<name>_gw1`, … (tests/conftest.py creates them). Each pass's output is
# shown when both are done. KOMINN_TEST_DATABASE_URL, when set, names the PostgreSQL database
# to test on instead of scripts/postgres.sh's `kominn_test` (the SQLite pass ignores it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WORKERS=${KOMINN_TEST_WORKERS:-2}

$PY -m ruff check .
.venv/bin/lint-imports --no-cache | tail -n 4  # the contracts in pyproject.toml
.venv/bin/mypy  # the type check; its settings are [tool.mypy] in pyproject.toml

scripts/browser.sh  # Chromium, chromium-driver and axe-core for the `browser` tests

PG_GIVEN=${KOMINN_TEST_DATABASE_URL:-}
unset KOMINN_TEST_DATABASE_URL
PYTEST=($PY -m pytest -q -p no:cacheprovider -n "$WORKERS" --dist loadfile)
if [ "${KOMINN_SKIP_POSTGRES:-}" = "1" ]; then
  echo "== tests on SQLite (browser tests included) =="
  "${PYTEST[@]}" "$@"
  echo "== PostgreSQL run skipped (KOMINN_SKIP_POSTGRES=1) =="
  exit 0
fi

PG_URL=$(scripts/postgres.sh)
PG_URL=${PG_GIVEN:-$PG_URL}
LOGS=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$LOGS"' EXIT
started=$SECONDS
"${PYTEST[@]}" "$@" >"$LOGS/sqlite" 2>&1 &
pids+=($!)
# The browser tests run `kominn run` on SQLite whatever the database: once is enough.
KOMINN_TEST_DATABASE_URL="$PG_URL" "${PYTEST[@]}" -m "not browser" "$@" >"$LOGS/postgres" 2>&1 &
pids+=($!)
echo "== tests on SQLite and PostgreSQL, side by side ($WORKERS workers each) =="
sqlite_rc=0 && wait "${pids[0]}" || sqlite_rc=$?
postgres_rc=0 && wait "${pids[1]}" || postgres_rc=$?
pids=()
echo "== tests on SQLite (browser tests included) =="
cat "$LOGS/sqlite"
echo "== tests on PostgreSQL =="
cat "$LOGS/postgres"
echo "== both passes: $((SECONDS - started)) s (SQLite exit $sqlite_rc, PostgreSQL exit $postgres_rc) =="
[ "$sqlite_rc" = 0 ] && [ "$postgres_rc" = 0 ]
