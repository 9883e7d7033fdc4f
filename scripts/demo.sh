#!/usr/bin/env bash
# The Quick start demo: throwaway PostgreSQL and Redis, backup, disaster, restore, checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pnpm build
node --import tsx examples/quickstart/src/main.ts "$@"
