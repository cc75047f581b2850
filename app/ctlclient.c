/* Control socket client: JSON lines, replies matched by id, events queued. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "app/ctlclient.h"
#include "app/paths.h"

/* The greeting comes at once from a live server; a little patience covers a
 * busy host. */
#define GREETING_TIMEOUT_MS 3000
#define DEFAULT_TIMEOUT_MS  10000

struct burrow_ctl {
    int fd;
    char *buf;          /* received bytes not yet parsed */
    size_t len, cap;
    json_t **events;    /* FIFO of events read while waiting for replies */
    size_t nev, capev;
    long long next_id;
};

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

size_t ctl_pending_events(const struct burrow_ctl *ctl)
{
    return ctl->nev;
}

int burrow_ctl_fd(const struct burrow_ctl *ctl)
{
    return ctl->fd;
}

void burrow_ctl_close(struct burrow_ctl *ctl)
{
    if (!ctl)
        return;
    if (ctl->fd >= 0)
        close(ctl->fd);
    for (size_t i = 0; i < ctl->nev; i++)
        json_decref(ctl->events[i]);
    free(ctl->events);
    free(ctl->buf);
    free(ctl);
}

/* One JSON line: 1 with *out, 0 on timeout, -1 closed or broken. */
static int read_message(struct burrow_ctl *ctl, json_t **out, long long deadline,
                        struct burrow_error *err)
{
    for (;;) {
        char *nl = ctl->len ? memchr(ctl->buf, '\n', ctl->len) : NULL;
        while (nl) {
            size_t n = (size_t)(nl - ctl->buf);
            json_error_t je;
            json_t *msg = n ? json_loadb(ctl->buf, n, 0, &je) : NULL;
            memmove(ctl->buf, nl + 1, ctl->len - n - 1);
            ctl->len -= n + 1;
            if (msg && json_is_object(msg)) {
                *out = msg;
                return 1;
            }
            json_decref(msg);   /* blank or garbage line: skip it */
            nl = ctl->len ? memchr(ctl->buf, '\n', ctl->len) : NULL;
        }
        if (ctl->len >= CTL_MAX_LINE) {
            burrow_error_set(err, "control socket: line longer than %d bytes", CTL_MAX_LINE);
            return -1;
        }
        long long left = deadline - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = { .fd = ctl->fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            burrow_error_set(err, "control socket: %s", strerror(errno));
            return -1;
        }
        if (r == 0) {
            if (now_ms() >= deadline)
                return 0;
            continue;
        }
        if (ctl->cap - ctl->len < 4096) {
            size_t ncap = ctl->cap ? ctl->cap * 2 : 8192;
            char *nb = realloc(ctl->buf, ncap);
            if (!nb) {
                burrow_error_set(err, "out of memory");
                return -1;
            }
            ctl->buf = nb;
            ctl->cap = ncap;
        }
        ssize_t n = read(ctl->fd, ctl->buf + ctl->len, ctl->cap - ctl->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            burrow_error_set(err, "control socket: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            burrow_error_set(err, "the VM closed its control connection");
            return -1;
        }
        ctl->len += (size_t)n;
    }
}

static int queue_event(struct burrow_ctl *ctl, json_t *ev)
{
    if (ctl->nev == ctl->capev) {
        /* A client that never reads its events must not grow forever:
         * beyond a bound the oldest go. */
        if (ctl->capev >= 4096) {
            json_decref(ctl->events[0]);
            memmove(ctl->events, ctl->events + 1, (ctl->nev - 1) * sizeof(json_t *));
            ctl->nev--;
        } else {
            size_t ncap = ctl->capev ? ctl->capev * 2 : 16;
            json_t **ne = realloc(ctl->events, ncap * sizeof(json_t *));
            if (!ne) {
                json_decref(ev);
                return -1;
            }
            ctl->events = ne;
            ctl->capev = ncap;
        }
    }
    ctl->events[ctl->nev++] = ev;
    return 0;
}

struct burrow_ctl *burrow_ctl_connect(const char *path, int timeout_ms, struct burrow_error *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        burrow_error_set(err, "control socket path too long: %s", path);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int fd;
    for (;;) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            burrow_error_set(err, "socket: %s", strerror(errno));
            return NULL;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        int e = errno;
        close(fd);
        if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || now_ms() >= deadline) {
            burrow_error_set(err, "cannot connect to %s: %s", path, strerror(e));
            return NULL;
        }
        usleep(20000);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct burrow_ctl *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) {
        close(fd);
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    ctl->fd = fd;
    ctl->next_id = 1;
    json_t *greeting = NULL;
    int r = read_message(ctl, &greeting, now_ms() + GREETING_TIMEOUT_MS, err);
    if (r <= 0 || !json_is_object(json_object_get(greeting, "burrow"))) {
        if (r == 0)
            burrow_error_set(err, "%s: no greeting from the VM", path);
        else if (r > 0)
            burrow_error_set(err, "%s: not a Burrow control socket", path);
        json_decref(greeting);
        burrow_ctl_close(ctl);
        return NULL;
    }
    json_decref(greeting);
    return ctl;
}

