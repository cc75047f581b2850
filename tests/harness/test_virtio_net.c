/* virtio-net driven by the spec-written virtio test driver, against the real
 * libslirp backend: DHCP, ARP, TFTP and a hostfwd UDP round trip with and
 * without mergeable receive buffers, checksum offload and TSO checked by
 * libslirp's own verification, link status, and malformed chains and
 * oversized frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/evloop.h"
#include "devices/net/net.h"
#include "devices/virtio_net.h"
#include "support/harness_platform.h"
#include "support/net_guest.h"
#include "support/virtio_driver.h"

#define RAM_SIZE     (32u << 20)
#define MMIO_BASE    0xe0000000ULL
#define MSI_ADDR     0xfee00000ULL
#define MSI_DATA_CFG 0x4060
#define MSI_DATA_RX  0x4061
#define MSI_DATA_TX  0x4062
#define GUEST_PORT   7777
#define FILE_NAME    "pxe.img"
#define FILE_LEN     65536          /* a multiple of 512: the last block is empty */
#define RXQ 0
#define TXQ 1
#define HDR 12

/* Feature bits (virtio 1.2, 5.1.3) */
#define F_CSUM       (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC        (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_HOST_TSO4  (1ULL << 11)
#define F_HOST_TSO6  (1ULL << 12)
#define F_MRG_RXBUF  (1ULL << 15)
#define F_STATUS     (1ULL << 16)
#define F_VERSION_1  (1ULL << 32)

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x99 };

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct net_backend *nb;
    struct virtio_net *nic;
    struct vdrv d;
    struct net_guest g;
    char dir[256];
    uint8_t content[FILE_LEN];
    int host_port;
    /* receive buffers by head descriptor */
    uint64_t buf_of[256];
    uint32_t rxbuf_size;
    bool mrg;
    uint64_t txhdr, txbuf;
    uint8_t tx_hdr[HDR];           /* the header the next send uses */
};

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void post_rx(struct fx *f, uint64_t addr)
{
    struct vdrv_buf b = { addr, f->rxbuf_size, true };
    uint16_t head = vdrv_post(&f->d, RXQ, &b, 1);
    f->buf_of[head] = addr;
}

static int nic_send(void *opaque, const uint8_t *frame, size_t len)
{
    struct fx *f = opaque;
    vdrv_mem_write(&f->d, f->txhdr, f->tx_hdr, HDR);
    vdrv_mem_write(&f->d, f->txbuf, frame, len);
    struct vdrv_buf b[2] = { { f->txhdr, HDR, false }, { f->txbuf, (uint32_t)len, false } };
    vdrv_post(&f->d, TXQ, b, 2);
    vdrv_notify(&f->d, TXQ);
    return vdrv_wait_used(&f->d, TXQ, NULL, NULL, 1000) ? 0 : -1;
}

static int nic_recv(void *opaque, uint8_t *buf, size_t cap)
{
    struct fx *f = opaque;
    struct vdrv *d = &f->d;
    if (vdrv_used_idx(d, RXQ) == d->q[RXQ].used_seen)
        return 0;
    uint32_t id, len;
    if (!vdrv_wait_used(d, RXQ, &id, &len, 0) || id >= 256 || len < HDR || len > f->rxbuf_size)
        return -1;
    uint8_t hdr[HDR];
    vdrv_mem_read(d, f->buf_of[id], hdr, HDR);
    unsigned nbuf = (unsigned)rd_le(hdr + 10, 2);
    if (nbuf == 0 || (!f->mrg && nbuf != 1))
        return -1;
    size_t total = 0;
    int err = 0;
    uint64_t addr = f->buf_of[id];
    size_t off = HDR;
    for (unsigned k = 0; k < nbuf; k++) {
        if (k > 0) {
            if (!vdrv_wait_used(d, RXQ, &id, &len, 100) || id >= 256 || len > f->rxbuf_size)
                return -1;
            addr = f->buf_of[id];
            off = 0;
        }
        size_t n = len - off;
        if (total + n <= cap)
            vdrv_mem_read(d, addr + off, buf + total, n);
        else
            err = -1;
        total += n;
        post_rx(f, addr);   /* the same buffer goes back to the device */
    }
    vdrv_notify(d, RXQ);
    return err ? -1 : (int)total;
}

