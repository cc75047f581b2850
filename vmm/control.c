/* The control socket: a UNIX-domain stream server speaking JSON lines (see
 * control.h for the protocol).  Everything runs on the I/O thread's evloop;
 * clients are non-blocking, each with its own input line buffer and output
 * queue, so a slow or misbehaving client only ever hurts itself. */
#include "vmm/control.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

#ifndef BURROW_VERSION
#define BURROW_VERSION "0.1.0"
#endif

#define READ_CHUNK       16384
/* Bytes read from one client per loop round, so a flooding client cannot
 * starve the others (epoll is level-triggered: the rest comes next round). */
#define READ_BUDGET      (256 * 1024)
#define FREE_FLUSH_MS    500
#define AFTER_REPLY_MS   1000

struct control_cmd {
    char *name;
    char *help;
    control_handler_fn fn;
    void *opaque;
};

/* A request whose reply comes later (control_defer). */
struct control_deferred {
    unsigned long token;
    unsigned client;          /* its client's serial: the client may be gone by then */
    json_t *id;
    struct control_deferred *next;
};

struct control_client {
    struct control_server *srv;
    struct control_client *next;
    unsigned serial;          /* for log messages */
    int fd;
    bool dead;                /* fd closed; struct freed when no callback runs */
    bool eof;                 /* peer shut down its side: drain output, then close */
    bool stalled;             /* a wait for it to read timed out; not waited on again until it drains */
    unsigned interest;        /* EVLOOP_* currently asked of the loop */

    char *in;                 /* the line being received, without its newline */
    size_t in_len, in_cap;
    bool discarding;          /* inside an overlong line: skip to the newline */

    char *out;                /* queued output is out[out_head, out_len) */
    size_t out_head, out_len, out_cap;

    int fds[CONTROL_MAX_FDS]; /* received with SCM_RIGHTS, oldest first */
    unsigned nfds;
};

struct control_server {
    struct evloop *loop;
    char *path;
    int fd;
    dev_t dev;                /* identity of our socket file, so that free */
    ino_t ino;                /* never unlinks somebody else's */

    struct control_client *clients;
    unsigned nclients, next_serial;

    struct control_cmd *cmds;
    unsigned ncmds, cmd_cap;

    unsigned depth;           /* callbacks in progress; dead clients reaped at 0 */
    unsigned in_handler;
    struct control_client *current;   /* whose command runs */
    void (*after_fn)(void *opaque);
    void *after_opaque;
    int after_wait_ms;        /* bound on the wait for a reply before its after-action */

    struct control_deferred *deferred;
    unsigned long next_token;
    unsigned long deferring;  /* the handler running asked control_defer() for this one */
};

void control_error_set(struct control_error *err, const char *cls, const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->cls, sizeof(err->cls), "%s", cls ? cls : CONTROL_ERR_FAILED);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
    va_end(ap);
}

/* ---- clients: lifetime ---- */

