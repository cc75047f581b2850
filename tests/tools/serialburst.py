#!/usr/bin/env python3
"""Helpers for tests/kvm/test_serial_flush.sh and the serialburst guest
(tests/guests/serialburst.S).

  serialburst.py check FILE [--stream] [--min N]
      FILE holds "serialburst: begin\\r\\n", then the guest's pattern, then
      "serialburst: end\\r\\n" and nothing more; with --stream, a prefix of the
      endless pattern of at least N bytes instead.
  serialburst.py slow-reader OUT -- COMMAND...
      runs COMMAND (burrow-vm --serial stdio) with stdout on a one-page pipe
      that is not read until COMMAND has said on stderr that it waits for its
      reader, or has ended; then reads the pipe to its end into OUT.  Exits
      with COMMAND's status.  COMMAND's stderr goes to OUT.err.
  serialburst.py unix-reader SOCKET OUT READY [--timeout S]
      creates READY once started, connects to a unix serial backend as soon
      as it exists and copies what comes to OUT until the other side closes.
"""

import argparse
import fcntl
import os
import socket
import subprocess
import sys
import time

BEGIN = b"serialburst: begin\r\n"
END = b"serialburst: end\r\n"
BURST_BYTES = 16 * 1024   # BURST_BYTES in serialburst.S
WAITING = b"serial: waiting for the reader"
F_SETPIPE_SZ = 1031


def pattern(n):
    """The first n bytes of the guest's pattern (period 64 * 32)."""
    period = bytes(10 if j % 64 == 63 else 0x41 + ((j // 64 + j % 64) % 32)
                   for j in range(64 * 32))
    return (period * (n // len(period) + 1))[:n]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check(path, stream, minimum):
    data = open(path, "rb").read()
    start = data.find(BEGIN)
    if start < 0:
        return "no \"serialburst: begin\" in %s (%d bytes)" % (path, len(data))
    got = data[start + len(BEGIN):]
    if stream:
        want = pattern(len(got))
        if len(got) < minimum:
            return "only %d bytes of the pattern, expected at least %d" % (len(got), minimum)
    else:
        want = pattern(BURST_BYTES) + END
    if got != want:
        i = first_difference(got, want)
        return ("%d bytes after the begin line, expected %d; they differ from offset %d: "
                "got %r, expected %r" % (len(got), len(want), i, got[i:i + 24], want[i:i + 24]))
    print("%s: %d bytes after the begin line, all as the guest wrote them" % (path, len(got)))
    return None


def slow_reader(out, command):
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)   # less than the burst
    except OSError as e:
        print("serialburst: cannot shrink the pipe: %s" % e, file=sys.stderr)
        return 2
    errpath = out + ".err"
    with open(errpath, "wb") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=w, stderr=err)
    os.close(w)
    # COMMAND runs under its own timeout; this loop ends when it does.
    while proc.poll() is None:
        with open(errpath, "rb") as f:
            if WAITING in f.read():
                break
        time.sleep(0.05)
    with open(out, "wb") as f:
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            f.write(chunk)
    return proc.wait()


def unix_reader(path, out, ready, timeout):
    deadline = time.monotonic() + timeout
    open(ready, "wb").close()
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            break
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                print("serialburst: cannot connect to %s: %s" % (path, e), file=sys.stderr)
                return 2
            time.sleep(0.01)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    with open(out, "wb") as f:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return 0
            f.write(chunk)


def main():
    ap = argparse.ArgumentParser(formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--stream", action="store_true")
    c.add_argument("--min", type=int, default=0)
    s = sub.add_parser("slow-reader")
    s.add_argument("out")
    s.add_argument("command", nargs=argparse.REMAINDER)
    u = sub.add_parser("unix-reader")
    u.add_argument("socket")
    u.add_argument("out")
    u.add_argument("ready")
    u.add_argument("--timeout", type=float, default=300)
    opts = ap.parse_args()
    if opts.cmd == "check":
        problem = check(opts.file, opts.stream, opts.min)
        if problem:
            print(problem)
            return 1
        return 0
    if opts.cmd == "slow-reader":
        command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
        return slow_reader(opts.out, command)
    return unix_reader(opts.socket, opts.out, opts.ready, opts.timeout)


if __name__ == "__main__":
    sys.exit(main())
