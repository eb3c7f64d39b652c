#!/usr/bin/env bash
# weft-relay with a standard TURN client: coturn's turnutils_uclient allocates with TURN
# REST credentials (the shared secret), binds channels and relays through weft-relay to
# turnutils_peer (an echo peer), then with Send indications instead of channels. Every
# message must come back. Loopback only. usage: relay_interop_test.sh WEFT_RELAY_BINARY
set -uo pipefail
relay=$1
if ! command -v turnutils_uclient >/dev/null || ! command -v turnutils_peer >/dev/null; then
  echo "coturn's turnutils are not installed: skipping"; exit 0
fi
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port); peer_port=$(free_port)
echo "interop-secret-0123456789" > "$dir/secret"
"$relay" --secret-file "$dir/secret" --listen "127.0.0.1:$port" --relay-ports 40000-40999 --http-listen "" \
  --allow-loopback-peers --allowed-peer-ip 127.0.0.1 \
  >"$dir/relay.log" 2>&1 & pids+=($!)
turnutils_peer -L 127.0.0.1 -p "$peer_port" >"$dir/peer.log" 2>&1 & pids+=($!)
sleep 0.5
fail=0
for mode in "" "-s" "-t"; do   # channels, Send/Data indications, then TURN over TCP
  out=$(timeout 60 turnutils_uclient -W interop-secret-0123456789 -u weft-test -p "$port" -e 127.0.0.1 -r "$peer_port" \
          -n 50 -m 4 -l 1200 -z 5 -c -X $mode 127.0.0.1 2>&1)
  lost=$(echo "$out" | grep -o 'Total lost packets [0-9]*' | grep -o '[0-9]*$')
  sent=$(echo "$out" | grep -o 'Total transmit time is [0-9]*' | head -1)
  recv=$(echo "$out" | grep -o 'tot_recv_msgs=[0-9]*' | tail -1)
  case "$mode" in "") name=channels;; -s) name="send indications";; -t) name="TCP to the relay";; esac
  echo "$name: lost ${lost:-?} ($recv)"
  if [ "${lost:-x}" != "0" ] || ! echo "$out" | grep -q 'Total lost packets 0'; then
    echo "$out" | tail -30; fail=1
  fi
done
[ $fail -eq 0 ] || { echo "--- weft-relay log"; cat "$dir/relay.log"; exit 1; }
echo "weft-relay interoperates with turnutils_uclient (channels, Send indications, TCP)"
