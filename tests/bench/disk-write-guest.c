/* The guest's half of tests/bench/disk-write.sh, built static and run in
 * the busybox initramfs.
 *
 *   disk-write-guest NAME DEVICE OFFSET_MIB SIZE_MIB BLOCK_KIB none|spin|port
 *   disk-write-guest NAME idle SECONDS spin|port
 *
 * A writer pinned to CPU 0 writes SIZE_MIB MiB to DEVICE from OFFSET_MIB
 * on, in BLOCK_KIB KiB blocks, with O_DIRECT (so every block is one request
 * to the disk, not a page-cache write-back), then flushes the disk
 * (fdatasync).  The data is a non-zero pattern that changes with every
 * block, so that no layer can take it for zeroes.
 *
 * With "spin", the calling process, pinned to CPU 1, meanwhile reads
 * CLOCK_MONOTONIC in a tight loop and records the longest gap between two
 * consecutive reads while the writer runs: how long that vCPU was held up.
 * "port" also reads a byte of the ACPI PM timer through /dev/port between
 * two clock reads: a port access by the kernel, which leaves the guest and
 * is answered by the VMM's device model, as when a guest touches any
 * device.  With "none" CPU 1 is left idle.  "idle" is the watcher alone, for
 * SECONDS, CPU 0 asleep and the disk untouched: the figures to compare with.
 *
 * Prints one line:
 *   disk-write: NAME bytes=B write_ns=W flush_ns=F stall_ns=S loops=L
 * (L: the rounds of CPU 1's loop), or "disk-write: NAME error ..." and
 * exits with 1.  A clock that went backwards is an error too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    volatile int go;        /* set by the watcher once it is watching */
    volatile int done;      /* set by the writer after its flush */
    int ok;                 /* the writer finished its work */
    int error;              /* errno of the writer's failure, or 0 */
    char what[64];          /* what failed */
    uint64_t bytes, write_ns, flush_ns;
};

static const char *name;
static pid_t writer_pid;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

/* The ACPI PM timer's port, from /proc/ioports ("ACPI PM_TMR"); 0 if none. */
static unsigned pm_timer_port(void)
{
    FILE *f = fopen("/proc/ioports", "r");
    char line[256];
    unsigned port = 0;
    if (!f)
        return 0;
    while (!port && fgets(line, sizeof(line), f)) {
        unsigned lo, hi;
        if (strstr(line, "PM_TMR") && sscanf(line, " %x-%x", &lo, &hi) == 2)
            port = lo;
    }
    fclose(f);
    return port;
}

static void fail(const char *what, int err)
{
    printf("disk-write: %s error %s: %s\n", name, what, strerror(err));
    fflush(stdout);
    if (writer_pid > 0) {
        kill(writer_pid, SIGKILL);
        waitpid(writer_pid, NULL, 0);
    }
    exit(1);
}

/* dev NULL: sleeps for size nanoseconds instead of writing. */
static void writer(struct shared *sh, const char *dev, uint64_t off, uint64_t size, size_t bs)
{
    if (pin(0) < 0) {
        sh->error = errno;
        snprintf(sh->what, sizeof(sh->what), "pinning the writer to CPU 0");
        goto out;
    }
    if (!dev) {
        while (!sh->go)
            ;
        uint64_t t0 = now_ns();
        struct timespec ts = { .tv_sec = (time_t)(size / 1000000000u), .tv_nsec = (long)(size % 1000000000u) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        sh->write_ns = now_ns() - t0;
        sh->ok = 1;
        goto out;
    }
    int fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        sh->error = errno;
        snprintf(sh->what, sizeof(sh->what), "opening %s with O_DIRECT", dev);
        goto out;
    }
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, bs) != 0) {
        sh->error = ENOMEM;
        snprintf(sh->what, sizeof(sh->what), "allocating the buffer");
        goto out;
    }
    memset(buf, 0xa5, bs);
    while (!sh->go)
        ;
    uint64_t t0 = now_ns();
    for (uint64_t pos = 0; pos < size;) {
        /* A different first word in every block (and every 4 KiB). */
        for (size_t i = 0; i < bs; i += 4096)
            memcpy(buf + i, &(uint64_t){ off + pos + i + 1 }, sizeof(uint64_t));
        ssize_t n = pwrite(fd, buf, bs, (off_t)(off + pos));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)bs) {
            sh->error = n < 0 ? errno : EIO;
            snprintf(sh->what, sizeof(sh->what), "writing at byte %llu", (unsigned long long)(off + pos));
            goto out;
        }
        pos += bs;
    }
    uint64_t t1 = now_ns();
    if (fdatasync(fd) < 0) {
        sh->error = errno;
        snprintf(sh->what, sizeof(sh->what), "flushing %s", dev);
        goto out;
    }
    uint64_t t2 = now_ns();
    sh->bytes = size;
    sh->write_ns = t1 - t0;
    sh->flush_ns = t2 - t1;
    sh->ok = 1;
    close(fd);
