/* The 82540EM model driven by the spec-written test driver, against the real
 * libslirp backend: DHCP, ARP, TFTP, a hostfwd UDP round trip, checksum
 * offload and TCP segmentation checked by libslirp itself, the EEPROM and
 * PHY, link changes, and malformed rings and frames. */
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

#include "devices/e1000.h"
#include "devices/evloop.h"
#include "devices/net/net.h"
#include "support/e1000_driver.h"
#include "support/harness_platform.h"
#include "support/net_guest.h"
#include "support/virtio_driver.h"

#define RAM_SIZE   (32u << 20)
#define MMIO_BASE  0xe0000000ULL
#define IO_BASE    0xc000
#define HEAP_BASE  (1u << 20)
#define GUEST_PORT 7777
#define FILE_NAME  "boot.bin"
#define FILE_LEN   70001

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x01 };

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct net_backend *nb;
    struct e1000 *nic;
    struct e1000_drv d;
    struct net_guest g;
    char dir[256];
    uint8_t content[FILE_LEN];
    int host_port;
};

static int nic_send(void *opaque, const uint8_t *frame, size_t len)
{
    struct fx *f = opaque;
    return e1k_send(&f->d, frame, len, 2);
}

static int nic_recv(void *opaque, uint8_t *buf, size_t cap)
{
    struct fx *f = opaque;
    return e1k_recv(&f->d, buf, cap);
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
    f->nb = ng_user_backend(f->h->plat.loop, "e1000", f->dir, FILE_NAME, (uint16_t)f->host_port,
                            GUEST_PORT, err, sizeof(err));
    if (!f->nb)
        fail_msg("the user network: %s", err);
    f->nic = e1000_create(&f->h->plat, &f->bus, f->nb, test_mac, NULL, err, sizeof(err));
    if (!f->nic)
        fail_msg("e1000_create: %s", err);
    assert_int_equal(e1k_probe(&f->d, f->h, &f->bus, MMIO_BASE, IO_BASE, HEAP_BASE, RAM_SIZE), 0);
    struct net_guest_nic gn = { f, nic_send, nic_recv, nic_poll };
    ng_init(&f->g, &gn, test_mac);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    e1000_destroy(f->nic);
    net_backend_free(f->nb);
    harness_free(f->h);
    ng_remove_tftp_dir(f->dir, FILE_NAME);
    free(f);
    return 0;
}

static unsigned intx_gsi(struct fx *f)
{
    return harness_pci_intx_gsi(&f->bus, f->d.devfn);
}

static struct e1000_counters counters(struct fx *f)
{
    struct e1000_counters c;
    e1000_counters(f->nic, &c);
    return c;
}

/* --- identity, EEPROM, PHY ---------------------------------------------- */

static void test_eeprom_and_phy(void **state)
{
    struct fx *f = *state;
    struct e1000_drv *d = &f->d;
    uint16_t sum = 0;
    for (unsigned i = 0; i < 64; i++) {
        int a = e1k_eerd(d, i), b = e1k_eeprom_bitbang(d, i);
        assert_true(a >= 0);
        assert_int_equal(a, b);      /* both EEPROM interfaces agree */
        sum = (uint16_t)(sum + a);
    }
    assert_int_equal(sum, 0xbaba);
    assert_int_equal(e1k_eerd(d, 0), test_mac[0] | test_mac[1] << 8);
    assert_int_equal(e1k_eerd(d, 2), test_mac[4] | test_mac[5] << 8);

    assert_int_equal(e1k_phy_read(d, 2), 0x0141);   /* PHY identifier */
    assert_true(e1k_phy_read(d, 1) & 0x0004);       /* link status */
    assert_true(e1k_phy_read(d, 1) & 0x0020);       /* autonegotiation complete */
    assert_int_equal(e1k_phy_write(d, 4, 0x01e1), 0);
    assert_int_equal(e1k_phy_read(d, 4), 0x01e1);
    /* Nothing answers at another PHY address. */
    e1k_wr(d, E1K_MDIC, 2u << 26 | 5u << 21 | 1u << 16);
    assert_true(e1k_rd(d, E1K_MDIC) & (1u << 30));

    assert_true(e1k_rd(d, E1K_STATUS) & E1K_STATUS_LU);
    assert_int_equal(e1k_io_rd(d, E1K_STATUS), e1k_rd(d, E1K_STATUS));
    e1k_io_wr(d, E1K_IMS, 0x4);
    assert_int_equal(e1k_rd(d, E1K_IMS) & 0x4, 0x4);

    assert_int_equal(e1k_init(d, 64, 64, 0), 0);
    assert_memory_equal(d->mac, test_mac, 6);
    /* RAL0/RAH0 hold the address with Address Valid. */
    assert_int_equal(e1k_rd(d, E1K_RAH0) >> 31, 1);
}

