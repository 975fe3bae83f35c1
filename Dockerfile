# SPDX-License-Identifier: Apache-2.0
# ocra itself as a container image: `docker build -t ocra .`
# The build stage compiles ocra and ocra-agent from this tree with the Debian packages
# scripts/install-deps names; the runtime stage has only the shared libraries ocra links and
# runs as an unprivileged user. Run it with the Docker socket, the configuration and a state
# volume mounted, e.g.:
#   install -d -m 0755 -o 65532 -g 65532 /run/ocra
#   docker run -d --name ocra --network host --user 65532:$(stat -c %g /var/run/docker.sock) \
#     -v /var/run/docker.sock:/var/run/docker.sock -v /etc/ocra:/etc/ocra:ro \
#     -v /run/ocra:/run/ocra -v ocra-state:/var/lib/ocra ocra -c /etc/ocra/ocra.yaml daemon
# /run/ocra is agent.socket_dir: each run's agent socket directory is made there and the
# engine mounts it into the workload, so the path must be the same on the host and in here.
ARG DEBIAN=debian:bookworm-slim

FROM ${DEBIAN} AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc cmake ninja-build pkg-config libc6-dev \
        libjansson-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev nettle-dev libyaml-dev \
        libsecp256k1-dev libwebsockets-dev libarchive-dev zlib1g-dev libmicrohttpd-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake --preset release -B /build -DCMAKE_INSTALL_PREFIX=/usr \
        -DOCRA_DATA_DIR=/usr/share/ocra/data >/dev/null \
    && cmake --build /build --target ocra ocra-agent \
    && DESTDIR=/out cmake --install /build

FROM ${DEBIAN}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libjansson4 libcurl4 libsqlite3-0 libssl3 libnettle8 libyaml-0-2 \
        libsecp256k1-1 libwebsockets17 libarchive13 zlib1g libmicrohttpd12 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -m 0700 -o 65532 -g 65532 /var/lib/ocra \
    && install -d -m 0755 -o 65532 -g 65532 /run/ocra
COPY --from=build /out/ /
USER 65532:65532
WORKDIR /var/lib/ocra
ENTRYPOINT ["/usr/bin/ocra"]
CMD ["--help"]
