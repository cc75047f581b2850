/* A Linux guest program: how many clock_gettime(CLOCK_MONOTONIC) calls
 * run in about a second (argv[1] seconds), the cost a guest pays for every
 * clock read.  Static, so it runs from a bare busybox initramfs; glibc reads
 * the clock through the vDSO when the clocksource allows it.  Prints
 *     clockrate: N calls/s, M backwards
 * where M counts readings earlier than the one before (there must be none). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    double want = argc > 1 ? atof(argv[1]) : 1.0;
    struct timespec start, prev, now;
    unsigned long calls = 0, backwards = 0;
    double elapsed;
    if (clock_gettime(CLOCK_MONOTONIC, &start) != 0) {
        perror("clock_gettime");
        return 1;
    }
    prev = start;
    do {
        for (int i = 0; i < 1000; i++) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec < prev.tv_sec || (now.tv_sec == prev.tv_sec && now.tv_nsec < prev.tv_nsec))
                backwards++;
            prev = now;
        }
        calls += 1000;
        elapsed = seconds(&start, &now);
    } while (elapsed < want);
    printf("clockrate: %.0f calls/s, %lu backwards\n", (double)calls / elapsed, backwards);
    return 0;
}
