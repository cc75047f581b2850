/* Host USB device pass-through with libusb-1.0 (see host.h).
 *
 * Two kinds of thread meet here:
 *   - the event loop's (device lock held): the device model proper, which
 *     submits and cancels libusb transfers (non-blocking ioctls), and
 *     handles libusb's events: libusb's own descriptors and each device's
 *     usbfs node are watched by the loop, and libusb_handle_events() with
 *     no wait runs when one is ready, so a finished transfer reaches the
 *     guest with no other thread in between;
 *   - each device's worker: the blocking libusb calls (jobs), whose
 *     results come back through a queue the loop reads (an eventfd wakes
 *     it).
 * Device state is the loop's; the worker keeps what only it touches (the
 * claimed interfaces, the alternate settings) in struct host_worker, and
 * hands the endpoint table over in the job. */
#include "devices/usb/host.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libusb.h>

#include "devices/evloop.h"
#include "devices/util.h"

#define MAX_IFACES      32        /* bInterfaceNumber values usbfs takes */
#define EP_NONE         0xff      /* no such endpoint in the current settings */
#define MAX_LU_FDS      8         /* libusb's own descriptors (an eventfd, a timerfd) */

/* Something finished that the loop's thread must look at. */
struct host_event {
    struct host_event *next;
    bool is_job;
};

struct usb_host_ctx {
    libusb_context *lu;
    struct evloop *loop;
    int efd;                          /* job results queued */
    int lu_fds[MAX_LU_FDS];           /* libusb's own, watched by the loop */
    unsigned nlu_fds;
    pthread_mutex_t lock;             /* the queue */
    struct host_event *head, *tail;
    unsigned ndevs;
};

/* Which endpoints the current configuration and alternate settings have. */
struct ep_table {
    uint8_t type[2][16];              /* [in][number]: LIBUSB_TRANSFER_TYPE_*, EP_NONE */
    uint8_t iface[2][16];             /* the interface it belongs to */
};

enum job_kind { JOB_OPEN, JOB_SET_CONFIG, JOB_SET_ALT, JOB_CLEAR_HALT, JOB_RESET, JOB_CLOSE };

struct host_job {
    struct host_event ev;
    struct usb_host_dev *h;
    struct host_job *qnext;           /* the worker's queue */
    enum job_kind kind;
    uint8_t a, b;                     /* configuration; interface and setting; endpoint */
    struct usb_xfer *x;               /* the guest's request waiting for it; NULL: none */
    int rc;                           /* LIBUSB_SUCCESS or a libusb error */
    bool lost;                        /* the device is not there any more */
    bool have_eps;
    struct ep_table eps;
    char why[256];
};

struct host_xfer {
    struct host_event ev;
    struct usb_host_dev *h;
    struct usb_xfer *x;               /* NULL once the guest's controller took it back */
    struct libusb_transfer *t;
    bool control;
    struct host_xfer *prev, *next;    /* the device's transfers in flight */
};

/* The worker's own state. */
struct host_worker {
    int config;                       /* the active bConfigurationValue, 0: none */
    uint8_t alt[MAX_IFACES];
    uint32_t claimed;                 /* bit per interface number */
};

struct usb_host_dev {
    struct usb_device dev;
    struct usb_host_ctx *ctx;
    char name[64];
    const struct usb_host_dev_ops *ops;
    void *opaque;
    int fd;
    bool fd_watched;                  /* the loop watches fd for finished transfers */
    libusb_device_handle *dh;         /* set by the open job, before its result is queued */

    /* The loop's. */
    bool opened, gone, closing, closed;
    bool addressed;                   /* a non-zero SET_ADDRESS since the last bus reset */
    bool reset_wanted;                /* a bus reset came while a job ran */
    struct host_job *job;             /* running, at most one (CLOSE aside) */
    struct host_xfer *inflight;
    uint32_t nak;                     /* endpoints told to wait: bit ep, 16 + ep for IN */
    struct ep_table eps;

    /* The worker. */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct host_job *qhead, *qtail;
    struct host_worker w;
};

static void post(struct usb_host_ctx *c, struct host_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->tail)
        c->tail->next = ev;
    else
        c->head = ev;
    c->tail = ev;
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    if (write(c->efd, &one, sizeof(one)) < 0) {
        /* the counter is saturated: a wake-up is pending anyway */
    }
}

