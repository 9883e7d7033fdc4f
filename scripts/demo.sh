#!/usr/bin/env bash
# The Quick start demo: throwaway PostgreSQL and Redis, Scholaria-like data, backup to ./backups,
# list, verify, a disaster (DROP TABLE, FLUSHALL), restore latest, and a check that every row and
# key is back (exit 1 if not). Set QDRANT_URL (and QDRANT_API_KEY) to add a Qdrant collection.
# Extra arguments go to the demo: --small (a tenth of the data), --skip-restore (see the check fail).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Build only the packages the demo imports (and their dependencies), in dependency order.
pnpm --filter '@scholaria/backup-example-quickstart^...' run build >/dev/null
exec node --import tsx examples/quickstart/src/main.ts "$@"
