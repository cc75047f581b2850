/* Guest-side test network stack (see net_guest.h).  RFC 826 (ARP), 791
 * (IPv4), 768 (UDP), 1071 (checksum), 2131/2132 (DHCP), 1350 (TFTP). */
#include "support/net_guest.h"

#include "devices/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ETH_HLEN     14
#define ETHERTYPE_IP  0x0800
#define ETHERTYPE_ARP 0x0806
#define IP_HLEN      20
#define UDP_HLEN     8
#define PROTO_UDP    17
#define ARP_REQUEST  1
#define ARP_REPLY    2

#define DHCP_CLIENT_PORT 68
#define DHCP_SERVER_PORT 67
#define BOOTP_FIXED  236          /* op .. file */
#define DHCP_OPTS    312          /* options field incl. the magic cookie */
#define DHCP_DISCOVER 1
#define DHCP_OFFER    2
#define DHCP_REQUEST  3
#define DHCP_ACK      5
#define DHCP_NAK      6

#define TFTP_PORT    69
#define TFTP_RRQ     1
#define TFTP_DATA    3
#define TFTP_ACK     4
#define TFTP_ERROR   5
#define TFTP_BLOCK   512
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t ng_ip(const char *dotted)
{
    struct in_addr a;
    return inet_pton(AF_INET, dotted, &a) == 1 ? a.s_addr : 0;
}

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static uint16_t udp_checksum(const uint8_t *ip, const uint8_t *udp, size_t udp_len)
{
    uint8_t ph[12];
    memcpy(ph, ip + 12, 8);            /* source, destination */
    ph[8] = 0;
    ph[9] = PROTO_UDP;
    put16(ph + 10, (uint16_t)udp_len);
    return fold(sum16(sum16(0, ph, 12), udp, udp_len));
}

void ng_init(struct net_guest *g, const struct net_guest_nic *nic, const uint8_t mac[6])
{
    memset(g, 0, sizeof(*g));
    g->nic = *nic;
    memcpy(g->mac, mac, 6);
    g->xid = 0x4255524fu ^ (uint32_t)now_ms();
    g->ip_id = 1;
    g->next_port = 40000;
}

size_t ng_build_udp(const struct net_guest *g, uint8_t *f, size_t cap, const uint8_t dst_mac[6],
                    uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                    const void *data, size_t len, uint16_t ip_id)
{
    size_t total = ETH_HLEN + IP_HLEN + UDP_HLEN + len;
    if (total > cap || IP_HLEN + UDP_HLEN + len > 65535)
        return 0;
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, g->mac, 6);
    put16(f + 12, ETHERTYPE_IP);
    uint8_t *ip = f + ETH_HLEN, *udp = ip + IP_HLEN;
    memset(ip, 0, IP_HLEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(IP_HLEN + UDP_HLEN + len));
    put16(ip + 4, ip_id);
    ip[8] = 64;
    ip[9] = PROTO_UDP;
    memcpy(ip + 12, &src_ip, 4);
    memcpy(ip + 16, &dst_ip, 4);
    put16(ip + 10, fold(sum16(0, ip, IP_HLEN)));
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, (uint16_t)(UDP_HLEN + len));
    put16(udp + 6, 0);
    memcpy(udp + UDP_HLEN, data, len);
    uint16_t c = udp_checksum(ip, udp, UDP_HLEN + len);
    put16(udp + 6, c ? c : 0xffff);
    return total;
}

static void arp_send(struct net_guest *g, uint16_t op, const uint8_t *tha, uint32_t tpa,
                     const uint8_t *dst)
{
    uint8_t f[60] = { 0 };
    memcpy(f, dst, 6);
    memcpy(f + 6, g->mac, 6);
    put16(f + 12, ETHERTYPE_ARP);
    uint8_t *a = f + ETH_HLEN;
    put16(a, 1);                 /* Ethernet */
    put16(a + 2, ETHERTYPE_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, g->mac, 6);
    memcpy(a + 14, &g->ip, 4);
    memcpy(a + 18, tha, 6);
    memcpy(a + 24, &tpa, 4);
    g->nic.send(g->nic.opaque, f, sizeof(f));
}

