/* The display surface, its dirty rectangles, listeners and refresh timer. */
#include "devices/display.h"

#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"
#include "devices/util.h"

#define MAX_LISTENERS 16

struct listener {
    const struct display_listener_ops *ops;
    void *opaque;
    bool used;
};

struct display {
    struct display_surface surf;
    struct display_rect rects[DISPLAY_MAX_RECTS];
    unsigned nrects;
    struct listener listeners[MAX_LISTENERS];
    unsigned nlisteners;
    const struct display_source_ops *src;
    void *src_opaque;
    struct evloop *loop;
    int timer;          /* -1 when not armed */
    bool in_refresh;
};

static void arm_timer(struct display *d);

struct display *display_new(struct evloop *loop)
{
    struct display *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = loop;
    d->timer = -1;
    return d;
}

void display_free(struct display *d)
{
    if (!d)
        return;
    if (d->timer >= 0 && d->loop)
        evloop_del_timer(d->loop, d->timer);
    free(d->surf.pixels);
    free(d);
}

void display_set_source(struct display *d, const struct display_source_ops *ops, void *opaque)
{
    d->src = ops;
    d->src_opaque = opaque;
}

const struct display_surface *display_surface(const struct display *d)
{
    return &d->surf;
}

int display_resize(struct display *d, unsigned width, unsigned height)
{
    width = MIN(MAX(width, 1u), (unsigned)DISPLAY_MAX_WIDTH);
    height = MIN(MAX(height, 1u), (unsigned)DISPLAY_MAX_HEIGHT);
    if (width != d->surf.width || height != d->surf.height) {
        uint32_t *px = calloc((size_t)width * height, sizeof(uint32_t));
        if (!px) {
            log_error("display: no memory for a %ux%u surface", width, height);
            return -1;
        }
        free(d->surf.pixels);
        d->surf = (struct display_surface){ width, height, width * 4, px };
        d->nrects = 0;
        for (unsigned i = 0; i < MAX_LISTENERS; i++) {
            struct listener *l = &d->listeners[i];
            if (l->used && l->ops->resize)
                l->ops->resize(l->opaque, &d->surf);
        }
    }
    display_dirty(d, 0, 0, width, height);
    return 0;
}

static bool touches(const struct display_rect *a, const struct display_rect *b)
{
    return a->x <= b->x + b->w && b->x <= a->x + a->w &&
           a->y <= b->y + b->h && b->y <= a->y + a->h;
}

static void merge(struct display_rect *a, const struct display_rect *b)
{
    unsigned x0 = MIN(a->x, b->x), y0 = MIN(a->y, b->y);
    unsigned x1 = MAX(a->x + a->w, b->x + b->w), y1 = MAX(a->y + a->h, b->y + b->h);
    *a = (struct display_rect){ x0, y0, x1 - x0, y1 - y0 };
}

void display_dirty(struct display *d, unsigned x, unsigned y, unsigned w, unsigned h)
{
    if (x >= d->surf.width || y >= d->surf.height || !w || !h)
        return;
    w = MIN(w, d->surf.width - x);
    h = MIN(h, d->surf.height - y);
    struct display_rect r = { x, y, w, h };

    /* Merge with every rectangle it touches; a merge can make the grown
     * rectangle touch others, so repeat until it stands alone. */
    bool again = true;
    while (again) {
        again = false;
        for (unsigned i = 0; i < d->nrects; i++) {
            if (touches(&d->rects[i], &r)) {
                merge(&r, &d->rects[i]);
                d->rects[i] = d->rects[--d->nrects];
                again = true;
                break;
            }
        }
    }
    if (d->nrects == DISPLAY_MAX_RECTS) {
        for (unsigned i = 0; i < d->nrects; i++)
            merge(&r, &d->rects[i]);
        d->nrects = 0;
    }
    d->rects[d->nrects++] = r;
}

const struct display_rect *display_pending(const struct display *d, unsigned *n)
{
    *n = d->nrects;
    return d->rects;
}

void display_refresh(struct display *d)
{
    if (d->in_refresh)
        return;
    d->in_refresh = true;
    if (d->src && d->src->refresh)
        d->src->refresh(d->src_opaque, d);
    /* Copy first: a listener's callback must not see a list that changes. */
    struct display_rect rects[DISPLAY_MAX_RECTS];
    unsigned n = d->nrects;
    memcpy(rects, d->rects, n * sizeof(rects[0]));
    d->nrects = 0;
    for (unsigned r = 0; r < n; r++) {
        for (unsigned i = 0; i < MAX_LISTENERS; i++) {
            struct listener *l = &d->listeners[i];
            if (l->used && l->ops->update)
                l->ops->update(l->opaque, rects[r].x, rects[r].y, rects[r].w, rects[r].h);
        }
    }
    d->in_refresh = false;
}

bool display_get_text(struct display *d, struct display_text *t)
{
    memset(t, 0, sizeof(*t));
    if (!d->src || !d->src->get_text)
        return false;
    return d->src->get_text(d->src_opaque, t);
}

static void timer_cb(void *opaque)
{
    struct display *d = opaque;
    d->timer = -1;
    if (!d->nlisteners)
        return;
    display_refresh(d);
    arm_timer(d);
}

static void arm_timer(struct display *d)
{
    if (!d->loop || d->timer >= 0 || !d->nlisteners)
        return;
    d->timer = evloop_add_timer(d->loop, 1000000000ULL / DISPLAY_REFRESH_HZ, timer_cb, d);
    if (d->timer < 0)
        log_error("display: cannot arm the refresh timer");
}

int display_add_listener(struct display *d, const struct display_listener_ops *ops, void *opaque)
{
    for (unsigned i = 0; i < MAX_LISTENERS; i++) {
        struct listener *l = &d->listeners[i];
        if (l->used)
            continue;
        *l = (struct listener){ ops, opaque, true };
        d->nlisteners++;
        if (ops->resize && d->surf.pixels)
            ops->resize(opaque, &d->surf);
        arm_timer(d);
        return (int)i;
    }
    return -1;
}

void display_remove_listener(struct display *d, int id)
{
    if (id < 0 || id >= MAX_LISTENERS || !d->listeners[id].used)
        return;
    d->listeners[id].used = false;
    d->nlisteners--;
    if (!d->nlisteners && d->timer >= 0 && d->loop) {
        evloop_del_timer(d->loop, d->timer);
        d->timer = -1;
    }
}
