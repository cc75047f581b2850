/* The control socket server, driven over real UNIX sockets with a test event
 * loop pumped from the test itself (no threads, no KVM). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "devices/evloop.h"
#include "devices/util.h"
#include "vmm/control.h"

#define WAIT_MS 3000

struct fixture {
    char dir[128];
    char path[256];
    struct evloop *loop;
    struct control_server *srv;
    int after_calls;
    int after_fd;            /* client whose reply must be readable in after_fn */
    bool after_saw_reply;
    struct reader *reader;   /* set: quit lets it go and looks there */
    unsigned long later[4];  /* tokens of deferred requests, in order */
    unsigned nlater;
};

/* A client read by its own thread once told to go: lets the server's
 * bounded flushes (which block the loop's thread) make progress. */
struct reader {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    atomic_bool go;
    bool eof;
    char *buf;
    size_t len, cap;
};

struct tclient {
    int fd;
    char buf[256 * 1024];
    size_t len;
};

/* ---- commands registered for the tests ---- */

static json_t *cmd_echo(void *opaque, json_t *args, struct control_error *err)
{
    return json_pack("{s:O}", "args", args);
}

static json_t *cmd_fail(void *opaque, json_t *args, struct control_error *err)
{
    control_error_set(err, CONTROL_ERR_INVALID_ARGUMENT, "value %d out of range", 42);
    return NULL;
}

static json_t *cmd_fail_silent(void *opaque, json_t *args, struct control_error *err)
{
    return NULL;
}

static json_t *cmd_not_object(void *opaque, json_t *args, struct control_error *err)
{
    return json_integer(5);
}

static json_t *cmd_big(void *opaque, json_t *args, struct control_error *err)
{
    static char data[64 * 1024 + 1];
    memset(data, 'x', sizeof(data) - 1);
    return json_pack("{s:s}", "data", data);
}

static json_t *cmd_bcast(void *opaque, json_t *args, struct control_error *err)
{
    struct fixture *f = opaque;
    control_broadcast(f->srv, "PING", json_pack("{s:i}", "n", 7));
    return json_object();
}

/* Replies later: the test answers through control_reply_later(). */
static json_t *cmd_later(void *opaque, json_t *args, struct control_error *err)
{
    struct fixture *f = opaque;
    unsigned long t = control_defer(f->srv);
    assert_true(t != 0);
    assert_int_equal(control_defer(f->srv), t);   /* asked twice: the same request */
    f->later[f->nlater++] = t;
    control_error_set(err, CONTROL_ERR_FAILED, "not sent: the reply comes later");
    return NULL;
}

static void *reader_main(void *opaque)
{
    struct reader *r = opaque;
    while (!atomic_load(&r->go))
        usleep(1000);
    for (;;) {
        struct pollfd p = { .fd = r->fd, .events = POLLIN };
        poll(&p, 1, 100);
        pthread_mutex_lock(&r->lock);
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? r->cap * 2 : 1 << 20;
            r->buf = realloc(r->buf, r->cap);
        }
        ssize_t n = recv(r->fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
        if (n > 0)
            r->len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            r->eof = true;
        bool done = r->eof;
        pthread_mutex_unlock(&r->lock);
        if (done)
            return NULL;
    }
}

static void reader_start(struct reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    pthread_mutex_init(&r->lock, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, reader_main, r), 0);
}

/* Has needle reached the client: read by the thread, or waiting in the
 * socket? */
static bool reader_has(struct reader *r, const char *needle)
{
    pthread_mutex_lock(&r->lock);
    int queued = 0;
    ioctl(r->fd, FIONREAD, &queued);
    size_t total = r->len + (size_t)MAX(queued, 0);
    char *all = malloc(total + 1);
    memcpy(all, r->buf, r->len);
    ssize_t n = queued > 0 ? recv(r->fd, all + r->len, (size_t)queued, MSG_PEEK | MSG_DONTWAIT) : 0;
    total = r->len + (size_t)MAX(n, 0);
    pthread_mutex_unlock(&r->lock);
    bool found = memmem(all, total, needle, strlen(needle)) != NULL;
    free(all);
    return found;
}

