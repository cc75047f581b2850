#!/usr/bin/python3
"""Drives burrow-manager through AT-SPI (the accessible names its controls
carry).  With START_EMPTY set the manager starts with no VM: its window
offers a New VM button; the walk then makes VMs with the command line
(BURROW_CLI) and checks they are listed, that a 64-character name leaves
the window within the screen, that the list sorts naturally (vm-2 before
vm-10) and that its search entry filters it; that Settings never
overwrites a change made by `burrow modify` while it is open (it offers
to reload), refuses a relative CD/DVD path with a visible message, adds a
second network adapter, and turns the sound card's microphone on.  It checks the About dialog shows
Burrow's icon, walks the New VM assistant (its host check passes; a name
with spaces and an accent; memory as a number beside the slider, with a
warning beyond the host's free memory; Finish on the media page; a plain
summary; Create), and, with KVM, starts the new VM headless, waits for
the running state and its screen thumbnail (rows keep one height), pauses
it (a badge and the state say so), opens its console (the guest's screen
in gtk-vnc, over the control socket, while burrow-vm listens on no TCP
port; Send key's Ctrl+Alt+Del resets the guest; full screen and back),
closes it with the VM still running and opens it again; moves it into the
main window in place of the list (remembered in the manager's settings
file; Ctrl+P typed there reaches the guest instead of pausing the VM;
Send key, full screen, back to the list with the VM running; reopened, it
shows in the main window again) and back to a window; uses a VM without
a display through the console's serial page (typed text echoes, 'q' powers
it off); adds a port forward in Settings' table (validated as typed) that
the running VM listens on at once, removes it, stops the VM and deletes
it; a VM started by the command line with --vnc shows VNC and its
address, Force stop asks first, and Stop, which its guest ignores, offers
Force stop.  With BURROW_KVM_DEVICE set (to a missing path), checks
instead that the assistant's host check fails and that Start shows why.
Writes screenshots of the windows into the folder given as the first
argument.  Every step waits for what it needs (a window, a state, the
screen's content); the limits only bound a hang.  Exit status: 0 passed,
1 failed."""
import os
import subprocess
import sys
import time

# The shared helpers are imported: no bytecode cache in the source tree.
sys.dont_write_bytecode = True
from manager_atspi import (Atspi, Gdk, BURROW, LIMIT, app, capture, cli, extents, fail, find, free_port,  # noqa: F401
                           init, row_state, screen_width, screenshot, select_row, set_text, settings_section,
                           shows_text, showing, spin_value, step, tcp_listeners, vm_ini, wait_for, walk, window,
                           click, control, key_events, prefs_text)

init(sys.argv[1])
CLI_VM = os.environ['CLI_VM']
GUI_VM = os.environ['GUI_VM']
SERIAL_VM = os.environ.get('SERIAL_VM')
DISK = os.environ['GUI_DISK']


def thumb_width(name):
    img = find('Screen thumbnail', 'icon', find(name, 'list item'), showing=False)
    return 1 if img and img.get_description() == "The VM's screen" else 0


def thumb_shows_text(name):
    return shows_text(find('Screen thumbnail', 'icon', find(name, 'list item')))


step('waiting for the main window')
main = window('Burrow')
if os.environ.get('START_EMPTY'):
    step('no VM yet: the window invites to create the first one')
    wait_for('the welcome page', lambda: find('Welcome', 'label', main))
    new_vm = wait_for('the "New VM" button', lambda: find('New VM', 'push button', main))
    if not new_vm.get_state_set().contains(Atspi.StateType.SENSITIVE):
        fail('the welcome page\'s "New VM" button cannot be pressed')
    screenshot(main, 'main-window-empty.png')
    cli('create', CLI_VM, '--os', 'debian', '--no-disk', '--display', 'none')
    if SERIAL_VM:
        cli('create', SERIAL_VM, '--os', 'other', '--memory', '64', '--disk', os.environ['SERIAL_DISK'],
            '--net', 'none', '--display', 'none')
    wait_for('the welcome page gone', lambda: find('Welcome', 'label', main) is None)
