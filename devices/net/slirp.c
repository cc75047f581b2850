/* User-mode networking: libslirp on the I/O thread's event loop.
 *
 * Poll integration.  libslirp wants the classic cycle "fill a poll set,
 * sleep, report what is ready".  We keep a private epoll instance that
 * mirrors the set from the last slirp_pollfds_fill() and watch that one fd
 * in the event loop.  A round (run when the private epoll fd is readable,
 * when slirp's timeout expires, or soon after the guest sent frames) does
 * poll() with zero timeout on the filled set, slirp_pollfds_poll(), then a
 * new fill, and brings the epoll registrations and the timeout timer in line
 * with it.  Every registration is refreshed on each round (EPOLL_CTL_MOD,
 * falling back to ADD), so a socket closed and reopened under the same
 * number between two rounds is never missed.
 *
 * Frames from the NIC are queued and handed to slirp_input() in the next
 * round, so libslirp only ever runs on the I/O thread and a vCPU writing a
 * NIC register never waits for it. */
#include "devices/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libslirp.h>

#include "devices/evloop.h"
#include "devices/util.h"

/* Frames from the guest waiting for the next round. */
#define TXQ_MAX_FRAMES 1024

struct slirp_timer {
    struct net_slirp *s;
    SlirpTimerId id;
    SlirpTimerCb cb;            /* old-style timers (timer_new) */
    void *cb_opaque;
    int ev_id;                  /* evloop timer, 0 when not armed */
    struct slirp_timer *next;
};

struct net_slirp {
    struct net_backend nb;      /* first: the generic part */
    struct evloop *loop;
    Slirp *slirp;
    int epfd;                   /* mirrors the poll set */
    struct pollfd *pfds;
    unsigned npfd, pfd_cap;
    int *watched;               /* fds registered in epfd */
    unsigned nwatched, watched_cap;
    int timeout_timer;          /* evloop timer for slirp's timeout, 0 if none */
    int kick_timer;             /* pending "run a round soon", 0 if none */
    bool in_round;
    struct net_frame *txq_head, *txq_tail;
    unsigned txq_frames;
    struct slirp_timer *timers;
    char *tftp, *bootfile;
};

static void slirp_round(struct net_slirp *s);

/* --- deferred rounds ---------------------------------------------------- */

static void kick_fired(void *opaque)
{
    struct net_slirp *s = opaque;
    s->kick_timer = 0;
    slirp_round(s);
}

/* Asks for a round on the next event-loop pass. */
static void kick(struct net_slirp *s)
{
    if (s->kick_timer || s->in_round)
        return;
    s->kick_timer = evloop_add_timer(s->loop, 0, kick_fired, s);
    if (s->kick_timer < 0)
        s->kick_timer = 0;
}

/* --- libslirp callbacks ------------------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;
    net_backend_deliver(&s->nb, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    log_guest_error("net user: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    return (int64_t)evloop_now_ns();
}

static struct slirp_timer *timer_alloc(struct net_slirp *s)
{
    struct slirp_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->next = s->timers;
    s->timers = t;
    return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct slirp_timer *t = timer_alloc(opaque);
    if (t) {
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct slirp_timer *t = timer_alloc(opaque);
    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct net_slirp *s = opaque;
    struct slirp_timer *t = timer;
    if (!t)
        return;
    if (t->ev_id)
        evloop_del_timer(s->loop, t->ev_id);
    for (struct slirp_timer **pp = &s->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
}

static void timer_fired(void *opaque)
{
    struct slirp_timer *t = opaque;
    struct net_slirp *s = t->s;
    t->ev_id = 0;
    if (t->cb)
        t->cb(t->cb_opaque);
    else
        slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
    kick(s);
}

/* expire_time is in milliseconds of cb_clock_get_ns's clock. */
static void cb_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
    struct net_slirp *s = opaque;
    struct slirp_timer *t = timer;
    if (!t)
        return;
    if (t->ev_id)
        evloop_del_timer(s->loop, t->ev_id);
    int64_t now_ms = (int64_t)(evloop_now_ns() / 1000000);
    uint64_t delay = expire_time > now_ms ? (uint64_t)(expire_time - now_ms) * 1000000 : 0;
    t->ev_id = evloop_add_timer(s->loop, delay, timer_fired, t);
    if (t->ev_id < 0)
        t->ev_id = 0;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    /* The poll set is rebuilt on every round; nothing to keep. */
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
}

static void cb_notify(void *opaque)
{
    kick(opaque);
}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* --- poll set ----------------------------------------------------------- */