static void client_kill(struct control_client *c, const char *why)
{
    if (c->dead)
        return;
    if (why)
        log_info("control: client %u disconnected: %s", c->serial, why);
    evloop_del_fd(c->srv->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    while (c->nfds)
        close(c->fds[--c->nfds]);
    c->dead = true;
    c->srv->nclients--;
}

static void reap_clients(struct control_server *srv)
{
    if (srv->depth)
        return;
    struct control_client **pp = &srv->clients;
    while (*pp) {
        struct control_client *c = *pp;
        if (c->dead) {
            *pp = c->next;
            free(c->in);
            free(c->out);
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void client_set_interest(struct control_client *c)
{
    size_t pending = c->out_len - c->out_head;
    unsigned want = (c->eof ? 0 : EVLOOP_IN) | (pending ? EVLOOP_OUT : 0);
    if (!want) {
        /* peer is done sending and has all its replies */
        client_kill(c, NULL);
        return;
    }
    if (want != c->interest) {
        if (evloop_mod_fd(c->srv->loop, c->fd, want) < 0) {
            client_kill(c, "cannot watch socket");
            return;
        }
        c->interest = want;
    }
}

/* ---- clients: output ---- */

static void client_write(struct control_client *c)
{
    while (!c->dead && c->out_len > c->out_head) {
        ssize_t n = send(c->fd, c->out + c->out_head, c->out_len - c->out_head,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            /* peer gone: nothing unusual, no log line */
            client_kill(c, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno));
            return;
        }
        c->out_head += (size_t)n;
    }
    if (c->dead)
        return;
    if (c->out_head == c->out_len) {
        c->out_head = c->out_len = 0;
        c->stalled = false;
    }
    client_set_interest(c);
}

/* Queues data plus a newline and sends what the socket takes right away. */
static void client_queue(struct control_client *c, const char *data, size_t len)
{
    if (c->dead)
        return;
    size_t pending = c->out_len - c->out_head;
    if (pending + len + 1 > CONTROL_MAX_OUTPUT) {
        client_kill(c, "output queue over its limit (client not reading)");
        return;
    }
    if (c->out_head && c->out_cap - c->out_len < len + 1) {
        memmove(c->out, c->out + c->out_head, pending);
        c->out_head = 0;
        c->out_len = pending;
    }
    if (c->out_cap - c->out_len < len + 1) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < len + 1)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p) {
            client_kill(c, "out of memory");
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    client_write(c);
}

static void client_send_json(struct control_client *c, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s) {
        log_error("control: cannot encode a message");
        return;
    }
    client_queue(c, s, strlen(s));
    free(s);
}

static void client_reply_error(struct control_client *c, json_t *id, const char *cls,
                               const char *desc)
{
    json_t *msg = json_object();
    if (id)
        json_object_set(msg, "id", id);
    json_object_set_new(msg, "error", json_pack("{s:s, s:s}", "class", cls, "desc", desc));
    client_send_json(c, msg);
    json_decref(msg);
}

static void client_reply_errorf(struct control_client *c, json_t *id, const char *cls,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void client_reply_errorf(struct control_client *c, json_t *id, const char *cls,
                                const char *fmt, ...)
{
    char desc[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    client_reply_error(c, id, cls, desc);
}

/* ---- requests ---- */

static struct control_cmd *find_cmd(struct control_server *srv, const char *name)
{
    for (unsigned i = 0; i < srv->ncmds; i++)
        if (!strcmp(srv->cmds[i].name, name))
            return &srv->cmds[i];
    return NULL;
}

/* Sends queued output to every client (only == NULL) or to one, waiting
 * at most timeout_ms for slow readers; a client still not drained then is
 * marked stalled. */
static void flush_clients(struct control_server *srv, struct control_client *only, int timeout_ms)
{
    uint64_t deadline = evloop_now_ns() + (uint64_t)MAX(timeout_ms, 0) * 1000000u;
    srv->depth++;
    for (;;) {
        struct pollfd pfd[CONTROL_MAX_CLIENTS];
        struct control_client *who[CONTROL_MAX_CLIENTS];
        unsigned n = 0;
        for (struct control_client *c = srv->clients; c && n < ARRAY_SIZE(pfd); c = c->next) {
            if ((!only || c == only) && !c->dead && c->out_len > c->out_head) {
                pfd[n] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
                who[n++] = c;
            }
        }
        uint64_t now = evloop_now_ns();
        if (n && now >= deadline)
            for (unsigned i = 0; i < n; i++)
                who[i]->stalled = true;
        if (!n || now >= deadline)
            break;
        int ms = (int)((deadline - now + 999999) / 1000000);
        int r = poll(pfd, n, ms);
        if (r < 0 && errno != EINTR)
            break;
        for (unsigned i = 0; i < n && r > 0; i++)
            if (pfd[i].revents)
                client_write(who[i]);
    }
    srv->depth--;
    reap_clients(srv);
}

static void run_command(struct control_client *c, json_t *id, struct control_cmd *cmd,
                        json_t *args)
{
    struct control_server *srv = c->srv;
    struct control_error err = { { 0 }, { 0 } };
    json_t *own_args = args ? json_incref(args) : json_object();

    srv->after_fn = NULL;
    srv->deferring = 0;
    srv->in_handler++;
    srv->current = c;
    json_t *result = cmd->fn(cmd->opaque, own_args, &err);
    srv->current = NULL;
    srv->in_handler--;
    json_decref(own_args);

    if (srv->deferring) {
        for (struct control_deferred *d = srv->deferred; d; d = d->next)
            if (d->token == srv->deferring && id)
                d->id = json_incref(id);
        srv->deferring = 0;
        json_decref(result);
        return;
    }

    if (result && !json_is_object(result)) {
        log_error("control: command \"%s\" returned a non-object", cmd->name);
        json_decref(result);
        result = NULL;
        control_error_set(&err, CONTROL_ERR_FAILED, "internal error: bad result");
    }
    if (result) {
        json_t *msg = json_object();
        if (id)
            json_object_set(msg, "id", id);
        json_object_set_new(msg, "return", result);
        client_send_json(c, msg);
        json_decref(msg);
    } else {
        client_reply_error(c, id, err.cls[0] ? err.cls : CONTROL_ERR_FAILED,
                           err.desc[0] ? err.desc : "command failed");
    }

    if (srv->after_fn) {
        void (*fn)(void *) = srv->after_fn;
        void *opaque = srv->after_opaque;
        srv->after_fn = NULL;
        /* Only this client's reply is waited for, and not at all from a
         * client that already let a wait run out: one that sends commands
         * and never reads must not hold the loop a second per command. */
        if (!c->stalled)
            flush_clients(srv, c, srv->after_wait_ms);
        fn(opaque);
    }
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static void handle_line(struct control_client *c, const char *line, size_t len)
{
    if (is_blank(line, len))
        return;

    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        client_reply_errorf(c, NULL, CONTROL_ERR_PARSE, "invalid JSON at column %d: %s",
                            jerr.column, jerr.text);
        return;
    }
    if (!json_is_object(req)) {
        client_reply_error(c, NULL, CONTROL_ERR_INVALID_REQUEST, "request is not a JSON object");
        json_decref(req);
        return;
    }

    json_t *id = json_object_get(req, "id");
    json_t *name = json_object_get(req, "command");
    json_t *args = json_object_get(req, "arguments");
    const char *key;
    json_t *val;
    json_object_foreach(req, key, val) {
        if (strcmp(key, "id") && strcmp(key, "command") && strcmp(key, "arguments")) {
            client_reply_errorf(c, id, CONTROL_ERR_INVALID_REQUEST,
                                "unexpected member \"%.64s\" in request", key);
            goto out;
        }
    }
    if (!name) {
        client_reply_error(c, id, CONTROL_ERR_INVALID_REQUEST, "request has no \"command\"");
        goto out;
    }
    if (!json_is_string(name)) {
        client_reply_error(c, id, CONTROL_ERR_INVALID_REQUEST, "\"command\" is not a string");
        goto out;
    }
    if (args && !json_is_object(args)) {
        client_reply_error(c, id, CONTROL_ERR_INVALID_REQUEST, "\"arguments\" is not an object");
        goto out;
    }
    struct control_cmd *cmd = find_cmd(c->srv, json_string_value(name));
    if (!cmd) {
        client_reply_errorf(c, id, CONTROL_ERR_UNKNOWN_COMMAND,
                            "no command \"%.64s\" (\"help\" lists them)", json_string_value(name));
        goto out;
    }
    run_command(c, id, cmd, args);
out:
    json_decref(req);
}

/* Splits received bytes into lines; enforces CONTROL_MAX_LINE. */
static void client_feed(struct control_client *c, const char *data, size_t n)
{
    while (n && !c->dead) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        size_t used = nl ? seg + 1 : seg;

        if (c->discarding) {
            if (nl)
                c->discarding = false;
        } else if (c->in_len + seg > CONTROL_MAX_LINE) {
            c->in_len = 0;
            if (!nl)
                c->discarding = true;
            client_reply_errorf(c, NULL, CONTROL_ERR_PARSE, "line longer than %d bytes",
                                CONTROL_MAX_LINE);
        } else {
            if (c->in_cap - c->in_len < seg) {
                size_t cap = c->in_cap ? c->in_cap : 1024;
                while (cap - c->in_len < seg)
                    cap *= 2;
                char *p = realloc(c->in, cap);
                if (!p) {
                    client_kill(c, "out of memory");
                    return;
                }
                c->in = p;
                c->in_cap = cap;
            }
            if (seg)    /* an empty first line: nothing buffered yet */
                memcpy(c->in + c->in_len, data, seg);
            c->in_len += seg;
            if (nl) {
                size_t len = c->in_len;
                c->in_len = 0;
                handle_line(c, c->in, len);
            }
        }
        data += used;
        n -= used;
    }
}

/* Keeps descriptors that came with the bytes (SCM_RIGHTS) for the commands
 * that take one; beyond CONTROL_MAX_FDS they are closed. */
static void client_keep_fds(struct control_client *c, struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->nfds < CONTROL_MAX_FDS) {
                c->fds[c->nfds++] = fd;
            } else {
                log_warn("control: client %u sent more descriptors than commands took", c->serial);
                close(fd);
            }
        }
    }
}

