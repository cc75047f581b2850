/* The I/O thread's event loop: file descriptors and timers, on epoll.
 * Callbacks run on the loop's thread with the loop's lock (the machine's
 * device lock) held. */
#ifndef BURROW_EVLOOP_H
#define BURROW_EVLOOP_H

#include <stdint.h>
#include <stdbool.h>
#include <pthread.h>

#define EVLOOP_IN  1u
#define EVLOOP_OUT 4u

typedef void (*evloop_fd_cb)(void *opaque, int fd, unsigned events);
typedef void (*evloop_timer_cb)(void *opaque);

struct evloop;

/* lock: the device lock taken around every callback; may be NULL. */
struct evloop *evloop_new(pthread_mutex_t *lock);
void evloop_free(struct evloop *loop);

int evloop_add_fd(struct evloop *loop, int fd, unsigned events, evloop_fd_cb cb, void *opaque);
int evloop_mod_fd(struct evloop *loop, int fd, unsigned events);
/* Safe from inside a callback (also for the fd whose callback is running). */
void evloop_del_fd(struct evloop *loop, int fd);

/* One-shot timer on CLOCK_MONOTONIC, in nanoseconds from now; returns an id. */
int evloop_add_timer(struct evloop *loop, uint64_t ns, evloop_timer_cb cb, void *opaque);
void evloop_del_timer(struct evloop *loop, int id);

/* Runs one round: waits at most timeout_ms (-1: forever) for events. */
int evloop_run_once(struct evloop *loop, int timeout_ms);
/* Runs until evloop_stop() is called (from any thread). */
void evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

uint64_t evloop_now_ns(void);

#endif
