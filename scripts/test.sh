#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: typecheck, lint, vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Where setup.sh installs Node 24 when the system one is older; first, even if the caller's PATH lacks it.
export PATH="/usr/local/bin:$PATH"
pnpm run typecheck
pnpm run lint
METASYNC_SKIP_BUILD=1 pnpm exec vitest run
