# syntax=docker/dockerfile:1
#
# worker-service image. Build from the repository root:
#   docker build -f deploy/docker/worker-service.Dockerfile -t quire/worker-service .
# Only shared/ and worker-service/ enter the build (see worker-service.Dockerfile.dockerignore);
# the module's `replace github.com/quirehq/quire/shared => ../shared` resolves inside /src, and
# go.work is not used (GOWORK=off). PDFs are read with PDFium compiled to WebAssembly, in
# process, so the binary stays static (CGO_ENABLED=0). OCR of images and scanned PDF pages runs
# Tesseract and poppler's pdftoppm as sandboxed subprocesses, so the runtime image is Debian
# slim with tesseract-ocr, tesseract-ocr-eng and poppler-utils (add tesseract-ocr-<lang> for
# more OCR_LANGUAGES); OCR_ENGINE=tesseract makes the worker refuse to start without them.

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

# Debian 12 (the base of distroless static-debian12) with the OCR tools only, uid/gid 65532
# (nonroot) as in distroless. There is no in-image HEALTHCHECK: Kubernetes probes /healthz and
# /readyz on METRICS_ADDR over HTTP, and compose relies on restart policies (see
# docker-compose.yml).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng poppler-utils \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
COPY --from=build /out/worker-service /worker-service
USER nonroot:nonroot
ENV OCR_ENGINE=tesseract
# METRICS_ADDR (/metrics, /healthz, /readyz)
EXPOSE 9090
ENV METRICS_ADDR=:9090
ENTRYPOINT ["/worker-service"]
