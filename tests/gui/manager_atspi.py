"""What the AT-SPI walks of burrow-manager share (tests/gui/drive_*.py):
finding its widgets by their accessible names and roles, waiting for
conditions with a bound that only catches a hang, clicking, typing,
capturing what the X server shows, the command line beside the manager,
and which TCP ports this test's VMs listen on.  Call init() first."""
import os
import socket
import subprocess
import sys
import time

import gi
gi.require_version('Atspi', '2.0')
gi.require_version('Gdk', '3.0')
from gi.repository import Atspi, Gdk  # noqa: E402

# Where screenshot() writes; set by init().
SHOTS = None
# The command line, for VMs made or changed beside the manager.
BURROW = os.environ.get('BURROW_CLI')
# Seconds one wait may take before the walk fails (tests/kvm/lib.sh).
LIMIT = float(os.environ.get('BURROW_WAIT_LIMIT', '300'))


def init(shots):
    global SHOTS
    SHOTS = shots


def fail(msg):
    print('FAIL: ' + msg, flush=True)
    try:
        a = app()
        for i in range(a.get_child_count()):
            w = a.get_child_at_index(i)
            print('   window: %s "%s"' % (w.get_role_name(), w.get_name()), flush=True)
    except Exception:
        pass
    sys.exit(1)


def step(msg):
    print('-- ' + msg, flush=True)


def walk(node, depth=0):
    if node is None or depth > 40:
        return
    yield node
    try:
        n = node.get_child_count()
    except Exception:
        return
    for i in range(n):
        try:
            yield from walk(node.get_child_at_index(i), depth + 1)
        except Exception:
            pass


def app():
    d = Atspi.get_desktop(0)
    for i in range(d.get_child_count()):
        a = d.get_child_at_index(i)
        if a is not None and a.get_name() == 'burrow-manager':
            return a
    return None


def find(name, role=None, root=None, showing=True):
    root = root or app()
    for n in walk(root):
        try:
            if n.get_name() != name:
                continue
            if role and n.get_role_name() != role:
                continue
            if showing and not n.get_state_set().contains(Atspi.StateType.SHOWING):
                continue
            return n
        except Exception:
            continue
    return None


def manager_gone():
    """The manager the session started has exited (BURROW_MANAGER_PID)."""
    pid = os.environ.get('BURROW_MANAGER_PID')
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # a zombie has exited too
    try:
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def wait_for(what, fn, timeout=LIMIT):
    end = time.time() + timeout
    while time.time() < end:
        if manager_gone():
            fail('burrow-manager exited while waiting for ' + what)
        try:
            r = fn()
        except Exception:
            r = None
        if r:
            return r
        time.sleep(0.2)
    fail('timed out waiting for ' + what)


def click(name, role='push button', root=None):
    b = wait_for('button "%s"' % name,
                 lambda: (lambda n: n if n and n.get_state_set().contains(Atspi.StateType.SENSITIVE) else None)(
                     find(name, role, root)))
    b.do_action(0)
    return b


def set_text(name, text):
    e = wait_for('entry "%s"' % name, lambda: find(name, 'text'))
    e.set_text_contents(text)


def window(name):
    return wait_for('window "%s"' % name,
                    lambda: next((n for n in walk(app(), 0) if n.get_name() == name and
                                  n.get_role_name() in ('frame', 'dialog', 'window', 'alert')), None))


def capture(node):
    """What the X server shows of node now, as a pixbuf."""
    ext = node.get_extents(Atspi.CoordType.SCREEN)
    root = Gdk.get_default_root_window()
    return Gdk.pixbuf_get_from_window(root, max(0, ext.x), max(0, ext.y), ext.width, ext.height)


def screenshot(win, path):
    # Once two captures 0.2 s apart agree, the last redraw has landed.
    last = [None]

    def settled():
        pb = capture(win)
        same = pb is not None and last[0] is not None and pb.get_pixels() == last[0].get_pixels()
        last[0] = pb
        return pb if same else None
    pb = wait_for('a still picture of ' + path, settled)
    pb.savev(os.path.join(SHOTS, path), 'png', [], [])
    step('screenshot ' + path)


def row_state(name):
    r = find(name, 'list item')
    return r.get_description() if r else None