static int add_poll(int fd, int events, void *opaque)
{
    struct net_slirp *s = opaque;
    if (s->npfd == s->pfd_cap) {
        unsigned cap = s->pfd_cap ? s->pfd_cap * 2 : 16;
        struct pollfd *p = realloc(s->pfds, cap * sizeof(*p));
        if (!p)
            return -1;   /* slirp treats -1 as "not polled" */
        s->pfds = p;
        s->pfd_cap = cap;
    }
    short ev = 0;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    s->pfds[s->npfd] = (struct pollfd){ .fd = fd, .events = ev };
    return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    if (idx < 0 || (unsigned)idx >= s->npfd)
        return 0;
    short r = s->pfds[idx].revents;
    int ev = 0;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static bool in_pollset(const struct net_slirp *s, int fd)
{
    for (unsigned i = 0; i < s->npfd; i++)
        if (s->pfds[i].fd == fd)
            return true;
    return false;
}

/* Makes the private epoll set equal to the poll set. */
static void sync_epoll(struct net_slirp *s)
{
    for (unsigned i = 0; i < s->nwatched; i++)
        if (!in_pollset(s, s->watched[i]))
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->watched[i], NULL);   /* may be closed already */
    if (s->watched_cap < s->npfd) {
        int *w = realloc(s->watched, s->npfd * sizeof(*w));
        if (!w) {
            s->nwatched = 0;
            return;
        }
        s->watched = w;
        s->watched_cap = s->npfd;
    }
    s->nwatched = 0;
    for (unsigned i = 0; i < s->npfd; i++) {
        struct epoll_event ev = { .data.fd = s->pfds[i].fd };
        if (s->pfds[i].events & POLLIN)
            ev.events |= EPOLLIN;
        if (s->pfds[i].events & POLLOUT)
            ev.events |= EPOLLOUT;
        if (s->pfds[i].events & POLLPRI)
            ev.events |= EPOLLPRI;
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->pfds[i].fd, &ev) < 0 &&
            (errno != ENOENT || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->pfds[i].fd, &ev) < 0)) {
            log_warn("net user: cannot watch fd %d: %s", s->pfds[i].fd, strerror(errno));
            continue;
        }
        s->watched[s->nwatched++] = s->pfds[i].fd;
    }
}

static void timeout_fired(void *opaque)
{
    struct net_slirp *s = opaque;
    s->timeout_timer = 0;
    slirp_round(s);
}

static void flush_txq(struct net_slirp *s)
{
    while (s->txq_head) {
        struct net_frame *f = s->txq_head;
        s->txq_head = f->next;
        s->txq_frames--;
        slirp_input(s->slirp, f->data, (int)f->len);
        free(f);
    }
    s->txq_tail = NULL;
}

static void slirp_round(struct net_slirp *s)
{
    if (s->in_round)
        return;
    s->in_round = true;
    if (s->kick_timer) {
        evloop_del_timer(s->loop, s->kick_timer);
        s->kick_timer = 0;
    }
    flush_txq(s);

    /* Report what the last fill asked about. */
    int r = s->npfd ? poll(s->pfds, s->npfd, 0) : 0;
    if (r < 0 && errno == EINTR)
        r = 0;
    slirp_pollfds_poll(s->slirp, r < 0, get_revents, s);

    s->npfd = 0;
    uint32_t timeout = UINT32_MAX;
    slirp_pollfds_fill(s->slirp, &timeout, add_poll, s);
    sync_epoll(s);

    if (s->timeout_timer) {
        evloop_del_timer(s->loop, s->timeout_timer);
        s->timeout_timer = 0;
    }
    if (timeout != UINT32_MAX) {
        s->timeout_timer = evloop_add_timer(s->loop, (uint64_t)timeout * 1000000, timeout_fired, s);
        if (s->timeout_timer < 0)
            s->timeout_timer = 0;
    }
    s->in_round = false;
    /* Frames the guest sent from inside a callback of this round. */
    if (s->txq_head)
        kick(s);
}

static void epfd_ready(void *opaque, int fd, unsigned events)
{
    struct epoll_event evs[16];
    struct net_slirp *s = opaque;
    /* Level-triggered: draining the readiness list is not needed, the
     * round's poll() sees the same state. */
    (void)epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), 0);
    slirp_round(s);
}

/* --- backend ops -------------------------------------------------------- */

static void slirp_transmit(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    if (s->txq_frames >= TXQ_MAX_FRAMES) {
        nb->stats.tx_dropped++;
        return;
    }
    struct net_frame *f = malloc(sizeof(*f) + len);
    if (!f) {
        nb->stats.tx_dropped++;
        return;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->data, frame, len);
    if (s->txq_tail)
        s->txq_tail->next = f;
    else
        s->txq_head = f;
    s->txq_tail = f;
    s->txq_frames++;
    kick(s);
}

