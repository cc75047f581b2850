/* Character backends for guest serial ports: stdio, file, unix socket, none.
 * See chardev.h for the behaviour of each kind. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* accept4 */
#endif
#include "devices/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

#define CTRL_A 0x01

/* At close, how long a reader that takes no output at all is waited for
 * before the rest is given up; one that keeps reading is waited for. */
#define CLOSE_STALL_MS 10000

enum chardev_kind { CD_NONE, CD_STDIO, CD_FILE, CD_UNIX };

/* One file descriptor as the event loop knows it. */
struct cd_watch {
    int fd;          /* -1: nothing registered */
    unsigned mask;   /* events registered (0 while not registered) */
};

/* One reader and writer of the backend: stdio's terminal, the file, or
 * one client of the unix socket (whose socket is both its fds). */
struct cd_peer {
    int out_fd;            /* -1: nowhere to write (a free client slot) */
    int in_fd;             /* -1: no input */
    bool out_is_sock;      /* send() with MSG_NOSIGNAL instead of write() */
    bool out_poll;         /* blocking fd: write only what poll() allows */
    bool out_broken;       /* a fatal write error; output dropped from now */
    uint8_t *obuf;         /* ring of CHARDEV_OUTBUF_SIZE bytes, its own */
    size_t ohead, olen;
    uint64_t dropped;
    struct cd_watch w_in, w_out;
};

struct chardev {
    enum chardev_kind kind;
    struct evloop *loop;

    /* stdio and file use peers[0]; unix one per connected client. */
    struct cd_peer peers[CHARDEV_MAX_CLIENTS];

    /* Input side, shared by every peer: the consumer's room. */
    bool in_is_tty;        /* stdin in raw mode: Ctrl-A escapes apply */
    bool in_armed;         /* consumer can take data: watch for input */
    chardev_receive_fn receive;
    chardev_can_receive_fn can_receive;
    void *opaque;
    bool esc;              /* Ctrl-A seen, waiting for the command key */
    void (*quit)(void *opaque);
    void *quit_opaque;

    /* unix: the listening socket and its path. */
    int listen_fd;
    char *path;
    struct cd_watch w_listen;
};

static void chardev_fd_event(void *opaque, int fd, unsigned events);

/* ---- terminal state (one stdio backend per process) ---- */

static struct termios saved_tio;
static volatile sig_atomic_t tio_raw;   /* saved_tio must be put back */
static bool stdio_in_use;
static bool atexit_done;

static const int fatal_signals[] = {
    SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE,
};
static bool sig_installed[ARRAY_SIZE(fatal_signals)];

void chardev_restore_terminal(void)
{
    /* Only async-signal-safe calls here: tcsetattr is one. */
    if (tio_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
        tio_raw = 0;
    }
}

static void restore_at_exit(void)
{
    chardev_restore_terminal();
}

static void fatal_signal_handler(int sig)
{
    int saved_errno = errno;
    chardev_restore_terminal();
    /* SA_RESETHAND put the default action back; the re-raised signal is
     * delivered once this handler returns and ends the process as usual. */
    raise(sig);
    errno = saved_errno;
}

static void install_signal_handlers(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(fatal_signals); i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) < 0)
            continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;   /* the process handles it: it calls restore itself */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = fatal_signal_handler;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(fatal_signals[i], &sa, NULL) == 0)
            sig_installed[i] = true;
    }
}

static void remove_signal_handlers(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(fatal_signals); i++) {
        if (!sig_installed[i])
            continue;
        struct sigaction cur;
        if (sigaction(fatal_signals[i], NULL, &cur) == 0 &&
            !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == fatal_signal_handler)
            signal(fatal_signals[i], SIG_DFL);
        sig_installed[i] = false;
    }
}

