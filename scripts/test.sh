#!/usr/bin/env bash
# The whole test suite: lint, then every test on SQLite, then again on PostgreSQL.
# PostgreSQL is installed and started here when missing (CI runs on a clean machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

$PY -m ruff check .
.venv/bin/lint-imports --no-cache | tail -n 4  # the contracts in pyproject.toml
.venv/bin/mypy  # the type check; its settings are [tool.mypy] in pyproject.toml

scripts/browser.sh  # Chromium, chromium-driver and axe-core for the `browser` tests

echo "== tests on SQLite (browser tests included) =="
$PY -m pytest -q -p no:cacheprovider "$@"

if [ "${KOMINN_SKIP_POSTGRES:-}" = "1" ]; then
  echo "== PostgreSQL run skipped (KOMINN_SKIP_POSTGRES=1) =="
  exit 0
fi

PG_URL=$(scripts/postgres.sh)
echo "== tests on PostgreSQL =="
# The browser tests run `kominn run` on SQLite whatever the database, and the `once` tests
# check what no database changes (the CLI's output and arguments): once is enough.
KOMINN_TEST_DATABASE_URL="$PG_URL" $PY -m pytest -q -p no:cacheprovider -m "not browser and not once" "$@"