static void slirp_destroy(struct net_backend *nb)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    if (s->kick_timer)
        evloop_del_timer(s->loop, s->kick_timer);
    if (s->timeout_timer)
        evloop_del_timer(s->loop, s->timeout_timer);
    if (s->slirp)
        slirp_cleanup(s->slirp);   /* frees its timers through cb_timer_free */
    while (s->timers)
        cb_timer_free(s->timers, s);
    while (s->txq_head) {
        struct net_frame *f = s->txq_head;
        s->txq_head = f->next;
        free(f);
    }
    if (s->epfd >= 0) {
        evloop_del_fd(s->loop, s->epfd);
        close(s->epfd);
    }
    free(s->pfds);
    free(s->watched);
    free(s->tftp);
    free(s->bootfile);
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .transmit = slirp_transmit,
    .destroy = slirp_destroy,
};

static struct net_slirp *to_slirp(struct net_backend *nb)
{
    return nb && nb->ops == &slirp_ops ? (struct net_slirp *)nb : NULL;
}

int net_slirp_hostfwd_add(struct net_backend *nb, const struct net_hostfwd *fwd, char *err,
                          size_t errlen)
{
    struct net_slirp *s = to_slirp(nb);
    if (!s) {
        snprintf(err, errlen, "not a user-mode network");
        return -1;
    }
    char ha[INET_ADDRSTRLEN], ga[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &fwd->host_addr, ha, sizeof(ha));
    inet_ntop(AF_INET, &fwd->guest_addr, ga, sizeof(ga));
    if (slirp_add_hostfwd(s->slirp, fwd->udp, fwd->host_addr, fwd->host_port, fwd->guest_addr,
                          fwd->guest_port) < 0) {
        snprintf(err, errlen, "cannot forward %s %s:%u to %s:%u (port in use?)",
                 fwd->udp ? "udp" : "tcp", ha, fwd->host_port, ga, fwd->guest_port);
        return -1;
    }
    log_debug("net user: forwarding %s %s:%u to %s:%u", fwd->udp ? "udp" : "tcp", ha,
              fwd->host_port, ga, fwd->guest_port);
    kick(s);   /* the new listening socket joins the poll set */
    return 0;
}

int net_slirp_hostfwd_remove(struct net_backend *nb, bool udp, struct in_addr host_addr,
                             uint16_t host_port, char *err, size_t errlen)
{
    struct net_slirp *s = to_slirp(nb);
    if (!s) {
        snprintf(err, errlen, "not a user-mode network");
        return -1;
    }
    if (slirp_remove_hostfwd(s->slirp, udp, host_addr, host_port) < 0) {
        char ha[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &host_addr, ha, sizeof(ha));
        snprintf(err, errlen, "no %s forward on %s:%u", udp ? "udp" : "tcp", ha, host_port);
        return -1;
    }
    kick(s);
    return 0;
}

char *net_slirp_info(struct net_backend *nb)
{
    struct net_slirp *s = to_slirp(nb);
    return s ? slirp_connection_info(s->slirp) : NULL;
}

struct net_backend *net_slirp_new(struct evloop *loop, const struct net_user_opts *opts,
                                  char *err, size_t errlen)
{
    if (opts->tftp[0]) {
        struct stat st;
        if (stat(opts->tftp, &st) < 0) {
            snprintf(err, errlen, "tftp directory '%s': %s", opts->tftp, strerror(errno));
            return NULL;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "tftp directory '%s': not a directory", opts->tftp);
            return NULL;
        }
    }
    struct net_slirp *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    net_backend_init(&s->nb, &slirp_ops, "user");
    s->loop = loop;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0 || evloop_add_fd(loop, s->epfd, EVLOOP_IN, epfd_ready, s) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        if (s->epfd >= 0)
            close(s->epfd);
        free(s);
        return NULL;
    }
    if (opts->tftp[0] && !(s->tftp = strdup(opts->tftp)))
        goto oom;
    if (opts->bootfile[0] && !(s->bootfile = strdup(opts->bootfile)))
        goto oom;

    SlirpConfig cfg = {
        .version = 4,
        .restricted = opts->restrict_host,
        .in_enabled = true,
        .in6_enabled = opts->ipv6,
        .vprefix_len = 64,
        .tftp_path = s->tftp,
        .bootfile = s->bootfile,
        .tftp_server_name = NULL,
        .vhostname = NULL,
    };
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);

    s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
    if (!s->slirp) {
        snprintf(err, errlen, "libslirp refused the network configuration");
        slirp_destroy(&s->nb);
        return NULL;
    }
    for (unsigned i = 0; i < opts->nhostfwd; i++) {
        if (net_slirp_hostfwd_add(&s->nb, &opts->hostfwd[i], err, errlen) < 0) {
            slirp_destroy(&s->nb);
            return NULL;
        }
    }
    slirp_round(s);   /* first fill: the forwards' sockets are watched */
    return &s->nb;
oom:
    snprintf(err, errlen, "out of memory");
    slirp_destroy(&s->nb);
    return NULL;
}
