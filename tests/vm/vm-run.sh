#!/usr/bin/env bash
# Runs a command in a real kernel that has WireGuard: Debian's cloud kernel
# (linux-image-cloud-amd64) under QEMU with software emulation (TCG; a KVM guest crashes
# early on this machine). The guest's root is an initramfs made here: busybox, the kernel
# modules the tests need (wireguard, veth, tun, nf_tables and NAT), the programs named
# with --bin and every shared library they load, each at its own path, so binaries built
# in this tree run in the guest as they are. The command's output streams back over the
# serial console; its exit code is this script's. Bounded: --timeout seconds (default
# 900), then QEMU is killed and the run fails. Exit 77 (a skip) when QEMU or the kernel
# is not installed (scripts/install-deps.sh installs both).
#
#   tests/vm/vm-run.sh [--timeout S] [--bin FILE]... [--mem MB] -- COMMAND
#
# The guest has no network device: tests make their own namespaces and veths inside it.
set -euo pipefail

timeout_s=900
mem=2048
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --bin) bins+=("$(readlink -f "$2")"); shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "vm-run: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "vm-run: no command" >&2; exit 2; }
command="$*"

kver=$(ls /lib/modules | grep -- '-cloud-amd64$' | sort -V | tail -1 || true)
if [ -z "$kver" ] || [ ! -f "/boot/vmlinuz-$kver" ]; then
  echo "vm-run: Debian's cloud kernel is not installed (apt-get install linux-image-cloud-amd64)" >&2
  exit 77
fi
command -v qemu-system-x86_64 >/dev/null || { echo "vm-run: qemu-system-x86 is not installed" >&2; exit 77; }

work=$(mktemp -d /tmp/weft-vm.XXXXXX)
qemu_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill -9 "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,etc,var/lib,mnt,root}
# The host's merged /usr layout, so a file copied under its path lands where it would.
for l in bin sbin lib lib64; do
  if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$root/$l"; else mkdir -p "$root/$l"; fi
done
ln -s /run "$root/var/run"

copy_file() {  # a file at its path (symlinks followed), binaries without debug info
  local f=$1
  [ -e "$root$f" ] && return 0
  mkdir -p "$root$(dirname "$f")"
  if file -L "$f" | grep -q 'ELF.*not stripped\|ELF.*with debug_info'; then
    strip --strip-debug -o "$root$f" "$f" 2>/dev/null || cp -L "$f" "$root$f"
  else
    cp -L "$f" "$root$f"
  fi
}
copy_bin() {  # a program and the shared libraries it loads
  local b=$1
  copy_file "$b"
  ldd "$b" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
    copy_file "$lib"
    # The library under its own name too (ldd shows the path it resolved).
    [ -L "$lib" ] && copy_file "$(readlink -f "$lib")"
    true
  done || true  # not dynamically linked (a script, a static binary)
}

# busybox: the init, a shell and the small tools, after the real programs in PATH.
mkdir -p "$root/opt/busybox/bin"
cp /usr/bin/busybox "$root/opt/busybox/busybox"
for applet in $(/usr/bin/busybox --list); do ln -sf ../busybox "$root/opt/busybox/bin/$applet"; done

# The shell is the host's (dash): busybox's own sh runs its applets before PATH's programs.
for b in /usr/bin/dash /usr/sbin/ip /usr/bin/ss /usr/sbin/nft /usr/bin/ping /usr/bin/wireguard-go /usr/bin/turnserver \
         /usr/sbin/iptables-legacy-save /usr/sbin/iptables-nft-save /usr/bin/openssl /usr/bin/pgrep /usr/bin/pkill \
         /usr/bin/ps /usr/bin/timeout "${bins[@]}"; do
  [ -x "$b" ] && copy_bin "$b"
done
ln -sf dash "$root/usr/bin/sh"
cp /etc/protocols /etc/services "$root/etc/" 2>/dev/null || true
if [ -f /etc/ssl/openssl.cnf ]; then
  copy_file /etc/ssl/openssl.cnf
  mkdir -p "$root/usr/lib/ssl" && ln -sf /etc/ssl/openssl.cnf "$root/usr/lib/ssl/openssl.cnf"
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
echo "127.0.0.1 localhost" > "$root/etc/hosts"

# Kernel modules, in load order (modprobe --show-depends resolves each one's needs).
: > "$root/etc/vm-modules"
for m in wireguard veth tun bridge nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib_inet nft_reject_inet \
         nf_nat nf_conntrack nft_limit nft_redir nft_fwd_netdev nft_log nft_numgen nft_hash nft_quota \
         nf_conntrack_netlink nfnetlink_queue; do
  modprobe --show-depends -S "$kver" "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}' | while read -r ko; do
    grep -qxF "$ko" "$root/etc/vm-modules" && continue
    mkdir -p "$root$(dirname "$ko")"
    cp "$ko" "$root$ko"
    echo "$ko" >> "$root/etc/vm-modules"
  done || true  # built in, or not in this kernel
done
cp /lib/modules/"$kver"/modules.{dep,alias,symbols,builtin,order} "$root/lib/modules/$kver/" 2>/dev/null || true

printf '%s\n' "$command" > "$root/etc/vm-command"
cat > "$root/init" <<'EOF'
#!/opt/busybox/busybox sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/busybox/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The root is the initramfs, in RAM and writable: no tmpfs over /tmp or /run, which
# would hide binaries copied there (a tree built under /tmp).
chmod 1777 /tmp
mkdir -p /run/netns /dev/net /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
[ -c /dev/net/tun ] || mknod /dev/net/tun c 10 200
while read -r ko; do insmod "$ko" 2>/dev/null; done < /etc/vm-modules
ip link set lo up
echo "WEFT-VM-UP kernel $(uname -r), wireguard $(cat /sys/module/wireguard/version 2>/dev/null || echo missing)"
cd /tmp
/usr/bin/dash -c "$(cat /etc/vm-command)"
echo "WEFT-VM-EXIT $?"
poweroff -f
EOF
chmod +x "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$work/initrd.gz"
echo "vm-run: kernel $kver, initramfs $(du -h "$work/initrd.gz" | cut -f1), timeout ${timeout_s}s: $command"

log=$work/console.log
qemu-system-x86_64 -machine accel=tcg -cpu max -smp 2 -m "$mem" -nographic -no-reboot -nic none \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" > "$log" 2>&1 &
qemu_pid=$!
# Stream the console while the guest runs; stop at the exit marker or the deadline.
tail -n +1 -f "$log" --pid "$qemu_pid" &
tail_pid=$!
deadline=$((SECONDS + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
  echo "vm-run: timed out after ${timeout_s}s" >&2
  kill -9 "$qemu_pid" 2>/dev/null || true
fi
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
rc=$(grep -a -oE 'WEFT-VM-EXIT [0-9]+' "$log" | tail -1 | awk '{print $2}')
if [ -z "$rc" ]; then
  echo "vm-run: the guest ended without an exit code" >&2
  exit 1
fi
exit "$rc"
