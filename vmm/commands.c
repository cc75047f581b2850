/* The control socket's commands: run control, media, network, screen and
 * keyboard.  Each runs on the I/O thread with the device lock held. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "devices/ahci.h"
#include "devices/audio/audio.h"
#include "devices/display.h"
#include "devices/hda.h"
#include "devices/i8042.h"
#include "devices/net/net.h"
#include "devices/util.h"
#include "gui/keymap.h"
#include "gui/screenshot.h"
#include "vmm/control.h"
#include "vmm/machine.h"
#include "vmm/machine_internal.h"
#include "vmm/usb_passthrough.h"

/* Where keys and the pointer go now, how many events went where, and the
 * last absolute position a viewer sent (which pixel of which screen), so
 * a viewer's coordinate mapping can be checked from outside. */
static json_t *input_status(struct machine *m)
{
    const struct input_route *r = &m->dev->route;
    json_t *o = json_pack("{s:b,s:s,s:s,s:I,s:I,s:I,s:I}", "usb", m->dev->xhci != NULL,
                          "keyboard", input_route_kbd_usb(r) ? "usb" : "ps2",
                          "pointer", input_route_pointer_usb(r) ? "usb-tablet" : "ps2",
                          "usb-key-events", (json_int_t)r->counts.usb_keys,
                          "ps2-key-events", (json_int_t)r->counts.ps2_keys,
                          "usb-pointer-events", (json_int_t)r->counts.usb_pointer,
                          "ps2-pointer-events", (json_int_t)r->counts.ps2_pointer);
    if (o && r->have_pos)
        json_object_set_new(o, "pointer-position", json_pack("{s:i,s:i,s:i,s:i}", "x", r->last_x, "y", r->last_y,
                                                             "width", r->last_w, "height", r->last_h));
    return o;
}

/* Each NIC's link and frame counts, as the network backend saw them. */
static json_t *net_status(struct machine *m)
{
    json_t *a = json_array();
    for (int i = 0; i < m->dev->nnics; i++) {
        const struct net_backend *nb = m->dev->net[i];
        if (!nb)
            continue;
        const struct net_stats *st = &nb->stats;
        json_array_append_new(a, json_pack("{s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}",
            "nic", i, "backend", nb->kind ? nb->kind : "", "link", nb->link_up ? "up" : "down",
            "tx-frames", (json_int_t)st->tx_frames, "tx-bytes", (json_int_t)st->tx_bytes,
            "tx-dropped", (json_int_t)st->tx_dropped, "rx-frames", (json_int_t)st->rx_frames,
            "rx-bytes", (json_int_t)st->rx_bytes, "rx-dropped", (json_int_t)st->rx_dropped,
            "rx-queued", (json_int_t)st->rx_queued, "rx-waiting", (int)nb->rxq_frames));
    }
    return a;
}

/* The sound card: its backend, whether the guest records now, and the
 * backend's counts.  NULL without a sound card. */
static json_t *audio_status(struct machine *m)
{
    struct audio_backend *b = m->dev->audio;
    if (!m->dev->hda || !b)
        return NULL;
    struct audio_stats st;
    audio_stats(b, &st);
    return json_pack("{s:s,s:b,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "backend", b->name,
                     "connected", st.connected, "microphone", m->opts.audio_in,
                     "recording", hda_recording(m->dev->hda),
                     "played-frames", (json_int_t)b->frames_played,
                     "dropped-frames", (json_int_t)b->frames_dropped,
                     "skipped-frames", (json_int_t)st.skipped,
                     "underruns", (json_int_t)st.underruns,
                     "captured-frames", (json_int_t)b->frames_captured,
                     "capture-overruns", (json_int_t)st.overruns,
                     "latency-ms", st.latency_us / 1000.0);
}

