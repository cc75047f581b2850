/* The pa backend: PulseAudio, or PipeWire's PulseAudio server, through
 * libpulse's threaded main loop.
 *
 * Two threads meet here.  The device calls play, capture and set_active
 * with the device lock held; they only move bytes into or out of a ring
 * under a mutex that the sound thread holds for a copy (never across a call
 * into libpulse), and wake the sound thread through an eventfd.  The sound
 * thread (pa_threaded_mainloop) feeds the playback stream from the ring
 * when the server asks, fills the capture ring from the record stream,
 * opens the streams in the guest's format, and connects again when the
 * server goes away, while the VM runs on and drops what the ring cannot
 * hold.
 *
 * Latency stays bounded: the playback stream asks for a small target
 * (latency=MS, 40 by default), the ring holds at most that much (50 ms at
 * least), what does not fit is dropped and counted rather than queued, and
 * what waits beyond the server's room once it plays is skipped, so neither
 * a guest whose clock runs a little fast nor a stall of the server builds
 * up delay.  The record stream exists
 * only while the guest records, so the host's sound server shows the
 * microphone in use exactly then. */
#include "devices/audio/audio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pulse/pulseaudio.h>
/* (sys/param.h, through libpulse, has its own) */
#undef MIN
#undef MAX

#include "devices/audio/ring.h"
#include "devices/util.h"

#define DEFAULT_LATENCY_MS  40
#define MIN_LATENCY_MS      10
#define MAX_LATENCY_MS      500
#define CONNECT_WAIT_US     (2 * PA_USEC_PER_SEC)   /* at start, for a clear first word */
#define RETRY_US            (2 * PA_USEC_PER_SEC)
#define UNDERRUN_LOG_US     (10 * PA_USEC_PER_SEC)  /* at most one underrun line per 10 s */
#define CAPTURE_FRAG_MS     10                      /* the record stream's chunks */
#define CAPTURE_RING_MS     250                     /* more waiting is dropped, oldest first:
                                                       room for the device's catch-up after
                                                       its thread was held up (200 ms) */
#define RING_MS_MIN         50

static const struct audio_format DEFAULT_FORMAT = { 48000, 2, 16 };

/* Playback: the device writes the ring, the sound thread reads it. */
struct pa_out {
    pthread_mutex_t lock;       /* guards the fields up to `s` */
    struct audio_ring ring;
    struct audio_format fmt;    /* of the ring's bytes before switch_at */
    bool switch_pending;        /* bytes from switch_at on are in `next` */
    uint64_t switch_at;
    struct audio_format next;
    bool active;                /* the guest's output stream runs */
    /* the sound thread's own */
    pa_stream *s;
    struct audio_format sfmt;   /* the stream's format */
    bool changing;              /* draining the old stream before a format change */
    bool was_active;
    bool playing;               /* the server plays (not waiting for its start threshold) */
    atomic_bool starved;        /* the server waits to start and the ring ran dry */
};

/* Capture: the sound thread writes the ring, the device reads it. */
struct pa_in {
    pthread_mutex_t lock;       /* guards the fields up to `s` */
    struct audio_ring ring;
    struct audio_format fmt;    /* the guest's */
    bool active;                /* the guest records */
    bool primed;                /* the ring held half the latency since it ran dry */
    /* the sound thread's own */
    pa_stream *s;
    struct audio_format sfmt;
};

struct pulse {
    struct audio_backend b;
    struct audio_pa_opts o;
    pa_threaded_mainloop *ml;
    pa_mainloop_api *api;
    pa_context *ctx;
    pa_io_event *kick_ev;
    pa_defer_event *sigsys_ev;
    pa_time_event *retry_ev;
    int kick_fd;
    struct pa_out out;
    struct pa_in in;
    struct audio_format refused;    /* the device side's: a format PA lacks, said once */
    unsigned ring_ms;               /* the most output the ring holds */
    /* the sound thread's own */
    bool ever_ready;
    bool lost_said;             /* said that the server is gone; say when it is back */
    bool failed;                /* the context failed: retry */
    bool waited;                /* the wait at start is over */
    bool stream_warned;
    pa_usec_t underrun_logged_at;
    uint64_t underruns_logged;
    /* read by the device side */
    atomic_bool connected;
    atomic_uint_fast64_t underruns, overruns;
    atomic_uint_fast64_t skipped;   /* played late: skipped to keep the latency */
    atomic_uint latency_us;     /* the stream's own, without the ring */
};

/* --- options -------------------------------------------------------------- */

