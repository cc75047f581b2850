/* Character backends: spec parsing, the file backend, and the unix socket
 * backend driven through its event loop with a real client socket. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/chardev.h"
#include "devices/evloop.h"
#include "devices/util.h"

static char tmpdir[PATH_MAX];

/* A scratch directory under the build tree (or the system's temp dir when
 * that path would be too long for a socket address). */
static void make_tmpdir(void)
{
    const char *base = getenv("BURROW_BUILD_DIR");
    if (!base || strlen(base) > 60)
        base = P_tmpdir;
    int n = snprintf(tmpdir, sizeof(tmpdir), "%s/chardev-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a scratch directory: %s\n", strerror(errno));
        exit(1);
    }
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static void make_spec(char *buf, size_t len, const char *kind, const char *path)
{
    int n = snprintf(buf, len, "%s:%s", kind, path);
    assert_true(n > 0 && (size_t)n < len);
}

static void fill_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof(addr->sun_path));
    memcpy(addr->sun_path, path, strlen(path) + 1);
}

/* ---- spec parsing ---- */

static void expect_error(const char *spec, const char *needle)
{
    char err[256] = "";
    struct chardev *cd = chardev_open(spec, NULL, err, sizeof(err));
    assert_null(cd);
    assert_true(err[0] != '\0');
    if (needle && !strstr(err, needle)) {
        fprintf(stderr, "spec '%s': error '%s' lacks '%s'\n", spec ? spec : "(null)", err, needle);
        fail();
    }
}

