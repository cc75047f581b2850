#!/usr/bin/env python3
"""A minimal VNC viewer for tests, driven by a list of actions.

  rfb-viewer.py PORT [--timeout S] [ACTION...]
  rfb-viewer.py --control SOCKET [--timeout S] [ACTION...]

Connects to 127.0.0.1:PORT (retrying until the server listens), or with
--control hands one end of a socketpair to burrow-vm's control socket SOCKET
("display-connect", the socket sent with SCM_RIGHTS) and talks over the
other end (printing "handed over" once burrow-vm took it); then speaks
RFB 3.8 with the "None" security type (RFC 6143), asks for 32-bit pixels
and for the DesktopSize pseudo-encoding, keeps its own copy of the
framebuffer from the updates it asks for, and prints as it goes:
  serverinit WxH       the ServerInit's framebuffer size
  desktopsize WxH      each DesktopSize pseudo-rectangle (7.8.2)
Then runs the actions in order, one line each when done:
  when=PATH            waits until PATH exists (printed: "when PATH")
  key=KEYSYM           a KeyEvent press and release of the X keysym,
                       e.g. 0xff0d for Return ("key KEYSYM")
  down=KEYSYM          a KeyEvent press alone ("down KEYSYM"), and
  up=KEYSYM            a release alone ("up KEYSYM"), e.g. around a key
                       for Shift
  move=X,Y             a PointerEvent to X,Y with no button down ("move
                       X,Y")
  size=WxH             waits until the framebuffer is WxH ("size WxH")
  dark=S               waits up to S seconds for a screen with no pixel
                       lit (not black): "dark", else "not dark: lit N of
                       TOTAL" (the display refreshes on a timer, so the
                       screen may change a little after the guest did)
  bright=S             waits up to S seconds for some lit pixel: "bright:
                       lit N of TOTAL", else "not bright"
  new-viewer           a second connection's ServerInit ("new-viewer WxH")
Exit status: 0 done, 1 the timeout passed first, 2 the server could not be
talked to or an action was not understood.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time

ENC_RAW = 0
ENC_DESKTOP_SIZE = -223
# 32 bits per pixel, depth 24, little-endian, true colour, 8 bits of red,
# green and blue at bits 16, 8 and 0.
PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def say(line):
    print(line, flush=True)


def hand_over(control, deadline):
    """A socketpair end given to burrow-vm as a viewer; ours comes back."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(max(deadline - time.monotonic(), 1))
    c.connect(control)
    f = c.makefile("rb")
    json.loads(f.readline())                            # the greeting
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    socket.send_fds(c, [b'{"command":"display-connect","id":1}\n'], [theirs.fileno()])
    theirs.close()
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("the control socket closed")
        msg = json.loads(line)
        if msg.get("id") == 1:
            break
    c.close()
    if "return" not in msg:
        raise ConnectionError("display-connect refused: %s" % msg.get("error"))
    say("handed over")
    return ours