/* Waits for the thread to see EOF; the caller frees r->buf. */
static void reader_finish(struct reader *r)
{
    atomic_store(&r->go, true);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
}

/* Makes the server queue output it cannot send yet: big replies not read. */
static void fill_output(struct evloop *loop, int fd)
{
    for (int i = 0; i < 6; i++) {
        const char *req = "{\"command\":\"big\",\"id\":\"fill\"}\n";
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    }
    for (int i = 0; i < 10; i++)
        evloop_run_once(loop, 5);
}

static void after_quit(void *opaque)
{
    struct fixture *f = opaque;
    char c;
    f->after_calls++;
    if (f->reader)
        f->after_saw_reply = reader_has(f->reader, "\"id\":\"q\"");
    else
        f->after_saw_reply = recv(f->after_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static json_t *cmd_quit(void *opaque, json_t *args, struct control_error *err)
{
    struct fixture *f = opaque;
    control_after_reply(f->srv, after_quit, f);
    if (f->reader)
        atomic_store(&f->reader->go, true);
    /* the reply is not written yet: the after-function must not run yet */
    assert_int_equal(f->after_calls, 0);
    return json_object();
}

static void register_test_commands(struct fixture *f)
{
    control_register(f->srv, "echo", cmd_echo, f, "Return the arguments.");
    control_register(f->srv, "fail", cmd_fail, f, "Fail with invalid-argument.");
    control_register(f->srv, "fail-silent", cmd_fail_silent, f, "Fail without saying why.");
    control_register(f->srv, "not-object", cmd_not_object, f, "Return a number.");
    control_register(f->srv, "big", cmd_big, f, "Return 64 KiB.");
    control_register(f->srv, "bcast", cmd_bcast, f, "Broadcast PING, then reply.");
    control_register(f->srv, "quit", cmd_quit, f, "Reply, then act.");
    control_register(f->srv, "later", cmd_later, f, "Reply when the test says.");
}

/* ---- helpers ---- */

static int make_dir(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/burrow-control-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(make_dir(f->dir, sizeof(f->dir)), 0);
    snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
    f->loop = evloop_new(NULL);
    assert_non_null(f->loop);
    char err[256] = "";
    f->srv = control_server_new(f->loop, f->path, err, sizeof(err));
    if (!f->srv)
        fail_msg("control_server_new: %s", err);
    register_test_commands(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    control_server_free(f->srv);
    evloop_free(f->loop);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t now_ms(void)
{
    return evloop_now_ns() / 1000000;
}

static struct sockaddr_un unix_addr(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    assert_true(len < sizeof(a.sun_path));
    memcpy(a.sun_path, path, len + 1);
    return a;
}

static int raw_connect(const char *path)
{
    struct sockaddr_un a = unix_addr(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Next line from the server as JSON (NULL: EOF or nothing within WAIT_MS). */
static json_t *tc_read(struct tclient *tc, struct evloop *loop)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        char *nl = memchr(tc->buf, '\n', tc->len);
        if (nl) {
            size_t n = (size_t)(nl - tc->buf);
            json_error_t jerr;
            json_t *j = json_loadb(tc->buf, n, 0, &jerr);
            if (!j)
                fail_msg("server sent invalid JSON: %s", jerr.text);
            memmove(tc->buf, nl + 1, tc->len - n - 1);
            tc->len -= n + 1;
            return j;
        }
        if (tc->len == sizeof(tc->buf))
            fail_msg("line from server too long for the test buffer");
        ssize_t r = recv(tc->fd, tc->buf + tc->len, sizeof(tc->buf) - tc->len, MSG_DONTWAIT);
        if (r > 0) {
            tc->len += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return NULL;
        if (now_ms() > deadline)
            return NULL;
        evloop_run_once(loop, 5);
    }
}

/* True when the server has closed the connection (after what it had sent). */
static bool tc_sees_eof(struct tclient *tc, struct evloop *loop)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    char buf[65536];
    while (now_ms() <= deadline) {
        ssize_t r = recv(tc->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            evloop_run_once(loop, 5);
    }
    return false;
}

static void tc_send(struct tclient *tc, struct evloop *loop, const void *data, size_t len)
{
    const char *p = data;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (len) {
        ssize_t r = send(tc->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            fail_msg("send: %s", strerror(errno));
        if (now_ms() > deadline)
            fail_msg("send: server does not read");
        evloop_run_once(loop, 5);
    }
    /* let the server see it */
    evloop_run_once(loop, 0);
}

static void tc_sends(struct tclient *tc, struct evloop *loop, const char *s)
{
    tc_send(tc, loop, s, strlen(s));
}

static struct tclient *tc_open(struct fixture *f)
{
    struct tclient *tc = calloc(1, sizeof(*tc));
    assert_non_null(tc);
    tc->fd = raw_connect(f->path);
    assert_true(tc->fd >= 0);
    json_t *g = tc_read(tc, f->loop);
    assert_non_null(g);
    const char *ver = NULL;
    assert_int_equal(json_unpack(g, "{s:{s:s}}", "burrow", "version", &ver), 0);
    assert_string_equal(ver, "0.1.0");
    json_decref(g);
    return tc;
}

static void tc_close(struct tclient *tc)
{
    close(tc->fd);
    free(tc);
}

/* Sends a line, returns the reply. */
static json_t *tc_call(struct tclient *tc, struct evloop *loop, const char *line)
{
    tc_sends(tc, loop, line);
    json_t *r = tc_read(tc, loop);
    if (!r)
        fail_msg("no reply to %.80s", line);
    return r;
}

static void assert_error(json_t *reply, const char *cls)
{
    json_t *e = json_object_get(reply, "error");
    if (!e) {
        char *s = json_dumps(reply, 0);
        fail_msg("expected error %s, got %s", cls, s);
    }
    assert_null(json_object_get(reply, "return"));
    assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
    assert_true(json_is_string(json_object_get(e, "desc")));
    assert_true(strlen(json_string_value(json_object_get(e, "desc"))) > 0);
}

/* ---- tests ---- */

static void test_greeting(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);   /* checks the greeting */
    assert_int_equal(control_client_count(f->srv), 1);
    tc_close(tc);
}

static void test_success_and_id_echo(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);

    json_t *r = tc_call(tc, f->loop,
                        "{\"command\":\"echo\",\"id\":\"abc\",\"arguments\":{\"x\":[1,2],\"s\":\"\xc3\xa9\"}}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
    json_t *want = json_pack("{s:{s:[i,i],s:s}}", "args", "x", 1, 2, "s", "\xc3\xa9");
    assert_true(json_equal(json_object_get(r, "return"), want));
    assert_null(json_object_get(r, "error"));
    json_decref(want);
    json_decref(r);

    /* a structured id comes back as it was */
    r = tc_call(tc, f->loop, "{\"id\":{\"n\":[3,null,true]},\"command\":\"echo\"}\n");
    want = json_pack("{s:[i,n,b]}", "n", 3, 1);
    assert_true(json_equal(json_object_get(r, "id"), want));
    json_decref(want);
    /* no arguments: the handler sees {} */
    want = json_pack("{s:{}}", "args");
    assert_true(json_equal(json_object_get(r, "return"), want));
    json_decref(want);
    json_decref(r);

    /* no id in the request: none in the reply; an explicit null is echoed */
    r = tc_call(tc, f->loop, "{\"command\":\"echo\"}\n");
    assert_null(json_object_get(r, "id"));
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
    r = tc_call(tc, f->loop, "{\"command\":\"echo\",\"id\":null}\n");
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    tc_close(tc);
}

static void test_unknown_command(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    json_t *r = tc_call(tc, f->loop, "{\"command\":\"no-such-thing\",\"id\":5}\n");
    assert_error(r, "unknown-command");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
    json_decref(r);
    tc_close(tc);
}

static void test_handler_errors(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    json_t *r = tc_call(tc, f->loop, "{\"command\":\"fail\",\"id\":1}\n");
    assert_error(r, "invalid-argument");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
                        "value 42 out of range");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);

    r = tc_call(tc, f->loop, "{\"command\":\"fail-silent\",\"id\":2}\n");
    assert_error(r, "failed");
    json_decref(r);

    r = tc_call(tc, f->loop, "{\"command\":\"not-object\",\"id\":3}\n");
    assert_error(r, "failed");
    json_decref(r);
    tc_close(tc);
}

static void test_malformed_json(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    static const char *const bad[] = {
        "{\"command\":\"echo\"\n",
        "{command: echo}\n",
        "\x01\x02\xff garbage\n",
        "{\"command\":\"echo\",\"id\":\"\xff\xfe\"}\n",          /* invalid UTF-8 */
        "{\"command\":\"echo\",\"id\":1,\"id\":2}\n",            /* duplicate key */
        "{\"command\":\"echo\"} trailing\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = tc_call(tc, f->loop, bad[i]);
        assert_error(r, "parse-error");
        assert_null(json_object_get(r, "id"));
        json_decref(r);
    }
    /* the connection still works */
    json_t *r = tc_call(tc, f->loop, "{\"command\":\"echo\",\"id\":9}\n");
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
    tc_close(tc);
}

static void test_invalid_requests(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    static const char *const not_object[] = { "[1,2]\n", "42\n", "\"echo\"\n", "null\n" };
    for (size_t i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++) {
        json_t *r = tc_call(tc, f->loop, not_object[i]);
        assert_error(r, "invalid-request");
        json_decref(r);
    }
    static const char *const bad[] = {
        "{\"id\":11}\n",                                        /* no command */
        "{\"id\":11,\"command\":7}\n",                          /* not a string */
        "{\"id\":11,\"command\":null}\n",
        "{\"id\":11,\"command\":\"echo\",\"arguments\":[1]}\n",  /* not an object */
        "{\"id\":11,\"command\":\"echo\",\"arguments\":\"x\"}\n",
        "{\"id\":11,\"command\":\"echo\",\"argument\":{}}\n",   /* unknown member */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = tc_call(tc, f->loop, bad[i]);
        assert_error(r, "invalid-request");
        assert_int_equal(json_integer_value(json_object_get(r, "id")), 11);
        json_decref(r);
    }
    tc_close(tc);
}

static void test_long_line(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);

    /* 100 KiB without a newline: the error comes before the line ends */
    size_t big = 100 * 1024;
    char *junk = malloc(big);
    assert_non_null(junk);
    memset(junk, '{', big);
    tc_send(tc, f->loop, junk, big);
    json_t *r = tc_read(tc, f->loop);
    assert_non_null(r);
    assert_error(r, "parse-error");
    json_decref(r);
    /* more of the same line, then its end and a good request */
    tc_send(tc, f->loop, junk, big);
    tc_sends(tc, f->loop, "still the long line\n{\"command\":\"echo\",\"id\":\"after\"}\n");
    r = tc_read(tc, f->loop);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "after");
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
    free(junk);

    /* exactly CONTROL_MAX_LINE bytes is accepted, one more is not */
    char *line = malloc(CONTROL_MAX_LINE + 2);
    assert_non_null(line);
    const char *req = "{\"command\":\"echo\",\"id\":\"max\"}";
    memset(line, ' ', CONTROL_MAX_LINE + 1);
    memcpy(line, req, strlen(req));
    line[CONTROL_MAX_LINE] = '\n';
    tc_send(tc, f->loop, line, CONTROL_MAX_LINE + 1);
    r = tc_read(tc, f->loop);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "max");
    json_decref(r);

    line[CONTROL_MAX_LINE] = ' ';
    line[CONTROL_MAX_LINE + 1] = '\n';
    tc_send(tc, f->loop, line, CONTROL_MAX_LINE + 2);
    r = tc_read(tc, f->loop);
    assert_non_null(r);
    assert_error(r, "parse-error");
    json_decref(r);
    free(line);

    r = tc_call(tc, f->loop, "{\"command\":\"echo\",\"id\":\"last\"}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "last");
    json_decref(r);
    tc_close(tc);
}

static void test_several_lines_one_write(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    tc_sends(tc, f->loop,
             "{\"command\":\"echo\",\"id\":1}\n\n   \r\n"
             "{\"command\":\"echo\",\"id\":2}\r\n"
             "{\"command\":\"nope\",\"id\":3}\n"
             "{\"command\":\"echo\",\"id\":4}\n");
    for (int i = 1; i <= 4; i++) {
        json_t *r = tc_read(tc, f->loop);
        assert_non_null(r);
        assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
        if (i == 3)
            assert_error(r, "unknown-command");
        else
            assert_non_null(json_object_get(r, "return"));
        json_decref(r);
    }
    /* empty lines produced nothing more */
    tc_sends(tc, f->loop, "{\"command\":\"echo\",\"id\":5}\n");
    json_t *r = tc_read(tc, f->loop);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
    json_decref(r);
    tc_close(tc);
}

static void test_split_request(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    const char *req = "{\"command\":\"echo\",\"id\":\"split\",\"arguments\":{\"k\":\"v\"}}\n";
    size_t len = strlen(req);
    for (size_t i = 0; i < len; i += 7) {
        tc_send(tc, f->loop, req + i, MIN(7, len - i));
        for (int k = 0; k < 3; k++)
            evloop_run_once(f->loop, 1);
        /* nothing comes back until the line is complete */
        char c;
        if (i + 7 < len)
            assert_true(recv(tc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0);
    }
    json_t *r = tc_read(tc, f->loop);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "split");
    json_decref(r);
    tc_close(tc);
}

static void check_event(json_t *ev, const char *name, int n)
{
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), name);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "n")), n);
    json_t *ts = json_object_get(ev, "timestamp");
    json_int_t s = json_integer_value(json_object_get(ts, "seconds"));
    json_int_t us = json_integer_value(json_object_get(ts, "microseconds"));
    assert_true(json_is_integer(json_object_get(ts, "seconds")));
    assert_true(llabs((long long)s - (long long)time(NULL)) <= 2);
    assert_true(us >= 0 && us < 1000000);
    json_decref(ev);
}