static int copy_opt(char *dst, size_t cap, const char *v, size_t n, const char *key, char *err, size_t errlen)
{
    if (!n || n >= cap) {
        snprintf(err, errlen, "--audio pa: %s= needs a value of 1-%zu characters", key, cap - 1);
        return -1;
    }
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

int audio_pa_parse(const char *opts, struct audio_pa_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->latency_ms = DEFAULT_LATENCY_MS;
    /* opts: "" or ",OPTION=VALUE[,...]" */
    for (const char *p = opts; *p;) {
        p++;    /* the comma */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            snprintf(err, errlen, "--audio pa: '%.*s' is not OPTION=VALUE (server, sink, source, latency)",
                     (int)len, p);
            return -1;
        }
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        const char *v = eq + 1;
        if (klen == 6 && !strncmp(p, "server", 6)) {
            if (copy_opt(o->server, sizeof(o->server), v, vlen, "server", err, errlen) < 0)
                return -1;
        } else if (klen == 4 && !strncmp(p, "sink", 4)) {
            if (copy_opt(o->sink, sizeof(o->sink), v, vlen, "sink", err, errlen) < 0)
                return -1;
        } else if (klen == 6 && !strncmp(p, "source", 6)) {
            if (copy_opt(o->source, sizeof(o->source), v, vlen, "source", err, errlen) < 0)
                return -1;
        } else if (klen == 7 && !strncmp(p, "latency", 7)) {
            unsigned ms = 0;
            size_t i = 0;
            while (i < vlen && i < 4 && v[i] >= '0' && v[i] <= '9')
                ms = ms * 10 + (unsigned)(v[i++] - '0');
            if (!vlen || i != vlen || ms < MIN_LATENCY_MS || ms > MAX_LATENCY_MS) {
                snprintf(err, errlen, "--audio pa: latency='%.*s' is not a number of milliseconds %d-%d",
                         (int)vlen, v, MIN_LATENCY_MS, MAX_LATENCY_MS);
                return -1;
            }
            o->latency_ms = ms;
        } else {
            snprintf(err, errlen, "--audio pa: unknown option '%.*s' (server, sink, source, latency)",
                     (int)klen, p);
            return -1;
        }
        p += len;
    }
    return 0;
}

/* --- helpers ---------------------------------------------------------------- */

static bool sample_spec(const struct audio_format *f, pa_sample_spec *ss)
{
    /* 20- and 24-bit samples sit in 32-bit containers, high bits first, as
     * PA's S32 has them; 8-bit HDA samples have no PA format. */
    ss->format = f->bits == 16 ? PA_SAMPLE_S16LE : f->bits > 16 ? PA_SAMPLE_S32LE : PA_SAMPLE_INVALID;
    ss->rate = f->rate;
    ss->channels = (uint8_t)f->channels;
    return ss->format != PA_SAMPLE_INVALID && f->channels <= PA_CHANNELS_MAX && pa_sample_spec_valid(ss);
}

static size_t ms_bytes(const struct audio_format *f, unsigned ms)
{
    size_t b = (size_t)f->rate * ms / 1000 * audio_frame_bytes(f);
    return b ? b : audio_frame_bytes(f);
}

static void kick(struct pulse *p)
{
    uint64_t one = 1;
    /* Never blocks: the descriptor is non-blocking, and a full counter
     * means the sound thread has a wake-up pending anyway. */
    ssize_t n = write(p->kick_fd, &one, sizeof(one));
    (void)n;
}

static const char *ctx_error(struct pulse *p)
{
    return p->ctx ? pa_strerror(pa_context_errno(p->ctx)) : "no connection";
}

static bool ctx_ready(struct pulse *p)
{
    return p->ctx && pa_context_get_state(p->ctx) == PA_CONTEXT_READY;
}

static bool stream_ready(pa_stream *s)
{
    return s && pa_stream_get_state(s) == PA_STREAM_READY;
}

static void drop_stream(pa_stream **s)
{
    if (!*s)
        return;
    pa_stream_set_state_callback(*s, NULL, NULL);
    pa_stream_set_write_callback(*s, NULL, NULL);
    pa_stream_set_read_callback(*s, NULL, NULL);
    pa_stream_set_underflow_callback(*s, NULL, NULL);
    pa_stream_set_started_callback(*s, NULL, NULL);
    pa_stream_set_overflow_callback(*s, NULL, NULL);
    pa_stream_set_latency_update_callback(*s, NULL, NULL);
    if (pa_stream_get_state(*s) == PA_STREAM_READY || pa_stream_get_state(*s) == PA_STREAM_CREATING)
        pa_stream_disconnect(*s);
    pa_stream_unref(*s);
    *s = NULL;
}

/* Main-loop time events take wall-clock times. */
static struct timeval after(pa_usec_t usec)
{
    struct timeval tv;
    pa_gettimeofday(&tv);
    pa_timeval_add(&tv, usec);
    return tv;
}

