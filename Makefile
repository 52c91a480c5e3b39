# PanelX — the two commands a newcomer needs are `make run` and `make test`.
# Both bring up what they need through scripts/services.sh (`make run` only
# Docker; `make test` Docker and PostgreSQL), which does nothing when those
# already run.

GO        ?= go
PKG       := github.com/panelx/panelx
BIN       := bin/panelx
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION) \
             -X $(PKG)/internal/version.Commit=$(COMMIT) -X $(PKG)/internal/version.Date=$(DATE)
TEST_FLAGS ?= -race -count=1 -timeout 30m
# `eval "$(…)"` alone would hide a failure of the script; keep its status.
SERVICES  := services_env=$$(bash scripts/services.sh) && eval "$$services_env"

.PHONY: build test lint run bench fuzz clean image ui

## ui: build the dashboard's npm bundles (supabase-js, xterm.js) into web/ui/lib/, which the
##     binary embeds (web/build.sh: npm ci from web/package-lock.json, then esbuild; nothing
##     when they are up to date). Node.js is needed to build them, never to run PanelX.
ui:
	@bash web/build.sh

## build: compile bin/panelx (static, no cgo)
build: ui
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/panelx

## image: build the container image $(IMAGE):$(VERSION) (and :latest) from bin/panelx —
##        FROM scratch, nothing pulled (deploy/image/Dockerfile; the root Dockerfile
##        compiles the same binary in a first stage for machines that can pull golang)
IMAGE     ?= panelx/panelx
image: build
	bash scripts/image.sh $(BIN) $(IMAGE):$(VERSION) $(VERSION) $(COMMIT) && docker tag $(IMAGE):$(VERSION) $(IMAGE):latest

## test: lint, then every test (with the fuzz seed corpora) under the race detector
test: lint ui
	@$(SERVICES) && $(GO) test $(TEST_FLAGS) ./...

## lint: gofmt check and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

## run: start PanelX — the server on :8080 with its embedded database, and the
##      edge on :80/:443 — it needs only Docker (set PANELX_DATABASE_URL to use
##      PostgreSQL instead, PANELX_RUN_EDGE=false to run the server alone)
run: build
	@services_env=$$(bash scripts/services.sh --docker-only) && eval "$$services_env" && bash scripts/run.sh ./$(BIN)

## bench: the benchmarks whose numbers the issues ask for (takes a while). Teardown100
## compares with `docker compose down` when PANELX_BENCH_COMPOSE names a Compose v2 binary
## (build one from github.com/docker/compose's source in a temporary directory: go build ./cmd)
bench:
	@$(SERVICES) && \
	$(GO) test -run '^$$' -bench WatchLatency -benchtime 1000x ./store/postgres/ && \
	$(GO) test -run '^$$' -bench ServiceToReady -benchtime 20x ./controller/ && \
	$(GO) test -run '^$$' -bench 'FiftyServicesToReady|RepairAfterRemoval|IdleCPU' -benchtime 1x -timeout 30m ./controller/ && \
	$(GO) test -run '^$$' -bench 'GetService|CreateService' -benchtime 2000x ./apiserver/ && \
	$(GO) test -run '^$$' -bench ListThousandServices -benchtime 100x ./apiserver/ && \
	$(GO) test -run '^$$' -bench 'OpenSecret|SealSecret' -benchtime 20000x ./seal/ && \
	$(GO) test -run '^$$' -bench Scrape200 -benchtime 1000x ./metrics/containers/ && \
	{ command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }; } && \
	$(MAKE) build && $(GO) run ./bench/api -duration 20s -connections 16,64 -rounds 3 && \
	$(GO) test -run '^$$' -bench Resync200 -benchtime 20x -timeout 30m ./controller/ && \
	$(GO) test -run '^$$' -bench Teardown100 -benchtime 3x -timeout 40m ./controller/ && \
	$(GO) run ./bench/idle -n 200 -duration 60s -rounds 2 && \
	$(GO) run ./bench/collector -n 100 -duration 60s && $(GO) run ./bench/collector -n 200 -duration 60s && \
	$(GO) test -run '^$$' -bench 'Edge' -benchtime 1x -timeout 30m ./cmd/panelx/ && \
	$(GO) test -run '^$$' -bench RollbackVsForward -benchtime 10x -timeout 30m ./cmd/panelx/ && \
	$(GO) test -run '^$$' -bench 'BuildPushToServed|ComposeUploadToServed|Backup1GiB|Dashboard' -benchtime 1x -timeout 60m ./cmd/panelx/ && \
	$(GO) test -run '^$$' -bench FiftyServices -benchtime 2x -timeout 30m ./controller/swarmtest/

## fuzz: run the manifest decoder fuzzer for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseManifests -fuzztime $(FUZZTIME) ./api/

clean:
	rm -rf bin web/ui/lib web/node_modules
