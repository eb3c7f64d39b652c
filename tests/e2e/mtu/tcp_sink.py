# Accepts one TCP connection on PORT and counts what arrives until it closes or nothing
# comes for TIMEOUT seconds; prints the count. Usage: tcp_sink.py PORT TIMEOUT
import socket
import sys

port, timeout = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET6)  # IPv4 too (v4-mapped)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", port))
s.listen(1)
s.settimeout(timeout)
n = 0
try:
    c, _ = s.accept()
    c.settimeout(timeout)
    while True:
        d = c.recv(65536)
        if not d:
            break
        n += len(d)
except OSError:
    pass
print(n)