step('the VM made with the command line is listed')
wait_for('row "%s"' % CLI_VM, lambda: find(CLI_VM, 'list item'))
select_row(CLI_VM)
screenshot(main, 'main-window.png')

# The About dialog shows Burrow's icon (from the build tree here: the
# manager is not installed): a picture with the icon's sky and hill.
step('About: the icon')
menu = wait_for('the main menu button', lambda: find('Main menu', 'toggle button', main) or
                find('Main menu', 'push button', main))
menu.do_action(0)
click('About Burrow', root=app())
about = window('About Burrow')
logo = wait_for("the About dialog's logo", lambda: next((n for n in walk(about) if n.get_role_name() == 'icon'), None))


def icon_colours():
    pb = capture(logo)
    px, n, stride = pb.get_pixels(), pb.get_n_channels(), pb.get_rowstride()
    green = blue = 0
    for y in range(pb.get_height()):
        for x in range(0, pb.get_width() * n, n):
            r, g, b = px[y * stride + x:y * stride + x + 3]
            green += g > r + 40 and g > b + 20
            blue += b > r + 40 and b > g
    return green > 500 and blue > 500
wait_for("Burrow's icon in the About dialog (not a missing-image sign)", icon_colours, timeout=20)
screenshot(about, 'about.png')
click('Close', root=about)
wait_for('the About dialog closed', lambda: find('About Burrow', 'dialog') is None)