static json_t *cmd_status(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    /* How the screen is shown: a window (maybe with a VNC server too), a
     * VNC server, or only to viewers the control socket hands it to. */
    const char *display = m->opts.sdl ? "sdl" : m->opts.vnc_host ? "vnc" : m->opts.vga ? "headless" : "none";
    json_t *r = json_pack("{s:s,s:s,s:i,s:I,s:s}", "state", machine_state_name(m),
                          "name", m->opts.name ? m->opts.name : "", "cpus", m->opts.cpus,
                          "memory-mib", (json_int_t)m->opts.memory_mib, "display", display);
    if (m->opts.vnc_host) {
        bool v6 = strchr(m->opts.vnc_host, ':') != NULL;
        char vnc[300];
        snprintf(vnc, sizeof(vnc), "%s%.256s%s:%d", v6 ? "[" : "", m->opts.vnc_host, v6 ? "]" : "",
                 m->opts.vnc_port);
        json_object_set_new(r, "vnc", json_string(vnc));
    }
    json_object_set_new(r, "input", input_status(m));
    json_object_set_new(r, "net", net_status(m));
    json_t *audio = audio_status(m);
    if (audio)
        json_object_set_new(r, "audio", audio);
    return r;
}

/* pause and resume: only between the running and paused states. */
static json_t *pause_resume(struct machine *m, struct control_error *err, bool pause)
{
    if (m->state != STATE_RUNNING && m->state != STATE_PAUSED) {
        control_error_set(err, CONTROL_ERR_FAILED, "the VM is %s", machine_state_name(m));
        return NULL;
    }
    if (pause)
        machine_pause(m);
    else
        machine_resume(m);
    return json_pack("{s:s}", "state", machine_state_name(m));
}

static json_t *cmd_pause(void *opaque, json_t *args, struct control_error *err)
{
    return pause_resume(opaque, err, true);
}

static json_t *cmd_resume(void *opaque, json_t *args, struct control_error *err)
{
    return pause_resume(opaque, err, false);
}

static json_t *cmd_reset(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    if (machine_reset(m) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "reset failed; see the VM's log");
        return NULL;
    }
    return json_pack("{s:s}", "state", machine_state_name(m));
}

static json_t *cmd_powerdown(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    if (m->state != STATE_RUNNING) {
        control_error_set(err, CONTROL_ERR_FAILED, "the VM is %s; the guest cannot see the power button",
                          machine_state_name(m));
        return NULL;
    }
    machine_powerdown(m);
    return json_object();
}

static void quit_now(void *opaque)
{
    struct machine *m = opaque;
    machine_shutdown_event(m, "quit", 0);
}

static json_t *cmd_quit(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    control_after_reply(m->control, quit_now, m);
    return json_object();
}

/* The NIC a network command is about: "nic" (index, default 0). */
static struct net_backend *cmd_nic(struct machine *m, json_t *args, struct control_error *err)
{
    json_t *jn = json_object_get(args, "nic");
    json_int_t n = 0;
    if (jn && !json_is_integer(jn)) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "'nic' must be an integer");
        return NULL;
    }
    if (jn)
        n = json_integer_value(jn);
    if (n < 0 || n >= m->dev->nnics) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "no NIC %lld (the VM has %d)",
                          (long long)n, m->dev->nnics);
        return NULL;
    }
    return m->dev->net[n];
}

/* hostfwd-add and hostfwd-remove: {"rule": "tcp:127.0.0.1:2222-:22", "nic": 0} */
static json_t *cmd_hostfwd(struct machine *m, json_t *args, struct control_error *err, bool add)
{
    struct net_backend *nb = cmd_nic(m, args, err);
    if (!nb)
        return NULL;
    const char *rule = json_string_value(json_object_get(args, "rule"));
    struct net_hostfwd fwd;
    char why[256];
    if (!rule) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT,
                          "'rule' is required, e.g. \"tcp:127.0.0.1:2222-:22\"");
        return NULL;
    }
    if (net_parse_hostfwd(rule, &fwd, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "%s", why);
        return NULL;
    }
    int rc = add ? net_slirp_hostfwd_add(nb, &fwd, why, sizeof(why))
                 : net_slirp_hostfwd_remove(nb, fwd.udp, fwd.host_addr, fwd.host_port, why, sizeof(why));
    if (rc < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    return json_object();
}

static json_t *cmd_hostfwd_add(void *opaque, json_t *args, struct control_error *err)
{
    return cmd_hostfwd(opaque, args, err, true);
}

static json_t *cmd_hostfwd_remove(void *opaque, json_t *args, struct control_error *err)
{
    return cmd_hostfwd(opaque, args, err, false);
}

