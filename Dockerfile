# flashslide image: the CLI, the worker and the review server.
#
# Stage 1 builds in the CUDA development image (nvcc and cuBLAS: the engine's GPU backend is
# built where both exist). The build runs the same commands as `npm start`, `npm test` and CI:
# scripts/system-packages.mjs installs the system packages, scripts/ensure-ready.mjs installs the
# node packages (npm ci) and builds the addon, TypeScript and the browser app.
# Stage 2 is the CUDA runtime image with the runtime libraries only.
ARG CUDA_VERSION=13.0.0
ARG UBUNTU=ubuntu24.04
ARG NODE_MAJOR=20

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
ARG NODE_MAJOR
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
 && apt-get install -y -qq --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# FLASHSLIDE_CUDA=1: a toolkit the build cannot use fails the image, not a CPU-only one quietly.
RUN node scripts/system-packages.mjs ensure --for start \
 && FLASHSLIDE_CUDA=1 node scripts/ensure-ready.mjs --for start \
 && npm prune --omit=dev

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU} AS runtime
ARG NODE_MAJOR
ENV DEBIAN_FRONTEND=noninteractive NODE_ENV=production
# The run-time libraries come from the same list as the build's packages (system-packages.mjs runtime).
COPY scripts/system-packages.mjs /tmp/system-packages.mjs
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
 && apt-get install -y -qq --no-install-recommends nodejs \
 && apt-get install -y -qq --no-install-recommends $(node /tmp/system-packages.mjs runtime) \
 && rm -rf /var/lib/apt/lists/* /tmp/system-packages.mjs
WORKDIR /app
COPY --from=build /app /app
# Not root: a worker reads slides and writes results, nothing else.
RUN useradd --system --uid 10001 flashslide && mkdir -p /data && chown flashslide /data
USER flashslide
ENTRYPOINT []
CMD ["node", "bin/flashslide.js", "--help"]
