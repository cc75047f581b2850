/* The control socket server (vmm/control.c) fed bytes as clients send
 * them: line splitting across reads, overlong lines, JSON requests of any
 * shape, ids echoed, errors, events to every client, commands that act
 * after their reply, clients that hang up.  The server runs on its event
 * loop for the whole process, as in burrow-vm; its commands here are test
 * commands (echo, failures, a broadcast, a deferred action), since the
 * VM's own need a machine.  Every line a client receives must be a JSON
 * object with one of "burrow", "return", "error" or "event".
 *
 * Input: a flags byte, then the bytes the client sends.
 *   bit 0     two clients, the chunks alternating between them
 *   bit 1     the client half-closes after sending, before reading the rest
 *   bit 2     replies are read only at the end (the output queue fills)
 *   bit 3     the bytes are sent 32 times over (lines past the 64 KiB limit)
 *   bits 4-7  chunk size: 2^n bytes per send, the event loop running once
 *             between sends */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "devices/evloop.h"
#include "vmm/control.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], path[300];
static struct evloop *loop;
static struct control_server *srv;
static unsigned after_calls;

struct client {
    int fd;
    bool eof;
    char line[1 << 17];      /* the line being received */
    size_t len;
    bool overlong;
};

static struct client clients[2];

static json_t *cmd_echo(void *opaque, json_t *args, struct control_error *err)
{
    return json_pack("{s:O}", "args", args);
}

static json_t *cmd_fail(void *opaque, json_t *args, struct control_error *err)
{
    json_t *cls = json_object_get(args, "class");
    control_error_set(err, json_is_string(cls) ? json_string_value(cls) : NULL, "failed on purpose: %s",
                      json_is_string(cls) ? json_string_value(cls) : "(no class)");
    return NULL;
}

static json_t *cmd_fail_silent(void *opaque, json_t *args, struct control_error *err)
{
    return NULL;
}

static json_t *cmd_not_object(void *opaque, json_t *args, struct control_error *err)
{
    return json_array();
}

static json_t *cmd_broadcast(void *opaque, json_t *args, struct control_error *err)
{
    json_t *name = json_object_get(args, "event");
    control_broadcast(srv, json_is_string(name) ? json_string_value(name) : "fuzz",
                      json_deep_copy(args));
    return json_object();
}

static void after_fn(void *opaque)
{
    after_calls++;
}

static json_t *cmd_after(void *opaque, json_t *args, struct control_error *err)
{
    control_after_reply(srv, after_fn, NULL);
    return json_object();
}

static json_t *cmd_big(void *opaque, json_t *args, struct control_error *err)
{
    json_int_t n = json_integer_value(json_object_get(args, "n"));
    static char text[16385];
    if (n < 0 || n > 16384)
        n = 16384;
    memset(text, 'x', (size_t)n);
    text[n] = '\0';
    return json_pack("{s:s}", "data", text);
}

static void remove_dir(void)
{
    control_server_free(srv);
    evloop_free(loop);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-fuzz-control-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/control.sock", dir);
    char err[256];
    loop = evloop_new(NULL);
    srv = loop ? control_server_new(loop, path, err, sizeof(err)) : NULL;
    if (!srv)
        abort();
    /* Clients that read only at the end would cost a second per "after". */
    control_set_after_wait(srv, 2);
    control_register(srv, "echo", cmd_echo, NULL, "returns its arguments");
    control_register(srv, "fail", cmd_fail, NULL, "fails with the class it is given");
    control_register(srv, "fail-silent", cmd_fail_silent, NULL, "fails without saying why");
    control_register(srv, "not-object", cmd_not_object, NULL, "returns an array");
    control_register(srv, "broadcast", cmd_broadcast, NULL, "sends its arguments as an event");
    control_register(srv, "after", cmd_after, NULL, "acts once its reply is out");
    control_register(srv, "big", cmd_big, NULL, "returns n bytes");
    atexit(remove_dir);
    return 0;
}

/* Checks one line from the server. */
static void check_line(const char *line, size_t len)
{
    json_error_t e;
    json_t *msg = json_loadb(line, len, 0, &e);
    if (!msg || !json_is_object(msg) ||
        !(json_object_get(msg, "burrow") || json_object_get(msg, "return") ||
          json_object_get(msg, "error") || json_object_get(msg, "event"))) {
        fprintf(stderr, "fuzz: the server sent a line that is no reply: %.*s\n", (int)len, line);
        abort();
    }
    json_decref(msg);
}

static void client_read(struct client *c)
{
    char buf[16384];
    while (!c->eof) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            c->eof = true;
            break;
        }
        if (n < 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!c->overlong)
                    check_line(c->line, c->len);
                c->len = 0;
                c->overlong = false;
            } else if (c->len < sizeof(c->line)) {
                c->line[c->len++] = buf[i];
            } else {
                c->overlong = true;   /* replies are bounded, events too: keep going */
            }
        }
    }
}

static void client_connect(struct client *c)
{
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->eof = false;
    c->len = 0;
    c->overlong = false;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        abort();
    evloop_run_once(loop, 0);    /* accepted, greeted */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    unsigned nclients = flags & 1 ? 2 : 1;
    bool half_close = flags & 2, read_late = flags & 4;
    unsigned repeat = flags & 8 ? 32 : 1;
    size_t chunk = (size_t)1 << (flags >> 4);
    for (unsigned i = 0; i < nclients; i++)
        client_connect(&clients[i]);

    unsigned turn = 0;
    for (unsigned r = 0; r < repeat; r++) {
        for (size_t off = 0; off < size; off += chunk) {
            struct client *c = &clients[turn++ % nclients];
            size_t n = size - off < chunk ? size - off : chunk;
            /* The server has stopped reading (output over its limit, or the
             * connection dropped): what is left goes nowhere. */
            if (!c->eof && send(c->fd, data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
                c->eof = true;
            evloop_run_once(loop, 0);
            if (!read_late)
                for (unsigned i = 0; i < nclients; i++)
                    client_read(&clients[i]);
        }
    }
    for (unsigned i = 0; i < nclients; i++)
        if (half_close)
            shutdown(clients[i].fd, SHUT_WR);
    /* Let the server answer everything, then hang up. */
    for (int round = 0; round < 64; round++) {
        evloop_run_once(loop, 0);
        for (unsigned i = 0; i < nclients; i++)
            client_read(&clients[i]);
    }
    for (unsigned i = 0; i < nclients; i++)
        close(clients[i].fd);
    for (int round = 0; round < 16 && control_client_count(srv); round++)
        evloop_run_once(loop, 0);
    if (control_client_count(srv)) {
        fprintf(stderr, "fuzz: %u clients still connected after they hung up\n", control_client_count(srv));
        abort();
    }
    return 0;
}
