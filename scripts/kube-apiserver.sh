#!/usr/bin/env bash
# Prints the path of a kube-apiserver built from Debian's own `kubernetes` source package,
# building it first if it is not cached; Debian's kubectl of the same version (package
# kubernetes-client, unpacked, not installed: some images ship another /usr/bin/kubectl)
# is put beside it. The Kubernetes tests run against it (and Debian's
# etcd). The build takes ~16 minutes on 2 cores, so the binary is cached outside the tree,
# keyed by the source version: ${WEFT_CACHE:-/var/cache/weft}/kube-apiserver-VERSION/.
# No downloads but Debian's: the source comes through apt (deb-src entries derived from
# this machine's own Debian entries, in a private apt state: the system's apt config is
# not touched), Go is Debian's, and modules come only from the package's vendor/ tree
# (GOPROXY=off), with vendored modern-go/reflect2 replaced by Debian's 1.0.2 (the vendored
# copy does not build with Debian 12's Go 1.19).
# usage: scripts/kube-apiserver.sh   (root: apt; prints the binary's path on stdout)
set -euo pipefail
cache=${WEFT_CACHE:-/var/cache/weft}
log() { echo "kube-apiserver: $*" >&2; }

need=()
for p in golang-go dpkg-dev rsync etcd-server golang-github-modern-go-reflect2-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

mkdir -p "$cache"
exec 9>"$cache/.kube-apiserver.lock"
flock 9  # one build at a time; a second caller waits, then finds the cached binary
apt_state=$cache/apt-src
mkdir -p "$apt_state/sources.list.d" "$apt_state/lists/partial"
python3 - "$apt_state/sources.list.d/deb-src.sources" <<'PY'
import glob, re, sys
out = []
for f in glob.glob("/etc/apt/sources.list.d/*.sources"):
    for stanza in open(f).read().split("\n\n"):
        if re.search(r"^Types:.*\bdeb\b", stanza, re.M) and re.search(r"^Suites:.*\bbookworm\b", stanza, re.M):
            out.append(re.sub(r"^Types:.*$", "Types: deb-src", stanza, flags=re.M))
for line in open("/etc/apt/sources.list").read().splitlines() if glob.glob("/etc/apt/sources.list") else []:
    if re.match(r"^deb\s+\S+\s+bookworm\s", line):
        out.append(re.sub(r"^deb\s", "deb-src ", line))
if not out:
    sys.exit("no Debian bookworm entry in /etc/apt to derive a deb-src entry from")
open(sys.argv[1], "w").write("\n\n".join(s for s in out if s.startswith("Types")) + "\n")
PY
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_state/sources.list.d"
          -o "Dir::State::Lists=$apt_state/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
version=$(apt-cache "${apt_opts[@]}" showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)
if [ -z "$version" ]; then
  apt-get "${apt_opts[@]}" update -qq >&2
  version=$(apt-cache "${apt_opts[@]}" showsrc kubernetes | sed -n 's/^Version: //p' | head -1)
fi
[ -n "$version" ] || { log "Debian has no kubernetes source package here"; exit 1; }
out=$cache/kube-apiserver-$version
if [ ! -x "$out/kubectl" ]; then
  dl=$(mktemp -d)
  (cd "$dl" && apt-get download -qq "kubernetes-client=$version" >&2 && dpkg-deb -x kubernetes-client_*.deb x)
  mkdir -p "$out"
  install -m 0755 "$dl/x/usr/bin/kubectl" "$out/kubectl"
  rm -rf "$dl"
fi
if [ -x "$out/kube-apiserver" ]; then echo "$out/kube-apiserver"; exit 0; fi

log "building kube-apiserver $version from Debian's source (once; ~16 min on 2 cores)"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" source -qq "kubernetes=$version" >&2)
src=$(find "$work" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
# As debian/rules builds it: `make WHAT=cmd/...` (hack/ generates the openapi and
# conversion code first) in a GOPATH of its own where the tree is k8s.io/kubernetes.
mkdir -p "$src/.go/src/k8s.io"
ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
(cd "$src" && env HOME="$work/home" GOPATH="$src/.go" GOPROXY=off GOFLAGS= GOCACHE="$work/gocache" \
   CGO_ENABLED=0 make WHAT=cmd/kube-apiserver >&2)
cp "$src/_output/bin/kube-apiserver" "$work/kube-apiserver"
mkdir -p "$out"
mv "$work/kube-apiserver" "$out/kube-apiserver"
log "cached in $out"
echo "$out/kube-apiserver"
