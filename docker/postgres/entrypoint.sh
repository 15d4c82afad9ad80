#!/usr/bin/env bash
# First start on an empty PGDATA: initdb (superuser POSTGRES_USER, default postgres), a
# password when given, the database POSTGRES_DB, network logins checked by
# POSTGRES_HOST_AUTH_METHOD (default scram-sha-256; `trust` needs no password), made on a
# server listening on its unix socket only, so pg_isready -h 127.0.0.1 answers only once the
# real server runs. Every start: `postgres -c listen_addresses=*` in the foreground (exec: it
# gets the stop signal). The official image's variables, a subset of them.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
log() { echo "postgres-entrypoint: $*" >&2; }

if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
shift || true

password=${POSTGRES_PASSWORD:-}
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then password=$(<"$POSTGRES_PASSWORD_FILE"); fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$password" ] && [ "$auth" != trust ]; then
    log "no password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, or POSTGRES_HOST_AUTH_METHOD=trust on a network only trusted peers reach"
    exit 1
  fi
  log "initialising $PGDATA (user $user, database $db, network logins: $auth)"
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${password:-unused}" > "$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C --auth-local=trust --auth-host="$auth" >/dev/null
  rm -f "$pwfile"
  echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""; fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "initialised"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
