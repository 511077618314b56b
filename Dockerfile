# syntax=docker/dockerfile:1
# tickwire: one image for every role (start, gateway, feed NAME, portfolio).
#   docker build -t tickwire:local .
#   docker run --rm -p 8080:8080 tickwire:local            # embedded: feeds + gateway
#   docker run --rm -e NATS_URL=... tickwire:local gateway  # one role of a scale-out
#
# Debian bookworm (glibc 2.36): the uWebSockets.js native binaries need a glibc they were built
# against or newer, and Alpine (musl) cannot load them at all. The build fails when the native
# binary does not load (check-uws), instead of starting with the slow pure-JS fallback.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# workspace packages (@tickwire/client, @tickwire/react): every manifest first, so that npm ci links
# them and installs their dependencies (`npm run build` builds each; test/ops/docker.test.ts)
COPY packages/client/package.json ./packages/client/package.json
COPY packages/react/package.json ./packages/react/package.json
COPY scripts/prepare-packages.mjs ./scripts/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY feeds ./feeds
COPY web ./web
COPY packages ./packages
COPY scripts/build-web.mjs scripts/check-runtime-deps.mjs scripts/build-package.mjs ./scripts/
# the runtime stage has production dependencies only: fail here, naming the package, when the
# CLI imports a devDependency at run time
RUN node scripts/check-runtime-deps.mjs
# compiled engine in dist/, dashboard bundle in dist/web/
RUN npm run build && node scripts/build-web.mjs
RUN npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TICKWIRE_LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# fail the build when the native uWS binary does not load, or when the CLI cannot load at all
RUN node dist/src/cli/main.js check-uws && node dist/src/cli/main.js config > /dev/null
# the node image's unprivileged user (uid 1000); nothing in /app is writable by it
USER node
EXPOSE 8080
# /health on the gateway port, or on TICKWIRE_OPS_PORT for processes without a gateway
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/src/ops/healthcheck.js"]
# SIGTERM: stop accepting, close clients with 1001, drain NATS, flush Redis writes, exit
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
