#!/usr/bin/env bash
# Writes a Compose file with the server(s) and N agency clients, and generates the data files
# the clients read when they are missing (existing files are never overwritten).
#
#   ./generar-compose.sh <output file> <number of clients> [--servers S] [--postgres] [--tls]
#   ./generar-compose.sh docker-compose.yml 5     # the committed docker-compose.yml
#   ./generar-compose.sh - 5                      # print the file instead of writing it
#   ./generar-compose.sh docker-compose-pg.yml 5 --servers 2 --postgres
#
#   --postgres   a `postgres` service (PostgreSQL 15; image loteria-postgres:15 built by
#                `make docker-image-postgres` (or make docker-compose-up) from docker/postgres/Dockerfile, or POSTGRES_IMAGE=postgres:15)
#                and the servers store there (SERVER_STORAGE=postgres) instead of a bets file
#   --servers S  S servers, server1..serverS, sharing that database (needs --postgres when S > 1);
#                agency i lists server ((i-1) mod S)+1 first, then the others in turn
#   --tls        TLS between clients and servers, from `make certs` output (${CERTS_DIR:-./certs}):
#                the servers get the certificate and key, the clients the CA
#
# The file is valid for Compose v1 (docker-compose) and v2 (docker compose): no top-level
# `name:` (the Makefile passes the project name with -p). Paths inside it are relative to
# the file's own directory, pointing back at this repository. Agency data comes from
# ${DATA_DIR:-./data} at `up` time; this script generates into $DATA_DIR (default data/).
set -euo pipefail

usage() {
  echo "usage: $0 <output file | -> <number of clients> [--servers S] [--postgres] [--tls]" >&2
  echo "  e.g. $0 docker-compose.yml 5" >&2
  echo "       $0 docker-compose-pg.yml 5 --servers 2 --postgres" >&2
  exit 2
}
positional=()
servers=1
postgres=0
tls=0
while [ $# -gt 0 ]; do
  case $1 in
    --servers)
      [ $# -ge 2 ] || usage
      servers=$2
      shift 2
      ;;
    --servers=*) servers=${1#--servers=}; shift ;;
    --postgres) postgres=1; shift ;;
    --tls) tls=1; shift ;;
    -h | --help) usage ;;
    -?*) echo "$0: unknown option '$1'" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -eq 2 ] || usage
out=${positional[0]}
n=${positional[1]}
if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 1000 ]; then
  echo "$0: number of clients must be a whole number from 1 to 1000, got '$n'" >&2
  exit 2
fi
if ! [[ $servers =~ ^[1-9][0-9]*$ ]] || [ "$servers" -gt 16 ]; then
  echo "$0: --servers must be a whole number from 1 to 16, got '$servers'" >&2
  exit 2
fi
if [ "$servers" -gt 1 ] && [ "$postgres" -eq 0 ]; then
  echo "$0: --servers $servers: the file backend takes one server; several share a database: add --postgres" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data_dir=${DATA_DIR:-$root/data}

# Path from the output file's directory to the repository, as Compose resolves it.
if [ "$out" = - ]; then
  base=.
else
  out_dir=$(cd "$(dirname "$out")" && pwd)
  if [ "$out_dir" = "$root" ]; then
    base=.
  elif command -v realpath >/dev/null && realpath --relative-to=/ / >/dev/null 2>&1; then
    base=$(realpath --relative-to="$out_dir" "$root")
  else
    base=$root
  fi
fi

# The servers' names: `server` alone, else server1..serverS (also their SERVER_ID).
names=()
if [ "$servers" -eq 1 ]; then names=(server); else for s in $(seq 1 "$servers"); do names+=("server$s"); done; fi

# ---------------------------------------------------------------- certificates (--tls)
if [ "$tls" -eq 1 ]; then
  certs=${CERTS_DIR:-$root/certs}
  for f in ca.crt server.crt server.key; do
    [ -f "$certs/$f" ] || { echo "generar-compose: --tls needs $certs/$f: run 'make certs' first (or set CERTS_DIR)" >&2; exit 1; }
  done
  # The clients check the server's name: the certificate must hold every server's.
  if command -v openssl >/dev/null; then
    san=$(openssl x509 -noout -ext subjectAltName -in "$certs/server.crt" 2>/dev/null || true)
    for name in "${names[@]}"; do
      grep -q "DNS:$name\(,\|\$\)" <<<"$san" || {
        echo "generar-compose: $certs/server.crt is not valid for the name $name; delete $certs and run 'make certs' again" >&2
        exit 1
      }
    done
  fi
fi

# ---------------------------------------------------------------- data files
missing=()
for i in $(seq 1 "$n"); do
  [ -f "$data_dir/agency-$i.csv" ] || missing+=("$i")
