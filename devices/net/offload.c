/* Software checksum and TCP segmentation offload (RFC 791, 793, 768, 8200,
 * and the Internet checksum of RFC 1071). */
#include "devices/net/offload.h"

#include <string.h>

#define ETH_P_IP    0x0800
#define ETH_P_IPV6  0x86dd
#define ETH_P_8021Q 0x8100
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

uint32_t net_csum_add(uint32_t sum, const uint8_t *buf, size_t len)
{
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        s += (uint32_t)(buf[i] << 8 | buf[i + 1]);
    if (i < len)
        s += (uint32_t)buf[i] << 8;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t net_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int net_csum_insert(uint8_t *frame, size_t len, size_t start, size_t off, size_t end)
{
    if (start >= end || end > len || off > len - 2 || off < start)
        return -1;
    put16(frame + off, net_csum_fold(net_csum_add(0, frame + start, end - start)));
    return 0;
}

int net_parse_l4(const uint8_t *frame, size_t len, struct net_tso *t)
{
    size_t l3 = 14;
    if (len < l3)
        return -1;
    uint16_t type = be16(frame + 12);
    if (type == ETH_P_8021Q) {
        if (len < 18)
            return -1;
        type = be16(frame + 16);
        l3 = 18;
    }
    uint8_t proto;
    size_t l4;
    if (type == ETH_P_IP) {
        if (len < l3 + 20 || (frame[l3] >> 4) != 4)
            return -1;
        size_t ihl = (size_t)(frame[l3] & 15) * 4;
        if (ihl < 20 || len < l3 + ihl)
            return -1;
        proto = frame[l3 + 9];
        l4 = l3 + ihl;
        t->ipv6 = false;
    } else if (type == ETH_P_IPV6) {
        if (len < l3 + 40 || (frame[l3] >> 4) != 6)
            return -1;
        proto = frame[l3 + 6];
        l4 = l3 + 40;
        t->ipv6 = true;
    } else {
        return -1;
    }
    if (proto == IPPROTO_TCP_) {
        if (len < l4 + 20)
            return -1;
        size_t doff = (size_t)(frame[l4 + 12] >> 4) * 4;
        if (doff < 20 || len < l4 + doff)
            return -1;
        t->hdr_len = l4 + doff;
        t->udp = false;
    } else if (proto == IPPROTO_UDP_) {
        if (len < l4 + 8)
            return -1;
        t->hdr_len = l4 + 8;
        t->udp = true;
    } else {
        return -1;
    }
    t->l3 = l3;
    t->l4 = l4;
    return 0;
}

/* Pseudo-header sum for the L4 checksum (RFC 793 3.1, RFC 8200 8.1). */
static uint32_t pseudo_sum(const uint8_t *seg, const struct net_tso *t, size_t l4len)
{
    uint32_t sum;
    uint8_t tail[4];
    if (t->ipv6) {
        sum = net_csum_add(0, seg + t->l3 + 8, 32);
        uint8_t b[8] = { 0 };
        put32(b, (uint32_t)l4len);
        b[7] = t->udp ? IPPROTO_UDP_ : IPPROTO_TCP_;
        return net_csum_add(sum, b, 8);
    }
    sum = net_csum_add(0, seg + t->l3 + 12, 8);
    tail[0] = 0;
    tail[1] = t->udp ? IPPROTO_UDP_ : IPPROTO_TCP_;
    put16(tail + 2, (uint16_t)l4len);
    return net_csum_add(sum, tail, 4);
}

int net_tso_segment(const uint8_t *frame, size_t len, const struct net_tso *t, uint8_t *buf,
                    size_t buflen, net_emit_fn emit, void *opaque)
{
    size_t l4min = t->udp ? 8 : 20;
    size_t l3min = t->ipv6 ? 40 : 20;
    if (t->mss == 0 || t->l3 < 14 || t->l4 < t->l3 + l3min || t->hdr_len < t->l4 + l4min ||
        t->hdr_len >= len || buflen < t->hdr_len + t->mss)
        return -1;
    if (t->ipv6 ? (frame[t->l3] >> 4) != 6 : (frame[t->l3] >> 4) != 4)
        return -1;
    if (!t->ipv6 && (size_t)(frame[t->l3] & 15) * 4 < 20)
        return -1;
    if (!t->ipv6 && t->l3 + (size_t)(frame[t->l3] & 15) * 4 > t->l4)
        return -1;
    size_t payload = len - t->hdr_len;
    uint16_t ip_id = t->ipv6 ? 0 : be16(frame + t->l3 + 4);
    uint32_t seq = t->udp ? 0 : be32(frame + t->l4 + 4);
    uint8_t tcp_flags = t->udp ? 0 : frame[t->l4 + 13];
    int nseg = 0;
    for (size_t off = 0; off < payload; off += t->mss, nseg++) {
        size_t n = payload - off < t->mss ? payload - off : t->mss;
        bool first = off == 0, last = off + n == payload;
        memcpy(buf, frame, t->hdr_len);
        memcpy(buf + t->hdr_len, frame + t->hdr_len + off, n);
        size_t seglen = t->hdr_len + n;
        size_t l4len = seglen - t->l4;
        uint8_t *ip = buf + t->l3, *l4 = buf + t->l4;
        if (t->ipv6) {
            put16(ip + 4, (uint16_t)(seglen - t->l3 - 40));
        } else {
            size_t ihl = (size_t)(ip[0] & 15) * 4;
            put16(ip + 2, (uint16_t)(seglen - t->l3));
            put16(ip + 4, (uint16_t)(ip_id + nseg));
            put16(ip + 10, 0);
            put16(ip + 10, net_csum_fold(net_csum_add(0, ip, ihl)));
        }
        size_t csum_off;
        if (t->udp) {
            put16(l4 + 4, (uint16_t)l4len);
            csum_off = 6;
        } else {
            put32(l4 + 4, seq + (uint32_t)off);
            uint8_t f = tcp_flags;
            if (!last)
                f &= (uint8_t)~(TCP_FIN | TCP_PSH);
            if (!first)
                f &= (uint8_t)~TCP_CWR;
            l4[13] = f;
            csum_off = 16;
        }
        put16(l4 + csum_off, 0);
        uint16_t c = net_csum_fold(net_csum_add(pseudo_sum(buf, t, l4len), l4, l4len));
        if (t->udp && c == 0)
            c = 0xffff;   /* RFC 768: zero means "no checksum" */
        put16(l4 + csum_off, c);
        emit(opaque, buf, seglen);
    }
    return nseg;
}
