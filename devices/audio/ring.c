/* The byte ring of audio backends with a thread (ring.h). */
#include "devices/audio/ring.h"

#include <stdlib.h>
#include <string.h>

int audio_ring_init(struct audio_ring *r, size_t cap)
{
    r->buf = malloc(cap ? cap : 1);
    r->cap = cap;
    r->rpos = r->wpos = 0;
    return r->buf ? 0 : -1;
}

void audio_ring_free(struct audio_ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

size_t audio_ring_write(struct audio_ring *r, const void *p, size_t len)
{
    size_t n = len < audio_ring_space(r) ? len : audio_ring_space(r);
    if (!n)
        return 0;
    size_t at = (size_t)(r->wpos % r->cap), first = n < r->cap - at ? n : r->cap - at;
    memcpy(r->buf + at, p, first);
    memcpy(r->buf, (const uint8_t *)p + first, n - first);
    r->wpos += n;
    return n;
}

size_t audio_ring_read(struct audio_ring *r, void *p, size_t len)
{
    size_t n = len < audio_ring_fill(r) ? len : audio_ring_fill(r);
    if (!n)
        return 0;
    size_t at = (size_t)(r->rpos % r->cap), first = n < r->cap - at ? n : r->cap - at;
    memcpy(p, r->buf + at, first);
    memcpy((uint8_t *)p + first, r->buf, n - first);
    r->rpos += n;
    return n;
}

void audio_ring_skip(struct audio_ring *r, size_t n)
{
    r->rpos += n < audio_ring_fill(r) ? n : audio_ring_fill(r);
}

void audio_ring_truncate(struct audio_ring *r, uint64_t pos)
{
    if (pos >= r->rpos && pos <= r->wpos)
        r->wpos = pos;
}
