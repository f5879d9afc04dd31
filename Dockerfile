# alert-enricher container image.
#
#   docker build -t alert-enricher:0.1.0 .
#   docker run --rm -p 9095:9095 --read-only --tmpfs /tmp -v alert-enricher-data:/data alert-enricher:0.1.0
#
# Two stages: `build` compiles TypeScript and the better-sqlite3 native addon with the full
# toolchain; the runtime stage gets only dist/, production node_modules, the catalog and the
# runbooks. Both stages are Node 20 on Debian 12 (bookworm, glibc 2.36), so the addon compiled
# in `build` loads in the runtime (same Node ABI, same libc).

FROM node:20-bookworm-slim AS build

# better-sqlite3 downloads a prebuilt addon when it can and falls back to node-gyp (offline
# builders, a Node patch release without prebuilds): python3, make and g++ make the fallback work.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, so editing src/ does not re-run npm ci.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# The runtime has no shell to mkdir/chown with, so the data directory is made here and
# copied with its owner set.
RUN mkdir -p /out/data


# Runtime: distroless, so no shell, no package manager, nothing to exploit but node itself.
#
# PID 1: node runs as PID 1 here (distroless has no tini). The kernel delivers a signal to
# PID 1 only if it installed a handler; the service installs its own SIGTERM/SIGINT (graceful
# shutdown: stop accepting, finish in-flight sends) and SIGHUP (catalog reload) handlers
# (src/main.ts), so all three reach it. It spawns no child processes, so there are no zombies
# to reap and tini would add nothing; `docker run --init` still works if you prefer it.
FROM gcr.io/distroless/nodejs20-debian12:nonroot

LABEL org.opencontainers.image.title="alert-enricher" \
      org.opencontainers.image.description="Enriches Alertmanager webhooks with priority, SLA, escalation and runbooks; delivers to Slack and PagerDuty" \
      org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /app

# Paths are relative to /app: CATALOG_PATH defaults to rules/catalog.yaml and runbooks/ is
# served at /runbooks/. The only writable places the service needs are DATA_DIR (the SQLite
# store) and /tmp, so the root filesystem can be mounted read-only.
ENV NODE_ENV=production \
    PORT=9095 \
    HOST=0.0.0.0 \
    DATA_DIR=/data

# Application files stay owned by root: the service user can read them, not change them.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY rules ./rules
COPY runbooks ./runbooks
# PostgreSQL schema migrations (applied at start, or by `alert-enricher migrate`).
COPY migrations ./migrations
COPY --from=build --chown=10001:10001 /out/data /data

# A numeric uid (not the image's `nonroot` name) lets Kubernetes' runAsNonRoot verify it; 10001
# is what the Helm chart sets as runAsUser/fsGroup.
USER 10001:10001

VOLUME ["/data"]
EXPOSE 9095

# No curl or shell in distroless: node itself probes the liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||9095)+'/-/healthy').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The distroless entrypoint is node itself; no npm at runtime (it would sit between the
# signals and the service, and it writes a cache).
CMD ["dist/cli.js", "serve"]
