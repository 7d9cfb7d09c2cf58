# syntax=docker/dockerfile:1
# One image for both sides: `qbasis controller` (the default) and `qbasis sidecar` (what the webhook
# injects: args ["sidecar"]). Node 24 runs the TypeScript directly (type stripping): no build step but
# the console's page bundle, so the image holds the sources, package.json, production dependencies and
# that bundle.
# The tests build it with buildah on a local Node 24 base passed as both build args (test/cluster/images.ts);
# the defaults below are the public images.

ARG NODE_BUILD_IMAGE=node:24-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${NODE_BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; no install scripts (none of them needs one at run time).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# The console's page (controller/console/page/, Preact + uPlot) bundled by esbuild: devDependencies
# are needed here only; the runtime image gets the two files it serves.
FROM ${NODE_BUILD_IMAGE} AS console-page
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY proto ./proto
COPY cli ./cli
COPY controller ./controller
RUN node controller/console/build-page.ts

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY cli ./cli
COPY proto ./proto
COPY controller ./controller
COPY --from=console-page /app/controller/console/page/dist ./controller/console/page/dist
COPY sidecar ./sidecar
# distroless :nonroot is uid 65532, the chart's default runAsUser; the root filesystem is mounted read-only.
USER 65532:65532
ENV NODE_ENV=production
EXPOSE 15010 15014 9443 8080 15001 15006 15020
# --max-semi-space-size=4: a third less RSS for the sidecar at no throughput cost (shared/ANCHORS.md).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "bin/qbasis.ts"]
CMD ["controller"]
