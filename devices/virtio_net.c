/* virtio network device (virtio 1.2, 5.1). */
#include "devices/virtio_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"
#include "devices/net/net.h"
#include "devices/net/offload.h"
#include "devices/util.h"
#include "devices/virtio_pci.h"

/* Feature bits (5.1.3) */
#define VIRTIO_NET_F_CSUM        0
#define VIRTIO_NET_F_GUEST_CSUM  1
#define VIRTIO_NET_F_MAC         5
#define VIRTIO_NET_F_GUEST_TSO4  7
#define VIRTIO_NET_F_HOST_TSO4   11
#define VIRTIO_NET_F_HOST_TSO6   12
#define VIRTIO_NET_F_HOST_ECN    13
#define VIRTIO_NET_F_MRG_RXBUF   15
#define VIRTIO_NET_F_STATUS      16

/* struct virtio_net_config (5.1.4) */
#define CFG_MAC                  0x00
#define CFG_STATUS               0x06
#define CFG_MAX_VQ_PAIRS         0x08
#define CFG_MTU                  0x0a
#define CFG_SIZE                 0x14
#define VIRTIO_NET_S_LINK_UP     1

/* struct virtio_net_hdr (5.1.6): with VERSION_1 always 12 bytes, the last
 * two being num_buffers. */
#define HDR_FLAGS                0
#define HDR_GSO_TYPE             1
#define HDR_HDR_LEN              2
#define HDR_GSO_SIZE             4
#define HDR_CSUM_START           6
#define HDR_CSUM_OFFSET          8
#define HDR_NUM_BUFFERS          10
#define HDR_SIZE                 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE  0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP   3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN   0x80

#define RXQ 0
#define TXQ 1
#define QUEUE_SIZE 256
/* A frame without segmentation: 1500-byte MTU, Ethernet header, VLAN tag. */
#define MAX_PLAIN_FRAME (1500 + 14 + 4)
/* Chains handled per notification before yielding to the event loop. */
#define TX_BUDGET 256

struct virtio_net {
    struct virtio_pci vp;
    struct platform *plat;
    struct net_backend *nb;
    uint8_t config[CFG_SIZE];
    uint8_t *rom;
    /* Receive chains popped but not yet used, oldest first. */
    struct virtq_elem *rx_stash[QUEUE_SIZE];
    unsigned rx_n;
    size_t rx_bytes;           /* device-writable bytes in the stash */
    bool rx_too_big_reported;
    uint8_t *txbuf;            /* header + frame gathered from a chain */
    uint8_t *segbuf;           /* one TSO segment */
    int tx_timer;              /* continues a long transmit burst, 0 if none */
    struct virtio_net_counters counters;
};

/* --- receive ------------------------------------------------------------ */

static void rx_stash_drop(struct virtio_net *n)
{
    for (unsigned i = 0; i < n->rx_n; i++)
        free(n->rx_stash[i]);
    n->rx_n = 0;
    n->rx_bytes = 0;
}

/* Pops receive chains until the stash holds `need` bytes or the ring is
 * empty.  Returns false when the queue broke. */
static bool rx_fill(struct virtio_net *n, size_t need)
{
    struct virtqueue *vq = virtio_pci_vq(&n->vp, RXQ);
    while (n->rx_bytes < need && n->rx_n < QUEUE_SIZE) {
        struct virtq_elem *e;
        int r = virtq_pop(vq, &e);
        if (r < 0)
            return false;
        if (r == 0)
            break;
        if (e->n_out) {
            /* 5.1.6.3: receive buffers are device-writable only. */
            free(e);
            virtq_set_broken(vq, "virtio-net: receive chain with device-readable buffers");
            return false;
        }
        n->rx_stash[n->rx_n++] = e;
        n->rx_bytes += e->in_len;
    }
    return true;
}

static bool rx_running(struct virtio_net *n)
{
    struct virtqueue *vq = virtio_pci_vq(&n->vp, RXQ);
    return virtio_pci_running(&n->vp) && n->vp.queues[RXQ].enabled && vq->ready && !vq->broken;
}

