/* Audio backends: where a sound device's played frames go and where its
 * captured frames come from.  The device calls them with the device lock
 * held (the I/O thread's timer, or a vCPU's register access), so a backend
 * never blocks: play takes what it can, capture gives what it has, and the
 * device fills the rest of a capture with silence.  A backend with a thread
 * of its own (the sound server's, pulse.c) sits behind a ring buffer on
 * each side; the file backends just write. */
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
struct audio_stats;

struct audio_backend_ops {
    /* Takes frames the guest played; returns the bytes taken (whole frames). */
    size_t (*play)(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len);
    /* Gives up to len bytes of captured frames; returns how many it gave. */
    size_t (*capture)(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len);
    /* Makes what was played so far durable and readable by others. */
    void (*flush)(struct audio_backend *b);
    void (*free)(struct audio_backend *b);
    /* Optional.  The guest's output stream started in format f, or its
     * input stream started recording (f NULL: stopped): a sound server
     * plays, or records from the host's microphone, only while the guest
     * does. */
    void (*set_active)(struct audio_backend *b, bool out, const struct audio_format *f);
    /* Optional: what the backend's own thread counted. */
    void (*stats)(struct audio_backend *b, struct audio_stats *st);
};

/* What a backend counted, for the control socket's status. */
struct audio_stats {
    bool connected;             /* false: the sound server is gone (retrying) */
    uint64_t underruns;         /* the server ran out of output while the guest played */
    uint64_t overruns;          /* captured frames lost because the guest read too slowly */
    uint64_t skipped;           /* output frames skipped to keep the latency after a stall */
    unsigned latency_us;        /* output queued ahead of the speaker now */
};

struct audio_backend {
    const struct audio_backend_ops *ops;
    const char *name;
    uint64_t frames_played;     /* taken by play */
    uint64_t frames_dropped;    /* refused: a format the backend could not take, no room */
    uint64_t frames_captured;   /* given by capture */
};

/* Parses --audio's value (none | wav:PATH | pa[,OPTION=VALUE...]) and opens
 * the backend.  Returns NULL with a message in err. */
struct audio_backend *audio_open(const char *spec, char *err, size_t errlen);
/* Checks a spec without opening anything. */
int audio_parse_check(const char *spec, char *err, size_t errlen);
void audio_close(struct audio_backend *b);

size_t audio_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len);
size_t audio_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len);
void audio_flush(struct audio_backend *b);
void audio_set_active(struct audio_backend *b, bool out, const struct audio_format *f);
/* Fills st, with zeros where the backend counts nothing of its own. */
void audio_stats(struct audio_backend *b, struct audio_stats *st);

/* The backends. */
struct audio_backend *audio_none_new(void);
struct audio_backend *audio_wav_new(const char *path, char *err, size_t errlen);

/* pa: PulseAudio (or PipeWire's PulseAudio server) through libpulse.
 * Options, after "pa" and separated by commas: server=SERVER (else
 * PULSE_SERVER or the session's server), sink=NAME, source=NAME,
 * latency=MS (the output's target latency, 10-500; default 40). */
struct audio_pa_opts {
    char server[256];
    char sink[128];
    char source[128];
    unsigned latency_ms;
};
/* opts: what follows "pa" in the spec ("" or ",OPTION=VALUE..."). */
int audio_pa_parse(const char *opts, struct audio_pa_opts *o, char *err, size_t errlen);
struct audio_backend *audio_pa_new(const struct audio_pa_opts *o, char *err, size_t errlen);

#endif
