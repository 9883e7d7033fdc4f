#!/usr/bin/env bash
# Installs everything the demo and the tests need; safe to run again (it skips what is there).
# System packages: PostgreSQL server binaries, redis-server, age, zstd (installed with apt-get
# when run as root, otherwise the exact command to run is printed). Then pnpm, the workspace
# packages (from the committed lockfile) and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.21.0
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-check-rdb >/dev/null 2>&1 || missing+=(redis-tools)
command -v age >/dev/null 2>&1 || missing+=(age)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v sha256sum >/dev/null 2>&1 || missing+=(coreutils)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a cluster and a redis service on install; the tests start their own.
    (command -v service >/dev/null 2>&1 && service redis-server stop >/dev/null 2>&1) || true
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found $(node --version))" >&2
  exit 1
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || {
    echo "setup: could not install pnpm globally; run: npm install -g pnpm@$PNPM_VERSION" >&2
    exit 1
  }
fi

pnpm install --frozen-lockfile --reporter=silent

echo "setup: ready"
