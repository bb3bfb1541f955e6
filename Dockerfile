# syntax=docker/dockerfile:1
#
# One multi-stage build, two images:
#
#   docker build --target operator -t "$REGISTRY/operator:$TAG" .   # ahlt-operator run
#   docker build --target app      -t "$REGISTRY/app:$TAG" .        # ahlt serve | migrate | graph resync
#
# Dependencies are compiled in their own layer (cargo-chef recipe: only Cargo.toml/Cargo.lock
# changes rebuild it); sources come after. Runtime images are distroless (glibc, CA
# certificates, no shell, no package manager) and run as the non-root user 10001, the same
# uid the operator's pods (runAsUser) and the chart use. `tests/tests/it/consistency.rs` checks
# that binaries, subcommands, ports and the uid here agree with the chart and the operator.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

# --- toolchain + cargo-chef -------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# --- dependency recipe (changes only when manifests or the lock file change) ------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- build: dependencies first (cached layer), then the workspace -----------------------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        --package ahlt --package ahlt-operator
# Only what the two binaries are compiled from. Templates, the stylesheet and the migrations
# are embedded at compile time (askama, include_str!, sqlx::migrate!): the runtime image
# needs no files besides the binary.
COPY Cargo.toml Cargo.lock ./
COPY app ./app
COPY operator ./operator
COPY tests ./tests
COPY migrations ./migrations
COPY crds ./crds
RUN cargo build --release --locked --package ahlt --bin ahlt --package ahlt-operator --bin ahlt-operator \
    && install -D -m 0755 target/release/ahlt /out/ahlt \
    && install -D -m 0755 target/release/ahlt-operator /out/ahlt-operator

# --- runtime base: glibc + CA certificates, no shell -----------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# Numeric, so the kubelet can verify runAsNonRoot without /etc/passwd.
USER 10001:10001
WORKDIR /tmp

# --- the operator image -----------------------------------------------------------------------
FROM runtime AS operator
COPY --from=builder /out/ahlt-operator /usr/local/bin/ahlt-operator
ENV RUST_LOG=info,kube=warn
# /metrics, /healthz, /readyz (HTTP_ADDR, default 0.0.0.0:8080)
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ahlt-operator"]
CMD ["run"]

# --- the app image (last: the default target) -------------------------------------------------
FROM runtime AS app
COPY --from=builder /out/ahlt /usr/local/bin/ahlt
ENV LOG_FORMAT=json PORT=8080
# The operator's Deployment runs `serve`; its Jobs run `migrate` and `graph resync` (args only,
# no command: the entrypoint is the binary).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ahlt"]
CMD ["serve"]