static void schedule_retry(struct pulse *p)
{
    struct timeval tv = after(RETRY_US);
    if (p->retry_ev)
        p->api->time_restart(p->retry_ev, &tv);
}

static void stream_failed(struct pulse *p, const char *what)
{
    if (!p->stream_warned)
        log_warn("audio: the %s stream failed: %s; trying again", what, ctx_error(p));
    p->stream_warned = true;
    schedule_retry(p);
}

/* --- playback (sound thread) --------------------------------------------------- */

static void out_open(struct pulse *p);

/* Writes what the ring has, as much as the server takes. */
static void out_feed(struct pulse *p)
{
    struct pa_out *o = &p->out;
    bool at_switch = false;
    while (stream_ready(o->s) && !o->changing) {
        size_t want = pa_stream_writable_size(o->s);
        if (want == (size_t)-1 || want == 0)
            break;
        void *dst = NULL;
        size_t room = want;
        if (pa_stream_begin_write(o->s, &dst, &room) < 0 || !dst)
            break;
        pthread_mutex_lock(&o->lock);
        uint64_t end = o->switch_pending ? o->switch_at : o->ring.wpos;
        size_t avail = (size_t)(end - o->ring.rpos);
        unsigned fb = audio_frame_bytes(&o->fmt);
        size_t slack = ms_bytes(&o->fmt, p->o.latency_ms / 4);
        if (o->playing && avail > want + slack) {
            /* More is waiting than the server's buffer has room for: the
             * guest got ahead (its timer ran on while the server stalled and
             * played silence).  Keep the latency, not the backlog. */
            size_t skip = avail - want - slack;
            skip -= skip % fb;
            audio_ring_skip(&o->ring, skip);
            avail -= skip;
            atomic_fetch_add(&p->skipped, skip / fb);
        }
        size_t n = MIN(avail, room);
        n -= n % fb;
        audio_ring_read(&o->ring, dst, n);
        at_switch = o->switch_pending && o->ring.rpos == o->switch_at;
        /* A playing stream asks again as it plays; one that waits for its
         * start threshold needs to hear when there is more. */
        if (n < want && !at_switch && !o->playing)
            atomic_store(&o->starved, true);
        pthread_mutex_unlock(&o->lock);
        if (!n) {
            pa_stream_cancel_write(o->s);
            break;
        }
        pa_stream_write(o->s, dst, n, NULL, 0, PA_SEEK_RELATIVE);
        if (n < room)
            break;
    }
    if (at_switch && !o->changing)
        out_open(p);    /* drains the old stream first */
}

static void out_write_cb(pa_stream *s, size_t nbytes, void *opaque)
{
    out_feed(opaque);
}

static void out_started_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    p->out.playing = true;
    log_debug("audio: the server started playing");
}

static void out_underflow_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    p->out.playing = false;     /* it waits for its start threshold again */
    out_feed(p);
    if (!p->out.was_active)
        return;     /* the guest stopped: the stream ran dry on purpose */
    uint64_t n = atomic_fetch_add(&p->underruns, 1) + 1;
    pa_usec_t now = pa_rtclock_now();
    if (n == 1 || now - p->underrun_logged_at >= UNDERRUN_LOG_US) {
        log_warn("audio: playback underrun: the sound server ran out of the guest's sound "
                 "(%llu so far; a larger --audio pa,latency=MS helps a loaded host)", (unsigned long long)n);
        p->underrun_logged_at = now;
        p->underruns_logged = n;
    }
}

static void out_latency_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    pa_usec_t usec;
    int neg;
    if (pa_stream_get_latency(s, &usec, &neg) == 0)
        atomic_store(&p->latency_us, neg ? 0u : (unsigned)MIN(usec, (pa_usec_t)UINT32_MAX));
}

static void out_state_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    switch (pa_stream_get_state(s)) {
    case PA_STREAM_READY: {
        p->stream_warned = false;
        const pa_buffer_attr *a = pa_stream_get_buffer_attr(s);
        if (a)
            log_debug("audio: playback stream at %u Hz: target %u bytes, start at %u, requests of %u",
                      p->out.sfmt.rate, a->tlength, a->prebuf, a->minreq);
        out_feed(p);
        break;
    }
    case PA_STREAM_FAILED:
        if (ctx_ready(p))
            stream_failed(p, "playback");
        break;
    default:
        break;
    }
}

static void out_drained_cb(pa_stream *s, int success, void *opaque)
{
    struct pulse *p = opaque;
    if (!p->out.changing)
        return;
    p->out.changing = false;
    drop_stream(&p->out.s);
    out_open(p);
}

