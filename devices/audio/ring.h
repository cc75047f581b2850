/* A byte ring between a sound device and a sound server's thread.  It has
 * no lock of its own: its owner holds one around each call, for the length
 * of a copy.  Positions count every byte ever written or read, so a byte's
 * position names it even after the ring wrapped. */
#ifndef BURROW_AUDIO_RING_H
#define BURROW_AUDIO_RING_H

#include <stddef.h>
#include <stdint.h>

struct audio_ring {
    uint8_t *buf;
    size_t cap;
    uint64_t rpos, wpos;        /* wpos - rpos bytes are held */
};

int audio_ring_init(struct audio_ring *r, size_t cap);
void audio_ring_free(struct audio_ring *r);

static inline size_t audio_ring_fill(const struct audio_ring *r)
{
    return (size_t)(r->wpos - r->rpos);
}

static inline size_t audio_ring_space(const struct audio_ring *r)
{
    return r->cap - audio_ring_fill(r);
}

/* Appends up to len bytes; returns how many fitted. */
size_t audio_ring_write(struct audio_ring *r, const void *p, size_t len);
/* Takes up to len bytes from the front; returns how many. */
size_t audio_ring_read(struct audio_ring *r, void *p, size_t len);
/* Forgets up to n bytes at the front (the oldest). */
void audio_ring_skip(struct audio_ring *r, size_t n);
/* Forgets what was written after position pos (pos between rpos and wpos). */
void audio_ring_truncate(struct audio_ring *r, uint64_t pos);

#endif