static int enter_raw_mode(void)
{
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &tio) < 0)
        return -1;
    saved_tio = tio;
    /* Every key goes to the guest as typed: no echo, no line editing, no
     * signals from ^C/^Z, no CR/NL mapping.  Output processing stays on so
     * host messages on stderr still start at column 0. */
    tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    tio.c_cflag |= CS8;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (!atexit_done) {
        atexit(restore_at_exit);
        atexit_done = true;
    }
    tio_raw = 1;
    install_signal_handlers();
    if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) < 0) {
        tio_raw = 0;
        remove_signal_handlers();
        return -1;
    }
    return 0;
}

/* ---- event-loop registration ---- */

static void watch_set(struct chardev *cd, struct cd_watch *w, int fd, unsigned mask)
{
    if (!cd->loop)
        return;
    if (w->fd >= 0 && (w->fd != fd || mask == 0)) {
        evloop_del_fd(cd->loop, w->fd);
        w->fd = -1;
        w->mask = 0;
    }
    if (fd < 0 || mask == 0)
        return;
    if (w->fd < 0) {
        if (evloop_add_fd(cd->loop, fd, mask, chardev_fd_event, cd) < 0) {
            log_error("serial: cannot watch fd %d: %s", fd, strerror(errno));
            return;
        }
        w->fd = fd;
        w->mask = mask;
    } else if (w->mask != mask) {
        evloop_mod_fd(cd->loop, fd, mask);
        w->mask = mask;
    }
}

/* Brings the loop's view of a peer's fds in line with what is wanted. */
static void update_peer(struct chardev *cd, struct cd_peer *p)
{
    unsigned in = p->in_fd >= 0 && cd->in_armed ? EVLOOP_IN : 0;
    unsigned out = p->out_fd >= 0 && p->olen > 0 ? EVLOOP_OUT : 0;
    if (p->in_fd >= 0 && p->in_fd == p->out_fd) {
        watch_set(cd, &p->w_in, -1, 0);
        watch_set(cd, &p->w_out, p->out_fd, in | out);
    } else {
        watch_set(cd, &p->w_in, p->in_fd, in);
        watch_set(cd, &p->w_out, p->out_fd, out);
    }
}

static void update_watches(struct chardev *cd)
{
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
        update_peer(cd, &cd->peers[i]);
}

static bool peer_free(const struct cd_peer *p)
{
    return p->in_fd < 0 && p->out_fd < 0;
}

/* ---- output ---- */

/* Writes without blocking: bytes written, 0 when the fd is full, -1 on a
 * fatal error (errno set). */
