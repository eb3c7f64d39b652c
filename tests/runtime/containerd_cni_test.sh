#!/usr/bin/env bash
# Debian's containerd (1.6) runs pods on the conflist weft-agent actually writes.
#
# In a network namespace of its own (the "node") and a private mount namespace where
# /etc/cni/net.d and /opt/cni/bin are scratch directories: a standalone weft-controller
# and a weft-agent run on loopback, and the agent writes its conflist where runtimes read
# it. containerd runs on a private root and socket; `ctr run --cni` uses go-cni and libcni
# as containerd's CRI plugin does (same config loading, same version checks). Two pods
# get addresses from the node's pod CIDR and reach each other; containerd is killed while
# a third pod is being created and restarted; every pod is removed; no address and no
# host veth are left (a pod whose creation the kill cut is left to the runtime's CNI GC,
# as the spec has it). Needs root.
# usage: containerd_cni_test.sh WEFT_CNI WEFT_AGENT WEFT_CONTROLLER
set -euo pipefail
if [ -z "${WEFT_INNER:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
  for t in containerd ctr runc wireguard-go busybox; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
  done
  NS=weft-ctrd-$$
  T=$(mktemp -d /tmp/weft-containerd.XXXXXX)
  made=()
  for d in /etc/cni /etc/cni/net.d /opt/cni /opt/cni/bin /run/containerd; do
    [ -d "$d" ] || { mkdir "$d"; made=("$d" "${made[@]}"); }  # mount points only, removed below
  done
  cleanup() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    sleep 0.2
    ip netns del "$NS" 2>/dev/null || true
    # containerd's native snapshots and state may hold read-only files and mounts.
    grep " $T/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    chmod -R u+w "$T" 2>/dev/null || true
    rm -rf "$T"
    for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
  }
  trap cleanup EXIT
  ip netns add "$NS"
  rc=0
  # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchy runc needs.
  nsenter --net=/run/netns/"$NS" unshare --mount --propagation private env WEFT_INNER=1 T="$T" \
    bash "$0" "$@" || rc=$?
  exit $rc
fi

