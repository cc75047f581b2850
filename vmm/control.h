/* The control socket of burrow-vm: JSON lines over a UNIX-domain stream
 * socket, served on the I/O thread's event loop.
 *
 * Protocol (one JSON object per line, UTF-8, both directions):
 *   server, on connect: {"burrow":{"version":"0.1.0"}}
 *   request:            {"command":"NAME","id":ANY,"arguments":{...}}
 *                       (id and arguments optional; id echoed verbatim)
 *   success:            {"id":...,"return":{...}}
 *   error:              {"id":...,"error":{"class":"...","desc":"..."}}
 *   event:              {"event":"NAME","data":{...},
 *                        "timestamp":{"seconds":S,"microseconds":U}}
 * A request may come with file descriptors (SCM_RIGHTS on the bytes of its
 * line); each goes to the next command of that client that takes one.
 * Replies carry "id" only when the request had one.  Empty lines are
 * ignored; lines over CONTROL_MAX_LINE bytes get a parse-error and are
 * discarded up to the next newline.
 *
 * Locking: every function here must be called with the event loop's lock
 * (the machine's device lock) held, or from the loop's own thread when the
 * loop has no lock.  Handlers run on the loop's thread with the lock held. */
#ifndef BURROW_CONTROL_H
#define BURROW_CONTROL_H

#include <stddef.h>
#include <jansson.h>

struct evloop;
struct control_server;

#define CONTROL_MAX_LINE    (64 * 1024)     /* bytes per request line */
#define CONTROL_MAX_OUTPUT  (1024 * 1024)   /* queued bytes before a client is dropped */
#define CONTROL_MAX_CLIENTS 64
#define CONTROL_MAX_FDS     4               /* descriptors held per client */

/* Error classes. */
#define CONTROL_ERR_PARSE            "parse-error"
#define CONTROL_ERR_INVALID_REQUEST  "invalid-request"
#define CONTROL_ERR_UNKNOWN_COMMAND  "unknown-command"
#define CONTROL_ERR_INVALID_ARGUMENT "invalid-argument"
#define CONTROL_ERR_FAILED           "failed"

struct control_error {
    char cls[32];    /* one of CONTROL_ERR_*; "failed" if left empty */
    char desc[512];
};

void control_error_set(struct control_error *err, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* args: the request's "arguments", borrowed; always an object ({} when the
 * request had none).  Returns the result, ownership passed to the server (an
 * object; NULL: failure, described in err). */
typedef json_t *(*control_handler_fn)(void *opaque, json_t *args, struct control_error *err);

/* Creates the socket at path (mode 0600), replacing a stale socket file that
 * nobody listens on, refusing a live one.  NULL on failure with the reason in
 * err. */
struct control_server *control_server_new(struct evloop *loop, const char *path,
                                          char *err, size_t errlen);
/* Sends what is still queued (briefly bounded), closes all clients, unlinks
 * the socket file.  Not from inside a handler. */
void control_server_free(struct control_server *srv);

/* Registers (or replaces) a command.  help: one line for the built-in
 * "help" command.  name and help are copied. */
void control_register(struct control_server *srv, const char *name,
                      control_handler_fn fn, void *opaque, const char *help);

/* Sends an event to every connected client; steals data (NULL: {}). */
void control_broadcast(struct control_server *srv, const char *event, json_t *data);

/* Writes all queued output, waiting at most about timeout_ms in total for
 * slow clients (those still not drained keep their queue). */
void control_flush(struct control_server *srv, int timeout_ms);

/* For commands whose effect would cut the reply off (quit, reset of the
 * process): from inside a handler, fn(opaque) runs once that handler's reply
 * is queued and sent to that client (1 s bound; no wait for a client that
 * let an earlier wait run out and has not read since).  Outside a handler
 * it flushes every client and runs fn at once. */
void control_after_reply(struct control_server *srv, void (*fn)(void *opaque), void *opaque);

/* Changes that 1 s bound (a fuzzer whose clients read late sets a short
 * one to keep its pace). */
void control_set_after_wait(struct control_server *srv, int ms);

/* For commands that finish later (work on another thread): from inside a
 * handler, its reply is left for control_reply_later(); the handler then
 * returns NULL, and err is not used.  Returns the token that names the
 * request (never 0; 0 outside a handler). */
unsigned long control_defer(struct control_server *srv);
/* The reply to a deferred request: result (stolen, an object) or, when it
 * is NULL, err.  Nothing is sent when the client has gone meanwhile. */
void control_reply_later(struct control_server *srv, unsigned long token, json_t *result,
                         const struct control_error *err);

/* From inside a handler: the oldest descriptor its client sent and no
 * command has taken yet, now the handler's to close; -1 when none. */
int control_take_fd(struct control_server *srv);

/* Number of connected clients (for tests and status). */
unsigned control_client_count(const struct control_server *srv);

#endif
