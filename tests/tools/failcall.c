/* failcall.so: LD_PRELOAD'ed, makes the C library calls named in FAILCALL
 * (comma-separated) fail with EMFILE, to show what a program does when
 * they do.  Calls it knows: signalfd, eventfd, timerfd_create. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <dlfcn.h>

static int failing(const char *name)
{
    const char *list = getenv("FAILCALL");
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

#define PASS_ON(name, ...)                                                   \
    do {                                                                     \
        if (failing(#name)) {                                                \
            errno = EMFILE;                                                  \
            return -1;                                                       \
        }                                                                    \
        __typeof__(&name) real = (__typeof__(&name))dlsym(RTLD_NEXT, #name); \
        return real(__VA_ARGS__);                                            \
    } while (0)

int signalfd(int fd, const sigset_t *mask, int flags) { PASS_ON(signalfd, fd, mask, flags); }
int eventfd(unsigned int initval, int flags) { PASS_ON(eventfd, initval, flags); }
int timerfd_create(int clockid, int flags) { PASS_ON(timerfd_create, clockid, flags); }