static ssize_t out_write(struct cd_peer *p, const uint8_t *buf, size_t len)
{
    ssize_t n;
    if (p->out_is_sock) {
        n = send(p->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        if (p->out_poll) {
            /* A poll-ready pipe or terminal takes PIPE_BUF bytes at once. */
            struct pollfd pfd = { .fd = p->out_fd, .events = POLLOUT };
            if (poll(&pfd, 1, 0) <= 0)
                return 0;
            if (pfd.revents & (POLLERR | POLLNVAL)) {
                errno = EIO;
                return -1;
            }
            len = MIN(len, (size_t)PIPE_BUF);
        }
        n = write(p->out_fd, buf, len);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return n;
}

static void disconnect_client(struct chardev *cd, struct cd_peer *p);

static void out_failed(struct chardev *cd, struct cd_peer *p)
{
    if (cd->kind == CD_UNIX) {
        disconnect_client(cd, p);
        return;
    }
    log_warn("serial: output failed (%s); further output is dropped", strerror(errno));
    p->out_broken = true;
    p->olen = 0;
    update_peer(cd, p);
}

/* Writes out a peer's buffered bytes as far as its fd takes them. */
static void flush_out(struct chardev *cd, struct cd_peer *p)
{
    while (p->olen > 0 && p->out_fd >= 0) {
        size_t chunk = MIN(p->olen, CHARDEV_OUTBUF_SIZE - p->ohead);
        ssize_t n = out_write(p, p->obuf + p->ohead, chunk);
        if (n < 0) {
            out_failed(cd, p);
            return;
        }
        if (n == 0)
            break;
        p->ohead = (p->ohead + (size_t)n) % CHARDEV_OUTBUF_SIZE;
        p->olen -= (size_t)n;
    }
    if (p->olen == 0)
        p->ohead = 0;
}

/* Writes out everything a peer has buffered, waiting for the reader (a
 * pipe, terminal or socket) as long as it makes progress: what the guest
 * wrote before the VM ended must not stay behind in the buffer. */
static void drain_out(struct chardev *cd, struct cd_peer *p)
{
    bool told = false;
    while (p->olen > 0 && p->out_fd >= 0 && !p->out_broken) {
        size_t before = p->olen;
        flush_out(cd, p);
        if (p->olen == 0 || p->olen < before || p->out_fd < 0)
            continue;
        if (!told) {
            log_info("serial: waiting for the reader to take the last %zu bytes of output",
                     p->olen);
            told = true;
        }
        struct pollfd pfd = { .fd = p->out_fd, .events = POLLOUT };
        int n = poll(&pfd, 1, CLOSE_STALL_MS);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
}

/* Queues len bytes for one peer: what it accepted (sent or buffered). */
static size_t peer_write(struct chardev *cd, struct cd_peer *p, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    if (p->olen > 0)
        flush_out(cd, p);
    if (p->out_fd < 0)
        return len;   /* the client went away while flushing */
    if (p->olen == 0) {
        ssize_t n = out_write(p, buf, len);
        if (n < 0) {
            out_failed(cd, p);
            return cd->kind == CD_UNIX ? len : 0;
        }
        done = (size_t)n;
    }
    size_t take = MIN(len - done, CHARDEV_OUTBUF_SIZE - p->olen);
    for (size_t i = 0; i < take; i++)
        p->obuf[(p->ohead + p->olen + i) % CHARDEV_OUTBUF_SIZE] = buf[done + i];
    p->olen += take;
    done += take;
    if (done < len) {
        if (p->dropped == 0)
            log_warn("serial: output reader too slow, dropping output");
        p->dropped += len - done;
    }
    update_peer(cd, p);
    return done;
}

size_t chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
    if (!cd || len == 0)
        return len;
    if (cd->kind == CD_NONE)
        return len;   /* discarded by design */
    if (cd->kind == CD_UNIX) {
        /* Every client gets it all; each slow one drops its own part.
         * What reached the fastest is what counts as accepted. */
        size_t best = 0;
        bool any = false;
        for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++) {
            struct cd_peer *p = &cd->peers[i];
            if (p->out_fd < 0)
                continue;
            any = true;
            size_t n = peer_write(cd, p, buf, len);
            best = MAX(best, n);
        }
        return any ? best : len;   /* nobody connected: discarded */
    }
    struct cd_peer *p = &cd->peers[0];
    if (p->out_broken || p->out_fd < 0)
        return 0;
    return peer_write(cd, p, buf, len);
}

/* ---- input ---- */

static void deliver_tty(struct chardev *cd, const uint8_t *buf, size_t len)
{
    uint8_t out[256];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (!cd->esc) {
            if (c == CTRL_A)
                cd->esc = true;
            else
                out[n++] = c;
            continue;
        }
        cd->esc = false;
        if (c == 'x' || c == 'X') {
            if (n)
                cd->receive(cd->opaque, out, n);
            n = 0;
            if (cd->quit) {
                cd->quit(cd->quit_opaque);
            } else {
                static const char msg[] = "\r\n[Ctrl-A x: nothing set up to quit]\r\n";
                if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                    /* nothing more we can do */
                }
            }
        } else if (c == 'h' || c == 'H' || c == '?') {
            static const char help[] =
                "\r\n[Ctrl-A x: quit   Ctrl-A Ctrl-A: send Ctrl-A   Ctrl-A h: this help]\r\n";
            if (write(STDERR_FILENO, help, sizeof(help) - 1) < 0) {
                /* nothing more we can do */
            }
        } else {
            out[n++] = c;   /* Ctrl-A Ctrl-A sends one; other keys pass */
        }
    }
    if (n)
        cd->receive(cd->opaque, out, n);
}