/* Opens the playback stream in the ring's format.  At a format change
 * whose point the ring has reached, the old stream plays out first. */
static void out_open(struct pulse *p)
{
    struct pa_out *o = &p->out;
    if (!ctx_ready(p) || o->changing)
        return;
    pthread_mutex_lock(&o->lock);
    bool switching = o->switch_pending && o->ring.rpos == o->switch_at;
    pthread_mutex_unlock(&o->lock);
    if (switching && stream_ready(o->s)) {
        o->changing = true;
        pa_operation *op = pa_stream_drain(o->s, out_drained_cb, p);
        if (op) {
            pa_operation_unref(op);
            return;
        }
        o->changing = false;
    }
    drop_stream(&o->s);

    pthread_mutex_lock(&o->lock);
    if (o->switch_pending && o->ring.rpos == o->switch_at) {
        o->fmt = o->next;
        o->switch_pending = false;
    }
    struct audio_format f = o->fmt;
    pthread_mutex_unlock(&o->lock);

    pa_sample_spec ss;
    if (!sample_spec(&f, &ss))
        return;     /* never: the device side keeps such frames out */
    o->s = pa_stream_new(p->ctx, "Burrow VM playback", &ss, NULL);
    if (!o->s) {
        stream_failed(p, "playback");
        return;
    }
    o->sfmt = f;
    o->playing = false;
    uint32_t tlength = (uint32_t)ms_bytes(&f, p->o.latency_ms);
    /* The server starts playing with half the target queued and asks for
     * more a quarter at a time: a steady guest keeps it near half full. */
    pa_buffer_attr ba = {
        .maxlength = (uint32_t)-1,
        .tlength = tlength,
        .prebuf = tlength / 2 - (tlength / 2) % audio_frame_bytes(&f),
        .minreq = tlength / 4 - (tlength / 4) % audio_frame_bytes(&f),
        .fragsize = (uint32_t)-1,
    };
    pa_stream_set_state_callback(o->s, out_state_cb, p);
    pa_stream_set_write_callback(o->s, out_write_cb, p);
    pa_stream_set_underflow_callback(o->s, out_underflow_cb, p);
    pa_stream_set_started_callback(o->s, out_started_cb, p);
    pa_stream_set_latency_update_callback(o->s, out_latency_cb, p);
    pa_stream_flags_t fl = PA_STREAM_ADJUST_LATENCY | PA_STREAM_AUTO_TIMING_UPDATE | PA_STREAM_INTERPOLATE_TIMING;
    if (pa_stream_connect_playback(o->s, p->o.sink[0] ? p->o.sink : NULL, &ba, fl, NULL, NULL) < 0)
        stream_failed(p, "playback");
}

/* The guest started or stopped its output stream. */
static void out_activity(struct pulse *p)
{
    struct pa_out *o = &p->out;
    pthread_mutex_lock(&o->lock);
    bool active = o->active;
    pthread_mutex_unlock(&o->lock);
    if (active == o->was_active)
        return;
    o->was_active = active;
    if (!active && stream_ready(o->s) && !o->changing) {
        /* Play out what is queued, even short of the start threshold.
         * (Not a drain: while one is under way the server plays what comes
         * at once, with no cushion, and a guest that starts again soon
         * would be heard in pieces.) */
        out_feed(p);
        pa_operation *op = pa_stream_trigger(o->s, NULL, NULL);
        if (op)
            pa_operation_unref(op);
    }
}

/* --- capture (sound thread) -------------------------------------------------- */

static void in_read_cb(pa_stream *s, size_t nbytes, void *opaque)
{
    struct pulse *p = opaque;
    struct pa_in *in = &p->in;
    for (;;) {
        const void *data;
        size_t n;
        if (pa_stream_peek(s, &data, &n) < 0 || n == 0)
            break;
        if (data) {
            pthread_mutex_lock(&in->lock);
            if (in->active && audio_format_equal(&in->fmt, &in->sfmt)) {
                unsigned fb = audio_frame_bytes(&in->fmt);
                size_t limit = MIN(ms_bytes(&in->fmt, CAPTURE_RING_MS + p->o.latency_ms), in->ring.cap);
                const uint8_t *d = data;
                if (n > limit) {
                    d += n - limit;
                    atomic_fetch_add(&p->overruns, (n - limit) / fb);
                    n = limit;
                }
                size_t fill = audio_ring_fill(&in->ring);
                size_t over = fill + n > limit ? fill + n - limit : 0;
                if (over) {
                    /* The guest reads too slowly: the oldest go, so the
                     * delay stays bounded. */
                    over += (fb - over % fb) % fb;
                    audio_ring_skip(&in->ring, over);
                    atomic_fetch_add(&p->overruns, over / fb);
                }
                audio_ring_write(&in->ring, d, n);
            }
            pthread_mutex_unlock(&in->lock);
        }
        pa_stream_drop(s);
    }
}

