# Sends BYTES to IP:PORT over TCP, at full speed or in 64 KiB chunks every DELAY seconds;
# gives up when a send stalls for TIMEOUT seconds. Exit 0 when all was sent.
# Usage: tcp_source.py IP PORT BYTES TIMEOUT [DELAY]
import socket
import sys
import time

ip, port, total, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
for attempt in range(50):  # the sink may not listen yet
    try:
        c = socket.create_connection((ip, port), timeout=timeout)
        break
    except ConnectionRefusedError:
        time.sleep(0.1)
else:
    sys.exit(2)
chunk = b"x" * 65536
sent = 0
try:
    while sent < total:
        n = min(len(chunk), total - sent)
        c.sendall(chunk[:n])
        sent += n
        if delay:
            time.sleep(delay)
    c.shutdown(socket.SHUT_WR)
    c.settimeout(timeout)
    c.recv(1)  # the sink closes once it has counted everything
except OSError:
    sys.exit(1)
