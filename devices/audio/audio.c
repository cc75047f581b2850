/* The audio backend layer: --audio parsing, the calls devices make, and the
 * "none" backend (played frames are discarded, capture is silence). */
#include "devices/audio/audio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int audio_parse_check(const char *spec, char *err, size_t errlen)
{
    if (!strcmp(spec, "none"))
        return 0;
    if (!strncmp(spec, "wav:", 4) && spec[4])
        return 0;
    snprintf(err, errlen, "--audio: '%s' is not none or wav:PATH", spec);
    return -1;
}

struct audio_backend *audio_open(const char *spec, char *err, size_t errlen)
{
    if (audio_parse_check(spec, err, errlen) < 0)
        return NULL;
    if (!strcmp(spec, "none")) {
        struct audio_backend *b = audio_none_new();
        if (!b)
            snprintf(err, errlen, "audio: out of memory");
        return b;
    }
    return audio_wav_new(spec + 4, err, errlen);
}

void audio_close(struct audio_backend *b)
{
    if (b)
        b->ops->free(b);
}

size_t audio_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len)
{
    unsigned fb = audio_frame_bytes(f);
    if (!fb)
        return len;
    len -= len % fb;
    size_t n = b->ops->play(b, f, buf, len);
    b->frames_played += n / fb;
    return n;
}

size_t audio_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len)
{
    unsigned fb = audio_frame_bytes(f);
    if (!fb)
        return 0;
    return b->ops->capture(b, f, buf, len - len % fb);
}

void audio_flush(struct audio_backend *b)
{
    if (b->ops->flush)
        b->ops->flush(b);
}

/* --- none ------------------------------------------------------------ */

static size_t none_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len)
{
    return len;
}

static size_t none_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len)
{
    memset(buf, 0, len);
    return len;
}

static void none_free(struct audio_backend *b)
{
    free(b);
}

static const struct audio_backend_ops none_ops = { none_play, none_capture, NULL, none_free };

struct audio_backend *audio_none_new(void)
{
    struct audio_backend *b = calloc(1, sizeof(*b));
    if (b) {
        b->ops = &none_ops;
        b->name = "none";
    }
    return b;
}