out:
    sh->done = 1;
    _exit(0);
}

int main(int argc, char **argv)
{
    bool idle = argc == 5 && !strcmp(argv[2], "idle");
    if (argc != 7 && !idle) {
        fprintf(stderr, "usage: %s NAME DEVICE OFFSET_MIB SIZE_MIB BLOCK_KIB none|spin|port\n"
                        "       %s NAME idle SECONDS spin|port\n", argv[0], argv[0]);
        return 2;
    }
    name = argv[1];
    const char *dev = idle ? NULL : argv[2];
    uint64_t off = 0, size;
    size_t bs = 0;
    const char *watch = argv[argc - 1];
    bool port = !strcmp(watch, "port");
    bool spin = port || !strcmp(watch, "spin");
    if (idle) {
        size = strtoull(argv[3], NULL, 0) * 1000000000u;
        if (size == 0 || !spin)
            fail("arguments", EINVAL);
    } else {
        off = strtoull(argv[3], NULL, 0) << 20;
        size = strtoull(argv[4], NULL, 0) << 20;
        bs = (size_t)strtoul(argv[5], NULL, 0) << 10;
        if (bs == 0 || bs % 4096 || size == 0 || size % bs || (!spin && strcmp(watch, "none")))
            fail("arguments", EINVAL);
    }
    if (spin && pin(1) < 0)
        fail("pinning the watcher to CPU 1", errno);
    int port_fd = -1;
    off_t pm_timer = 0;
    if (port) {
        if (!(pm_timer = pm_timer_port()))
            fail("finding the PM timer in /proc/ioports", ENOENT);
        if ((port_fd = open("/dev/port", O_RDONLY | O_CLOEXEC)) < 0)
            fail("opening /dev/port", errno);
    }

    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        fail("mmap", errno);
    memset(sh, 0, sizeof(*sh));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork", errno);
    if (pid == 0)
        writer(sh, dev, off, size, bs);
    writer_pid = pid;

    uint64_t stall = 0, loops = 0;
    if (!spin) {
        sh->go = 1;
    } else {
        uint64_t last = now_ns();
        sh->go = 1;
        while (!sh->done) {
            uint8_t b;
            if (port && pread(port_fd, &b, 1, pm_timer) != 1)
                fail("reading the PM timer through /dev/port", errno);
            uint64_t t = now_ns();
            if (t < last)
                fail("CLOCK_MONOTONIC", ERANGE);
            if (t - last > stall)
                stall = t - last;
            last = t;
            loops++;
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    writer_pid = 0;
    if (sh->error)
        fail(sh->what, sh->error);
    if (!sh->done || !sh->ok)
        fail("the writer ended without a result", EIO);
    printf("disk-write: %s bytes=%llu write_ns=%llu flush_ns=%llu stall_ns=%llu loops=%llu\n", name,
           (unsigned long long)sh->bytes, (unsigned long long)sh->write_ns, (unsigned long long)sh->flush_ns,
           (unsigned long long)stall, (unsigned long long)loops);
    return 0;
}