static void nic_poll(void *opaque, int ms)
{
    struct fx *f = opaque;
    evloop_run_once(f->h->plat.loop, ms);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    assert_int_equal(ng_make_tftp_dir(f->dir, sizeof(f->dir), FILE_NAME, f->content, FILE_LEN), 0);
    f->host_port = ng_host_free_port(true);
    assert_true(f->host_port > 0);
    char err[256] = "";
    f->nb = ng_user_backend(f->h->plat.loop, "virtio", f->dir, FILE_NAME, (uint16_t)f->host_port,
                            GUEST_PORT, err, sizeof(err));
    if (!f->nb)
        fail_msg("the user network: %s", err);
    f->nic = virtio_net_create(&f->h->plat, &f->bus, f->nb, test_mac, NULL, err, sizeof(err));
    if (!f->nic)
        fail_msg("virtio_net_create: %s", err);
    int devfn = harness_pci_find(&f->bus, 0x1af4, 0x1041);
    assert_true(devfn >= 0);
    assert_int_equal(vdrv_probe(&f->d, f->h, &f->bus, (uint8_t)devfn, MMIO_BASE), 0);
    struct net_guest_nic gn = { f, nic_send, nic_recv, nic_poll };
    ng_init(&f->g, &gn, test_mac);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    virtio_net_destroy(f->nic);
    net_backend_free(f->nb);
    harness_free(f->h);
    ng_remove_tftp_dir(f->dir, FILE_NAME);
    free(f);
    return 0;
}

static void bring_up(struct fx *f, uint64_t features, uint32_t rxbuf_size, unsigned nrx)
{
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    assert_true(vdrv_negotiate(d, features | F_VERSION_1));
    assert_int_equal(d->features, features | F_VERSION_1);
    vdrv_msix_vector(d, 0, MSI_ADDR, MSI_DATA_CFG, false);
    vdrv_msix_vector(d, 1, MSI_ADDR, MSI_DATA_RX, false);
    vdrv_msix_vector(d, 2, MSI_ADDR, MSI_DATA_TX, false);
    vdrv_msix_enable(d, true);
    vdrv_common_write(d, VDRV_CC_MSIX, 2, 0);
    assert_int_equal(vdrv_setup_queue(d, RXQ, 128, 1), 0);
    assert_int_equal(vdrv_setup_queue(d, TXQ, 64, 2), 0);
    vdrv_driver_ok(d);
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    f->mrg = features & F_MRG_RXBUF;
    f->rxbuf_size = rxbuf_size;
    memset(f->buf_of, 0, sizeof(f->buf_of));
    memset(f->tx_hdr, 0, sizeof(f->tx_hdr));
    f->txhdr = vdrv_alloc(d, HDR, 16);
    f->txbuf = vdrv_alloc(d, 70000, 16);
    for (unsigned i = 0; i < nrx; i++)
        post_rx(f, vdrv_alloc(d, rxbuf_size, 16));
    vdrv_notify(d, RXQ);
}

static struct virtio_net_counters counters(struct fx *f)
{
    struct virtio_net_counters c;
    virtio_net_counters(f->nic, &c);
    return c;
}

/* --- identity ------------------------------------------------------------ */

