#!/usr/bin/python3
"""Drives burrow-manager through AT-SPI (the accessible names its controls
carry): checks a VM made with the command line is listed, walks the New VM
assistant (its host check passes), opens Settings, and, with KVM, starts the
new VM headless, waits for the running state and its screen thumbnail,
opens its console (the guest's screen in gtk-vnc, over the control socket,
while burrow-vm listens on no TCP port), closes it with the VM still running
and opens it again, stops the VM and deletes it.  With BURROW_KVM_DEVICE set (to a missing path), checks
instead that the assistant's host check fails and that Start shows why.
Writes screenshots of the windows into the folder given as the first
argument.  Every step waits for what it needs (a window, a state, the
screen's content); the limits only bound a hang.  Exit status: 0 passed,
1 failed."""
import os
import subprocess
import sys
import time

import gi
gi.require_version('Atspi', '2.0')
gi.require_version('Gdk', '3.0')
from gi.repository import Atspi, Gdk  # noqa: E402

SHOTS = sys.argv[1]
CLI_VM = os.environ['CLI_VM']
GUI_VM = os.environ['GUI_VM']
SERIAL_VM = os.environ.get('SERIAL_VM')
DISK = os.environ['GUI_DISK']
# Seconds one wait may take before the walk fails (tests/kvm/lib.sh).
LIMIT = float(os.environ.get('BURROW_WAIT_LIMIT', '300'))


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


def thumb_width(name):
    img = find('Screen thumbnail', 'icon', find(name, 'list item'), showing=False)
    return 1 if img and img.get_description() == "The VM's screen" else 0


def thumb_shows_text(name):
    return shows_text(find('Screen thumbnail', 'icon', find(name, 'list item')))


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


step('waiting for the main window')
main = window('Burrow')
step('the VM made with the command line is listed')
wait_for('row "%s"' % CLI_VM, lambda: find(CLI_VM, 'list item'))
select_row(CLI_VM)
screenshot(main, 'main-window.png')


def host_check_text(root):
    """The assistant's host check, once its verdict is in (it runs on a thread)."""
    def verdict():
        t = find('Host check', 'label', root).get_text(0, -1)
        return t if t.startswith(('PASS', 'WARN', 'FAIL')) else None
    return wait_for("the host check's verdict", verdict)


if os.environ.get('BURROW_KVM_DEVICE'):
    # The KVM device is missing: the assistant says so, and Start shows
    # why instead of starting a VM (the shell script checks none started).
    step('no KVM: the assistant shows the verdict')
    click('New')
    asst = window('New Virtual Machine')
    verdict = host_check_text(asst)
    if not verdict.startswith('FAIL') or 'does not exist' not in verdict:
        fail('the assistant does not say KVM is missing: ' + verdict)
    screenshot(asst, 'new-vm-assistant-no-kvm.png')
    click('Cancel', root=asst)
    wait_for('the assistant closed',
             lambda: all(find('New Virtual Machine', r) is None for r in ('frame', 'dialog', 'window')))
    step('no KVM: Start shows the reasons')
    click('Start', root=main)
    alert = window('Error')
    said = ' '.join(n.get_text(0, -1) for n in walk(alert) if n.get_role_name() == 'label')
    if 'does not exist' not in said or 'BURROW_KVM_DEVICE' not in said:
        fail('Start did not say why: ' + said)
    screenshot(alert, 'start-refused-no-kvm.png')
    click('Close', root=alert)
    if row_state(CLI_VM) != 'Powered off':
        fail('the VM is "%s" after a refused start' % row_state(CLI_VM))
    print('PASS', flush=True)
    sys.exit(0)

step('New VM assistant')
click('New')
asst = window('New Virtual Machine')
set_text('Name', GUI_VM)
wait_for('the name accepted', lambda: 'allowed' in find('Name check', 'label').get_text(0, -1))
# The host check ran on a thread meanwhile.
verdict = host_check_text(asst)
if not verdict.startswith(('PASS', 'WARN')):
    fail('the assistant says this host cannot run VMs: ' + verdict)
screenshot(asst, 'new-vm-assistant.png')
click('Next', root=asst)
mem = wait_for('the memory slider', lambda: find('Memory', 'slider', asst))
mem.get_value_iface().set_current_value(64)
click('Next', root=asst)
click('Use an existing disk image', 'radio button', asst)
set_text('Existing disk image', DISK)
wait_for('the disk accepted', lambda: 'attached' in find('Disk check', 'label').get_text(0, -1))
click('Next', root=asst)
click('Next', root=asst)
summary = wait_for('the summary', lambda: find('Summary', 'label', asst))
if GUI_VM not in summary.get_text(0, -1):
    fail('summary does not name the VM: ' + summary.get_text(0, -1))
click('Apply', root=asst)
wait_for('row "%s"' % GUI_VM, lambda: find(GUI_VM, 'list item'))
select_row(GUI_VM)
system = find('System', 'label', main).get_text(0, -1)
if 'Memory: 64 MiB' not in system:
    fail('the assistant\'s memory did not reach the definition: ' + system)

step('Settings dialog')
click('Settings', root=main)
dlg = window('%s — Settings' % GUI_VM)
screenshot(dlg, 'settings-dialog.png')
click('Cancel', root=dlg)

