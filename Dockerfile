# A small image of the dogpipe binary: build with the Rust toolchain, run on Debian slim.
FROM rust:1.85-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin dogpipe

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/dogpipe /usr/local/bin/dogpipe
ENTRYPOINT ["/usr/local/bin/dogpipe"]
CMD ["run"]
