#!/usr/bin/env bash
# Makes sure a Docker engine answers, then prints the compose command to use ("docker compose"
# or "docker-compose"); with --engine-only, only the engine is needed and nothing is printed.
# Used by `make docker-engine` and the Docker e2e checks.
#
# On a machine without a container registry, ../shared/docker/ensure-engine.sh installs Docker,
# starts dockerd and builds the base image. It gives dockerd 30 s to answer; on a loaded machine
# (right after the test suite) dockerd can take longer, or die on start and leave its pid file
# behind. So when ensure-engine fails and no engine answers: dockerd's log is shown, a dockerd
# still starting gets ENGINE_WAIT more seconds, and one that died or never answers is stopped
# and started again, up to ENGINE_TRIES starts in all. When an engine answers, ensure-engine's
# failure was something else (a package, the base image): it is final, and no engine is touched.
# Elsewhere, the machine's own Docker is used as it is.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENSURE=$ROOT/../shared/docker/ensure-engine.sh
TRIES=${ENGINE_TRIES:-3}
WAIT=${ENGINE_WAIT:-120}
LOG=/var/log/dockerd.log
ENGINE_ONLY=$([ "${1:-}" = --engine-only ] && echo 1 || echo 0)

say() { echo "engine: $*" >&2; }
answers() { docker info >/dev/null 2>&1; }
running() { pgrep -x dockerd >/dev/null 2>&1; }
ensure() { if [ "$ENGINE_ONLY" = 1 ]; then bash "$ENSURE" >/dev/null; else bash "$ENSURE"; fi; }

if [ ! -f "$ENSURE" ]; then
  answers || { say "no Docker engine answers ('docker info' fails): start Docker, then run this again"; exit 1; }
  [ "$ENGINE_ONLY" = 1 ] && exit 0
  if docker compose version >/dev/null 2>&1; then echo "docker compose"
  elif command -v docker-compose >/dev/null; then echo docker-compose
  else say "neither 'docker compose' nor 'docker-compose' works: install Docker with Compose"; exit 1
  fi
  exit 0
fi

# Waits up to $1 seconds for the engine to answer while a dockerd is running.
await_dockerd() {
  local deadline=$((SECONDS + $1))
  while running && [ $SECONDS -lt $deadline ]; do answers && return 0; sleep 0.5; done
  answers
}

# Stops a dockerd that does not answer, so that the next start is not refused by its pid file.
stop_dockerd() {
  pkill -x dockerd 2>/dev/null || true
  for _ in $(seq 1 40); do running || break; sleep 0.5; done
  pkill -9 -x dockerd 2>/dev/null || true
  rm -f /var/run/docker.pid
}

for try in $(seq 1 "$TRIES"); do
  ensure && exit 0
  if answers; then
    say "ensure-engine failed while the engine answers: see its lines above (this is not a dockerd start to retry)"
    exit 1
  fi
  say "start $try of $TRIES: the Docker engine did not answer; the end of $LOG:"
  tail -n 15 "$LOG" >&2 2>/dev/null || true
  if running && await_dockerd "$WAIT"; then
    say "dockerd answered after a slow start"
    # ensure-engine again: it builds the base image if missing and prints the command.
    ensure
    exit
  fi
  stop_dockerd
done
say "no Docker engine after $TRIES starts; see $LOG"
exit 1