static void in_overflow_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    atomic_fetch_add(&p->overruns, 1);
}

static void in_state_cb(pa_stream *s, void *opaque)
{
    struct pulse *p = opaque;
    if (pa_stream_get_state(s) == PA_STREAM_FAILED && ctx_ready(p))
        stream_failed(p, "record");
    else if (pa_stream_get_state(s) == PA_STREAM_READY)
        p->stream_warned = false;
}

/* The record stream exists while the guest records, in its format. */
static void in_update(struct pulse *p)
{
    struct pa_in *in = &p->in;
    pthread_mutex_lock(&in->lock);
    bool active = in->active;
    struct audio_format f = in->fmt;
    pthread_mutex_unlock(&in->lock);
    if (in->s && (!active || !audio_format_equal(&f, &in->sfmt)))
        drop_stream(&in->s);
    if (!active || in->s || !ctx_ready(p))
        return;
    pa_sample_spec ss;
    if (!sample_spec(&f, &ss)) {
        log_warn("audio: PulseAudio cannot record %u Hz, %u channels, %u bits; the guest gets silence",
                 f.rate, f.channels, f.bits);
        return;
    }
    in->s = pa_stream_new(p->ctx, "Burrow VM microphone", &ss, NULL);
    if (!in->s) {
        stream_failed(p, "record");
        return;
    }
    in->sfmt = f;
    pa_buffer_attr ba = {
        .maxlength = (uint32_t)-1,
        .tlength = (uint32_t)-1,
        .prebuf = (uint32_t)-1,
        .minreq = (uint32_t)-1,
        .fragsize = (uint32_t)ms_bytes(&f, CAPTURE_FRAG_MS),
    };
    pa_stream_set_state_callback(in->s, in_state_cb, p);
    pa_stream_set_read_callback(in->s, in_read_cb, p);
    pa_stream_set_overflow_callback(in->s, in_overflow_cb, p);
    if (pa_stream_connect_record(in->s, p->o.source[0] ? p->o.source : NULL, &ba, PA_STREAM_ADJUST_LATENCY) < 0)
        stream_failed(p, "record");
}

/* --- the connection (sound thread) ------------------------------------------- */

static void ctx_state_cb(pa_context *c, void *opaque);

static void ctx_connect(struct pulse *p)
{
    pa_proplist *pl = pa_proplist_new();
    pa_proplist_sets(pl, PA_PROP_APPLICATION_NAME, "Burrow");
    pa_proplist_sets(pl, PA_PROP_APPLICATION_ID, "org.burrow.Manager");
    pa_proplist_sets(pl, PA_PROP_APPLICATION_ICON_NAME, "burrow");
    /* Samples go over the socket, not shared memory: a few hundred kB/s
     * cost nothing, a connection made after the sandbox went on needs no
     * memfd_create, and the server does not hold back a monitor's
     * recorders while it fails to pass them our memory (PulseAudio's
     * issue 824: seconds of delay). */
    pa_proplist_sets(pl, "context.force.disable.shm", "yes");
    p->ctx = pa_context_new_with_proplist(p->api, "Burrow", pl);
    pa_proplist_free(pl);
    p->failed = false;
    if (!p->ctx) {
        p->failed = true;
        schedule_retry(p);
        return;
    }
    pa_context_set_state_callback(p->ctx, ctx_state_cb, p);
    /* No autospawn: a VM never starts a sound server of its own. */
    if (pa_context_connect(p->ctx, p->o.server[0] ? p->o.server : NULL, PA_CONTEXT_NOAUTOSPAWN, NULL) < 0)
        ctx_state_cb(p->ctx, p);
}

static void ctx_drop(struct pulse *p)
{
    drop_stream(&p->out.s);
    drop_stream(&p->in.s);
    p->out.changing = false;
    if (p->ctx) {
        pa_context_set_state_callback(p->ctx, NULL, NULL);
        pa_context_disconnect(p->ctx);
        pa_context_unref(p->ctx);
        p->ctx = NULL;
    }
}

