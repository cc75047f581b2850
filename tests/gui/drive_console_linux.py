#!/usr/bin/python3
"""drive_console_linux.py SHOTS: the manager as the place where a Linux VM
is used (tests/linux/test_manager_console.sh builds the guest and says what
it runs).  Through AT-SPI, under Xvfb:
- the VM LINUX_VM starts from the manager (Start headless), and its console
  opens; burrow-vm listens on no TCP port while it shows;
- a command typed into the console's screen (xdotool, keys through gtk-vnc
  to the guest's VGA console) runs, and its output is read back from the
  screen as drawn, by OCR (tesseract);
- Send key's Ctrl+Alt+Del reaches the guest's kernel, which signals the
  process the guest named for it: the guest says so on its serial port;
- the console closes with the VM running and opens again, showing the
  same screen;
- on the serial console page, a login on the guest's serial port (getty,
  login, a password) and a command's answer, while `burrow console` is
  attached to the same port and sees the same answer;
- a port forward added in Settings' table reaches a listener in the guest.
A reader of the VM's serial port, beside the manager's terminal (the port
serves several clients), keeps what the guest reports.  Every wait is for
an event; the limits only bound a hang."""
import os
import socket
import subprocess
import sys
import threading
import time

import gi
gi.require_version('GdkPixbuf', '2.0')
from gi.repository import GdkPixbuf  # noqa: E402

# The shared helpers are imported: no bytecode cache in the source tree.
sys.dont_write_bytecode = True
from manager_atspi import (Atspi, BURROW, LIMIT, capture, cli, click, control, extents, fail, find,  # noqa: E402
                           free_port, row_state, screenshot, select_row, set_text, settings_section, step,
                           tcp_listeners, init, vm_ini, wait_for, walk, window)

init(sys.argv[1])
VM = os.environ['LINUX_VM']
PASSWORD = os.environ['GUEST_PASSWORD']
GUEST_PORT = int(os.environ['GUEST_PORT'])
T = os.environ['T']
RUN = os.path.join(os.environ['XDG_RUNTIME_DIR'], 'burrow')


