#!/usr/bin/env bash
# Make sure a local PostgreSQL 15 runs with a test role and database; print its URL.
set -euo pipefail
log() { echo "$@" >&2; }
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing PostgreSQL…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$VERSION main"; then
  pg_createcluster "$VERSION" main >&2
fi
pg_ctlcluster "$VERSION" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -qAt -c \"$1\"" ; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='kominn'")" != "1" ]; then
  psql_admin "CREATE ROLE kominn LOGIN PASSWORD 'kominn' CREATEDB" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='kominn_test'")" != "1" ]; then
  psql_admin "CREATE DATABASE kominn_test OWNER kominn" >&2
fi
echo "postgresql+psycopg://kominn:kominn@127.0.0.1:5432/kominn_test"