done
if [ ${#missing[@]} -gt 0 ]; then
  only=$(IFS=,; echo "${missing[*]}")
  mkdir -p "$data_dir"
  if command -v node >/dev/null; then
    if [ ! -f "$root/dist/tools/gen-data.js" ]; then
      echo "generar-compose: building (dist/ is missing) to generate data" >&2
      make -C "$root" build >&2
    fi
    node "$root/dist/tools/gen-data.js" --agencies "$n" --only "$only" --out "$data_dir" >&2
  elif docker image inspect loteria-client:latest >/dev/null 2>&1; then
    # No node on this machine: the client image carries the same generator.
    docker run --rm --user "$(id -u):$(id -g)" -v "$(cd "$data_dir" && pwd)":/out \
      loteria-client:latest node dist/tools/gen-data.js --agencies "$n" --only "$only" --out /out >&2
  else
    echo "generar-compose: agencies ${only} have no data file in $data_dir; install node or run 'make docker-image' first" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------- compose file
# Agency $1's server list: server ((i-1) mod S)+1 first, then the others in turn.
address_list() {
  local first=$((($1 - 1) % servers)) k list=
  for k in $(seq 0 $((servers - 1))); do
    list+="${list:+,}${names[$(((first + k) % servers))]}:12345"
  done
  echo "$list"
}

header() {
  local flags=
  [ "$servers" -eq 1 ] || flags+=" --servers $servers"
  [ "$postgres" -eq 0 ] || flags+=" --postgres"
  [ "$tls" -eq 0 ] || flags+=" --tls"
  local what="One server"
  if [ "$postgres" -eq 1 ] && [ "$servers" -eq 1 ]; then what="PostgreSQL, one server"; fi
  if [ "$servers" -gt 1 ]; then what="PostgreSQL, $servers servers sharing it"; fi
  [ "$tls" -eq 0 ] || what+=", TLS"
  cat <<EOF
# Generated by: ./generar-compose.sh <file> $n$flags   (edit the script, not this file)
# $what and $n agencies. \`docker compose up\` (or \`docker-compose up\`) builds the
# images when they are missing; the Makefile passes a project name:
# docker compose -p loteria -f <file> up -d (docs/docker.md).
version: '3.8'

services:
EOF
}

data_service() {
  cat <<EOF
  # One-shot: copies \${DATA_DIR:-./data}/agency-N.csv into the agency-data volume and
  # generates there the files that are missing (a fresh clone has none); makes the agencies'
  # secret keys in the agency-keys volume when missing (never overwritten, mode 0600, never
  # in this file or an image), then exits 0.
  data:
    build:
      context: $base
      target: client
    image: loteria-client:latest
    container_name: data
    command:
      - sh
      - -c
      - >-
        for i in \$\$(seq 1 $n); do
        if [ -f /host-data/agency-\$\$i.csv ]; then cp /host-data/agency-\$\$i.csv /app/data/; fi;
        done;
        node dist/tools/gen-data.js --agencies $n --out /app/data &&
        node dist/tools/gen-keys.js --agencies $n --out /app/keys
    volumes:
      - \${DATA_DIR:-$base/data}:/host-data:ro
      - agency-data:/app/data
      - agency-keys:/app/keys
    network_mode: none
EOF
}

tls_service() {
  cat <<EOF

  # One-shot, as root only to read the host's key (mode 0600): copies \`make certs\` output
  # into volumes owned by the containers' user (uid 1000): tls-server holds the certificate
  # and its key (the servers only), tls-ca the CA the clients trust.
  tls:
    build:
      context: $base
      target: client
    image: loteria-client:latest
    container_name: tls
    user: "0:0"
    command:
      - sh
      - -c
      - >-
        cp /host-certs/server.crt /host-certs/server.key /tls-server/ &&
        cp /host-certs/ca.crt /tls-ca/ &&
        chown 1000:1000 /tls-server/server.crt /tls-server/server.key /tls-ca/ca.crt &&
        chmod 600 /tls-server/server.key && chmod 644 /tls-server/server.crt /tls-ca/ca.crt
    volumes:
      - \${CERTS_DIR:-$base/certs}:/host-certs:ro
      - tls-server:/tls-server
      - tls-ca:/tls-ca
    network_mode: none
EOF
}

postgres_service() {
  cat <<EOF

  # PostgreSQL 15, the servers' shared storage. loteria-postgres:15 is built from Debian's
  # postgresql-15 package by \`make docker-image-postgres\` (make docker-compose-up runs it) (docker/postgres/Dockerfile, no registry
  # needed); POSTGRES_IMAGE=postgres:15 takes the official image instead (same variables,
  # data directory, port and pg_isready). No password: only the servers reach it, on the
  # internal network db_net, which has no route out and no client on it (docs/docker.md).
  postgres:
    image: \${POSTGRES_IMAGE:-loteria-postgres:15}
    container_name: postgres
    environment:
      - POSTGRES_USER=loteria
      - POSTGRES_DB=loteria
      - POSTGRES_HOST_AUTH_METHOD=trust
    volumes:
      - pgdata:/var/lib/postgresql/data
    networks:
      - db_net
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "loteria", "-d", "loteria"]
      interval: 2s
      timeout: 3s
      retries: 15
      start_period: 30s
    stop_grace_period: 10s
EOF
}

# The one-shot services a server or client waits for: data (and the keys), and tls with --tls.
one_shot_deps() {
  cat <<EOF
    depends_on:
      data:
        condition: service_completed_successfully
EOF
  if [ "$tls" -eq 1 ]; then
    cat <<EOF
      tls:
        condition: service_completed_successfully
EOF
  fi
}

server_service() {
  local name=$1
  cat <<EOF

  $name:
    build:
      context: $base
      target: server
    image: loteria-server:latest
    container_name: $name
    environment:
      - SERVER_HOST=0.0.0.0
      - SERVER_AGENCIES=$n
EOF
  if [ "$postgres" -eq 1 ]; then
    cat <<EOF
      - SERVER_STORAGE=postgres
      - SERVER_DATABASE_URL=postgresql://loteria@postgres:5432/loteria
      - SERVER_ID=$name
EOF
  else
    echo "      - SERVER_STORAGE_PATH=/var/lib/loteria/bets.csv"
  fi
  cat <<EOF
      # Off unless set in the shell: the Prometheus endpoint, published on the host's
      # loopback by docker-compose.metrics.yml (docs/docker.md).
      - SERVER_METRICS_PORT=\${SERVER_METRICS_PORT:-}
      - SERVER_AGENCY_KEYS=/run/keys/agencies.keys
EOF
  if [ "$tls" -eq 1 ]; then
    cat <<EOF
      - SERVER_TLS_CERT=/run/tls/server.crt
      - SERVER_TLS_KEY=/run/tls/server.key
EOF
  fi
  cat <<EOF
    volumes:
      - $base/server/config.ini:/app/server/config.ini:ro
EOF
  [ "$postgres" -eq 1 ] || echo "      - bets:/var/lib/loteria"
  echo "      - agency-keys:/run/keys:ro"
  [ "$tls" -eq 0 ] || echo "      - tls-server:/run/tls:ro"
  one_shot_deps
  if [ "$postgres" -eq 1 ]; then
    cat <<EOF
      postgres:
        condition: service_healthy
EOF
  fi
  cat <<EOF
    networks:
      - loteria_net
EOF
  [ "$postgres" -eq 0 ] || echo "      - db_net"
  cat <<EOF
    healthcheck:
      test: ["CMD", "node", "dist/tools/healthcheck.js"]
      interval: 2s
      timeout: 3s
      retries: 5
      start_period: 10s
    stop_grace_period: 10s
EOF
}

client_service() {
  local i=$1 name
  cat <<EOF

  client$i:
    build:
      context: $base
      target: client
    image: loteria-client:latest
    container_name: client$i
    environment:
      - CLI_ID=$i
      - CLI_SERVER_ADDRESS=$(address_list "$i")
      - CLI_DATA_FILE=/app/data/agency-$i.csv
      - CLI_BATCH_MAXAMOUNT=\${CLI_BATCH_MAXAMOUNT:-}
      - CLI_KEY_FILE=/run/keys/agency-$i.key
EOF
  [ "$tls" -eq 0 ] || echo "      - CLI_TLS_CA=/run/tls/ca.crt"
  cat <<EOF
    volumes:
      - $base/client/config.yaml:/app/client/config.yaml:ro
      - agency-data:/app/data:ro
      - agency-keys:/run/keys:ro
EOF
  [ "$tls" -eq 0 ] || echo "      - tls-ca:/run/tls:ro"
  cat <<EOF
    networks:
      - loteria_net
    # service_started, not service_healthy: a server that refuses its configuration then
    # shows its own error line in \`up\`'s output instead of "unhealthy". The client retries
    # connecting for server.connectTimeout while the server starts.
EOF
  one_shot_deps
  for name in "${names[@]}"; do
    cat <<EOF
      $name:
        condition: service_started
EOF
  done
  echo "    stop_grace_period: 10s"
}

footer() {
  cat <<EOF

networks:
  loteria_net:
    driver: bridge
EOF
  if [ "$postgres" -eq 1 ]; then
    cat <<EOF
  # The database's network: the servers and postgres only; internal, so no route out.
  db_net:
    driver: bridge
    internal: true
EOF
  fi
  cat <<EOF

volumes:
EOF
  [ "$postgres" -eq 1 ] && echo "  pgdata:" || echo "  bets:"
  echo "  agency-data:"
  echo "  agency-keys:"
  if [ "$tls" -eq 1 ]; then
    echo "  tls-server:"
    echo "  tls-ca:"
  fi
}

generate() {
  local name i
  header
  data_service
  [ "$tls" -eq 0 ] || tls_service
  [ "$postgres" -eq 0 ] || postgres_service
  for name in "${names[@]}"; do server_service "$name"; done
  for i in $(seq 1 "$n"); do client_service "$i"; done
  footer
}

if [ "$out" = - ]; then
  generate
else
  generate > "$out"
  what="${#names[@]} server(s)"
  [ "$postgres" -eq 0 ] || what="postgres + $what"
  [ "$tls" -eq 0 ] || what+=", TLS"
  echo "generar-compose: wrote $out ($what + $n clients)" >&2
fi