static void stop_input(struct chardev *cd, struct cd_peer *p)
{
    p->in_fd = -1;
    update_peer(cd, p);
}

static void read_input(struct chardev *cd, struct cd_peer *p)
{
    int fd = p->in_fd;
    size_t room = cd->receive && cd->can_receive ? cd->can_receive(cd->opaque) : 0;
    if (room == 0) {
        cd->in_armed = false;
        update_watches(cd);
        return;
    }
    if (cd->in_is_tty) {
        /* stdin is a blocking descriptor we share with the shell; only read
         * what is there. */
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 0) <= 0)
            return;
    }
    uint8_t buf[256];
    ssize_t n = read(fd, buf, MIN(room, sizeof(buf)));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (cd->kind == CD_UNIX) {
            disconnect_client(cd, p);
        } else {
            log_info("serial: end of input");
            stop_input(cd, p);
        }
        return;
    }
    if (cd->in_is_tty)
        deliver_tty(cd, buf, (size_t)n);
    else
        cd->receive(cd->opaque, buf, (size_t)n);
    /* The callbacks may have changed things; look again. */
    if (cd->in_armed && cd->receive && cd->can_receive(cd->opaque) == 0) {
        cd->in_armed = false;
        update_watches(cd);
    }
}

static bool has_input(const struct chardev *cd)
{
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
        if (cd->peers[i].in_fd >= 0)
            return true;
    return false;
}

void chardev_set_input(struct chardev *cd, chardev_receive_fn receive,
                       chardev_can_receive_fn can_receive, void *opaque)
{
    if (!cd)
        return;
    cd->receive = receive;
    cd->can_receive = can_receive;
    cd->opaque = opaque;
    cd->in_armed = false;
    update_watches(cd);
    chardev_input_ready(cd);
}

void chardev_input_ready(struct chardev *cd)
{
    if (!cd || !has_input(cd) || cd->in_armed || !cd->receive || !cd->can_receive)
        return;
    if (cd->can_receive(cd->opaque) == 0)
        return;
    cd->in_armed = true;
    update_watches(cd);
}

void chardev_set_quit_handler(struct chardev *cd, void (*quit)(void *opaque), void *opaque)
{
    if (!cd)
        return;
    cd->quit = quit;
    cd->quit_opaque = opaque;
}

bool chardev_connected(const struct chardev *cd)
{
    if (!cd || cd->kind == CD_NONE)
        return false;
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
        if (cd->peers[i].out_fd >= 0 && !cd->peers[i].out_broken)
            return true;
    return false;
}

/* ---- unix socket ---- */

static struct cd_peer *free_slot(struct chardev *cd)
{
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
        if (peer_free(&cd->peers[i]))
            return &cd->peers[i];
    return NULL;
}

static void disconnect_client(struct chardev *cd, struct cd_peer *p)
{
    int fd = p->out_fd;
    if (fd < 0)
        return;
    p->in_fd = p->out_fd = -1;
    p->olen = p->ohead = 0;
    update_peer(cd, p);
    close(fd);
    log_info("serial: client disconnected from %s", cd->path);
    /* A slot is free again: take the next client, if one is waiting. */
    watch_set(cd, &cd->w_listen, cd->listen_fd, EVLOOP_IN);
}

