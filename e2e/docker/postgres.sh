#!/usr/bin/env bash
# `make e2e-docker-postgres`: two servers sharing PostgreSQL in Docker Compose, end to end
# (docs/docker.md). The compose file is `./generar-compose.sh FILE 5 --servers 2 --postgres`.
#   0. that file validates; the images build (PostgreSQL's from Debian's postgresql-15 package,
#      or POSTGRES_IMAGE, e.g. postgres:15, pulled).
#   1. five agencies over two servers (1, 3, 5 on server1; 2, 4 on server2): every client exits
#      0, every input bet is in the database exactly once (npm run export-bets, compared with
#      the input multiset), one sorteo over both servers, each agency's winners right (the
#      inspector with --data), the inspector's invariants over every container's log.
#   2. server1 killed (SIGKILL) while its clients send: they move to server2 and finish; every
#      bet exactly once, one draw, winners right, the inspector's invariants.
#   3. a small run of the same with --tls (make certs into the temp directory): every client
#      checks its server's certificate (names server1, server2), the checks of 1.
# Needs node and Docker with Compose; cleans up after itself (E2E_KEEP=1 keeps the temp
# directory). The containers have fixed names (postgres, server1, server2, clientN, data):
# one run at a time, and not beside `make e2e-docker` (it uses data and clientN too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
PROJECT=${E2E_PROJECT:-loteriae2epg}
DRILL_BETS=${E2E_PG_DRILL_BETS:-30000}
# client1's file is ten times the others': the kill drill needs client1 still sending when
# server1 dies, and a fast client could finish its file before the kill lands.
DRILL_BETS1=${E2E_PG_DRILL_BETS1:-$((DRILL_BETS * 10))}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-loteria-postgres:15}
export POSTGRES_IMAGE
SERVERS=(server1 server2)
CLIENTS=(client1 client2 client3 client4 client5)
CONTAINERS=(postgres "${SERVERS[@]}" "${CLIENTS[@]}")
ONESHOT=(data tls)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loteria-e2e-postgres.XXXXXX")
COMPOSE_FILE=$WORK/compose.yml
# shellcheck source=e2e/docker/lib.sh
. "$ROOT/e2e/docker/lib.sh"
COMPOSE=
cleanup() {
  local rc=$?
  [ -z "$COMPOSE" ] || compose down -v -t 10 >/dev/null 2>&1 || true
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "e2e-docker-postgres: kept $WORK"; else rm -rf "$WORK"; fi
  if [ $rc -eq 0 ]; then echo "e2e-docker-postgres: PASS in ${SECONDS}s"; else echo "e2e-docker-postgres: FAIL (exit $rc) after ${SECONDS}s" >&2; fi
}
trap cleanup EXIT
COMPOSE=$(find_compose)
[ -f dist/tools/gen-data.js ] && [ -f dist/tools/inspect/main.js ] || make --no-print-directory build

# ---------------------------------------------------------------- 0. compose file, images
say "generated compose file (5 agencies, 2 servers, PostgreSQL) and data"
DATA_DIR=$WORK/data ./generar-compose.sh "$COMPOSE_FILE" 5 --servers 2 --postgres
compose config -q || die "the generated compose file is invalid"
for i in 1 2 3 4 5; do
  want=$([ $((i % 2)) -eq 1 ] && echo server1:12345,server2:12345 || echo server2:12345,server1:12345)
  grep -q "CLI_SERVER_ADDRESS=$want\$" <(sed -n "/^  client$i:/,/^$/p" "$COMPOSE_FILE") || die "client$i does not list $want"
done
echo "valid ($COMPOSE config); agencies 1, 3, 5 list server1 first, 2 and 4 server2"
compose down -v -t 10 >/dev/null 2>&1 || true
for c in "${CONTAINERS[@]}" "${ONESHOT[@]}"; do
  if docker container inspect "$c" >/dev/null 2>&1; then
    die "a container named $c exists (another stack, or make e2e-docker running?); remove it first"
  fi
done

say "images"
docker build -q --target server -t loteria-server:latest . >/dev/null
docker build -q --target client -t loteria-client:latest . >/dev/null
make --no-print-directory docker-image-postgres POSTGRES_IMAGE="$POSTGRES_IMAGE" >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^loteria-|^postgres:'