class SerialReader(threading.Thread):
    """Everything the guest writes to its serial port from now on, as a
    client of the VM's serial socket, beside the manager's terminal."""

    def __init__(self, path, log):
        super().__init__(daemon=True)
        self.path, self.log, self.data = path, log, b''

    def run(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        with open(self.log, 'ab') as f:
            while True:
                b = s.recv(4096)
                if not b:
                    return
                self.data += b
                f.write(b)
                f.flush()

    def has(self, text):
        return text.encode() in self.data.replace(b'\r', b'')


def ocr(node, name):
    """The text tesseract reads on node as the X server shows it (scaled
    up twice first: the VGA font is small for it)."""
    pb = capture(node)
    if pb is None:
        return ''
    pb = pb.scale_simple(pb.get_width() * 2, pb.get_height() * 2, GdkPixbuf.InterpType.BILINEAR)
    path = os.path.join(T, name + '.png')
    pb.savev(path, 'png', [], [])
    r = subprocess.run(['tesseract', path, '-'], capture_output=True, text=True)
    with open(os.path.join(T, name + '.txt'), 'w') as f:
        f.write(r.stdout)
    return r.stdout


def type_keys(text):
    """Types text with the X keyboard (XTest) into the focused widget; a
    newline is the Return key (xdotool would type it as Linefeed, a keysym
    of its own that no PC keyboard has)."""
    for i, part in enumerate(text.split('\n')):
        if i:
            subprocess.run(['xdotool', 'key', 'Return'], check=True)
        if part:
            subprocess.run(['xdotool', 'type', '--delay', '120', part], check=True)


def focus_screen(con):
    """A click in the console's screen: the keyboard goes there."""
    scr = wait_for("the console's screen", lambda: find('Screen', 'drawing area', con))
    e = extents(scr)
    Atspi.generate_mouse_event(e.x + e.width // 2, e.y + e.height // 2, 'b1c')
    return scr


def open_console():
    click('Show console', root=main)
    return window('%s — Console' % VM)


step('waiting for the main window')
main = window('Burrow')
select_row(VM)
if tcp_listeners():
    fail('burrow-vm listens on TCP before anything started: %s' % tcp_listeners())

step('start the Linux VM from the manager')
click('Start headless', root=main)
console_sock = os.path.join(RUN, VM + '.console')
wait_for('the serial socket', lambda: os.path.exists(console_sock))
serial = SerialReader(console_sock, os.path.join(T, 'serial.log'))
serial.start()
wait_for('the running state', lambda: row_state(VM) == 'Running')

step('the console: the guest boots to a shell on its screen')
con = open_console()
scr = wait_for("the console's screen", lambda: find('Screen', 'drawing area', con))
# The guest's own banner on its VGA console, read back as drawn.
wait_for('the guest\'s banner on the screen (OCR)', lambda: 'READY' in ocr(scr, 'screen-ready'), timeout=3 * LIMIT)
if tcp_listeners():
    fail('the console shows the VM and burrow-vm listens on TCP: %s' % tcp_listeners())
step('no TCP port while the console shows (ss -ltnp)')

step('type a command into the console; read its output by OCR')
focus_screen(con)
type_keys('echo burrow | tr a-z A-Z\n')
# Only the command's output is in capitals: the typed line is not.
wait_for('the command\'s output on the screen (OCR)', lambda: 'BURROW' in ocr(scr, 'screen-command'))
screenshot(con, 'console-linux.png')

step('Send key: Ctrl+Alt+Del reaches the guest\'s kernel')
if serial.has('burrow-test: ctrl-alt-del'):
    fail('the guest reported Ctrl+Alt+Del before it was sent')
click('Send key', 'toggle button', root=con)
click('Ctrl+Alt+Del', 'menu item')
wait_for('the guest\'s report of Ctrl+Alt+Del on its serial port', lambda: serial.has('burrow-test: ctrl-alt-del'))
if control(VM, 'status')['state'] != 'running':
    fail('Ctrl+Alt+Del stopped the VM')

step('close the console: the VM runs on; reopen it: the same screen')
click('Close', root=con)
wait_for('the console closed', lambda: find('%s — Console' % VM, 'frame') is None)
if control(VM, 'status')['state'] != 'running':
    fail('closing the console changed the VM to "%s"' % control(VM, 'status')['state'])
wait_for('the list saying running', lambda: row_state(VM) == 'Running')
con = open_console()
scr = wait_for("the console's screen", lambda: find('Screen', 'drawing area', con))
wait_for('the command\'s output again after reopening (OCR)', lambda: 'BURROW' in ocr(scr, 'screen-reopened'))

step('the serial console page: log in, with `burrow console` attached too')
cli_out = os.path.join(T, 'cli-console.out')
cli_console = subprocess.Popen([BURROW, 'console', VM], stdin=subprocess.DEVNULL,
                               stdout=open(cli_out, 'wb'), stderr=subprocess.STDOUT)
vm_log = os.path.join(os.environ['XDG_STATE_HOME'], 'burrow', VM + '.log')


def clients():
    with open(vm_log) as f:
        log = f.read()
    return log.count('serial: client connected') - log.count('serial: client disconnected')
# The manager's terminal, the walk's reader and the command line.
wait_for('three clients on the serial port', lambda: clients() >= 3)
switcher = wait_for('the serial page\'s switch', lambda: next(
    (n for n in walk(con) if n.get_name() == 'Serial console' and n.get_role_name() in ('radio button', 'toggle button')),
    None))
switcher.do_action(0)
term = wait_for('the serial terminal', lambda: find('Serial console', 'terminal', con))


def term_text():
    return term.get_text(0, -1) or ''


term.grab_focus()
last_enter = [0.0]


def login_prompt():
    """getty's prompt, asked for again now and then (a prompt printed
    before the page attached is not in the terminal)."""
    lines = [line for line in term_text().splitlines() if line.strip()]
    if lines and lines[-1].rstrip().endswith('login:'):
        return True
    if time.time() - last_enter[0] > 10:
        type_keys('\n')
        last_enter[0] = time.time()
    return False


wait_for('the login prompt in the serial terminal', login_prompt)
type_keys('root\n')
wait_for('the password prompt', lambda: 'Password' in term_text())
type_keys(PASSWORD + '\n')
wait_for('the shell after the login', lambda: 'logged-in#' in term_text())
type_keys('echo $((20000 + 25))\n')
wait_for('the guest\'s answer in the serial terminal', lambda: '20025' in term_text())
screenshot(con, 'serial-console-linux.png')


def cli_has(text):
    with open(cli_out, 'rb') as f:
        return text.encode() in f.read()
wait_for('the same answer in `burrow console`', lambda: cli_has('20025'))
if cli_console.poll() is not None:
    fail('burrow console ended beside the manager\'s terminal: status %d' % cli_console.returncode)
click('Close', root=con)
wait_for('the console closed', lambda: find('%s — Console' % VM, 'frame') is None)

step('a port forward added in Settings reaches the guest\'s listener')
if tcp_listeners():
    fail('burrow-vm listens on TCP before a forward was added: %s' % tcp_listeners())
fwd_port = free_port()
click('Settings', root=main)
dlg = window('%s — Settings' % VM)
settings_section(dlg, 'Network')
click('Add forward', root=dlg)
fwd = window('Port forward')
set_text('Host port', str(fwd_port))
set_text('Guest port', str(GUEST_PORT))
wait_for('the forward accepted', lambda: 'reach port %d' % GUEST_PORT in find('Forward check', 'label', fwd).get_text(0, -1))
click('OK', root=fwd)
click('Save', root=dlg)
wait_for('Settings closed', lambda: find('%s — Settings' % VM, 'dialog') is None)
wait_for('burrow-vm listening on host port %d' % fwd_port,
         lambda: any(':%d ' % fwd_port in line for line in tcp_listeners()))
if 'tcp:127.0.0.1:%d-:%d' % (fwd_port, GUEST_PORT) not in vm_ini(VM):
    fail('the forward is not in the definition: ' + vm_ini(VM))


def hello():
    try:
        with socket.create_connection(('127.0.0.1', fwd_port), timeout=30) as s:
            data = b''
            while b'\n' not in data:
                b = s.recv(256)
                if not b:
                    break
                data += b
            return b'hello from the guest' in data
    except OSError:
        return False
wait_for('the guest\'s listener answering through the forward', hello)

step('force stop: the command line\'s console ends with the VM')
cli('stop', VM, '--force')
wait_for('the powered-off state', lambda: row_state(VM) == 'Powered off')
wait_for('burrow console ended', lambda: cli_console.poll() is not None)
print('PASS', flush=True)
