/* What pcmplay and pcmrecord share: the known signal (48 kHz, 16-bit
 * stereo: a 1 kHz sine on the left, a frame number on the right), setting
 * PCM hardware parameters through the kernel's ioctls, and turning the
 * mixer up.  Header-only: each guest program is one static executable. */
#ifndef BURROW_GUEST_PCM_H
#define BURROW_GUEST_PCM_H

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sound/asound.h>

#define PCM_RATE 48000

/* round(12000 * sin(2 pi k / 48)): one period of 1 kHz at 48 kHz. */
static const int16_t sine[48] = {
    0, 1566, 3106, 4592, 6000, 7305, 8485, 9520,
    10392, 11087, 11591, 11897, 12000, 11897, 11591, 11087,
    10392, 9520, 8485, 7305, 6000, 4592, 3106, 1566,
    0, -1566, -3106, -4592, -6000, -7305, -8485, -9520,
    -10392, -11087, -11591, -11897, -12000, -11897, -11591, -11087,
    -10392, -9520, -8485, -7305, -6000, -4592, -3106, -1566,
};

/* The known signal's frame k: the sine on the left, a number on the
 * right that the host can find the frame by. */
static inline int16_t pcm_left(unsigned k)
{
    return sine[k % 48];
}

static inline int16_t pcm_right(unsigned k)
{
    return (int16_t)(uint16_t)(k * 31u + 12345u);
}

static inline struct snd_mask *mask(struct snd_pcm_hw_params *p, int param)
{
    return &p->masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK];
}

static inline struct snd_interval *interval(struct snd_pcm_hw_params *p, int param)
{
    return &p->intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];
}

static inline void set_mask(struct snd_pcm_hw_params *p, int param, unsigned v)
{
    struct snd_mask *m = mask(p, param);
    memset(m, 0, sizeof(*m));
    m->bits[v / 32] = 1u << (v % 32);
}

static inline void set_interval(struct snd_pcm_hw_params *p, int param, unsigned v)
{
    struct snd_interval *i = interval(p, param);
    memset(i, 0, sizeof(*i));
    i->min = i->max = v;
    i->integer = 1;
}

/* Every "DIR Switch" on and every "DIR Volume" at its maximum (DIR:
 * "Playback" or "Capture"), as a desktop's mixer would; messages start with
 * prog. */
static int pcm_mixer_up(const char *path, const char *dir, const char *prog)
{
    char swname[32], volname[32];
    snprintf(swname, sizeof(swname), "%s Switch", dir);
    snprintf(volname, sizeof(volname), "%s Volume", dir);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("%s: open %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    struct snd_ctl_elem_list list;
    memset(&list, 0, sizeof(list));
    if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_LIST, &list) < 0)
        return -1;
    struct snd_ctl_elem_id *ids = calloc(list.count, sizeof(*ids));
    list.space = list.count;
    list.pids = ids;
    if (!ids || ioctl(fd, SNDRV_CTL_IOCTL_ELEM_LIST, &list) < 0)
        return -1;
    for (unsigned i = 0; i < list.used; i++) {
        const char *name = (const char *)ids[i].name;
        bool sw = strstr(name, swname), vol = strstr(name, volname);
        if (!sw && !vol)
            continue;
        struct snd_ctl_elem_info info;
        memset(&info, 0, sizeof(info));
        info.id = ids[i];
        if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_INFO, &info) < 0)
            continue;
        struct snd_ctl_elem_value v;
        memset(&v, 0, sizeof(v));
        v.id = ids[i];
        for (unsigned c = 0; c < info.count && c < 128; c++)
            v.value.integer.value[c] = sw ? 1 : info.value.integer.max;
        if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_WRITE, &v) < 0)
            printf("%s: setting '%s': %s\n", prog, name, strerror(errno));
        else
            printf("%s: mixer '%s' = %ld\n", prog, name, (long)v.value.integer.value[0]);
    }
    free(ids);
    close(fd);
    return 0;
}

/* Opens PCM device path and sets it to the known signal's format (48 kHz,
 * 16-bit stereo, interleaved) with the given period and period count; the
 * parameters the device took are left in hp.  Returns the descriptor, or
 * -1 after a message that starts with prog. */
static int pcm_open(const char *path, unsigned period, unsigned periods, const char *prog,
                    struct snd_pcm_hw_params *hp)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("%s: open %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    memset(hp, 0, sizeof(*hp));
    for (int i = SNDRV_PCM_HW_PARAM_FIRST_MASK; i <= SNDRV_PCM_HW_PARAM_LAST_MASK; i++)
        memset(mask(hp, i), 0xff, sizeof(struct snd_mask));
    for (int i = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; i <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; i++)
        interval(hp, i)->max = UINT_MAX;
    hp->rmask = ~0u;
    hp->info = ~0u;
    set_mask(hp, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
    set_mask(hp, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
    set_mask(hp, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
    set_interval(hp, SNDRV_PCM_HW_PARAM_CHANNELS, 2);
    set_interval(hp, SNDRV_PCM_HW_PARAM_RATE, PCM_RATE);
    set_interval(hp, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, period);
    set_interval(hp, SNDRV_PCM_HW_PARAM_PERIODS, periods);
    if (ioctl(fd, SNDRV_PCM_IOCTL_HW_PARAMS, hp) < 0) {
        printf("%s: HW_PARAMS: %s\n", prog, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

#endif
