#!/usr/bin/env bash
# Builds the release artifact servers run: release/metasync-<version>.tar.gz and
# its .sha256. One tree, metasync-<version>/, holding the workspace as built
# (each package's package.json, bin/ and dist/) with production dependencies
# only, installed from the lockfile, plus docs/ and the deployment templates
# (the systemd units cloud-init installs); no sources, no dev tools. Unpacked
# anywhere, it runs with the Node its NODE_VERSION file names:
#   node metasync-<version>/packages/mirror/bin/metasync-mirror.js --help
# <version> is the root package.json's version; RELEASE_VERSION overrides it,
# RELEASE_OUT the output directory, and METASYNC_SKIP_BUILD=1 uses dist/ as built.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

VERSION="${RELEASE_VERSION:-$(node -p 'require("./package.json").version')}"
NAME="metasync-$VERSION"
OUT="${RELEASE_OUT:-$ROOT/release}"
PACKAGES=(packages/shared packages/store packages/dns packages/primary packages/mirror infra)

[ "${METASYNC_SKIP_BUILD:-}" = 1 ] || pnpm run build >/dev/null

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
tree="$stage/$NAME"
mkdir -p "$tree"
cp package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc "$tree/"
cp .node-version "$tree/NODE_VERSION"
cp -r docs "$tree/"
mkdir -p "$tree/infra"
cp -r infra/templates "$tree/infra/"
for pkg in "${PACKAGES[@]}"; do
  mkdir -p "$tree/$pkg"
  cp "$pkg/package.json" "$tree/$pkg/"
  cp -r "$pkg/dist" "$tree/$pkg/"
  if [ -d "$pkg/bin" ]; then cp -r "$pkg/bin" "$tree/$pkg/"; fi
done
{
  echo "metasync $VERSION"
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- || echo ' (with uncommitted changes)')"
  echo "node $(cat .node-version)"
} >"$tree/RELEASE"
# The lockfile decides every version; --prod leaves out dev dependencies, and
# --ignore-scripts because nothing in production builds at install time.
(cd "$tree" && pnpm install --prod --frozen-lockfile --prefer-offline --ignore-scripts --config.confirmModulesPurge=false --reporter=silent)
# Install bookkeeping the runtime never reads, and bin shims holding this staging path.
find "$tree" -path '*/node_modules/.bin' -prune -exec rm -rf {} +
rm -f "$tree/node_modules/.modules.yaml" "$tree/node_modules/.pnpm-workspace-state-v1.json"

mkdir -p "$OUT"
# Reproducible bytes for the same inputs: sorted names, fixed owner and mtime.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' -C "$stage" -cf - "$NAME" | gzip -n >"$OUT/$NAME.tar.gz.tmp"
mv "$OUT/$NAME.tar.gz.tmp" "$OUT/$NAME.tar.gz"
(cd "$OUT" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
echo "release: $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1)) sha256 $(cut -d' ' -f1 "$OUT/$NAME.tar.gz.sha256")"