static void test_broadcast(void **state)
{
    struct fixture *f = *state;
    struct tclient *a = tc_open(f);
    struct tclient *b = tc_open(f);

    control_broadcast(f->srv, "STATE", json_pack("{s:i}", "n", 1));
    check_event(tc_read(a, f->loop), "STATE", 1);
    check_event(tc_read(b, f->loop), "STATE", 1);

    /* NULL data is an empty object */
    control_broadcast(f->srv, "EMPTY", NULL);
    json_t *ev = tc_read(a, f->loop);
    assert_true(json_is_object(json_object_get(ev, "data")));
    assert_int_equal(json_object_size(json_object_get(ev, "data")), 0);
    json_decref(ev);
    json_decref(tc_read(b, f->loop));

    /* an event sent from inside a handler: reaches both, before the reply */
    tc_sends(a, f->loop, "{\"command\":\"bcast\",\"id\":1}\n");
    check_event(tc_read(a, f->loop), "PING", 7);
    json_t *r = tc_read(a, f->loop);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    check_event(tc_read(b, f->loop), "PING", 7);
    tc_close(a);
    tc_close(b);
}

static void test_disconnect_mid_line(void **state)
{
    struct fixture *f = *state;
    struct tclient *a = tc_open(f);
    struct tclient *b = tc_open(f);
    tc_sends(b, f->loop, "{\"command\":\"echo\",\"id\":");   /* b is mid-line too */
    tc_sends(a, f->loop, "{\"command\":\"ec");
    tc_close(a);
    for (int i = 0; i < 10 && control_client_count(f->srv) != 1; i++)
        evloop_run_once(f->loop, 10);
    assert_int_equal(control_client_count(f->srv), 1);
    tc_sends(b, f->loop, "\"b\"}\n");
    json_t *r = tc_read(b, f->loop);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "b");
    json_decref(r);

    /* a new client is unaffected, too */
    struct tclient *c = tc_open(f);
    r = tc_call(c, f->loop, "{\"command\":\"echo\",\"id\":\"c\"}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "c");
    json_decref(r);
    tc_close(b);
    tc_close(c);
}