/* Sends data; pass_fd (>= 0) goes with its first bytes (SCM_RIGHTS). */
static int send_all(struct burrow_ctl *ctl, const char *data, size_t len, int pass_fd,
                    long long deadline, struct burrow_error *err)
{
    while (len) {
        struct iovec iov = { (void *)data, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl_buf;
        if (pass_fd >= 0) {
            memset(&ctl_buf, 0, sizeof(ctl_buf));
            mh.msg_control = ctl_buf.buf;
            mh.msg_controllen = sizeof(ctl_buf.buf);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        ssize_t n = sendmsg(ctl->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                burrow_error_set(err, "control socket: the VM does not take requests");
                return -1;
            }
            struct pollfd pfd = { .fd = ctl->fd, .events = POLLOUT };
            poll(&pfd, 1, (int)left);
            continue;
        }
        if (n < 0) {
            burrow_error_set(err, "control socket: %s", strerror(errno));
            return -1;
        }
        pass_fd = -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int burrow_ctl_command(struct burrow_ctl *ctl, const char *command, json_t *args, json_t **reply,
                       int timeout_ms, struct burrow_error *err)
{
    return burrow_ctl_command_fd(ctl, command, args, -1, reply, timeout_ms, err);
}

int burrow_ctl_command_fd(struct burrow_ctl *ctl, const char *command, json_t *args, int pass_fd,
                          json_t **reply, int timeout_ms, struct burrow_error *err)
{
    if (reply)
        *reply = NULL;
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    long long id = ctl->next_id++;
    json_t *req = json_pack("{s:s,s:I}", "command", command, "id", (json_int_t)id);
    if (args)
        json_object_set(req, "arguments", args);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text) {
        burrow_error_set(err, "cannot encode the request");
        return -1;
    }
    size_t len = strlen(text);
    char *line = malloc(len + 2);
    if (!line) {
        free(text);
        burrow_error_set(err, "out of memory");
        return -1;
    }
    memcpy(line, text, len);
    line[len] = '\n';
    free(text);
    int rc = send_all(ctl, line, len + 1, pass_fd, deadline, err);
    free(line);
    if (rc < 0)
        return -1;
    for (;;) {
        json_t *msg = NULL;
        int r = read_message(ctl, &msg, deadline, err);
        if (r == 0) {
            burrow_error_set(err, "'%s': no answer from the VM within %d s", command,
                             (int)((timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS) / 1000));
            return -1;
        }
        if (r < 0)
            return -1;
        if (json_object_get(msg, "event")) {
            queue_event(ctl, msg);
            continue;
        }
        json_t *rid = json_object_get(msg, "id");
        if (!json_is_integer(rid) || json_integer_value(rid) != id) {
            json_decref(msg);   /* someone else's reply */
            continue;
        }
        json_t *e = json_object_get(msg, "error");
        if (e) {
            const char *cls = json_string_value(json_object_get(e, "class"));
            const char *desc = json_string_value(json_object_get(e, "desc"));
            burrow_error_set(err, "%s", desc ? desc : "the VM refused the command");
            if (err)
                snprintf(err->cls, sizeof(err->cls), "%s", cls ? cls : "failed");
            json_decref(msg);
            return -1;
        }
        if (reply) {
            json_t *ret = json_object_get(msg, "return");
            *reply = ret ? json_incref(ret) : json_object();
        }
        json_decref(msg);
        return 0;
    }
}

int burrow_ctl_read_event(struct burrow_ctl *ctl, json_t **event, int timeout_ms,
                          struct burrow_error *err)
{
    *event = NULL;
    if (ctl->nev) {
        *event = ctl->events[0];
        memmove(ctl->events, ctl->events + 1, (ctl->nev - 1) * sizeof(json_t *));
        ctl->nev--;
        return 1;
    }
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        json_t *msg = NULL;
        int r = read_message(ctl, &msg, deadline, err);
        if (r <= 0)
            return r;
        if (json_object_get(msg, "event")) {
            *event = msg;
            return 1;
        }
        json_decref(msg);   /* a late reply nobody waits for */
    }
}

int burrow_ctl_display_connect(struct burrow_ctl *ctl, struct burrow_error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        burrow_error_set(err, "socketpair: %s", strerror(errno));
        return -1;
    }
    int rc = burrow_ctl_command_fd(ctl, "display-connect", NULL, sv[1], NULL, 0, err);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        return -1;
    }
    return sv[0];
}