static void client_read(struct control_client *c)
{
    char buf[READ_CHUNK];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(CONTROL_MAX_FDS * sizeof(int))];
    } ctl;
    size_t budget = READ_BUDGET;
    while (!c->dead && !c->eof && budget) {
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                client_kill(c, strerror(errno));
            return;
        }
        if (mh.msg_controllen)
            client_keep_fds(c, &mh);
        if (n == 0) {
            /* A partial last line is dropped; replies still queued go out. */
            c->eof = true;
            client_set_interest(c);
            return;
        }
        budget -= MIN(budget, (size_t)n);
        client_feed(c, buf, (size_t)n);
    }
}

int control_take_fd(struct control_server *srv)
{
    struct control_client *c = srv->current;
    if (!c || !c->nfds)
        return -1;
    int fd = c->fds[0];
    c->nfds--;
    memmove(c->fds, c->fds + 1, c->nfds * sizeof(int));
    return fd;
}

static void client_cb(void *opaque, int fd, unsigned events)
{
    struct control_client *c = opaque;
    struct control_server *srv = c->srv;
    srv->depth++;
    if (events & EVLOOP_OUT)
        client_write(c);
    if (!c->dead && (events & EVLOOP_IN)) {
        if (c->eof)
            client_write(c);   /* hang-up while draining: the write tells */
        else
            client_read(c);
    }
    srv->depth--;
    reap_clients(srv);
}

