# Quire — build, run and test every module of the go.work.
.DEFAULT_GOAL := help
GO       ?= go
MODULES  := shared api-service worker-service tools e2e
# A folder of documents with reference texts for `make corpus` and the PDF figure of `make bench`.
CORPUS   ?=
# Test flags; CI adds nothing, `make test TESTFLAGS=-race` for the race detector.
TESTFLAGS ?=
# How many inputs `make fuzz` runs through each fuzz target. Counts, not durations: a duration
# (-fuzztime 10s) can end a clean run with a spurious "context deadline exceeded" (a race in
# Go's fuzzing coordinator, golang/go#75804).
FUZZ_DECODE ?= 300000x
FUZZ_UPLOAD ?= 4000x

.PHONY: help build run test test-short test-tools fuzz fmt lint bench bench-quick corpus clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## Build bin/api-service, bin/worker-service and bin/quire-dev
	$(GO) build -o bin/ ./api-service/cmd/api-service ./worker-service/cmd/worker-service ./tools/cmd/quire-dev

run: build ## Run NATS, PostgreSQL, the API and a worker locally (data in .data/); Ctrl-C stops all
	./bin/quire-dev -data .data -bin bin

test: test-tools ## Run every test against real NATS and PostgreSQL (a throwaway cluster unless DATABASE_URL is set)
	@set -e; export PATH="$$($(GO) env GOPATH)/bin:$$PATH"; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -count=1 -timeout 15m $(TESTFLAGS) ./...); done

test-short: test-tools ## The fast tests only (-short: the slow end-to-end tests are left out), under two minutes
	@set -e; export PATH="$$($(GO) env GOPATH)/bin:$$PATH"; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -short -count=1 -timeout 5m $(TESTFLAGS) ./...); done

test-tools: ## Install what the tests need beyond Go and PostgreSQL (poppler-utils, Tesseract, Chromium, the nats CLI) where it can
	@bash tools/test-tools.sh

fuzz: ## Run the fuzz targets (FUZZ_DECODE / FUZZ_UPLOAD inputs): job.Decode and the upload handler on real NATS and PostgreSQL
	cd shared && $(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_DECODE) ./job/
	cd api-service && $(GO) test -run '^$$' -fuzz '^FuzzUpload$$' -fuzztime $(FUZZ_UPLOAD) ./internal/api/

fmt: ## gofmt every module
	@for m in $(MODULES); do (cd $$m && $(GO) fmt ./...); done

lint: ## go vet every module and check formatting
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@test -z "$$(gofmt -l $(MODULES))" || { echo "gofmt needed:"; gofmt -l $(MODULES); exit 1; }

bench: build ## Benchmarks beside raw JetStream in one run (a few minutes); table in worker-service/bench/results/latest.md
	$(GO) run ./worker-service/bench -bin bin -corpus "$(CORPUS)" -out worker-service/bench/results/latest.md

bench-quick: build ## One-minute subset of make bench (smaller N); table in worker-service/bench/results/quick.md
	$(GO) run ./worker-service/bench -quick -bin bin -corpus "$(CORPUS)" -out worker-service/bench/results/quick.md

corpus: ## Extraction quality and speed over a corpus folder: make corpus CORPUS=<dir>
	@test -n "$(CORPUS)" || { echo "make corpus CORPUS=<dir>: a folder with pdf/, docx/, html/, txt/, ref/ and MANIFEST.tsv"; exit 2; }
	$(GO) run ./worker-service/cmd/corpus -dir $(CORPUS)

clean: ## Remove build output and local data
	rm -rf bin .data