static bool net_can_receive(void *opaque)
{
    struct virtio_net *n = opaque;
    if (!rx_running(n))
        return true;   /* receive() drops: nobody would ever take it */
    return n->rx_n > 0 || virtq_has_work(virtio_pci_vq(&n->vp, RXQ));
}

static bool net_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    if (!rx_running(n))
        return true;
    bool mrg = virtio_pci_has_feature(&n->vp, VIRTIO_NET_F_MRG_RXBUF);
    size_t need = HDR_SIZE + len;
    if (!rx_fill(n, mrg ? need : 1))
        return true;   /* queue broken: the device waits for a reset */
    if (n->rx_n == 0)
        return false;

    unsigned k;   /* chains this frame takes */
    if (mrg) {
        if (n->rx_bytes < need) {
            if (n->rx_n < QUEUE_SIZE)
                return false;   /* wait for more buffers */
            k = 0;              /* the whole ring cannot hold it */
        } else {
            size_t acc = 0;
            for (k = 0; acc < need; k++)
                acc += n->rx_stash[k]->in_len;
        }
    } else {
        k = n->rx_stash[0]->in_len >= need ? 1 : 0;
    }
    if (k == 0) {
        n->counters.rx_too_big++;
        if (!n->rx_too_big_reported) {
            log_guest_error("virtio-net: receive buffers too small for a %zu-byte frame; dropped", len);
            n->rx_too_big_reported = true;
        }
        return true;   /* the frame is lost, the buffers stay for the next */
    }

    uint8_t hdr[HDR_SIZE] = { 0 };
    hdr[HDR_FLAGS] = 0;                         /* slirp's checksums are complete */
    hdr[HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_NONE;
    st_le(hdr + HDR_NUM_BUFFERS, 2, k);         /* 5.1.6.4: 1 without MRG_RXBUF */
    size_t done = 0;   /* bytes of header + frame written so far */
    struct virtqueue *vq = virtio_pci_vq(&n->vp, RXQ);
    for (unsigned i = 0; i < k; i++) {
        struct virtq_elem *e = n->rx_stash[i];
        size_t w = 0;
        while (w < e->in_len && done < need) {
            size_t c;
            if (done < HDR_SIZE)
                c = iov_from_buf(e->in, e->n_in, w, hdr + done, MIN(HDR_SIZE - done, e->in_len - w));
            else
                c = iov_from_buf(e->in, e->n_in, w, frame + (done - HDR_SIZE),
                                 MIN(need - done, e->in_len - w));
            w += c;
            done += c;
        }
        n->rx_bytes -= e->in_len;
        virtq_push(vq, e, (uint32_t)w);
    }
    n->rx_n -= k;
    memmove(n->rx_stash, n->rx_stash + k, n->rx_n * sizeof(n->rx_stash[0]));
    virtio_pci_queue_done(&n->vp, RXQ);
    return true;
}

static void net_link_changed(void *opaque, bool up)
{
    struct virtio_net *n = opaque;
    n->config[CFG_STATUS] = up ? VIRTIO_NET_S_LINK_UP : 0;
    virtio_pci_config_changed(&n->vp);
}

static const struct net_nic_ops nic_ops = {
    .can_receive = net_can_receive,
    .receive = net_receive,
    .link_changed = net_link_changed,
};

/* --- transmit ----------------------------------------------------------- */

static void emit_segment(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    struct iovec iov = { (void *)frame, len };
    net_backend_send(n->nb, &iov, 1);
}

static void tx_error(struct virtio_net *n, const char *why, size_t len)
{
    n->counters.tx_errors++;
    log_guest_error("virtio-net: transmit of %zu bytes dropped: %s", len, why);
}

