#!/usr/bin/env bash
# `make e2e-docker`: the system in Docker Compose, end to end (docs/docker.md).
#   0. docker-compose.yml is what `./generar-compose.sh docker-compose.yml 5` writes; both images build.
#   1. five agencies on generated data run to completion: every client exits 0, one draw,
#      each agency's winners match its file, no `result: fail`, one stored row per input bet.
#   1b. `up` again on the same volume (a re-run): the same bets file, the same winners, and the
#      inspector's invariants for both runs (the re-run's bets held from the first, its draw recovered).
#   2. SIGTERM drills while clients are sending: client1 alone, the server alone, and
#      `down` with everything running: each stopped container exits 0 having logged its
#      resources closing; every `result: fail` explained; nothing acknowledged is lost.
#   3. The server killed mid-run (SIGTERM, then SIGKILL) and started again with `docker start`:
#      every client rides it out and exits 0, every input bet is stored exactly once, the
#      winners are right, and the inspector's invariants hold across the restart (with
#      Docker's states: the server started again is running).
# Every log is judged by the log inspector (tools/inspect, `npm run inspect`), the same
# tool `make docker-compose-summary` runs; the drills add their own few assertions on its
# --json report. Needs node and Docker with Compose: tools/docker/engine.sh starts an engine
# on a machine without a registry, else the machine's own Docker is used. Runs without a TTY. Everything it creates is removed at the end;
# E2E_KEEP=1 keeps the temporary directory (logs, bets files) for inspection.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
PROJECT=${E2E_PROJECT:-loteriae2e}
DRILL_BETS=${E2E_DRILL_BETS:-100000}
# client1's file is ten times the others': every drill signals once client1 is sending and asks
# that a run was in progress, and at the others' size all five clients can finish before the
# signal lands (a clean-clone CI run saw that happen before `down`).
DRILL_BETS1=${E2E_DRILL_BETS1:-$((DRILL_BETS * 10))}
CONTAINERS=(server client1 client2 client3 client4 client5)
ONESHOT=(data)
CLIENTS=(client1 client2 client3 client4 client5)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loteria-e2e-docker.XXXXXX")
COMPOSE_FILE=$ROOT/docker-compose.yml
# shellcheck source=e2e/docker/lib.sh
. "$ROOT/e2e/docker/lib.sh"
COMPOSE=$(find_compose)
[ -f dist/tools/gen-data.js ] && [ -d node_modules/tsx ] || make --no-print-directory build

# Asserts a JavaScript condition on the inspector's --json report $1 (`r` is its first run).
expect() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).runs[0];
    const p = (n) => r.processes.find((x) => x.name === n); const a = (n) => r.agencies.find((x) => x.agency === n);
    if (!eval(process.argv[2])) { console.error("e2e-docker: expected " + process.argv[3]); process.exit(1); }
    console.log("  ok   " + process.argv[3]);' "$1" "$2" "$3"
}
cleanup() {
  local rc=$?
  jobs -p | xargs -r kill 2>/dev/null || true
  compose down -v -t 10 >/dev/null 2>&1 || true
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "e2e-docker: kept $WORK"; else rm -rf "$WORK"; fi
  if [ $rc -eq 0 ]; then echo "e2e-docker: PASS in ${SECONDS}s"; else echo "e2e-docker: FAIL (exit $rc) after ${SECONDS}s" >&2; fi
}
trap cleanup EXIT

# The containers have fixed names (server, clientN): refuse to touch another project's.
compose down -v -t 10 >/dev/null 2>&1 || true
for c in "${CONTAINERS[@]}" "${ONESHOT[@]}"; do
  if docker container inspect "$c" >/dev/null 2>&1; then
    die "a container named $c exists (another stack? 'make docker-compose-down' stops the project's); remove it first"
  fi
done

bets_volume() {
  docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.volume=bets | head -n1
}
# Copies the server's bets file out of the named volume (through a throwaway container).
read_bets() {
  local vol; vol=$(bets_volume)
  [ -n "$vol" ] || die "the bets volume of project $PROJECT does not exist"
  docker run --rm -v "$vol":/d:ro loteria-server:latest sh -c 'cat /d/bets.csv 2>/dev/null || true' > "$1"
  echo "bets file: $(wc -l < "$1" | tr -d ' ') rows on volume $vol"
}

# ---------------------------------------------------------------- 0. compose file, images
say "generated compose file and data"
DATA_DIR=$WORK/data ./generar-compose.sh - 5 > "$WORK/generated.yml"
diff -u docker-compose.yml "$WORK/generated.yml" || die "docker-compose.yml differs from './generar-compose.sh docker-compose.yml 5'"
echo "docker-compose.yml is what './generar-compose.sh docker-compose.yml 5' writes"
DATA_DIR=$WORK/scaled ./generar-compose.sh "$WORK/scaled.yml" 7 2>/dev/null
$COMPOSE -p "$PROJECT" -f "$WORK/scaled.yml" config -q || die "the generated 7-agency compose file is invalid"
grep -q 'SERVER_AGENCIES=7' "$WORK/scaled.yml" && grep -q 'container_name: client7' "$WORK/scaled.yml" \
  || die "the 7-agency compose file lacks SERVER_AGENCIES=7 or client7"