static void ctx_state_cb(pa_context *c, void *opaque)
{
    struct pulse *p = opaque;
    switch (pa_context_get_state(c)) {
    case PA_CONTEXT_READY:
        atomic_store(&p->connected, true);
        /* Connect to the same server next time, by its address: finding
         * the session's server again would make libpulse create folders,
         * which the sandbox does not allow. */
        if (!p->o.server[0] && pa_context_get_server(c))
            snprintf(p->o.server, sizeof(p->o.server), "%s", pa_context_get_server(c));
        if (p->lost_said)
            log_info("audio: connected to the PulseAudio server %s%s", pa_context_get_server(c),
                     p->ever_ready ? " again" : "");
        p->lost_said = false;
        p->ever_ready = true;
        /* What waited in the ring is stale now: start from what comes. */
        pthread_mutex_lock(&p->out.lock);
        if (p->out.switch_pending) {
            p->out.fmt = p->out.next;
            p->out.switch_pending = false;
        }
        p->out.ring.rpos = p->out.ring.wpos;
        pthread_mutex_unlock(&p->out.lock);
        out_open(p);
        in_update(p);
        pa_threaded_mainloop_signal(p->ml, 0);
        break;
    case PA_CONTEXT_FAILED:
    case PA_CONTEXT_TERMINATED:
        atomic_store(&p->connected, false);
        if (!p->lost_said)
            log_warn("audio: %s the PulseAudio server%s%s: %s; the VM runs on without sound and "
                     "tries again every %u s", p->ever_ready ? "lost" : "cannot reach",
                     p->o.server[0] ? " " : "", p->o.server, ctx_error(p),
                     (unsigned)(RETRY_US / PA_USEC_PER_SEC));
        p->lost_said = true;
        /* The context goes in the retry, outside its own callback. */
        p->failed = true;
        schedule_retry(p);
        pa_threaded_mainloop_signal(p->ml, 0);
        break;
    default:
        break;
    }
}

static void retry_cb(pa_mainloop_api *api, pa_time_event *e, const struct timeval *tv, void *opaque)
{
    struct pulse *p = opaque;
    if (p->failed || !p->ctx) {
        ctx_drop(p);
        ctx_connect(p);
        return;
    }
    /* The server is there but a stream failed (a sink that went away). */
    if (p->out.s && pa_stream_get_state(p->out.s) == PA_STREAM_FAILED)
        drop_stream(&p->out.s);
    if (p->in.s && pa_stream_get_state(p->in.s) == PA_STREAM_FAILED)
        drop_stream(&p->in.s);
    if (!p->out.s)
        out_open(p);
    in_update(p);
}

/* The device side's wake-up: data for a starved stream, a start or stop, a
 * format change. */
static void kick_cb(pa_mainloop_api *api, pa_io_event *e, int fd, pa_io_event_flags_t events, void *opaque)
{
    struct pulse *p = opaque;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    if (!ctx_ready(p))
        return;
    struct pa_out *o = &p->out;
    pthread_mutex_lock(&o->lock);
    bool other_format = !audio_format_equal(&o->fmt, &o->sfmt) && !o->switch_pending;
    pthread_mutex_unlock(&o->lock);
    if (!o->s || other_format)
        out_open(p);
    out_feed(p);
    out_activity(p);
    in_update(p);
}

/* --- the device side ------------------------------------------------------- */

/* Called with out->lock held: bytes in f from now on. */
static void out_want_format(struct pulse *p, const struct audio_format *f)
{
    struct pa_out *o = &p->out;
    const struct audio_format *cur = o->switch_pending ? &o->next : &o->fmt;
    if (audio_format_equal(cur, f))
        return;
    if (o->switch_pending) {
        /* A second change before the first was made: the frames of the
         * format in between have not been played and never will. */
        p->b.frames_dropped += (o->ring.wpos - o->switch_at) / audio_frame_bytes(&o->next);
        audio_ring_truncate(&o->ring, o->switch_at);
        if (audio_format_equal(&o->fmt, f)) {
            o->switch_pending = false;
            return;
        }
    } else {
        o->switch_pending = true;
        o->switch_at = o->ring.wpos;
    }
    o->next = *f;
}

/* Whether PulseAudio takes the format; says so once for each one it does not. */
static bool playable(struct pulse *p, const struct audio_format *f)
{
    pa_sample_spec ss;
    if (sample_spec(f, &ss))
        return true;
    if (!audio_format_equal(&p->refused, f))
        log_warn("audio: PulseAudio cannot play %u Hz, %u channels, %u bits; those frames are dropped",
                 f->rate, f->channels, f->bits);
    p->refused = *f;
    return false;
}