static void test_spec_errors(void **state)
{
    (void)state;
    char path[PATH_MAX];
    expect_error(NULL, NULL);
    expect_error("", "unknown serial backend");
    expect_error("bogus", "unknown serial backend 'bogus'");
    expect_error("tcp:localhost:4444", "unknown serial backend");
    expect_error("file:", "needs a path");
    expect_error("unix:", "needs a path");
    expect_error("STDIO", "unknown serial backend");
    /* A file in a directory that does not exist cannot be created. */
    tmp_path(path, sizeof(path), "missing-dir/out.log");
    char spec[PATH_MAX + 8];
    make_spec(spec, sizeof(spec), "file", path);
    expect_error(spec, "cannot open");
    /* A directory is not a writable file. */
    make_spec(spec, sizeof(spec), "file", tmpdir);
    expect_error(spec, "cannot open");
    /* unix needs an event loop, and a path that fits a socket address. */
    tmp_path(path, sizeof(path), "s.sock");
    make_spec(spec, sizeof(spec), "unix", path);
    expect_error(spec, "event loop");
    struct evloop *loop = evloop_new(NULL);
    char longspec[300] = "unix:";
    memset(longspec + 5, 'a', 200);
    longspec[205] = '\0';
    char err[256] = "";
    assert_null(chardev_open(longspec, loop, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
    evloop_free(loop);
}

static void test_none(void **state)
{
    (void)state;
    char err[128];
    struct chardev *cd = chardev_open("none", NULL, err, sizeof(err));
    assert_non_null(cd);
    assert_int_equal(chardev_write(cd, (const uint8_t *)"abc", 3), 3);
    assert_false(chardev_connected(cd));
    chardev_close(cd);
}

/* ---- file ---- */

static void test_file_backend(void **state)
{
    (void)state;
    char path[PATH_MAX], spec[PATH_MAX + 8], err[256];
    tmp_path(path, sizeof(path), "serial.log");
    /* Existing content is truncated. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("old content that must go away", f);
    fclose(f);

    mode_t old_mask = umask(022);
    make_spec(spec, sizeof(spec), "file", path);
    struct chardev *cd = chardev_open(spec, NULL, err, sizeof(err));
    umask(old_mask);
    assert_non_null(cd);
    assert_true(chardev_connected(cd));

    uint8_t data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof(data); i += 100)
        assert_int_equal(chardev_write(cd, data + i, 100), 100);
    chardev_close(cd);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, sizeof(data));
    uint8_t back[sizeof(data)];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), sizeof(back));
    close(fd);
    assert_memory_equal(back, data, sizeof(data));

    /* A new file gets mode 0644. */
    unlink(path);
    old_mask = umask(022);
    cd = chardev_open(spec, NULL, err, sizeof(err));
    umask(old_mask);
    assert_non_null(cd);
    chardev_close(cd);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    unlink(path);
}

/* ---- unix ---- */

struct sink {
    uint8_t buf[4096];
    size_t len;
    size_t room;          /* what can_receive reports */
    size_t max_chunk;     /* largest single delivery seen */
    unsigned calls;
};

static void sink_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    assert_true(len <= s->room);
    assert_true(s->len + len <= sizeof(s->buf));
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    s->room -= len;
    s->calls++;
    if (len > s->max_chunk)
        s->max_chunk = len;
}

static size_t sink_can_receive(void *opaque)
{
    struct sink *s = opaque;
    return s->room;
}

static int connect_client(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr;
    fill_addr(&addr, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* Drives the loop until cond holds, at most ~2 s. */
#define RUN_UNTIL(loop, cond)                                      \
    do {                                                           \
        for (int i_ = 0; i_ < 200 && !(cond); i_++)                \
            evloop_run_once((loop), 10);                           \
        assert_true(cond);                                         \
    } while (0)

static size_t recv_some(int fd, uint8_t *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
    return n > 0 ? (size_t)n : 0;
}

static void test_unix_backend(void **state)
{
    (void)state;
    char path[PATH_MAX], spec[PATH_MAX + 8], err[256];
    tmp_path(path, sizeof(path), "serial.sock");

    /* A stale socket file from an earlier run is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    fill_addr(&addr, path);
    assert_int_equal(bind(stale, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(stale);

    struct evloop *loop = evloop_new(NULL);
    make_spec(spec, sizeof(spec), "unix", path);
    struct chardev *cd = chardev_open(spec, loop, err, sizeof(err));
    if (!cd)
        fprintf(stderr, "%s\n", err);
    assert_non_null(cd);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    struct sink sink = { .room = 0 };
    chardev_set_input(cd, sink_receive, sink_can_receive, &sink);

    /* No client yet: output is accepted and dropped. */
    assert_false(chardev_connected(cd));
    assert_int_equal(chardev_write(cd, (const uint8_t *)"lost", 4), 4);

    int c = connect_client(path);
    RUN_UNTIL(loop, chardev_connected(cd));

    /* Output reaches the client. */
    assert_int_equal(chardev_write(cd, (const uint8_t *)"hello guest", 11), 11);
    uint8_t buf[256];
    size_t got = 0;
    for (int i = 0; i < 200 && got < 11; i++) {
        got += recv_some(c, buf + got, sizeof(buf) - got);
        evloop_run_once(loop, 10);
    }
    assert_int_equal(got, 11);
    assert_memory_equal(buf, "hello guest", 11);

    /* Input waits while the consumer has no room ... */
    assert_int_equal(send(c, "0123456789", 10, 0), 10);
    for (int i = 0; i < 5; i++)
        evloop_run_once(loop, 10);
    assert_int_equal(sink.len, 0);
    /* ... and flows, never more than the room, once it has. */
    sink.room = 4;
    chardev_input_ready(cd);
    RUN_UNTIL(loop, sink.len == 4);
    for (int i = 0; i < 5; i++)
        evloop_run_once(loop, 10);
    assert_int_equal(sink.len, 4);
    sink.room = 100;
    chardev_input_ready(cd);
    RUN_UNTIL(loop, sink.len == 10);
    assert_memory_equal(sink.buf, "0123456789", 10);
    assert_true(sink.max_chunk <= 6);

    /* A second client is served at once, beside the first: input from
     * either, output to both. */
    int c2 = connect_client(path);
    assert_int_equal(send(c2, "second", 6, 0), 6);
    RUN_UNTIL(loop, sink.len == 16);
    assert_memory_equal(sink.buf + 10, "second", 6);
    assert_int_equal(send(c, "first", 5, 0), 5);
    RUN_UNTIL(loop, sink.len == 21);
    assert_memory_equal(sink.buf + 16, "first", 5);
    assert_int_equal(chardev_write(cd, (const uint8_t *)"to two", 6), 6);
    uint8_t buf2[256];
    size_t got2 = 0;
    got = 0;
    for (int i = 0; i < 200 && (got < 6 || got2 < 6); i++) {
        got += recv_some(c, buf + got, sizeof(buf) - got);
        got2 += recv_some(c2, buf2 + got2, sizeof(buf2) - got2);
        evloop_run_once(loop, 10);
    }
    assert_int_equal(got, 6);
    assert_int_equal(got2, 6);
    assert_memory_equal(buf, "to two", 6);
    assert_memory_equal(buf2, "to two", 6);

    /* The first leaves: the second keeps both directions. */
    close(c);
    assert_int_equal(send(c2, "alone", 5, 0), 5);
    RUN_UNTIL(loop, sink.len == 26);
    assert_memory_equal(sink.buf + 21, "alone", 5);
    assert_true(chardev_connected(cd));
    assert_int_equal(chardev_write(cd, (const uint8_t *)"still", 5), 5);
    got = 0;
    for (int i = 0; i < 200 && got < 5; i++) {
        got += recv_some(c2, buf + got, sizeof(buf) - got);
        evloop_run_once(loop, 10);
    }
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "still", 5);

    close(c2);
    RUN_UNTIL(loop, !chardev_connected(cd));
    assert_int_equal(chardev_write(cd, (const uint8_t *)"dropped", 7), 7);

    chardev_close(cd);
    /* The socket file goes with the backend. */
    assert_int_equal(lstat(path, &st), -1);
    evloop_free(loop);
}

/* A unix backend at NAME in the scratch directory, with a client
 * connected; returns the client's socket. */
static int open_with_client(const char *name, struct evloop **loop, struct chardev **cd)
{
    char path[PATH_MAX], spec[PATH_MAX + 8], err[256];
    tmp_path(path, sizeof(path), name);
    *loop = evloop_new(NULL);
    make_spec(spec, sizeof(spec), "unix", path);
    *cd = chardev_open(spec, *loop, err, sizeof(err));
    assert_non_null(*cd);
    int c = connect_client(path);
    RUN_UNTIL(*loop, chardev_connected(*cd));
    return c;
}

/* Byte i of the test stream. */
static uint8_t stream_byte(size_t i)
{
    return (uint8_t)(i % 251);
}

static void check_stream(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != stream_byte(i)) {
            fprintf(stderr, "byte %zu differs\n", i);
            fail();
        }
    }
}

