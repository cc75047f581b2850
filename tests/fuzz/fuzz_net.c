/* The reflecting network backend of the NIC fuzz targets (fuzz_net.h). */
#include "fuzz/fuzz_net.h"

#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"

#define ECHO_MAX 64            /* frames held for the next round */

struct fz_net {
    struct net_backend nb;
    struct evloop *loop;
    int timer;                 /* 0: none pending */
    struct net_frame *head, *tail;
    unsigned n;
};

static void echo_cb(void *opaque)
{
    struct fz_net *s = opaque;
    s->timer = 0;
    struct net_frame *fr = s->head;
    s->head = s->tail = NULL;
    s->n = 0;
    while (fr) {
        struct net_frame *next = fr->next;
        net_backend_deliver(&s->nb, fr->data, fr->len);
        free(fr);
        fr = next;
    }
}

static void fz_transmit(struct net_backend *nb, const uint8_t *frame, size_t len)
{
    struct fz_net *s = (struct fz_net *)nb;
    if (s->n == ECHO_MAX)
        return;
    struct net_frame *fr = malloc(sizeof(*fr) + len);
    if (!fr)
        return;
    fr->next = NULL;
    fr->len = len;
    memcpy(fr->data, frame, len);
    if (s->tail)
        s->tail->next = fr;
    else
        s->head = fr;
    s->tail = fr;
    s->n++;
    if (!s->timer)
        s->timer = evloop_add_timer(s->loop, 0, echo_cb, s);
}

static void fz_destroy(struct net_backend *nb)
{
    struct fz_net *s = (struct fz_net *)nb;
    if (s->timer)
        evloop_del_timer(s->loop, s->timer);
    while (s->head) {
        struct net_frame *next = s->head->next;
        free(s->head);
        s->head = next;
    }
    net_backend_purge(nb);
    free(nb->txbuf);
    free(s);
}

static const struct net_backend_ops fz_net_ops = { fz_transmit, fz_destroy };

struct net_backend *fz_net_new(struct evloop *loop)
{
    struct fz_net *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    net_backend_init(&s->nb, &fz_net_ops, "fuzz");
    s->loop = loop;
    return &s->nb;
}

void fz_net_op(struct fz *f, struct net_backend *nb, const uint8_t mac[6], unsigned arg)
{
    if (arg >= 6) {
        net_backend_set_link(nb, arg == 7);
        return;
    }
    static uint8_t frame[NET_MAX_FRAME];
    size_t len = (size_t)fz_le(f, 2);
    /* The frame's bytes come from the input; a long frame repeats them. */
    size_t have = fz_bytes(f, frame, len < 2048 ? len : 2048);
    for (size_t i = have; i < len && have; i++)
        frame[i] = frame[i % have];
    if (len > have && !have)
        memset(frame, 0, len);
    if (!(arg & 1) && len >= 6)
        memcpy(frame, mac, 6);
    net_backend_deliver(nb, frame, len);
}
