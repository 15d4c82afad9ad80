#!/usr/bin/env bash
# After `up -d` (make docker-compose-up): waits until container $1 (default server) is
# running and healthy. When it exits or turns unhealthy instead, prints why: its state, its
# last log lines (a refused configuration names the key) and where to look; exits 1.
set -euo pipefail
name=${1:-server}
wait_s=${AWAIT_SECONDS:-60}
state() { docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' "$name"; }
give_up() {
  echo "$name did not come up: $1" >&2
  echo "--- last lines of 'docker logs $name':" >&2
  docker logs --tail 20 "$name" 2>&1 | sed 's/^/  /' >&2
  echo "--- see everything with 'docker logs $name' or 'make docker-compose-summary'; fix it, then 'make docker-compose-down' and up again" >&2
  exit 1
}
end=$((SECONDS + wait_s))
while [ "$SECONDS" -lt "$end" ]; do
  read -r status health code < <(state) || give_up "no container named $name"
  case "$status/$health" in
    running/healthy) echo "$name is up and healthy"; exit 0 ;;
    running/none) echo "$name is up (no health check)"; exit 0 ;;
    running/unhealthy) give_up "its health check fails (health: unhealthy)" ;;
    exited/* | dead/*) give_up "it exited with code $code (health: $health)" ;;
  esac
  sleep 0.25
done
give_up "still not healthy after ${wait_s}s (state: $(state))"
