# syntax=docker/dockerfile:1
# `sota-bot serve` in a small image: a distroless runtime (glibc, libssl, CA certificates,
# no shell) running as a non-root user, the database on a volume, and a health check that
# asks the running service for /healthz.
#
#   docker build -t sota-bot .
#   docker run -d --name sota-bot -p 127.0.0.1:3000:3000 -v sota-bot-data:/var/lib/sota-bot \
#     -v /etc/sota-bot:/etc/sota-bot:ro -e SOTA_BOT_CONFIG=/etc/sota-bot/sota-bot.yml \
#     -e SOTA_BOT_PRIVATE_KEY_PATH=/etc/sota-bot/sota-bot.private-key.pem sota-bot

FROM rust:1.95-slim-bookworm AS build
# libgit2 links the system OpenSSL; everything else builds from vendored C sources.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sota-bot \
    && install -D -m 0755 target/release/sota-bot /out/usr/local/bin/sota-bot \
    && install -d -m 0700 /out/var/lib/sota-bot

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/sota-bot /usr/local/bin/sota-bot
# The database directory belongs to the image's non-root user (uid 65532).
COPY --from=build --chown=65532:65532 /out/var/lib/sota-bot /var/lib/sota-bot
ENV SOTA_BOT_LISTEN=0.0.0.0:3000 \
    SOTA_BOT_DATABASE=/var/lib/sota-bot/sota-bot.sqlite \
    SOTA_BOT_LOG_FORMAT=json
USER 65532:65532
VOLUME ["/var/lib/sota-bot"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/sota-bot", "healthz"]
ENTRYPOINT ["/usr/local/bin/sota-bot"]
CMD ["serve"]