if BURROW and not os.environ.get('BURROW_KVM_DEVICE'):
    # A name of the longest kind is cut short on screen: the window and its
    # header bar's buttons stay within the screen.
    step('a 64-character name')
    long_name = ('a-virtual-machine-with-a-very-long-name-' + 'x' * 64)[:64]
    cli('create', long_name, '--os', 'debian', '--no-disk', '--display', 'none')
    wait_for('row "%s"' % long_name, lambda: find(long_name, 'list item'))
    select_row(long_name)
    menu = wait_for('the main menu button', lambda: find('Main menu', 'toggle button', main) or
                    find('Main menu', 'push button', main))

    def within_screen():
        w, b = extents(main), extents(menu)
        return w.x >= 0 and w.x + w.width <= screen_width() and b.x + b.width <= screen_width()
    end = time.time() + 5   # the window settles on its new size
    while not within_screen() and time.time() < end:
        time.sleep(0.2)
    if not within_screen():
        fail('with a 64-character name the window spans x %d to %d and its menu button ends at %d, '
             'on a screen %d px wide' % (extents(main).x, extents(main).x + extents(main).width,
                                         extents(menu).x + extents(menu).width, screen_width()))
    screenshot(main, 'long-name.png')

    # vm-2 before vm-10; the search entry filters the list.
    step('natural order and search')
    many = ['vm-10', 'vm-2', 'vm-1', 'vm-11']
    for n in many:
        cli('create', n, '--no-disk', '--net', 'none')
    for n in many:
        wait_for('row "%s"' % n, lambda: find(n, 'list item'))

    def order():
        ys = {n: extents(find(n, 'list item')).y for n in many}
        return sorted(many, key=lambda n: ys[n])
    if order() != ['vm-1', 'vm-2', 'vm-10', 'vm-11']:
        fail('the list is not in natural order: %s' % order())
    search = wait_for('the search entry', lambda: find('Search VMs', None, main))
    search.set_text_contents('VM-1')
    wait_for('the list filtered', lambda: not showing(find('vm-2', 'list item', showing=False)))
    for n in ('vm-1', 'vm-10', 'vm-11'):
        if not showing(find(n, 'list item', showing=False)):
            fail('searching "VM-1" hides %s' % n)
    for n in ('vm-2', CLI_VM, long_name):
        if showing(find(n, 'list item', showing=False)):
            fail('searching "VM-1" shows %s' % n)
    screenshot(main, 'search.png')
    search.set_text_contents('no-such-vm')
    wait_for('the "no match" placeholder', lambda: find('No match', 'label', main))
    search.set_text_contents('')
    wait_for('every row back', lambda: all(showing(find(n, 'list item', showing=False))
                                            for n in many + [CLI_VM, long_name]))
    for n in many + [long_name]:
        cli('delete', n)
    for n in many + [long_name]:
        wait_for('row "%s" gone' % n, lambda: find(n, 'list item', showing=False) is None)
    select_row(CLI_VM)

    # Settings open while the command line changes the VM: Save refuses to
    # overwrite that change and offers to reload.
    step('Settings: a change made elsewhere is not overwritten')
    click('Settings', root=main)
    dlg = window('%s — Settings' % CLI_VM)
    cli('modify', CLI_VM, '--memory', '1234')
    click('Save', root=dlg)
    alert = window('Changed elsewhere')
    screenshot(alert, 'settings-changed-elsewhere.png')
    if 'memory=1234' not in vm_ini(CLI_VM):
        fail('Save overwrote the change made elsewhere: ' + vm_ini(CLI_VM))
    click('Reload', root=alert)
    wait_for('the question gone', lambda: find('Changed elsewhere', 'alert') is None)
    dlg = window('%s — Settings' % CLI_VM)
    settings_section(dlg, 'System')
    wait_for('the settings reloaded', lambda: spin_value(dlg, 'Memory (MiB)') == 1234)

    # A CD/DVD image named by a relative path, or one that does not exist,
    # is refused as it is typed and on Save.
    step('Settings: a bogus CD/DVD path is refused')
    settings_section(dlg, 'Storage')
    set_text('CD/DVD image', 'bogus.iso')
    wait_for('the CD/DVD check', lambda: 'full path' in find('CD/DVD check', 'label', dlg).get_text(0, -1))
    click('Save', root=dlg)
    wait_for('the refusal under the sections',
             lambda: 'full path' in find('Settings check', 'label', dlg).get_text(0, -1))
    screenshot(dlg, 'settings-cdrom-refused.png')
    if 'bogus.iso' in vm_ini(CLI_VM):
        fail('the relative CD/DVD path was saved: ' + vm_ini(CLI_VM))
    if not showing(dlg):
        fail('Settings closed although its CD/DVD path is refused')
    click('Cancel', root=dlg)
    wait_for('Settings closed', lambda: find('%s — Settings' % CLI_VM, 'dialog') is None)

    # A second network adapter, on its own page.
    step('Settings: a second network adapter')
    click('Settings', root=main)
    dlg = window('%s — Settings' % CLI_VM)
    settings_section(dlg, 'Network')
    tabs = wait_for('the adapters', lambda: find('Network adapters', 'page tab list', dlg))
    tabs.get_selection_iface().select_child(1)
    switch = wait_for("adapter 2's switch", lambda: find('Enabled (NAT)', 'toggle button', dlg))
    switch.do_action(0)
    wait_for('adapter 2 enabled', lambda: find('Adapter model', 'combo box', dlg).get_state_set().contains(
        Atspi.StateType.SENSITIVE))
    screenshot(dlg, 'settings-adapter-2.png')
    click('Save', root=dlg)
    wait_for('Settings closed', lambda: find('%s — Settings' % CLI_VM, 'dialog') is None)
    if '[nic 1]' not in vm_ini(CLI_VM):
        fail('the second adapter is not in the definition: ' + vm_ini(CLI_VM))

    # Sound: a Debian VM has a card on this desktop; its microphone is
    # off until asked for, and goes with the card.
    step('Settings: sound and microphone')
    click('Settings', root=main)
    dlg = window('%s — Settings' % CLI_VM)
    settings_section(dlg, 'Sound')
    wait_for('the sound card choice', lambda: find('Sound card', 'combo box', dlg))
    if 'audio=pa\n' not in vm_ini(CLI_VM):
        fail("the Debian VM's sound card is not this desktop's: " + vm_ini(CLI_VM))
    mic = wait_for('the microphone check box', lambda: find('Microphone', 'check box', dlg))
    if mic.get_state_set().contains(Atspi.StateType.CHECKED):
        fail('the microphone is on by default')
    mic.do_action(0)
    wait_for('the microphone checked', lambda: mic.get_state_set().contains(Atspi.StateType.CHECKED))
    screenshot(dlg, 'settings-sound.png')
    click('Save', root=dlg)
    wait_for('Settings closed', lambda: find('%s — Settings' % CLI_VM, 'dialog') is None)
    if 'audio=pa\naudio-in=on\n' not in vm_ini(CLI_VM):
        fail('the microphone is not in the definition: ' + vm_ini(CLI_VM))


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
# The slider and the number beside it are one; beyond the host's free
# memory a warning says what it means.
mem = wait_for('the memory slider', lambda: find('Memory', 'slider', asst))
mem_spin = wait_for('the memory in MiB', lambda: find('Memory in MiB', 'spin button', asst))
top = mem.get_value_iface().get_maximum_value()
mem_spin.get_value_iface().set_current_value(top)
wait_for('the slider to follow the number', lambda: mem.get_value_iface().get_current_value() == top)
wait_for('the free-memory warning', lambda: 'free memory' in find('Memory check', 'label', asst).get_text(0, -1) and
         '⚠' in find('Memory check', 'label', asst).get_text(0, -1))
