# syntax=docker/dockerfile:1
#
# worker-service image. Build from the repository root:
#   docker build -f deploy/docker/worker-service.Dockerfile -t quire/worker-service .
# Only shared/ and worker-service/ enter the build (see worker-service.Dockerfile.dockerignore);
# the module's `replace github.com/quirehq/quire/shared => ../shared` resolves inside /src, and
# go.work is not used (GOWORK=off). PDFs are read with PDFium compiled to WebAssembly, in
# process, so the binary stays static (CGO_ENABLED=0) and needs no system libraries.

FROM golang:1.26 AS build
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false
WORKDIR /src
# Module files first, so the dependency download is cached until they change.
COPY shared/go.mod shared/go.sum ./shared/
COPY worker-service/go.mod worker-service/go.sum ./worker-service/
WORKDIR /src/worker-service
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY shared/ /src/shared/
COPY worker-service/ /src/worker-service/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/worker-service ./cmd/worker-service

# Static binary on distroless: no shell, no package manager, uid/gid 65532 (nonroot). There is
# no in-image HEALTHCHECK (nothing to run it with): Kubernetes probes /healthz and /readyz on
# METRICS_ADDR over HTTP, and compose relies on restart policies (see docker-compose.yml).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker-service /worker-service
USER nonroot:nonroot
# METRICS_ADDR (/metrics, /healthz, /readyz)
EXPOSE 9090
ENV METRICS_ADDR=:9090
ENTRYPOINT ["/worker-service"]
