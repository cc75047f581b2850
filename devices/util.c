#include "devices/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *log_prefix = "burrow-vm";
static bool log_debug_on;

void log_set_prefix(const char *prefix) { log_prefix = prefix; }
void log_set_debug(bool on) { log_debug_on = on; }

__attribute__((format(printf, 2, 0)))
static void vlog(const char *level, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    /* A terminal may be in raw mode (serial console on stdio): return the
     * carriage ourselves. */
    fprintf(stderr, "%s: %s%s%s\n", log_prefix, level, buf, isatty(2) ? "\r" : "");
}

#define DEFINE_LOG(name, level, cond)            \
    void name(const char *fmt, ...)              \
    {                                            \
        if (!(cond))                             \
            return;                              \
        va_list ap;                              \
        va_start(ap, fmt);                       \
        vlog(level, fmt, ap);                    \
        va_end(ap);                              \
    }

DEFINE_LOG(log_error, "error: ", true)
DEFINE_LOG(log_warn, "warning: ", true)
DEFINE_LOG(log_info, "", true)
DEFINE_LOG(log_debug, "debug: ", log_debug_on)

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void log_guest_error(const char *fmt, ...)
{
    /* At most 20 reports per second, so a hostile guest cannot flood the log. */
    static time_t window;
    static int count;
    time_t now = time(NULL);
    if (now != window) {
        window = now;
        count = 0;
    }
    if (++count > 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("guest error: ", fmt, ap);
    va_end(ap);
}

uint64_t ld_le(const void *p, unsigned size)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

void st_le(void *p, unsigned size, uint64_t v)
{
    uint8_t *b = p;
    for (unsigned i = 0; i < size; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

uint64_t ld_be(const void *p, unsigned size)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v = v << 8 | b[i];
    return v;
}

void st_be(void *p, unsigned size, uint64_t v)
{
    uint8_t *b = p;
    for (unsigned i = size; i-- > 0; v >>= 8)
        b[i] = (uint8_t)v;
}