/* Threads of ours keep every signal but SIGSYS blocked: the vCPU kick and
 * the machine's signals are not for them, and the sandbox's report of a
 * forbidden call must reach its handler on the thread that made it. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_setname_np(*t, name);
    return rc;
}

static const char *lu_error(int rc)
{
    switch (rc) {
    case LIBUSB_ERROR_ACCESS: return "permission denied";
    case LIBUSB_ERROR_NO_DEVICE: return "the device is gone";
    case LIBUSB_ERROR_BUSY: return "another program holds it";
    case LIBUSB_ERROR_NOT_FOUND: return "not found";
    case LIBUSB_ERROR_PIPE: return "the device refused (stall)";
    case LIBUSB_ERROR_TIMEOUT: return "the device did not answer";
    default: return libusb_strerror((enum libusb_error)rc);
    }
}

/* ---- the worker ---- */

/* Which endpoints config (with the worker's alternate settings) has. */
static void build_eps(struct usb_host_dev *h, struct ep_table *t)
{
    memset(t->type, EP_NONE, sizeof(t->type));
    memset(t->iface, 0, sizeof(t->iface));
    struct libusb_config_descriptor *cfg;
    if (!h->w.config ||
        libusb_get_config_descriptor_by_value(libusb_get_device(h->dh), (uint8_t)h->w.config, &cfg) != 0)
        return;
    for (unsigned i = 0; i < cfg->bNumInterfaces; i++) {
        const struct libusb_interface *ifc = &cfg->interface[i];
        for (int s = 0; s < ifc->num_altsetting; s++) {
            const struct libusb_interface_descriptor *alt = &ifc->altsetting[s];
            if (alt->bInterfaceNumber >= MAX_IFACES || alt->bAlternateSetting != h->w.alt[alt->bInterfaceNumber])
                continue;
            for (unsigned e = 0; e < alt->bNumEndpoints; e++) {
                uint8_t addr = alt->endpoint[e].bEndpointAddress;
                unsigned in = (addr & 0x80) ? 1 : 0, num = addr & 0x0f;
                if (num == 0)
                    continue;
                t->type[in][num] = alt->endpoint[e].bmAttributes & 3;
                t->iface[in][num] = alt->bInterfaceNumber;
            }
        }
    }
    libusb_free_config_descriptor(cfg);
}

/* Claims every interface of the active configuration, taking it from the
 * host's driver (auto-detach: one atomic usbfs call, so no driver slips
 * in between).  A failure leaves the others claimed. */
static int claim_all(struct usb_host_dev *h, struct host_job *j)
{
    struct libusb_config_descriptor *cfg;
    int rc = libusb_get_config_descriptor_by_value(libusb_get_device(h->dh), (uint8_t)h->w.config, &cfg);
    if (rc != 0) {
        snprintf(j->why, sizeof(j->why), "configuration %d: %s", h->w.config, lu_error(rc));
        return rc;
    }
    int first_err = 0;
    for (unsigned i = 0; i < cfg->bNumInterfaces; i++) {
        if (cfg->interface[i].num_altsetting < 1)
            continue;
        unsigned n = cfg->interface[i].altsetting[0].bInterfaceNumber;
        if (n >= MAX_IFACES || (h->w.claimed & (1u << n)))
            continue;
        rc = libusb_claim_interface(h->dh, (int)n);
        if (rc == 0) {
            h->w.claimed |= 1u << n;
        } else if (!first_err) {
            first_err = rc;
            snprintf(j->why, sizeof(j->why), "cannot take interface %u from the host: %s%s", n, lu_error(rc),
                     rc == LIBUSB_ERROR_BUSY ? " (another VM?)" : "");
        }
    }
    libusb_free_config_descriptor(cfg);
    return first_err;
}

/* reattach: the host's drivers get the interfaces back. */
static void release_all(struct usb_host_dev *h, bool reattach)
{
    libusb_set_auto_detach_kernel_driver(h->dh, reattach);
    for (unsigned n = 0; n < MAX_IFACES; n++)
        if (h->w.claimed & (1u << n))
            libusb_release_interface(h->dh, (int)n);
    h->w.claimed = 0;
    libusb_set_auto_detach_kernel_driver(h->dh, 1);
}