static void test_identity(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint32_t cls = pci_config_read(&f->bus, d->devfn, 0x08, 4) >> 8;
    assert_int_equal(cls, 0x020000);   /* Ethernet controller */
    uint64_t feat = vdrv_device_features(d);
    uint64_t want = F_CSUM | F_GUEST_CSUM | F_MAC | F_MRG_RXBUF | F_STATUS | F_VERSION_1 |
                    F_HOST_TSO4 | F_HOST_TSO6;
    assert_int_equal(feat & want, want);
    assert_false(feat & F_GUEST_TSO4);   /* never sent large frames: not offered */
    for (int i = 0; i < 6; i++)
        assert_int_equal(vdrv_config_read(d, (unsigned)i, 1), test_mac[i]);
    assert_int_equal(vdrv_config_read(d, 6, 2) & 1, 1);   /* VIRTIO_NET_S_LINK_UP */
    assert_int_equal(vdrv_common_read(d, VDRV_CC_NUMQ, 2), 2);
}

/* --- the user network, end to end ---------------------------------------- */

static void user_network(struct fx *f)
{
    assert_int_equal(ng_user_session(&f->g, FILE_NAME, f->content, FILE_LEN, (uint16_t)f->host_port,
                                     GUEST_PORT), 0);
    assert_true(vdrv_msi_count(&f->d, MSI_DATA_RX) > 0);
    assert_true(vdrv_msi_count(&f->d, MSI_DATA_TX) > 0);
    assert_int_equal(counters(f).tx_errors, 0);
    assert_int_equal(counters(f).rx_too_big, 0);
}

/* Mergeable buffers of 256 bytes: every DHCP reply and TFTP block spans
 * several of them (num_buffers > 1). */
static void test_user_network_mergeable(void **state)
{
    struct fx *f = *state;
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM | F_GUEST_CSUM, 256, 100);
    user_network(f);
}

/* Without MRG_RXBUF: one 1526-byte buffer per frame (5.1.6.3.1). */
static void test_user_network_plain(void **state)
{
    struct fx *f = *state;
    bring_up(f, F_MAC | F_STATUS, HDR + 1514, 64);
    user_network(f);
}

/* --- offloads, checked by libslirp's own checksum verification ---------- */

static int host_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static ssize_t host_wait(struct fx *f, int fd, void *buf, size_t cap, int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r >= 0)
            return r;
        evloop_run_once(f->h->plat.loop, 5);
    }
    return -1;
}

