#!/usr/bin/env bash
# Installs, with apt, what building, testing and running the demo need on Debian 12.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config clang libclang-rt-14-dev
  # libraries
  libabsl-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev libmnl-dev libgtest-dev libgmock-dev nlohmann-json3-dev libssl-dev libyaml-cpp-dev
  # network tools used by tests and the demo
  iproute2 iputils-ping nftables iptables conntrack iperf3 procps util-linux python3 python3-yaml openssl
  # real peers: reference CNI plugins, a real CNI runtime, userspace WireGuard, STUN/TURN
  containernetworking-plugins podman runc containerd busybox-static wireguard-go coturn mmdebstrap
  # the vm tier: a kernel with WireGuard (Debian's cloud kernel, files under /boot only) under QEMU
  qemu-system-x86 linux-image-cloud-amd64 cpio file binutils wireguard-tools
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