static void test_half_close_gets_reply(void **state)
{
    struct fixture *f = *state;
    struct tclient *a = tc_open(f);
    /* more replies than the socket holds: some are still queued at EOF */
    for (int i = 1; i <= 8; i++) {
        char req[64];
        snprintf(req, sizeof(req), "{\"command\":\"big\",\"id\":%d}\n", i);
        tc_sends(a, f->loop, req);
    }
    tc_sends(a, f->loop, "{\"command\":\"echo\",\"id\":9}\n");
    shutdown(a->fd, SHUT_WR);
    for (int i = 1; i <= 9; i++) {
        json_t *r = tc_read(a, f->loop);
        assert_non_null(r);
        assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
        json_decref(r);
    }
    assert_true(tc_sees_eof(a, f->loop));
    assert_int_equal(control_client_count(f->srv), 0);
    tc_close(a);
}

static void test_slow_reader_dropped(void **state)
{
    struct fixture *f = *state;
    struct tclient *slow = tc_open(f);
    struct tclient *b = tc_open(f);
    /* 40 replies of 64 KiB: far more than socket buffers plus 1 MiB */
    char reqs[40 * 32];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(reqs + len, sizeof(reqs) - len, "{\"command\":\"big\",\"id\":%d}\n", i);
    tc_send(slow, f->loop, reqs, len);
    for (int i = 0; i < 20 && control_client_count(f->srv) != 1; i++)
        evloop_run_once(f->loop, 10);
    assert_int_equal(control_client_count(f->srv), 1);

    json_t *r = tc_call(b, f->loop, "{\"command\":\"echo\",\"id\":\"b\"}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "b");
    json_decref(r);
    assert_true(tc_sees_eof(slow, f->loop));
    tc_close(slow);
    tc_close(b);
}

static void test_many_clients(void **state)
{
    struct fixture *f = *state;
    struct tclient *c[CONTROL_MAX_CLIENTS];
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c[i] = tc_open(f);
    assert_int_equal(control_client_count(f->srv), CONTROL_MAX_CLIENTS);

    /* one over the limit is closed without a greeting */
    struct tclient over = { .fd = raw_connect(f->path) };
    assert_true(over.fd >= 0);
    assert_true(tc_sees_eof(&over, f->loop));
    assert_int_equal(over.len, 0);
    close(over.fd);

    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        char req[64];
        snprintf(req, sizeof(req), "{\"command\":\"echo\",\"id\":%d}\n", i);
        tc_sends(c[i], f->loop, req);
    }
    for (int i = CONTROL_MAX_CLIENTS - 1; i >= 0; i--) {
        json_t *r = tc_read(c[i], f->loop);
        assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
        json_decref(r);
        tc_close(c[i]);
    }
}

