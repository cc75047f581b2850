#!/usr/bin/python3
"""drive_hidpi.py SHOTS SCALE: the console's pixels and pointer at a scale
factor (burrow-manager runs with GDK_SCALE=SCALE; this walk at 1, so what
it captures and where it moves the pointer are device pixels).

The VM PATTERN_VM runs tests/guests/fbpattern.img: a 1024x768 screen in
which every pixel differs from its neighbours.  Its console opens scaled to
fit, then at 1:1:
- at 1:1 the guest's screen appears on the X screen pixel for pixel: the
  VM's own screenshot is found whole, unscaled and unblurred, in device
  pixels, whatever the scale factor;
- in both modes the pointer moved to known device pixels over the screen
  reaches the guest at the guest pixel it lies over: the VM's status
  (input.pointer-position) says which pixel of which screen size the
  viewer sent.  At 1:1 that is exactly the pixel under the pointer; scaled
  to fit, it is what the widget's placement and scale factor give.
Every wait is for an event; the limits only bound a hang."""
import os
import subprocess
import sys
import time

import gi
gi.require_version('GdkPixbuf', '2.0')
from gi.repository import GdkPixbuf  # noqa: E402

# The shared helpers are imported: no bytecode cache in the source tree.
sys.dont_write_bytecode = True
from manager_atspi import (Atspi, Gdk, LIMIT, click, control, extents, fail, find, init, row_state,  # noqa: E402
                           screenshot, select_row, step, wait_for, window)

init(sys.argv[1])
SCALE = int(sys.argv[2])
VM = os.environ['PATTERN_VM']
W, H = 1024, 768


def colour(i):
    """Colour index i of the pattern's palette, as the DAC shows it."""
    e = lambda v: (v << 2) | (v >> 4)  # noqa: E731
    return e(i & 63), e(i >> 2), e(~i & 63)


def reference():
    """The VM's screen as it renders it (the control socket's screenshot),
    once the guest has drawn its last pixel, (W-1, H-1)."""
    path = os.path.join(os.environ['T'], 'reference-%d.png' % SCALE)

    def drawn():
        r = control(VM, 'screenshot', '{"path":"%s"}' % path)
        if (r['width'], r['height']) != (W, H):
            return None
        pb = GdkPixbuf.Pixbuf.new_from_file(path)
        px, n, st = pb.get_pixels(), pb.get_n_channels(), pb.get_rowstride()
        last = tuple(px[(H - 1) * st + (W - 1) * n:(H - 1) * st + (W - 1) * n + 3])
        return pb if last == colour((W - 1 + 4 * (H - 1)) & 255) else None
    return wait_for("the guest's pattern drawn whole", drawn)


def rows(pb):
    """The pixbuf's rows as RGB bytes."""
    px, n, stride = pb.get_pixels(), pb.get_n_channels(), pb.get_rowstride()
    out = []
    for y in range(pb.get_height()):
        row = px[y * stride:y * stride + pb.get_width() * n]
        if n == 4:
            row = b''.join(row[i:i + 3] for i in range(0, len(row), 4))
        out.append(bytes(row))
    return out


def device_rect(node):
    """A widget's rectangle in device pixels (AT-SPI gives the manager's
    logical pixels)."""
    e = extents(node)
    return e.x * SCALE, e.y * SCALE, e.width * SCALE, e.height * SCALE


def find_exact(ref_rows, around):
    """Where the reference image lies on the X screen pixel for pixel,
    searched in the rectangle around (device pixels); None if nowhere."""
    x0, y0, w0, h0 = around
    root = Gdk.get_default_root_window()
    sw, sh = Gdk.Screen.get_default().get_width(), Gdk.Screen.get_default().get_height()
    x0, y0 = max(0, x0 - 4), max(0, y0 - 4)
    w0, h0 = min(sw - x0, w0 + 8), min(sh - y0, h0 + 8)
    if w0 < W or h0 < H:
        return None
    cap = rows(Gdk.pixbuf_get_from_window(root, x0, y0, w0, h0))
    first = ref_rows[0]
    for cy in range(0, h0 - H + 1):
        cx = cap[cy].find(first)
        while cx >= 0:
            if cx % 3 == 0 and all(cap[cy + k][cx:cx + len(first)] == ref_rows[k] for k in range(H)):
                return x0 + cx // 3, y0 + cy
            cx = cap[cy].find(first, cx + 1)
    return None


def pointer_position():
    return control(VM, 'status')['input'].get('pointer-position')


