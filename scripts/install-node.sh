#!/usr/bin/env bash
# Makes `node` on PATH the version pinned in .node-version (at least its major).
#
# Source: the npm registry's platform package node-linux-<arch>@<version>, whose
# tarball ships the official bin/node. `npm pack` checks the tarball against the
# integrity the registry publishes; we check it again before installing. Only
# bin/node is installed (no dependency builds natively, so no headers), as
# /usr/local/bin/node: never a file a Debian package owns. Quick when done:
# a node on PATH of the pinned major or newer is kept, except a
# /usr/local/bin/node that differs from the pin, which this script manages.
#
# Needs npm (any version) to download; on a machine without it, Debian's nodejs
# and npm are installed first, only to bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION="$(tr -d '[:space:]' <.node-version)"
NODE_MAJOR="${NODE_VERSION%%.*}"
TARGET=/usr/local/bin/node
export PATH="/usr/local/bin:$PATH"

current="$(node -p 'process.versions.node' 2>/dev/null || echo 0)"
if ((${current%%.*} >= NODE_MAJOR)) && { [ "$(command -v node)" != "$TARGET" ] || [ "$current" = "$NODE_VERSION" ]; }; then
  exit 0
fi

if [ -e "$TARGET" ] && dpkg -S "$TARGET" >/dev/null 2>&1; then
  echo "install-node: $TARGET belongs to a Debian package ($(dpkg -S "$TARGET")); not overwriting it" >&2
  exit 1
fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v npm >/dev/null; then
  echo "install-node: no npm to download Node with; installing Debian's nodejs and npm to bootstrap"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install-node: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
pkg="node-linux-$arch@$NODE_VERSION"
echo "setup: installing Node $NODE_VERSION ($pkg from the npm registry) as $TARGET (was: ${current/#0/none})"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
expected="$(npm view "$pkg" dist.integrity)"
(cd "$tmp" && npm pack "$pkg" --silent >/dev/null)
tarball="$(echo "$tmp"/node-linux-"$arch"-*.tgz)"
hex="$(sha512sum "$tarball" | cut -d' ' -f1)"
got="sha512-$(printf "$(sed 's/../\\x&/g' <<<"$hex")" | base64 -w0)"
if [ "$got" != "$expected" ]; then
  echo "install-node: $tarball: integrity $got, the registry publishes $expected" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/bin/node
"$tmp/package/bin/node" --version >/dev/null
$SUDO install -m 0755 "$tmp/package/bin/node" "$TARGET.new"
$SUDO mv -f "$TARGET.new" "$TARGET"
hash -r
echo "setup: $(command -v node) is $(node --version)"
