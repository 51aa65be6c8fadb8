#!/usr/bin/env bash
# Build / start / stop a local FerretDB v1.24.2 (MongoDB wire protocol, SQLite backend)
# for integration tests. The Go program lives in test/ferretdb/.
#
#   scripts/ferretdb.sh build          build (cached) and print the binary path
#   scripts/ferretdb.sh start [port]   start in the background (default port 27018) with a
#                                      fresh temp data dir; prints mongodb://127.0.0.1:<port>/
#   scripts/ferretdb.sh stop [port]    stop it (idempotent)
#   scripts/ferretdb.sh status [port]  exit 0 if running (prints the URI), 1 otherwise
#
# The binary is cached outside the repo, keyed by a hash of go.mod + go.sum + main.go:
#   ${NOCHAT_FERRETDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nochat/ferretdb}/ferretdb-<hash>
# The first build needs Go >= 1.24 and the Go module proxy and takes a minute or two;
# later builds and starts are instant. go.sum is committed and the build runs with
# -mod=readonly, so it is reproducible (it fails rather than silently changing deps).
#
# Run-time files (per port) in ${TMPDIR:-/tmp}:
#   nochat-ferretdb-<port>.pid   pid of the server
#   nochat-ferretdb-<port>.uri   written by the server once it listens
#   nochat-ferretdb-<port>.log   server stderr (warn level and up)
# The SQLite data dir is a new temp dir created by the server and removed when it stops.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SRC_DIR="$REPO_ROOT/test/ferretdb"
CACHE_DIR="${NOCHAT_FERRETDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nochat/ferretdb}"
RUN_DIR="${TMPDIR:-/tmp}"
RUN_DIR="${RUN_DIR%/}"
DEFAULT_PORT=27018
START_TIMEOUT_S=30

die() {
  echo "ferretdb.sh: $*" >&2
  exit 1
}

log() {
  echo "ferretdb.sh: $*" >&2
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum
  else
    shasum -a 256
  fi
}

source_hash() {
  (cd "$SRC_DIR" && sha256 <go.mod && sha256 <go.sum && sha256 <main.go) | sha256 | cut -c1-16
}

binary_path() {
  echo "$CACHE_DIR/ferretdb-$(source_hash)"
}

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [ -x /usr/local/go/bin/go ]; then
    echo /usr/local/go/bin/go
  else
    die "Go (>= 1.24) is required to build test/ferretdb, but 'go' was not found on PATH"
  fi
}

# Builds the binary if it is not cached yet; prints its path on stdout.
cmd_build() {
  local bin
  bin="$(binary_path)"
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi

  local go_bin tmp started
  go_bin="$(find_go)"
  mkdir -p "$CACHE_DIR"
  tmp="$(mktemp "$CACHE_DIR/.build-XXXXXX")"
  started=$SECONDS
  log "building FerretDB into $bin (first time only; takes a minute or two)..."
  # CGO is not needed: the SQLite driver (modernc.org/sqlite) is pure Go.
  if ! (cd "$SRC_DIR" && CGO_ENABLED=0 "$go_bin" build -mod=readonly -trimpath -buildvcs=false -o "$tmp" .) >&2; then
    rm -f "$tmp"
    die "go build failed in $SRC_DIR"
  fi
  chmod +x "$tmp"
  mv -f "$tmp" "$bin" # atomic: concurrent builds never see a half-written binary
  log "built in $((SECONDS - started))s"

  # Drop binaries built from older sources.
  local old
  for old in "$CACHE_DIR"/ferretdb-*; do
    if [ -e "$old" ] && [ "$old" != "$bin" ]; then
      rm -f "$old"
    fi
  done

  echo "$bin"
}

check_port() {
  local port="$1"
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
    die "invalid port: '$port'"
}

pid_file() { echo "$RUN_DIR/nochat-ferretdb-$1.pid"; }
uri_file() { echo "$RUN_DIR/nochat-ferretdb-$1.uri"; }
log_file() { echo "$RUN_DIR/nochat-ferretdb-$1.log"; }

# Prints the pid from the pidfile if that process is alive and is our ferretdb binary.
running_pid() {
  local pf pid
  pf="$(pid_file "$1")"
  [ -f "$pf" ] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse (Linux only; skipped where /proc is unavailable).
  if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'ferretdb'; then
    return 1
  fi
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
  local port="${1:-$DEFAULT_PORT}"
  check_port "$port"

  local pid
  if pid="$(running_pid "$port")"; then
    die "FerretDB is already running on port $port (pid $pid); run '$0 stop $port' first"
  fi

  local bin pf uf lf
  bin="$(cmd_build)"
  pf="$(pid_file "$port")"
  uf="$(uri_file "$port")"
  lf="$(log_file "$port")"
  mkdir -p "$RUN_DIR"
  rm -f "$pf" "$uf"
  : >"$lf"

  # Not in its own session: it stays in the caller's process group, so Ctrl-C on the
  # test run stops it too. stdout/stderr go to the log so callers capturing our
  # stdout (e.g. execSync) don't wait on the background process.
  "$bin" -listen "127.0.0.1:$port" -uri-file "$uf" </dev/null >>"$lf" 2>&1 &
  pid=$!
  echo "$pid" >"$pf"

  local deadline=$((SECONDS + START_TIMEOUT_S))
  # The uri file is written by our server right after it binds the port, so a
  # foreign process already listening on that port is not mistaken for ours.
  until [ -s "$uf" ] && port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pf" "$uf"
      {
        echo "ferretdb.sh: FerretDB exited during startup on port $port; log ($lf):"
        tail -n 20 "$lf" | sed 's/^/  /'
      } >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null || true
      rm -f "$pf" "$uf"
      {
        echo "ferretdb.sh: FerretDB did not accept TCP connections on 127.0.0.1:$port within ${START_TIMEOUT_S}s; log ($lf):"
        tail -n 20 "$lf" | sed 's/^/  /'
      } >&2
      exit 1
    fi
    sleep 0.1
  done

  echo "mongodb://127.0.0.1:$port/"
}

cmd_stop() {
  local port="${1:-$DEFAULT_PORT}"
  check_port "$port"

  local pf uf pid
  pf="$(pid_file "$port")"
  uf="$(uri_file "$port")"
  if ! pid="$(running_pid "$port")"; then
    rm -f "$pf" "$uf"
    log "not running on port $port"
    return 0
  fi

  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do # up to 15 s for a clean shutdown
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf" "$uf"
  log "stopped (pid $pid, port $port)"
}

cmd_status() {
  local port="${1:-$DEFAULT_PORT}"
  check_port "$port"
  local pid
  if pid="$(running_pid "$port")"; then
    echo "mongodb://127.0.0.1:$port/"
  else
    log "not running on port $port"
    return 1
  fi
}

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  build) [ $# -le 1 ] || usage; cmd_build ;;
  start) [ $# -le 2 ] || usage; cmd_start "${2:-}" ;;
  stop) [ $# -le 2 ] || usage; cmd_stop "${2:-}" ;;
  status) [ $# -le 2 ] || usage; cmd_status "${2:-}" ;;
  *) usage ;;
esac
