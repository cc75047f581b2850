/* Records from an ALSA capture device through the kernel's PCM ioctls alone
 * (no alsa-lib in a busybox initramfs) and looks for the known signal the
 * host plays into the VM's microphone: 48 kHz, 16-bit stereo, the left
 * channel a 1 kHz sine, the right a sequence that numbers each frame
 * ((k * 31 + 12345) mod 65536, as pcmplay's), so a lost, repeated or
 * silent frame shows.
 *
 *   pcmrecord DEVICE MAX_FRAMES TONE_FRAMES [CONTROL]
 *
 * With CONTROL (a /dev/snd/controlC* node) it first turns every capture
 * switch on and every capture volume to its maximum (0 dB on Burrow's
 * codec), as a desktop's mixer would.  Prints "pcmrecord: recording" once
 * the device runs, then records until TONE_FRAMES frames have come after
 * the first that is not silence, or MAX_FRAMES in all, and prints
 *   pcmrecord: tone at frame F, N frames, FREQ Hz, B breaks
 * (FREQ from the median time between rising zero crossings of the left
 * channel; a break is a frame that does not follow the one before), or
 * "pcmrecord: no tone in N frames".  Exits 1 on any error (an overrun
 * too). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sound/asound.h>

#include "pcm.h"

#define PERIOD 4800         /* frames: 100 ms */
#define PERIODS 16          /* 1.6 s of buffer: room for a slow nested guest */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The left channel's frequency: the median time between rising zero
 * crossings, so a break does not move it. */
static double frequency(const int16_t *f, size_t n)
{
    double *periods = malloc(sizeof(double) * (n / 2 + 1)), last = -1;
    size_t np = 0;
    if (!periods)
        return 0;
    for (size_t i = 1; i < n; i++) {
        int16_t a = f[2 * (i - 1)], b = f[2 * i];
        if (a < 0 && b >= 0) {
            double t = (double)(i - 1) + (double)-a / (double)(b - a);
            if (last >= 0)
                periods[np++] = t - last;
            last = t;
        }
    }
    double hz = 0;
    if (np) {
        qsort(periods, np, sizeof(double), cmp_double);
        hz = PCM_RATE / periods[np / 2];
    }
    free(periods);
    return hz;
}

/* Where the sine is at a frame: its index in the table, or -1. */
static int phase_of(const int16_t *f, size_t i)
{
    for (int p = 0; p < 48; p++)
        if (f[2 * i] == sine[p] && f[2 * (i + 1)] == sine[(p + 1) % 48])
            return p;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: pcmrecord DEVICE MAX_FRAMES TONE_FRAMES [CONTROL]\n");
        return 2;
    }
    size_t max = strtoul(argv[2], NULL, 10), want = strtoul(argv[3], NULL, 10);
    if (argc == 5 && pcm_mixer_up(argv[4], "Capture", "pcmrecord") < 0) {
        printf("pcmrecord: cannot set the mixer\n");
        return 1;
    }
    struct snd_pcm_hw_params hp;
    int fd = pcm_open(argv[1], PERIOD, PERIODS, "pcmrecord", &hp);
    if (fd < 0)
        return 1;
    struct snd_pcm_sw_params sp;
    memset(&sp, 0, sizeof(sp));
    sp.tstamp_mode = SNDRV_PCM_TSTAMP_NONE;
    sp.period_step = 1;
    sp.avail_min = PERIOD;
    sp.start_threshold = 1;
    sp.stop_threshold = PERIOD * PERIODS;
    sp.boundary = PERIOD * PERIODS;
    while (sp.boundary * 2 <= LONG_MAX - PERIOD * PERIODS && sp.boundary < (1ul << 30))
        sp.boundary *= 2;
    if (ioctl(fd, SNDRV_PCM_IOCTL_SW_PARAMS, &sp) < 0) {
        printf("pcmrecord: SW_PARAMS: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0 || ioctl(fd, SNDRV_PCM_IOCTL_START) < 0) {
        printf("pcmrecord: PREPARE/START: %s\n", strerror(errno));
        return 1;
    }
    printf("pcmrecord: recording\n");
    fflush(stdout);
    /* The tone's frames are kept; silence before it is only counted. */
    int16_t *tone = malloc((want + PERIOD) * 4);
    int16_t chunk[PERIOD * 2];
    if (!tone)
        return 1;
    size_t total = 0, have = 0, first = 0;
    bool heard = false;
    while (total < max && have < want) {
        struct snd_xferi x = { .buf = chunk, .frames = PERIOD };
        if (ioctl(fd, SNDRV_PCM_IOCTL_READI_FRAMES, &x) < 0) {
            printf("pcmrecord: READI_FRAMES after %zu frames: %s%s\n", total, strerror(errno),
                   errno == EPIPE ? " (overrun)" : "");
            return 1;
        }
        for (size_t i = 0; i < (size_t)x.result && have < want; i++) {
            if (!heard && (chunk[2 * i] || chunk[2 * i + 1])) {
                heard = true;
                first = total + i;
            }
            if (heard) {
                memcpy(tone + 2 * have, chunk + 2 * i, 4);
                have++;
            }
        }
        total += (size_t)x.result;
    }
    ioctl(fd, SNDRV_PCM_IOCTL_DROP);
    close(fd);
    if (!heard) {
        printf("pcmrecord: no tone in %zu frames\n", total);
        return 0;
    }
    /* Breaks: a frame whose sequence number and sine do not follow the
     * frame before (after one, the signal is picked up where it goes on). */
    unsigned breaks = 0;
    int p = have > 1 ? phase_of(tone, 0) : -1;
    for (size_t i = 1; i < have; i++) {
        uint16_t r0 = (uint16_t)tone[2 * (i - 1) + 1], r1 = (uint16_t)tone[2 * i + 1];
        p = p < 0 ? -1 : (p + 1) % 48;
        bool ok = (uint16_t)(r0 + 31u) == r1 && p >= 0 && tone[2 * i] == sine[p];
        if (!ok) {
            breaks++;
            p = i + 1 < have ? phase_of(tone, i) : -1;
        }
    }
    printf("pcmrecord: tone at frame %zu, %zu frames, %.4f Hz, %u breaks\n", first, have,
           frequency(tone, have), breaks);
    return 0;
}