static json_t *cmd_link(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    struct net_backend *nb = cmd_nic(m, args, err);
    if (!nb)
        return NULL;
    const char *state = json_string_value(json_object_get(args, "state"));
    if (state && strcmp(state, "up") && strcmp(state, "down")) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "'state' must be \"up\" or \"down\"");
        return NULL;
    }
    if (state)
        net_backend_set_link(nb, !strcmp(state, "up"));
    return json_pack("{s:s}", "state", net_backend_link_up(nb) ? "up" : "down");
}

/* The CD/DVD drive a media command is about ("device": "cdrom"). */
static int cmd_cdrom_port(struct machine *m, json_t *args, struct control_error *err)
{
    const char *dev = json_string_value(json_object_get(args, "device"));
    if (dev && strcmp(dev, "cdrom")) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "no removable device '%s' (known: cdrom)", dev);
        return -1;
    }
    if (m->dev->cdrom_port < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "the VM has no CD/DVD drive (start it with --cdrom)");
        return -1;
    }
    return m->dev->cdrom_port;
}

static json_t *cmd_eject(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    int port = cmd_cdrom_port(m, args, err);
    if (port < 0)
        return NULL;
    json_t *jf = json_object_get(args, "force");
    if (jf && !json_is_boolean(jf)) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "'force' must be true or false");
        return NULL;
    }
    char why[256];
    if (ahci_eject(m->dev->ahci, port, json_is_true(jf), why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    machine_broadcast(m, "media-changed", json_pack("{s:s,s:n}", "device", "cdrom", "path"));
    return json_object();
}

static json_t *cmd_change_media(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    int port = cmd_cdrom_port(m, args, err);
    if (port < 0)
        return NULL;
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!path || !*path) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "'path' (the image to insert) is required");
        return NULL;
    }
    char why[256];
    if (ahci_change_media(m->dev->ahci, port, path, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    machine_broadcast(m, "media-changed", json_pack("{s:s,s:s}", "device", "cdrom", "path", path));
    return json_object();
}

static json_t *cmd_screenshot(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!path || !*path) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "'path' (where to write the PNG) is required");
        return NULL;
    }
    if (!m->dev->display) {
        control_error_set(err, CONTROL_ERR_FAILED, "the VM has no display (started with --display none)");
        return NULL;
    }
    display_refresh(m->dev->display);
    const struct display_surface *s = display_surface(m->dev->display);
    char why[256];
    if (screenshot_png(s, path, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    return json_pack("{s:s,s:i,s:i}", "path", path, "width", (int)s->width, "height", (int)s->height);
}

/* display-connect: the request comes with a connected stream socket
 * (SCM_RIGHTS), which becomes a VNC viewer of the screen.  Only who can
 * reach the control socket (the VM's owner) gets in this way, and no TCP
 * port needs to be open. */
static json_t *cmd_display_connect(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    (void)args;
    int fd = control_take_fd(m->control);
    if (fd < 0) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT,
                          "send a connected stream socket with the request (SCM_RIGHTS)");
        return NULL;
    }
    char why[256] = "";
    if (machine_vnc_connect(m, fd, why, sizeof(why)) < 0) {
        close(fd);
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    return json_pack("{s:s}", "protocol", "rfb");
}

/* One key event (the presses or the releases of one combination) every
 * 10 ms, so a long list never overruns the keyboard's buffer; to the USB
 * keyboard only once the guest has taken the reports of the one before,
 * since its queue keeps only the newest state when full. */
#define SEND_KEYS_INTERVAL_NS 10000000ULL

static void send_keys_tick(void *opaque)
{
    struct machine *m = opaque;
    struct machine_devices *d = m->dev;
    d->keys.timer = 0;
    if (d->keys.pos >= d->keys.len)
        return;
    if (!input_route_kbd_idle(&d->route)) {
        d->keys.timer = evloop_add_timer(m->loop, SEND_KEYS_INTERVAL_NS, send_keys_tick, m);
        return;
    }
    for (;;) {
        size_t i = d->keys.pos++;
        input_route_key(&d->route, d->keys.ev[i].key, d->keys.ev[i].down);
        if (d->keys.ev[i].last || d->keys.pos >= d->keys.len)
            break;
    }
    if (d->keys.pos < d->keys.len)
        d->keys.timer = evloop_add_timer(m->loop, SEND_KEYS_INTERVAL_NS, send_keys_tick, m);
}

/* Appends a combination's presses (in order) or releases (in reverse
 * order) as one event; the caller made sure they fit. */
