/* forbidden.so: LD_PRELOAD'ed into burrow-vm, makes a system call that its
 * sandbox does not allow, at a moment the test chooses: a thread started
 * before main() waits for the file FORBIDDEN_TRIGGER to exist, then calls
 * acct(2) on a path that does not exist (harmless should it run: it fails
 * with ENOENT or EPERM).  If the call returns, the process was not stopped,
 * and the thread says so on stderr ("forbidden: acct returned"). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *trigger;

static void *waiter(void *arg)
{
    (void)arg;
    const struct timespec tick = { 0, 50 * 1000 * 1000 };
    while (access(trigger, F_OK) < 0)
        nanosleep(&tick, NULL);
    long rc = syscall(SYS_acct, "/nonexistent/forbidden-acct");
    int e = errno;
    fprintf(stderr, "forbidden: acct returned %ld (%s)\n", rc, rc < 0 ? strerror(e) : "no error");
    return NULL;
}

__attribute__((constructor)) static void start(void)
{
    trigger = getenv("FORBIDDEN_TRIGGER");
    if (!trigger || !*trigger)
        return;
    pthread_t t;
    if (pthread_create(&t, NULL, waiter, NULL) != 0) {
        fprintf(stderr, "forbidden: cannot start the waiting thread\n");
        return;
    }
    pthread_detach(t);
}
