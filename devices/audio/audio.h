/* Audio backends: where a sound device's played frames go and where its
 * captured frames come from.  The device calls them from the I/O thread
 * with the device lock held, so a backend never blocks: play takes what it
 * can, capture gives what it has, and the device fills the rest of a capture
 * with silence.  A backend with a thread of its own (a sound server) sits
 * behind a ring buffer on each side; the file backends just write. */
#ifndef BURROW_AUDIO_H
#define BURROW_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Interleaved little-endian signed PCM. */
struct audio_format {
    unsigned rate;          /* frames per second */
    unsigned channels;
    unsigned bits;          /* 8, 16, 20, 24 or 32; 20 and 24 in 32-bit containers */
};

static inline unsigned audio_frame_bytes(const struct audio_format *f)
{
    return f->channels * (f->bits <= 8 ? 1 : f->bits <= 16 ? 2 : 4);
}

static inline bool audio_format_equal(const struct audio_format *a, const struct audio_format *b)
{
    return a->rate == b->rate && a->channels == b->channels && a->bits == b->bits;
}

struct audio_backend;

struct audio_backend_ops {
    /* Takes frames the guest played; returns the bytes taken (whole frames). */
    size_t (*play)(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len);
    /* Gives up to len bytes of captured frames; returns how many it gave. */
    size_t (*capture)(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len);
    /* Makes what was played so far durable and readable by others. */
    void (*flush)(struct audio_backend *b);
    void (*free)(struct audio_backend *b);
};

struct audio_backend {
    const struct audio_backend_ops *ops;
    const char *name;
    uint64_t frames_played;     /* taken by play */
    uint64_t frames_dropped;    /* refused: a format the backend could not take */
};

/* Parses --audio's value (none | wav:PATH) and opens the backend.  Returns
 * NULL with a message in err. */
struct audio_backend *audio_open(const char *spec, char *err, size_t errlen);
/* Checks a spec without opening anything. */
int audio_parse_check(const char *spec, char *err, size_t errlen);
void audio_close(struct audio_backend *b);

size_t audio_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len);
size_t audio_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len);
void audio_flush(struct audio_backend *b);

/* The backends. */
struct audio_backend *audio_none_new(void);
struct audio_backend *audio_wav_new(const char *path, char *err, size_t errlen);

#endif
