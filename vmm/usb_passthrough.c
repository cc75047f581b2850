/* Host USB devices given to the guest (see usb_passthrough.h).
 *
 * A device is taken in two steps: its node is opened here, on the I/O
 * thread (a permission problem is answered at once, with the advice that
 * fixes it), then the device model claims its interfaces on a thread of
 * its own and plugs it in once that is done.  usb-attach and usb-detach
 * reply when the device is on its port, or back with the host's drivers.
 *
 * Hot-plug comes from the kernel's uevents (netlink, group 1): they come
 * whether or not udev runs.  With udev, a node's owner and mode may be
 * set a moment after the kernel's message, so a device a rule wants is
 * tried again for a few seconds when its node cannot be opened yet. */
#include "vmm/usb_passthrough.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "devices/usb/host.h"
#include "devices/usb/host_list.h"
#include "devices/usb/xhci.h"
#include "devices/util.h"
#include "vmm/control.h"
#include "vmm/machine.h"
#include "vmm/machine_internal.h"

#define ARRIVAL_RETRY_NS   (250 * 1000 * 1000ULL)
#define ARRIVAL_TRIES      20             /* 5 s for udev to set the node up */
#define TEARDOWN_WAIT_MS   5000
#define MAX_DECLINED       16

struct passthrough;

/* A device this VM holds, or is taking or giving back. */
struct held {
    struct passthrough *pt;
    struct usb_host_dev *dev;
    struct usbhost_info info;
    const char *origin;             /* "command", "option", "filter" */
    bool attached;                  /* on a port of the controller */
    bool closing;
    int port;
    const char *reason;             /* why it is given back */
    unsigned long attach_token;     /* usb-attach waiting for its reply; 0: none */
    unsigned long detach_token;
    struct held *next;
};

/* A device a rule wants that was just plugged in, whose node could not be
 * opened yet. */
struct arrival {
    struct passthrough *pt;
    char name[USBHOST_NAME_MAX];
    unsigned devnum;
    int tries, timer;
    struct arrival *next;
};

struct passthrough {
    struct machine *m;
    struct usb_host_ctx *ctx;       /* NULL: no pass-through (why in unavailable) */
    char unavailable[256];
    int uevent_fd;
    struct held *held;
    struct arrival *arrivals;
    /* Detached on request: not taken again by a rule until plugged anew. */
    struct {
        char name[USBHOST_NAME_MAX];
        unsigned devnum;
    } declined[MAX_DECLINED];
    unsigned ndeclined;
};

static json_t *info_json(const struct usbhost_info *d)
{
    char id[16];
    snprintf(id, sizeof(id), "%04x:%04x", d->vid, d->pid);
    return json_pack("{s:s,s:i,s:i,s:s,s:s,s:s,s:s,s:s}", "device", d->name, "bus", (int)d->bus,
                     "devnum", (int)d->devnum, "id", id, "manufacturer", d->manufacturer, "product",
                     d->product, "serial", d->serial, "speed", usbhost_speed_name(d->mbps));
}

static void label(const struct usbhost_info *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s (%04x:%04x%s%s)", d->name, d->vid, d->pid, d->product[0] ? " " : "", d->product);
}

static struct held *find_held(struct passthrough *pt, const char *name, unsigned devnum)
{
    for (struct held *h = pt->held; h; h = h->next)
        if (!strcmp(h->info.name, name) && (!devnum || h->info.devnum == devnum))
            return h;
    return NULL;
}

static void reply(struct passthrough *pt, unsigned long *token, json_t *result, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply(struct passthrough *pt, unsigned long *token, json_t *result, const char *fmt, ...)
{
    if (!*token || !pt->m->control) {
        json_decref(result);
        *token = 0;
        return;
    }
    struct control_error err = { CONTROL_ERR_FAILED, "" };
    if (!result && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err.desc, sizeof(err.desc), fmt, ap);
        va_end(ap);
    }
    control_reply_later(pt->m->control, *token, result, &err);
    *token = 0;
}

/* Starts giving it back: off its port, then the device model closes. */
static void give_back(struct held *h, const char *reason)
{
    if (h->closing)
        return;
    h->closing = true;
    h->reason = reason;
    if (h->attached)
        xhci_detach(h->pt->m->dev->xhci, usb_host_dev_device(h->dev));
    h->attached = false;
    usb_host_dev_close(h->dev);
}