screenshot(asst, 'new-vm-memory-warning.png')
mem_spin.get_value_iface().set_current_value(64)
wait_for('the slider at 64 MiB', lambda: mem.get_value_iface().get_current_value() == 64)
wait_for('the warning gone', lambda: '⚠' not in find('Memory check', 'label', asst).get_text(0, -1))
click('Next', root=asst)
click('Use an existing disk image', 'radio button', asst)
set_text('Existing disk image', DISK)
wait_for('the disk accepted', lambda: 'attached' in find('Disk check', 'label').get_text(0, -1))
click('Next', root=asst)
# The media page keeps a Finish button, as the pages before it.
wait_for('the media page', lambda: find('Installation ISO', 'text', asst))
click('Finish', root=asst)
summary = wait_for('the summary', lambda: find('Summary', 'label', asst))
if GUI_VM not in summary.get_text(0, -1):
    fail('summary does not name the VM: ' + summary.get_text(0, -1))
if summary.get_state_set().contains(Atspi.StateType.SELECTABLE_TEXT):
    fail('the summary is selectable text (it shows as all selected)')
screenshot(asst, 'new-vm-summary.png')
click('Create', root=asst)
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
# Rows keep one height, with a thumbnail or without.
h_running, h_off = extents(find(GUI_VM, 'list item')).height, extents(find(CLI_VM, 'list item')).height
if h_running != h_off:
    fail('a row with a thumbnail is %d px high, one without %d px' % (h_running, h_off))

step('pause: shown apart from running')
click('Pause', root=main)
wait_for('the paused state', lambda: row_state(GUI_VM) == 'Paused')
wait_for('the pause badge on the row', lambda: find('Paused', 'icon', find(GUI_VM, 'list item')))
state = find('State', 'label', main).get_text(0, -1)
if not state.startswith('Paused'):
    fail('details of the paused VM say "%s"' % state)
screenshot(main, 'paused.png')
click('Resume', root=main)
wait_for('the running state again', lambda: row_state(GUI_VM) == 'Running')
wait_for('the pause badge gone', lambda: find('Paused', 'icon', find(GUI_VM, 'list item')) is None)


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

# The console moves into the main window, in place of the list, and the
# manager remembers it: the next one opens there too.
step('the console in the main window')
if 'placement=main' in prefs_text():
    fail('the manager says consoles open in the main window before anyone chose it: ' + prefs_text())
click('Show in the main window', root=con)
wait_for('the console window gone', lambda: find('%s — Console' % GUI_VM, 'frame') is None)
screen = wait_for("the console's screen in the main window", lambda: find('Screen', 'drawing area', main) or
                  find('Screen', 'filler', main))
wait_for("the guest's text in the main window's console", lambda: shows_text(screen))
if showing(find('Virtual machines', 'list box', showing=False)):
    fail('the VM list still shows beside the console in the main window')
