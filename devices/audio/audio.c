/* The audio backend layer: --audio parsing, the calls devices make, and the
 * "none" backend (played frames are discarded, capture is silence). */
#include "devices/audio/audio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "pa" alone or followed by ",OPTIONS": what follows "pa", else NULL. */
static const char *pa_options(const char *spec)
{
    if (!strcmp(spec, "pa") || !strncmp(spec, "pa,", 3))
        return spec + 2;
    return NULL;
}

int audio_parse_check(const char *spec, char *err, size_t errlen)
{
    if (!strcmp(spec, "none"))
        return 0;
    if (!strncmp(spec, "wav:", 4) && spec[4])
        return 0;
    const char *pa = pa_options(spec);
    if (pa) {
        struct audio_pa_opts o;
        return audio_pa_parse(pa, &o, err, errlen);
    }
    snprintf(err, errlen, "--audio: '%s' is not none, wav:PATH or pa[,OPTION=VALUE...]", spec);
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
    const char *pa = pa_options(spec);
    if (pa) {
        struct audio_pa_opts o;
        audio_pa_parse(pa, &o, err, errlen);
        return audio_pa_new(&o, err, errlen);
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
    size_t n = b->ops->capture(b, f, buf, len - len % fb);
    b->frames_captured += n / fb;
    return n;
}

void audio_flush(struct audio_backend *b)
{
    if (b->ops->flush)
        b->ops->flush(b);
}

void audio_set_active(struct audio_backend *b, bool out, const struct audio_format *f)
{
    if (b->ops->set_active)
        b->ops->set_active(b, out, f);
}

void audio_stats(struct audio_backend *b, struct audio_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->connected = true;
    if (b->ops->stats)
        b->ops->stats(b, st);
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

static const struct audio_backend_ops none_ops = { .play = none_play, .capture = none_capture, .free = none_free };

struct audio_backend *audio_none_new(void)
{
    struct audio_backend *b = calloc(1, sizeof(*b));
    if (b) {
        b->ops = &none_ops;
        b->name = "none";
    }
    return b;
}
