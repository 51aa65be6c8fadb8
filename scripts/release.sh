#!/usr/bin/env bash
# Builds a NoChat release tarball on the controller, for hosts without network (ops/ansible's nochat
# role copies it to /opt/nochat/releases/<name>/):
#
#   dist/src, dist/services, dist/moleculer.config.js   `npm run build` (tsc), with source maps
#   public/                                             the built browser UI
#   docs/openapi.json                                   served at GET /api/openapi.json
#   package.json, package-lock.json
#   node_modules/                                       `npm ci --omit=dev` in a staging copy
#
# Native modules (better-sqlite3, @node-rs/argon2) are built/installed here for this machine's
# platform: Node 24, linux-x64, glibc — the hosts must match (Debian bookworm, like the controller).
#
# Name: nochat-<package version>-<short sha of the last commit that changed an input>.tar.gz when the
# inputs (sources, package files) are committed, else nochat-<version>-<sha>-<hash of the inputs>.tar.gz.
# An existing tarball of that name is reused (the build is skipped); the newest 5 are kept. Prints the
# tarball's path on stdout (everything else on stderr).
#
#   scripts/release.sh [--force]      rebuild even when a tarball of that name exists
#   NOCHAT_RELEASE_DIR                where tarballs go (default dist/release, gitignored)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "release.sh: unknown argument $arg" >&2
      exit 2
      ;;
  esac
done

log() { printf 'release.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh >&2

OUT_DIR="${NOCHAT_RELEASE_DIR:-$ROOT/dist/release}"
# What goes into a release: a change elsewhere (docs, ops, tests) does not make a new one.
INPUTS=(src services moleculer.config.ts package.json package-lock.json tsconfig.json
  tsconfig.build.json scripts/build-ui.mjs docs/openapi.json)
existing_inputs=()
for p in "${INPUTS[@]}"; do [ -e "$p" ] && existing_inputs+=("$p"); done

version="$(node -p 'require("./package.json").version')"
# The last commit that changed an input: commits elsewhere (docs, ops, tests) keep the release's name.
sha="$(git log -1 --format=%h --abbrev=10 -- "${existing_inputs[@]}")"
if [ -z "$(git status --porcelain --untracked-files=normal -- "${existing_inputs[@]}")" ]; then
  id="$sha"
else
  # Uncommitted changes: name it after the content of the inputs (tracked and untracked, not ignored).
  hash="$(git ls-files -z --cached --others --exclude-standard -- "${existing_inputs[@]}" | sort -z |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 sha256sum | sha256sum | cut -c1-12)"
  id="$sha-$hash"
  log "uncommitted changes in the inputs: content hash $hash"
fi
name="nochat-$version-$id"
tarball="$OUT_DIR/$name.tar.gz"

if [ -f "$tarball" ] && [ "$FORCE" = 0 ]; then
  log "reusing $tarball"
  echo "$tarball"
  exit 0
fi

start=$SECONDS
mkdir -p "$OUT_DIR"
STAGE="$(mktemp -d "$OUT_DIR/.stage-XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

log "building (npm run build)"
npm run build --silent >&2

log "staging $name"
mkdir -p "$STAGE/$name/dist"
cp -a dist/src dist/services "$STAGE/$name/dist/"
cp -a dist/moleculer.config.js* "$STAGE/$name/dist/"
# Tests compiled by other builds (tsc -p tsconfig.json) have no place in a release.
rm -rf "$STAGE/$name/dist/test"
cp -a public package.json package-lock.json "$STAGE/$name/"
# The gateway serves it at GET /api/openapi.json (read from <root>/docs/ at start).
mkdir -p "$STAGE/$name/docs"
cp -a docs/openapi.json "$STAGE/$name/docs/"

log "installing production dependencies (npm ci --omit=dev)"
(cd "$STAGE/$name" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)

# better-sqlite3 compiled from source: only its addon is needed at run time (not SQLite's sources,
# the object files or its test extension: 28 MB → 2 MB).
bs="$STAGE/$name/node_modules/better-sqlite3"
if [ -f "$bs/build/Release/better_sqlite3.node" ]; then
  mv "$bs/build/Release/better_sqlite3.node" "$STAGE/better_sqlite3.node"
  rm -rf "$bs/build" "$bs/deps" "$bs/src"
  mkdir -p "$bs/build/Release"
  mv "$STAGE/better_sqlite3.node" "$bs/build/Release/"
fi

log "checking the native modules load under $(node -v) ($(uname -m))"
(cd "$STAGE/$name" && node -e '
  const Database = require("better-sqlite3");
  new Database(":memory:").prepare("select 1").get();
  require("@node-rs/argon2").hashSync("x");
  require("./dist/src/log/archive-cli.js");
' >&2)

log "packing"
tar -C "$STAGE/$name" --owner=0 --group=0 --numeric-owner --sort=name -czf "$STAGE/$name.tar.gz" .
mv "$STAGE/$name.tar.gz" "$tarball"
# Older tarballs beyond the newest 5 go.
find "$OUT_DIR" -maxdepth 1 -name 'nochat-*.tar.gz' -printf '%T@ %p\n' | sort -rn | tail -n +6 | cut -d' ' -f2- |
  xargs -r rm -f --
log "built $tarball ($(du -h "$tarball" | cut -f1)) in $((SECONDS - start)) s"
echo "$tarball"
