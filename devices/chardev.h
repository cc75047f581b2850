/* Host-side character backends for a guest serial port.
 *
 * A backend is chosen by a spec string, as given to `--serial`:
 *   stdio        output to stdout; input from stdin when it is a terminal
 *                (put in raw mode; Ctrl-A x quits, Ctrl-A Ctrl-A sends one
 *                Ctrl-A, Ctrl-A h prints this help on stderr)
 *   file:PATH    output to PATH (created or truncated, mode 0644); no input
 *   unix:PATH    a listening UNIX socket (mode 0600, a stale socket file is
 *                replaced); up to CHARDEV_MAX_CLIENTS clients at once (more
 *                wait in the backlog), both directions: output goes to
 *                every client (a slow one drops its own share), input
 *                comes from any; output while no client is connected is
 *                dropped
 *   none         output discarded, no input
 *
 * Writing never blocks the caller for long: output file descriptors are
 * non-blocking, what the host cannot take at once waits in a bounded buffer
 * flushed from the event loop, and what does not fit is dropped.  Closing
 * writes the buffer out (see chardev_close).
 *
 * Threading: every call, and every callback the backend makes, happens with
 * the machine's device lock held (event-loop callbacks run under it), so a
 * chardev needs no lock of its own. */
#ifndef BURROW_CHARDEV_H
#define BURROW_CHARDEV_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct evloop;
struct chardev;

/* Output that waits for a slow reader, per reader; beyond it bytes drop. */
#define CHARDEV_OUTBUF_SIZE (64 * 1024)
/* Clients a unix backend serves at once (a manager's terminal, `burrow
 * console`, a test's reader). */
#define CHARDEV_MAX_CLIENTS 8

typedef void (*chardev_receive_fn)(void *opaque, const uint8_t *buf, size_t len);
typedef size_t (*chardev_can_receive_fn)(void *opaque);

/* Opens a backend.  loop may be NULL only for "file:" and "none" (no input,
 * and output that cannot be written at once is kept until the next write).
 * On failure returns NULL with a message in err. */
struct chardev *chardev_open(const char *spec, struct evloop *loop, char *err, size_t errlen);
/* Writes out all buffered output, waiting for a slow reader as long as it
 * takes some every 10 s (what the guest wrote before the VM ended is not
 * lost), restores the terminal, frees.  Close a backend only after the
 * device using it was destroyed. */
void chardev_close(struct chardev *cd);

/* Queues len bytes for output; returns how many were accepted (sent or
 * buffered; with several unix clients, by the one that took most).  The
 * rest is dropped; for "none" and for a unix backend with no client
 * everything is accepted and discarded. */
size_t chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);

/* Connects the input side.  Input is read on the event loop only while
 * can_receive() > 0, and receive() is never given more than can_receive()
 * said.  Pass NULLs to disconnect. */
void chardev_set_input(struct chardev *cd, chardev_receive_fn receive,
                       chardev_can_receive_fn can_receive, void *opaque);
/* The consumer calls this when can_receive() may have become > 0 again (for
 * a UART: its receive FIFO drained).  Only re-arms reading; never calls
 * receive() from inside. */
void chardev_input_ready(struct chardev *cd);

/* Called when the user types the quit escape (Ctrl-A x) on a stdio
 * backend.  Without a handler the escape is reported and ignored.  It runs
 * inside the backend's input callback: it should ask the machine to shut
 * down, not close the backend. */
void chardev_set_quit_handler(struct chardev *cd, void (*quit)(void *opaque), void *opaque);

/* True when the backend has a peer that reads output right now (stdio,
 * file, at least one connected unix client). */
bool chardev_connected(const struct chardev *cd);

/* Puts the terminal back as it was before a stdio backend switched it to
 * raw mode.  Async-signal-safe and idempotent: a process that installs its
 * own handlers for fatal signals calls this from them.  It is also run at
 * exit, and chardev_open("stdio") installs handlers that call it and then
 * re-raise for SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS,
 * SIGILL and SIGFPE where those still had their default action. */
void chardev_restore_terminal(void);

#endif
