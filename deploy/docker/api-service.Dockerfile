# syntax=docker/dockerfile:1
#
# api-service image. Build from the repository root:
#   docker build -f deploy/docker/api-service.Dockerfile -t quire/api-service .
# Only shared/ and api-service/ enter the build (see api-service.Dockerfile.dockerignore); the
# module's `replace github.com/quirehq/quire/shared => ../shared` resolves inside /src, and
# go.work is not used (GOWORK=off), exactly as in a standalone `GOWORK=off go build`.

FROM golang:1.26 AS build
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false
WORKDIR /src
# Module files first, so the dependency download is cached until they change.
COPY shared/go.mod shared/go.sum ./shared/
COPY api-service/go.mod api-service/go.sum ./api-service/
WORKDIR /src/api-service
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY shared/ /src/shared/
COPY api-service/ /src/api-service/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/api-service ./cmd/api-service

# Static binary on distroless: no shell, no package manager, uid/gid 65532 (nonroot). There is
# no in-image HEALTHCHECK (nothing to run it with): Kubernetes probes /healthz and /readyz over
# HTTP, and compose relies on restart policies (see docker-compose.yml).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/api-service /api-service
USER nonroot:nonroot
# HTTP_ADDR (API, /healthz, /readyz, /metrics)
EXPOSE 8080
ENV HTTP_ADDR=:8080
ENTRYPOINT ["/api-service"]
