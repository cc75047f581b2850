/* Frames and bytes per second through each NIC model on the user-mode
 * network, in the device harness (no KVM: the guest side is the test
 * drivers), next to the same traffic pushed straight into the libslirp
 * backend without a device, which is the ceiling.
 *
 *   transmit: the guest sends 1514-byte UDP frames to 10.0.2.2, which
 *             libslirp turns into datagrams to a host socket on 127.0.0.1;
 *             counted where the host socket receives them.
 *   receive:  a host socket sends 1472-byte datagrams to a hostfwd=udp
 *             port; counted where the guest driver takes them off its ring.
 *
 * Built and run by net-throughput.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/e1000.h"
#include "devices/evloop.h"
#include "devices/net/net.h"
#include "devices/util.h"
#include "devices/virtio_net.h"
#include "support/e1000_driver.h"
#include "support/harness_platform.h"
#include "support/net_guest.h"
#include "support/virtio_driver.h"

#define RAM_SIZE   (64u << 20)
#define PAYLOAD    1472
#define GUEST_PORT 9999
#define BATCH      32
#define RXBUFS     200

enum mode { M_SLIRP, M_VIRTIO, M_E1000 };

struct bench {
    enum mode mode;
    struct harness *h;
    struct pci_bus bus;
    struct net_backend *nb;
    struct virtio_net *vnet;
    struct e1000 *e1k;
    struct vdrv vd;
    struct e1000_drv ed;
    struct net_guest g;
    uint64_t txhdr, txbuf;
    uint64_t buf_of[256];
    uint64_t rx_frames;       /* baseline: frames the stub NIC took */
    uint8_t stub_frame[2048]; /* baseline: the last one, for DHCP */
    size_t stub_len;
    int fwd_port;
};

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x77 };

static double now_s(void)
{
    return (double)evloop_now_ns() / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "net-throughput: %s\n", what);
    exit(1);
}

/* --- per-model guest plumbing ------------------------------------------ */

static void v_post_rx(struct bench *b, uint64_t addr)
{
    struct vdrv_buf buf = { addr, 2048, true };
    b->buf_of[vdrv_post(&b->vd, 0, &buf, 1)] = addr;
}

static int v_recv(void *opaque, uint8_t *out, size_t cap)
{
    struct bench *b = opaque;
    struct vdrv *d = &b->vd;
    if (vdrv_used_idx(d, 0) == d->q[0].used_seen)
        return 0;
    uint32_t id, len;
    if (!vdrv_wait_used(d, 0, &id, &len, 0) || id >= 256 || len < 12)
        return -1;
    size_t n = MIN((size_t)len - 12, cap);
    vdrv_mem_read(d, b->buf_of[id] + 12, out, n);
    v_post_rx(b, b->buf_of[id]);
    vdrv_notify(d, 0);
    return (int)n;
}

/* Posts up to n frames as one batch; returns when the device used them. */
static void v_send_batch(struct bench *b, const uint8_t *frame, size_t len, unsigned n)
{
    struct vdrv *d = &b->vd;
    for (unsigned i = 0; i < n; i++) {
        struct vdrv_buf bufs[2] = { { b->txhdr, 12, false }, { b->txbuf, (uint32_t)len, false } };
        vdrv_post(d, 1, bufs, 2);
    }
    vdrv_mem_write(d, b->txbuf, frame, len);
    vdrv_notify(d, 1);
    for (unsigned i = 0; i < n; i++)
        if (!vdrv_wait_used(d, 1, NULL, NULL, 1000))
            die("virtio-net transmit stalled");
}

static int v_send(void *opaque, const uint8_t *frame, size_t len)
{
    v_send_batch(opaque, frame, len, 1);
    return 0;
}

static int e_send(void *opaque, const uint8_t *frame, size_t len)
{
    struct bench *b = opaque;
    return e1k_send(&b->ed, frame, len, 1);
}

static int e_recv(void *opaque, uint8_t *out, size_t cap)
{
    struct bench *b = opaque;
    return e1k_recv(&b->ed, out, cap);
}