wait_for('the choice remembered', lambda: 'placement=main' in prefs_text())
screenshot(main, 'console-in-main-window.png')
# Keys typed there are the guest's, not the window's shortcuts: Ctrl+P
# (Pause) reaches the guest and the VM runs on.
ext = extents(screen)
Atspi.generate_mouse_event(ext.x + ext.width // 2, ext.y + ext.height // 2, 'b1c')
before = key_events(GUI_VM)
subprocess.run(['xdotool', 'key', '--clearmodifiers', 'ctrl+p'], check=True)
wait_for('Ctrl+P in the guest (4 key events)', lambda: key_events(GUI_VM) >= before + 4)
if control(GUI_VM, 'status')['state'] != 'running':
    fail('Ctrl+P typed into the console made the VM "%s"' % control(GUI_VM, 'status')['state'])
step('Send key and full screen from the main window')
watcher = subprocess.Popen([sys.executable, tool, sock, 'status', '--wait-event', 'reset',
                            '--timeout', str(LIMIT)], stdout=subprocess.PIPE, text=True)
if '"return"' not in watcher.stdout.readline():
    fail('the control socket did not answer "status"')
click('Send key', 'toggle button', root=main)
click('Ctrl+Alt+Del', 'menu item')
wait_for('the guest to reset', lambda: watcher.poll() is not None)
if watcher.returncode != 0:
    fail('no reset event after Ctrl+Alt+Del in the main window (status %d)' % watcher.returncode)
click('Full screen', 'toggle button', root=main)
wait_for('the main window filling the screen',
         lambda: (lambda e: e.width >= scr.get_width() and e.height >= scr.get_height())(extents(main)))
wait_for('the console bar hidden in full screen', lambda: not showing(find('Back to the list', 'push button',
                                                                          main, showing=False)))
Atspi.generate_mouse_event(scr.get_width() // 2, 1, 'abs')
click('Leave full screen', root=main)
wait_for('the main window back from full screen', lambda: extents(main).height < scr.get_height())
step('back to the list: the VM runs on')
click('Back to the list', root=main)
wait_for('the list back', lambda: showing(find('Virtual machines', 'list box', showing=False)))
if row_state(GUI_VM) != 'Running':
    fail('leaving the console changed the VM to "%s"' % row_state(GUI_VM))
step('reopen: in the main window again, as remembered')
click('Show console', root=main)
screen = wait_for("the console's screen in the main window", lambda: find('Screen', 'drawing area', main) or
                  find('Screen', 'filler', main))
wait_for("the guest's text in the main window's console", lambda: shows_text(screen))
if find('%s — Console' % GUI_VM, 'frame') is not None:
    fail('the console opened in a window of its own, not where the user last had it')
click('Show in its own window', root=main)
con = window('%s — Console' % GUI_VM)
wait_for('the list back in the main window', lambda: showing(find('Virtual machines', 'list box', showing=False)))
wait_for('the choice remembered', lambda: 'placement=window' in prefs_text())
wait_for("the guest's text in the console's window", lambda: shows_text(find('Screen', None, con)))
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

# A port forward added to the running VM's table: burrow-vm listens on the
# host port at once, and the definition keeps it.
step('port forwards of the running VM')
fwd_port = free_port()
click('Settings', root=main)
dlg = window('%s — Settings' % GUI_VM)
settings_section(dlg, 'Network')
click('Add forward', root=dlg)
fwd = window('Port forward')
set_text('Host port', '70000')
wait_for('the port refused as typed', lambda: '65535' in find('Forward check', 'label', fwd).get_text(0, -1))
if find('OK', 'push button', fwd).get_state_set().contains(Atspi.StateType.SENSITIVE):
    fail('OK can be pressed with host port 70000')
set_text('Host port', str(fwd_port))
set_text('Guest port', '22')
wait_for('the forward accepted', lambda: 'reach port 22' in find('Forward check', 'label', fwd).get_text(0, -1))
click('OK', root=fwd)
table = wait_for('the forwards table', lambda: find('Port forwards', 'table', dlg) or
                 find('Port forwards', 'tree table', dlg))
wait_for('the forward in the table', lambda: any(n.get_name() == str(fwd_port) for n in walk(table)))
click('Add forward', root=dlg)
fwd = window('Port forward')
set_text('Host port', str(fwd_port))
set_text('Guest port', '80')
wait_for('a second forward of the port refused',
         lambda: 'already' in find('Forward check', 'label', fwd).get_text(0, -1))
screenshot(fwd, 'port-forward-duplicate.png')
click('Cancel', root=fwd)
screenshot(dlg, 'settings-port-forwards.png')
click('Save', root=dlg)
wait_for('Settings closed', lambda: find('%s — Settings' % GUI_VM, 'dialog') is None)
wait_for('burrow-vm listening on host port %d' % fwd_port,
         lambda: any(':%d ' % fwd_port in line for line in tcp_listeners()))
if 'tcp:127.0.0.1:%d-:22' % fwd_port not in vm_ini(GUI_VM):
    fail('the forward is not in the definition: ' + vm_ini(GUI_VM))
step('remove the forward: the port closes')
click('Settings', root=main)
dlg = window('%s — Settings' % GUI_VM)
settings_section(dlg, 'Network')
table = wait_for('the forwards table', lambda: find('Port forwards', 'table', dlg) or
                 find('Port forwards', 'tree table', dlg))
table.get_table_iface().add_row_selection(0)
click('Remove forward', root=dlg)
wait_for('the forward gone from the table', lambda: not any(n.get_name() == str(fwd_port) for n in walk(table)))
click('Save', root=dlg)
wait_for('Settings closed', lambda: find('%s — Settings' % GUI_VM, 'dialog') is None)
wait_for('host port %d closed' % fwd_port, lambda: not any(':%d ' % fwd_port in line for line in tcp_listeners()))
if ':%d-' % fwd_port in vm_ini(GUI_VM):
    fail('the removed forward stayed in the definition: ' + vm_ini(GUI_VM))

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


# A VM started by the command line with a VNC server: the details say so,
# with the address.  Its firmware finds nothing to boot and ignores the
# power button, so Stop times out and offers Force stop.
step('a VM started with --vnc by the command line')
VNC_VM = 'vnc from cli'
vnc_addr = '127.0.0.1:%d' % free_port()
cli('create', VNC_VM, '--os', 'debian', '--no-disk', '--net', 'none', '--memory', '64')
wait_for('row "%s"' % VNC_VM, lambda: find(VNC_VM, 'list item'))
cli('start', VNC_VM, '--vnc', vnc_addr)
select_row(VNC_VM)
wait_for('the running state', lambda: row_state(VNC_VM) == 'Running')


def display_text():
    return find('Display', 'label', main).get_text(0, -1)
wait_for('the details to say VNC', lambda: 'VNC' in display_text() and vnc_addr in display_text())
if 'Window on this desktop' in display_text():
    fail('a VM started with --vnc shows as a window: ' + display_text())
screenshot(main, 'vnc-started-elsewhere.png')

step('force stop asks first')
click('Force stop', root=main)
alert = window('Force stop')
screenshot(alert, 'force-stop-confirm.png')
click('Cancel', root=alert)
wait_for('the question gone', lambda: find('Force stop', 'alert') is None and find('Force stop', 'dialog') is None)
if row_state(VNC_VM) != 'Running':
    fail('cancelling force stop left the VM "%s"' % row_state(VNC_VM))

step('stop: the guest ignores the power button, Force stop is offered')
click('Stop', root=main)
wait_for('the stopping text', lambda: 'waiting for the guest to power off' in
         find('State', 'label', main).get_text(0, -1))
screenshot(main, 'stopping.png')
alert = window('Stop virtual machine')
screenshot(alert, 'stop-timed-out.png')
said = ' '.join(n.get_text(0, -1) for n in walk(alert) if n.get_role_name() == 'label')
if '--force' in said:
    fail('the stop dialog gives command-line advice: ' + said)
click('Force stop', root=alert)
wait_for('the powered-off state', lambda: row_state(VNC_VM) == 'Powered off')
cli('delete', VNC_VM)
wait_for('row "%s" gone' % VNC_VM, lambda: find(VNC_VM, 'list item', showing=False) is None)
print('PASS', flush=True)