static void accept_client(struct chardev *cd)
{
    struct cd_peer *p = free_slot(cd);
    if (!p) {
        /* Every slot taken: later clients wait in the backlog. */
        watch_set(cd, &cd->w_listen, -1, 0);
        return;
    }
    if (!p->obuf && !(p->obuf = malloc(CHARDEV_OUTBUF_SIZE))) {
        log_warn("serial: out of memory for a client of %s", cd->path);
        watch_set(cd, &cd->w_listen, -1, 0);
        return;
    }
    int fd = accept4(cd->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_warn("serial: accept on %s: %s", cd->path, strerror(errno));
        return;
    }
    p->in_fd = p->out_fd = fd;
    p->out_is_sock = true;
    p->out_broken = false;
    p->olen = p->ohead = 0;
    p->dropped = 0;
    if (!free_slot(cd))
        watch_set(cd, &cd->w_listen, -1, 0);
    log_info("serial: client connected to %s", cd->path);
    update_peer(cd, p);
    chardev_input_ready(cd);
}

static struct cd_peer *peer_of(struct chardev *cd, int fd)
{
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++)
        if (cd->peers[i].in_fd == fd || cd->peers[i].out_fd == fd)
            return &cd->peers[i];
    return NULL;
}

static void chardev_fd_event(void *opaque, int fd, unsigned events)
{
    struct chardev *cd = opaque;
    if (fd == cd->listen_fd) {
        accept_client(cd);
        return;
    }
    struct cd_peer *p = peer_of(cd, fd);
    if (!p)
        return;
    /* Hang-ups arrive as EVLOOP_IN; a write attempt notices them too. */
    if (fd == p->out_fd && p->olen > 0 && (events & (EVLOOP_OUT | EVLOOP_IN))) {
        flush_out(cd, p);
        update_peer(cd, p);
    }
    if ((events & EVLOOP_IN) && fd == p->in_fd && cd->in_armed)
        read_input(cd, p);
}

static int open_unix(struct chardev *cd, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path)) {
        snprintf(err, errlen, "unix socket path '%s' is too long (at most %zu bytes)",
                 path, sizeof(addr.sun_path) - 1);
        return -1;
    }
    strcpy(addr.sun_path, path);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "'%s' exists and is not a socket", path);
            return -1;
        }
        if (unlink(path) < 0) {
            snprintf(err, errlen, "cannot remove stale socket '%s': %s", path, strerror(errno));
            return -1;
        }
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* The socket file takes the socket's mode at bind time: no window in
     * which others could connect. */
    fchmod(fd, 0600);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        snprintf(err, errlen, "cannot bind unix socket '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    chmod(path, 0600);
    if (listen(fd, 4) < 0) {
        snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    cd->listen_fd = fd;
    cd->path = strdup(path);
    if (!cd->path) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        unlink(path);
        cd->listen_fd = -1;
        return -1;
    }
    watch_set(cd, &cd->w_listen, fd, EVLOOP_IN);
    if (cd->w_listen.fd < 0) {
        snprintf(err, errlen, "cannot watch unix socket '%s'", path);
        return -1;
    }
    return 0;
}

/* ---- stdio and file ---- */

static int open_stdio(struct chardev *cd, char *err, size_t errlen)
{
    if (stdio_in_use) {
        snprintf(err, errlen, "stdio is already used by another serial port");
        return -1;
    }
    struct cd_peer *p = &cd->peers[0];
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) < 0) {
        snprintf(err, errlen, "stdout is not open: %s", strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        /* Regular files do not block; share the offset with stdout. */
        p->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    } else if (S_ISSOCK(st.st_mode)) {
        p->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        p->out_is_sock = true;
    } else {
        /* A fresh open file description of the same terminal or pipe gets
         * O_NONBLOCK without changing the flags the shell shares. */
        p->out_fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (p->out_fd < 0) {
            p->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
            p->out_poll = true;
        }
    }
    if (p->out_fd < 0) {
        snprintf(err, errlen, "cannot use stdout: %s", strerror(errno));
        return -1;
    }
    if (isatty(STDIN_FILENO)) {
        if (!cd->loop) {
            snprintf(err, errlen, "stdio input needs an event loop");
            return -1;
        }
        if (enter_raw_mode() < 0) {
            snprintf(err, errlen, "cannot put the terminal in raw mode: %s", strerror(errno));
            return -1;
        }
        p->in_fd = STDIN_FILENO;
        cd->in_is_tty = true;
    }
    stdio_in_use = true;
    return 0;
}