static void poll_loop(void *opaque, int ms)
{
    struct bench *b = opaque;
    evloop_run_once(b->h->plat.loop, ms);
}

/* Baseline NIC: takes every frame at once. */
static bool stub_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct bench *b = opaque;
    b->rx_frames++;
    if (len <= sizeof(b->stub_frame)) {
        memcpy(b->stub_frame, frame, len);
        b->stub_len = len;
    }
    return true;
}

static const struct net_nic_ops stub_ops = { .receive = stub_receive };

static int stub_send(void *opaque, const uint8_t *frame, size_t len)
{
    struct bench *b = opaque;
    struct iovec iov = { (void *)frame, len };
    return net_backend_send(b->nb, &iov, 1);
}

static int stub_recv(void *opaque, uint8_t *out, size_t cap)
{
    struct bench *b = opaque;
    size_t n = b->stub_len;
    if (!n || n > cap)
        return 0;
    memcpy(out, b->stub_frame, n);
    b->stub_len = 0;
    return (int)n;
}

static void bench_init(struct bench *b, enum mode mode)
{
    memset(b, 0, sizeof(*b));
    b->mode = mode;
    b->h = harness_new(RAM_SIZE);
    if (!b->h)
        die("out of memory");
    harness_pci_bus_init(&b->bus, b->h);
    b->fwd_port = ng_host_free_port(true);
    char spec[128], err[256];
    snprintf(spec, sizeof(spec), "user,hostfwd=udp::%d-:%d", b->fwd_port, GUEST_PORT);
    struct net_user_opts opts;
    if (net_parse_opts(spec, &opts, err, sizeof(err)) < 0)
        die(err);
    b->nb = net_slirp_new(b->h->plat.loop, &opts, err, sizeof(err));
    if (!b->nb)
        die(err);
    struct net_guest_nic gn = { b, stub_send, stub_recv, poll_loop };
    if (mode == M_VIRTIO) {
        b->vnet = virtio_net_create(&b->h->plat, &b->bus, b->nb, mac, NULL, err, sizeof(err));
        int devfn = b->vnet ? harness_pci_find(&b->bus, 0x1af4, 0x1041) : -1;
        if (devfn < 0 || vdrv_probe(&b->vd, b->h, &b->bus, (uint8_t)devfn, 0xe0000000ULL) < 0)
            die("virtio-net set-up");
        struct vdrv *d = &b->vd;
        if (!vdrv_reset(d) || !vdrv_negotiate(d, 1ULL << 32 | 1ULL << 5 | 1ULL << 16) ||
            vdrv_setup_queue(d, 0, 256, VDRV_NO_VECTOR) < 0 ||
            vdrv_setup_queue(d, 1, 256, VDRV_NO_VECTOR) < 0)
            die("virtio-net bring-up");
        vdrv_driver_ok(d);
        b->txhdr = vdrv_alloc(d, 12, 16);
        b->txbuf = vdrv_alloc(d, 2048, 16);
        for (int i = 0; i < RXBUFS; i++)
            v_post_rx(b, vdrv_alloc(d, 2048, 16));
        vdrv_notify(d, 0);
        gn = (struct net_guest_nic){ b, v_send, v_recv, poll_loop };
    } else if (mode == M_E1000) {
        b->e1k = e1000_create(&b->h->plat, &b->bus, b->nb, mac, NULL, err, sizeof(err));
        if (!b->e1k ||
            e1k_probe(&b->ed, b->h, &b->bus, 0xe0000000ULL, 0xc000, 1u << 20, RAM_SIZE) < 0 ||
            e1k_init(&b->ed, 256, 256, E1K_RCTL_SECRC) < 0)
            die("e1000 set-up");
        gn = (struct net_guest_nic){ b, e_send, e_recv, poll_loop };
    } else {
        net_backend_attach(b->nb, &stub_ops, b);
    }
    ng_init(&b->g, &gn, mac);
    /* The lease also tells libslirp the guest's MAC for forwarded traffic. */
    if (ng_dhcp(&b->g, 10000) < 0 || ng_arp(&b->g, ng_ip("10.0.2.2"), b->g.gw_mac, 5000) < 0)
        die("no DHCP lease or ARP answer");
}