static void job_open(struct usb_host_dev *h, struct host_job *j)
{
    libusb_device_handle *dh = NULL;
    j->rc = libusb_wrap_sys_device(h->ctx->lu, (intptr_t)h->fd, &dh);
    if (j->rc != 0) {
        snprintf(j->why, sizeof(j->why), "libusb cannot use the device: %s", lu_error(j->rc));
        return;
    }
    h->dh = dh;
    libusb_set_auto_detach_kernel_driver(dh, 1);
    int config = 0;
    j->rc = libusb_get_configuration(dh, &config);
    if (j->rc != 0) {
        snprintf(j->why, sizeof(j->why), "cannot read its configuration: %s", lu_error(j->rc));
        return;
    }
    h->w.config = config;
    if (config && (j->rc = claim_all(h, j)) != 0) {
        release_all(h, true);
        return;
    }
    build_eps(h, &j->eps);
    j->have_eps = true;
}

static void job_set_config(struct usb_host_dev *h, struct host_job *j)
{
    /* usbfs refuses to change the configuration while interfaces are
     * claimed; released without reattaching, the host's drivers stay
     * away (claiming again takes any driver that bound meanwhile). */
    release_all(h, false);
    j->rc = libusb_set_configuration(h->dh, j->a ? j->a : -1);
    if (j->rc == 0)
        h->w.config = j->a;
    memset(h->w.alt, 0, sizeof(h->w.alt));
    if (h->w.config) {
        struct host_job tmp = { .rc = 0 };
        int rc = claim_all(h, &tmp);
        if (rc && j->rc == 0) {
            j->rc = rc;
            snprintf(j->why, sizeof(j->why), "%s", tmp.why);
        }
    }
    build_eps(h, &j->eps);
    j->have_eps = true;
}

static void job_set_alt(struct usb_host_dev *h, struct host_job *j)
{
    j->rc = libusb_set_interface_alt_setting(h->dh, j->a, j->b);
    if (j->rc == 0 && j->a < MAX_IFACES)
        h->w.alt[j->a] = j->b;
    build_eps(h, &j->eps);
    j->have_eps = true;
}

static void job_reset(struct usb_host_dev *h, struct host_job *j)
{
    /* libusb gives the interfaces up around the reset and claims them
     * again; the kernel restores the configuration. */
    j->rc = libusb_reset_device(h->dh);
    if (j->rc == LIBUSB_ERROR_NOT_FOUND || j->rc == LIBUSB_ERROR_NO_DEVICE) {
        j->lost = true;     /* it came back as another device, or not at all */
        return;
    }
    memset(h->w.alt, 0, sizeof(h->w.alt));
    build_eps(h, &j->eps);
    j->have_eps = true;
}

static void job_close(struct usb_host_dev *h)
{
    if (!h->dh)
        return;
    release_all(h, true);
    libusb_close(h->dh);
    h->dh = NULL;
}

static void *worker_main(void *arg)
{
    struct usb_host_dev *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->qlock);
        while (!h->qhead)
            pthread_cond_wait(&h->qcond, &h->qlock);
        struct host_job *j = h->qhead;
        h->qhead = j->qnext;
        if (!h->qhead)
            h->qtail = NULL;
        pthread_mutex_unlock(&h->qlock);

        j->rc = 0;
        switch (j->kind) {
        case JOB_OPEN: job_open(h, j); break;
        case JOB_SET_CONFIG: job_set_config(h, j); break;
        case JOB_SET_ALT: job_set_alt(h, j); break;
        case JOB_CLEAR_HALT: j->rc = libusb_clear_halt(h->dh, j->a); break;
        case JOB_RESET: job_reset(h, j); break;
        case JOB_CLOSE: job_close(h); break;
        }
        if (j->rc == LIBUSB_ERROR_NO_DEVICE)
            j->lost = true;
        bool last = j->kind == JOB_CLOSE;
        post(h->ctx, &j->ev);
        if (last)
            return NULL;
    }
}

