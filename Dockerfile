# The CodexContinue server image.
#
#   docker build -t codexcontinue .                          CPU image (target runtime)
#   docker build --target cuda -t codexcontinue:cuda .       GPU nodes (NVIDIA driver R580+)
#   docker build --target prebuilt -t codexcontinue .        a binary built on the host
#                                                            (`make build`), no compile
#
# Every target has the same layout: the binary in /usr/local/bin, libtorch in
# /opt/libtorch/lib, the admin console (when admin-web/ exists) in
# /opt/codexcontinue/console, models in /opt/codexcontinue/models. It runs as uid/gid 10001
# and writes only to /tmp, so the root filesystem may be read-only. Base images are build
# arguments (e.g. a mirror of your registry); the runtime base needs a glibc at least as new
# as the binary's build (Debian 12: 2.36). scripts/image-test.sh builds `prebuilt` offline
# and runs it.
#
# Models are not built here (exporting them takes a 4.7 GB PyTorch). Bake prepared ones in
# with a named build context, `--build-context models=.dev/models` (`make models` prepares
# them), or mount a folder at /opt/codexcontinue/models. Without either the server runs
# without local models.

ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim

# The slim libtorch the binary links against, cut from the PyTorch wheel as `make libtorch`
# does.
FROM ${PYTHON_IMAGE} AS libtorch
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY scripts/libtorch.sh scripts/
RUN scripts/libtorch.sh && mv .dev/libtorch /opt/libtorch

# The release binary. LIBTORCH is the same path as in the runtime stages, so the run path
# build.rs records is right there too.
FROM ${RUST_IMAGE} AS build
ENV LIBTORCH=/opt/libtorch
COPY --from=libtorch /opt/libtorch /opt/libtorch
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo/
COPY proto proto/
COPY migrations migrations/
COPY server server/
COPY tests tests/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin codexcontinue \
    && install -D target/release/codexcontinue /out/codexcontinue

# The admin console's static files when admin-web/ is in the context, else an empty folder.
# (Cargo.toml is listed only so that the COPY is valid without admin-web/.)
FROM ${NODE_IMAGE} AS console
WORKDIR /src
# The console's API clients are generated from the protos at build time.
COPY proto proto/
COPY Cargo.toml admin-we[b] admin-web/
RUN if [ -f admin-web/package.json ]; then \
      npm --prefix admin-web ci --no-audit --no-fund && npm --prefix admin-web run build; \
    else \
      mkdir -p admin-web/dist; \
    fi

# The full PyTorch libraries (libtorch_cuda.so and the CUDA 13 runtime from NVIDIA's
# wheels) of the version scripts/libtorch.sh pins. They keep the wheel's relative layout
# (torch/lib next to nvidia/*/lib), which the libraries' own run paths expect.
FROM ${PYTHON_IMAGE} AS cuda-libs
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY scripts/libtorch.sh /tmp/
RUN torch="$(sed -n 's/^torch=//p' /tmp/libtorch.sh)" \
    && pip install --quiet --target /wheel "torch==${torch}" \
    && mkdir -p /opt/libtorch/lib \
    && cp -a /wheel/torch/lib/*.so* /opt/libtorch/lib/ \
    && rm /opt/libtorch/lib/libtorch_python.so /opt/libtorch/lib/libshm.so \
    && cp -a /wheel/nvidia /opt/nvidia \
    && find /opt/nvidia \( -name include -o -name '*.a' -o -name '__pycache__' -o -name '*.py' \) \
         -prune -exec rm -rf {} + \
    && rm -rf /wheel

# Models baked into the image: empty unless a build context named `models` replaces it.
FROM scratch AS models

# What every target shares: the system libraries libtorch needs, the user, the folders and
# the settings.
FROM ${RUNTIME_IMAGE} AS base
# Packages come from the base's own release, which keeps them current; pins would go stale
# with its security updates. A base that already has them (an offline build) needs no
# network here.
# hadolint ignore=DL3008
RUN set -eu; \
    set --; \
    for package in ca-certificates libstdc++6; do \
      status="$(dpkg-query -W -f '${db:Status-Status}' "$package" 2>/dev/null || true)"; \
      [ "$status" = installed ] || set -- "$@" "$package"; \
    done; \
    if [ "$#" -gt 0 ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends "$@" \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 codexcontinue; \
    useradd --system --uid 10001 --gid codexcontinue --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin codexcontinue
COPY --from=models / /opt/codexcontinue/models/
WORKDIR /opt/codexcontinue
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    CODEXCONTINUE_SERVER__LISTEN=0.0.0.0:50051 \
    CODEXCONTINUE_TELEMETRY__LOG_FORMAT=json \
    CODEXCONTINUE_INFERENCE__MODELS_DIR=/opt/codexcontinue/models
LABEL org.opencontainers.image.title="codexcontinue" \
      org.opencontainers.image.description="Self-hosted, multi-tenant AI assistant server" \
      org.opencontainers.image.licenses="Apache-2.0"
# Scratch space (fetched tenant models); everything else may be read-only.
VOLUME ["/tmp"]
EXPOSE 50051
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/codexcontinue"]
CMD ["serve"]

# GPU nodes: the CPU image plus the CUDA libraries. The NVIDIA container toolkit mounts the
# driver (R580 or newer for CUDA 13); the server loads libtorch_cuda.so at start and uses
# the GPU when one is visible.
FROM base AS cuda
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=cuda-libs /opt/nvidia /opt/nvidia
COPY --from=cuda-libs /opt/libtorch/lib /opt/libtorch/lib
COPY --from=console /src/admin-web/dist /opt/codexcontinue/console
COPY --from=build /out/codexcontinue /usr/local/bin/codexcontinue

# The console the host built (admin-web/dist), or an empty folder.
# (Cargo.toml is listed only so that the COPY is valid without admin-web/dist.)
FROM ${RUNTIME_IMAGE} AS console-prebuilt
COPY Cargo.toml admin-web/dis[t] /console/
RUN rm /console/Cargo.toml

# The binary and libtorch the host built (`make build`), without compiling anything.
# BINARY must be inside the context: .dockerignore lets in target/<profile>/codexcontinue.
FROM base AS prebuilt
ARG BINARY=target/release/codexcontinue
COPY .dev/libtorch/lib /opt/libtorch/lib
COPY --from=console-prebuilt /console /opt/codexcontinue/console
COPY ${BINARY} /usr/local/bin/codexcontinue

# The CPU image, built from source (the default target).
FROM base AS runtime
COPY --from=libtorch /opt/libtorch/lib /opt/libtorch/lib
COPY --from=console /src/admin-web/dist /opt/codexcontinue/console
COPY --from=build /out/codexcontinue /usr/local/bin/codexcontinue