static void send_greeting(struct control_client *c)
{
    json_t *msg = json_pack("{s:{s:s}}", "burrow", "version", BURROW_VERSION);
    client_send_json(c, msg);
    json_decref(msg);
}

static void accept_cb(void *opaque, int fd, unsigned events)
{
    struct control_server *srv = opaque;
    srv->depth++;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("control: accept: %s", strerror(errno));
            break;
        }
        if (srv->nclients >= CONTROL_MAX_CLIENTS) {
            log_warn("control: refusing a client: %d already connected", CONTROL_MAX_CLIENTS);
            close(cfd);
            continue;
        }
        struct control_client *c = calloc(1, sizeof(*c));
        if (!c || evloop_add_fd(srv->loop, cfd, EVLOOP_IN, client_cb, c) < 0) {
            log_warn("control: cannot take a client");
            free(c);
            close(cfd);
            continue;
        }
        c->srv = srv;
        c->fd = cfd;
        c->interest = EVLOOP_IN;
        c->serial = ++srv->next_serial;
        c->next = srv->clients;
        srv->clients = c;
        srv->nclients++;
        log_debug("control: client %u connected", c->serial);
        send_greeting(c);
    }
    srv->depth--;
    reap_clients(srv);
}

/* ---- replies that come later ---- */

unsigned long control_defer(struct control_server *srv)
{
    if (!srv->current || srv->deferring)
        return srv->deferring;
    struct control_deferred *d = calloc(1, sizeof(*d));
    if (!d)
        return 0;
    d->token = ++srv->next_token;
    d->client = srv->current->serial;
    d->next = srv->deferred;
    srv->deferred = d;
    srv->deferring = d->token;
    return d->token;
}