static void on_opened(void *opaque, struct usb_host_dev *dev, int rc, const char *why)
{
    struct held *h = opaque;
    struct passthrough *pt = h->pt;
    char name[160], err[256];
    label(&h->info, name, sizeof(name));
    if (h->closing)
        return;        /* detached meanwhile: closed() reports it */
    if (rc == 0) {
        int port = xhci_attach(pt->m->dev->xhci, usb_host_dev_device(dev), 0, err, sizeof(err));
        if (port > 0) {
            h->attached = true;
            h->port = port;
            log_info("usb-host: %s is on USB port %d", name, port);
            json_t *j = info_json(&h->info);
            json_object_set_new(j, "port", json_integer(port));
            json_object_set_new(j, "origin", json_string(h->origin));
            machine_broadcast(pt->m, "usb-attached", json_deep_copy(j));
            reply(pt, &h->attach_token, j, NULL);
            return;
        }
        why = err;
    }
    log_warn("usb-host: %s: %s", name, why);
    json_t *j = info_json(&h->info);
    json_object_set_new(j, "error", json_string(why));
    machine_broadcast(pt->m, "usb-attach-failed", j);
    reply(pt, &h->attach_token, NULL, "%s: %s", name, why);
    give_back(h, "error");
}

static void on_gone(void *opaque, struct usb_host_dev *dev)
{
    struct held *h = opaque;
    char name[160];
    label(&h->info, name, sizeof(name));
    log_info("usb-host: %s was unplugged from the host", name);
    give_back(h, "unplugged");
}

