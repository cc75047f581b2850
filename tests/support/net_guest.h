/* A tiny guest-side network stack for device tests: Ethernet, ARP, IPv4,
 * UDP, a DHCP client (RFC 2131) and a TFTP client (RFC 1350), written from
 * the RFCs for the tests and independent of the device and backend code.
 * It talks to a NIC through three callbacks, so the same stack runs over
 * the virtio-net and the e1000 test drivers. */
#ifndef BURROW_TEST_NET_GUEST_H
#define BURROW_TEST_NET_GUEST_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

struct net_guest_nic {
    void *opaque;
    /* Sends one Ethernet frame (no FCS).  Returns 0, or -1. */
    int (*send)(void *opaque, const uint8_t *frame, size_t len);
    /* Copies the next received frame into buf; returns its length, 0 when
     * none is waiting, -1 on a driver-level error. */
    int (*recv)(void *opaque, uint8_t *buf, size_t cap);
    /* Lets the machine run for up to ms milliseconds (event loop). */
    void (*poll)(void *opaque, int ms);
};

struct net_guest {
    struct net_guest_nic nic;
    uint8_t mac[6];
    /* IPv4 addresses in network byte order; 0 until known. */
    uint32_t ip, mask, gw, dns, server_id;
    uint32_t lease_s;
    char bootfile[128];            /* DHCP "file" field */
    uint8_t gw_mac[6];
    bool gw_mac_known;
    uint32_t xid;
    uint16_t ip_id;
    uint16_t next_port;            /* ephemeral UDP ports */
    /* What the stack saw. */
    unsigned frames_in, bad_checksums, arp_answered, ignored;
};

void ng_init(struct net_guest *g, const struct net_guest_nic *nic, const uint8_t mac[6]);

/* DISCOVER, OFFER, REQUEST, ACK.  Returns 0 with ip/mask/gw/dns/server_id/
 * bootfile filled, or -1 (message on stderr). */
int ng_dhcp(struct net_guest *g, int timeout_ms);

/* Resolves ip (network order) with an ARP request.  Returns 0 or -1. */
int ng_arp(struct net_guest *g, uint32_t ip, uint8_t mac[6], int timeout_ms);

/* Sends a UDP datagram (to the gateway's MAC unless broadcast). */
int ng_udp_send(struct net_guest *g, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                const void *data, size_t len);
/* Waits for a datagram to port; returns its length (copied up to cap) and
 * the sender, or -1 on timeout.  Frames with a bad IP or UDP checksum are
 * counted in bad_checksums and skipped. */
int ng_udp_recv(struct net_guest *g, uint16_t port, void *buf, size_t cap, uint32_t *src_ip,
                uint16_t *src_port, int timeout_ms);

/* Reads a file from the TFTP server at server_ip (octet mode).  Returns the
 * number of bytes (at most cap are kept), or -1 (message on stderr). */
long ng_tftp_get(struct net_guest *g, uint32_t server_ip, const char *name, uint8_t *buf,
                 size_t cap, int timeout_ms);

/* Builds an Ethernet/IPv4/UDP frame with correct checksums into frame
 * (capacity cap); returns its length or 0. */
size_t ng_build_udp(const struct net_guest *g, uint8_t *frame, size_t cap, const uint8_t dst_mac[6],
                    uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport,
                    const void *data, size_t len, uint16_t ip_id);

/* --- the host side of the tests ----------------------------------------- */

/* A UDP (udp=true) or TCP port on 127.0.0.1 that nothing listens on now. */
int ng_host_free_port(bool udp);
/* Makes a fresh directory under $TMPDIR (or the system's temporary
 * directory) holding `name` with len bytes of a fixed pseudo-random
 * pattern (also copied to content when not NULL).  Returns 0 or -1. */
int ng_make_tftp_dir(char *dir, size_t dirlen, const char *name, uint8_t *content, size_t len);
/* Removes what ng_make_tftp_dir made. */
void ng_remove_tftp_dir(const char *dir, const char *name);
/* A host socket sends a datagram to 127.0.0.1:host_port (forwarded by
 * hostfwd to the guest's guest_port); the guest stack answers it with
 * "echo:" + the data; the host socket must get that answer.  Returns 0, or
 * -1 with a message on stderr. */
int ng_check_hostfwd_udp(struct net_guest *g, uint16_t host_port, uint16_t guest_port,
                         int timeout_ms);

/* A whole user-network session as a guest sees it against libslirp: DHCP
 * gives 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3 and `name` as the boot
 * file; the gateway answers ARP with a unicast address; TFTP from it gives
 * len bytes equal to content; a datagram to host_port is forwarded to
 * guest_port and the guest's answer gets back; no frame had a bad checksum.
 * Returns 0, or -1 with the first difference on stderr. */
int ng_user_session(struct net_guest *g, const char *name, const uint8_t *content, size_t len,
                    uint16_t host_port, uint16_t guest_port);

struct evloop;
struct net_backend;
/* The user-network backend that ng_user_session talks to: model "virtio"
 * or "e1000", TFTP from dir with `name` as the boot file, and a UDP hostfwd
 * from 127.0.0.1:host_port to the guest's guest_port.  NULL with a message
 * in err on failure. */
struct net_backend *ng_user_backend(struct evloop *loop, const char *model, const char *dir,
                                    const char *name, uint16_t host_port, uint16_t guest_port,
                                    char *err, size_t errlen);

/* dotted quad -> network order */
uint32_t ng_ip(const char *dotted);

#endif