/* --- the user network, end to end ---------------------------------------- */

static void test_dhcp_arp_tftp_hostfwd(void **state)
{
    struct fx *f = *state;
    assert_int_equal(e1k_init(&f->d, 64, 64, 0), 0);   /* FCS kept: the driver checks it */
    assert_int_equal(ng_user_session(&f->g, FILE_NAME, f->content, FILE_LEN, (uint16_t)f->host_port,
                                     GUEST_PORT), 0);

    /* The device counted what it moved, and raised its interrupt line. */
    assert_true(e1k_rd(&f->d, E1K_GPRC) > 0);
    assert_true(e1k_rd(&f->d, E1K_GPTC) > 0);
    assert_true(f->h->irq_raises[intx_gsi(f)] > 0);
    struct e1000_counters c = counters(f);
    assert_int_equal(c.tx_errors, 0);
    assert_int_equal(c.rx_errors, 0);
}

/* --- offloads, checked by libslirp's own checksum verification ---------- */

/* Host UDP socket on 127.0.0.1, reached from the guest as 10.0.2.2. */
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

static void test_checksum_offload(void **state)
{
    struct fx *f = *state;
    assert_int_equal(e1k_init(&f->d, 64, 64, E1K_RCTL_SECRC), 0);
    struct net_guest *g = &f->g;
    assert_int_equal(ng_dhcp(g, 10000), 0);
    assert_int_equal(ng_arp(g, g->gw, g->gw_mac, 5000), 0);
    uint16_t port;
    int fd = host_udp(&port);

    /* A datagram whose IP header checksum is zero and whose UDP checksum
     * field holds only the pseudo-header sum, as drivers leave it for the
     * hardware (SDM 3.3.6): libslirp drops it unless the device fixed both. */
    const char *payload = "checksummed by the NIC";
    uint8_t frame[256];
    size_t len = ng_build_udp(g, frame, sizeof(frame), g->gw_mac, g->ip, g->gw, 5555, port,
                              payload, strlen(payload), 77);
    assert_true(len > 0);
    uint8_t *ip = frame + 14, *udp = ip + 20;
    ip[10] = ip[11] = 0;
    uint32_t s = 0;
    for (int i = 12; i < 20; i += 2)
        s += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    s += 17 + (uint32_t)(8 + strlen(payload));
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    udp[6] = (uint8_t)(s >> 8);
    udp[7] = (uint8_t)s;
    struct e1k_offload o = { .ipcss = 14, .ipcso = 24, .ipcse = 33, .tucss = 34, .tucso = 40,
                             .tucse = 0, .tcp = false, .ipv4 = true, .popts = 3 };
    assert_int_equal(e1k_send_offload(&f->d, frame, len, &o), 0);
    char buf[256];
    ssize_t r = host_wait(f, fd, buf, sizeof(buf), 3000);
    assert_int_equal(r, (ssize_t)strlen(payload));
    assert_memory_equal(buf, payload, strlen(payload));

    /* The same frame without offload is dropped by libslirp: the check
     * above is meaningful. */
    assert_int_equal(e1k_send(&f->d, frame, len, 1), 0);
    assert_int_equal(host_wait(f, fd, buf, sizeof(buf), 300), -1);
    close(fd);
}

/* TCP segmentation: a minimal client connection to a host listener; one
 * 20000-byte segment goes out with TSE and must arrive whole and in
 * order. */