def shows_text(node):
    """node as drawn shows the guest's text, not a blank screen: more than
    0.3% of its pixels differ from the most common colour."""
    pb = capture(node) if node is not None else None
    if pb is None:
        return False
    px, n, stride = pb.get_pixels(), pb.get_n_channels(), pb.get_rowstride()
    counts = {}
    for y in range(pb.get_height()):
        row = px[y * stride:y * stride + pb.get_width() * n]
        for x in range(0, len(row), n):
            counts[row[x:x + 3]] = counts.get(row[x:x + 3], 0) + 1
    total = pb.get_width() * pb.get_height()
    return total > 0 and total - max(counts.values()) > total * 0.003


def select_row(name):
    lst = wait_for('the VM list', lambda: find('Virtual machines', 'list box'))
    row = wait_for('row "%s"' % name, lambda: find(name, 'list item'))
    sel = lst.get_selection_iface()
    sel.select_child(row.get_index_in_parent())
    wait_for('"%s" selected' % name, lambda: find('Selected VM', 'label').get_text(0, -1) == name)


def cli(*args):
    """Runs the command line; its output, or the walk fails."""
    r = subprocess.run([BURROW] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        fail('burrow %s: %s' % (' '.join(args), r.stderr.strip()))
    return r.stdout


def showing(node):
    return node is not None and node.get_state_set().contains(Atspi.StateType.SHOWING)


def extents(node):
    return node.get_extents(Atspi.CoordType.SCREEN)


def screen_width():
    return Gdk.Screen.get_default().get_width()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def vm_ini(name):
    with open(os.path.join(os.environ['XDG_DATA_HOME'], 'burrow', 'vms', name, 'vm.ini')) as f:
        return f.read()


def spin_value(root, name):
    return find(name, 'spin button', root).get_value_iface().get_current_value()


def settings_section(dlg, title):
    """Shows a section of the Settings dialog, as a click in its sidebar does."""
    side = wait_for('the sections', lambda: find('Sections', None, dlg))
    lst = next(n for n in walk(side) if n.get_role_name() == 'list box')
    for i in range(lst.get_child_count()):
        if any(n.get_role_name() == 'label' and n.get_name() == title for n in walk(lst.get_child_at_index(i))):
            lst.get_selection_iface().select_child(i)
            return
    fail('no section "%s" in the Settings dialog' % title)


def our_vm_pids():
    """The burrow-vm processes of this test's VMs (their pid files): other
    programs on the machine may run VMs of their own meanwhile."""
    pids = set()
    run = os.path.join(os.environ['XDG_RUNTIME_DIR'], 'burrow')
    for f in os.listdir(run) if os.path.isdir(run) else []:
        if f.endswith('.pid'):
            try:
                with open(os.path.join(run, f)) as fh:
                    pids.add(int(fh.read().strip()))
            except (OSError, ValueError):
                pass
    return pids


def tcp_listeners():
    """Listening TCP sockets of this test's burrow-vm processes, from ss."""
    out = subprocess.run(['ss', '-Hltnp'], capture_output=True, text=True).stdout
    pids = our_vm_pids()
    return [line for line in out.splitlines() if '"burrow-vm"' in line and
            any('pid=%d,' % p in line for p in pids)]


def control(name, *args):
    """A command to the VM NAME's control socket (tests/tools/burrow-control.py);
    its reply's "return" object, or the walk fails."""
    import json
    sock = os.path.join(os.environ['XDG_RUNTIME_DIR'], 'burrow', name + '.sock')
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'burrow-control.py')
    r = subprocess.run([sys.executable, tool, sock] + list(args), capture_output=True, text=True)
    for line in r.stdout.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if 'return' in j:
            return j['return']
    fail('control %s %s: %s %s' % (name, ' '.join(args), r.stdout.strip(), r.stderr.strip()))


def key_events(name):
    """Key events the VM NAME took from its viewers and send-keys so far."""
    i = control(name, 'status')['input']
    return i['usb-key-events'] + i['ps2-key-events']


def prefs_text():
    """The manager's own settings file, '' when it has none."""
    path = os.path.join(os.environ['XDG_CONFIG_HOME'], 'burrow', 'manager.ini')
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ''
