# The one place build flags live. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/hostkey/hostkey-mcp/invapi.Version=$(VERSION) -X main.commit=$(COMMIT)
BIN := bin/hostkey-mcp
export CGO_ENABLED := 0

.PHONY: all build test gotest e2e conformance gen check-gen bench load fuzz lint staticcheck docker toolsizes static-check clean

all: build

## build: static, trimmed binary in bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hostkey-mcp

## test: Go tests with the race detector, then the independent TypeScript client and the conformance suite
test: gotest conformance e2e

gotest:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

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

## bench: Go benchmarks, binary size, cold start to tools/list, tools/list sizes
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./invapi/ ./tools/ ./webhook/...
	$(GO) test -run '^$$' -bench . -benchtime 3s ./state/
	@ls -l $(BIN) | awk '{printf "binary size: %.1f MiB\n", $$5/1048576}'
	$(GO) run ./cmd/hostkey-mcp/internal/coldstart ./$(BIN) 10
	@$(MAKE) --no-print-directory toolsizes

## load: webhook load test on loopback (bounded count and time)
load:
	$(GO) run ./webhook/cmd/loadtest -n 20000 -c 64 -timeout 120s

## fuzz: short fuzzing runs of the form encoder, response decoder and webhook parser
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzEncodeForm$$' -fuzztime 15s ./invapi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResponse$$' -fuzztime 15s ./invapi/
	$(GO) test -run '^$$' -fuzz '^FuzzParseCallback$$' -fuzztime 15s ./webhook/

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
	rm -rf bin e2e/node_modules