/* A client that does not read: writes never block, the overflow is
 * dropped, and what was accepted arrives complete and in order. */
static void test_unix_slow_reader(void **state)
{
    (void)state;
    struct evloop *loop;
    struct chardev *cd;
    int c = open_with_client("slow.sock", &loop, &cd);

    const size_t total = 4 * 1024 * 1024;
    size_t accepted = 0;
    uint8_t chunk[4096];
    for (size_t off = 0; off < total; off += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = stream_byte(off + i);
        size_t n = chardev_write(cd, chunk, sizeof(chunk));
        assert_true(n <= sizeof(chunk));
        if (n < sizeof(chunk)) {
            accepted += n;
            break;   /* from here on everything is dropped */
        }
        accepted += n;
    }
    /* Bounded: what the kernel socket takes plus our buffer, far below the
     * total.  (A write that blocked would hang here.) */
    assert_true(accepted < total);
    assert_true(accepted >= CHARDEV_OUTBUF_SIZE);
    assert_int_equal(chardev_write(cd, chunk, sizeof(chunk)), 0);

    uint8_t *back = malloc(accepted + 1);
    assert_non_null(back);
    size_t got = 0;
    for (int i = 0; i < 2000 && got < accepted; i++) {
        got += recv_some(c, back + got, accepted + 1 - got);
        evloop_run_once(loop, 1);
    }
    assert_int_equal(got, accepted);
    check_stream(back, accepted);
    free(back);
    close(c);
    chardev_close(cd);
    evloop_free(loop);
}

