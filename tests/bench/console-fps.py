#!/usr/bin/python3
"""console-fps.py (--control SOCKET | --tcp HOST:PORT) [--seconds S]
[--warmup S]: the frame rate a gtk-vnc widget (GtkVnc.Display, as the
manager's console and virt-manager use it) sees for a guest whose whole
screen changes all the time (tests/guests/fbanim.img).

--control: the manager's way: one end of a socketpair handed to
burrow-vm's control socket ("display-connect", SCM_RIGHTS), the other
opened by the widget (vnc_display_open_fd).  --tcp: virt-manager's way:
the widget connects to the VM's VNC server over TCP.

The widget is shown in a window (under Xvfb) at 1:1.  After --warmup
seconds from its first update, for --seconds: the framebuffer updates the
widget's connection receives (vnc-framebuffer-update, one per rectangle)
add up to some area; that area over the screen's is the number of
full-screen frames.  It also counts the window's painted frames (the
widget's redraws, at most the frame clock's rate), and with
--steps FILE (burrow-vm's --firmware-log, where the guest writes a byte
a step) the guest's own steps over the same time.  Prints one line:
"fps FRAMES_PER_S redraws REDRAWS_PER_S updates N size WxH steps STEPS_PER_S"."""
import argparse
import json
import os
import socket
import sys
import time

import gi
gi.require_version('Gtk', '3.0')
gi.require_version('GtkVnc', '2.0')
from gi.repository import GLib, Gtk, GtkVnc  # noqa: E402


def hand_over(control):
    """A connected socket for the VM's VNC server, through its control
    socket; the caller's end comes back."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(60)
    c.connect(control)
    f = c.makefile('rb')
    json.loads(f.readline())                            # the greeting
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    socket.send_fds(c, [b'{"command":"display-connect","id":1}\n'], [theirs.fileno()])
    theirs.close()
    while True:
        line = f.readline()
        if not line:
            sys.exit('console-fps: the control socket closed')
        msg = json.loads(line)
        if msg.get('id') == 1:
            break
    c.close()
    if 'return' not in msg:
        sys.exit('console-fps: display-connect refused: %s' % msg.get('error'))
    return ours


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--control')
    ap.add_argument('--tcp')
    ap.add_argument('--seconds', type=float, default=10)
    ap.add_argument('--warmup', type=float, default=2)
    ap.add_argument('--steps')
    a = ap.parse_args()
    if bool(a.control) == bool(a.tcp):
        sys.exit('console-fps: give --control SOCKET or --tcp HOST:PORT')

    win = Gtk.Window()
    vnc = GtkVnc.Display()
    vnc.set_scaling(False)
    win.add(vnc)
    win.set_default_size(1024, 768)
    win.show_all()

    st = {'t0': None, 'area': 0, 'updates': 0, 'draws': 0, 'w': 0, 'h': 0, 'error': None,
          'steps0': None, 'steps': 0}

    def steps_now():
        return os.path.getsize(a.steps) if a.steps else 0

    def on_update(conn, x, y, w, h):
        now = time.monotonic()
        if st['t0'] is None:
            st['t0'] = now + a.warmup        # measured from here
            return
        if now < st['t0']:
            return
        if st['steps0'] is None:
            st['steps0'] = steps_now()
        if now >= st['t0'] + a.seconds:
            st['steps'] = steps_now() - st['steps0']
            Gtk.main_quit()
            return
        st['area'] += w * h
        st['updates'] += 1

    def on_paint(clock):
        if st['t0'] is not None and st['t0'] <= time.monotonic() < st['t0'] + a.seconds:
            st['draws'] += 1

    def on_init(widget):
        st['w'], st['h'] = vnc.get_width(), vnc.get_height()

    def on_gone(widget, *args):
        st['error'] = 'the VNC connection ended'
        Gtk.main_quit()

    vnc.get_connection().connect('vnc-framebuffer-update', on_update)
    # The window's frames painted: the widget's redraws, as the screen sees them.
    win.get_frame_clock().connect('after-paint', on_paint)
    vnc.connect('vnc-initialized', on_init)
    vnc.connect('vnc-disconnected', on_gone)
    vnc.connect('vnc-error', on_gone)
    if a.control:
        s = hand_over(a.control)
        if not vnc.open_fd(s.detach()):
            sys.exit('console-fps: the widget refused the socket')
    else:
        host, port = a.tcp.rsplit(':', 1)
        vnc.open_host(host, port)
    # Only bounds a hang: no update at all, or a connection that stalls.
    def hung():
        st['error'] = 'no end of the measurement within %d s' % int(a.warmup + a.seconds + 60)
        Gtk.main_quit()
        return False
    GLib.timeout_add_seconds(int(a.warmup + a.seconds + 60), hung)
    Gtk.main()
    if st['error']:
        sys.exit('console-fps: %s' % st['error'])
    if not st['w'] or not st['h']:
        sys.exit('console-fps: no screen size')
    print('fps %.2f redraws %.2f updates %d size %dx%d steps %.1f' %
          (st['area'] / (st['w'] * st['h']) / a.seconds, st['draws'] / a.seconds, st['updates'],
           st['w'], st['h'], st['steps'] / a.seconds), flush=True)


main()
