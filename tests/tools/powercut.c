/* powercut.so: LD_PRELOAD'ed into a program that writes one file, it keeps
 * what a power cut would leave of that file.  POWERCUT_FILE names the file;
 * POWERCUT_DIR gets
 *   stable    the file as its last completed fsync/fdatasync left it
 *             (a copy made at open, then every range written since the
 *             previous sync copied over at each sync);
 *   pending   the writes made since that sync, in order, as records
 *             "offset length" + data, which a cut may or may not have
 *             let through (tests/e2e/test_qcow2_power_cut.sh replays a
 *             random subset).
 * Only the plain system calls are seen: run the program with
 * BURROW_BLOCK_SYNC=1 so its block layer does not use io_uring. */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char target[PATH_MAX];
static int tracked = -1;        /* the program's fd of the file */
static int stable_fd = -1, pending_fd = -1;
static struct range { uint64_t off, len; } *dirty;
static size_t ndirty, capdirty;

/* The C library's function behind ours, looked up once. */
#define REAL(name)                                                          \
    ({                                                                      \
        static __typeof__(&name) real_##name;                               \
        if (!real_##name)                                                   \
            real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name);       \
        real_##name;                                                        \
    })

static void die(const char *what)
{
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    _exit(99);
}

static void full_write(int fd, const void *buf, size_t len, off_t off, bool append)
{
    const char *p = buf;
    while (len) {
        ssize_t n = append ? write(fd, p, len) : pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("writing its own files");
        p += n;
        len -= (size_t)n;
        off += n;
    }
}

/* Called with lock held, after the program's write of len bytes at off. */
static void note_write(uint64_t off, const struct iovec *iov, int n)
{
    uint64_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (!len)
        return;
    char head[64];
    int hl = snprintf(head, sizeof(head), "%llu %llu\n", (unsigned long long)off, (unsigned long long)len);
    full_write(pending_fd, head, (size_t)hl, 0, true);
    for (int i = 0; i < n; i++)
        full_write(pending_fd, iov[i].iov_base, iov[i].iov_len, 0, true);
    if (ndirty == capdirty) {
        capdirty = capdirty ? capdirty * 2 : 256;
        dirty = realloc(dirty, capdirty * sizeof(*dirty));
        if (!dirty)
            die("out of memory");
    }
    dirty[ndirty++] = (struct range){ off, len };
}

/* A completed sync: everything written so far is stable. */
static void note_sync(int fd)
{
    static char buf[1 << 16];
    for (size_t i = 0; i < ndirty; i++) {
        uint64_t off = dirty[i].off, left = dirty[i].len;
        while (left) {
            size_t chunk = left < sizeof(buf) ? (size_t)left : sizeof(buf);
            ssize_t n = pread(fd, buf, chunk, (off_t)off);
            if (n <= 0)
                break;   /* past a later truncation */
            full_write(stable_fd, buf, (size_t)n, (off_t)off, false);
            off += (uint64_t)n;
            left -= (uint64_t)n;
        }
    }
    ndirty = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && ftruncate(stable_fd, st.st_size) < 0)
        die("sizing stable");
    if (ftruncate(pending_fd, 0) < 0 || lseek(pending_fd, 0, SEEK_SET) < 0)
        die("emptying pending");
}

static void maybe_track(int fd, const char *path)
{
    char real[PATH_MAX];
    if (fd < 0 || !target[0] || !realpath(path, real) || strcmp(real, target))
        return;
    pthread_mutex_lock(&lock);
    const char *dir = getenv("POWERCUT_DIR");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/stable", dir);
    stable_fd = REAL(open)(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    snprintf(p, sizeof(p), "%s/pending", dir);
    pending_fd = REAL(open)(p, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (stable_fd < 0 || pending_fd < 0)
        die("creating its files");
    /* at open, the whole file is as stable as it gets */
    static char buf[1 << 16];
    ssize_t n;
    off_t off = 0;
    while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
        full_write(stable_fd, buf, (size_t)n, off, false);
        off += n;
    }
    tracked = fd;
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void init(void)
{
    const char *f = getenv("POWERCUT_FILE");
    if (f && getenv("POWERCUT_DIR") && !realpath(f, target))
        target[0] = '\0';
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    int fd = REAL(open)(path, flags, mode);
    maybe_track(fd, path);
    return fd;
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    int fd = REAL(openat)(dirfd, path, flags, mode);
    if (dirfd == AT_FDCWD || path[0] == '/')
        maybe_track(fd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* what _FORTIFY_SOURCE builds call for open() without a mode */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
    return open(path, flags);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

/* Writes and syncs of the tracked file are serialized under the lock, so
 * each write is recorded on the right side of every sync: one that ended
 * before a sync began is in it, one that began after is not. */
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    if (fd != tracked)
        return REAL(pwrite)(fd, buf, len, off);
    pthread_mutex_lock(&lock);
    ssize_t n = REAL(pwrite)(fd, buf, len, off);
    if (n > 0) {
        struct iovec v = { (void *)buf, (size_t)n };
        note_write((uint64_t)off, &v, 1);
    }
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (fd != tracked)
        return REAL(pwritev)(fd, iov, cnt, off);
    pthread_mutex_lock(&lock);
    ssize_t n = REAL(pwritev)(fd, iov, cnt, off);
    if (n > 0) {
        /* what was written: the first n bytes of the vector */
        struct iovec v[IOV_MAX];
        int k = 0;
        size_t left = (size_t)n;
        for (int i = 0; i < cnt && left && k < IOV_MAX; i++, k++) {
            v[k] = iov[i];
            if (v[k].iov_len > left)
                v[k].iov_len = left;
            left -= v[k].iov_len;
        }
        note_write((uint64_t)off, v, k);
    }
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("pwritev")));

int fdatasync(int fd)
{
    if (fd != tracked)
        return REAL(fdatasync)(fd);
    pthread_mutex_lock(&lock);
    int r = REAL(fdatasync)(fd);
    if (r == 0)
        note_sync(fd);
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd)
{
    if (fd != tracked)
        return REAL(fsync)(fd);
    pthread_mutex_lock(&lock);
    int r = REAL(fsync)(fd);
    if (r == 0)
        note_sync(fd);
    pthread_mutex_unlock(&lock);
    return r;
}

/* Writes by other means would escape the record: refuse them loudly. */
ssize_t write(int fd, const void *buf, size_t len)
{
    if (fd == tracked && tracked >= 0) {
        fprintf(stderr, "powercut: write() on the tracked file is not recorded\n");
        _exit(98);
    }
    return REAL(write)(fd, buf, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (fd == tracked && tracked >= 0) {
        fprintf(stderr, "powercut: fallocate() on the tracked file is not recorded\n");
        _exit(98);
    }
    return REAL(fallocate)(fd, mode, off, len);
}

int ftruncate(int fd, off_t len)
{
    if (fd == tracked && tracked >= 0) {
        fprintf(stderr, "powercut: ftruncate() on the tracked file is not recorded\n");
        _exit(98);
    }
    return REAL(ftruncate)(fd, len);
}
