/* Firmware debug console on one I/O port; see debugcon.h. */
#include "devices/debugcon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/platform.h"
#include "devices/util.h"

struct debugcon {
    struct platform *p;
    uint16_t port;
    int fd;
    bool failed;   /* a write error was reported; later bytes are dropped */
};

static uint64_t debugcon_read(void *opaque, uint64_t offset, unsigned size)
{
    return DEBUGCON_READBACK;
}

static void debugcon_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct debugcon *dc = opaque;
    if (dc->failed)
        return;
    /* Only the low byte is a character, whatever the access width.  Each
     * byte is written at once so nothing is lost if the VM dies. */
    uint8_t c = (uint8_t)value;
    ssize_t n;
    do {
        n = write(dc->fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        log_warn("debugcon: cannot write the firmware log: %s",
                 n < 0 ? strerror(errno) : "short write");
        dc->failed = true;
    }
}

static const struct io_ops debugcon_ops = {
    .read = debugcon_read,
    .write = debugcon_write,
};

struct debugcon *debugcon_create(struct platform *p, uint16_t port, const char *path,
                                 char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!path || !path[0]) {
        snprintf(err, errlen, "firmware log: no file given");
        return NULL;
    }
    struct debugcon *dc = calloc(1, sizeof(*dc));
    if (!dc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dc->p = p;
    dc->port = port;
    /* Claim the port first, so a conflict leaves no file behind. */
    if (io_bus_register(p->pio, port, 1, &debugcon_ops, dc, "debugcon") < 0) {
        snprintf(err, errlen, "debug console port 0x%x is already taken", port);
        free(dc);
        return NULL;
    }
    dc->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
    if (dc->fd < 0) {
        snprintf(err, errlen, "cannot open firmware log '%s': %s", path, strerror(errno));
        io_bus_unregister(p->pio, port, dc);
        free(dc);
        return NULL;
    }
    return dc;
}

void debugcon_destroy(struct debugcon *dc)
{
    if (!dc)
        return;
    io_bus_unregister(dc->p->pio, dc->port, dc);
    close(dc->fd);
    free(dc);
}
