#!/usr/bin/env python3
# Sends one UDP datagram with a forged IPv4 source (a raw socket with IP_HDRINCL, as root), then
# counts the UDP datagrams that arrive on this host for the ports to watch during a window, with a
# second raw socket that sees a copy of every UDP datagram delivered locally. Node has no raw
# sockets; this is how a test shows what one spoofed datagram makes a server do on the wire.
#
# Usage: udp-spoof.py SRC_ADDR SRC_PORT DST_ADDR DST_PORT PAYLOAD_HEX WINDOW_MS WATCH_PORT...
# Prints one line of JSON: {"seen": {"PORT": datagrams addressed to PORT, ...}}. The forged
# datagram itself is among them (it arrives at DST_PORT).

import json
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def datagram(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, socket.IPPROTO_UDP, length)
    udp_sum = checksum(pseudo + struct.pack('!HHHH', sport, dport, length, 0) + payload) or 0xFFFF
    udp = struct.pack('!HHHH', sport, dport, length, udp_sum) + payload
    # Version 4, header 5 words; total length and header checksum are filled in by the kernel.
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + length, 0, 0, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


def main() -> None:
    src, sport, dst, dport, payload_hex, window_ms = sys.argv[1:7]
    watch = {int(p): 0 for p in sys.argv[7:]}
    capture = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    capture.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sender.sendto(datagram(src, int(sport), dst, int(dport), bytes.fromhex(payload_hex)), (dst, 0))
    deadline = time.monotonic() + int(window_ms) / 1000
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        capture.settimeout(left)
        try:
            packet = capture.recv(65535)
        except socket.timeout:
            break
        header = (packet[0] & 0x0F) * 4
        (to_port,) = struct.unpack('!H', packet[header + 2:header + 4])
        if to_port in watch:
            watch[to_port] += 1
    print(json.dumps({'seen': {str(p): n for p, n in watch.items()}}))


main()