/* Every client gets the whole output even when another reads nothing:
 * the silent one drops its own share only.  Beyond CHARDEV_MAX_CLIENTS a
 * client waits in the backlog until a slot frees. */
static void test_unix_many_clients(void **state)
{
    (void)state;
    char path[PATH_MAX], spec[PATH_MAX + 8], err[256];
    tmp_path(path, sizeof(path), "many.sock");
    struct evloop *loop = evloop_new(NULL);
    make_spec(spec, sizeof(spec), "unix", path);
    struct chardev *cd = chardev_open(spec, loop, err, sizeof(err));
    assert_non_null(cd);
    struct sink sink = { .room = sizeof(sink.buf) };
    chardev_set_input(cd, sink_receive, sink_can_receive, &sink);

    int c[CHARDEV_MAX_CLIENTS];
    for (int i = 0; i < CHARDEV_MAX_CLIENTS; i++) {
        c[i] = connect_client(path);
        char id = (char)('a' + i);
        assert_int_equal(send(c[i], &id, 1, 0), 1);
        RUN_UNTIL(loop, sink.len == (size_t)i + 1);
        assert_int_equal(sink.buf[i], id);
    }
    /* One more: connected (the backlog) but not served. */
    int extra = connect_client(path);
    assert_int_equal(send(extra, "z", 1, 0), 1);
    for (int i = 0; i < 10; i++)
        evloop_run_once(loop, 10);
    assert_int_equal(sink.len, CHARDEV_MAX_CLIENTS);

    /* c[0] never reads; c[1] reads everything, far more than c[0]'s
     * socket and buffer hold. */
    const size_t total = 2 * 1024 * 1024;
    uint8_t *back = malloc(total);
    assert_non_null(back);
    size_t got = 0;
    uint8_t chunk[4096];
    for (size_t off = 0; off < total; off += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = stream_byte(off + i);
        assert_int_equal(chardev_write(cd, chunk, sizeof(chunk)), sizeof(chunk));
        for (int k = 0; k < 200 && got < off + sizeof(chunk); k++) {
            got += recv_some(c[1], back + got, total - got);
            if (got < off + sizeof(chunk))
                evloop_run_once(loop, 1);
        }
        for (int i = 2; i < CHARDEV_MAX_CLIENTS; i++) {
            uint8_t drop[8192];
            while (recv_some(c[i], drop, sizeof(drop)) > 0) {
            }
        }
    }
    assert_int_equal(got, total);
    check_stream(back, total);
    free(back);

    /* A slot frees: the waiting client is served. */
    close(c[0]);
    RUN_UNTIL(loop, sink.len == CHARDEV_MAX_CLIENTS + 1);
    assert_int_equal(sink.buf[CHARDEV_MAX_CLIENTS], 'z');
    for (int i = 1; i < CHARDEV_MAX_CLIENTS; i++)
        close(c[i]);
    close(extra);
    RUN_UNTIL(loop, !chardev_connected(cd));
    chardev_close(cd);
    evloop_free(loop);
}

/* A client that starts reading only once the closing thread sleeps (in
 * the backend's wait for it, or, had the backend not waited, in the join). */
struct late_reader {
    int fd;
    pid_t closer;
    uint8_t *buf;
    size_t size, got;
};

static char thread_state(pid_t tid)
{
    char path[64], stat[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, stat, sizeof(stat) - 1);
    close(fd);
    assert_true(n > 0);
    stat[n] = '\0';
    const char *p = strrchr(stat, ')');   /* the name may hold anything */
    assert_non_null(p);
    return p[2];
}