static void test_help(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    json_t *r = tc_call(tc, f->loop, "{\"command\":\"help\"}\n");
    json_t *cmds = json_object_get(json_object_get(r, "return"), "commands");
    assert_true(json_is_array(cmds));
    bool saw_help = false, saw_echo = false;
    size_t i;
    json_t *c;
    json_array_foreach(cmds, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *help = json_string_value(json_object_get(c, "help"));
        assert_non_null(name);
        assert_non_null(help);
        if (!strcmp(name, "help"))
            saw_help = true;
        if (!strcmp(name, "echo")) {
            saw_echo = true;
            assert_string_equal(help, "Return the arguments.");
        }
    }
    assert_true(saw_help && saw_echo);
    assert_int_equal(json_array_size(cmds), 9);
    json_decref(r);

    /* re-registering replaces, it does not add */
    control_register(f->srv, "echo", cmd_fail, f, "Now fails.");
    r = tc_call(tc, f->loop, "{\"command\":\"help\"}\n");
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "return"), "commands")), 9);
    json_decref(r);
    r = tc_call(tc, f->loop, "{\"command\":\"echo\"}\n");
    assert_error(r, "invalid-argument");
    json_decref(r);
    tc_close(tc);
}

static void test_after_reply(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    f->after_fd = tc->fd;
    tc_sends(tc, f->loop, "{\"command\":\"quit\",\"id\":\"q\"}\n");
    for (int i = 0; i < 20 && !f->after_calls; i++)
        evloop_run_once(f->loop, 5);
    assert_int_equal(f->after_calls, 1);
    assert_true(f->after_saw_reply);
    json_t *r = tc_read(tc, f->loop);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "q");
    json_decref(r);
    /* once only */
    r = tc_call(tc, f->loop, "{\"command\":\"echo\"}\n");
    json_decref(r);
    assert_int_equal(f->after_calls, 1);
    tc_close(tc);
}