static void queue_job(struct usb_host_dev *h, struct host_job *j)
{
    j->ev.is_job = true;
    j->h = h;
    j->qnext = NULL;
    pthread_mutex_lock(&h->qlock);
    if (h->qtail)
        h->qtail->qnext = j;
    else
        h->qhead = j;
    h->qtail = j;
    pthread_cond_signal(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
}

/* ---- the device model (loop's thread) ---- */

static uint32_t nak_bit(uint8_t ep, bool in)
{
    return 1u << ((ep & 15) + (in ? 16 : 0));
}

/* Endpoints told to wait may go on. */
static void wake_waiting(struct usb_host_dev *h)
{
    uint32_t nak = h->nak;
    h->nak = 0;
    for (unsigned b = 0; b < 32; b++)
        if (nak & (1u << b))
            usb_wakeup(&h->dev, (uint8_t)(b & 15), b >= 16);
}

static enum usb_status wait_for_job(struct usb_host_dev *h, struct usb_xfer *x)
{
    h->nak |= nak_bit(x->ep, x->in);
    return USB_NAK;
}

/* A request the worker does; the guest's transfer waits (x may be NULL). */
static enum usb_status start_job(struct usb_host_dev *h, enum job_kind kind, uint8_t a, uint8_t b,
                                 struct usb_xfer *x)
{
    struct host_job *j = calloc(1, sizeof(*j));
    if (!j)
        return USB_IOERROR;
    j->kind = kind;
    j->a = a;
    j->b = b;
    j->x = x;
    h->job = j;
    queue_job(h, j);
    return USB_ASYNC;
}

static void maybe_close(struct usb_host_dev *h);

/* The transfers in flight fail at once; their libusb halves are taken
 * back and freed as they come in. */
static void fail_inflight(struct usb_host_dev *h)
{
    for (;;) {
        struct host_xfer *hx = h->inflight;
        while (hx && !hx->x)
            hx = hx->next;
        if (!hx)
            break;
        struct usb_xfer *x = hx->x;
        hx->x = NULL;
        libusb_cancel_transfer(hx->t);
        x->actual = 0;
        x->status = USB_IOERROR;
        usb_xfer_done(x);      /* may submit again: gone answers at once */
    }
    for (struct host_xfer *hx = h->inflight; hx; hx = hx->next)
        libusb_cancel_transfer(hx->t);
    if (h->job && h->job->x) {
        struct usb_xfer *x = h->job->x;
        h->job->x = NULL;
        x->actual = 0;
        x->status = USB_IOERROR;
        usb_xfer_done(x);
    }
}

static void handle_events_now(struct usb_host_ctx *c)
{
    struct timeval zero = { 0, 0 };
    libusb_handle_events_timeout_completed(c->lu, &zero, NULL);
}

static void unwatch(struct usb_host_dev *h)
{
    if (!h->fd_watched)
        return;
    evloop_del_fd(h->ctx->loop, h->fd);
    h->fd_watched = false;
}

/* The device's node: transfers to reap, or (EVLOOP_IN: an error or hang-up)
 * the device went away, which libusb finishes its transfers for. */
static void dev_ready(void *opaque, int fd, unsigned events)
{
    struct usb_host_dev *h = opaque;
    handle_events_now(h->ctx);
    if (events & EVLOOP_IN)
        unwatch(h);            /* it would be ready forever */
}

static void device_lost(struct usb_host_dev *h)
{
    if (h->gone)
        return;
    h->gone = true;
    log_info("usb-host %s: the device left the host", h->name);
    fail_inflight(h);
    wake_waiting(h);
    if (h->opened && !h->closing && h->ops->gone)
        h->ops->gone(h->opaque, h);
}

static enum usb_status status_of(enum libusb_transfer_status s)
{
    switch (s) {
    case LIBUSB_TRANSFER_COMPLETED: return USB_OK;
    case LIBUSB_TRANSFER_STALL: return USB_STALL;
    case LIBUSB_TRANSFER_OVERFLOW: return USB_BABBLE;
    default: return USB_IOERROR;     /* error, timeout, no device, cancelled */
    }
}

static void xfer_finished(struct host_xfer *hx);

/* Runs inside libusb_handle_events(), on the loop's thread. */
static void LIBUSB_CALL xfer_cb(struct libusb_transfer *t)
{
    xfer_finished(t->user_data);
}

static void xfer_finished(struct host_xfer *hx)
{
    struct usb_host_dev *h = hx->h;
    struct libusb_transfer *t = hx->t;
    if (hx->prev)
        hx->prev->next = hx->next;
    else
        h->inflight = hx->next;
    if (hx->next)
        hx->next->prev = hx->prev;
    bool lost = t->status == LIBUSB_TRANSFER_NO_DEVICE;
    struct usb_xfer *x = hx->x;
    if (x) {
        enum usb_status st = status_of(t->status);
        uint32_t actual = t->actual_length > 0 ? (uint32_t)t->actual_length : 0;
        const uint8_t *data = hx->control ? libusb_control_transfer_get_data(t) : t->buffer;
        if (t->type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS) {
            /* One packet: the service interval's data. */
            const struct libusb_iso_packet_descriptor *p = &t->iso_packet_desc[0];
            if (st == USB_OK)
                st = status_of(p->status);
            if (st == USB_STALL)
                st = USB_IOERROR;      /* isochronous endpoints have no halt */
            actual = p->actual_length;
        }
        if (actual > x->len) {
            actual = x->len;
            if (st == USB_OK)
                st = USB_BABBLE;
        }
        if (x->in && actual)
            memcpy(x->buf, data, actual);
        x->actual = actual;
        x->status = st;
        usb_xfer_done(x);
    }
    libusb_free_transfer(t);
    free(hx);
    if (lost)
        device_lost(h);
    maybe_close(h);
}

/* Hands a transfer to libusb.  buf is malloc'ed and freed with the
 * transfer. */
static enum usb_status submit(struct usb_host_dev *h, struct usb_xfer *x, struct libusb_transfer *t,
                              bool control)
{
    struct host_xfer *hx = calloc(1, sizeof(*hx));
    if (!hx) {
        libusb_free_transfer(t);
        return USB_IOERROR;
    }
    hx->h = h;
    hx->x = x;
    hx->t = t;
    hx->control = control;
    t->user_data = hx;
    t->callback = xfer_cb;
    t->flags |= LIBUSB_TRANSFER_FREE_BUFFER;
    int rc = libusb_submit_transfer(t);
    if (rc != 0) {
        libusb_free_transfer(t);
        free(hx);
        if (rc == LIBUSB_ERROR_NO_DEVICE) {
            device_lost(h);
        } else {
            log_warn("usb-host %s: cannot submit a transfer on endpoint %u: %s", h->name, x->ep,
                     lu_error(rc));
        }
        return USB_IOERROR;
    }
    hx->next = h->inflight;
    if (hx->next)
        hx->next->prev = hx;
    h->inflight = hx;
    return USB_ASYNC;
}

static enum usb_status submit_control(struct usb_host_dev *h, struct usb_xfer *x)
{
    uint16_t wlen = usb_setup_length(x);
    if (!x->in && x->len < wlen)
        return USB_STALL;        /* less data than the request announces */
    struct libusb_transfer *t = libusb_alloc_transfer(0);
    uint8_t *buf = malloc(LIBUSB_CONTROL_SETUP_SIZE + (size_t)wlen);
    if (!t || !buf) {
        libusb_free_transfer(t);
        free(buf);
        return USB_IOERROR;
    }
    memcpy(buf, x->setup, 8);
    if (!x->in && wlen)
        memcpy(buf + LIBUSB_CONTROL_SETUP_SIZE, x->buf, wlen);
    /* No timeout: the guest's driver times out and takes it back. */
    libusb_fill_control_transfer(t, h->dh, buf, NULL, NULL, 0);
    return submit(h, x, t, true);
}

static enum usb_status host_control(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_host_dev *h = d->opaque;
    if (h->gone || !h->opened || h->closing)
        return USB_IOERROR;
    uint8_t type = x->setup[0], req = x->setup[1];
    uint16_t value = usb_setup_value(x), index = usb_setup_index(x);
    /* The host's kernel gave the device its address long ago. */
    if (type == (USB_TYPE_STANDARD | USB_RECIP_DEVICE) && req == USB_REQ_SET_ADDRESS) {
        if (value > 127 || d->config)
            return USB_STALL;
        d->addr = (uint8_t)value;
        h->addressed = value != 0;
        return USB_OK;
    }
    if (h->job)
        return wait_for_job(h, x);
    if (type == (USB_TYPE_STANDARD | USB_RECIP_DEVICE) && req == USB_REQ_SET_CONFIGURATION)
        return start_job(h, JOB_SET_CONFIG, (uint8_t)value, 0, x);
    if (type == (USB_TYPE_STANDARD | USB_RECIP_INTERFACE) && req == USB_REQ_SET_INTERFACE)
        return start_job(h, JOB_SET_ALT, (uint8_t)index, (uint8_t)value, x);
    if (type == (USB_TYPE_STANDARD | USB_RECIP_ENDPOINT) && req == USB_REQ_CLEAR_FEATURE &&
        value == USB_FEATURE_ENDPOINT_HALT && (index & 0x0f))
        return start_job(h, JOB_CLEAR_HALT, (uint8_t)(index & 0x8f), 0, x);
    return submit_control(h, x);
}

static enum usb_status host_data(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_host_dev *h = d->opaque;
    if (h->gone || !h->opened || h->closing)
        return USB_IOERROR;
    if (h->job)
        return wait_for_job(h, x);
    uint8_t type = h->eps.type[x->in][x->ep & 15];
    uint8_t addr = (uint8_t)((x->ep & 15) | (x->in ? 0x80 : 0));
    bool iso = type == LIBUSB_TRANSFER_TYPE_ISOCHRONOUS;
    if ((type != LIBUSB_TRANSFER_TYPE_BULK && type != LIBUSB_TRANSFER_TYPE_INTERRUPT && !iso) ||
        iso != x->iso) {
        /* Not in the current settings (nobody would answer on the bus),
         * or of another type than the controller thinks. */
        log_guest_error("usb-host %s: no %s endpoint %#x in the current settings", h->name,
                        x->iso ? "isochronous" : "bulk or interrupt", addr);
        return USB_IOERROR;
    }
    struct libusb_transfer *t = libusb_alloc_transfer(iso ? 1 : 0);
    uint8_t *buf = malloc(x->len ? x->len : 1);
    if (!t || !buf) {
        libusb_free_transfer(t);
        free(buf);
        return USB_IOERROR;
    }
    if (!x->in && x->len)
        memcpy(buf, x->buf, x->len);
    if (iso) {
        /* One packet of the whole interval (usbfs takes up to the
         * endpoint's bytes per interval, high-bandwidth ones included);
         * consecutive transfers of an endpoint go out in consecutive
         * intervals. */
        libusb_fill_iso_transfer(t, h->dh, addr, buf, (int)x->len, 1, NULL, NULL, 0);
        libusb_set_iso_packet_lengths(t, x->len);
    } else if (type == LIBUSB_TRANSFER_TYPE_BULK) {
        libusb_fill_bulk_transfer(t, h->dh, addr, buf, (int)x->len, NULL, NULL, 0);
    } else {
        libusb_fill_interrupt_transfer(t, h->dh, addr, buf, (int)x->len, NULL, NULL, 0);
    }
    return submit(h, x, t, false);
}

static void host_cancel(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_host_dev *h = d->opaque;
    for (struct host_xfer *hx = h->inflight; hx; hx = hx->next) {
        if (hx->x == x) {
            hx->x = NULL;
            libusb_cancel_transfer(hx->t);   /* freed when libusb gives it back */
            return;
        }
    }
    if (h->job && h->job->x == x)
        h->job->x = NULL;                    /* the job itself goes on */
}

/* A bus reset from the guest (a port reset, Reset Device, the
 * controller's reset).  The device in the host was reset when it was
 * plugged in, so only a device the guest has used since is reset again. */
static void host_reset(struct usb_device *d)
{
    struct usb_host_dev *h = d->opaque;
    h->nak = 0;
    if (!h->addressed || !h->opened || h->gone || h->closing)
        return;
    h->addressed = false;
    if (h->job)
        h->reset_wanted = true;
    else
        start_job(h, JOB_RESET, 0, 0, NULL);
}

static const struct usb_device_ops host_ops = {
    .control = host_control,
    .data = host_data,
    .cancel = host_cancel,
    .reset = host_reset,
};

/* Worker's result, on the loop's thread. */
static void job_finished(struct host_job *j, struct usb_host_dev *h)
{
    if (h->job == j)
        h->job = NULL;
    if (j->have_eps)
        h->eps = j->eps;
    struct usb_device *d = &h->dev;
    struct usb_xfer *x = j->x;
    enum usb_status st = j->rc == 0 ? USB_OK : j->rc == LIBUSB_ERROR_PIPE || j->rc == LIBUSB_ERROR_NOT_FOUND ||
                         j->rc == LIBUSB_ERROR_INVALID_PARAM ? USB_STALL : USB_IOERROR;
    switch (j->kind) {
    case JOB_OPEN:
        h->opened = j->rc == 0;
        if (h->opened && h->ctx->loop) {
            /* usbfs says a transfer can be reaped with POLLOUT. */
            if (evloop_add_fd(h->ctx->loop, h->fd, EVLOOP_OUT, dev_ready, h) == 0) {
                h->fd_watched = true;
            } else {
                h->opened = false;
                snprintf(j->why, sizeof(j->why), "cannot watch its node: %s", strerror(errno));
            }
        }
        if (h->ops->opened)
            h->ops->opened(h->opaque, h, h->opened ? 0 : -1, j->why);
        break;
    case JOB_SET_CONFIG:
        if (j->rc == 0) {
            d->config = j->a;
            d->halted = 0;     /* toggles and halts start afresh (9.1.1.5) */
        } else {
            log_warn("usb-host %s: SET_CONFIGURATION %u: %s", h->name, j->a, j->why[0] ? j->why : lu_error(j->rc));
        }
        break;
    case JOB_SET_ALT:
        if (j->rc == 0)
            for (unsigned in = 0; in < 2; in++)
                for (unsigned n = 1; n < 16; n++)
                    if (h->eps.type[in][n] != EP_NONE && h->eps.iface[in][n] == j->a)
                        d->halted &= ~(1u << (n + 16 * in));
        break;
    case JOB_CLEAR_HALT:
        if (j->rc == 0)
            d->halted &= ~(1u << ((j->a & 15) + ((j->a & 0x80) ? 16 : 0)));
        break;
    case JOB_RESET:
        if (j->rc != 0 && !j->lost)
            log_warn("usb-host %s: reset: %s", h->name, lu_error(j->rc));
        break;
    case JOB_CLOSE:
        break;
    }
    if (x) {
        x->actual = 0;
        x->status = st;
        usb_xfer_done(x);
    }
    bool closed = j->kind == JOB_CLOSE, lost = j->lost;
    free(j);
    if (closed) {
        pthread_join(h->thread, NULL);
        h->thread_started = false;
        if (h->fd >= 0)
            close(h->fd);
        h->fd = -1;
        h->closed = true;
        h->ctx->ndevs--;
        if (h->ops->closed)
            h->ops->closed(h->opaque, h);
        return;
    }
    if (lost)
        device_lost(h);
    if (h->reset_wanted && !h->job && !h->gone && !h->closing) {
        h->reset_wanted = false;
        start_job(h, JOB_RESET, 0, 0, NULL);
        return;
    }
    if (!h->job)
        wake_waiting(h);
    maybe_close(h);
}

/* Closing, with nothing left in flight: the worker gives the device back. */
static void maybe_close(struct usb_host_dev *h)
{
    if (!h->closing || h->inflight || h->job || h->closed)
        return;
    unwatch(h);
    struct host_job *j = calloc(1, sizeof(*j));
    if (!j) {
        log_error("usb-host %s: out of memory closing it", h->name);
        return;
    }
    j->kind = JOB_CLOSE;
    h->job = j;
    queue_job(h, j);
}

/* ---- the context ---- */

static void handle(struct usb_host_ctx *c, struct host_event *ev)
{
    if (ev->is_job) {
        struct host_job *j = (struct host_job *)ev;
        job_finished(j, j->h);
    } else {
        xfer_finished((struct host_xfer *)ev);
    }
}

static int drain(struct usb_host_ctx *c)
{
    uint64_t v;
    if (read(c->efd, &v, sizeof(v)) < 0) {
        /* nothing: spurious */
    }
    pthread_mutex_lock(&c->lock);
    struct host_event *ev = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    int n = 0;
    while (ev) {
        struct host_event *next = ev->next;
        handle(c, ev);
        ev = next;
        n++;
    }
    return n;
}

static void ctx_ready(void *opaque, int fd, unsigned events)
{
    drain(opaque);
}

/* One of libusb's own descriptors (its internal event, its timer). */
static void lu_ready(void *opaque, int fd, unsigned events)
{
    handle_events_now(opaque);
}

struct usb_host_ctx *usb_host_ctx_new(struct evloop *loop, char *err, size_t errlen)
{
    struct usb_host_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->efd = -1;
    pthread_mutex_init(&c->lock, NULL);
    /* Devices are found in sysfs and opened by path here: libusb's own
     * discovery (a udev monitor, a scan of every device) is not needed. */
    libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
    int rc = libusb_init(&c->lu);
    if (rc != 0) {
        snprintf(err, errlen, "libusb: %s", libusb_strerror((enum libusb_error)rc));
        c->lu = NULL;
        usb_host_ctx_free(c);
        return NULL;
    }
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->efd < 0 || (loop && evloop_add_fd(loop, c->efd, EVLOOP_IN, ctx_ready, c) < 0)) {
        snprintf(err, errlen, "cannot set up USB pass-through's completions: %s", strerror(errno));
        usb_host_ctx_free(c);
        return NULL;
    }
    /* libusb's events are handled on the loop's thread: its descriptors
     * are watched there (on Linux its time-outs are a timerfd among them;
     * the device nodes are added as they are opened). */
    if (!libusb_pollfds_handle_timeouts(c->lu)) {
        snprintf(err, errlen, "this libusb needs its time-outs handled by hand");
        usb_host_ctx_free(c);
        return NULL;
    }
    const struct libusb_pollfd **fds = libusb_get_pollfds(c->lu);
    for (size_t i = 0; fds && fds[i] && loop; i++) {
        unsigned ev = ((fds[i]->events & POLLIN) ? EVLOOP_IN : 0) | ((fds[i]->events & POLLOUT) ? EVLOOP_OUT : 0);
        if (c->nlu_fds == MAX_LU_FDS || evloop_add_fd(loop, fds[i]->fd, ev, lu_ready, c) < 0) {
            snprintf(err, errlen, "cannot watch libusb's descriptors");
            libusb_free_pollfds(fds);
            usb_host_ctx_free(c);
            return NULL;
        }
        c->lu_fds[c->nlu_fds++] = fds[i]->fd;
    }
    libusb_free_pollfds(fds);
    return c;
}