static void test_tso(void **state)
{
    struct fx *f = *state;
    assert_int_equal(e1k_init(&f->d, 64, 64, E1K_RCTL_SECRC), 0);
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

    enum { PAYLOAD = 20000, MSS = 1400 };
    static uint8_t frame[14 + 20 + 20 + PAYLOAD];
    uint32_t iss = 1000;
    uint16_t sport = 45000;
    /* SYN */
    struct tcp_seg {
        uint32_t seq, ack;
        uint8_t flags;
    };
    uint8_t *ip = frame + 14, *tcp = ip + 20;
#define BUILD(seq_, ack_, flags_, n_)                                                      \
    do {                                                                                   \
        memcpy(frame, g->gw_mac, 6);                                                       \
        memcpy(frame + 6, g->mac, 6);                                                      \
        frame[12] = 0x08; frame[13] = 0x00;                                                \
        memset(ip, 0, 40);                                                                 \
        ip[0] = 0x45; ip[8] = 64; ip[9] = 6;                                               \
        ip[2] = (uint8_t)((40 + (n_)) >> 8); ip[3] = (uint8_t)(40 + (n_));                 \
        memcpy(ip + 12, &g->ip, 4); memcpy(ip + 16, &g->gw, 4);                           \
        tcp[0] = (uint8_t)(sport >> 8); tcp[1] = (uint8_t)sport;                           \
        tcp[2] = (uint8_t)(port >> 8); tcp[3] = (uint8_t)port;                             \
        uint32_t s_ = (seq_), a_ = (ack_);                                                 \
        tcp[4] = (uint8_t)(s_ >> 24); tcp[5] = (uint8_t)(s_ >> 16);                        \
        tcp[6] = (uint8_t)(s_ >> 8); tcp[7] = (uint8_t)s_;                                 \
        tcp[8] = (uint8_t)(a_ >> 24); tcp[9] = (uint8_t)(a_ >> 16);                        \
        tcp[10] = (uint8_t)(a_ >> 8); tcp[11] = (uint8_t)a_;                               \
        tcp[12] = 0x50; tcp[13] = (flags_); tcp[14] = 0xff; tcp[15] = 0xff;                \
    } while (0)
    /* Every segment goes with full checksum offload (IXSM|TXSM): the TCP
     * field carries the pseudo-header sum without the length for TSE. */
    struct e1k_offload o = { .ipcss = 14, .ipcso = 24, .ipcse = 33, .tucss = 34, .tucso = 50,
                             .tcp = true, .ipv4 = true, .popts = 3 };
    uint32_t ps;
#define PSEUDO(len_)                                                                       \
    do {                                                                                   \
        ps = 0;                                                                            \
        for (int i_ = 12; i_ < 20; i_ += 2)                                                \
            ps += (uint32_t)(ip[i_] << 8 | ip[i_ + 1]);                                    \
        ps += 6 + (uint32_t)(len_);                                                        \
        while (ps >> 16)                                                                   \
            ps = (ps & 0xffff) + (ps >> 16);                                               \
        tcp[16] = (uint8_t)(ps >> 8); tcp[17] = (uint8_t)ps;                               \
    } while (0)

    BUILD(iss, 0, 0x02, 0);
    PSEUDO(20);
    assert_int_equal(e1k_send_offload(&f->d, frame, 54, &o), 0);
    /* SYN-ACK from libslirp (acting for the host listener). */
    static uint8_t in[4096];
    uint32_t peer_seq = 0;
    bool synack = false;
    for (int i = 0; i < 600 && !synack; i++) {
        int n = e1k_recv(&f->d, in, sizeof(in));
        if (n >= 54 && in[23] == 6 && (in[14 + 20 + 13] & 0x12) == 0x12) {
            const uint8_t *t = in + 34;
            peer_seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
            synack = true;
        } else if (n <= 0) {
            evloop_run_once(f->h->plat.loop, 5);
        }
    }
    assert_true(synack);
    BUILD(iss + 1, peer_seq + 1, 0x10, 0);
    PSEUDO(20);
    assert_int_equal(e1k_send_offload(&f->d, frame, 54, &o), 0);

    int cfd = -1;
    for (int i = 0; i < 400 && cfd < 0; i++) {
        cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            evloop_run_once(f->h->plat.loop, 5);
    }
    assert_true(cfd >= 0);

    /* One large send: the device cuts it into MSS-sized segments. */
    BUILD(iss + 1, peer_seq + 1, 0x18, PAYLOAD);
    for (int i = 0; i < PAYLOAD; i++)
        tcp[20 + i] = (uint8_t)(i * 7 + 3);
    PSEUDO(0);   /* TSE: the length goes in per segment */
    o.tse = true;
    o.hdrlen = 54;
    o.mss = MSS;
    assert_int_equal(e1k_send_offload(&f->d, frame, sizeof(frame), &o), 0);

    static uint8_t got[PAYLOAD];
    size_t have = 0;
    for (int i = 0; i < 1000 && have < PAYLOAD; i++) {
        ssize_t r = recv(cfd, got + have, PAYLOAD - have, MSG_DONTWAIT);
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        while (e1k_recv(&f->d, in, sizeof(in)) > 0) {
            /* ACKs from libslirp; nothing to retransmit */
        }
        evloop_run_once(f->h->plat.loop, 5);
    }
    assert_int_equal(have, PAYLOAD);
    for (int i = 0; i < PAYLOAD; i++)
        if (got[i] != (uint8_t)(i * 7 + 3))
            fail_msg("byte %d differs", i);
    assert_int_equal(counters(f).tx_errors, 0);
    close(cfd);
    close(lfd);
#undef BUILD
#undef PSEUDO
}