# The database's bets as the course's file, through export-bets in a running server's container.
export_bets() {
  local via=$1 out=$2
  docker exec "$via" node dist/tools/export-bets.js --out /tmp/export.csv
  docker exec "$via" cat /tmp/export.csv > "$out"
  docker exec "$via" rm -f /tmp/export.csv
}
draws() { grep -c 'action: sorteo | result: success' "$1" || true; }

# A whole run: up, every client done, then what every run must show. $1 names it; $2 is the
# data directory; $3, when given, is run once the clients send (a drill).
run_once() {
  local name=$1 data=$2 drill=${3:-} codes base=$WORK/$1
  export DATA_DIR=$data
  compose up -d > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; die "up failed"; }
  [ -z "$drill" ] || eval "$drill"
  codes=$(with_timeout 300 docker wait "${CLIENTS[@]}" | tr '\n' ' ') || die "clients did not finish within 300 s"
  compose logs --no-color > "$base.log"
  [ "$codes" = "0 0 0 0 0 " ] || { dump "$base.log"; die "a client did not exit 0: $codes"; }
  echo "client exit codes: $codes"
  [ "$(draws "$base.log")" -eq 1 ] || { grep 'action: sorteo' "$base.log" >&2; die "expected exactly one sorteo success over both servers"; }
  echo "one sorteo over both servers, by $(grep 'action: sorteo | result: success' "$base.log" | cut -d' ' -f1)"
  export_bets server2 "$base-bets.csv"
  exactly_once "$base-bets.csv" "$data"
  # shellcheck disable=SC2046
  inspect "$base.log" --bets "$base-bets.csv" --data "$data" $(states) > "$base.inspect" \
    || { tail -n 40 "$base.inspect" >&2; die "run $name: an invariant failed (npm run inspect)"; }
  echo "the inspector's invariants hold (winners per agency against the input files, stored = acknowledged, one draw)"
}

# ---------------------------------------------------------------- 1. complete run
say "1. five agencies over two servers ($(cat "$WORK"/data/agency-*.csv | wc -l | tr -d ' ') bets)"
run_once full "$WORK/data"
for s in "${SERVERS[@]}"; do
  n=$(grep -c "^$s *|.*action: conexion | result: success" "$WORK/full.log" || true)
  [ "$n" -ge 1 ] || die "$s served no agency"
  echo "$s: $n sessions"
done
compose down -v -t 10 >/dev/null 2>&1

# ---------------------------------------------------------------- 2. a server killed
say "drill data: agency 1 $DRILL_BETS1 bets, agencies 2-5 $DRILL_BETS each"
node dist/tools/gen-data.js --agencies 5 --sizes "$DRILL_BETS1,$DRILL_BETS,$DRILL_BETS,$DRILL_BETS,$DRILL_BETS" --out "$WORK/big" >/dev/null
say "2. SIGKILL server1 while its clients send: they finish on server2"
run_once kill "$WORK/big" 'wait_sending client1 20; docker kill --signal=SIGKILL server1 >/dev/null; echo "server1 killed (exit $(docker wait server1))"'
grep -Eq '^client1 *\|.*action: reconexion \| result: in_progress \|.*servidor: server2[:/]12345' "$WORK/kill.log" \
  || { grep 'reconexion' "$WORK/kill.log" >&2; die "client1 did not move to server2"; }
echo "client1 moved to server2 (reconexion | servidor: server2/12345)"
[ "$(docker inspect -f '{{.State.Health.Status}}' server2)" = healthy ] || die "server2 is not healthy after the drill"
compose down -v -t 10 >/dev/null 2>&1

# ---------------------------------------------------------------- 3. TLS
say "3. the same with --tls: the clients check server1's and server2's certificate (make certs)"
bash tools/make-certs.sh "$WORK/certs" >/dev/null
export CERTS_DIR=$WORK/certs
node dist/tools/gen-data.js --agencies 5 --bets 2000 --out "$WORK/tls-data" >/dev/null
DATA_DIR=$WORK/tls-data ./generar-compose.sh "$COMPOSE_FILE" 5 --servers 2 --postgres --tls
run_once tls "$WORK/tls-data"
[ "$(grep -cE '^client[1-5] *\|.*action: config \| result: success \|.*tls: ca /run/tls/ca.crt' "$WORK/tls.log")" -eq 5 ] \
  && [ "$(grep -cE '^server[12] *\|.*action: config \| result: success \|.*tls: cert /run/tls/server.crt' "$WORK/tls.log")" -eq 2 ] \
  || die "not every client and server ran with TLS"
echo "every client trusted only the CA, both servers spoke TLS"