void usb_host_ctx_free(struct usb_host_ctx *c)
{
    if (!c)
        return;
    if (c->ndevs)
        log_error("usb-host: %u devices still open at exit", c->ndevs);
    for (unsigned i = 0; i < c->nlu_fds; i++)
        evloop_del_fd(c->loop, c->lu_fds[i]);
    if (c->efd >= 0) {
        if (c->loop)
            evloop_del_fd(c->loop, c->efd);
        close(c->efd);
    }
    if (c->lu)
        libusb_exit(c->lu);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int usb_host_ctx_poll(struct usb_host_ctx *c, int timeout_ms)
{
    /* The loop does not run: wait on what it would watch. */
    struct pollfd pfd[1 + 64];
    nfds_t n = 0;
    pfd[n++] = (struct pollfd){ .fd = c->efd, .events = POLLIN };
    const struct libusb_pollfd **fds = libusb_get_pollfds(c->lu);
    for (size_t i = 0; fds && fds[i] && n < ARRAY_SIZE(pfd); i++)
        pfd[n++] = (struct pollfd){ .fd = fds[i]->fd, .events = fds[i]->events };
    libusb_free_pollfds(fds);
    pthread_mutex_lock(&c->lock);
    bool have = c->head != NULL;
    pthread_mutex_unlock(&c->lock);
    if (!have && poll(pfd, n, timeout_ms) <= 0)
        return 0;
    handle_events_now(c);
    return drain(c);
}

/* ---- devices ---- */

struct usb_host_dev *usb_host_dev_new(struct usb_host_ctx *c, int fd, const char *name,
                                      enum usb_speed speed, const struct usb_host_dev_ops *ops,
                                      void *opaque, char *err, size_t errlen)
{
    struct usb_host_dev *h = calloc(1, sizeof(*h));
    struct host_job *j = calloc(1, sizeof(*j));
    if (!h || !j) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    h->ctx = c;
    h->fd = fd;
    h->ops = ops;
    h->opaque = opaque;
    snprintf(h->name, sizeof(h->name), "%s", name);
    memset(h->eps.type, EP_NONE, sizeof(h->eps.type));
    /* No descriptors of ours: every request but SET_ADDRESS goes to the
     * device, usb_std_control() is never used. */
    usb_device_init(&h->dev, h->name, speed, &host_ops, NULL, h);
    pthread_mutex_init(&h->qlock, NULL);
    pthread_cond_init(&h->qcond, NULL);
    int rc = start_thread(&h->thread, worker_main, h, "usb-host");
    if (rc != 0) {
        snprintf(err, errlen, "cannot start a thread for it: %s", strerror(rc));
        pthread_cond_destroy(&h->qcond);
        pthread_mutex_destroy(&h->qlock);
        goto fail;
    }
    h->thread_started = true;
    c->ndevs++;
    j->kind = JOB_OPEN;
    h->job = j;
    queue_job(h, j);
    return h;
fail:
    free(j);
    free(h);
    close(fd);
    return NULL;
}

struct usb_device *usb_host_dev_device(struct usb_host_dev *h)
{
    return &h->dev;
}

void usb_host_dev_lost(struct usb_host_dev *h)
{
    device_lost(h);
}

void usb_host_dev_close(struct usb_host_dev *h)
{
    if (h->closing)
        return;
    h->closing = true;
    h->reset_wanted = false;
    fail_inflight(h);
    maybe_close(h);
}

void usb_host_dev_free(struct usb_host_dev *h)
{
    if (!h)
        return;
    if (!h->closed) {
        log_error("usb-host %s: freed before it was closed", h->name);
        return;    /* its threads may still use it: leak rather than crash */
    }
    pthread_cond_destroy(&h->qcond);
    pthread_mutex_destroy(&h->qlock);
    free(h);
}
