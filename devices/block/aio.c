/* Block request engine: io_uring with completions on the event loop, or
 * synchronous system calls when io_uring is unavailable.  Work that must
 * block (a format driver's metadata I/O) runs on the engine's worker
 * thread, off the device lock, and completes on the event loop too. */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

#define RING_ENTRIES 128

struct aio_req {
    enum blk_aio_op op;
    int fd;
    uint64_t off;
    uint64_t len;              /* discard length */
    struct iovec *iov;         /* our copy; advanced on short transfers */
    struct iovec *iov_alloc;   /* what to free */
    int iovcnt;
    size_t total, done;
    int result;
    int (*work)(void *arg);    /* BLK_AIO_WORK */
    void *work_arg;
    blk_cb cb;
    void *opaque;
    struct aio_req *next;
};

struct blk_aio {
    struct evloop *loop;
    int efd;                   /* completion signal: io_uring's, or ours */
    bool uring;
    struct io_uring ring;
    unsigned inflight;         /* in the kernel */
    unsigned outstanding;      /* submitted and not yet called back */
    struct aio_req *pend_head, *pend_tail;  /* waiting for ring space */
    struct aio_req *done_head, *done_tail;  /* finished, callback due */

    /* The worker thread, started by the first offload; work and its
     * results pass under wq_lock. */
    pthread_t worker;
    bool worker_started, worker_stop;
    pthread_mutex_t wq_lock;
    pthread_cond_t wq_cond;
    struct aio_req *wq_head, *wq_tail;      /* work to do */
    struct aio_req *wd_head, *wd_tail;      /* work done, callback due */
};

static bool warned_sync;

static void list_push(struct aio_req **head, struct aio_req **tail, struct aio_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static struct aio_req *list_pop(struct aio_req **head, struct aio_req **tail)
{
    struct aio_req *r = *head;
    if (r) {
        *head = r->next;
        if (!*head)
            *tail = NULL;
    }
    return r;
}

static void complete(struct blk_aio *a, struct aio_req *r)
{
    a->outstanding--;
    blk_cb cb = r->cb;
    void *opaque = r->opaque;
    int result = r->result;
    free(r->iov_alloc);
    free(r);
    cb(opaque, result);
}

/* Drops `n` transferred bytes from the front of the request's iovecs. */
static void advance(struct aio_req *r, size_t n)
{
    r->done += n;
    r->off += n;
    while (n && r->iovcnt) {
        if (n >= r->iov[0].iov_len) {
            n -= r->iov[0].iov_len;
            r->iov++;
            r->iovcnt--;
        } else {
            r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
            r->iov[0].iov_len -= n;
            n = 0;
        }
    }
}

/* --- synchronous path --------------------------------------------------- */

static int sync_run(struct aio_req *r)
{
    switch (r->op) {
    case BLK_AIO_READ:
    case BLK_AIO_WRITE: {
        int result = 0;
        while (r->done < r->total) {
            ssize_t n = r->op == BLK_AIO_READ ? preadv(r->fd, r->iov, MIN(r->iovcnt, IOV_MAX), (off_t)r->off)
                                              : pwritev(r->fd, r->iov, MIN(r->iovcnt, IOV_MAX), (off_t)r->off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                result = -errno;
                break;
            }
            if (n == 0) {
                if (r->op == BLK_AIO_WRITE) {
                    result = -EIO;
                    break;
                }
                /* End of file: what lies beyond reads as zeroes. */
                for (int i = 0; i < r->iovcnt; i++)
                    memset(r->iov[i].iov_base, 0, r->iov[i].iov_len);
                r->done = r->total;
                break;
            }
            advance(r, (size_t)n);
        }
        return result < 0 ? result : (int)MIN(r->total, (size_t)INT32_MAX);
    }
    case BLK_AIO_FLUSH:
        return fdatasync(r->fd) < 0 ? -errno : 0;
    case BLK_AIO_WORK:
        return r->work(r->work_arg);
    case BLK_AIO_DISCARD:
        if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)r->off, (off_t)r->len) < 0)
            return errno == EOPNOTSUPP ? 0 : -errno;
        return 0;
    }
    return -EINVAL;
}

/* --- io_uring path ------------------------------------------------------ */

static bool uring_start(struct blk_aio *a, struct aio_req *r)
{
    if (a->inflight >= RING_ENTRIES)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    if (!sqe)
        return false;
    switch (r->op) {
    case BLK_AIO_READ:
        io_uring_prep_readv(sqe, r->fd, r->iov, (unsigned)MIN(r->iovcnt, IOV_MAX), r->off);
        break;
    case BLK_AIO_WRITE:
        io_uring_prep_writev(sqe, r->fd, r->iov, (unsigned)MIN(r->iovcnt, IOV_MAX), r->off);
        break;
    case BLK_AIO_FLUSH:
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        break;
    case BLK_AIO_WORK:
        return false;           /* never goes to the ring */
    case BLK_AIO_DISCARD:
        io_uring_prep_fallocate(sqe, r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                r->off, r->len);
        break;
    }
    io_uring_sqe_set_data(sqe, r);
    a->inflight++;
    return true;
}