/* The reply goes out before the after-function runs even when it had to wait
 * behind earlier output the client had not read yet. */
static void test_after_reply_behind_queue(void **state)
{
    struct fixture *f = *state;
    struct tclient *tc = tc_open(f);
    struct reader r;
    reader_start(&r, tc->fd);
    fill_output(f->loop, tc->fd);
    f->reader = &r;
    tc_sends(tc, f->loop, "{\"command\":\"quit\",\"id\":\"q\"}\n");
    for (int i = 0; i < 20 && !f->after_calls; i++)
        evloop_run_once(f->loop, 5);
    assert_int_equal(f->after_calls, 1);
    assert_true(f->after_saw_reply);
    f->reader = NULL;
    shutdown(tc->fd, SHUT_RDWR);
    reader_finish(&r);
    free(r.buf);
    tc_close(tc);
}

/* The umask is the whole process's: while the server bound its socket
 * with a umask of its own, every other thread's new files got that one.
 * This definition stands in for the C library's and counts the calls. */
static unsigned umask_calls;
mode_t umask(mode_t mask)
{
    umask_calls++;
    return (mode_t)syscall(SYS_umask, mask);
}

/* Deferred replies go to the client that asked, with its id, in the order
 * the work finishes; other requests are answered meanwhile; a client that
 * left gets nothing, and its token is harmless. */
