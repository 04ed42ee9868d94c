#!/usr/bin/env bash
# The test command (README "Run the tests"): builds the binary, then runs every test
# on SQLite and, when a PostgreSQL server is reachable, on PostgreSQL too.
#   HMS_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB  use that server (each test
#                                                      creates and drops its own database)
#   HMS_TEST_REQUIRE_POSTGRES=1                        fail instead of skipping without it
# Without a server the PostgreSQL tests (every test with "postgres" in its name) are
# left out and counted as skipped, never reported as passed; run on their own without
# HMS_TEST_POSTGRES_URL they fail and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${HMS_TEST_POSTGRES_URL:-}" ]; then
  candidate="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null 2>&1 && psql "$candidate" -Atqc 'select 1' >/dev/null 2>&1; then
    export HMS_TEST_POSTGRES_URL="$candidate"
  fi
fi
if [ -n "${HMS_TEST_POSTGRES_URL:-}" ]; then
  echo "==> PostgreSQL tests use ${HMS_TEST_POSTGRES_URL%%\?*}"
elif [ "${HMS_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "HMS_TEST_REQUIRE_POSTGRES=1 but no PostgreSQL is reachable and HMS_TEST_POSTGRES_URL is not set" >&2
  exit 1
else
  echo "==> NOTICE: no PostgreSQL found; the PostgreSQL tests are skipped (counted below)."
  echo "    Set HMS_TEST_POSTGRES_URL=postgres://USER@HOST:5432/DB to run them."
fi

# The integration tests' third-party peers (Authlib) run in a Python virtualenv.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "==> installing python3 and python3-venv (for the Authlib peer tests)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq python3 python3-venv
  fi
fi

# openid-client and playwright-core (the SSO peer tests) need Node.js and npm; the
# peers' setup script installs Chromium itself.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "==> installing nodejs and npm (for the openid-client and browser tests)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq nodejs npm
  fi
fi

bash scripts/system-deps.sh

echo "==> building hms-ach (the integration tests run the real binary)"
cargo build -p hms-ach

if cargo nextest --version >/dev/null 2>&1; then
  if [ -n "${HMS_TEST_POSTGRES_URL:-}" ]; then
    cargo nextest run --workspace --no-fail-fast
  else
    skipped=$(cargo nextest list --workspace -E 'test(/postgres/)' --message-format oneline | wc -l)
    cargo nextest run --workspace --no-fail-fast -E 'not test(/postgres/)'
    echo "==> SKIPPED: $skipped PostgreSQL tests did not run (no PostgreSQL server)"
  fi
else
  if [ -n "${HMS_TEST_POSTGRES_URL:-}" ]; then
    cargo test --workspace
  else
    cargo test --workspace -- --skip postgres
    echo "==> SKIPPED: the PostgreSQL tests did not run (no PostgreSQL server)"
  fi
fi
