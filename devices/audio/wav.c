/* The wav:PATH backend: played frames go to a RIFF/WAVE file in the format
 * of the first frames played.  The header's sizes are rewritten about once a
 * second of audio, on flush and on close, so the file is readable while the
 * VM runs and whole after it ends.  Capture is silence. */
#include "devices/audio/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/util.h"

#define WAV_HEADER_SIZE 44

struct wav {
    struct audio_backend b;
    int fd;
    struct audio_format fmt;
    bool have_fmt;
    bool failed;            /* a write failed: stop writing, say so once */
    bool warned_fmt;
    uint64_t data_bytes;
    uint64_t unfixed;       /* bytes written since the header was last fixed */
};

static void put_le(uint8_t *p, unsigned n, uint32_t v)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wav_write_header(struct wav *w)
{
    if (w->failed)
        return;
    uint8_t h[WAV_HEADER_SIZE];
    unsigned fb = audio_frame_bytes(&w->fmt);
    /* RIFF sizes are 32-bit: a file past 4 GiB keeps the largest size. */
    uint32_t data = w->data_bytes > 0xffffffffu - 36 ? 0xffffffffu - 36 : (uint32_t)w->data_bytes;
    memcpy(h, "RIFF", 4);
    put_le(h + 4, 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 4, 16);
    put_le(h + 20, 2, 1);                        /* PCM */
    put_le(h + 22, 2, w->fmt.channels);
    put_le(h + 24, 4, w->fmt.rate);
    put_le(h + 28, 4, w->fmt.rate * fb);
    put_le(h + 32, 2, fb);
    put_le(h + 34, 2, fb / w->fmt.channels * 8);  /* container bits */
    memcpy(h + 36, "data", 4);
    put_le(h + 40, 4, data);
    if (pwrite(w->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        log_error("audio: writing the WAV header: %s", strerror(errno));
        w->failed = true;
    }
    w->unfixed = 0;
}

static size_t wav_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len)
{
    struct wav *w = (struct wav *)b;
    if (!w->have_fmt) {
        w->fmt = *f;
        w->have_fmt = true;
        wav_write_header(w);
    } else if (!audio_format_equal(&w->fmt, f)) {
        /* One file has one format: later frames in another are left out. */
        if (!w->warned_fmt)
            log_warn("audio: the guest changed to %u Hz, %u channels, %u bits; the WAV file "
                     "keeps %u Hz, %u channels, %u bits and leaves those frames out",
                     f->rate, f->channels, f->bits, w->fmt.rate, w->fmt.channels, w->fmt.bits);
        w->warned_fmt = true;
        b->frames_dropped += len / audio_frame_bytes(f);
        return len;
    }
    if (w->failed)
        return len;
    const uint8_t *p = buf;
    size_t left = len;
    while (left) {
        ssize_t n = pwrite(w->fd, p, left, (off_t)(WAV_HEADER_SIZE + w->data_bytes));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_error("audio: writing the WAV file: %s", n < 0 ? strerror(errno) : "short write");
            w->failed = true;
            return len;
        }
        w->data_bytes += (size_t)n;
        w->unfixed += (size_t)n;
        p += n;
        left -= (size_t)n;
    }
    if (w->unfixed >= (uint64_t)w->fmt.rate * audio_frame_bytes(&w->fmt))
        wav_write_header(w);
    return len;
}

static size_t wav_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len)
{
    memset(buf, 0, len);
    return len;
}

static void wav_flush(struct audio_backend *b)
{
    struct wav *w = (struct wav *)b;
    if (w->unfixed)
        wav_write_header(w);
}

static void wav_free(struct audio_backend *b)
{
    struct wav *w = (struct wav *)b;
    wav_write_header(w);
    close(w->fd);
    free(w);
}

static const struct audio_backend_ops wav_ops = {
    .play = wav_play, .capture = wav_capture, .flush = wav_flush, .free = wav_free,
};

struct audio_backend *audio_wav_new(const char *path, char *err, size_t errlen)
{
    struct wav *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "audio: out of memory");
        return NULL;
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        snprintf(err, errlen, "audio: cannot create '%s': %s", path, strerror(errno));
        free(w);
        return NULL;
    }
    w->b.ops = &wav_ops;
    w->b.name = "wav";
    /* Until the guest plays, the file says 48 kHz 16-bit stereo, no frames. */
    w->fmt = (struct audio_format){ 48000, 2, 16 };
    wav_write_header(w);
    if (w->failed) {
        snprintf(err, errlen, "audio: cannot write '%s'", path);
        close(w->fd);
        free(w);
        return NULL;
    }
    return &w->b;
}