/* --- link state ---------------------------------------------------------- */

static void test_link_down_up(void **state)
{
    struct fx *f = *state;
    assert_int_equal(e1k_init(&f->d, 64, 64, E1K_RCTL_SECRC), 0);
    unsigned gsi = intx_gsi(f);
    (void)e1k_rd(&f->d, E1K_ICR);
    net_backend_set_link(f->nb, false);
    assert_false(e1k_rd(&f->d, E1K_STATUS) & E1K_STATUS_LU);
    assert_false(e1k_phy_read(&f->d, 1) & 0x0004);
    assert_true(f->h->irq_level[gsi]);
    assert_true(e1k_rd(&f->d, E1K_ICR) & E1K_ICR_LSC);   /* read clears */
    assert_false(f->h->irq_level[gsi]);
    /* While down nothing gets through. */
    assert_int_equal(ng_dhcp(&f->g, 600), -1);
    net_backend_set_link(f->nb, true);
    assert_true(e1k_rd(&f->d, E1K_STATUS) & E1K_STATUS_LU);
    assert_int_equal(ng_dhcp(&f->g, 10000), 0);
}

/* --- malformed input ----------------------------------------------------- */

static void expect_alive(struct fx *f)
{
    assert_int_equal(e1k_init(&f->d, 64, 64, E1K_RCTL_SECRC), 0);
    assert_int_equal(ng_dhcp(&f->g, 10000), 0);
}

static void test_bad_tx_rings(void **state)
{
    struct fx *f = *state;
    struct e1000_drv *d = &f->d;
    assert_int_equal(e1k_init(d, 64, 64, E1K_RCTL_SECRC), 0);
    uint64_t before = counters(f).tx_errors;

    /* Ring outside guest RAM. */
    e1k_wr(d, E1K_TDBAL, 0xf0000000u);
    e1k_wr(d, E1K_TDT, 3);
    assert_true(counters(f).tx_errors > before);
    before = counters(f).tx_errors;

    /* Tail beyond the ring. */
    e1k_wr(d, E1K_TDBAL, (uint32_t)d->tx_ring);
    e1k_wr(d, E1K_TDH, 0);
    e1k_wr(d, E1K_TDT, 1000);
    assert_true(counters(f).tx_errors > before);
    before = counters(f).tx_errors;

    /* A 20000-byte frame without segmentation, and one whose buffer lies
     * outside RAM. */
    expect_alive(f);
    static uint8_t big[20000];
    memset(big, 0xab, sizeof(big));
    uint64_t sent = f->nb->stats.tx_frames;
    assert_int_equal(e1k_send(d, big, sizeof(big), 12), 0);
    assert_true(counters(f).tx_errors > before);
    assert_int_equal(f->nb->stats.tx_frames, sent);
    before = counters(f).tx_errors;
    uint8_t desc[16] = { 0 };
    desc[3] = 0xf0;                                     /* address 0xf0000000 */
    desc[8] = 64;                                       /* length */
    desc[11] = 0x01 | 0x02 | 0x08;                      /* EOP IFCS RS */
    e1k_write_tx_desc(d, d->tx_tail, desc);
    d->tx_tail = (d->tx_tail + 1) % d->tx_n;
    e1k_wr(d, E1K_TDT, d->tx_tail);
    assert_true(counters(f).tx_errors > before);

    /* A TSE packet whose context does not fit it. */
    before = counters(f).tx_errors;
    uint8_t small[100] = { 0 };
    struct e1k_offload o = { .tse = true, .tcp = true, .ipv4 = true, .hdrlen = 200, .mss = 0,
                             .ipcss = 14, .tucss = 34 };
    assert_int_equal(e1k_send_offload(d, small, sizeof(small), &o), 0);
    assert_true(counters(f).tx_errors > before);

    /* Byte writes to registers are refused, not half-applied. */
    harness_mmio_write(f->h, d->mmio + E1K_RCTL, 1, 0);
    assert_true(e1k_rd(d, E1K_RCTL) & E1K_RCTL_EN);
    expect_alive(f);
}

