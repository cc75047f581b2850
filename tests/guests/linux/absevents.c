/* A Linux guest program: the positions an absolute pointing device reports
 * through evdev.  Finds the input device whose name contains argv[1]
 * (waiting up to argv[3] seconds, default 60, for it to appear), prints
 *     absevents: ready /dev/input/eventN
 *     absevents: absinfo x MIN MAX y MIN MAX
 * then, for each of the next argv[2] reports (SYN_REPORT) that change the
 * position, the position after it:
 *     absevents: pos X Y
 * and exits 0.  Static, so it runs from a bare busybox initramfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int find_device(const char *want, char *path, size_t len)
{
    for (int i = 0; i < 64; i++) {
        char name[256] = "";
        snprintf(path, len, "/dev/input/event%d", i);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) >= 0 && strstr(name, want))
            return fd;
        close(fd);
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: absevents NAME REPORTS [WAIT-SECONDS]\n");
        return 2;
    }
    long reports = atol(argv[2]);
    int wait_s = argc > 3 ? atoi(argv[3]) : 60;
    char path[64];
    int fd = -1;
    time_t give_up = time(NULL) + wait_s;
    while ((fd = find_device(argv[1], path, sizeof(path))) < 0) {
        if (time(NULL) >= give_up) {
            printf("absevents: no input device named like \"%s\" in %d s\n", argv[1], wait_s);
            return 1;
        }
        usleep(100000);
    }
    struct input_absinfo ax, ay;
    if (ioctl(fd, EVIOCGABS(ABS_X), &ax) < 0 || ioctl(fd, EVIOCGABS(ABS_Y), &ay) < 0) {
        printf("absevents: %s has no ABS_X/ABS_Y: %s\n", path, strerror(errno));
        return 1;
    }
    printf("absevents: ready %s\n", path);
    printf("absevents: absinfo x %d %d y %d %d\n", ax.minimum, ax.maximum, ay.minimum, ay.maximum);
    fflush(stdout);
    int x = ax.value, y = ay.value, px = x, py = y;
    struct input_event ev;
    while (reports > 0) {
        ssize_t n = read(fd, &ev, sizeof(ev));
        if (n != (ssize_t)sizeof(ev)) {
            printf("absevents: read: %s\n", n < 0 ? strerror(errno) : "short");
            return 1;
        }
        if (ev.type == EV_ABS && ev.code == ABS_X)
            x = ev.value;
        else if (ev.type == EV_ABS && ev.code == ABS_Y)
            y = ev.value;
        else if (ev.type == EV_SYN && ev.code == SYN_REPORT && (x != px || y != py)) {
            printf("absevents: pos %d %d\n", x, y);
            fflush(stdout);
            px = x;
            py = y;
            reports--;
        }
    }
    return 0;
}
