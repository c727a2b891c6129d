# The one place build flags live. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/hostkey/hostkey-mcp/invapi.Version=$(VERSION) -X main.commit=$(COMMIT)
BIN := bin/hostkey-mcp
export CGO_ENABLED := 0

.PHONY: all build test gotest seeds-check e2e conformance gen check-gen docs walkthrough dist bench load bench-replicas fuzz lint staticcheck docker toolsizes static-check clean

all: build

## build: static, trimmed binary in bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hostkey-mcp

## test: Go tests with the race detector, then the independent TypeScript client and the conformance suite
test: gotest conformance e2e

## gotest: Go tests with the race detector (needs a C compiler: cgo)
gotest: seeds-check
	@command -v $${CC:-cc} >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || { echo "make gotest: -race needs a C compiler (apt-get install gcc, xcode-select --install); or run: go test ./..." >&2; exit 1; }
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# The catalog test walks the vendor docs: HOSTKEY_SEEDS_DIR, or shared/seeds beside the
# repository or above it. Without them the test is skipped; say so loudly (CI=true fails).
seeds-check:
	@if [ -n "$$HOSTKEY_SEEDS_DIR" ]; then d="$$HOSTKEY_SEEDS_DIR"; [ -d "$$d" ] || d=""; else \
	  d=""; p="$$(pwd)"; while [ "$$p" != "/" ]; do if [ -d "$$p/../shared/seeds" ]; then d="$$p/../shared/seeds"; break; fi; p="$$(dirname "$$p")"; done; fi; \
	if [ -z "$$d" ]; then \
	  echo "########################################################################" >&2; \
	  echo "# vendor docs (shared/seeds) NOT FOUND: TestEveryDocumentedActionHasATool" >&2; \
	  echo "# is SKIPPED. Set HOSTKEY_SEEDS_DIR or put shared/seeds beside the repo." >&2; \
	  echo "########################################################################" >&2; \
	  if [ "$$CI" = "true" ]; then exit 1; fi; \
	else echo "vendor docs: $$d (catalog seed test runs)"; fi

e2e/node_modules: e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund
	touch e2e/node_modules

## e2e: the official TypeScript SDK drives `hostkey-mcp --sandbox` over stdio
e2e: build e2e/node_modules
	cd e2e && node client.mjs ../$(BIN)

## conformance: the MCP conformance suite against the streamable HTTP endpoint
conformance: build e2e/node_modules
	cd e2e && node conformance.mjs ../$(BIN)

## gen: regenerate the catalog, tool schemas and typed parameters from schemas/tables
gen:
	$(GO) generate ./schemas/

## toolsizes: measure tools/list per toolset (bytes and ~tokens) through a real client
toolsizes: build
	./$(BIN) tools --sizes --sandbox --log-level error

## docs: regenerate docs/tools.md, the README's tool sizes and configuration reference (tests fail when stale)
docs:
	$(GO) test ./cmd/hostkey-mcp -run 'README|Docs' -count=1 -update

## walkthrough: rerun the README's sandbox walkthrough and rewrite it from the real output (~1 min)
walkthrough:
	$(GO) test ./cmd/hostkey-mcp -run 'TestREADMEWalkthrough' -count=1 -update

## dist: static binaries for linux/darwin/windows × amd64/arm64 and SHA256SUMS in dist/
DIST_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
dist:
	@rm -rf dist && mkdir -p dist
	@for t in $(DIST_TARGETS); do os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "build $$os/$$arch"; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/hostkey-mcp-$(VERSION)-$$os-$$arch$$ext ./cmd/hostkey-mcp || exit 1; \
	done
	cd dist && sha256sum hostkey-mcp-* > SHA256SUMS && cat SHA256SUMS

## bench: Go benchmarks, binary size, cold start to tools/list, tools/list sizes
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./invapi/ ./tools/ ./webhook/...
	$(GO) test -run '^$$' -bench . -benchtime 3s ./state/
	$(GO) test -run '^$$' -bench ToolCallState -benchtime 3s ./policy/
	@ls -l $(BIN) | awk '{printf "binary size: %.1f MiB\n", $$5/1048576}'
	$(GO) run ./cmd/hostkey-mcp/internal/coldstart ./$(BIN) 10
	@$(MAKE) --no-print-directory toolsizes

## load: webhook load test on loopback (bounded count and time)
load:
	$(GO) run ./webhook/cmd/loadtest -n 20000 -c 64 -timeout 120s

## bench-replicas: 3 replicas (receivers with their own pools) on one PostgreSQL, then `make load`'s single SQLite process, same load; starts a throwaway PostgreSQL when HOSTKEY_TEST_POSTGRES_URL is unset
bench-replicas:
	@set -e; if [ -z "$$HOSTKEY_TEST_POSTGRES_URL" ]; then eval "$$(.ci/postgres.sh start)"; trap '.ci/postgres.sh stop "$$HOSTKEY_TEST_POSTGRES_DIR"' EXIT; fi; \
	echo "== 3 replicas, one PostgreSQL"; \
	HOSTKEY_STORE="$$HOSTKEY_TEST_POSTGRES_URL" $(GO) run ./webhook/cmd/loadtest -store postgres -replicas 3 -n 10000 -c 64 -timeout 300s; \
	echo "== 1 process, SQLite (make load)"; \
	$(GO) run ./webhook/cmd/loadtest -n 10000 -c 64 -timeout 120s

## fuzz: short fuzzing runs of the form encoder and its name checks, the simulator's PHP form parser against php, the response decoder and webhook parser
# Counts, not durations: a run cut by -fuzztime Ns can end in "context deadline exceeded"
# while a worker is still busy (seen once in CI), which fails the build for nothing.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzEncodeForm$$' -fuzztime 150000x ./invapi/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestNames$$' -fuzztime 150000x ./invapi/
	$(GO) test -run '^$$' -fuzz '^FuzzPHPDifferential$$' -fuzztime 300x ./invapi/sim/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResponse$$' -fuzztime 20000x ./invapi/
	$(GO) test -run '^$$' -fuzz '^FuzzParseCallback$$' -fuzztime 150000x ./webhook/

## lint: gofmt, go vet, staticcheck (installed through the Go toolchain)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## static-check: the binary must be static (no dynamic loader)
static-check: build
	@if ldd $(BIN) 2>&1 | grep -q 'not a dynamic executable'; then echo "$(BIN): static"; else ldd $(BIN); echo "$(BIN) is dynamically linked"; exit 1; fi

## docker: build the image (needs a Docker engine)
docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t hostkey-mcp:$(VERSION) .

clean:
	rm -rf bin dist e2e/node_modules