static void *late_reader_run(void *opaque)
{
    struct late_reader *r = opaque;
    while (thread_state(r->closer) != 'S')
        sched_yield();
    for (;;) {   /* to the end of the stream: closing the backend ends it */
        ssize_t n = recv(r->fd, r->buf + r->got, r->size - r->got, 0);
        if (n <= 0)
            return NULL;
        r->got += (size_t)n;
    }
}

/* Closing writes out what the client has not taken yet, waiting for it
 * while it reads: what the guest wrote before the VM ended is not lost. */
static void test_unix_close_drains(void **state)
{
    (void)state;
    struct evloop *loop;
    struct chardev *cd;
    int c = open_with_client("drain.sock", &loop, &cd);

    /* Until the socket is full and half the backend's buffer is used:
     * what the client could read so far is less than what was written. */
    const size_t pending = CHARDEV_OUTBUF_SIZE / 2;
    size_t written = 0;
    int queued = 0;
    uint8_t chunk[4096];
    while (written < (size_t)queued + pending) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = stream_byte(written + i);
        assert_int_equal(chardev_write(cd, chunk, sizeof(chunk)), sizeof(chunk));
        written += sizeof(chunk);
        assert_int_equal(ioctl(c, FIONREAD, &queued), 0);
        assert_true(written < 64 * 1024 * 1024);
    }

    struct late_reader r = { .fd = c, .closer = gettid(), .size = written + 1 };
    r.buf = malloc(r.size);
    assert_non_null(r.buf);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_reader_run, &r), 0);
    chardev_close(cd);
    pthread_join(t, NULL);
    assert_int_equal(r.got, written);
    check_stream(r.buf, written);
    free(r.buf);
    close(c);
    evloop_free(loop);
}

