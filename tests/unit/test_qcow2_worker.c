/* The qcow2 driver on an event loop, as burrow-vm runs it: work that waits
 * for the disk (L2 table reads, allocation, refcount and metadata writes,
 * flush write-back) never runs on the thread that submits, which in
 * burrow-vm is a vCPU or the I/O thread holding the device lock.
 *
 * pread, pwrite and fdatasync are wrapped (-Wl,--wrap) to count calls made
 * on the submitting thread while it submits.  A gate then holds the
 * driver's worker inside fdatasync while more requests are submitted:
 * each submission must still return at once.  Finally everything reads
 * back, through the driver and through qemu-img. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/block/block.h"
#include "devices/block/qcow2.h"
#include "devices/evloop.h"
#include "devices/util.h"

#define IMG_SIZE  (64 * MiB)
#define WAIT_S    120          /* for events; generous for slow machines */

/* --- wrapped system calls ----------------------------------------------- */

static pthread_t submitter;
static bool submitting;                 /* touched by the submitter only */
static int waits_on_submitter;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int in_gate;

ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __real_fdatasync(int fd);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
int __wrap_fdatasync(int fd);

static void note(void)
{
    if (pthread_equal(pthread_self(), submitter) && submitting)
        waits_on_submitter++;
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
    note();
    return __real_pread(fd, buf, n, off);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    note();
    return __real_pwrite(fd, buf, n, off);
}

int __wrap_fdatasync(int fd)
{
    note();
    if (!pthread_equal(pthread_self(), submitter)) {
        pthread_mutex_lock(&gate_lock);
        in_gate++;
        pthread_cond_broadcast(&gate_cond);
        while (gate_closed)
            pthread_cond_wait(&gate_cond, &gate_lock);
        in_gate--;
        pthread_mutex_unlock(&gate_lock);
    }
    return __real_fdatasync(fd);
}

/* --- helpers ------------------------------------------------------------ */

static char dir[] = "/tmp/burrow-q2w-XXXXXX";
static struct evloop *loop;
static int outstanding, failures;

static void done_cb(void *opaque, int res)
{
    int want = (int)(intptr_t)opaque;
    if (res != want) {
        print_message("request completed with %d, expected %d\n", res, want);
        failures++;
    }
    outstanding--;
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        p[i] = (uint8_t)rng;
    }
}

/* Submits a write of shadow[off, off+len) after filling it anew. */
static void submit_write(struct blk *b, uint8_t *shadow, uint64_t off, size_t len)
{
    fill(shadow + off, len);
    struct iovec v[2] = { { shadow + off, len / 2 }, { shadow + off + len / 2, len - len / 2 } };
    assert_int_equal(blk_writev(b, off, v, 2, done_cb, (void *)(intptr_t)len), 0);
    outstanding++;
}

static void submit_read(struct blk *b, uint8_t *buf, uint64_t off, size_t len)
{
    struct iovec v = { buf, len };
    assert_int_equal(blk_readv(b, off, &v, 1, done_cb, (void *)(intptr_t)len), 0);
    outstanding++;
}

static void submit_flush(struct blk *b)
{
    assert_int_equal(blk_flush(b, done_cb, (void *)0), 0);
    outstanding++;
}

static void run_until_done(void)
{
    time_t end = time(NULL) + WAIT_S;
    while (outstanding > 0 && time(NULL) < end)
        evloop_run_once(loop, 200);
    assert_int_equal(outstanding, 0);
    assert_int_equal(failures, 0);
}

static void wait_in_gate(void)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_S;
    pthread_mutex_lock(&gate_lock);
    while (!in_gate) {
        if (pthread_cond_timedwait(&gate_cond, &gate_lock, &end) == ETIMEDOUT)
            break;
    }
    int n = in_gate;
    pthread_mutex_unlock(&gate_lock);
    if (!n)
        fail_msg("the worker never reached fdatasync");
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_closed = false;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static struct blk *open_img(const char *path)
{
    char err[512] = "";
    struct blk *b = blk_open_format(loop, path, "qcow2", false, err, sizeof(err));
    if (!b)
        fail_msg("open %s: %s", path, err);
    return b;
}

static void expect_contents(struct blk *b, const uint8_t *shadow)
{
    uint8_t *buf = malloc(IMG_SIZE);
    assert_non_null(buf);
    submitting = true;
    for (uint64_t off = 0; off < IMG_SIZE; off += 4 * MiB)
        submit_read(b, buf + off, off, 4 * MiB);
    submitting = false;
    run_until_done();
    assert_memory_equal(buf, shadow, IMG_SIZE);
    free(buf);
}

/* --- the test ----------------------------------------------------------- */

static void test_disk_waits_off_the_submitter(void **state)
{
    (void)state;
    char path[512], raw[512], err[256];
    snprintf(path, sizeof(path), "%s/disk.qcow2", dir);
    snprintf(raw, sizeof(raw), "%s/shadow.raw", dir);
    struct qcow2_create_opts o = { .size = IMG_SIZE };
    assert_int_equal(qcow2_create(path, &o, err, sizeof(err)), 0);
    uint8_t *shadow = calloc(1, IMG_SIZE);
    assert_non_null(shadow);
    struct blk *b = open_img(path);

    /* Allocating writes (whole clusters, partial ones, across L2 tables)
     * and a flush: all of the waiting is the worker's. */
    submitting = true;
    submit_write(b, shadow, 0, 256 * KiB);
    submit_write(b, shadow, 5 * MiB + 512, 100 * KiB);
    submit_write(b, shadow, 33 * MiB, 1 * MiB);
    submit_write(b, shadow, 63 * MiB + 4096, 8192);
    submit_flush(b);
    submitting = false;
    run_until_done();
    assert_int_equal(waits_on_submitter, 0);

    /* The worker held inside a flush's fdatasync: submissions still
     * return, whether they could run at once or must queue. */
    submit_write(b, shadow, 12 * MiB, 192 * KiB);
    run_until_done();
    gate_closed = true;
    submit_flush(b);        /* has tables to write back: the worker's */
    wait_in_gate();
    uint8_t *early = malloc(256 * KiB);
    assert_non_null(early);
    submitting = true;
    submit_write(b, shadow, 0, 64 * KiB);                /* in place */
    submit_read(b, early, 33 * MiB, 256 * KiB);          /* allocated */
    submit_write(b, shadow, 40 * MiB + 4096, 300 * KiB); /* allocating */
    submit_flush(b);
    submitting = false;
    assert_int_equal(waits_on_submitter, 0);
    assert_true(outstanding > 0);
    open_gate();
    run_until_done();
    assert_memory_equal(early, shadow + 33 * MiB, 256 * KiB);
    free(early);
    expect_contents(b, shadow);
    assert_int_equal(waits_on_submitter, 0);
    blk_close(b);

    /* Reopened, every L2 table must be read from the disk: by the worker. */
    b = open_img(path);
    expect_contents(b, shadow);
    assert_int_equal(waits_on_submitter, 0);
    blk_close(b);

    /* The image is clean and holds the same bytes for qemu-img. */
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(shadow, 1, IMG_SIZE, f), IMG_SIZE);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' && qemu-img compare -q -f qcow2 -F raw '%s' '%s'",
             path, path, raw);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    free(shadow);
}

int main(void)
{
    submitter = pthread_self();
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    loop = evloop_new(NULL);
    if (!loop)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_waits_off_the_submitter),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    evloop_free(loop);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
