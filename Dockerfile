# syntax=docker/dockerfile:1
# One image for both services: `helpdesk-api` (the default command) and `helpdesk-worker`
# (docker-compose.yml overrides the command). Build: docker build -t helpdesk:local .

# ---- Toolchain plus cargo-chef, shared by the planner and builder stages ----------------------
# We use the full (non-slim) image because it already ships gcc and make, which aws-lc-sys
# needs to compile its C code.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

# ---- Planner: reduce the workspace to a recipe (manifests + Cargo.lock) ----------------------
# The recipe only changes when dependencies change, so the cook layer below stays cached
# across ordinary source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- Builder ----------------------------------------------------------------------------------
FROM chef AS builder
# sqlx checks queries against the committed .sqlx/ data instead of a live database.
ENV SQLX_OFFLINE=true
COPY --from=planner /src/recipe.json recipe.json
# Build only the dependencies, using the same profile and binaries as the real build below.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        --bin helpdesk-api --bin helpdesk-worker
COPY . .
RUN cargo build --release --locked --bin helpdesk-api --bin helpdesk-worker

# ---- Runtime ----------------------------------------------------------------------------------
# Same Debian release as the builder, so the glibc the binaries link against is available.
FROM debian:bookworm-slim AS runtime
# ca-certificates: outgoing TLS (SMTP, HTTP). curl: used by the compose health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 helpdesk \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin helpdesk
COPY --from=builder /src/target/release/helpdesk-api /src/target/release/helpdesk-worker /usr/local/bin/
# Numeric UID so that orchestrators can check that the container doesn't run as root.
USER 10001:10001
# In a container the services have to listen on all interfaces, not just on loopback.
ENV HELPDESK_LISTEN=0.0.0.0:8080 \
    HELPDESK_WORKER_LISTEN=0.0.0.0:9090 \
    HELPDESK_LOG_FORMAT=json
# 8080: the API. 9090: the worker's health and metrics endpoint.
EXPOSE 8080 9090
CMD ["helpdesk-api"]