echo "a 7-agency file validates ($COMPOSE config) with SERVER_AGENCIES=7 and client1..client7"

say "images"
docker build -q --target server -t loteria-server:latest . >/dev/null
docker build -q --target client -t loteria-client:latest . >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^loteria-'

# ---------------------------------------------------------------- 1. complete run
say "1. five agencies on generated data ($(cat "$WORK"/data/agency-*.csv | wc -l | tr -d ' ') bets)"
export DATA_DIR=$WORK/data
start=$SECONDS
compose up -d
codes=$(with_timeout 180 docker wait "${CLIENTS[@]}" | tr '\n' ' ') || die "clients did not finish within 180 s"
echo "client exit codes: $codes(all done $((SECONDS - start)) s after up)"
compose logs --no-color > "$WORK/ingest.log"
[ "$codes" = "0 0 0 0 0 " ] || { dump "$WORK/ingest.log"; die "a client did not exit 0: $codes"; }
health=$(docker inspect -f '{{.State.Health.Status}}' server)
[ "$health" = healthy ] || die "server health is '$health', expected healthy"
echo "server health: $health"
read_bets "$WORK/ingest-bets.csv"
! grep -q 'result: fail' "$WORK/ingest.log" || { grep 'result: fail' "$WORK/ingest.log" >&2; die "a line has result: fail"; }
# shellcheck disable=SC2046
inspect "$WORK/ingest.log" --bets "$WORK/ingest-bets.csv" --data "$WORK/data" $(states) \
  || { dump "$WORK/ingest.log"; die "the complete run failed its checks"; }

say "1b. up again on the same volume: nothing stored twice, the same winners"
compose stop -t 10 >/dev/null 2>&1
compose up -d > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; die "the second up failed"; }
codes=$(with_timeout 180 docker wait "${CLIENTS[@]}" | tr '\n' ' ') || die "clients of the re-run did not finish within 180 s"
compose logs --no-color > "$WORK/rerun.log"
[ "$codes" = "0 0 0 0 0 " ] || { dump "$WORK/rerun.log"; die "a client of the re-run did not exit 0: $codes"; }
read_bets "$WORK/rerun-bets.csv"
cmp -s "$WORK/ingest-bets.csv" "$WORK/rerun-bets.csv" || die "the re-run changed the bets file"
echo "the bets file is byte for byte the same after the re-run"
winners() { grep -o 'agencia: [0-9]* | cant_ganadores: [0-9]*' "$1" | sort -u; }
[ "$(grep -c 'action: sorteo | result: success' "$WORK/rerun.log")" -eq 1 ] || die "the re-run's logs do not hold exactly one sorteo success (the first run's)"
[ "$(docker logs server 2>&1 | grep -c 'sorteo: done')" -ge 1 ] || die "the restarted server did not log its recovered draw"
[ "$(winners "$WORK/rerun.log" | wc -l)" -eq 5 ] && diff <(winners "$WORK/ingest.log") <(winners "$WORK/rerun.log") >/dev/null \
  || { winners "$WORK/rerun.log" >&2; die "the re-run's winners differ from the first run's"; }
echo "each agency got the same winners from the recovered draw; one sorteo in all"
# shellcheck disable=SC2046
inspect "$WORK/rerun.log" --bets "$WORK/rerun-bets.csv" --data "$WORK/data" $(states) >/dev/null \
  || { inspect "$WORK/rerun.log" --bets "$WORK/rerun-bets.csv" --data "$WORK/data" $(states) | tail -n 30 >&2; die "the re-run failed its checks"; }
echo "the inspector's invariants hold for both runs (the re-run's bets held from the first, its draw recovered)"
compose down -v -t 10 >/dev/null 2>&1

# ---------------------------------------------------------------- 2. SIGTERM drills
say "drill data: agency 1 $DRILL_BETS1 bets, agencies 2-5 $DRILL_BETS each"
node dist/tools/gen-data.js --agencies 5 --sizes "$DRILL_BETS1,$DRILL_BETS,$DRILL_BETS,$DRILL_BETS,$DRILL_BETS" --out "$WORK/big" >/dev/null
export DATA_DIR=$WORK/big
compose_up() { compose up -d > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; die "up failed"; }; }
drill_up() { compose_up; wait_sending client1 20; }

