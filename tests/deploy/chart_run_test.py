#!/usr/bin/env python3
"""Runs every container of the rendered chart with exactly its command, args and env.

Each container runs in a sandbox shaped like its pod: new network, mount and PID
namespaces; a root of its own made of the host's read-only /usr and /etc, the built
binaries at the image's paths (/usr/local/bin), and each volumeMount backed by a scratch
directory (the projected and automounted tokens and the CA are files we write). The
environment is the container's own (`value`s, and `fieldRef`s filled as the kubelet
would) plus what the kubelet adds (KUBERNETES_SERVICE_HOST/PORT); $(VAR) in command and
args is expanded as Kubernetes does. Nothing can leave the sandbox: its network namespace
has only loopback.

A container passes if its command line is accepted: it is still running after a few
seconds, or it exited with another status than 2 (every Weft binary exits 2 for a
rejected command line, and only then). The install-cni init container must put weft-cni
at the host path. Needs root.

usage: chart_run_test.py RENDERED.yaml BIN_DIR
  BIN_DIR holds weft-agent, weft-controller, weft-relay, weft-cni and weftctl.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

RUN_SECONDS = 4
WEFT_BINARIES = ["weft-agent", "weft-controller", "weft-relay", "weft-cni", "weftctl"]

# What the kubelet puts into a fieldRef for this test's pod.
FIELD_VALUES = {
    "spec.nodeName": "node-a",
    "metadata.name": "weft-pod-0",
    "metadata.namespace": "kube-system",
    "metadata.uid": "00000000-0000-4000-8000-000000000001",
    "status.podIP": "127.0.0.1",
    "status.hostIP": "127.0.0.1",
    "spec.serviceAccountName": "weft",
}


def pod_templates(docs):
    for d in docs:
        if d and d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet"):
            yield d["kind"] + "/" + d["metadata"]["name"], d["spec"]["template"]["spec"]


def container_env(c):
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "HOSTNAME": "weft-pod-0",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e and "fieldRef" in e["valueFrom"]:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            if path not in FIELD_VALUES:
                raise SystemExit("FAIL: %s: fieldRef %s is not known to this test" % (c["name"], path))
            env[e["name"]] = FIELD_VALUES[path]
        else:
            raise SystemExit("FAIL: %s: env %s has a source this test does not model" % (c["name"], e["name"]))
    return env


def expand(text, env):
    # Kubernetes: $(VAR) is replaced when VAR is defined, $$ escapes, anything else stays.
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


def fill_volume(path, name, spec):
    """Scratch contents for a volume: what the pod would find there."""
    os.makedirs(path, exist_ok=True)
    if "projected" in spec:
        for src in spec["projected"]["sources"]:
            if "serviceAccountToken" in src:
                with open(os.path.join(path, src["serviceAccountToken"]["path"]), "w") as f:
                    f.write("not-a-real-token\n")
    if "configMap" in spec:  # the controller's CA for the agents
        for item in spec["configMap"].get("items", []) or [{"path": "ca.crt"}]:
            with open(os.path.join(path, item["path"]), "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    if "secret" in spec:
        for item in spec["secret"].get("items", []) or [{"path": "secret"}]:
            with open(os.path.join(path, item["path"]), "w") as f:
                f.write("0123456789abcdef0123456789abcdef\n")


SANDBOX = r"""
set -e
ip link set lo up
root="$1"; shift
mount -t tmpfs weft-root "$root"
for d in bin sbin lib lib32 lib64 libx32; do [ -L "/$d" ] && cp -a "/$d" "$root/$d"; done
for d in usr etc dev; do mkdir -p "$root/$d"; mount --rbind "/$d" "$root/$d"; done
mount -o remount,bind,ro "$root/usr"
mkdir -p "$root/proc" "$root/tmp" "$root/run" "$root/var/run" "$root/var/lib"
mount -t proc proc "$root/proc"
mount -t tmpfs tmp "$root/tmp"
mount -t tmpfs run "$root/run"
mount -t tmpfs bin "$root/usr/local/bin"
cp "$WEFT_BIN_DIR"/* "$root/usr/local/bin/"
while [ "$1" != "--" ]; do
  mkdir -p "$root$2"
  mount --bind "$1" "$root$2"
  shift 2
done
shift
exec chroot "$root" "$@"
"""


def run_container(workload, pod, c, bin_dir, scratch):
    env = container_env(c)
    argv = [expand(a, env) for a in (c.get("command") or []) + (c.get("args") or [])]
    if not argv:
        raise SystemExit("FAIL: %s/%s has no command (the image's entrypoint is not what we test)" % (workload, c["name"]))
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = []
    for m in c.get("volumeMounts", []):
        if m["mountPath"].startswith("/dev/"):
            continue  # /dev is the host's already (the TUN device)
        src = os.path.join(scratch, "vol-" + m["name"])
        fill_volume(src, m["name"], volumes[m["name"]])
        mounts += [src, m["mountPath"]]
    if pod.get("automountServiceAccountToken", True) and pod.get("serviceAccountName"):
        sa = os.path.join(scratch, "serviceaccount")
        os.makedirs(sa, exist_ok=True)
        for f, text in (("token", "not-a-real-token"), ("ca.crt", "-----BEGIN CERTIFICATE-----\n"),
                        ("namespace", "kube-system")):
            with open(os.path.join(sa, f), "w") as out:
                out.write(text)
        mounts += [sa, "/var/run/secrets/kubernetes.io/serviceaccount"]
    root = os.path.join(scratch, "root")
    os.makedirs(root, exist_ok=True)
    cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
           "sh", "-c", SANDBOX, "sandbox", root] + mounts + ["--", "env", "-i"] + \
          ["%s=%s" % kv for kv in env.items()] + argv
    out = open(os.path.join(scratch, "output"), "w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, WEFT_BIN_DIR=bin_dir))
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.1)
    running = p.poll() is None
    if running:
        p.kill()  # the namespace's init: every process in it goes too
    p.wait(timeout=10)
    out.seek(0)
    text = out.read()
    out.close()
    return argv, running, p.returncode, text


def main():
    rendered, bin_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    for b in WEFT_BINARIES:
        if not os.access(os.path.join(bin_dir, b), os.X_OK):
            raise SystemExit("FAIL: %s is not in %s" % (b, bin_dir))
    docs = list(yaml.safe_load_all(open(rendered)))
    failures, ran = [], 0
    work = tempfile.mkdtemp(prefix="weft-chartrun-")
    try:
        for workload, pod in pod_templates(docs):
            for kind, containers in (("init", pod.get("initContainers", [])), ("container", pod["containers"])):
                for c in containers:
                    scratch = os.path.join(work, "%d-%s" % (ran, c["name"]))
                    os.makedirs(scratch)
                    argv, running, rc, text = run_container(workload, pod, c, bin_dir, scratch)
                    ran += 1
                    what = "%s %s %s" % (workload, kind, c["name"])
                    state = "running after %d s" % RUN_SECONDS if running else "exited %d" % rc
                    print("%s: %s: %s" % (what, state, " ".join(shlex.quote(a) for a in argv)))
                    tail = "\n".join("    | " + l for l in text.strip().splitlines()[-6:])
                    if tail:
                        print(tail)
                    if c["name"] == "install-cni":
                        # What it copied is on the "host" (the scratch dir behind its mount).
                        host_bin = os.path.join(scratch, "vol-cni-bin", "weft")
                        if running or rc != 0 or not os.access(host_bin, os.X_OK):
                            failures.append("%s: weft-cni not installed on the host path" % what)
                        continue
                    if not running and (rc == 2 or "unknown flag" in text):
                        failures.append("%s: its command line was rejected" % what)
                    elif "sandbox" in text and "mount:" in text:
                        failures.append("%s: the sandbox could not be built" % what)
    finally:
        subprocess.run(["rm", "-rf", work])
    if ran == 0:
        raise SystemExit("FAIL: no containers in %s" % rendered)
    if failures:
        print("\n".join("FAIL: " + f for f in failures))
        sys.exit(1)
    print("chart run: %d containers started with the chart's command lines, none rejected" % ran)


if __name__ == "__main__":
    main()
