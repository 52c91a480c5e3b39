# PanelX from source, for machines that can pull golang:1.26. The first stage
# only compiles the binary and lays out the image's files, as `make image`
# does on the host; the second is deploy/image/Dockerfile, line for line.
#   docker build -t panelx/panelx .
# Run it as the README says (docker run … panelx/panelx).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN make build VERSION="${VERSION}" COMMIT="${REVISION}" && \
    bash scripts/image.sh --layout /out bin/panelx

FROM scratch
# The static binary, CA certificates, and a passwd/group naming the user.
COPY --from=build /out/rootfs/ /
# The data directory, owned by the user: a named volume mounted here starts
# with this ownership (the embedded store, the edge's state and tokens).
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/panelx/
ENV PANELX_LISTEN=:8080 PANELX_DATA_DIR=/var/lib/panelx PANELX_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/panelx"]
# Not root. It still drives the host's Docker, so give it the socket's group:
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" …
# (the socket is root:docker 0660 on Debian; access to it is root on the
# host either way: keep the API private or behind the edge).
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/panelx", "health"]
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="PanelX" \
      org.opencontainers.image.description="A self-hosted PaaS control plane for Docker" \
      org.opencontainers.image.source="https://github.com/panelx/panelx" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENTRYPOINT ["/usr/local/bin/panelx"]
CMD ["server"]
