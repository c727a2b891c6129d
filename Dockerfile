# syntax=docker/dockerfile:1
# Build stage: the same `make build` as everywhere else (static, -trimpath, ldflags).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN make build VERSION=${VERSION} COMMIT=${COMMIT}

# Final stage: distroless static (CA certificates and tzdata included), non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/hostkey-mcp /usr/local/bin/hostkey-mcp
USER nonroot:nonroot
# Documented variables (pass with -e): HOSTKEY_API_KEY (secret), HOSTKEY_PIN (secret),
# HOSTKEY_TOOLSETS, HOSTKEY_READ_ONLY, HOSTKEY_HTTP, HOSTKEY_HTTP_TOKEN, HOSTKEY_PUBLIC_URL,
# HOSTKEY_WEBHOOK_LISTEN, HOSTKEY_DATA_DIR, HOSTKEY_AUDIT_LOG. See README "Configuration".
ENV HOSTKEY_DATA_DIR=/home/nonroot/.local/state/hostkey-mcp
# stdio by default (docker run -i --rm hostkey-mcp). In HTTP mode (HOSTKEY_HTTP=0.0.0.0:8080
# or the argument --http 0.0.0.0:8080) the server records its listener in HOSTKEY_DATA_DIR
# and the healthcheck asks that listener's /healthz; in stdio mode there is nothing to probe.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
  CMD ["/usr/local/bin/hostkey-mcp", "doctor", "--healthz"]
ENTRYPOINT ["hostkey-mcp"]
