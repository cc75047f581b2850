/* Input queue and shadow surface shared by the display front-ends. */
#include "gui/ui.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

/* ---- input queue ---- */

enum { EV_KEY, EV_POINTER, EV_POINTER_ABS, EV_CLOSE };

struct ui_input_event {
    uint8_t type;
    bool down;
    keymap_key key;
    int dx, dy, dz;             /* EV_POINTER_ABS: dx, dy are the position */
    int width, height;
    unsigned buttons;
    bool first_abs;             /* the first position ever queued */
};

/* A viewer that floods input faster than the I/O thread takes it loses the
 * excess rather than growing memory without bound. */
#define QUEUE_MAX 4096

struct ui_input_queue {
    struct evloop *loop;
    int efd;
    const struct ui_input_ops *ops;
    void *opaque;
    pthread_mutex_t lock;
    struct ui_input_event *evs;
    unsigned n, cap;
    bool dropped;
    bool had_abs;             /* an absolute position has been queued before */
};

static void queue_drain(void *opaque, int fd, unsigned events)
{
    struct ui_input_queue *q = opaque;
    struct ui_input_event *evs;
    unsigned n, cap;
    uint64_t v;

    if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("input queue: eventfd read: %s", strerror(errno));

    /* Take the whole batch so producers never wait for the machine. */
    pthread_mutex_lock(&q->lock);
    evs = q->evs;
    n = q->n;
    cap = q->cap;
    q->evs = NULL;
    q->n = q->cap = 0;
    if (q->dropped) {
        log_warn("input queue: events dropped (a viewer sent them faster than the machine took them)");
        q->dropped = false;
    }
    pthread_mutex_unlock(&q->lock);

    for (unsigned i = 0; i < n; i++) {
        const struct ui_input_event *e = &evs[i];
        switch (e->type) {
        case EV_KEY:
            if (q->ops->key)
                q->ops->key(q->opaque, e->key, e->down);
            break;
        case EV_POINTER:
            if (q->ops->pointer)
                q->ops->pointer(q->opaque, e->dx, e->dy, e->dz, e->buttons);
            break;
        case EV_POINTER_ABS:
            if (q->ops->pointer_abs)
                q->ops->pointer_abs(q->opaque, e->dx, e->dy, e->width, e->height, e->dz, e->buttons);
            break;
        case EV_CLOSE:
            if (q->ops->close)
                q->ops->close(q->opaque);
            break;
        }
    }

    /* Hand the array back for reuse unless producers started a new one. */
    pthread_mutex_lock(&q->lock);
    if (!q->evs) {
        q->evs = evs;
        q->cap = cap;
        evs = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    free(evs);
}

struct ui_input_queue *ui_input_queue_new(struct evloop *loop, const struct ui_input_ops *ops,
                                          void *opaque)
{
    struct ui_input_queue *q = calloc(1, sizeof(*q));

    if (!q)
        return NULL;
    q->loop = loop;
    q->ops = ops;
    q->opaque = opaque;
    pthread_mutex_init(&q->lock, NULL);
    q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->efd < 0 || evloop_add_fd(loop, q->efd, EVLOOP_IN, queue_drain, q) < 0) {
        log_error("input queue: %s", strerror(errno));
        if (q->efd >= 0)
            close(q->efd);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    return q;
}

void ui_input_queue_free(struct ui_input_queue *q)
{
    if (!q)
        return;
    evloop_del_fd(q->loop, q->efd);
    close(q->efd);
    pthread_mutex_destroy(&q->lock);
    free(q->evs);
    free(q);
}

static void queue_push(struct ui_input_queue *q, const struct ui_input_event *e)
{
    bool wake;

    pthread_mutex_lock(&q->lock);
    /* Motion with unchanged buttons adds up: fewer, larger mouse packets.
     * Wheel notches stay apart, so that up-then-down is not lost. */
    if (e->type == EV_POINTER && e->dz == 0 && q->n && q->evs[q->n - 1].type == EV_POINTER &&
        q->evs[q->n - 1].buttons == e->buttons && q->evs[q->n - 1].dz == 0) {
        struct ui_input_event *last = &q->evs[q->n - 1];
        last->dx += e->dx;
        last->dy += e->dy;
        pthread_mutex_unlock(&q->lock);
        return;
    }
    /* Likewise a position replaces the one before it, but for the very
     * first: it is where PS/2 motion made from positions starts, so the
     * next one must not take its place. */
    if (e->type == EV_POINTER_ABS && e->dz == 0 && q->n && q->evs[q->n - 1].type == EV_POINTER_ABS &&
        q->evs[q->n - 1].buttons == e->buttons && q->evs[q->n - 1].dz == 0 &&
        !q->evs[q->n - 1].first_abs) {
        q->evs[q->n - 1] = *e;
        pthread_mutex_unlock(&q->lock);
        return;
    }
    if (q->n == q->cap) {
        unsigned cap = q->cap ? q->cap * 2 : 64;
        struct ui_input_event *evs = cap <= QUEUE_MAX ? realloc(q->evs, cap * sizeof(*evs)) : NULL;
        if (!evs) {
            q->dropped = true;
            pthread_mutex_unlock(&q->lock);
            return;
        }
        q->evs = evs;
        q->cap = cap;
    }
    wake = q->n == 0;
    q->evs[q->n] = *e;
    if (e->type == EV_POINTER_ABS && !q->had_abs)
        q->evs[q->n].first_abs = q->had_abs = true;
    q->n++;
    pthread_mutex_unlock(&q->lock);
    if (wake) {
        uint64_t one = 1;
        if (write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_warn("input queue: eventfd write: %s", strerror(errno));
    }
}

void ui_input_key(struct ui_input_queue *q, keymap_key key, bool down)
{
    struct ui_input_event e = { .type = EV_KEY, .key = key, .down = down };

    if (q && key)
        queue_push(q, &e);
}

void ui_input_pointer(struct ui_input_queue *q, int dx, int dy, int dz, unsigned buttons)
{
    struct ui_input_event e = { .type = EV_POINTER, .dx = dx, .dy = dy, .dz = dz,
                                .buttons = buttons };
    if (q)
        queue_push(q, &e);
}

void ui_input_pointer_abs(struct ui_input_queue *q, int x, int y, int width, int height, int dz,
                          unsigned buttons)
{
    struct ui_input_event e = { .type = EV_POINTER_ABS, .dx = x, .dy = y, .dz = dz,
                                .width = width, .height = height, .buttons = buttons };
    if (q)
        queue_push(q, &e);
}

void ui_input_close(struct ui_input_queue *q)
{
    struct ui_input_event e = { .type = EV_CLOSE };
    if (q)
        queue_push(q, &e);
}

/* ---- shadow surface ---- */

static void shadow_resize(void *opaque, const struct display_surface *s)
{
    struct ui_shadow *sh = opaque;
    unsigned w = s && s->pixels ? s->width : 0, h = s && s->pixels ? s->height : 0;

    pthread_mutex_lock(&sh->lock);
    if (w != sh->width || h != sh->height) {
        uint32_t *p = NULL;
        if (w && h && !(p = malloc((size_t)w * h * 4))) {
            log_error("display front-end: no memory for a %ux%u picture", w, h);
            w = h = 0;
        }
        free(sh->pixels);
        sh->pixels = p;
        sh->width = w;
        sh->height = h;
    }
    for (unsigned y = 0; y < h; y++)
        memcpy(sh->pixels + (size_t)y * w, (const uint8_t *)s->pixels + (size_t)y * s->stride,
               (size_t)w * 4);
    sh->resized = true;
    sh->ndirty = 0;
    pthread_mutex_unlock(&sh->lock);
    if (sh->notify)
        sh->notify(sh->notify_opaque);
}

static bool rects_touch(const struct display_rect *a, const struct display_rect *b)
{
    return a->x <= b->x + b->w && b->x <= a->x + a->w &&
           a->y <= b->y + b->h && b->y <= a->y + a->h;
}

static void rect_union(struct display_rect *a, const struct display_rect *b)
{
    unsigned x1 = MIN(a->x, b->x), y1 = MIN(a->y, b->y);
    unsigned x2 = MAX(a->x + a->w, b->x + b->w), y2 = MAX(a->y + a->h, b->y + b->h);
    *a = (struct display_rect){ x1, y1, x2 - x1, y2 - y1 };
}

static void add_dirty(struct ui_shadow *sh, struct display_rect r)
{
    for (unsigned i = 0; i < sh->ndirty; i++) {
        if (rects_touch(&sh->dirty[i], &r)) {
            rect_union(&r, &sh->dirty[i]);
            sh->dirty[i] = sh->dirty[--sh->ndirty];
            i = (unsigned)-1;            /* the bigger one may touch others now */
        }
    }
    if (sh->ndirty == UI_SHADOW_RECTS) {
        for (unsigned i = 1; i < sh->ndirty; i++)
            rect_union(&sh->dirty[0], &sh->dirty[i]);
        rect_union(&sh->dirty[0], &r);
        sh->ndirty = 1;
        return;
    }
    sh->dirty[sh->ndirty++] = r;
}

static void shadow_update(void *opaque, unsigned x, unsigned y, unsigned w, unsigned h)
{
    struct ui_shadow *sh = opaque;
    const struct display_surface *s = display_surface(sh->display);

    pthread_mutex_lock(&sh->lock);
    /* The display clips to its surface; the shadow has the same size unless
     * an allocation failed, so clip again rather than trust it. */
    if (!s || !s->pixels || s->width != sh->width || s->height != sh->height ||
        x >= sh->width || y >= sh->height) {
        pthread_mutex_unlock(&sh->lock);
        return;
    }
    w = MIN(w, sh->width - x);
    h = MIN(h, sh->height - y);
    for (unsigned row = y; row < y + h; row++)
        memcpy(sh->pixels + (size_t)row * sh->width + x,
               (const uint8_t *)s->pixels + (size_t)row * s->stride + (size_t)x * 4,
               (size_t)w * 4);
    if (!sh->resized)
        add_dirty(sh, (struct display_rect){ x, y, w, h });
    pthread_mutex_unlock(&sh->lock);
    if (sh->notify)
        sh->notify(sh->notify_opaque);
}

static const struct display_listener_ops shadow_listener = {
    .resize = shadow_resize,
    .update = shadow_update,
};

int ui_shadow_attach(struct ui_shadow *sh, struct display *d,
                     void (*notify)(void *opaque), void *opaque)
{
    memset(sh, 0, sizeof(*sh));
    pthread_mutex_init(&sh->lock, NULL);
    sh->display = d;
    sh->notify = notify;
    sh->notify_opaque = opaque;
    int id = display_add_listener(d, &shadow_listener, sh);
    if (id < 0)
        pthread_mutex_destroy(&sh->lock);
    return id;
}

void ui_shadow_detach(struct ui_shadow *sh, struct display *d, int id)
{
    display_remove_listener(d, id);
    free(sh->pixels);
    sh->pixels = NULL;
    pthread_mutex_destroy(&sh->lock);
}