/* Sum of the IPv4 pseudo-header (RFC 768/793) with length l4len. */
static uint16_t pseudo(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
    uint32_t s = 0;
    for (int i = 12; i < 20; i += 2)
        s += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    s += proto + l4len;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static void set_hdr(struct fx *f, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
                    uint16_t csum_start, uint16_t csum_offset)
{
    uint8_t *h = f->tx_hdr;
    memset(h, 0, HDR);
    h[0] = flags;
    h[1] = gso;
    h[2] = (uint8_t)hdr_len; h[3] = (uint8_t)(hdr_len >> 8);
    h[4] = (uint8_t)gso_size; h[5] = (uint8_t)(gso_size >> 8);
    h[6] = (uint8_t)csum_start; h[7] = (uint8_t)(csum_start >> 8);
    h[8] = (uint8_t)csum_offset; h[9] = (uint8_t)(csum_offset >> 8);
}

static void test_checksum_offload(void **state)
{
    struct fx *f = *state;
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM, 1536, 64);
    struct net_guest *g = &f->g;
    assert_int_equal(ng_dhcp(g, 10000), 0);
    assert_int_equal(ng_arp(g, g->gw, g->gw_mac, 5000), 0);
    uint16_t port;
    int fd = host_udp(&port);
    const char *payload = "checksum completed by the device";
    uint8_t frame[256];
    size_t len = ng_build_udp(g, frame, sizeof(frame), g->gw_mac, g->ip, g->gw, 5555, port,
                              payload, strlen(payload), 99);
    uint8_t *ip = frame + 14, *udp = ip + 20;
    uint16_t ps = pseudo(ip, 17, (uint32_t)(8 + strlen(payload)));
    udp[6] = (uint8_t)(ps >> 8);
    udp[7] = (uint8_t)ps;
    set_hdr(f, 1 /* NEEDS_CSUM */, 0, 0, 0, 34, 6);
    assert_int_equal(nic_send(f, frame, len), 0);
    char buf[256];
    ssize_t r = host_wait(f, fd, buf, sizeof(buf), 3000);
    assert_int_equal(r, (ssize_t)strlen(payload));
    assert_memory_equal(buf, payload, strlen(payload));
    /* Without NEEDS_CSUM the partial sum stays and libslirp drops it. */
    set_hdr(f, 0, 0, 0, 0, 0, 0);
    assert_int_equal(nic_send(f, frame, len), 0);
    assert_int_equal(host_wait(f, fd, buf, sizeof(buf), 300), -1);
    close(fd);
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

struct tcp_ctx {
    struct net_guest *g;
    uint8_t *frame;
    uint16_t sport, dport;
};

/* Builds Ethernet/IPv4/TCP headers for n payload bytes; the TCP checksum
 * field gets the pseudo-header sum and NEEDS_CSUM asks the device for the
 * rest. */
static void tcp_build(struct tcp_ctx *c, uint32_t seq, uint32_t ack, uint8_t flags, size_t n)
{
    uint8_t *frame = c->frame, *ip = frame + 14, *tcp = ip + 20;
    memcpy(frame, c->g->gw_mac, 6);
    memcpy(frame + 6, c->g->mac, 6);
    frame[12] = 0x08; frame[13] = 0;
    memset(ip, 0, 40);
    ip[0] = 0x45; ip[8] = 64; ip[9] = 6;
    ip[2] = (uint8_t)((40 + n) >> 8); ip[3] = (uint8_t)(40 + n);
    memcpy(ip + 12, &c->g->ip, 4);
    memcpy(ip + 16, &c->g->gw, 4);
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2)
        s += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    ip[10] = (uint8_t)(~s >> 8); ip[11] = (uint8_t)~s;
    tcp[0] = (uint8_t)(c->sport >> 8); tcp[1] = (uint8_t)c->sport;
    tcp[2] = (uint8_t)(c->dport >> 8); tcp[3] = (uint8_t)c->dport;
    put32be(tcp + 4, seq);
    put32be(tcp + 8, ack);
    tcp[12] = 0x50; tcp[13] = flags; tcp[14] = 0xff; tcp[15] = 0xff;
    uint16_t ps = pseudo(ip, 6, (uint32_t)(20 + n));
    tcp[16] = (uint8_t)(ps >> 8); tcp[17] = (uint8_t)ps;
}