step('start headless')
click('Start headless', root=main)
wait_for('the running state', lambda: row_state(GUI_VM) == 'Running')
wait_for('a screen thumbnail', lambda: thumb_width(GUI_VM) > 0)
state = find('State', 'label', main).get_text(0, -1)
if not state.startswith('Running'):
    fail('details say "%s"' % state)
# The firmware's banner in the thumbnail, for the screenshot.
wait_for("the firmware's text in the thumbnail", lambda: thumb_shows_text(GUI_VM))
screenshot(main, 'main-window-running.png')


def tcp_listeners():
    """Listening TCP sockets of the GUI VM's burrow-vm, from ss (other
    tests' VMs may listen meanwhile)."""
    with open(os.path.join(os.environ['XDG_RUNTIME_DIR'], 'burrow', GUI_VM + '.pid')) as f:
        pid = f.read().strip()
    out = subprocess.run(['ss', '-Hltnp'], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if 'pid=%s,' % pid in line]


def open_console():
    click('Show console', root=main)
    win = window('%s — Console' % GUI_VM)
    screen = wait_for('the console\'s screen', lambda: find('Screen', 'drawing area', win) or
                      find('Screen', None, win))
    wait_for("the firmware's text in the console", lambda: shows_text(screen))
    return win


step('console (the screen over the control socket)')
con = open_console()
screenshot(con, 'console.png')
if tcp_listeners():
    fail('a console is shown and burrow-vm listens on TCP: %s' % tcp_listeners())
step('Send key: Ctrl+Alt+Del resets the guest (SeaBIOS reboots on it)')
sock = os.path.join(os.environ['XDG_RUNTIME_DIR'], 'burrow', GUI_VM + '.sock')
tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'burrow-control.py')
# "status" first: its reply line says the watcher is connected and hears events.
watcher = subprocess.Popen([sys.executable, tool, sock, 'status', '--wait-event', 'reset',
                            '--timeout', str(LIMIT)], stdout=subprocess.PIPE, text=True)
if '"return"' not in watcher.stdout.readline():
    fail('the control socket did not answer "status"')
click('Send key', 'toggle button', root=con)
click('Ctrl+Alt+Del', 'menu item')
wait_for('the guest to reset', lambda: watcher.poll() is not None)
if watcher.returncode != 0:
    fail('no reset event after Ctrl+Alt+Del (burrow-control.py status %d)' % watcher.returncode)
wait_for("the firmware's text in the console after the reset", lambda: shows_text(find('Screen', None, con)))

step('full screen, and back through the toolbar at the top edge')
click('Full screen', 'toggle button', root=con)
scr = Gdk.Screen.get_default()
wait_for('the console filling the screen',
         lambda: (lambda e: e.width >= scr.get_width() and e.height >= scr.get_height())(
             con.get_extents(Atspi.CoordType.SCREEN)))
Atspi.generate_mouse_event(scr.get_width() // 2, 1, 'abs')
click('Leave full screen', root=con)
wait_for('the console back in its window',
         lambda: con.get_extents(Atspi.CoordType.SCREEN).height < scr.get_height())
step('close the console: the VM runs on')
click('Close', root=con)
wait_for('the console closed', lambda: find('%s — Console' % GUI_VM, 'frame') is None)
if row_state(GUI_VM) != 'Running':
    fail('closing the console changed the VM to "%s"' % row_state(GUI_VM))
step('reopen the console')
con = open_console()
click('Close', root=con)
wait_for('the console closed', lambda: find('%s — Console' % GUI_VM, 'frame') is None)

step('a VM without a display: the serial console')
select_row(SERIAL_VM)
click('Start', root=main)
wait_for('"%s" running' % SERIAL_VM, lambda: row_state(SERIAL_VM) == 'Running')
click('Show console', root=main)
scon = window('%s — Console' % SERIAL_VM)
term = wait_for('the serial terminal', lambda: find('Serial console', 'terminal', scon))


def term_text():
    return term.get_text(0, -1) or ''


# Output made before the page connected is not kept (the port drops what
# nobody reads), so the guest's greeting may be gone: what is typed comes
# back, once the boot sector reads the keyboard.  Typing again now and then
# covers keys SeaBIOS took before the boot sector ran.
term.grab_focus()
last_typed = [0.0]


def echoed():
    if 'xyzzy' in term_text():
        return True
    if time.time() - last_typed[0] > 5:
        Atspi.generate_keyboard_event(0, 'xyzzy', Atspi.KeySynthType.STRING)
        last_typed[0] = time.time()
    return False


wait_for('typed text echoed by the guest', echoed)
screenshot(scon, 'serial-console.png')
Atspi.generate_keyboard_event(0, 'q', Atspi.KeySynthType.STRING)
wait_for('"%s" powered off from its serial console' % SERIAL_VM,
         lambda: row_state(SERIAL_VM) == 'Powered off')
click('Close', root=scon)
select_row(GUI_VM)

step('stop (ACPI power button)')
click('Stop', root=main)
wait_for('the powered-off state', lambda: row_state(GUI_VM) == 'Powered off')
if thumb_width(GUI_VM) > 0:
    fail('the thumbnail stayed after the VM stopped')

step('delete')
click('Delete', root=main)
alert = window('Delete virtual machine')
click('Delete', root=alert)
wait_for('row "%s" gone' % GUI_VM, lambda: find(GUI_VM, 'list item') is None)
print('PASS', flush=True)