static size_t pulse_play(struct audio_backend *b, const struct audio_format *f, const void *buf, size_t len)
{
    struct pulse *p = (struct pulse *)b;
    struct pa_out *o = &p->out;
    unsigned fb = audio_frame_bytes(f);
    if (!playable(p, f)) {
        b->frames_dropped += len / fb;
        return len;
    }
    pthread_mutex_lock(&o->lock);
    bool changed = o->switch_pending;
    out_want_format(p, f);
    changed = changed != o->switch_pending || (o->switch_pending && o->switch_at == o->ring.wpos);
    /* The ring holds ring_ms of the guest's format (less for formats
     * beyond what it was sized for). */
    size_t limit = MIN(ms_bytes(f, p->ring_ms), o->ring.cap), fill0 = audio_ring_fill(&o->ring);
    size_t room = MIN(audio_ring_space(&o->ring), fill0 < limit ? limit - fill0 : 0);
    size_t n = MIN(len, room - room % fb);
    audio_ring_write(&o->ring, buf, n);
    size_t fill = audio_ring_fill(&o->ring);
    pthread_mutex_unlock(&o->lock);
    b->frames_dropped += (len - n) / fb;
    /* Wake the sound thread for a format change, or once a starved stream
     * has a few milliseconds to take (not for every millisecond). */
    if (changed || (fill >= ms_bytes(f, 2) && atomic_exchange(&o->starved, false)))
        kick(p);
    return n;
}

static size_t pulse_capture(struct audio_backend *b, const struct audio_format *f, void *buf, size_t len)
{
    struct pulse *p = (struct pulse *)b;
    struct pa_in *in = &p->in;
    size_t n = 0;
    bool reopen = false;
    pthread_mutex_lock(&in->lock);
    if (!audio_format_equal(&in->fmt, f)) {
        in->fmt = *f;
        in->ring.rpos = in->ring.wpos;
        in->primed = false;
        reopen = true;
    }
    /* Half the target latency, as the output's cushion. */
    if (!in->primed && audio_ring_fill(&in->ring) >= ms_bytes(f, p->o.latency_ms / 2))
        in->primed = true;
    if (in->primed) {
        unsigned fb = audio_frame_bytes(f);
        size_t fill = audio_ring_fill(&in->ring);
        n = MIN(len, fill - fill % fb);
        audio_ring_read(&in->ring, buf, n);
        if (n < len)
            in->primed = false;     /* ran dry: wait for a cushion again */
    }
    pthread_mutex_unlock(&in->lock);
    if (reopen)
        kick(p);
    return n;
}

static void pulse_set_active(struct audio_backend *b, bool out, const struct audio_format *f)
{
    struct pulse *p = (struct pulse *)b;
    if (out) {
        bool ok = f && playable(p, f);
        pthread_mutex_lock(&p->out.lock);
        p->out.active = f != NULL;
        if (ok)
            out_want_format(p, f);
        pthread_mutex_unlock(&p->out.lock);
    } else {
        pthread_mutex_lock(&p->in.lock);
        p->in.active = f != NULL;
        if (f && !audio_format_equal(&p->in.fmt, f))
            p->in.fmt = *f;
        p->in.ring.rpos = p->in.ring.wpos;
        p->in.primed = false;
        pthread_mutex_unlock(&p->in.lock);
    }
    kick(p);
}

static void pulse_stats(struct audio_backend *b, struct audio_stats *st)
{
    struct pulse *p = (struct pulse *)b;
    st->connected = atomic_load(&p->connected);
    st->underruns = atomic_load(&p->underruns);
    st->overruns = atomic_load(&p->overruns);
    st->skipped = atomic_load(&p->skipped);
    pthread_mutex_lock(&p->out.lock);
    const struct audio_format *f = &p->out.fmt;
    uint64_t ring_us = (uint64_t)audio_ring_fill(&p->out.ring) * 1000000 / ((uint64_t)f->rate * audio_frame_bytes(f));
    pthread_mutex_unlock(&p->out.lock);
    st->latency_us = (unsigned)MIN(ring_us + atomic_load(&p->latency_us), (uint64_t)UINT32_MAX);
}

static void pulse_free(struct audio_backend *b)
{
    struct pulse *p = (struct pulse *)b;
    if (p->ml) {
        pa_threaded_mainloop_lock(p->ml);
        ctx_drop(p);
        if (p->kick_ev)
            p->api->io_free(p->kick_ev);
        if (p->retry_ev)
            p->api->time_free(p->retry_ev);
        if (p->sigsys_ev)
            p->api->defer_free(p->sigsys_ev);
        pa_threaded_mainloop_unlock(p->ml);
        pa_threaded_mainloop_stop(p->ml);
        pa_threaded_mainloop_free(p->ml);
    }
    if (p->kick_fd >= 0)
        close(p->kick_fd);
    audio_ring_free(&p->out.ring);
    audio_ring_free(&p->in.ring);
    pthread_mutex_destroy(&p->out.lock);
    pthread_mutex_destroy(&p->in.lock);
    free(p);
}

static const struct audio_backend_ops pulse_ops = {
    .play = pulse_play,
    .capture = pulse_capture,
    .free = pulse_free,
    .set_active = pulse_set_active,
    .stats = pulse_stats,
};