static void test_reply_later(void **state)
{
    struct fixture *f = *state;
    struct tclient *a = tc_open(f), *b = tc_open(f);
    assert_int_equal(control_defer(f->srv), 0);        /* outside a handler */
    tc_sends(a, f->loop, "{\"command\":\"later\",\"id\":\"a1\"}\n");
    tc_sends(b, f->loop, "{\"command\":\"later\",\"id\":7}\n");
    tc_sends(a, f->loop, "{\"command\":\"later\"}\n");
    for (int i = 0; i < 100 && f->nlater < 3; i++)
        evloop_run_once(f->loop, 5);
    assert_int_equal(f->nlater, 3);
    /* Nothing came yet: the next reply a sees is its echo's. */
    json_t *r = tc_call(a, f->loop, "{\"command\":\"echo\",\"id\":\"e\"}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "e");
    json_decref(r);

    struct control_error err = { CONTROL_ERR_FAILED, "the device went away" };
    control_reply_later(f->srv, f->later[1], NULL, &err);
    r = tc_read(b, f->loop);
    assert_non_null(r);
    assert_error(r, "failed");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "desc")),
                        "the device went away");
    json_decref(r);

    control_reply_later(f->srv, f->later[2], json_pack("{s:i}", "port", 3), NULL);
    control_reply_later(f->srv, f->later[0], json_pack("{s:i}", "port", 4), NULL);
    r = tc_read(a, f->loop);
    assert_non_null(r);
    assert_null(json_object_get(r, "id"));               /* the request had none */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"), "port")), 3);
    json_decref(r);
    r = tc_read(a, f->loop);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "a1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "return"), "port")), 4);
    json_decref(r);
    /* A token used already, or never given, does nothing. */
    control_reply_later(f->srv, f->later[0], json_object(), NULL);
    control_reply_later(f->srv, 999, NULL, &err);

    /* The client leaves before its reply: nothing breaks. */
    tc_sends(b, f->loop, "{\"command\":\"later\",\"id\":8}\n");
    for (int i = 0; i < 100 && f->nlater < 4; i++)
        evloop_run_once(f->loop, 5);
    assert_int_equal(f->nlater, 4);
    tc_close(b);
    for (int i = 0; i < 20; i++)
        evloop_run_once(f->loop, 5);
    control_reply_later(f->srv, f->later[3], json_object(), NULL);
    r = tc_call(a, f->loop, "{\"command\":\"echo\",\"id\":\"still\"}\n");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "still");
    json_decref(r);
    tc_close(a);
}