static void bench_free(struct bench *b)
{
    if (b->vnet)
        virtio_net_destroy(b->vnet);
    if (b->e1k)
        e1000_destroy(b->e1k);
    net_backend_free(b->nb);
    harness_free(b->h);
}

static const char *mode_name(enum mode m)
{
    return m == M_VIRTIO ? "virtio-net" : m == M_E1000 ? "e1000" : "libslirp (no device)";
}

/* --- measurements ------------------------------------------------------- */

static int sink_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        die("sink socket");
    *port = ntohs(a.sin_port);
    return fd;
}

static uint64_t drain(int fd)
{
    char buf[2048];
    uint64_t n = 0;
    while (recv(fd, buf, sizeof(buf), 0) > 0)
        n++;
    return n;
}

static void transmit(enum mode mode, double seconds)
{
    struct bench b;
    bench_init(&b, mode);
    uint16_t port;
    int fd = sink_socket(&port);
    static uint8_t payload[PAYLOAD];
    uint8_t frame[2048];
    size_t len = ng_build_udp(&b.g, frame, sizeof(frame), b.g.gw_mac, b.g.ip, b.g.gw, 4444, port,
                              payload, sizeof(payload), 1);
    uint64_t got = 0, sent = 0;
    double t0 = now_s(), t;
    while ((t = now_s()) - t0 < seconds) {
        if (mode == M_VIRTIO) {
            v_send_batch(&b, frame, len, BATCH);
        } else {
            for (int i = 0; i < BATCH; i++)
                b.g.nic.send(&b, frame, len);
        }
        sent += BATCH;
        evloop_run_once(b.h->plat.loop, 0);
        got += drain(fd);
    }
    for (int i = 0; i < 20; i++) {
        evloop_run_once(b.h->plat.loop, 5);
        got += drain(fd);
    }
    t = now_s() - t0;
    printf("  %-22s transmit: %9.0f frames/s %8.1f MB/s  (%llu of %llu frames arrived)\n",
           mode_name(mode), (double)got / t, (double)got * (double)len / t / 1e6,
           (unsigned long long)got, (unsigned long long)sent);
    close(fd);
    bench_free(&b);
}

static void receive(enum mode mode, double seconds)
{
    struct bench b;
    bench_init(&b, mode);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)b.fwd_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    static uint8_t payload[PAYLOAD];
    static uint8_t in[2048];
    uint64_t got = 0, sent = 0, base = b.rx_frames;
    double t0 = now_s(), t;
    while ((t = now_s()) - t0 < seconds) {
        for (int i = 0; i < BATCH; i++)
            if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)) > 0)
                sent++;
        /* libslirp reads one datagram per socket per poll round: give it
         * the rounds a busy I/O thread would. */
        uint64_t want = sent;
        for (int r = 0; r < 2 * BATCH && got < want; r++) {
            evloop_run_once(b.h->plat.loop, 0);
            if (mode == M_SLIRP) {
                got = b.rx_frames - base;
            } else {
                while (b.g.nic.recv(&b, in, sizeof(in)) > 0)
                    got++;
            }
        }
    }
    t = now_s() - t0;
    size_t flen = 14 + 20 + 8 + PAYLOAD;
    printf("  %-22s receive:  %9.0f frames/s %8.1f MB/s  (%llu of %llu datagrams arrived)\n",
           mode_name(mode), (double)got / t, (double)got * (double)flen / t / 1e6,
           (unsigned long long)got, (unsigned long long)sent);
    close(fd);
    bench_free(&b);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    log_set_prefix("net-throughput: ");
    printf("net-throughput: 1514-byte frames, %.1f s per figure, device harness (no KVM)\n", seconds);
    for (enum mode m = M_SLIRP; m <= M_E1000; m++)
        transmit(m, seconds);
    for (enum mode m = M_SLIRP; m <= M_E1000; m++)
        receive(m, seconds);
    return 0;
}