/* Handles ARP; returns true when the frame was ARP. */
static bool arp_input(struct net_guest *g, const uint8_t *f, size_t len, uint32_t want_ip,
                      uint8_t *want_mac, bool *found)
{
    if (len < ETH_HLEN + 28 || get16(f + 12) != ETHERTYPE_ARP)
        return false;
    const uint8_t *a = f + ETH_HLEN;
    if (get16(a) != 1 || get16(a + 2) != ETHERTYPE_IP || a[4] != 6 || a[5] != 4)
        return true;
    uint32_t spa, tpa;
    memcpy(&spa, a + 14, 4);
    memcpy(&tpa, a + 24, 4);
    uint16_t op = get16(a + 6);
    if (op == ARP_REQUEST && g->ip && tpa == g->ip) {
        arp_send(g, ARP_REPLY, a + 8, spa, a + 8);
        g->arp_answered++;
    } else if (op == ARP_REPLY) {
        if (want_mac && spa == want_ip) {
            memcpy(want_mac, a + 8, 6);
            *found = true;
        }
        if (g->gw && spa == g->gw) {
            memcpy(g->gw_mac, a + 8, 6);
            g->gw_mac_known = true;
        }
    }
    return true;
}

/* Next non-ARP frame, or 0 on timeout. */
static int next_frame(struct net_guest *g, uint8_t *buf, size_t cap, uint64_t deadline,
                      uint32_t want_ip, uint8_t *want_mac, bool *found)
{
    for (;;) {
        int n = g->nic.recv(g->nic.opaque, buf, cap);
        if (n < 0)
            return -1;
        if (n > 0) {
            g->frames_in++;
            if (arp_input(g, buf, (size_t)n, want_ip, want_mac, found)) {
                if (found && *found)
                    return 0;
                continue;
            }
            return n;
        }
        if (now_ms() >= deadline)
            return 0;
        g->nic.poll(g->nic.opaque, 2);
    }
}

/* Retries are sent every 500 ms within the overall deadline. */
static uint64_t retry_at(uint64_t deadline)
{
    uint64_t r = now_ms() + 500;
    return r < deadline ? r : deadline;
}

int ng_arp(struct net_guest *g, uint32_t ip, uint8_t mac[6], int timeout_ms)
{
    static const uint8_t zero[6];
    uint8_t buf[2048];
    bool found = false;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < deadline) {
        arp_send(g, ARP_REQUEST, zero, ip, bcast_mac);
        uint64_t retry = retry_at(deadline);
        while (!found && now_ms() < retry) {
            int n = next_frame(g, buf, sizeof(buf), retry, ip, mac, &found);
            if (n < 0)
                return -1;
            if (n > 0)
                g->ignored++;
        }
        if (found) {
            if (ip == g->gw) {
                memcpy(g->gw_mac, mac, 6);
                g->gw_mac_known = true;
            }
            return 0;
        }
    }
    fprintf(stderr, "net_guest: no ARP reply for %s\n", inet_ntoa((struct in_addr){ ip }));
    return -1;
}

int ng_udp_send(struct net_guest *g, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                const void *data, size_t len)
{
    uint8_t f[2048];
    const uint8_t *dmac = bcast_mac;
    if (dst_ip != 0xffffffffu) {
        if (!g->gw_mac_known && (!g->gw || ng_arp(g, g->gw, g->gw_mac, 3000) < 0))
            return -1;
        dmac = g->gw_mac;   /* everything on the user network sits behind the gateway's MAC */
    }
    size_t n = ng_build_udp(g, f, sizeof(f), dmac, g->ip, dst_ip, sport, dport, data, len, g->ip_id++);
    if (!n)
        return -1;
    return g->nic.send(g->nic.opaque, f, n);
}

