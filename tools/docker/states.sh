#!/usr/bin/env bash
# Prints the log inspector's flags for every container of Compose project $1, as Docker
# knows them: `--running NAME` or `--exit NAME=CODE` (make docker-compose-summary).
set -euo pipefail
project=${1:?usage: states.sh PROJECT}
docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.ID}}' |
  while read -r id; do
    docker inspect -f '{{.Name}} {{.State.Status}} {{.State.ExitCode}}' "$id"
  done |
  while read -r name status code; do
    if [ "$status" = running ]; then echo "--running ${name#/}"; else echo "--exit ${name#/}=$code"; fi
  done
