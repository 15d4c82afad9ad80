# Everything a fresh machine needs goes through these targets.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
AGENCIES ?= 5

.PHONY: all install build data keys certs run run-postgres test lint postgres clean

all: build

# Installs dependencies when missing or when package.json/package-lock.json changed.
$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES_STAMP)

# tsc compiles everything into dist/; the entry points are then bundled in place (tools/bundle.ts).
build: install
	npm run build

# Generates data/agency-N.csv for every agency that has no file yet (never overwrites).
data: build
	node dist/tools/gen-data.js --agencies $(AGENCIES) --out data

# Agency keys for every agency that has none yet (never overwrites): keys/agencies.keys for
# the server (SERVER_AGENCY_KEYS), keys/agency-N.key per client (CLI_KEY_FILE); mode 0600.
# `make run` makes them too when missing.
keys: build
	node dist/tools/gen-keys.js --agencies $(AGENCIES) --out keys

# A development CA and server certificate for the optional TLS (openssl), into certs/; kept if present.
certs:
	bash tools/make-certs.sh certs

# The server and its agencies' clients natively on 127.0.0.1, then a table of each agency's
# results. Every server setting comes from server/config.ini (and SERVER_*), except the
# listening address (127.0.0.1) and the bets file (run/bets.csv): see tools/run-local.ts.
# PORT= and AGENCIES= on the command line override SERVER_PORT and SERVER_AGENCIES.
# STORAGE=postgres SERVERS=N: a throwaway PostgreSQL cluster and N servers sharing it, the
# agencies spread over them (make run-postgres). Missing data files are generated first.
given = $(filter command line environment,$(origin $(1)))
run: build $(if $(filter postgres,$(STORAGE)),postgres)
	node dist/tools/run-local.js $(if $(call given,PORT),--port '$(PORT)') \
	  $(if $(call given,AGENCIES),--agencies '$(AGENCIES)') \
	  $(if $(call given,STORAGE),--storage '$(STORAGE)') $(if $(call given,SERVERS),--servers '$(SERVERS)')

# `make run` on PostgreSQL with two servers (SERVERS=N for another count).
run-postgres:
	@$(MAKE) --no-print-directory run STORAGE=postgres SERVERS=$(if $(call given,SERVERS),$(SERVERS),2)

# vitest's global setup builds dist/ (tsc + bundle) once; building here too would do it twice.
test: install postgres
	npx vitest run

# PostgreSQL's server binaries for the tests' throwaway clusters (apt-get when missing).
postgres:
	@bash tools/ensure-postgres.sh >/dev/null

# Biome (lint + format check) and tsc over every folder, tests included.
lint: install
	npm run --silent lint
	npm run --silent typecheck

clean:
	rm -rf dist bets.csv logs run

# ---------------------------------------------------------------- Docker (docs/docker.md)
# `docker compose` (v2) when it works, else `docker-compose` (v1); the project name is
# passed with -p because the compose file has no top-level `name:` (v1 does not know it).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_PROJECT ?= loteria
COMPOSE_YML ?= docker-compose.yml
STOP_TIMEOUT ?= 10
# SERVER_METRICS_PORT=N (in the environment or on the command line) turns the server's
# metrics endpoint on and publishes it on 127.0.0.1:N (docker-compose.metrics.yml).
DOCKER_COMPOSE = $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_YML) $(if $(SERVER_METRICS_PORT),-f docker-compose.metrics.yml)

.PHONY: docker-engine docker-image docker-image-postgres docker-compose-up docker-compose-down docker-compose-reset docker-compose-logs docker-compose-summary e2e-docker e2e-docker-postgres

# On a machine without a container registry, tools/docker/engine.sh starts Docker (with
# retries) and builds the base image; elsewhere the machine's own Docker is used as it is.
docker-engine:
	@bash tools/docker/engine.sh --engine-only

# Both images from the one multi-stage Dockerfile.
docker-image: docker-engine
	docker build --target server -t loteria-server:latest .
	docker build --target client -t loteria-client:latest .

# The `postgres` service's image (compose files from ./generar-compose.sh --postgres): built
# from Debian's postgresql-15 package (docker/postgres/Dockerfile), or POSTGRES_IMAGE=postgres:15
# (the official image, from a registry) pulled instead.
POSTGRES_IMAGE ?= loteria-postgres:15
docker-image-postgres: docker-engine
	$(if $(filter loteria-postgres:%,$(POSTGRES_IMAGE)),docker build -t $(POSTGRES_IMAGE) docker/postgres,docker pull $(POSTGRES_IMAGE))

# The compose file's servers: `server`, or server1..serverS (generar-compose.sh --servers S).
COMPOSE_SERVERS = $(shell sed -n 's/^  \(server[0-9]*\):$$/\1/p' $(COMPOSE_YML) 2>/dev/null)
COMPOSE_HAS_POSTGRES = $(shell grep -qx '  postgres:' $(COMPOSE_YML) 2>/dev/null && echo yes)

# Builds the images (PostgreSQL's too when the file has a postgres service), generates any
# missing data/agency-N.csv, starts everything detached, then waits for each server: healthy,
# or its own last lines (a refused config) and exit 1.
docker-compose-up: docker-image $(if $(COMPOSE_HAS_POSTGRES),docker-image-postgres) data
	$(DOCKER_COMPOSE) up -d
	@for s in $(or $(COMPOSE_SERVERS),server); do bash tools/docker/await-server.sh $$s || exit 1; done

# Stops with SIGTERM (SIGKILL after STOP_TIMEOUT s), then removes containers and network.
# The volumes (bets file, journal, draw) are kept: an `up` afterwards resumes the same draw
# and stores nothing twice. Losing them takes the deliberate `make docker-compose-reset`.
# The logs are saved after the stop (so they hold every shutdown) and before the removal.
docker-compose-down:
	$(DOCKER_COMPOSE) stop -t $(STOP_TIMEOUT)
	@mkdir -p run && f=run/compose-$$(date -u +%Y%m%d-%H%M%S).log && \
	  $(DOCKER_COMPOSE) logs --no-color > $$f 2>&1 && \
	  echo "saved every container's log in $$f (read it with: npm run inspect -- $$f)"
	$(DOCKER_COMPOSE) down

# Everything docker-compose-down does, and the volumes too: the stored bets, the journal and
# the draw are gone; the next `up` starts a new draw.
docker-compose-reset: docker-compose-down
	$(DOCKER_COMPOSE) down -v
	@echo "removed the volumes of project $(COMPOSE_PROJECT): the next up starts a new draw"

docker-compose-logs:
	$(DOCKER_COMPOSE) logs -f

# The log inspector (tools/inspect) over `logs`, with each container's state from Docker:
# per agency sent/stored/winners, the draw, every shutdown, the invariants; exit 1 on a FAIL.
docker-compose-summary: build
	@$(DOCKER_COMPOSE) logs --no-color 2>&1 | node dist/tools/inspect/main.js - $$(bash tools/docker/states.sh $(COMPOSE_PROJECT))

# The Docker end-to-end check (a full run, then the three SIGTERM drills); cleans up after itself.
e2e-docker: build
	bash e2e/docker/run.sh

# Two servers sharing PostgreSQL in Docker: a full run, then one server killed mid-run
# (e2e/docker/postgres.sh). Not beside e2e-docker: both use the containers data and clientN.
e2e-docker-postgres: build
	bash e2e/docker/postgres.sh