static void on_closed(void *opaque, struct usb_host_dev *dev)
{
    struct held *h = opaque;
    struct passthrough *pt = h->pt;
    for (struct held **pp = &pt->held; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    /* An attach that failed said so already. */
    if (strcmp(h->reason, "error")) {
        json_t *j = info_json(&h->info);
        json_object_set_new(j, "reason", json_string(h->reason));
        machine_broadcast(pt->m, "usb-detached", j);
    }
    reply(pt, &h->detach_token, info_json(&h->info), NULL);
    reply(pt, &h->attach_token, NULL, "%s was detached before it was attached", h->info.name);
    usb_host_dev_free(dev);
    free(h);
}

static const struct usb_host_dev_ops held_ops = {
    .opened = on_opened,
    .gone = on_gone,
    .closed = on_closed,
};

/* Opens d's node and starts taking it.  On failure, err says why and
 * *open_err holds the open's errno (0 when the node was not the problem). */
static struct held *take(struct passthrough *pt, const struct usbhost_info *d, const char *origin,
                         int *open_err, char *err, size_t errlen)
{
    struct machine *m = pt->m;
    char name[160];
    label(d, name, sizeof(name));
    *open_err = 0;
    enum usb_speed speed;
    if (!m->dev->xhci) {
        snprintf(err, errlen, "the VM has no USB controller (it was started with --usb off)");
        return NULL;
    }
    if (!pt->ctx) {
        snprintf(err, errlen, "USB pass-through is not available: %s", pt->unavailable);
        return NULL;
    }
    if (find_held(pt, d->name, d->devnum)) {
        snprintf(err, errlen, "%s is attached to this VM already", name);
        return NULL;
    }
    if (d->dev_class == 9) {
        snprintf(err, errlen, "%s is a hub, which cannot be passed through: attach the devices on it", name);
        return NULL;
    }
    if (!usbhost_speed(d, &speed)) {
        snprintf(err, errlen, "%s: the host does not say its speed", name);
        return NULL;
    }
    if (!xhci_free_port(m->dev->xhci, speed)) {
        snprintf(err, errlen, "no free USB %d port for %s (ports 1-%d are USB 2, %d-%d USB 3)",
                 speed == USB_SPEED_SUPER ? 3 : 2, name, XHCI_USB2_PORTS, XHCI_USB2_PORTS + 1, XHCI_PORTS);
        return NULL;
    }
    char node[256];
    usbhost_node(NULL, d, node, sizeof(node));
    int fd = open(node, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        *open_err = errno;
        struct usbhost_access a;
        usbhost_access_facts(node, &a);
        usbhost_open_advice(node, *open_err, d, &a, err, errlen);
        return NULL;
    }
    struct held *h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->pt = pt;
    h->info = *d;
    h->origin = origin;
    h->reason = "request";
    char why[256] = "";
    h->dev = usb_host_dev_new(pt->ctx, fd, name, speed, &held_ops, h, why, sizeof(why));
    if (!h->dev) {
        snprintf(err, errlen, "%s: %s", name, why);
        free(h);
        return NULL;
    }
    h->next = pt->held;
    pt->held = h;
    log_info("usb-host: taking %s from the host (%s)", name, origin);
    return h;
}

/* The rule that wants d: "option" (--usb-host), "filter", or NULL. */
static const char *wanted(const struct passthrough *pt, const struct usbhost_info *d)
{
    const struct machine_opts *o = &pt->m->opts;
    for (int i = 0; i < o->nusb_hosts; i++)
        if (usbhost_spec_match(&o->usb_hosts[i], d))
            return "option";
    for (int i = 0; i < o->nusb_filters; i++)
        if (usbhost_filter_match(&o->usb_filters[i], d))
            return "filter";
    return NULL;
}

static bool declined(const struct passthrough *pt, const char *name, unsigned devnum)
{
    for (unsigned i = 0; i < pt->ndeclined; i++)
        if (!strcmp(pt->declined[i].name, name) && pt->declined[i].devnum == devnum)
            return true;
    return false;
}

static void decline(struct passthrough *pt, const struct usbhost_info *d)
{
    if (declined(pt, d->name, d->devnum))
        return;
    unsigned i = pt->ndeclined < MAX_DECLINED ? pt->ndeclined++ : 0;   /* full: the oldest goes */
    snprintf(pt->declined[i].name, sizeof(pt->declined[i].name), "%s", d->name);
    pt->declined[i].devnum = d->devnum;
}

static void forget_declined(struct passthrough *pt, const char *name)
{
    for (unsigned i = 0; i < pt->ndeclined;)
        if (!strcmp(pt->declined[i].name, name))
            pt->declined[i] = pt->declined[--pt->ndeclined];
        else
            i++;
}

/* ---- hot-plug ---- */

static void arrival_free(struct arrival *a)
{
    struct passthrough *pt = a->pt;
    for (struct arrival **pp = &pt->arrivals; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    if (a->timer > 0)
        evloop_del_timer(pt->m->loop, a->timer);
    free(a);
}

/* Takes a device that was plugged in if a rule wants it; true when it is
 * worth trying again (its node is not ready). */
static bool try_arrival(struct passthrough *pt, const char *name, unsigned devnum, bool last_try)
{
    struct usbhost_info d;
    if (usbhost_read(NULL, name, &d) < 0 || (devnum && d.devnum != devnum))
        return false;       /* gone again, or replaced */
    const char *origin = wanted(pt, &d);
    if (!origin || find_held(pt, d.name, 0) || declined(pt, d.name, d.devnum))
        return false;
    char err[512], label_[160];
    int open_err;
    if (take(pt, &d, origin, &open_err, err, sizeof(err)))
        return false;
    bool again = open_err == EACCES || open_err == EPERM || open_err == ENOENT;
    if (again && !last_try)
        return true;
    label(&d, label_, sizeof(label_));
    log_warn("usb-host: %s", err);
    json_t *j = info_json(&d);
    json_object_set_new(j, "error", json_string(err));
    machine_broadcast(pt->m, "usb-attach-failed", j);
    return false;
}

static void arrival_retry(void *opaque)
{
    struct arrival *a = opaque;
    a->timer = 0;
    if (try_arrival(a->pt, a->name, a->devnum, ++a->tries >= ARRIVAL_TRIES))
        a->timer = evloop_add_timer(a->pt->m->loop, ARRIVAL_RETRY_NS, arrival_retry, a);
    else
        arrival_free(a);
}

static void arrived(struct passthrough *pt, const struct usbhost_uevent *ev)
{
    if (!try_arrival(pt, ev->name, ev->devnum, false))
        return;
    struct arrival *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->pt = pt;
    snprintf(a->name, sizeof(a->name), "%s", ev->name);
    a->devnum = ev->devnum;
    a->tries = 1;
    a->timer = evloop_add_timer(pt->m->loop, ARRIVAL_RETRY_NS, arrival_retry, a);
    a->next = pt->arrivals;
    pt->arrivals = a;
}

static void left(struct passthrough *pt, const struct usbhost_uevent *ev)
{
    forget_declined(pt, ev->name);
    for (struct arrival *a = pt->arrivals, *next; a; a = next) {
        next = a->next;
        if (!strcmp(a->name, ev->name))
            arrival_free(a);
    }
    struct held *h = find_held(pt, ev->name, ev->devnum);
    if (h && !h->closing)
        usb_host_dev_lost(h->dev);
}

static void on_uevent(void *opaque, int fd, unsigned events)
{
    struct passthrough *pt = opaque;
    char buf[8192];
    /* A bounded number per round: a storm of messages must not hold the
     * loop (the rest come next round). */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_nl from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n < 0 && errno == ENOBUFS) {
            log_warn("usb-host: hot-plug messages were lost (too many at once)");
            continue;
        }
        if (n <= 0)
            break;
        if (flen != sizeof(from) || from.nl_pid != 0)
            continue;          /* only the kernel's own */
        struct usbhost_uevent ev;
        if (!usbhost_uevent_parse(buf, (size_t)n, &ev))
            continue;
        if (ev.add)
            arrived(pt, &ev);
        else
            left(pt, &ev);
    }
}

