/* Checksum and segmentation offloads that NIC models perform in software
 * before a frame reaches a backend (libslirp takes plain, complete frames
 * of at most the MTU). */
#ifndef BURROW_NET_OFFLOAD_H
#define BURROW_NET_OFFLOAD_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

/* Internet checksum over [start, end) of frame, folded and complemented,
 * stored big-endian at `off`.  The driver's partial sum (pseudo-header) in
 * the field is part of the range and so taken into account.  Returns 0, or
 * -1 (nothing written) when the offsets do not fit in len. */
int net_csum_insert(uint8_t *frame, size_t len, size_t start, size_t off, size_t end);

/* One's-complement 32-bit accumulation of buf (for composing sums). */
uint32_t net_csum_add(uint32_t sum, const uint8_t *buf, size_t len);
uint16_t net_csum_fold(uint32_t sum);

struct net_tso {
    size_t l3;          /* offset of the IPv4/IPv6 header */
    size_t l4;          /* offset of the TCP/UDP header */
    size_t hdr_len;     /* bytes of headers copied into every segment */
    unsigned mss;       /* payload bytes per segment */
    bool ipv6;
    bool udp;           /* UDP (each segment a datagram), else TCP */
};

typedef void (*net_emit_fn)(void *opaque, const uint8_t *frame, size_t len);

/* Cuts frame into segments of t->mss payload bytes, fixing the IP length
 * (and IPv4 id and header checksum), the TCP sequence number and flags and
 * the TCP/UDP checksum of each.  buf must hold hdr_len + mss bytes.
 * Returns the number of segments, or -1 when the headers are inconsistent
 * (the caller reports a guest error). */
int net_tso_segment(const uint8_t *frame, size_t len, const struct net_tso *t, uint8_t *buf,
                    size_t buflen, net_emit_fn emit, void *opaque);

/* Finds the L3/L4 offsets of an Ethernet frame carrying IPv4 or IPv6 with
 * TCP or UDP (one optional VLAN tag; no IPv6 extension headers).  Returns
 * 0 and fills t->l3, l4, hdr_len (through the TCP header or the 8-byte UDP
 * header), ipv6 and udp; -1 if the frame is not such a packet. */
int net_parse_l4(const uint8_t *frame, size_t len, struct net_tso *t);

#endif
