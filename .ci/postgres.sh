#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the state tests (HOSTKEY_TEST_POSTGRES_URL).
#
#   source .ci/postgres.sh          # CI: start, export the URL, stop when the shell exits
#   eval "$(.ci/postgres.sh start)"  # by hand: prints the exports (URL and cluster dir)
#   .ci/postgres.sh stop "$HOSTKEY_TEST_POSTGRES_DIR"
#
# Installs postgresql from Debian when missing. PostgreSQL refuses to run as root, so as
# root the cluster belongs to the postgres user (runuser); it listens on 127.0.0.1 only,
# on a free port, with its socket in the cluster dir, and trusts local connections.

hk_pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

hk_pg_as() { # run as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

hk_pg_start() {
  local bin dir port i
  if ! bin=$(hk_pg_bindir); then
    if [ "$(id -u)" != 0 ]; then echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
    bin=$(hk_pg_bindir) || { echo "postgres.sh: initdb not found after installing postgresql" >&2; return 1; }
  fi
  dir=$(mktemp -d /tmp/hostkey-pg.XXXXXX) || return 1
  chmod 0755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  hk_pg_as "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  for i in 1 2 3 4 5 6 7 8; do
    port=$(( (RANDOM % 20000) + 30000 ))
    if hk_pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null 2>&1; then
      hk_pg_as "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres hostkey_test || return 1
      echo "export HOSTKEY_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/hostkey_test?sslmode=disable'"
      echo "export HOSTKEY_TEST_POSTGRES_DIR='$dir'"
      return 0
    fi
  done
  cat "$dir/server.log" >&2
  return 1
}

hk_pg_stop() {
  local bin dir=$1
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  bin=$(hk_pg_bindir) || return 0
  hk_pg_as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start now, stop when the sourcing shell exits.
  _hk_pg_env=$(hk_pg_start) || { echo "postgres.sh: could not start PostgreSQL" >&2; return 1; }
  eval "$_hk_pg_env"
  trap 'hk_pg_stop "$HOSTKEY_TEST_POSTGRES_DIR"' EXIT
  echo "postgres.sh: PostgreSQL for the tests on ${HOSTKEY_TEST_POSTGRES_URL%%/hostkey_test*}" >&2
else
  set -euo pipefail
  case "${1:-}" in
    start) hk_pg_start ;;
    stop) hk_pg_stop "${2:-${HOSTKEY_TEST_POSTGRES_DIR:-}}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
  esac
fi