/* Parses an IPv4/UDP frame; checks both checksums.  Returns the payload
 * length and sets the pointers, or -1 when it is not UDP, -2 on a bad
 * checksum. */
static int udp_parse(const uint8_t *f, size_t len, const uint8_t **ip_out, const uint8_t **udp_out)
{
    if (len < ETH_HLEN + IP_HLEN + UDP_HLEN || get16(f + 12) != ETHERTYPE_IP)
        return -1;
    const uint8_t *ip = f + ETH_HLEN;
    size_t ihl = (size_t)(ip[0] & 15) * 4;
    if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || ip[9] != PROTO_UDP)
        return -1;
    size_t tot = get16(ip + 2);
    if (tot < ihl + UDP_HLEN || ETH_HLEN + tot > len)
        return -1;
    if ((get16(ip + 6) & 0x3fff) != 0)
        return -1;   /* fragments: not needed here */
    if (fold(sum16(0, ip, ihl)) != 0)
        return -2;
    const uint8_t *udp = ip + ihl;
    size_t ulen = get16(udp + 4);
    if (ulen < UDP_HLEN || ulen > tot - ihl)
        return -1;
    if (get16(udp + 6) != 0 && udp_checksum(ip, udp, ulen) != 0)
        return -2;
    *ip_out = ip;
    *udp_out = udp;
    return (int)(ulen - UDP_HLEN);
}

static int udp_wait(struct net_guest *g, uint16_t port, void *out, size_t cap, uint32_t *src_ip,
                    uint16_t *src_port, uint64_t deadline)
{
    static uint8_t buf[70000];
    for (;;) {
        int n = next_frame(g, buf, sizeof(buf), deadline, 0, NULL, NULL);
        if (n <= 0)
            return -1;
        const uint8_t *ip, *udp;
        int plen = udp_parse(buf, (size_t)n, &ip, &udp);
        if (plen == -2) {
            g->bad_checksums++;
            continue;
        }
        if (plen < 0 || get16(udp + 2) != port) {
            g->ignored++;
            continue;
        }
        uint32_t dst;
        memcpy(&dst, ip + 16, 4);
        if (g->ip && dst != g->ip && dst != 0xffffffffu) {
            g->ignored++;
            continue;
        }
        memcpy(out, udp + UDP_HLEN, MIN_SZ((size_t)plen, cap));
        if (src_ip)
            memcpy(src_ip, ip + 12, 4);
        if (src_port)
            *src_port = get16(udp);
        return plen;
    }
}

int ng_udp_recv(struct net_guest *g, uint16_t port, void *buf, size_t cap, uint32_t *src_ip,
                uint16_t *src_port, int timeout_ms)
{
    return udp_wait(g, port, buf, cap, src_ip, src_port, now_ms() + (uint64_t)timeout_ms);
}

/* --- DHCP --------------------------------------------------------------- */

static size_t dhcp_build(struct net_guest *g, uint8_t *p, uint8_t type, uint32_t req_ip,
                         uint32_t server)
{
    memset(p, 0, BOOTP_FIXED + DHCP_OPTS);
    p[0] = 1;                           /* BOOTREQUEST */
    p[1] = 1;                           /* Ethernet */
    p[2] = 6;
    memcpy(p + 4, &g->xid, 4);
    put16(p + 10, 0x8000);              /* broadcast replies: we have no address yet */
    memcpy(p + 28, g->mac, 6);
    uint8_t *o = p + BOOTP_FIXED;
    static const uint8_t cookie[4] = { 99, 130, 83, 99 };
    memcpy(o, cookie, 4);
    o += 4;
    *o++ = 53; *o++ = 1; *o++ = type;
    if (req_ip) {
        *o++ = 50; *o++ = 4; memcpy(o, &req_ip, 4); o += 4;
    }
    if (server) {
        *o++ = 54; *o++ = 4; memcpy(o, &server, 4); o += 4;
    }
    *o++ = 55; *o++ = 4; *o++ = 1; *o++ = 3; *o++ = 6; *o++ = 67;
    *o++ = 255;
    return BOOTP_FIXED + DHCP_OPTS;     /* a full-size BOOTP message */
}