# ---- inside the node: its netns, a private mount namespace ----
WEFT_CNI=$(readlink -f "$1") WEFT_AGENT=$(readlink -f "$2") WEFT_CONTROLLER=$(readlink -f "$3")
fail() { echo "FAIL: $*"; [ -f "$T/agent.log" ] && tail -5 "$T/agent.log"; exit 1; }
mkdir -p "$T/net.d" "$T/bin" "$T/data" "$T/state" "$T/ctrd" "$T/image/rootfs/bin"
mount --bind "$T/net.d" /etc/cni/net.d
mount --bind "$T/bin" /opt/cni/bin
mount -t tmpfs weft-test-runc /run/containerd  # runc's state (/run/containerd/runc) stays in here
cp "$WEFT_CNI" "$T/bin/weft"
for p in /usr/lib/cni/*; do ln -sf "$p" "$T/bin/"; done  # portmap, loopback: Debian's reference plugins
ip link set lo up
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null || true' EXIT

# The controller and the agent, on loopback. The STUN servers do not answer (the node is
# "UDP blocked"): the conflist does not depend on the NAT verdict.
echo "containerd-test-join-token" > "$T/token"
"$WEFT_CONTROLLER" --cluster-cidr=10.77.0.0/16 --join-token-file="$T/token" --insecure \
  --listen=127.0.0.1:17443 > "$T/controller.log" 2>&1 & pids+=($!)
"$WEFT_AGENT" --node=ctrd-node --controller=127.0.0.1:17443 --join-token-file="$T/token" --insecure \
  --stun=127.0.0.2:3478,127.0.0.3:3478,127.0.0.4:3478 --wg-interface=wgctrd0 --state-dir="$T/state" \
  --cni-data-dir="$T/data" --http-listen= > "$T/agent.log" 2>&1 & pids+=($!)
conflist=""
for _ in $(seq 100); do  # 10 s
  conflist=$(ls /etc/cni/net.d/*.conflist 2>/dev/null | head -1 || true)
  [ -n "$conflist" ] && break
  sleep 0.1
done
[ -n "$conflist" ] || fail "weft-agent wrote no conflist"
echo "the agent's conflist ($conflist):"
cat "$conflist"
net=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$conflist")

# containerd on a private root, state and socket.
cat > "$T/ctrd/config.toml" <<EOF
version = 2
root = "$T/ctrd/root"
state = "$T/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/ctrd/containerd.sock"
[ttrpc]
  address = "$T/ctrd/containerd.sock.ttrpc"
EOF
start_containerd() {
  containerd --config "$T/ctrd/config.toml" >> "$T/containerd.log" 2>&1 &
  ctrd_pid=$!
  pids+=($ctrd_pid)
  for _ in $(seq 100); do c version >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -20 "$T/containerd.log"
  fail "containerd did not start"
}
c() { timeout 60 ctr --address "$T/ctrd/containerd.sock" --namespace weft-test "$@"; }
start_containerd

# An image made here (nothing can be pulled): busybox in an OCI archive.
cp "$(command -v busybox)" "$T/image/rootfs/bin/busybox"
for a in sh ip ping sleep cat; do ln -s busybox "$T/image/rootfs/bin/$a"; done
python3 - "$T/image" <<'PY'
import hashlib, io, json, os, sys, tarfile
d = sys.argv[1]
def blob(data, media):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{d}/oci/blobs/sha256", exist_ok=True)
    open(f"{d}/oci/blobs/sha256/{h}", "wb").write(data)
    return {"mediaType": media, "digest": "sha256:" + h, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(f"{d}/rootfs", arcname=".")
layer = buf.getvalue()
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
            "layers": [blob(layer, "application/vnd.oci.image.layer.v1.tar")]}
m = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"io.containerd.image.name": "localhost/weft-busybox:test",
                    "org.opencontainers.image.ref.name": "test"}
open(f"{d}/oci/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [m]}))
open(f"{d}/oci/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
with tarfile.open(f"{d}/image.tar", "w") as t:
    t.add(f"{d}/oci", arcname=".")
PY
c image import --snapshotter native "$T/image/image.tar" >/dev/null
image=localhost/weft-busybox:test

# `ctr run --rm --cni` (attached) is how ctr 1.6 both adds and removes a pod's network:
# when the task exits, ctr calls go-cni's Remove (CNI DEL) and deletes the container.
declare -A ctr_pids
run_pod() {
  c run --rm --cni --snapshotter native "$image" "$1" sleep 600 > "$T/$1.log" 2>&1 &
  ctr_pids[$1]=$!
  for _ in $(seq 100); do  # 10 s
    c task ls 2>/dev/null | grep -q "^$1 .*RUNNING" && pod_ip "$1" | grep -q . && return 0
    kill -0 "${ctr_pids[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$T/$1.log"
  return 1
}
pod_ip() { c task exec --exec-id "ip-$RANDOM" "$1" ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1; }
remove_pod() {
  c task kill -s SIGKILL "$1" >/dev/null 2>&1 || true
  for _ in $(seq 100); do kill -0 "${ctr_pids[$1]}" 2>/dev/null || return 0; sleep 0.1; done
  fail "ctr did not finish removing $1"
}

run_pod pod-a || fail "containerd could not create pod-a with the agent's conflist"
run_pod pod-b || fail "containerd could not create pod-b"
ip_a=$(pod_ip pod-a) ip_b=$(pod_ip pod-b)
echo "pod-a $ip_a, pod-b $ip_b"
[[ "$ip_a" == 10.77.* && "$ip_b" == 10.77.* && "$ip_a" != "$ip_b" ]] || fail "pods have no addresses from the pod CIDR"
c task exec --exec-id ping-ab pod-a ping -c 2 -W 2 "$ip_b" >/dev/null || fail "pod-a cannot reach pod-b"
c task exec --exec-id ping-ba pod-b ping -c 2 -W 2 "$ip_a" >/dev/null || fail "pod-b cannot reach pod-a"
echo "pod-a and pod-b reach each other"
# Removed before containerd is killed: an attached `ctr run` whose containerd dies exits
# and removes its pod's network on the way out (a ctr trait; the CRI plugin does not).
remove_pod pod-a
remove_pod pod-b

# containerd killed while pod-c is being created, then restarted: the runtime recovers
# and a new pod works. pod-c's ctr fails; whatever it left is for the runtime's cleanup.
c run --rm --cni --snapshotter native "$image" pod-c sleep 600 > "$T/pod-c.log" 2>&1 & creator=$!
sleep 0.3
kill -9 "$ctrd_pid"
wait "$creator" || true
start_containerd
c task kill -s SIGKILL pod-c >/dev/null 2>&1 || true
c task delete -f pod-c >/dev/null 2>&1 || true
c container delete pod-c >/dev/null 2>&1 || true
run_pod pod-d || fail "containerd could not create a pod after its restart"
run_pod pod-e || fail "containerd could not create a second pod after its restart"
ip_d=$(pod_ip pod-d) ip_e=$(pod_ip pod-e)
c task exec --exec-id ping-de pod-d ping -c 2 -W 2 "$ip_e" >/dev/null || fail "pod-d cannot reach pod-e"
echo "containerd restarted mid-creation: pod-d $ip_d and pod-e $ip_e reach each other"

for p in pod-d pod-e; do remove_pod "$p"; done
state="$T/data/networks/$net/state"
allocated() { [ -f "$state" ] && grep "^alloc" "$state" || true; }
left=$(allocated)
if [ -n "$left" ]; then
  # Only the pod whose creation the restart cut may be left (its ADD ran, its ctr died
  # before it could DEL). A CNI 1.1 runtime's GC, with no valid attachments left, removes
  # it; this is that call, made with the agent's conflist as libcni would.
  echo "left by the cut creation:"; echo "$left"
  grep -v "weft-test-pod-c " <<<"$left" | grep -q . && fail "addresses of removed pods still allocated"
  python3 - "$conflist" > "$T/gc.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p = dict(c["plugins"][0], name=c["name"], cniVersion="1.1.0")
p["cni.dev/valid-attachments"] = []
print(json.dumps(p))
PY
  CNI_COMMAND=GC CNI_PATH=/opt/cni/bin /opt/cni/bin/weft < "$T/gc.json" || fail "weft-cni GC failed"
  [ -z "$(allocated)" ] || { allocated; fail "addresses still allocated after GC"; }
fi
for _ in $(seq 30); do ip -o link show | grep -q ": weft[0-9a-f]\{11\}" || break; sleep 0.1; done
if ip -o link show | grep -q ": weft[0-9a-f]\{11\}"; then ip -o link show; fail "host veths left behind"; fi
echo "PASS: containerd ran pods on the agent's conflist; nothing left after removal"
