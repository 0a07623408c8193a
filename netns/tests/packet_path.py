#!/usr/bin/env python3
"""Frame endpoints for the packet-path test.

tap  TAP EXPECT REPLY_DST REPLY   hold the tap like a VMM would: wait for a
                                  frame carrying EXPECT, then write one
                                  carrying REPLY to REPLY_DST.
peer IF DST PAYLOAD EXPECT        on the pod's peer interface: send PAYLOAD to
                                  DST, then wait for a frame carrying EXPECT.
"""
import fcntl
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETHERTYPE = 0x88B5  # IEEE local experimental: nothing else sends it
TIMEOUT = 10.0


def mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def frame(dst, src, payload):
    return dst + src + struct.pack("!H", ETHERTYPE) + payload.encode()


def wait_for(read, marker):
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        data = read(deadline - time.time())
        if data and marker.encode() in data:
            return True
    return False


def tap(name, expect, reply_dst, reply):
    fd = open("/dev/net/tun", "r+b", buffering=0)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    print("ready", flush=True)

    def read(timeout):
        ready, _, _ = select.select([fd], [], [], max(timeout, 0))
        return fd.read(65536) if ready else None

    if not wait_for(read, expect):
        print("no frame with %s reached the tap" % expect, file=sys.stderr)
        return 1
    fd.write(frame(mac_bytes(reply_dst), mac_bytes("02:00:00:75:72:01"), reply))
    print("got", flush=True)
    return 0


def peer(ifname, dst, payload, expect):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    sock.bind((ifname, 0))
    src = sock.getsockname()[4]
    sock.send(frame(mac_bytes(dst), src, payload))

    def read(timeout):
        sock.settimeout(max(timeout, 0.01))
        try:
            return sock.recv(65536)
        except socket.timeout:
            return None

    if not wait_for(read, expect):
        print("no frame with %s came back through eth0" % expect, file=sys.stderr)
        return 1
    print("got", flush=True)
    return 0


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    sys.exit(tap(*args) if mode == "tap" else peer(*args))