/* Moves queued requests into the ring while it has room, then submits. */
static void uring_kick(struct blk_aio *a)
{
    while (a->pend_head && uring_start(a, a->pend_head))
        list_pop(&a->pend_head, &a->pend_tail);
    int ret = io_uring_submit(&a->ring);
    if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
        log_error("block: io_uring_submit: %s", strerror(-ret));
    /* On -EAGAIN/-EBUSY the entries stay in the queue for the next call. */
}

/* Handles one completion; returns the request if it is finished. */
static struct aio_req *uring_result(struct blk_aio *a, struct aio_req *r, int res)
{
    a->inflight--;
    if (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) {
        if (res == -EAGAIN || res == -EINTR) {
            list_push(&a->pend_head, &a->pend_tail, r);
            return NULL;
        }
        if (res > 0 && r->done + (size_t)res < r->total) {
            /* Short transfer: go on with the rest. */
            advance(r, (size_t)res);
            list_push(&a->pend_head, &a->pend_tail, r);
            return NULL;
        }
        if (res == 0 && r->done < r->total) {
            if (r->op == BLK_AIO_WRITE) {
                r->result = -EIO;
                return r;
            }
            for (int i = 0; i < r->iovcnt; i++)
                memset(r->iov[i].iov_base, 0, r->iov[i].iov_len);
            res = (int)(r->total - r->done);
        }
        r->result = res < 0 ? res : (int)MIN(r->total, (size_t)INT32_MAX);
        return r;
    }
    if (r->op == BLK_AIO_DISCARD && (res == -EOPNOTSUPP || res == -EINVAL))
        res = 0;    /* discard is a hint */
    r->result = res;
    return r;
}

/* Reaps completions; callbacks run after the ring is consistent again. */
static void uring_reap(struct blk_aio *a)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
        struct aio_req *r = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&a->ring, cqe);
        struct aio_req *done = uring_result(a, r, res);
        if (done)
            list_push(&a->done_head, &a->done_tail, done);
    }
    uring_kick(a);
}

/* Moves the worker's finished work to the done list. */
static void collect(struct blk_aio *a)
{
    if (!a->worker_started)
        return;
    pthread_mutex_lock(&a->wq_lock);
    struct aio_req *r;
    while ((r = list_pop(&a->wd_head, &a->wd_tail)))
        list_push(&a->done_head, &a->done_tail, r);
    pthread_mutex_unlock(&a->wq_lock);
}

static void deliver(struct blk_aio *a)
{
    struct aio_req *r;
    collect(a);
    while ((r = list_pop(&a->done_head, &a->done_tail)))
        complete(a, r);
}

static void efd_ready(void *opaque, int fd, unsigned events)
{
    struct blk_aio *a = opaque;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* nothing signalled; look anyway */
    }
    if (a->uring)
        uring_reap(a);
    deliver(a);
}

/* --- public ------------------------------------------------------------- */

struct blk_aio *blk_aio_new(struct evloop *loop)
{
    struct blk_aio *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->efd < 0) {
        free(a);
        return NULL;
    }
    const char *force = getenv("BURROW_BLOCK_SYNC");
    if (!(force && *force && strcmp(force, "0"))) {
        int ret = io_uring_queue_init(RING_ENTRIES, &a->ring, 0);
        if (ret == 0) {
            if (io_uring_register_eventfd(&a->ring, a->efd) == 0) {
                a->uring = true;
            } else {
                io_uring_queue_exit(&a->ring);
                ret = -EINVAL;
            }
        }
        if (!a->uring && !warned_sync) {
            warned_sync = true;
            log_warn("block: io_uring unavailable (%s); disk I/O will be synchronous",
                     strerror(ret < 0 ? -ret : EINVAL));
        }
    }
    if (loop && evloop_add_fd(loop, a->efd, EVLOOP_IN, efd_ready, a) < 0) {
        if (a->uring)
            io_uring_queue_exit(&a->ring);
        close(a->efd);
        free(a);
        return NULL;
    }
    return a;
}

bool blk_aio_is_uring(const struct blk_aio *a)
{
    return a->uring;
}

unsigned blk_aio_pending(const struct blk_aio *a)
{
    return a->outstanding;
}

int blk_aio_submit(struct blk_aio *a, enum blk_aio_op op, int fd, uint64_t off,
                   const struct iovec *iov, int iovcnt, uint64_t len, blk_cb cb, void *opaque)
{
    if (iovcnt < 0 || ((op == BLK_AIO_READ || op == BLK_AIO_WRITE) && iovcnt && !iov))
        return -EINVAL;
    struct aio_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (struct aio_req){ .op = op, .fd = fd, .off = off, .len = len, .cb = cb, .opaque = opaque };
    if (op == BLK_AIO_READ || op == BLK_AIO_WRITE) {
        r->iov = r->iov_alloc = malloc(sizeof(*iov) * (size_t)(iovcnt ? iovcnt : 1));
        if (!r->iov) {
            free(r);
            return -ENOMEM;
        }
        memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
        r->iovcnt = iovcnt;
        for (int i = 0; i < iovcnt; i++)
            r->total += iov[i].iov_len;
        if (r->total > INT32_MAX) {
            free(r->iov_alloc);
            free(r);
            return -EINVAL;
        }
    }
    a->outstanding++;
    bool empty = (op == BLK_AIO_READ || op == BLK_AIO_WRITE) && r->total == 0;
    if (!a->uring || empty) {
        r->result = empty ? 0 : sync_run(r);
        list_push(&a->done_head, &a->done_tail, r);
        uint64_t one = 1;
        if (write(a->efd, &one, sizeof(one)) < 0) {
            /* counter saturated: a wake-up is pending anyway */
        }
        return 0;
    }
    list_push(&a->pend_head, &a->pend_tail, r);
    uring_kick(a);
    return 0;
}