static void queue_key_event(struct machine_devices *d, const keymap_key *keys, int n, bool down)
{
    for (int i = 0; i < n; i++) {
        size_t at = d->keys.len++;
        d->keys.ev[at].key = keys[down ? i : n - 1 - i];
        d->keys.ev[at].down = down;
        d->keys.ev[at].last = i == n - 1;
    }
}

static json_t *cmd_send_keys(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    struct machine_devices *d = m->dev;
    json_t *keys = json_object_get(args, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT,
                          "'keys' must be a list of key names, e.g. [\"ctrl-alt-del\"] or [\"h\",\"i\",\"ret\"]");
        return NULL;
    }
    /* Check every name before queueing any, so a typo sends nothing. */
    size_t i;
    json_t *k;
    keymap_key combo[KEYMAP_MAX_COMBO];
    json_array_foreach(keys, i, k) {
        if (!json_is_string(k) || keymap_name_to_keys(json_string_value(k), combo, ARRAY_SIZE(combo)) < 0) {
            control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "unknown key name %s%s%s",
                              json_is_string(k) ? "'" : "", json_is_string(k) ? json_string_value(k) : "(not a string)",
                              json_is_string(k) ? "'" : "");
            return NULL;
        }
    }
    if (d->keys.pos >= d->keys.len)
        d->keys.pos = d->keys.len = 0;
    size_t need = 0;
    json_array_foreach(keys, i, k)
        need += 2 * (size_t)keymap_name_to_keys(json_string_value(k), combo, ARRAY_SIZE(combo));
    if (d->keys.len + need > ARRAY_SIZE(d->keys.ev)) {
        control_error_set(err, CONTROL_ERR_FAILED, "too many keys queued; try again shortly");
        return NULL;
    }
    json_array_foreach(keys, i, k) {
        int n = keymap_name_to_keys(json_string_value(k), combo, ARRAY_SIZE(combo));
        queue_key_event(d, combo, n, true);
        queue_key_event(d, combo, n, false);
    }
    if (!d->keys.timer)
        d->keys.timer = evloop_add_timer(m->loop, 0, send_keys_tick, m);
    return json_object();
}

int machine_control_setup(struct machine *m, char *err, size_t errlen)
{
    m->control = control_server_new(m->loop, m->opts.control, err, errlen);
    if (!m->control)
        return -1;
    control_register(m->control, "status", cmd_status, m,
                     "run state, name, CPUs, memory, display (with the VNC server's HOST:PORT), where keys and the pointer go (input), NICs' link and frame counts (net)");
    control_register(m->control, "pause", cmd_pause, m, "stop the vCPUs");
    control_register(m->control, "resume", cmd_resume, m, "let paused vCPUs run again");
    control_register(m->control, "reset", cmd_reset, m, "hard reset, as the reset button");
    control_register(m->control, "powerdown", cmd_powerdown, m, "press the ACPI power button");
    control_register(m->control, "quit", cmd_quit, m, "end the VM process at once");
    control_register(m->control, "hostfwd-add", cmd_hostfwd_add, m,
                     "forward a host port: {\"rule\":\"tcp:127.0.0.1:2222-:22\",\"nic\":0}");
    control_register(m->control, "hostfwd-remove", cmd_hostfwd_remove, m,
                     "remove a forward: {\"rule\":\"tcp:127.0.0.1:2222-:22\"}");
    control_register(m->control, "display-connect", cmd_display_connect, m,
                     "a VNC viewer on the socket sent with the request (SCM_RIGHTS)");
    control_register(m->control, "screenshot", cmd_screenshot, m,
                     "write the screen as PNG: {\"path\":\"/abs/shot.png\"}");
    control_register(m->control, "send-keys", cmd_send_keys, m,
                     "type keys: {\"keys\":[\"ctrl-alt-del\",\"a\",\"ret\"]}");
    control_register(m->control, "eject", cmd_eject, m,
                     "open the CD/DVD tray: {\"device\":\"cdrom\",\"force\":false}");
    control_register(m->control, "change-media", cmd_change_media, m,
                     "insert an image: {\"device\":\"cdrom\",\"path\":\"/abs/image.iso\"}");
    control_register(m->control, "link", cmd_link, m,
                     "NIC link state: {\"state\":\"up\"|\"down\",\"nic\":0}; without state, report it");
    passthrough_register_commands(m);
    return 0;
}

