#!/usr/bin/env python3
"""A minimal VNC viewer for tests: framebuffer sizes and one key.

  rfb-viewer.py PORT [--wait WxH] [--key KEYSYM --key-when PATH]
                [--timeout S]

Connects to 127.0.0.1:PORT (retrying until the server listens), speaks
RFB 3.8 with the "None" security type (RFC 6143), and prints, one line
each, as they happen:
  serverinit WxH     the ServerInit's framebuffer size
  key KEYSYM         --key: once PATH exists, a KeyEvent press and release
                     of the X keysym (e.g. 0xff0d, Return) was sent
  desktopsize WxH    --wait: a DesktopSize pseudo-rectangle (RFC 6143,
                     7.8.2), read while asking for updates until the
                     framebuffer is WxH
  new-viewer WxH     --wait: then a second connection's ServerInit
Exit status: 0 done, 1 the timeout passed first, 2 the server could not be
talked to.
"""

import argparse
import os
import socket
import struct
import sys
import time

ENC_RAW = 0
ENC_DESKTOP_SIZE = -223


def say(line):
    print(line, flush=True)


class Conn:
    def __init__(self, port, deadline):
        self.deadline = deadline
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), 5)
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise TimeoutError
                time.sleep(0.1)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(min(left, 0.2))
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        return buf

    def pending(self):
        """Whether the server has sent something not read yet."""
        self.sock.settimeout(0.1)
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except socket.timeout:
            return False


def handshake(c):
    """Version, security None, a shared ClientInit; the ServerInit's width,
    height and bytes per pixel."""
    version = c.recv(12)
    if not version.startswith(b"RFB "):
        raise ConnectionError("not an RFB server: %r" % version)
    c.sock.sendall(b"RFB 003.008\n")
    n = c.recv(1)[0]
    if n == 0:
        reason = c.recv(struct.unpack(">I", c.recv(4))[0])
        raise ConnectionError("refused: %s" % reason.decode(errors="replace"))
    types = c.recv(n)
    if 1 not in types:
        raise ConnectionError("security type None not offered: %s" % list(types))
    c.sock.sendall(b"\x01")
    if struct.unpack(">I", c.recv(4))[0] != 0:
        raise ConnectionError("security handshake failed")
    c.sock.sendall(b"\x01")
    width, height = struct.unpack(">HH", c.recv(4))
    pixfmt = c.recv(16)
    c.recv(struct.unpack(">I", c.recv(4))[0])     # the desktop's name
    return width, height, pixfmt[0] // 8


def update_request(c, incremental, width, height):
    c.sock.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0, width, height))


def read_message(c, size, bpp):
    """One server message; returns the framebuffer size after it and
    whether it was a FramebufferUpdate."""
    msg = c.recv(1)[0]
    if msg == 0:                                  # FramebufferUpdate
        c.recv(1)
        for _ in range(struct.unpack(">H", c.recv(2))[0]):
            x, y, w, h, enc = struct.unpack(">HHHHi", c.recv(12))
            if enc == ENC_DESKTOP_SIZE:
                size = (w, h)
                say("desktopsize %dx%d" % size)
            elif enc == ENC_RAW:
                c.recv(w * h * bpp)
            else:
                raise ConnectionError("unrequested encoding %d" % enc)
        return size, True
    if msg == 1:                                  # SetColourMapEntries
        c.recv(3)
        c.recv(6 * struct.unpack(">H", c.recv(2))[0])
    elif msg == 3:                                # ServerCutText
        c.recv(3)
        c.recv(struct.unpack(">I", c.recv(4))[0])
    elif msg != 2:                                # 2: Bell
        raise ConnectionError("unknown server message %d" % msg)
    return size, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--wait", metavar="WxH")
    ap.add_argument("--key", type=lambda v: int(v, 0), metavar="KEYSYM")
    ap.add_argument("--key-when", metavar="PATH")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    try:
        c = Conn(a.port, deadline)
        width, height, bpp = handshake(c)
        size = (width, height)
        say("serverinit %dx%d" % size)
        want = tuple(int(v) for v in a.wait.split("x")) if a.wait else None
        if want is None and a.key is None:
            return 0
        c.sock.sendall(struct.pack(">BBH", 2, 0, 2) + struct.pack(">ii", ENC_RAW, ENC_DESKTOP_SIZE))
        update_request(c, 0, *size)
        key_sent = a.key is None
        while not key_sent or (want and size != want):
            if not key_sent and (not a.key_when or os.path.exists(a.key_when)):
                for down in (1, 0):
                    c.sock.sendall(struct.pack(">BBHI", 4, down, 0, a.key))
                say("key %#x" % a.key)
                key_sent = True
            if not c.pending():
                if time.monotonic() >= deadline:
                    raise TimeoutError
                continue
            size, was_update = read_message(c, size, bpp)
            if was_update:
                update_request(c, 1, *size)
        if want:
            c2 = Conn(a.port, deadline)
            say("new-viewer %dx%d" % handshake(c2)[:2])
        return 0
    except TimeoutError:
        print("rfb-viewer: timed out", file=sys.stderr)
        return 1
    except (OSError, ConnectionError, ValueError) as e:
        print("rfb-viewer: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