/* One packet as the driver described it (5.1.6.2). */
static void tx_frame(struct virtio_net *n, const uint8_t *hdr, uint8_t *frame, size_t len)
{
    uint8_t flags = hdr[HDR_FLAGS], gso = hdr[HDR_GSO_TYPE];
    uint16_t gso_size = (uint16_t)ld_le(hdr + HDR_GSO_SIZE, 2);
    uint16_t csum_start = (uint16_t)ld_le(hdr + HDR_CSUM_START, 2);
    uint16_t csum_offset = (uint16_t)ld_le(hdr + HDR_CSUM_OFFSET, 2);

    if (len < NET_ETH_HLEN) {
        tx_error(n, "shorter than an Ethernet header", len);
        return;
    }
    if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !virtio_pci_has_feature(&n->vp, VIRTIO_NET_F_HOST_ECN)) {
        tx_error(n, "GSO_ECN without HOST_ECN", len);
        return;
    }
    gso &= (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        bool v6 = gso == VIRTIO_NET_HDR_GSO_TCPV6;
        if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && !v6) ||
            !virtio_pci_has_feature(&n->vp, v6 ? VIRTIO_NET_F_HOST_TSO6 : VIRTIO_NET_F_HOST_TSO4)) {
            tx_error(n, "segmentation type not negotiated", len);
            return;
        }
        struct net_tso t;
        if (net_parse_l4(frame, len, &t) < 0 || t.udp || t.ipv6 != v6) {
            tx_error(n, "GSO packet is not TCP over the IP version it claims", len);
            return;
        }
        if (gso_size == 0 || gso_size > MAX_PLAIN_FRAME - t.hdr_len) {
            tx_error(n, "bad gso_size", len);
            return;
        }
        t.mss = gso_size;
        if (len <= t.hdr_len) {
            tx_error(n, "GSO packet without payload", len);
            return;
        }
        if (net_tso_segment(frame, len, &t, n->segbuf, NET_MAX_FRAME, emit_segment, n) < 0)
            tx_error(n, "inconsistent headers for segmentation", len);
        return;
    }
    if (len > MAX_PLAIN_FRAME) {
        tx_error(n, "larger than the MTU without segmentation", len);
        return;
    }
    if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!virtio_pci_has_feature(&n->vp, VIRTIO_NET_F_CSUM)) {
            tx_error(n, "NEEDS_CSUM without VIRTIO_NET_F_CSUM", len);
            return;
        }
        if (net_csum_insert(frame, len, csum_start, (size_t)csum_start + csum_offset, len) < 0) {
            tx_error(n, "checksum offsets outside the packet", len);
            return;
        }
    }
    emit_segment(n, frame, len);
}

static void tx_process(struct virtio_net *n);

static void tx_continue(void *opaque)
{
    struct virtio_net *n = opaque;
    n->tx_timer = 0;
    tx_process(n);
}

static void tx_process(struct virtio_net *n)
{
    struct virtqueue *vq = virtio_pci_vq(&n->vp, TXQ);
    struct virtq_elem *e;
    unsigned budget = TX_BUDGET;
    bool pushed = false;
    int r = 0;
    if (!virtio_pci_running(&n->vp))
        return;
    while (budget && (r = virtq_pop(vq, &e)) == 1) {
        budget--;
        if (e->n_in) {
            /* 5.1.6.2: transmit buffers are device-readable only. */
            free(e);
            virtq_set_broken(vq, "virtio-net: transmit chain with device-writable buffers");
            r = -1;
            break;
        }
        size_t total = e->out_len;
        if (total < HDR_SIZE) {
            tx_error(n, "chain shorter than virtio_net_hdr", total);
        } else if (total - HDR_SIZE > NET_MAX_FRAME) {
            tx_error(n, "larger than any frame", total - HDR_SIZE);
        } else {
            iov_to_buf(e->out, e->n_out, 0, n->txbuf, total);
            /* Work on our copy: the guest may rewrite its buffer at any time. */
            tx_frame(n, n->txbuf, n->txbuf + HDR_SIZE, total - HDR_SIZE);
        }
        virtq_push(vq, e, 0);
        pushed = true;
    }
    if (pushed)
        virtio_pci_queue_done(&n->vp, TXQ);
    if (r == 1 && !budget && !n->tx_timer && n->plat->loop) {
        /* More is waiting: carry on after other work had its turn. */
        n->tx_timer = evloop_add_timer(n->plat->loop, 0, tx_continue, n);
        if (n->tx_timer < 0)
            n->tx_timer = 0;
    }
}

/* --- transport hooks ---------------------------------------------------- */

