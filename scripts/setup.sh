#!/usr/bin/env bash
# Installs everything metasync's tests, benchmarks and demo need on a fresh
# Debian machine (root), then installs npm dependencies and builds.
# Safe to rerun: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  composer php-cli php-curl php-mbstring php-zip unzip   # the real Composer client
  nginx rsync wrk                                        # benchmark baselines
  pdns-server pdns-backend-sqlite3 sqlite3 dnsutils      # real DNS end to end (PowerDNS + dig)
  chromium                                               # status page test (playwright-core)
  procps iproute2                                        # ps/ss for RSS and fd figures
  faketime                                               # libfaketime: a mirror's clock an hour off (fault tests)
  libjemalloc2                                           # the malloc the systemd units preload (memory tests)
  inotify-tools                                          # inotifywait: holds the primary's source-tree watches
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these on install; tests run their own instances on loopback ports.
for svc in nginx pdns; do
  if command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done

# Node: the exact version in .node-version, from the npm registry's platform
# package (node-linux-<arch>, which ships bin/node), installed as
# /usr/local/bin/node. /usr/local/bin comes before /usr/bin on PATH, so npm, pnpm
# (both `#!/usr/bin/env node`), pnpm exec, vitest and every process the tests spawn
# (process.execPath) run on it, and no file of a Debian package is touched.
bash scripts/install-node.sh
export PATH="/usr/local/bin:$PATH"
hash -r

PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm run build >/dev/null
echo "setup: done (node $(node --version), pnpm $(pnpm --version))"
