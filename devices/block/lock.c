/* Image locks that QEMU honours, and that honour QEMU's.
 *
 * QEMU (file-posix) describes what an opener does with an image through
 * open-file-description (OFD) read locks on single bytes: byte 100 + p
 * says "I use permission p", byte 200 + p says "I let nobody else have
 * permission p".  The permissions are 0 consistent read, 1 write, 2 write
 * without changing the data, 3 resize.  As QEMU's own writer does, a
 * writer here holds 100, 101, 103 and refuses others write and resize
 * (201, 203); a reader holds 100, 201 and 203.  An opener conflicts when
 * someone else refuses what it uses, or uses what it refuses.  The locks
 * go on first and are checked after, so two openers racing both see each
 * other; closing the file drops them. */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "devices/util.h"

#define LOCK_USE_BASE     100
#define LOCK_REFUSE_BASE  200
#define PERM_READ         0
#define PERM_WRITE        1
#define PERM_RESIZE       3

static int ofd_lock(int fd, short type, int cmd, off_t byte, struct flock *out)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    int r = fcntl(fd, cmd, &fl);
    if (out)
        *out = fl;
    return r;
}

/* Someone other than this open file holds a lock on byte. */
static int held_by_other(int fd, off_t byte)
{
    struct flock fl;
    if (ofd_lock(fd, F_WRLCK, F_OFD_GETLK, byte, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

int blk_lock_image(int fd, bool write, const char *path, char *err, size_t errlen)
{
    const unsigned uses_w[] = { PERM_READ, PERM_WRITE, PERM_RESIZE }, uses_r[] = { PERM_READ };
    const unsigned refuses[] = { PERM_WRITE, PERM_RESIZE };
    const unsigned *uses = write ? uses_w : uses_r;
    size_t n_uses = write ? ARRAY_SIZE(uses_w) : ARRAY_SIZE(uses_r);

    for (size_t i = 0; i < n_uses + ARRAY_SIZE(refuses); i++) {
        off_t byte = i < n_uses ? LOCK_USE_BASE + uses[i] : LOCK_REFUSE_BASE + refuses[i - n_uses];
        if (ofd_lock(fd, F_RDLCK, F_OFD_SETLK, byte, NULL) < 0) {
            int e = errno;
            if (e == EAGAIN || e == EACCES)
                goto busy;
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
            return -e;
        }
    }
    for (size_t i = 0; i < n_uses + ARRAY_SIZE(refuses); i++) {
        /* what I use, refused by another; what I refuse, used by another */
        off_t byte = i < n_uses ? LOCK_REFUSE_BASE + uses[i] : LOCK_USE_BASE + refuses[i - n_uses];
        int r = held_by_other(fd, byte);
        if (r < 0) {
            snprintf(err, errlen, "cannot test the locks of %s: %s", path, strerror(-r));
            blk_unlock_image(fd);
            return r;
        }
        if (r)
            goto busy;
    }
    return 0;
busy:
    blk_unlock_image(fd);
    snprintf(err, errlen, "%s is in use by another program (a running VM, QEMU or qemu-nbd)%s",
             path, write ? "" : " that writes to it");
    return -EBUSY;
}

void blk_unlock_image(int fd)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = LOCK_USE_BASE,
                        .l_len = LOCK_REFUSE_BASE + 64 - LOCK_USE_BASE };
    (void)fcntl(fd, F_OFD_SETLK, &fl);
}