void control_reply_later(struct control_server *srv, unsigned long token, json_t *result,
                         const struct control_error *err)
{
    struct control_deferred **pp = &srv->deferred;
    while (*pp && (*pp)->token != token)
        pp = &(*pp)->next;
    struct control_deferred *d = *pp;
    if (!d) {
        json_decref(result);
        return;
    }
    *pp = d->next;
    struct control_client *c = srv->clients;
    while (c && (c->serial != d->client || c->dead))
        c = c->next;
    if (c && result) {
        json_t *msg = json_object();
        if (d->id)
            json_object_set(msg, "id", d->id);
        json_object_set_new(msg, "return", result);
        result = NULL;
        client_send_json(c, msg);
        json_decref(msg);
    } else if (c) {
        client_reply_error(c, d->id, err && err->cls[0] ? err->cls : CONTROL_ERR_FAILED,
                           err && err->desc[0] ? err->desc : "command failed");
    }
    json_decref(result);
    json_decref(d->id);
    free(d);
    reap_clients(srv);
}

/* ---- built-in commands ---- */

static json_t *cmd_help(void *opaque, json_t *args, struct control_error *err)
{
    struct control_server *srv = opaque;
    json_t *list = json_array();
    for (unsigned i = 0; i < srv->ncmds; i++)
        json_array_append_new(list, json_pack("{s:s, s:s}", "name", srv->cmds[i].name,
                                              "help", srv->cmds[i].help));
    return json_pack("{s:o}", "commands", list);
}

/* ---- server ---- */

/* Somebody listens on the socket at addr?  0: no (stale), 1: yes, -1: can't
 * tell (errno set). */
static int socket_is_live(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int r = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    int e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN || e == EINPROGRESS)
        return 1;          /* accepted, or a listener with a full backlog */
    if (e == ECONNREFUSED)
        return 0;
    errno = e;
    return -1;
}

/* bind() with no moment where the file is more open than 0600; replaces a
 * stale socket file once. */
static int bind_socket(int fd, const char *path, const struct sockaddr_un *addr,
                       char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        /* Linux creates the socket file with the socket inode's mode less
         * the umask: set that mode rather than the umask, which is the
         * whole process's and other threads already run. */
        if (fchmod(fd, 0600) < 0) {
            set_err(err, errlen, "control socket %s: fchmod: %s", path, strerror(errno));
            return -1;
        }
        int r = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
        int e = errno;
        if (r == 0) {
            struct stat st;
            if (lstat(path, &st) == 0 && (st.st_mode & 0077)) {
                unlink(path);
                set_err(err, errlen, "control socket %s: created with mode %03o, not 0600",
                        path, (unsigned)(st.st_mode & 0777));
                return -1;
            }
            return 0;
        }
        if (e != EADDRINUSE || attempt > 0) {
            set_err(err, errlen, "control socket %s: bind: %s", path, strerror(e));
            return -1;
        }

        struct stat st;
        if (lstat(path, &st) < 0) {
            if (errno == ENOENT)
                continue;  /* gone in the meantime */
            set_err(err, errlen, "control socket %s: %s", path, strerror(errno));
            return -1;
        }
        if (!S_ISSOCK(st.st_mode)) {
            set_err(err, errlen, "control socket %s: file exists and is not a socket", path);
            return -1;
        }
        int live = socket_is_live(addr);
        if (live == 1) {
            set_err(err, errlen, "control socket %s is in use by another running VM", path);
            return -1;
        }
        if (live < 0) {
            set_err(err, errlen, "control socket %s: cannot probe existing socket: %s",
                    path, strerror(errno));
            return -1;
        }
        log_info("control: replacing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT) {
            set_err(err, errlen, "control socket %s: cannot remove stale socket: %s",
                    path, strerror(errno));
            return -1;
        }
    }
}