static uint64_t net_config_read(void *opaque, unsigned off, unsigned size)
{
    struct virtio_net *n = opaque;
    if (off + size > CFG_SIZE)
        return 0;
    return ld_le(n->config + off, size);
}

static void net_queue_notify(void *opaque, unsigned q)
{
    struct virtio_net *n = opaque;
    if (q == RXQ)
        net_backend_rx_ready(n->nb);   /* new buffers: queued frames go in */
    else if (q == TXQ)
        tx_process(n);
}

static void net_reset(void *opaque)
{
    struct virtio_net *n = opaque;
    rx_stash_drop(n);
    n->rx_too_big_reported = false;
    if (n->tx_timer) {
        evloop_del_timer(n->plat->loop, n->tx_timer);
        n->tx_timer = 0;
    }
    net_backend_purge(n->nb);
}

static void net_driver_ok(void *opaque)
{
    struct virtio_net *n = opaque;
    net_backend_rx_ready(n->nb);
}

static const struct virtio_device_ops net_ops = {
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .driver_ok = net_driver_ok,
};

/* --- creation ----------------------------------------------------------- */

struct pci_device *virtio_net_pci(struct virtio_net *n)
{
    return &n->vp.pci;
}

void virtio_net_counters(const struct virtio_net *n, struct virtio_net_counters *out)
{
    *out = n->counters;
}

static void free_net(struct virtio_net *n)
{
    free(n->rom);
    free(n->txbuf);
    free(n->segbuf);
    free(n);
}

struct virtio_net *virtio_net_create(struct platform *p, struct pci_bus *bus, struct net_backend *nb,
                                     const uint8_t mac[6], const char *rom_path, char *err,
                                     size_t errlen)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n || !(n->txbuf = malloc(HDR_SIZE + NET_MAX_FRAME)) || !(n->segbuf = malloc(NET_MAX_FRAME))) {
        snprintf(err, errlen, "out of memory");
        if (n)
            free_net(n);
        return NULL;
    }
    n->plat = p;
    n->nb = nb;
    memcpy(n->config + CFG_MAC, mac, 6);
    n->config[CFG_STATUS] = net_backend_link_up(nb) ? VIRTIO_NET_S_LINK_UP : 0;
    st_le(n->config + CFG_MAX_VQ_PAIRS, 2, 1);
    st_le(n->config + CFG_MTU, 2, 1500);

    uint64_t rom_len = 0;
    if (rom_path && !(n->rom = net_rom_load(rom_path, &rom_len, err, errlen))) {
        free_net(n);
        return NULL;
    }
    const struct virtio_pci_info info = {
        .name = "virtio-net",
        .device_type = VIRTIO_ID_NET,
        .class_code = 0x020000,        /* Ethernet controller */
        /* No GUEST_TSO: libslirp hands us frames of at most the MTU.  No
         * control queue: every frame is delivered (libslirp only sends to
         * the guest's address or broadcast). */
        .features = 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
                    1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
                    1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN |
                    1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_STATUS |
                    1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX,
        .num_queues = 2,
        .queue_max_size = QUEUE_SIZE,
        .config_size = CFG_SIZE,
    };
    if (virtio_pci_init(&n->vp, p, &info, &net_ops, n) < 0) {
        snprintf(err, errlen, "cannot set up the virtio-net PCI function");
        virtio_pci_destroy(&n->vp);
        free_net(n);
        return NULL;
    }
    if (n->rom)
        pci_set_rom(&n->vp.pci, n->rom, rom_len);   /* after the header is built */
    if (pci_bus_add(bus, &n->vp.pci, -1) < 0) {
        snprintf(err, errlen, "no free PCI slot for virtio-net");
        virtio_pci_destroy(&n->vp);
        free_net(n);
        return NULL;
    }
    net_backend_attach(nb, &nic_ops, n);
    return n;
}

void virtio_net_destroy(struct virtio_net *n)
{
    if (!n)
        return;
    net_backend_attach(n->nb, NULL, NULL);
    rx_stash_drop(n);
    if (n->tx_timer)
        evloop_del_timer(n->plat->loop, n->tx_timer);
    virtio_pci_destroy(&n->vp);
    free_net(n);
}