static int open_file(struct chardev *cd, const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK matters only for FIFOs; on files it changes nothing. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open '%s' for writing: %s", path,
                 errno == ENXIO ? "FIFO without a reader" : strerror(errno));
        return -1;
    }
    cd->peers[0].out_fd = fd;
    return 0;
}

struct chardev *chardev_open(const char *spec, struct evloop *loop, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!spec) {
        snprintf(err, errlen, "no serial backend given");
        return NULL;
    }

    enum chardev_kind kind;
    const char *arg = NULL;
    if (strcmp(spec, "none") == 0) {
        kind = CD_NONE;
    } else if (strcmp(spec, "stdio") == 0) {
        kind = CD_STDIO;
    } else if (strncmp(spec, "file:", 5) == 0) {
        kind = CD_FILE;
        arg = spec + 5;
    } else if (strncmp(spec, "unix:", 5) == 0) {
        kind = CD_UNIX;
        arg = spec + 5;
    } else {
        snprintf(err, errlen, "unknown serial backend '%s' (expected stdio, file:PATH, "
                 "unix:PATH or none)", spec);
        return NULL;
    }
    if (arg && arg[0] == '\0') {
        snprintf(err, errlen, "serial backend '%s' needs a path", spec);
        return NULL;
    }
    if (kind == CD_UNIX && !loop) {
        snprintf(err, errlen, "unix serial backend needs an event loop");
        return NULL;
    }

    struct chardev *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cd->kind = kind;
    cd->loop = loop;
    cd->listen_fd = cd->w_listen.fd = -1;
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++) {
        struct cd_peer *p = &cd->peers[i];
        p->out_fd = p->in_fd = p->w_in.fd = p->w_out.fd = -1;
    }
    /* stdio and file write through peers[0]; unix clients get buffers of
     * their own as they connect. */
    if (kind == CD_STDIO || kind == CD_FILE) {
        cd->peers[0].obuf = malloc(CHARDEV_OUTBUF_SIZE);
        if (!cd->peers[0].obuf) {
            snprintf(err, errlen, "out of memory");
            free(cd);
            return NULL;
        }
    }

    int rc = 0;
    switch (kind) {
    case CD_NONE: break;
    case CD_STDIO: rc = open_stdio(cd, err, errlen); break;
    case CD_FILE: rc = open_file(cd, arg, err, errlen); break;
    case CD_UNIX: rc = open_unix(cd, arg, err, errlen); break;
    }
    if (rc < 0) {
        chardev_close(cd);
        return NULL;
    }
    return cd;
}

void chardev_close(struct chardev *cd)
{
    if (!cd)
        return;
    bool stdio_open = false;
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++) {
        struct cd_peer *p = &cd->peers[i];
        drain_out(cd, p);
        if (p->olen > 0)
            log_warn("serial: %zu bytes of output not written at close", p->olen);
        p->olen = 0;
        stdio_open |= p->in_fd >= 0 || p->out_fd >= 0;
    }
    cd->in_armed = false;
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++) {
        struct cd_peer *p = &cd->peers[i];
        watch_set(cd, &p->w_in, -1, 0);
        watch_set(cd, &p->w_out, -1, 0);
        if (p->out_fd >= 0)
            close(p->out_fd);   /* stdin (stdio's in_fd) stays open */
        free(p->obuf);
    }
    watch_set(cd, &cd->w_listen, -1, 0);
    if (cd->listen_fd >= 0) {
        close(cd->listen_fd);
        if (cd->path)
            unlink(cd->path);
    }
    if (cd->kind == CD_STDIO && stdio_open) {
        chardev_restore_terminal();
        remove_signal_handlers();
        stdio_in_use = false;
    }
    free(cd->path);
    free(cd);
}