/* A minimal TCP client: SYN, ACK, then one 30000-byte GSO packet. */
static void test_tso(void **state)
{
    struct fx *f = *state;
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM | F_HOST_TSO4, 1536, 64);
    struct net_guest *g = &f->g;
    assert_int_equal(ng_dhcp(g, 10000), 0);
    assert_int_equal(ng_arp(g, g->gw, g->gw_mac, 5000), 0);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    uint16_t port = ntohs(a.sin_port);

    enum { PAYLOAD = 30000, MSS = 1460 };
    static uint8_t frame[54 + PAYLOAD];
    uint8_t *tcp = frame + 34;
    uint16_t sport = 46000;
    uint32_t iss = 5000, peer = 0;
    struct tcp_ctx c = { g, frame, sport, port };
    tcp_build(&c, iss, 0, 0x02, 0);
    set_hdr(f, 1, 0, 0, 0, 34, 16);
    assert_int_equal(nic_send(f, frame, 54), 0);
    static uint8_t in[4096];
    bool synack = false;
    for (int i = 0; i < 600 && !synack; i++) {
        int n = nic_recv(f, in, sizeof(in));
        if (n >= 54 && in[23] == 6 && (in[47] & 0x12) == 0x12) {
            peer = (uint32_t)in[38] << 24 | (uint32_t)in[39] << 16 | (uint32_t)in[40] << 8 | in[41];
            synack = true;
        } else if (n <= 0) {
            evloop_run_once(f->h->plat.loop, 5);
        }
    }
    assert_true(synack);
    tcp_build(&c, iss + 1, peer + 1, 0x10, 0);
    assert_int_equal(nic_send(f, frame, 54), 0);
    int cfd = -1;
    for (int i = 0; i < 400 && cfd < 0; i++) {
        cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            evloop_run_once(f->h->plat.loop, 5);
    }
    assert_true(cfd >= 0);

    tcp_build(&c, iss + 1, peer + 1, 0x18, PAYLOAD);
    for (int i = 0; i < PAYLOAD; i++)
        tcp[20 + i] = (uint8_t)(i * 13 + 1);
    set_hdr(f, 1, 1 /* GSO_TCPV4 */, 54, MSS, 34, 16);
    uint64_t frames_before = f->nb->stats.tx_frames;
    assert_int_equal(nic_send(f, frame, sizeof(frame)), 0);
    assert_int_equal(f->nb->stats.tx_frames - frames_before, (PAYLOAD + MSS - 1) / MSS);
    static uint8_t got[PAYLOAD];
    size_t have = 0;
    for (int i = 0; i < 1000 && have < PAYLOAD; i++) {
        ssize_t r = recv(cfd, got + have, PAYLOAD - have, MSG_DONTWAIT);
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        while (nic_recv(f, in, sizeof(in)) > 0) {
        }
        evloop_run_once(f->h->plat.loop, 5);
    }
    assert_int_equal(have, PAYLOAD);
    for (int i = 0; i < PAYLOAD; i++)
        if (got[i] != (uint8_t)(i * 13 + 1))
            fail_msg("byte %d differs", i);
    assert_int_equal(counters(f).tx_errors, 0);
    close(cfd);
    close(lfd);
}

/* --- link status --------------------------------------------------------- */

static void test_link_status(void **state)
{
    struct fx *f = *state;
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF, 1536, 32);
    unsigned cfg_irqs = vdrv_msi_count(&f->d, MSI_DATA_CFG);
    uint8_t gen = (uint8_t)vdrv_common_read(&f->d, VDRV_CC_CFGGEN, 1);
    net_backend_set_link(f->nb, false);
    assert_int_equal(vdrv_config_read(&f->d, 6, 2) & 1, 0);
    assert_true(vdrv_msi_count(&f->d, MSI_DATA_CFG) > cfg_irqs);
    assert_int_not_equal((uint8_t)vdrv_common_read(&f->d, VDRV_CC_CFGGEN, 1), gen);
    assert_int_equal(ng_dhcp(&f->g, 600), -1);
    net_backend_set_link(f->nb, true);
    assert_int_equal(vdrv_config_read(&f->d, 6, 2) & 1, 1);
    assert_int_equal(ng_dhcp(&f->g, 10000), 0);
}

/* --- malformed input ----------------------------------------------------- */

static void expect_alive(struct fx *f)
{
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM, 1536, 32);
    assert_int_equal(ng_dhcp(&f->g, 10000), 0);
}