static int uevent_open(char *err, size_t errlen)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- set-up and teardown ---- */

int passthrough_setup(struct machine *m, char *err, size_t errlen)
{
    struct passthrough *pt = calloc(1, sizeof(*pt));
    if (!pt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pt->m = m;
    pt->uevent_fd = -1;
    m->dev->usb_pt = pt;
    bool rules = m->opts.nusb_hosts || m->opts.nusb_filters;
    char why[256] = "";
    pt->ctx = usb_host_ctx_new(m->loop, why, sizeof(why));
    if (!pt->ctx) {
        snprintf(pt->unavailable, sizeof(pt->unavailable), "%s", why);
        if (rules) {
            snprintf(err, errlen, "USB pass-through: %s", why);
            return -1;
        }
        log_warn("USB pass-through is not available: %s", why);
        return 0;
    }
    /* Before the sandbox goes on: it allows no new netlink socket. */
    pt->uevent_fd = uevent_open(why, sizeof(why));
    if (pt->uevent_fd < 0 || evloop_add_fd(m->loop, pt->uevent_fd, EVLOOP_IN, on_uevent, pt) < 0) {
        if (pt->uevent_fd >= 0)
            close(pt->uevent_fd);
        pt->uevent_fd = -1;
        (rules ? log_warn : log_debug)("USB pass-through: no hot-plug messages from the kernel (%s): "
                                       "devices plugged in later are not taken by --usb-host or --usb-filter",
                                       why[0] ? why : "cannot watch them");
    }
    if (!rules)
        return 0;
    struct usbhost_info *list;
    size_t n;
    if (usbhost_list(NULL, &list, &n, why, sizeof(why)) < 0) {
        log_warn("USB pass-through: %s", why);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *origin = wanted(pt, &list[i]);
        int open_err;
        char msg[512];
        if (!origin || take(pt, &list[i], origin, &open_err, msg, sizeof(msg)))
            continue;
        if (!strcmp(origin, "option")) {
            snprintf(err, errlen, "--usb-host: %s", msg);
            rc = -1;
        } else {
            log_warn("--usb-filter: %s", msg);
        }
    }
    for (int i = 0; i < m->opts.nusb_hosts; i++) {
        bool present = false;
        for (size_t k = 0; k < n && !present; k++)
            present = usbhost_spec_match(&m->opts.usb_hosts[i], &list[k]);
        char spec[64];
        usbhost_spec_format(&m->opts.usb_hosts[i], spec, sizeof(spec));
        if (!present)
            log_info("--usb-host %s: no such device now; it is taken when it is plugged in", spec);
    }
    free(list);
    return rc;
}

void passthrough_teardown(struct machine *m)
{
    struct passthrough *pt = m->dev->usb_pt;
    if (!pt)
        return;
    while (pt->arrivals)
        arrival_free(pt->arrivals);
    for (struct held *h = pt->held; h; h = h->next)
        give_back(h, "quit");
    uint64_t end = evloop_now_ns() + TEARDOWN_WAIT_MS * 1000000ULL;
    while (pt->held && evloop_now_ns() < end)
        usb_host_ctx_poll(pt->ctx, 100);
    if (pt->uevent_fd >= 0) {
        evloop_del_fd(m->loop, pt->uevent_fd);
        close(pt->uevent_fd);
    }
    if (pt->held) {
        /* Their threads still wait for the devices: leave them be. */
        log_warn("usb-host: %s did not come back from the device in time", pt->held->info.name);
        return;
    }
    usb_host_ctx_free(pt->ctx);
    free(pt);
    m->dev->usb_pt = NULL;
}

/* ---- control commands ---- */

static struct passthrough *cmd_pt(struct machine *m, struct control_error *err)
{
    struct passthrough *pt = m->dev->usb_pt;
    if (!pt) {
        control_error_set(err, CONTROL_ERR_FAILED, "the VM has no USB controller (it was started with --usb off)");
        return NULL;
    }
    return pt;
}

static const char *cmd_spec(json_t *args, struct usbhost_spec *spec, struct control_error *err)
{
    const char *s = json_string_value(json_object_get(args, "device"));
    char why[256];
    if (!s) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT,
                          "'device' is required: VID:PID (e.g. \"0525:a4a5\") or BUS-PORT (e.g. \"1-1.2\")");
        return NULL;
    }
    if (usbhost_spec_parse(s, spec, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "%s", why);
        return NULL;
    }
    return s;
}

