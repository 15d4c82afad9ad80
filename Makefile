# Everything a fresh machine needs goes through these targets.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
AGENCIES ?= 5
PORT ?= 12345

.PHONY: all install build data run test clean

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

# Server and five agency clients natively on 127.0.0.1, then a table of each agency's results.
run: data
	node dist/tools/run-local.js --agencies $(AGENCIES) --port $(PORT)

test: build
	npx vitest run

clean:
	rm -rf dist bets.csv logs