/* Waits until the engine's eventfd is signalled: a completion on the ring,
 * a synchronous one, or the worker's. */
static void wait_efd(struct blk_aio *a)
{
    struct pollfd p = { .fd = a->efd, .events = POLLIN };
    if (poll(&p, 1, -1) < 0 && errno != EINTR) {
        log_error("block: waiting for I/O: %s", strerror(errno));
        return;
    }
    uint64_t v;
    if (read(a->efd, &v, sizeof(v)) < 0) {
        /* consumed elsewhere; look anyway */
    }
}

static bool work_done_waiting(struct blk_aio *a)
{
    if (!a->worker_started)
        return false;
    pthread_mutex_lock(&a->wq_lock);
    bool any = a->wd_head != NULL;
    pthread_mutex_unlock(&a->wq_lock);
    return any;
}

void blk_aio_drain(struct blk_aio *a)
{
    while (a->outstanding) {
        if (a->uring)
            uring_reap(a);
        deliver(a);
        if (!a->outstanding)
            break;
        /* Sleep only when nothing is ready; anything that becomes ready
         * after these checks signals the eventfd. */
        if (a->done_head || (a->uring && io_uring_cq_ready(&a->ring)) || work_done_waiting(a))
            continue;
        wait_efd(a);
    }
}

static void *worker_main(void *opaque)
{
    struct blk_aio *a = opaque;
    pthread_mutex_lock(&a->wq_lock);
    for (;;) {
        struct aio_req *r = list_pop(&a->wq_head, &a->wq_tail);
        if (!r) {
            if (a->worker_stop)
                break;
            pthread_cond_wait(&a->wq_cond, &a->wq_lock);
            continue;
        }
        pthread_mutex_unlock(&a->wq_lock);
        r->result = r->work(r->work_arg);
        pthread_mutex_lock(&a->wq_lock);
        list_push(&a->wd_head, &a->wd_tail, r);
        uint64_t one = 1;
        if (write(a->efd, &one, sizeof(one)) < 0) {
            /* counter saturated: a wake-up is pending anyway */
        }
    }
    pthread_mutex_unlock(&a->wq_lock);
    return NULL;
}

static int worker_start(struct blk_aio *a)
{
    if (a->worker_started)
        return 0;
    pthread_mutex_init(&a->wq_lock, NULL);
    pthread_cond_init(&a->wq_cond, NULL);
    int ret = pthread_create(&a->worker, NULL, worker_main, a);
    if (ret) {
        pthread_cond_destroy(&a->wq_cond);
        pthread_mutex_destroy(&a->wq_lock);
        return -ret;
    }
    pthread_setname_np(a->worker, "block-worker");
    a->worker_started = true;
    return 0;
}

int blk_aio_offload(struct blk_aio *a, int (*work)(void *arg), void *arg, blk_cb cb, void *opaque)
{
    struct aio_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (struct aio_req){ .op = BLK_AIO_WORK, .fd = -1, .work = work, .work_arg = arg,
                           .cb = cb, .opaque = opaque };
    if (!a->loop) {
        /* A tool waits for its requests anyway: no thread needed. */
        a->outstanding++;
        r->result = work(arg);
        list_push(&a->done_head, &a->done_tail, r);
        return 0;
    }
    int ret = worker_start(a);
    if (ret < 0) {
        free(r);
        return ret;
    }
    a->outstanding++;
    pthread_mutex_lock(&a->wq_lock);
    list_push(&a->wq_head, &a->wq_tail, r);
    pthread_cond_signal(&a->wq_cond);
    pthread_mutex_unlock(&a->wq_lock);
    return 0;
}

void blk_aio_free(struct blk_aio *a)
{
    if (!a)
        return;
    blk_aio_drain(a);
    if (a->worker_started) {
        pthread_mutex_lock(&a->wq_lock);
        a->worker_stop = true;
        pthread_cond_signal(&a->wq_cond);
        pthread_mutex_unlock(&a->wq_lock);
        pthread_join(a->worker, NULL);
        pthread_cond_destroy(&a->wq_cond);
        pthread_mutex_destroy(&a->wq_lock);
    }
    if (a->loop)
        evloop_del_fd(a->loop, a->efd);
    if (a->uring)
        io_uring_queue_exit(&a->ring);
    close(a->efd);
    free(a);
}
