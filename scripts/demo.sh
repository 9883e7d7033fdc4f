#!/usr/bin/env bash
# The Quick start demo: throwaway PostgreSQL and Redis, Scholaria-like data, backup to ./backups,
# list, verify, a disaster (DROP TABLE, FLUSHALL), restore latest, and a check that every row and
# key is back (exit 1 if not). Set QDRANT_URL (and QDRANT_API_KEY) to add a Qdrant collection.
# Extra arguments go to the demo: --small (a tenth of the data), --skip-restore (see the check fail).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# No build step: tsx reads the example's tsconfig, whose `paths` map @scholaria/backup-* to the
# packages' TypeScript sources, so the demo runs the code as it is in this checkout.
export TSX_TSCONFIG_PATH=examples/quickstart/tsconfig.json
exec node --import tsx examples/quickstart/src/main.ts "$@"