struct control_server *control_server_new(struct evloop *loop, const char *path,
                                          char *err, size_t errlen)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (!path || !path[0] || strlen(path) >= sizeof(addr.sun_path)) {
        set_err(err, errlen, "control socket path is empty or longer than %zu bytes",
                sizeof(addr.sun_path) - 1);
        return NULL;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);

    struct control_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    srv->loop = loop;
    srv->after_wait_ms = AFTER_REPLY_MS;
    srv->fd = -1;
    srv->path = strdup(path);
    if (!srv->path) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }

    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (srv->fd < 0) {
        set_err(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    if (bind_socket(srv->fd, path, &addr, err, errlen) < 0)
        goto fail;

    struct stat st;
    if (stat(path, &st) < 0 || listen(srv->fd, 16) < 0) {
        set_err(err, errlen, "control socket %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;

    if (evloop_add_fd(loop, srv->fd, EVLOOP_IN, accept_cb, srv) < 0) {
        set_err(err, errlen, "control socket %s: cannot watch it", path);
        unlink(path);
        goto fail;
    }
    control_register(srv, "help", cmd_help, srv, "List the commands with their help text.");
    return srv;

fail:
    if (srv->fd >= 0)
        close(srv->fd);
    free(srv->path);
    free(srv);
    return NULL;
}

void control_server_free(struct control_server *srv)
{
    if (!srv)
        return;
    control_flush(srv, FREE_FLUSH_MS);
    for (struct control_client *c = srv->clients; c; c = c->next)
        client_kill(c, NULL);
    srv->depth = 0;
    reap_clients(srv);

    evloop_del_fd(srv->loop, srv->fd);
    close(srv->fd);
    struct stat st;
    if (lstat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
        unlink(srv->path);

    while (srv->deferred) {
        struct control_deferred *d = srv->deferred;
        srv->deferred = d->next;
        json_decref(d->id);
        free(d);
    }
    for (unsigned i = 0; i < srv->ncmds; i++) {
        free(srv->cmds[i].name);
        free(srv->cmds[i].help);
    }
    free(srv->cmds);
    free(srv->path);
    free(srv);
}

void control_register(struct control_server *srv, const char *name,
                      control_handler_fn fn, void *opaque, const char *help)
{
    char *h = strdup(help ? help : "");
    if (!h)
        goto oom;
    struct control_cmd *cmd = find_cmd(srv, name);
    if (cmd) {
        free(cmd->help);
    } else {
        if (srv->ncmds == srv->cmd_cap) {
            unsigned cap = srv->cmd_cap ? srv->cmd_cap * 2 : 16;
            struct control_cmd *p = realloc(srv->cmds, cap * sizeof(*p));
            if (!p)
                goto oom;
            srv->cmds = p;
            srv->cmd_cap = cap;
        }
        cmd = &srv->cmds[srv->ncmds];
        cmd->name = strdup(name);
        if (!cmd->name)
            goto oom;
        srv->ncmds++;
    }
    cmd->help = h;
    cmd->fn = fn;
    cmd->opaque = opaque;
    return;
oom:
    free(h);
    log_error("control: out of memory registering \"%s\"", name);
}

void control_broadcast(struct control_server *srv, const char *event, json_t *data)
{
    if (!data)
        data = json_object();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *msg = json_pack("{s:s, s:o, s:{s:I, s:I}}", "event", event, "data", data,
                            "timestamp", "seconds", (json_int_t)ts.tv_sec,
                            "microseconds", (json_int_t)(ts.tv_nsec / 1000));
    if (!msg) {
        log_error("control: cannot build event %s", event);
        return;
    }
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s) {
        log_error("control: cannot encode event %s", event);
        return;
    }
    size_t len = strlen(s);
    for (struct control_client *c = srv->clients; c; c = c->next)
        client_queue(c, s, len);
    free(s);
    reap_clients(srv);
}

void control_flush(struct control_server *srv, int timeout_ms)
{
    flush_clients(srv, NULL, timeout_ms);
}

void control_after_reply(struct control_server *srv, void (*fn)(void *opaque), void *opaque)
{
    if (srv->in_handler) {
        srv->after_fn = fn;
        srv->after_opaque = opaque;
        return;
    }
    control_flush(srv, srv->after_wait_ms);
    fn(opaque);
}

void control_set_after_wait(struct control_server *srv, int ms)
{
    srv->after_wait_ms = ms < 0 ? 0 : ms;
}

unsigned control_client_count(const struct control_server *srv)
{
    return srv->nclients;
}
