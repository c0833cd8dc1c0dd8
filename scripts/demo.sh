#!/usr/bin/env bash
# Sets everything up, then runs the main job: a primary and two mirrors on
# loopback with sample packages, printing the URLs a Composer client can use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Where setup.sh installs Node 24 when the system one is older; first, even if the caller's PATH lacks it.
export PATH="/usr/local/bin:$PATH"
exec node --import tsx scripts/demo.ts "$@"