struct dhcp_reply {
    uint8_t type;
    uint32_t yiaddr, mask, router, dns, server, lease;
    char file[128];
};

static int dhcp_parse(const struct net_guest *g, const uint8_t *p, size_t len, struct dhcp_reply *r)
{
    memset(r, 0, sizeof(*r));
    if (len < BOOTP_FIXED + 4 || p[0] != 2 || memcmp(p + 4, &g->xid, 4) || memcmp(p + 28, g->mac, 6))
        return -1;
    if (p[BOOTP_FIXED] != 99 || p[BOOTP_FIXED + 1] != 130 || p[BOOTP_FIXED + 2] != 83 ||
        p[BOOTP_FIXED + 3] != 99)
        return -1;
    memcpy(&r->yiaddr, p + 16, 4);
    memcpy(r->file, p + 108, 127);
    size_t i = BOOTP_FIXED + 4;
    while (i < len && p[i] != 255) {
        if (p[i] == 0) {
            i++;
            continue;
        }
        if (i + 2 > len || i + 2 + p[i + 1] > len)
            return -1;
        uint8_t code = p[i], l = p[i + 1];
        const uint8_t *v = p + i + 2;
        if (code == 53 && l == 1)
            r->type = v[0];
        else if (code == 1 && l >= 4)
            memcpy(&r->mask, v, 4);
        else if (code == 3 && l >= 4)
            memcpy(&r->router, v, 4);
        else if (code == 6 && l >= 4)
            memcpy(&r->dns, v, 4);
        else if (code == 54 && l >= 4)
            memcpy(&r->server, v, 4);
        else if (code == 51 && l >= 4)
            r->lease = ntohl((uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
                             (uint32_t)v[3] << 24);
        i += 2 + (size_t)l;
    }
    return r->type ? 0 : -1;
}

/* Sends one DHCP message and waits for a reply of type want. */
static int dhcp_exchange(struct net_guest *g, uint8_t type, uint32_t req_ip, uint32_t server,
                         uint8_t want, struct dhcp_reply *r, uint64_t deadline)
{
    uint8_t msg[BOOTP_FIXED + DHCP_OPTS];
    static uint8_t in[2048];
    while (now_ms() < deadline) {
        size_t n = dhcp_build(g, msg, type, req_ip, server);
        uint8_t f[1024];
        size_t fl = ng_build_udp(g, f, sizeof(f), bcast_mac, 0, 0xffffffffu, DHCP_CLIENT_PORT,
                                 DHCP_SERVER_PORT, msg, n, g->ip_id++);
        if (!fl || g->nic.send(g->nic.opaque, f, fl) < 0)
            return -1;
        uint64_t retry = retry_at(deadline);
        for (;;) {
            int len = udp_wait(g, DHCP_CLIENT_PORT, in, sizeof(in), NULL, NULL, retry);
            if (len < 0)
                break;
            if (dhcp_parse(g, in, (size_t)len, r) < 0)
                continue;
            if (r->type == DHCP_NAK) {
                fprintf(stderr, "net_guest: DHCP NAK\n");
                return -1;
            }
            if (r->type == want)
                return 0;
        }
    }
    return -1;
}

int ng_dhcp(struct net_guest *g, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    struct dhcp_reply offer, ack;
    g->xid++;
    if (dhcp_exchange(g, DHCP_DISCOVER, 0, 0, DHCP_OFFER, &offer, deadline) < 0) {
        fprintf(stderr, "net_guest: no DHCPOFFER\n");
        return -1;
    }
    if (!offer.yiaddr || !offer.server) {
        fprintf(stderr, "net_guest: DHCPOFFER without an address or server id\n");
        return -1;
    }
    if (dhcp_exchange(g, DHCP_REQUEST, offer.yiaddr, offer.server, DHCP_ACK, &ack, deadline) < 0) {
        fprintf(stderr, "net_guest: no DHCPACK\n");
        return -1;
    }
    if (ack.yiaddr != offer.yiaddr) {
        fprintf(stderr, "net_guest: DHCPACK for another address\n");
        return -1;
    }
    g->ip = ack.yiaddr;
    g->mask = ack.mask;
    g->gw = ack.router;
    g->dns = ack.dns;
    g->server_id = ack.server;
    g->lease_s = ack.lease;
    memcpy(g->bootfile, ack.file, sizeof(g->bootfile));
    g->bootfile[sizeof(g->bootfile) - 1] = 0;
    return 0;
}

/* --- TFTP --------------------------------------------------------------- */

long ng_tftp_get(struct net_guest *g, uint32_t server_ip, const char *name, uint8_t *out,
                 size_t cap, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    uint16_t port = g->next_port++;
    uint8_t req[600];
    size_t nl = strlen(name);
    if (nl + 9 > sizeof(req))
        return -1;
    put16(req, TFTP_RRQ);
    memcpy(req + 2, name, nl + 1);
    memcpy(req + 3 + nl, "octet", 6);
    size_t reqlen = 2 + nl + 1 + 6;

    static uint8_t in[TFTP_BLOCK + 64];
    uint16_t server_port = 0, expect = 1;
    size_t total = 0;
    uint8_t last_ack[4];
    bool have_ack = false;
    uint64_t retry = 0;
    while (now_ms() < deadline) {
        if (now_ms() >= retry) {
            /* (Re)send the request or the last acknowledgement. */
            if (!have_ack)
                ng_udp_send(g, server_ip, port, TFTP_PORT, req, reqlen);
            else
                ng_udp_send(g, server_ip, port, server_port, last_ack, 4);
            retry = retry_at(deadline);
        }
        uint32_t from;
        uint16_t from_port;
        int n = udp_wait(g, port, in, sizeof(in), &from, &from_port, retry);
        if (n < 0)
            continue;
        if (n < 4 || from != server_ip)
            continue;
        uint16_t op = get16(in);
        if (op == TFTP_ERROR) {
            fprintf(stderr, "net_guest: TFTP error %u: %.*s\n", get16(in + 2), n - 4, (char *)in + 4);
            return -1;
        }
        if (op != TFTP_DATA || n > (int)sizeof(in))
            continue;
        if (server_port && from_port != server_port)
            continue;   /* another transfer's TID */
        server_port = from_port;
        uint16_t block = get16(in + 2);
        size_t dlen = (size_t)n - 4;
        if (block == expect) {
            if (total < cap)
                memcpy(out + total, in + 4, MIN_SZ(dlen, cap - total));
            total += dlen;
            expect++;
        }
        put16(last_ack, TFTP_ACK);
        put16(last_ack + 2, block);
        have_ack = true;
        ng_udp_send(g, server_ip, port, server_port, last_ack, 4);
        retry = retry_at(deadline);
        if (block == (uint16_t)(expect - 1) && dlen < TFTP_BLOCK)
            return (long)total;
    }
    fprintf(stderr, "net_guest: TFTP transfer of %s timed out after %zu bytes\n", name, total);
    return -1;
}

/* --- host side of the tests --------------------------------------------- */

int ng_host_free_port(bool udp)
{
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int ng_make_tftp_dir(char *dir, size_t dirlen, const char *name, uint8_t *content, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = P_tmpdir;
    if ((size_t)snprintf(dir, dirlen, "%s/burrow-tftp-XXXXXX", tmp) >= dirlen || !mkdtemp(dir))
        return -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint32_t x = 0x12345678u;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        uint8_t b = (uint8_t)(x >> 16);
        if (content)
            content[i] = b;
        fputc(b, f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

void ng_remove_tftp_dir(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    rmdir(dir);
}

int ng_check_hostfwd_udp(struct net_guest *g, uint16_t host_port, uint16_t guest_port,
                         int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(host_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    char msg[64];
    snprintf(msg, sizeof(msg), "hello guest %u", (unsigned)now_ms());
    int ret = -1;
    if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
        fprintf(stderr, "net_guest: sendto: %s\n", strerror(errno));
        goto out;
    }
    uint8_t in[256];
    uint32_t from;
    uint16_t from_port;
    int n = ng_udp_recv(g, guest_port, in, sizeof(in) - 1, &from, &from_port, timeout_ms);
    if (n < 0) {
        fprintf(stderr, "net_guest: the forwarded datagram never reached the guest\n");
        goto out;
    }
    if ((size_t)n != strlen(msg) || memcmp(in, msg, (size_t)n)) {
        fprintf(stderr, "net_guest: the guest got other bytes than the host sent\n");
        goto out;
    }
    char reply[128];
    int rl = snprintf(reply, sizeof(reply), "echo:%s", msg);
    if (ng_udp_send(g, from, guest_port, from_port, reply, (size_t)rl) < 0)
        goto out;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < deadline) {
        char back[256];
        ssize_t r = recv(fd, back, sizeof(back), 0);
        if (r == rl && !memcmp(back, reply, (size_t)rl)) {
            ret = 0;
            goto out;
        }
        if (r >= 0) {
            fprintf(stderr, "net_guest: the host got a wrong answer (%zd bytes)\n", r);
            goto out;
        }
        g->nic.poll(g->nic.opaque, 5);
    }
    fprintf(stderr, "net_guest: the guest's answer never reached the host\n");
out:
    close(fd);
    return ret;
}

int ng_user_session(struct net_guest *g, const char *name, const uint8_t *content, size_t len,
                    uint16_t host_port, uint16_t guest_port)
{
    if (ng_dhcp(g, 10000) < 0) {
        fprintf(stderr, "net_guest: no DHCP lease\n");
        return -1;
    }
    if (g->ip != ng_ip("10.0.2.15") || g->gw != ng_ip("10.0.2.2") || g->dns != ng_ip("10.0.2.3") ||
        g->mask != ng_ip("255.255.255.0") || strcmp(g->bootfile, name)) {
        fprintf(stderr, "net_guest: DHCP gave ip %08x gw %08x dns %08x mask %08x boot file '%s'\n",
                ntohl(g->ip), ntohl(g->gw), ntohl(g->dns), ntohl(g->mask), g->bootfile);
        return -1;
    }
    uint8_t gw_mac[6];
    if (ng_arp(g, g->gw, gw_mac, 5000) < 0 || (gw_mac[0] & 1) ||
        !memcmp(gw_mac, "\0\0\0\0\0\0", 6)) {
        fprintf(stderr, "net_guest: the gateway's ARP answer is missing or not unicast\n");
        return -1;
    }
    uint8_t *got = malloc(len + 1024);
    if (!got)
        return -1;
    long n = ng_tftp_get(g, g->gw, name, got, len + 1024, 30000);
    bool same = n == (long)len && !memcmp(got, content, len);
    free(got);
    if (!same) {
        fprintf(stderr, "net_guest: TFTP of %s gave %ld bytes, not the %zu written\n", name, n, len);
        return -1;
    }
    if (ng_check_hostfwd_udp(g, host_port, guest_port, 5000) < 0)
        return -1;
    if (g->bad_checksums) {
        fprintf(stderr, "net_guest: %u frames with a bad checksum\n", g->bad_checksums);
        return -1;
    }
    return 0;
}

struct net_backend *ng_user_backend(struct evloop *loop, const char *model, const char *dir,
                                    const char *name, uint16_t host_port, uint16_t guest_port,
                                    char *err, size_t errlen)
{
    char spec[512];
    snprintf(spec, sizeof(spec), "user,model=%s,hostfwd=udp:127.0.0.1:%u-10.0.2.15:%u,tftp=%s,bootfile=%s",
             model, host_port, guest_port, dir, name);
    struct net_user_opts opts;
    if (net_parse_opts(spec, &opts, err, errlen) < 0)
        return NULL;
    return net_slirp_new(loop, &opts, err, errlen);
}
