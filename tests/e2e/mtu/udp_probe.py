# Datagrams of exactly SIZE bytes (the IP packet, DF set / not fragmented) between pods,
# IPv4 or IPv6.
#   udp_probe.py recv PORT TIMEOUT [6] prints the IP size of the first datagram (0: none)
#   udp_probe.py send IP PORT SIZE     sends five, 200 ms apart
import socket
import sys
import time

IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO = 23, 2
if sys.argv[1] == "recv":
    v6 = len(sys.argv) > 4 and sys.argv[4] == "6"
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("::" if v6 else "0.0.0.0", int(sys.argv[2])))
    s.settimeout(float(sys.argv[3]))
    try:
        print(len(s.recv(65535)) + (48 if v6 else 28))
    except OSError:
        print(0)
else:
    v6 = ":" in sys.argv[2]
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    for _ in range(5):
        try:
            s.sendto(b"u" * (int(sys.argv[4]) - (48 if v6 else 28)), (sys.argv[2], int(sys.argv[3])))
        except OSError:
            pass
        time.sleep(0.2)
