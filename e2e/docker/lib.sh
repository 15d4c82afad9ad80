#!/usr/bin/env bash
# Shared by the Docker end-to-end checks (run.sh, postgres.sh): sourced, never run. Expects
# ROOT (the repository), WORK (a temp directory) and, for compose(), PROJECT and COMPOSE_FILE.

say() { printf '\n== %s  [%ss]\n' "$*" "$SECONDS"; }
die() { echo "e2e-docker: $*" >&2; exit 1; }
with_timeout() { if command -v timeout >/dev/null; then timeout "$@"; else shift; "$@"; fi; }
dump() { echo "--- last lines of $1" >&2; tail -n "${2:-40}" "$1" >&2; }

# The compose command, once a Docker engine answers (tools/docker/engine.sh starts one, with
# retries, on a machine without a registry).
find_compose() { bash "$ROOT/tools/docker/engine.sh" || die "no Docker engine (see the lines above)"; }

compose() { $COMPOSE -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }
inspect() { node "$ROOT/dist/tools/inspect/main.js" "$@"; }
states() { bash "$ROOT/tools/docker/states.sh" "$PROJECT"; }

# Waits until container $1 has logged at least $2 acknowledged batches.
wait_sending() {
  local n
  for _ in $(seq 1 600); do
    n=$(docker logs "$1" 2>&1 | grep -c 'action: apuesta_enviada | result: success' || true)
    [ "$n" -ge "$2" ] && return 0
    if [ "$(docker inspect -f '{{.State.Running}}' "$1")" != true ]; then
      docker logs "$1" 2>&1 | tail -n 20 >&2
      die "$1 stopped before it had sent $2 batches"
    fi
    sleep 0.1
  done
  die "$1 did not send $2 batches within 60 s"
}

# Every input bet exactly once: the bets file $1, less its agency column, is the multiset of
# the rows of $2/agency-1.csv .. agency-$3.csv (default 5).
exactly_once() {
  local bets=$1 data=$2 agencies=${3:-5} n
  for n in $(seq 1 "$agencies"); do sed "s/^/$n,/" "$data/agency-$n.csv"; done | tr -d '\r' | LC_ALL=C sort > "$WORK/expected.sorted"
  tr -d '\r' < "$bets" | LC_ALL=C sort > "$WORK/stored.sorted"
  cmp -s "$WORK/expected.sorted" "$WORK/stored.sorted" \
    || { diff "$WORK/expected.sorted" "$WORK/stored.sorted" | head -n 5 >&2; die "the bets file is not exactly the input, once each"; }
  echo "every one of $(wc -l < "$WORK/expected.sorted" | tr -d ' ') input bets is stored exactly once"
}