static void test_bad_transmits(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF | F_CSUM, 1536, 32);
    uint64_t before = counters(f).tx_errors;
    uint64_t sent = f->nb->stats.tx_frames;

    /* A chain shorter than virtio_net_hdr. */
    struct vdrv_buf b = { f->txbuf, 8, false };
    vdrv_post(d, TXQ, &b, 1);
    vdrv_notify(d, TXQ);
    assert_true(vdrv_wait_used(d, TXQ, NULL, NULL, 1000));
    assert_int_equal(counters(f).tx_errors, before + 1);

    /* 3000 bytes without segmentation. */
    static uint8_t big[3000];
    memset(big, 0x11, sizeof(big));
    assert_int_equal(nic_send(f, big, sizeof(big)), 0);
    assert_int_equal(counters(f).tx_errors, before + 2);

    /* NEEDS_CSUM with offsets past the end. */
    set_hdr(f, 1, 0, 0, 0, 90, 6);
    assert_int_equal(nic_send(f, big, 60), 0);
    assert_int_equal(counters(f).tx_errors, before + 3);

    /* GSO that was not negotiated (no HOST_TSO4 here). */
    set_hdr(f, 1, 1, 54, 1000, 34, 16);
    assert_int_equal(nic_send(f, big, 2000), 0);
    assert_int_equal(counters(f).tx_errors, before + 4);
    assert_int_equal(f->nb->stats.tx_frames, sent);
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);

    /* A device-writable buffer in a transmit chain breaks the queue:
     * DEVICE_NEEDS_RESET, and a reset brings the device back. */
    struct vdrv_buf w[2] = { { f->txhdr, HDR, false }, { f->txbuf, 64, true } };
    unsigned cfg = vdrv_msi_count(d, MSI_DATA_CFG);
    vdrv_post(d, TXQ, w, 2);
    vdrv_notify(d, TXQ);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    assert_true(vdrv_msi_count(d, MSI_DATA_CFG) > cfg);

    /* A descriptor pointing outside guest RAM. */
    expect_alive(f);
    struct vdrv_buf o[2] = { { f->txhdr, HDR, false }, { 0xf0000000ULL, 64, false } };
    vdrv_post(d, TXQ, o, 2);
    vdrv_notify(d, TXQ);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    expect_alive(f);
}

static void test_bad_receives(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint8_t frame[1000];
    memset(frame, 0x33, sizeof(frame));
    memcpy(frame, test_mac, 6);
    frame[12] = 0x88; frame[13] = 0xb5;

    /* Buffers too small for the frame without MRG_RXBUF: the frame is
     * dropped and counted, the buffers stay usable. */
    bring_up(f, F_MAC | F_STATUS, 200, 8);
    uint64_t before = counters(f).rx_too_big;
    net_backend_deliver(f->nb, frame, sizeof(frame));
    assert_int_equal(counters(f).rx_too_big, before + 1);
    uint8_t in[2048];
    assert_int_equal(nic_recv(f, in, sizeof(in)), 0);
    net_backend_deliver(f->nb, frame, 100);
    assert_int_equal(nic_recv(f, in, sizeof(in)), 100);
    assert_memory_equal(in, frame, 100);

    /* A device-readable receive buffer breaks the queue. */
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF, 1536, 0);
    struct vdrv_buf r = { vdrv_alloc(d, 1536, 16), 1536, false };
    vdrv_post(d, RXQ, &r, 1);
    vdrv_notify(d, RXQ);
    net_backend_deliver(f->nb, frame, 100);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);

    /* A receive buffer outside guest RAM, likewise. */
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF, 1536, 0);
    struct vdrv_buf o = { 0xf0000000ULL, 1536, true };
    vdrv_post(d, RXQ, &o, 1);
    vdrv_notify(d, RXQ);
    net_backend_deliver(f->nb, frame, 100);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);

    /* An available index that jumps past the queue size. */
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF, 1536, 4);
    vdrv_set_avail_idx(d, RXQ, 1000);
    vdrv_notify(d, RXQ);
    net_backend_deliver(f->nb, frame, 100);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);

    /* Few buffers: frames wait in the backend (bounded), in order. */
    bring_up(f, F_MAC | F_STATUS | F_MRG_RXBUF, 1536, 4);
    for (int i = 0; i < 10; i++) {
        frame[20] = (uint8_t)i;
        net_backend_deliver(f->nb, frame, 200);
    }
    assert_int_equal(f->nb->rxq_frames, 6);
    for (int i = 0; i < 10; i++) {
        int n = 0;
        for (int k = 0; k < 10 && n == 0; k++)
            n = nic_recv(f, in, sizeof(in));
        assert_int_equal(n, 200);
        assert_int_equal(in[20], i);
    }
    assert_int_equal(f->nb->rxq_frames, 0);
    expect_alive(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_network_mergeable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_network_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_transmits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_receives, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