/* libpulse's thread blocks every signal when it starts; the sandbox's
 * report of a forbidden call needs SIGSYS (blocked, the kernel kills
 * without a word).  Runs once, first thing on that thread. */
static void unblock_sigsys(pa_mainloop_api *api, pa_defer_event *e, void *opaque)
{
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
    api->defer_enable(e, 0);
}

/* A server that is not there when the VM starts is looked for, later, at
 * the session's usual socket (where PulseAudio and PipeWire listen). */
static void guess_server(struct pulse *p)
{
    const char *rt = getenv("PULSE_RUNTIME_PATH"), *xdg = getenv("XDG_RUNTIME_DIR");
    if (p->o.server[0] || getenv("PULSE_SERVER"))
        return;
    if (rt && *rt)
        snprintf(p->o.server, sizeof(p->o.server), "unix:%s/native", rt);
    else if (xdg && *xdg)
        snprintf(p->o.server, sizeof(p->o.server), "unix:%s/pulse/native", xdg);
}

static void wait_timeout_cb(pa_mainloop_api *api, pa_time_event *e, const struct timeval *tv, void *opaque)
{
    struct pulse *p = opaque;
    p->waited = true;
    pa_threaded_mainloop_signal(p->ml, 0);
}

struct audio_backend *audio_pa_new(const struct audio_pa_opts *o, char *err, size_t errlen)
{
    struct pulse *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "audio: out of memory");
        return NULL;
    }
    p->b.ops = &pulse_ops;
    p->b.name = "pa";
    p->o = *o;
    p->kick_fd = -1;
    pthread_mutex_init(&p->out.lock, NULL);
    pthread_mutex_init(&p->in.lock, NULL);
    p->out.fmt = p->out.sfmt = DEFAULT_FORMAT;
    p->in.fmt = DEFAULT_FORMAT;
    /* Sized for 48 kHz, 8 channels of 32 bits (the codec offers 16-bit
     * stereo; a larger format gets fewer milliseconds). */
    p->ring_ms = MAX(o->latency_ms, RING_MS_MIN);
    struct audio_format big = { 48000, 8, 32 };
    if (audio_ring_init(&p->out.ring, ms_bytes(&big, p->ring_ms)) < 0 ||
        audio_ring_init(&p->in.ring, ms_bytes(&big, CAPTURE_RING_MS + o->latency_ms)) < 0) {
        snprintf(err, errlen, "audio: out of memory");
        goto fail;
    }
    p->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->ml = pa_threaded_mainloop_new();
    if (p->kick_fd < 0 || !p->ml) {
        snprintf(err, errlen, "audio: cannot set up PulseAudio's thread: %s",
                 p->kick_fd < 0 ? strerror(errno) : "out of memory");
        goto fail;
    }
    pa_threaded_mainloop_set_name(p->ml, "burrow-audio");
    p->api = pa_threaded_mainloop_get_api(p->ml);
    p->kick_ev = p->api->io_new(p->api, p->kick_fd, PA_IO_EVENT_INPUT, kick_cb, p);
    p->sigsys_ev = p->api->defer_new(p->api, unblock_sigsys, p);
    struct timeval never = after(1000 * PA_USEC_PER_SEC);
    p->retry_ev = p->api->time_new(p->api, &never, retry_cb, p);
    if (!p->kick_ev || !p->retry_ev || !p->sigsys_ev) {
        snprintf(err, errlen, "audio: cannot set up PulseAudio's thread: out of memory");
        goto fail;
    }
    p->api->time_restart(p->retry_ev, NULL);
    ctx_connect(p);

    /* The sound thread takes no signals (they are the machine's), but for
     * SIGSYS: the sandbox's report must reach its handler. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pa_threaded_mainloop_start(p->ml);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        snprintf(err, errlen, "audio: cannot start PulseAudio's thread");
        goto fail;
    }

    /* Wait a little for the first word, so the log says at once whether
     * the VM will be heard; a server that is not there is no error. */
    pa_threaded_mainloop_lock(p->ml);
    struct timeval tv = after(CONNECT_WAIT_US);
    pa_time_event *wait = p->api->time_new(p->api, &tv, wait_timeout_cb, p);
    while (!ctx_ready(p) && !p->failed && !p->waited && wait)
        pa_threaded_mainloop_wait(p->ml);
    if (wait)
        p->api->time_free(wait);
    if (ctx_ready(p))
        log_info("audio: playing through the PulseAudio server %s (target latency %u ms)",
                 pa_context_get_server(p->ctx), o->latency_ms);
    else
        guess_server(p);
    pa_threaded_mainloop_unlock(p->ml);
    return &p->b;

fail:
    pulse_free(&p->b);
    return NULL;
}
