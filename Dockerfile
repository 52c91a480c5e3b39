# PanelX in a container. Build: docker build -t panelx .
# Run (it drives the host's Docker, so it needs the socket — which is root on
# the host; treat access to this container accordingly):
#   docker run -d --name panelx -p 8080:8080 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -e PANELX_DATABASE_URL=postgres://… panelx
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/panelx/panelx/internal/version.Version=${VERSION}" \
      -o /out/panelx ./cmd/panelx

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/panelx /usr/local/bin/panelx
ENV PANELX_LISTEN=:8080 PANELX_LOG_FORMAT=json
EXPOSE 8080
# Root in the container: the Docker socket it talks to is root-owned.
USER 0:0
ENTRYPOINT ["/usr/local/bin/panelx"]
CMD ["server"]