static void test_socket_mode(void **state)
{
    struct fixture *f = *state;
    /* whatever the caller's umask, the socket is 0600 */
    char path[256];
    snprintf(path, sizeof(path), "%s/open.sock", f->dir);
    mode_t old = umask(0);
    char err[256];
    unsigned calls = umask_calls;
    struct control_server *s = control_server_new(f->loop, path, err, sizeof(err));
    assert_int_equal(umask_calls, calls);   /* other threads' files unaffected */
    umask(old);
    assert_non_null(s);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* and the umask was given back */
    mode_t now = umask(0);
    umask(now);
    assert_int_equal(now, old);
    control_server_free(s);
}

static void test_stale_socket_replaced(void **state)
{
    struct fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
    /* a socket file whose listener has gone */
    struct sockaddr_un a = unix_addr(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    close(fd);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(raw_connect(path), -1);
    assert_int_equal(errno, ECONNREFUSED);

    char err[256] = "";
    struct control_server *s = control_server_new(f->loop, path, err, sizeof(err));
    if (!s)
        fail_msg("stale socket not replaced: %s", err);
    char saved[256];
    snprintf(saved, sizeof(saved), "%s", f->path);
    snprintf(f->path, sizeof(f->path), "%s", path);
    struct tclient *tc = tc_open(f);   /* it answers */
    snprintf(f->path, sizeof(f->path), "%s", saved);
    tc_close(tc);
    control_server_free(s);
}

static void test_live_socket_refused(void **state)
{
    struct fixture *f = *state;
    struct stat before, after;
    assert_int_equal(stat(f->path, &before), 0);
    char err[256] = "";
    struct control_server *s = control_server_new(f->loop, f->path, err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "in use"));
    assert_non_null(strstr(err, f->path));
    /* the running server's socket is untouched and still answers */
    assert_int_equal(stat(f->path, &after), 0);
    assert_true(before.st_ino == after.st_ino);
    struct tclient *tc = tc_open(f);
    json_t *r = tc_call(tc, f->loop, "{\"command\":\"echo\",\"id\":1}\n");
    assert_non_null(json_object_get(r, "return"));
    json_decref(r);
    tc_close(tc);
}

static void test_not_a_socket_refused(void **state)
{
    struct fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/plain", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("keep me\n", fp);
    fclose(fp);
    char err[256] = "";
    assert_null(control_server_new(f->loop, path, err, sizeof(err)));
    assert_non_null(strstr(err, "not a socket"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size == 8);
    unlink(path);

    /* a path too long for sockaddr_un is refused cleanly */
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    assert_null(control_server_new(f->loop, longp, err, sizeof(err)));
}

static void test_unlink_on_free(void **state)
{
    struct fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/gone.sock", f->dir);
    char err[256];
    struct control_server *s = control_server_new(f->loop, path, err, sizeof(err));
    assert_non_null(s);
    struct tclient tc = { .fd = raw_connect(path) };
    assert_true(tc.fd >= 0);
    evloop_run_once(f->loop, 10);
    assert_int_equal(control_client_count(s), 1);
    /* an event queued just before free still gets out */
    control_broadcast(s, "SHUTDOWN", NULL);
    control_server_free(s);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    json_t *g = tc_read(&tc, f->loop);      /* greeting */
    assert_non_null(json_object_get(g, "burrow"));
    json_decref(g);
    json_t *ev = tc_read(&tc, f->loop);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "SHUTDOWN");
    json_decref(ev);
    assert_true(tc_sees_eof(&tc, f->loop));
    close(tc.fd);
}

/* Output queued behind unread replies still leaves on free. */
static void test_free_flushes(void **state)
{
    struct fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/flush.sock", f->dir);
    char err[256];
    struct control_server *s = control_server_new(f->loop, path, err, sizeof(err));
    assert_non_null(s);
    control_register(s, "big", cmd_big, f, "Return 64 KiB.");
    int fd = raw_connect(path);
    assert_true(fd >= 0);
    struct reader r;
    reader_start(&r, fd);
    fill_output(f->loop, fd);
    control_broadcast(s, "SHUTDOWN", NULL);
    atomic_store(&r.go, true);
    control_server_free(s);
    reader_finish(&r);   /* the thread ends at EOF */
    assert_non_null(memmem(r.buf, r.len, "\"SHUTDOWN\"", 10));
    free(r.buf);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_and_id_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_lines_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_gets_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_reply_behind_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_socket_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_on_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_flushes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