def move_to(dx, dy, want, aim=None):
    """Moves the X pointer to device pixel (dx, dy), by way of a pixel
    beside it, and waits for the guest to get want; fails with what it got
    instead once the bound is reached.  gtk-vnc sends no position for the
    first motion it sees, and GTK may merge the two motions into that one:
    the moves are made again while the guest has not got the position.
    aim, when given, gives (dx, dy, want) afresh for each try: the window
    may still be getting its size when the walk begins."""
    last = [None]

    def arrived():
        p = pointer_position()
        last[0] = p
        return p and (p['x'], p['y'], p['width'], p['height']) == (want[0], want[1], W, H)
    end = time.time() + LIMIT
    while time.time() < end:
        if aim:
            dx, dy, want = aim()
        subprocess.run(['xdotool', 'mousemove', str(dx + 3), str(dy + 3)], check=True)
        subprocess.run(['xdotool', 'mousemove', str(dx), str(dy)], check=True)
        for _ in range(20):
            if arrived():
                return
            time.sleep(0.1)
    fail('the pointer at device pixel %d,%d reached the guest as %s, expected pixel %d,%d of %dx%d'
         % (dx, dy, last[0], want[0], want[1], W, H))


# Guest pixels to point at: near the corners, the middle, and odd ones (an
# error of a factor or of half a pixel shows on some of them).  Not the
# last few on the right and at the bottom: where the screen meets the
# window's edge, the window's resize border takes the pointer.
TARGETS = [(1, 1), (W - 12, H - 12), (W // 2 + 1, H // 2 - 1), (101, 687), (913, 37), (3, 500)]

step('waiting for the main window and the VM')
main = window('Burrow')
select_row(VM)
wait_for('"%s" running' % VM, lambda: row_state(VM) == 'Running')
click('Show console', root=main)
con = window('%s — Console' % VM)
screen = wait_for("the console's screen", lambda: find('Screen', 'drawing area', con))
ref_rows = rows(reference())

step('scaled to fit, GDK_SCALE=%d: the pointer maps through the scale' % SCALE)
fit = wait_for('the scale-to-fit toggle', lambda: find('Scale to window', 'toggle button', con))
if not fit.get_state_set().contains(Atspi.StateType.CHECKED):
    fail('the console does not start scaled to fit')
# gtk-vnc's mapping, in the manager's logical pixels: the screen scaled by
# the smaller of the two ratios, centred; an event at x (a double: device
# pixel / scale) maps to int((x - offset) / ratio).
def fit_aim(gx, gy):
    """Where guest pixel (gx, gy) is on the X screen now, and the pixel
    gtk-vnc's mapping gives back for it."""
    e = extents(screen)
    ratio = min(e.width / W, e.height / H)
    offx, offy = (e.width - int(W * ratio)) // 2, (e.height - int(H * ratio)) // 2
    dx = round(SCALE * (e.x + offx + (gx + 0.5) * ratio))
    dy = round(SCALE * (e.y + offy + (gy + 0.5) * ratio))
    want = (min(W - 1, int((dx / SCALE - e.x - offx) / ratio)), min(H - 1, int((dy / SCALE - e.y - offy) / ratio)))
    if abs(want[0] - gx) > 1 or abs(want[1] - gy) > 1:
        fail('the walk\'s own mapping is off: guest pixel %d,%d gives device pixel %d,%d, back %s' %
             (gx, gy, dx, dy, want))
    return dx, dy, want


for gx, gy in TARGETS:
    move_to(*fit_aim(gx, gy), aim=lambda: fit_aim(gx, gy))
e = extents(screen)
ratio = min(e.width / W, e.height / H)
print('   scaled to fit (ratio %.4f of logical pixels): %d points map right' % (ratio, len(TARGETS)), flush=True)

step('1:1, GDK_SCALE=%d: the guest\'s pixels exact in device pixels' % SCALE)
click('Scale to window', 'toggle button', root=con)
where = wait_for("the guest's screen pixel for pixel on the X screen",
                 lambda: find_exact(ref_rows, device_rect(con)))
ox, oy = where
dev = device_rect(screen)
print('   found whole at device pixel %d,%d (the screen widget: %s)' % (ox, oy, dev), flush=True)
screenshot(con, 'console-1to1-scale%d.png' % SCALE)
for gx, gy in TARGETS:
    move_to(ox + gx, oy + gy, (gx, gy))
print('   1:1: %d points reach the guest at the pixel under the pointer' % len(TARGETS), flush=True)
click('Close', root=con)
wait_for('the console closed', lambda: find('%s — Console' % VM, 'frame') is None)
if control(VM, 'status')['state'] != 'running':
    fail('the VM stopped with the console')
print('PASS', flush=True)
