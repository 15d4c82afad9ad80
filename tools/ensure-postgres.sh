#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) are installed, for the
# tests and tools that start a throwaway cluster (test/helpers/postgres.ts). Installs Debian's
# `postgresql` package with apt-get when they are missing and we are root; otherwise says what
# to do. Prints the bin directory on success. Idempotent: a machine that has them is untouched.
set -euo pipefail

find_bin() {
  local dir
  for dir in "${PG_BIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if bin=$(find_bin); then
  echo "$bin"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-postgres: PostgreSQL server binaries not found and not root: run 'sudo apt-get install -y postgresql' (or set PG_BIN to a bin directory holding initdb and pg_ctl)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-postgres: PostgreSQL server binaries not found and apt-get is missing: install PostgreSQL 15 and set PG_BIN to its bin directory" >&2
  exit 1
fi

echo "ensure-postgres: installing postgresql with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# The package's own cluster is not wanted: tests start their own, as the postgres user.
apt-get install -y -qq --no-install-recommends postgresql >&2
if ! bin=$(find_bin); then
  echo "ensure-postgres: apt-get installed postgresql but no initdb/pg_ctl was found under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
echo "$bin"