static void test_bad_rx(void **state)
{
    struct fx *f = *state;
    struct e1000_drv *d = &f->d;
    assert_int_equal(e1k_init(d, 64, 64, E1K_RCTL_SECRC), 0);
    uint8_t frame[3000];
    memset(frame, 0x5a, sizeof(frame));
    memcpy(frame, test_mac, 6);
    memcpy(frame + 6, "\x52\x55\x0a\x00\x02\x02", 6);
    frame[12] = 0x88; frame[13] = 0xb5;                 /* local experimental ethertype */

    /* Longer than RCTL allows without LPE: dropped and counted. */
    uint64_t before = counters(f).rx_oversize;
    net_backend_deliver(f->nb, frame, sizeof(frame));
    assert_int_equal(counters(f).rx_oversize, before + 1);
    uint8_t in[4096];
    assert_int_equal(e1k_recv(d, in, sizeof(in)), 0);

    /* With LPE it spans two 2 KiB buffers and arrives whole. */
    e1k_wr(d, E1K_RCTL, e1k_rd(d, E1K_RCTL) | E1K_RCTL_LPE);
    net_backend_deliver(f->nb, frame, sizeof(frame));
    assert_int_equal(e1k_recv(d, in, sizeof(in)), (int)sizeof(frame));
    assert_memory_equal(in, frame, sizeof(frame));

    /* Not our address: filtered; promiscuous: taken. */
    frame[5] ^= 1;
    before = counters(f).rx_filtered;
    net_backend_deliver(f->nb, frame, 100);
    assert_int_equal(counters(f).rx_filtered, before + 1);
    e1k_wr(d, E1K_RCTL, e1k_rd(d, E1K_RCTL) | E1K_RCTL_UPE);
    net_backend_deliver(f->nb, frame, 100);
    assert_int_equal(e1k_recv(d, in, sizeof(in)), 100);
    frame[5] ^= 1;

    /* A receive buffer outside guest RAM: an error in the descriptor. */
    uint8_t desc[16];
    e1k_mem_read(d, d->rx_ring + 16ULL * d->rx_next, desc, 16);
    uint8_t bad[16] = { 0 };
    bad[3] = 0xf0;                                      /* 0xf0000000 */
    e1k_mem_write(d, d->rx_ring + 16ULL * d->rx_next, bad, 16);
    before = counters(f).rx_errors;
    net_backend_deliver(f->nb, frame, 100);
    assert_int_equal(counters(f).rx_errors, before + 1);
    assert_int_equal(e1k_recv(d, in, sizeof(in)), -1);
    e1k_mem_write(d, d->rx_ring + 16ULL * ((d->rx_next + d->rx_n - 1) % d->rx_n), desc, 16);

    /* Tail beyond the ring. */
    before = counters(f).rx_errors;
    e1k_wr(d, E1K_RDT, 5000);
    net_backend_deliver(f->nb, frame, 100);
    assert_int_equal(counters(f).rx_errors, before + 1);

    /* A full ring holds frames back (bounded) instead of losing them. */
    assert_int_equal(e1k_init(d, 8, 8, E1K_RCTL_SECRC), 0);
    for (int i = 0; i < 12; i++) {
        frame[20] = (uint8_t)i;
        net_backend_deliver(f->nb, frame, 100);
    }
    assert_true(f->nb->rxq_frames > 0);
    for (int i = 0; i < 12; i++) {
        int n = e1k_recv(d, in, sizeof(in));
        assert_int_equal(n, 100);
        assert_int_equal(in[20], i);
    }
    assert_int_equal(f->nb->rxq_frames, 0);
    expect_alive(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_eeprom_and_phy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dhcp_arp_tftp_hostfwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tso, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_down_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tx_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
