# One Dockerfile, two images: `--target server` and `--target client`.
# Both run the same compiled tree (dist/ shares the protocol, model and logging code), so
# a single build stage compiles once and both targets reuse it from the cache.
# Works with BuildKit and with the legacy builder (Docker 20.10 without buildx).
ARG NODE_IMAGE=node:20-bookworm-slim

# Stage 1: every dependency (typescript, esbuild included) and the compiled dist/, built
# the way `make build` does it: tsc, then the entry points bundled in place (tools/bundle.ts).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY server ./server
COPY client ./client
COPY tools ./tools
RUN npm run build
# The client starts from its start-up snapshot (Dockerfile's client stage): a build that could
# not write it fails here, not in the containers.
RUN test -f dist/client/client.blob

# Stage 2: production dependencies only (piscina, pino, csv-parse, js-yaml, ini).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 3: what both images run. package.json is needed at run time: it says "type": "module".
# /var/lib/loteria and /app/data are created owned by `node` so that a fresh named volume
# mounted there inherits that ownership: the unprivileged server writes its bets file in
# the first, compose's one-shot `data` service writes the agencies' files in the second.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
RUN mkdir -p /var/lib/loteria /app/data /app/keys && chown node:node /var/lib/loteria /app/data /app/keys && chmod 700 /app/keys
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node

FROM runtime AS client
# Reads /app/client/config.yaml (mounted by compose) and CLI_* variables. Starts from the
# client's start-up snapshot, which Node refuses under other V8 flags (exit 14): give it none,
# on this line or in NODE_OPTIONS. For stack traces with .ts lines, run
# `node --enable-source-maps dist/client/main.cjs` instead (docs/benchmarks.md).
# --no-concurrent-recompilation: CLIENT_NODE_FLAGS in tools/lib/processes.ts says why.
CMD ["node", "--no-concurrent-recompilation", "--snapshot-blob", "dist/client/client.blob"]

FROM runtime AS server
# Reads /app/server/config.ini (mounted by compose) and SERVER_* variables.
ENV SERVER_STORAGE_PATH=/var/lib/loteria/bets.csv
EXPOSE 12345
HEALTHCHECK --interval=2s --timeout=3s --start-period=10s --retries=5 \
  CMD ["node", "dist/tools/healthcheck.js"]
CMD ["node", "--enable-source-maps", "dist/server/main.cjs"]