static void test_unix_refuses_non_socket(void **state)
{
    (void)state;
    char path[PATH_MAX], spec[PATH_MAX + 8], err[256] = "";
    tmp_path(path, sizeof(path), "regular-file");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    struct evloop *loop = evloop_new(NULL);
    make_spec(spec, sizeof(spec), "unix", path);
    assert_null(chardev_open(spec, loop, err, sizeof(err)));
    assert_non_null(strstr(err, "not a socket"));
    /* The file was left alone. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);
    evloop_free(loop);
}

/* ---- stdio on a pseudo-terminal ---- */

enum stdio_end { END_CLOSE, END_EXIT, END_SIGNAL };

struct stdio_report {
    int raw_ok;          /* terminal was raw while the backend was open */
    int quit;            /* Ctrl-A x reached the quit handler */
    int restored_ok;     /* END_CLOSE: canonical mode back after close */
    size_t len;
    uint8_t bytes[64];
};

static int quit_flag;
static void on_quit(void *opaque)
{
    (void)opaque;
    quit_flag = 1;
}

/* The child: stdin/stdout on the pty slave, a stdio backend on them. */
static void stdio_child(const char *slave, int report_fd, enum stdio_end end)
{
    setsid();
    int fd = open(slave, O_RDWR);
    if (fd < 0)
        _exit(10);
    dup2(fd, 0);
    dup2(fd, 1);
    if (fd > 1)
        close(fd);
    struct evloop *loop = evloop_new(NULL);
    char err[256];
    struct chardev *cd = chardev_open("stdio", loop, err, sizeof(err));
    if (!cd) {
        fprintf(stderr, "child: %s\n", err);
        _exit(11);
    }
    struct stdio_report rep = { 0 };
    struct termios tio;
    tcgetattr(0, &tio);
    rep.raw_ok = !(tio.c_lflag & (ICANON | ECHO | ISIG));
    struct sink sink = { .room = sizeof(rep.bytes) };
    chardev_set_input(cd, sink_receive, sink_can_receive, &sink);
    chardev_set_quit_handler(cd, on_quit, NULL);
    chardev_write(cd, (const uint8_t *)"ready\n", 6);
    for (int i = 0; i < 500 && (end == END_SIGNAL || !quit_flag); i++)
        evloop_run_once(loop, 10);
    rep.quit = quit_flag;
    rep.len = MIN(sink.len, sizeof(rep.bytes));
    memcpy(rep.bytes, sink.buf, rep.len);
    if (end == END_CLOSE) {
        chardev_close(cd);
        tcgetattr(0, &tio);
        rep.restored_ok = (tio.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG);
    }
    if (write(report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(12);
    if (end == END_EXIT)
        exit(0);   /* the atexit handler restores the terminal */
    _exit(0);
}

static bool wait_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

static void run_stdio_case(enum stdio_end end)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) {
        fail_msg("no pseudo-terminals here: %s", strerror(errno));
    }
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    char slave[128];
    assert_int_equal(ptsname_r(master, slave, sizeof(slave)), 0);
    int rp[2];
    assert_int_equal(pipe(rp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(master);
        close(rp[0]);
        stdio_child(slave, rp[1], end);
    }
    close(rp[1]);

    /* Wait for the child's output: the terminal is raw by then. */
    char out[256];
    size_t got = 0;
    while (got < sizeof(out) - 1 && wait_readable(master, 3000)) {
        ssize_t n = read(master, out + got, sizeof(out) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        out[got] = '\0';
        if (strstr(out, "ready"))
            break;
    }
    out[got] = '\0';
    assert_non_null(strstr(out, "ready"));
    struct termios tio;
    assert_int_equal(tcgetattr(master, &tio), 0);
    assert_int_equal(tio.c_lflag & (ICANON | ECHO | ISIG), 0);

    struct stdio_report rep = { 0 };
    int status = 0;
    if (end == END_SIGNAL) {
        /* Typed input still flows; then the process is killed. */
        assert_int_equal(write(master, "hi", 2), 2);
        usleep(100000);
        kill(pid, SIGTERM);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
    } else {
        /* Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A x quits. */
        static const char keys[] = "ab\x01\x01" "c\r\x01x";
        assert_int_equal(write(master, keys, sizeof(keys) - 1), (ssize_t)sizeof(keys) - 1);
        assert_true(wait_readable(rp[0], 5000));
        assert_int_equal(read(rp[0], &rep, sizeof(rep)), sizeof(rep));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_true(rep.raw_ok);
        assert_true(rep.quit);
        /* Raw mode: CR is not turned into NL, nothing is swallowed. */
        assert_int_equal(rep.len, 5);
        assert_memory_equal(rep.bytes, "ab\x01" "c\r", 5);
        if (end == END_CLOSE)
            assert_true(rep.restored_ok);
    }
    /* However it ended, the terminal is back in canonical mode. */
    assert_int_equal(tcgetattr(master, &tio), 0);
    assert_int_equal(tio.c_lflag & (ICANON | ECHO | ISIG), ICANON | ECHO | ISIG);
    close(rp[0]);
    close(master);
}

static void test_stdio_close(void **state)
{
    (void)state;
    run_stdio_case(END_CLOSE);
}

static void test_stdio_exit(void **state)
{
    (void)state;
    run_stdio_case(END_EXIT);
}

static void test_stdio_signal(void **state)
{
    (void)state;
    run_stdio_case(END_SIGNAL);
}

int main(void)
{
    make_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_file_backend),
        cmocka_unit_test(test_unix_backend),
        cmocka_unit_test(test_unix_slow_reader),
        cmocka_unit_test(test_unix_many_clients),
        cmocka_unit_test(test_unix_close_drains),
        cmocka_unit_test(test_unix_refuses_non_socket),
        cmocka_unit_test(test_stdio_close),
        cmocka_unit_test(test_stdio_exit),
        cmocka_unit_test(test_stdio_signal),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
