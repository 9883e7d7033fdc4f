#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, build, the unit and integration tests against
# real servers, then the fault-injection suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pnpm build
pnpm exec vitest run
pnpm exec vitest run --config vitest.faults.config.ts --passWithNoTests
