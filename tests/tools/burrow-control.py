#!/usr/bin/env python3
"""Talk to a burrow-vm control socket (JSON lines).

  burrow-control.py SOCKET COMMAND [JSON-ARGS]     run a command, print the reply
  burrow-control.py SOCKET --greeting              print the greeting
  burrow-control.py SOCKET --events N [--timeout S]          print N events
  burrow-control.py SOCKET COMMAND --events N      run a command, then print
                                                   N events (those that came
                                                   before the reply count too)
  burrow-control.py SOCKET --wait-event NAME       print events until one
                                                   named NAME (with COMMAND:
                                                   after running it)
  burrow-control.py SOCKET --raw LINE [--replies N]   send LINE as it is ('-':
                                                   read it from stdin)

Every message is printed as one JSON line, as the server sent it.
Exit status: 0 the reply was a "return" (or the events came), 1 it was an
"error", 2 connection problems (cannot connect, no greeting, connection
closed), 3 the timeout passed first.
"""

import argparse
import json
import os
import select
import socket
import sys
import time

EXIT_OK, EXIT_ERROR, EXIT_CONN, EXIT_TIMEOUT = 0, 1, 2, 3


class ConnError(Exception):
    pass


class Timeout(Exception):
    pass


class Client:
    def __init__(self, path, timeout, connect_timeout):
        self.deadline = time.monotonic() + timeout
        self.buf = b""
        self.pending_events = []
        give_up = time.monotonic() + connect_timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() >= give_up:
                    raise ConnError("cannot connect to %s: %s" % (path, e.strerror or e))
                time.sleep(0.05)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ConnError("send: %s" % (e.strerror or e))

    def read_line(self):
        """Next line from the server, as (raw text, parsed object)."""
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                raise Timeout()
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise ConnError("receive: %s" % (e.strerror or e))
            if not chunk:
                raise ConnError("connection closed by the server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8", errors="replace")
        try:
            return text, json.loads(text)
        except ValueError:
            raise ConnError("server sent something that is not JSON: %.200s" % text)

    def read_reply(self):
        """Next line that is not an event; events met on the way are kept."""
        while True:
            text, msg = self.read_line()
            if isinstance(msg, dict) and "event" in msg:
                self.pending_events.append(text)
                continue
            return text, msg

    def read_event(self):
        if self.pending_events:
            return self.pending_events.pop(0)
        while True:
            text, msg = self.read_line()
            if isinstance(msg, dict) and "event" in msg:
                return text


def main():
    ap = argparse.ArgumentParser(
        description="Client for the burrow-vm control socket.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("socket", help="path of the control socket")
    ap.add_argument("command", nargs="?", help="command name")
    ap.add_argument("arguments", nargs="?", help="command arguments, a JSON object")
    ap.add_argument("--id", default="1", help="request id, as JSON (default: 1)")
    ap.add_argument("--events", type=int, default=0, metavar="N", help="wait for N events")
    ap.add_argument("--wait-event", metavar="NAME",
                    help="print events until one named NAME has come")
    ap.add_argument("--timeout", type=float, default=10.0, metavar="S",
                    help="give up after S seconds in all (default 10)")
    ap.add_argument("--connect-timeout", type=float, default=0.0, metavar="S",
                    help="keep trying to connect for S seconds (default: try once)")
    ap.add_argument("--raw", metavar="LINE", help="send LINE verbatim ('-': stdin)")
    ap.add_argument("--replies", type=int, default=1, metavar="N",
                    help="with --raw: replies to wait for (default 1)")
    ap.add_argument("--greeting", action="store_true", help="print the greeting")
    opts = ap.parse_args()

    if opts.raw is not None and opts.command:
        ap.error("--raw and COMMAND exclude each other")
    args = None
    if opts.arguments is not None:
        try:
            args = json.loads(opts.arguments)
        except ValueError as e:
            ap.error("JSON-ARGS is not JSON: %s" % e)
        if not isinstance(args, dict):
            ap.error("JSON-ARGS must be a JSON object")
    try:
        req_id = json.loads(opts.id)
    except ValueError:
        req_id = opts.id

    status = EXIT_OK
    try:
        c = Client(opts.socket, opts.timeout, opts.connect_timeout)
        text, greeting = c.read_line()
        if not isinstance(greeting, dict) or "burrow" not in greeting:
            raise ConnError("no greeting from the server, got: %.200s" % text)
        if opts.greeting:
            print(text, flush=True)

        if opts.command:
            req = {"command": opts.command, "id": req_id}
            if args is not None:
                req["arguments"] = args
            c.send(json.dumps(req, separators=(",", ":")).encode() + b"\n")
            while True:
                text, msg = c.read_reply()
                if isinstance(msg, dict) and msg.get("id") == req_id:
                    break
            print(text, flush=True)
            status = EXIT_OK if "return" in msg else EXIT_ERROR
        elif opts.raw is not None:
            if opts.raw == "-":
                data = sys.stdin.buffer.read()
            else:
                data = os.fsencode(opts.raw)
            if not data.endswith(b"\n"):
                data += b"\n"
            c.send(data)
            for _ in range(opts.replies):
                text, msg = c.read_reply()
                print(text, flush=True)
                if not (isinstance(msg, dict) and "return" in msg):
                    status = EXIT_ERROR

        for _ in range(opts.events):
            print(c.read_event(), flush=True)
        while opts.wait_event is not None:
            text = c.read_event()
            print(text, flush=True)
            if json.loads(text).get("event") == opts.wait_event:
                break
    except ConnError as e:
        print("burrow-control: %s" % e, file=sys.stderr)
        return EXIT_CONN
    except Timeout:
        print("burrow-control: timed out after %g s" % opts.timeout, file=sys.stderr)
        return EXIT_TIMEOUT
    return status


if __name__ == "__main__":
    sys.exit(main())
