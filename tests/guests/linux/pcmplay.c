/* Plays a known signal on an ALSA playback device through the kernel's PCM
 * ioctls alone (no alsa-lib in a busybox initramfs): 48 kHz, 16-bit stereo;
 * the left channel a 1 kHz sine, the right a sequence that numbers each
 * frame, so the host can find the start in what it recorded and compare
 * every sample.  The host side (tests/linux/test_audio.sh) computes the
 * same signal.
 *
 *   pcmplay DEVICE FRAMES [CONTROL]
 *
 * With CONTROL (a /dev/snd/controlC* node) it first turns every playback
 * switch on and every playback volume to its maximum, as a desktop's mixer
 * would: the kernel leaves the codec's amps as it found them after its own
 * set-up (muted).  Prints "pcmplay: params RATE CHANNELS PERIOD BUFFER",
 * "pcmplay: started" once the buffer is full and the device runs, then
 * waits until the device has read every frame, printing its position as it
 * goes, and "pcmplay: played FRAMES"; exits 1 on any error (an underrun
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

#define PERIOD 8192         /* frames: 170 ms */
#define PERIODS 8           /* 1.4 s of buffer: room for a slow nested guest */

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: pcmplay DEVICE FRAMES [CONTROL]\n");
        return 2;
    }
    unsigned frames = (unsigned)strtoul(argv[2], NULL, 10);
    if (argc == 4 && pcm_mixer_up(argv[3], "Playback", "pcmplay") < 0) {
        printf("pcmplay: cannot set the mixer\n");
        return 1;
    }
    struct snd_pcm_hw_params hp;
    int fd = pcm_open(argv[1], PERIOD, PERIODS, "pcmplay", &hp);
    if (fd < 0)
        return 1;
    printf("pcmplay: params %u %u %u %u\n", interval(&hp, SNDRV_PCM_HW_PARAM_RATE)->min,
           interval(&hp, SNDRV_PCM_HW_PARAM_CHANNELS)->min,
           interval(&hp, SNDRV_PCM_HW_PARAM_PERIOD_SIZE)->min,
           interval(&hp, SNDRV_PCM_HW_PARAM_BUFFER_SIZE)->min);
    /* Start only with the whole buffer filled, so a slow guest does not
     * underrun at once. */
    struct snd_pcm_sw_params sp;
    memset(&sp, 0, sizeof(sp));
    sp.tstamp_mode = SNDRV_PCM_TSTAMP_NONE;
    sp.period_step = 1;
    sp.avail_min = PERIOD;
    sp.start_threshold = PERIOD * PERIODS;
    sp.stop_threshold = PERIOD * PERIODS;
    sp.silence_threshold = 0;
    sp.silence_size = 0;
    sp.boundary = PERIOD * PERIODS;
    while (sp.boundary * 2 <= LONG_MAX - PERIOD * PERIODS && sp.boundary < (1ul << 30))
        sp.boundary *= 2;
    if (ioctl(fd, SNDRV_PCM_IOCTL_SW_PARAMS, &sp) < 0) {
        printf("pcmplay: SW_PARAMS: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0) {
        printf("pcmplay: PREPARE: %s\n", strerror(errno));
        return 1;
    }
    int16_t *buf = malloc((size_t)frames * 4);
    if (!buf)
        return 1;
    for (unsigned k = 0; k < frames; k++) {
        buf[2 * k] = pcm_left(k);
        buf[2 * k + 1] = pcm_right(k);
    }
    /* The first writes fill the buffer, which starts the device: that is
     * said, for the host's measurements (tests/bench/audio.sh). */
    unsigned done = 0, first = frames < PERIOD * PERIODS ? frames : PERIOD * PERIODS;
    bool said = false;
    while (done < frames) {
        unsigned end = done < first ? first : frames;
        struct snd_xferi x = { .buf = buf + 2 * done, .frames = end - done };
        if (ioctl(fd, SNDRV_PCM_IOCTL_WRITEI_FRAMES, &x) < 0) {
            printf("pcmplay: WRITEI_FRAMES after %u frames: %s%s\n", done, strerror(errno),
                   errno == EPIPE ? " (underrun)" : "");
            return 1;
        }
        done += (unsigned)x.result;
        if (!said && done >= first) {
            printf("pcmplay: started\n");
            fflush(stdout);
            said = true;
        }
    }
    /* Wait for the device to read it all (DRAIN's own limit is short for a
     * guest that a nested hypervisor may stop for a while). */
    struct snd_pcm_status st;
    for (int i = 0;; i++) {
        memset(&st, 0, sizeof(st));
        if (ioctl(fd, SNDRV_PCM_IOCTL_STATUS, &st) < 0) {
            printf("pcmplay: STATUS: %s\n", strerror(errno));
            return 1;
        }
        if (i % 10 == 0 || st.state != SNDRV_PCM_STATE_RUNNING)
            printf("pcmplay: state %d hw_ptr %lu appl_ptr %lu\n", (int)st.state,
                   (unsigned long)st.hw_ptr, (unsigned long)st.appl_ptr);
        if (st.hw_ptr >= done)
            break;
        if (st.state != SNDRV_PCM_STATE_RUNNING || i >= 200) {
            printf("pcmplay: the device stopped short of the end\n");
            return 1;
        }
        usleep(50000);
    }
    ioctl(fd, SNDRV_PCM_IOCTL_DROP);
    printf("pcmplay: played %u\n", done);
    close(fd);
    return 0;
}
