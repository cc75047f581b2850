#include "devices/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct evloop_fd {
    int fd;
    bool live;
    evloop_fd_cb cb;
    void *opaque;
    struct evloop_fd *next;
};

struct evloop_timer {
    int id;
    uint64_t deadline;
    evloop_timer_cb cb;
    void *opaque;
};

struct evloop {
    int epfd;
    int wakefd;
    pthread_mutex_t *lock;
    struct evloop_fd *fds;      /* list; dead entries are reaped between rounds */
    struct evloop_timer *timers;
    unsigned ntimers, timer_cap;
    int next_timer_id;
    volatile bool stop;
};

uint64_t evloop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct evloop *evloop_new(pthread_mutex_t *lock)
{
    struct evloop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->lock = lock;
    loop->next_timer_id = 1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->epfd < 0 || loop->wakefd < 0) {
        evloop_free(loop);
        return NULL;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev);
    return loop;
}

void evloop_free(struct evloop *loop)
{
    if (!loop)
        return;
    struct evloop_fd *f = loop->fds;
    while (f) {
        struct evloop_fd *n = f->next;
        free(f);
        f = n;
    }
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    free(loop->timers);
    free(loop);
}

static uint32_t to_epoll(unsigned events)
{
    return (events & EVLOOP_IN ? EPOLLIN : 0) | (events & EVLOOP_OUT ? EPOLLOUT : 0);
}

static struct evloop_fd *find_fd(struct evloop *loop, int fd)
{
    for (struct evloop_fd *f = loop->fds; f; f = f->next)
        if (f->live && f->fd == fd)
            return f;
    return NULL;
}

int evloop_add_fd(struct evloop *loop, int fd, unsigned events, evloop_fd_cb cb, void *opaque)
{
    struct evloop_fd *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *f = (struct evloop_fd){ fd, true, cb, opaque, loop->fds };
    struct epoll_event ev = { .events = to_epoll(events), .data.ptr = f };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(f);
        return -1;
    }
    loop->fds = f;
    return 0;
}

int evloop_mod_fd(struct evloop *loop, int fd, unsigned events)
{
    struct evloop_fd *f = find_fd(loop, fd);
    if (!f)
        return -1;
    struct epoll_event ev = { .events = to_epoll(events), .data.ptr = f };
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void evloop_del_fd(struct evloop *loop, int fd)
{
    struct evloop_fd *f = find_fd(loop, fd);
    if (!f)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    f->live = false;   /* freed after the current round */
}

int evloop_add_timer(struct evloop *loop, uint64_t ns, evloop_timer_cb cb, void *opaque)
{
    if (loop->ntimers == loop->timer_cap) {
        unsigned cap = loop->timer_cap ? loop->timer_cap * 2 : 8;
        struct evloop_timer *t = realloc(loop->timers, cap * sizeof(*t));
        if (!t)
            return -1;
        loop->timers = t;
        loop->timer_cap = cap;
    }
    int id = loop->next_timer_id++;
    loop->timers[loop->ntimers++] = (struct evloop_timer){ id, evloop_now_ns() + ns, cb, opaque };
    uint64_t one = 1;
    if (write(loop->wakefd, &one, sizeof(one)) < 0) {
        /* counter saturated: a wake-up is already pending */
    }
    return id;
}

void evloop_del_timer(struct evloop *loop, int id)
{
    for (unsigned i = 0; i < loop->ntimers; i++) {
        if (loop->timers[i].id == id) {
            loop->timers[i] = loop->timers[--loop->ntimers];
            return;
        }
    }
}

static void reap(struct evloop *loop)
{
    struct evloop_fd **pp = &loop->fds;
    while (*pp) {
        if (!(*pp)->live) {
            struct evloop_fd *dead = *pp;
            *pp = dead->next;
            free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static int next_timeout(struct evloop *loop, int timeout_ms)
{
    if (!loop->ntimers)
        return timeout_ms;
    uint64_t now = evloop_now_ns(), first = UINT64_MAX;
    for (unsigned i = 0; i < loop->ntimers; i++)
        if (loop->timers[i].deadline < first)
            first = loop->timers[i].deadline;
    int ms = first <= now ? 0 : (int)((first - now + 999999) / 1000000);
    return timeout_ms < 0 || ms < timeout_ms ? ms : timeout_ms;
}

static void run_timers(struct evloop *loop)
{
    uint64_t now = evloop_now_ns();
    for (unsigned i = 0; i < loop->ntimers;) {
        if (loop->timers[i].deadline <= now) {
            struct evloop_timer t = loop->timers[i];
            loop->timers[i] = loop->timers[--loop->ntimers];
            t.cb(t.opaque);   /* may add or delete timers */
            i = 0;
        } else {
            i++;
        }
    }
}

int evloop_run_once(struct evloop *loop, int timeout_ms)
{
    struct epoll_event evs[32];
    if (loop->lock)
        pthread_mutex_lock(loop->lock);
    int timeout = next_timeout(loop, timeout_ms);
    if (loop->lock)
        pthread_mutex_unlock(loop->lock);

    int n = epoll_wait(loop->epfd, evs, 32, timeout);
    if (n < 0 && errno != EINTR)
        return -1;

    if (loop->lock)
        pthread_mutex_lock(loop->lock);
    for (int i = 0; i < n; i++) {
        struct evloop_fd *f = evs[i].data.ptr;
        if (!f) {
            uint64_t v;
            if (read(loop->wakefd, &v, sizeof(v)) < 0) {
                /* nothing pending */
            }
            continue;
        }
        if (!f->live)
            continue;
        unsigned e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            e |= EVLOOP_IN;
        if (evs[i].events & EPOLLOUT)
            e |= EVLOOP_OUT;
        f->cb(f->opaque, f->fd, e);
    }
    run_timers(loop);
    reap(loop);
    if (loop->lock)
        pthread_mutex_unlock(loop->lock);
    return n < 0 ? 0 : n;
}

void evloop_run(struct evloop *loop)
{
    while (!loop->stop)
        evloop_run_once(loop, -1);
}

void evloop_stop(struct evloop *loop)
{
    loop->stop = true;
    uint64_t one = 1;
    if (write(loop->wakefd, &one, sizeof(one)) < 0) {
        /* already pending */
    }
}