# The inspector on drill $1 (every invariant), then: each stopped container ($2, comma-separated)
# exited 0 after SIGTERM, and the drill stopped a run in progress: client1 had not sent FINISHED
# (it was still sending), or with $3 = any, at least one client had not.
judge() {
  local base=$1 stopped=$2 sending=$3; shift 3
  inspect "$base.log" --bets "$base-bets.csv" "$@" || { dump "$base.log"; die "drill $base: an invariant failed"; }
  inspect "$base.log" --bets "$base-bets.csv" "$@" --json > "$base.json" || true
  for c in ${stopped//,/ }; do
    expect "$base.json" "p('$c').exitCode === 0 && p('$c').signal === 'SIGTERM'" "$c stopped by SIGTERM and exited 0"
  done
  if [ "$sending" = any ]; then
    expect "$base.json" "r.agencies.some((x) => !x.finished.client)" "a client was still sending when signalled (no FINISHED)"
  else
    expect "$base.json" "!a(1).finished.client" "client1 was still sending when signalled (no FINISHED)"
  fi
}

# One container gets SIGTERM while client1 is sending; $3 says how the others end.
kill_drill() {
  local stopped=$1 name=$2 rest=$3 code
  drill_up
  docker kill --signal=SIGTERM "$stopped" >/dev/null
  code=$(with_timeout 15 docker wait "$stopped") || die "$stopped still running 15 s after SIGTERM"
  echo "$stopped exit code $code"
  eval "$rest"
  compose logs --no-color > "$WORK/drill-$name.log"
  read_bets "$WORK/drill-$name-bets.csv"
  judge "$WORK/drill-$name" "$stopped" client1 $(states)
  compose down -v -t 10 >/dev/null 2>&1
}

say "2a. SIGTERM client1 only"
kill_drill client1 client 'compose stop -t 10 >/dev/null 2>&1'

say "2b. SIGTERM server only"
# Clients lose their connection and end on their own (not asserted: only the server was stopped).
kill_drill server server 'with_timeout 30 docker wait "${CLIENTS[@]}" >/dev/null || compose stop -t 10 >/dev/null 2>&1'

say "2c. down with everything running"
compose_up
# `down` removes the containers: follow their logs and exit codes from outside, from the
# start (not once client1 is sending: a fast client could finish while the followers start).
followers=()
for c in "${CONTAINERS[@]}"; do
  ( with_timeout 60 docker wait "$c" > "$WORK/exit-$c" 2>/dev/null || true ) & followers+=($!)
  ( docker logs -f "$c" 2>&1 | while IFS= read -r line; do printf '%s | %s\n' "$c" "$line"; done > "$WORK/follow-$c.log" ) & followers+=($!)
done
wait_sending client1 20
start=$SECONDS
compose down -t 10 2>&1 | grep -v '^$' || true
echo "down took $((SECONDS - start)) s"
wait "${followers[@]}" || true
cat "$WORK"/follow-*.log > "$WORK/drill-down.log"
exits=()
for c in "${CONTAINERS[@]}"; do exits+=(--exit "$c=$(tr -d '[:space:]' < "$WORK/exit-$c")"); done
echo "exit codes: ${exits[*]}"
read_bets "$WORK/drill-down-bets.csv"
judge "$WORK/drill-down" "$(IFS=,; echo "${CONTAINERS[*]}")" any "${exits[@]}"
compose down -v -t 10 >/dev/null 2>&1

# ---------------------------------------------------------------- 3. server restarts
restart_drill() {
  local sig=$1 name=$2 code codes
  drill_up
  docker kill --signal="$sig" server >/dev/null
  code=$(with_timeout 15 docker wait server) || die "server still running 15 s after $sig"
  echo "server exit code $code after $sig"
  [ "$sig" != SIGTERM ] || [ "$code" = 0 ] || die "the server exited $code after SIGTERM, expected 0"
  docker start server >/dev/null
  codes=$(with_timeout 240 docker wait "${CLIENTS[@]}" | tr '\n' ' ') || die "clients did not finish within 240 s of the restart"
  compose logs --no-color > "$WORK/drill-$name.log"
  [ "$codes" = "0 0 0 0 0 " ] || { dump "$WORK/drill-$name.log"; die "a client did not ride out the restart: $codes"; }
  echo "client exit codes: $codes"
  grep -q 'action: reconexion | result: in_progress' "$WORK/drill-$name.log" || die "no client logged a reconnection"
  [ "$(grep -c 'action: sorteo | result: success' "$WORK/drill-$name.log")" -eq 1 ] || die "expected exactly one sorteo success"
  read_bets "$WORK/drill-$name-bets.csv"
  exactly_once "$WORK/drill-$name-bets.csv" "$WORK/big"
  # Docker's states: the restarted server is still running, the clients exited (0).
  local st; st=$(states)
  # shellcheck disable=SC2086
  inspect "$WORK/drill-$name.log" --bets "$WORK/drill-$name-bets.csv" --data "$WORK/big" $st >/dev/null \
    || { inspect "$WORK/drill-$name.log" --bets "$WORK/drill-$name-bets.csv" --data "$WORK/big" $st | tail -n 30 >&2; die "drill $name: an invariant failed"; }
  echo "the inspector's invariants hold across the restart"
  compose down -v -t 10 >/dev/null 2>&1
}

say "3a. SIGTERM server, docker start server"
restart_drill SIGTERM restart-term

say "3b. SIGKILL server, docker start server"
restart_drill SIGKILL restart-kill
