/* Debug exit port; see debug_exit.h. */
#include "devices/debug_exit.h"

#include <stdlib.h>

#include "devices/platform.h"
#include "devices/util.h"

struct debug_exit {
    struct platform *p;
    uint16_t port;
};

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0;
}

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct debug_exit *de = opaque;
    /* Only the low byte counts, so the status always fits in 9 bits. */
    int v = (int)(value & 0xff);
    platform_request(de->p, PLATFORM_DEBUG_EXIT, (v << 1) | 1);
}

static const struct io_ops debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
};

struct debug_exit *debug_exit_create(struct platform *p, uint16_t port)
{
    struct debug_exit *de = calloc(1, sizeof(*de));
    if (!de)
        return NULL;
    de->p = p;
    de->port = port;
    if (io_bus_register(p->pio, port, 1, &debug_exit_ops, de, "debug-exit") < 0) {
        log_error("debug-exit: port 0x%x is already taken", port);
        free(de);
        return NULL;
    }
    return de;
}

void debug_exit_destroy(struct debug_exit *de)
{
    if (!de)
        return;
    io_bus_unregister(de->p->pio, de->port, de);
    free(de);
}