class Viewer:
    def __init__(self, port, deadline, control=None):
        self.deadline = deadline
        while control is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), 5)
                break
            except OSError:
                self.check_deadline()
                time.sleep(0.1)
        if control is not None:
            self.sock = hand_over(control, deadline)
        self.width, self.height = self.handshake()
        self.fb = bytearray(self.width * self.height * 4)
        self.covered = 0          # pixels received since the last full request

    def check_deadline(self):
        if time.monotonic() >= self.deadline:
            raise TimeoutError

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            self.check_deadline()
            self.sock.settimeout(min(self.deadline - time.monotonic(), 0.2))
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        return buf

    def handshake(self):
        """Version, security None, a shared ClientInit: the ServerInit's
        framebuffer size."""
        version = self.recv(12)
        if not version.startswith(b"RFB "):
            raise ConnectionError("not an RFB server: %r" % version)
        self.sock.sendall(b"RFB 003.008\n")
        n = self.recv(1)[0]
        if n == 0:
            reason = self.recv(struct.unpack(">I", self.recv(4))[0])
            raise ConnectionError("refused: %s" % reason.decode(errors="replace"))
        types = self.recv(n)
        if 1 not in types:
            raise ConnectionError("security type None not offered: %s" % list(types))
        self.sock.sendall(b"\x01")
        if struct.unpack(">I", self.recv(4))[0] != 0:
            raise ConnectionError("security handshake failed")
        self.sock.sendall(b"\x01")
        width, height = struct.unpack(">HH", self.recv(4))
        self.recv(16)                               # the server's pixel format
        self.recv(struct.unpack(">I", self.recv(4))[0])
        return width, height

    def start_updates(self):
        self.sock.sendall(struct.pack(">B3x", 0) + PIXEL_FORMAT)
        self.sock.sendall(struct.pack(">BxH", 2, 2) + struct.pack(">ii", ENC_RAW, ENC_DESKTOP_SIZE))
        self.request(False)

    def request(self, incremental):
        if not incremental:
            self.covered = 0
        self.sock.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0, self.width, self.height))

    def pump(self):
        """Handles what the server sent, if anything, within 0.1 s."""
        self.check_deadline()
        self.sock.settimeout(0.1)
        try:
            if not self.sock.recv(1, socket.MSG_PEEK):
                raise ConnectionError("the server closed the connection")
        except socket.timeout:
            return
        msg = self.recv(1)[0]
        if msg == 0:                                # FramebufferUpdate
            self.recv(1)
            for _ in range(struct.unpack(">H", self.recv(2))[0]):
                x, y, w, h, enc = struct.unpack(">HHHHi", self.recv(12))
                if enc == ENC_DESKTOP_SIZE:
                    self.width, self.height = w, h
                    self.fb = bytearray(w * h * 4)
                    self.covered = 0
                    say("desktopsize %dx%d" % (w, h))
                elif enc == ENC_RAW:
                    data = self.recv(w * h * 4)
                    if x + w > self.width or y + h > self.height:
                        raise ConnectionError("rectangle %dx%d+%d+%d outside the screen" % (w, h, x, y))
                    for row in range(h):
                        at = ((y + row) * self.width + x) * 4
                        self.fb[at:at + w * 4] = data[row * w * 4:(row + 1) * w * 4]
                    self.covered += w * h
                else:
                    raise ConnectionError("unrequested encoding %d" % enc)
            self.request(True)
        elif msg == 1:                              # SetColourMapEntries
            self.recv(3)
            self.recv(6 * struct.unpack(">H", self.recv(2))[0])
        elif msg == 3:                              # ServerCutText
            self.recv(3)
            self.recv(struct.unpack(">I", self.recv(4))[0])
        elif msg != 2:                              # 2: Bell
            raise ConnectionError("unknown server message %d" % msg)

    def lit(self):
        """The pixels of the whole screen, fresh, that are not black."""
        self.request(False)
        while self.covered < self.width * self.height:
            self.pump()
        b, g, r = self.fb[0::4], self.fb[1::4], self.fb[2::4]
        return sum(1 for p in zip(b, g, r) if any(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", nargs="?")
    ap.add_argument("actions", nargs="*")
    ap.add_argument("--control")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_intermixed_args()
    deadline = time.monotonic() + a.timeout
    try:
        if a.control is not None:
            # With --control every positional argument is an action.
            a.actions = ([a.port] if a.port is not None else []) + a.actions
            a.port = None
        elif a.port is None:
            raise ValueError("give a PORT or --control SOCKET")
        else:
            a.port = int(a.port)
        v = Viewer(a.port, deadline, a.control)
        say("serverinit %dx%d" % (v.width, v.height))
        v.start_updates()
        for action in a.actions:
            name, _, arg = action.partition("=")
            if name == "when":
                while not os.path.exists(arg):
                    v.pump()
                say("when %s" % arg)
            elif name == "key":
                keysym = int(arg, 0)
                for down in (1, 0):
                    v.sock.sendall(struct.pack(">BBxxI", 4, down, keysym))
                say("key %#x" % keysym)
            elif name in ("down", "up"):
                keysym = int(arg, 0)
                v.sock.sendall(struct.pack(">BBxxI", 4, name == "down", keysym))
                say("%s %#x" % (name, keysym))
            elif name == "move":
                x, y = (int(n) for n in arg.split(","))
                v.sock.sendall(struct.pack(">BBHH", 5, 0, x, y))
                say("move %d,%d" % (x, y))
            elif name == "size":
                want = tuple(int(n) for n in arg.split("x"))
                while (v.width, v.height) != want:
                    v.pump()
                say("size %dx%d" % want)
            elif name in ("dark", "bright"):
                give_up = time.monotonic() + float(arg)
                while True:
                    n = v.lit()
                    if (n == 0) == (name == "dark") or time.monotonic() >= give_up:
                        break
                    time.sleep(0.5)
                total = v.width * v.height
                if name == "dark":
                    say("dark" if n == 0 else "not dark: lit %d of %d" % (n, total))
                else:
                    say("bright: lit %d of %d" % (n, total) if n else "not bright")
            elif name == "new-viewer":
                other = Viewer(a.port, deadline, a.control)
                say("new-viewer %dx%d" % (other.width, other.height))
                other.sock.close()
            else:
                raise ValueError("unknown action %r" % action)
        return 0
    except TimeoutError:
        print("rfb-viewer: timed out", file=sys.stderr)
        return 1
    except (OSError, ConnectionError, ValueError) as e:
        print("rfb-viewer: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