static json_t *cmd_usb_list(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    struct passthrough *pt = cmd_pt(m, err);
    if (!pt)
        return NULL;
    struct usbhost_info *list;
    size_t n;
    char why[256];
    if (usbhost_list(NULL, &list, &n, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = info_json(&list[i]);
        struct held *h = find_held(pt, list[i].name, list[i].devnum);
        const char *state = !h ? NULL : h->closing ? "detaching" : h->attached ? "attached" : "attaching";
        json_object_set_new(j, "attached", json_boolean(h && h->attached && !h->closing));
        if (state)
            json_object_set_new(j, "state", json_string(state));
        if (h && h->attached)
            json_object_set_new(j, "port", json_integer(h->port));
        /* Someone else holds it through usbfs: another VM, another program. */
        json_object_set_new(j, "busy", json_boolean(!h && list[i].usbfs));
        if (list[i].dev_class == 9)
            json_object_set_new(j, "hub", json_true());
        json_array_append_new(a, j);
    }
    free(list);
    json_t *r = json_pack("{s:o,s:b}", "devices", a, "available", pt->ctx != NULL);
    if (!pt->ctx)
        json_object_set_new(r, "reason", json_string(pt->unavailable));
    return r;
}

static json_t *cmd_usb_attach(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    struct passthrough *pt = cmd_pt(m, err);
    struct usbhost_spec spec;
    const char *s;
    if (!pt || !(s = cmd_spec(args, &spec, err)))
        return NULL;
    struct usbhost_info *list;
    size_t n;
    char why[512];
    if (usbhost_list(NULL, &list, &n, why, sizeof(why)) < 0) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    /* VID:PID may name several: the first this VM does not hold. */
    const struct usbhost_info *d = NULL;
    bool held = false;
    for (size_t i = 0; i < n && !d; i++) {
        if (!usbhost_spec_match(&spec, &list[i]))
            continue;
        if (find_held(pt, list[i].name, list[i].devnum))
            held = true;
        else
            d = &list[i];
    }
    struct held *h = NULL;
    int open_err;
    if (!d)
        snprintf(why, sizeof(why), held ? "this VM has %s attached already" :
                 "no USB device %s on the host ('usb-list' shows them)", s);
    else
        h = take(pt, d, "command", &open_err, why, sizeof(why));
    if (h)
        forget_declined(pt, d->name);
    free(list);
    if (!h) {
        control_error_set(err, CONTROL_ERR_FAILED, "%s", why);
        return NULL;
    }
    h->attach_token = control_defer(m->control);
    return NULL;
}

static json_t *cmd_usb_detach(void *opaque, json_t *args, struct control_error *err)
{
    struct machine *m = opaque;
    struct passthrough *pt = cmd_pt(m, err);
    struct usbhost_spec spec;
    const char *s;
    if (!pt || !(s = cmd_spec(args, &spec, err)))
        return NULL;
    struct held *h = pt->held;
    while (h && (!usbhost_spec_match(&spec, &h->info) || h->closing))
        h = h->next;
    if (!h) {
        bool closing = false;
        for (struct held *k = pt->held; k; k = k->next)
            closing |= usbhost_spec_match(&spec, &k->info);
        control_error_set(err, CONTROL_ERR_FAILED, closing ? "%s is being given back already" :
                          "this VM holds no USB device %s ('usb-list' shows what it holds)", s);
        return NULL;
    }
    if (wanted(pt, &h->info))
        decline(pt, &h->info);
    reply(pt, &h->attach_token, NULL, "%s was detached before it was attached", h->info.name);
    h->detach_token = control_defer(m->control);
    give_back(h, "request");
    return NULL;
}

void passthrough_register_commands(struct machine *m)
{
    control_register(m->control, "usb-list", cmd_usb_list, m,
                     "the host's USB devices (bus, port path, VID:PID, strings, speed) and which this VM holds");
    control_register(m->control, "usb-attach", cmd_usb_attach, m,
                     "pass a host USB device through: {\"device\":\"0525:a4a5\"} or {\"device\":\"1-1.2\"}; "
                     "replies once it is on a port");
    control_register(m->control, "usb-detach", cmd_usb_detach, m,
                     "give a passed-through device back to the host: {\"device\":\"1-1.2\"}; replies once "
                     "the host's drivers have it");
}
