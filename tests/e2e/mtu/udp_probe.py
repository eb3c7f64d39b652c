# Datagrams of exactly SIZE bytes (the IPv4 datagram, DF set) between pods.
#   udp_probe.py recv PORT TIMEOUT     prints the IP size of the first datagram (0: none)
#   udp_probe.py send IP PORT SIZE     sends five, 200 ms apart
import socket
import sys
import time

IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
if sys.argv[1] == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    s.settimeout(float(sys.argv[3]))
    try:
        print(len(s.recv(65535)) + 28)
    except OSError:
        print(0)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    for _ in range(5):
        try:
            s.sendto(b"u" * (int(sys.argv[4]) - 28), (sys.argv[2], int(sys.argv[3])))
        except OSError:
            pass
        time.sleep(0.2)
