/* Network backends: what a NIC model hands its frames to and gets frames
 * from.
 *
 * A NIC attaches to one backend with net_backend_attach().  Outgoing frames
 * go through net_backend_send(); incoming frames reach the NIC's receive
 * callback.  A NIC that has no receive buffers says so (can_receive false,
 * or receive returning false): the backend then keeps the frame in a
 * bounded queue and retries when the NIC calls net_backend_rx_ready()
 * after the guest posted buffers.  Frames beyond the bound are dropped and
 * counted, never silently.
 *
 * Everything here runs with the machine's device lock held; the slirp
 * backend talks to libslirp only from the I/O thread's event loop.
 *
 * The user-mode backend ("--net user") is libslirp: NAT to the host's
 * network, DHCP, DNS, TFTP, host port forwarding.  Its guest network is
 * 10.0.2.0/24: gateway 10.0.2.2, DNS 10.0.2.3, first DHCP address
 * 10.0.2.15; IPv6 fec0::/64 with the gateway at fec0::2. */
#ifndef BURROW_NET_H
#define BURROW_NET_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <netinet/in.h>

struct evloop;

#define NET_ETH_ALEN        6
#define NET_ETH_HLEN        14
#define NET_ETH_MIN_FRAME   60      /* without FCS */
/* Largest frame a backend accepts: a 64 KiB IP packet plus headers covers
 * everything a NIC may legitimately produce after segmentation. */
#define NET_MAX_FRAME       (65536 + NET_ETH_HLEN + 4)
/* Frames a backend holds for a NIC with no room, and how many bytes. */
#define NET_RXQ_MAX_FRAMES  1024
#define NET_RXQ_MAX_BYTES   (4u << 20)

/* --- the NIC's side ----------------------------------------------------- */

struct net_nic_ops {
    /* True when the NIC could take a frame now (may be NULL: always). */
    bool (*can_receive)(void *opaque);
    /* One frame for the guest.  Returns true when the frame was consumed
     * (delivered, or dropped by the NIC for a reason of its own such as
     * address filtering), false when the NIC has no room: the backend
     * keeps the frame and offers it again after net_backend_rx_ready(). */
    bool (*receive)(void *opaque, const uint8_t *frame, size_t len);
    /* The link went up or down (control "link"); may be NULL. */
    void (*link_changed)(void *opaque, bool up);
};

struct net_stats {
    uint64_t tx_frames, tx_bytes, tx_dropped;    /* NIC -> network */
    uint64_t rx_frames, rx_bytes, rx_dropped;    /* network -> NIC */
    uint64_t rx_queued;                          /* frames that had to wait */
};

struct net_frame {
    struct net_frame *next;
    size_t len;
    uint8_t data[];
};

struct net_backend;

struct net_backend_ops {
    /* Takes one complete Ethernet frame from the NIC (without FCS). */
    void (*transmit)(struct net_backend *nb, const uint8_t *frame, size_t len);
    void (*destroy)(struct net_backend *nb);
};

struct net_backend {
    const struct net_backend_ops *ops;
    const char *kind;                 /* "user", "test", ... */
    const struct net_nic_ops *nic;
    void *nic_opaque;
    bool link_up;
    /* Frames waiting for the NIC to have room. */
    struct net_frame *rxq_head, *rxq_tail;
    unsigned rxq_frames;
    size_t rxq_bytes;
    bool flushing;
    bool overflow_reported;
    struct net_stats stats;
    uint8_t *txbuf;                   /* flattening buffer for iovecs */
};

/* Used by backend implementations: fills the common part (link up). */
void net_backend_init(struct net_backend *nb, const struct net_backend_ops *ops, const char *kind);

/* The NIC attaches itself; one NIC per backend.  Passing nic NULL detaches. */
void net_backend_attach(struct net_backend *nb, const struct net_nic_ops *nic, void *opaque);

/* NIC -> network.  Gathers the iovecs into one frame.  Returns 0, or -1
 * when the frame was dropped (link down, runt, larger than NET_MAX_FRAME). */
int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt);

/* The NIC has receive buffers again: hands it the queued frames. */
void net_backend_rx_ready(struct net_backend *nb);

/* Backend implementations: a frame from the network for the NIC.  Delivers
 * it now, or queues it (bounded), or drops it when the link is down. */
void net_backend_deliver(struct net_backend *nb, const uint8_t *frame, size_t len);

/* Link state as the guest sees it (control "link up|down").  While down,
 * frames in both directions are dropped. */
void net_backend_set_link(struct net_backend *nb, bool up);
bool net_backend_link_up(const struct net_backend *nb);

/* Drops queued frames (NIC reset). */
void net_backend_purge(struct net_backend *nb);

void net_backend_free(struct net_backend *nb);

/* Reads an option ROM image (iPXE) padded with zeros to the power of two
 * that pci_set_rom() maps.  Returns a malloc()ed buffer and its length, or
 * NULL with a message. */
uint8_t *net_rom_load(const char *path, uint64_t *len, char *err, size_t errlen);

/* --- options ("--net") -------------------------------------------------- */

#define NET_MAX_HOSTFWD 16

enum net_model { NET_MODEL_VIRTIO, NET_MODEL_E1000 };

struct net_hostfwd {
    bool udp;
    struct in_addr host_addr;         /* default 127.0.0.1 */
    uint16_t host_port;
    struct in_addr guest_addr;        /* default 10.0.2.15 */
    uint16_t guest_port;
};

struct net_user_opts {
    bool none;                        /* "--net none" */
    enum net_model model;             /* default virtio */
    bool has_mac;
    uint8_t mac[NET_ETH_ALEN];
    struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
    unsigned nhostfwd;
    char tftp[1024];                  /* "" when none */
    char bootfile[256];               /* "" when none */
    bool ipv6;                        /* default true */
    bool restrict_host;               /* restrict=on: no NAT to the outside */
};

/* Parses "none" or "user[,model=virtio|e1000][,mac=52:54:00:12:34:56]
 * [,hostfwd=tcp|udp:[ADDR]:HPORT-[GADDR]:GPORT]...[,tftp=DIR][,bootfile=F]
 * [,ipv6=on|off][,restrict=on|off]".  Returns 0, or -1 with a message. */
int net_parse_opts(const char *spec, struct net_user_opts *out, char *err, size_t errlen);
/* Parses one forwarding rule "tcp|udp:[ADDR]:HPORT-[GADDR]:GPORT" (the
 * protocol may be left out: tcp). */
int net_parse_hostfwd(const char *spec, struct net_hostfwd *out, char *err, size_t errlen);
/* Parses "aa:bb:cc:dd:ee:ff"; rejects multicast addresses. */
int net_parse_mac(const char *s, uint8_t mac[NET_ETH_ALEN]);
/* The default MAC of the index-th NIC: 52:54:00:12:34:56 + index. */
void net_default_mac(unsigned index, uint8_t mac[NET_ETH_ALEN]);
const char *net_model_name(enum net_model m);

/* --- the user-mode (libslirp) backend ----------------------------------- */

/* Creates the NAT network on loop, with the forwards in opts.  Returns NULL
 * with a message in err on failure (bad tftp directory, port in use...). */
struct net_backend *net_slirp_new(struct evloop *loop, const struct net_user_opts *opts,
                                  char *err, size_t errlen);
/* Returns 0, or -1 with a message (port in use, no such rule). */
int net_slirp_hostfwd_add(struct net_backend *nb, const struct net_hostfwd *fwd,
                          char *err, size_t errlen);
int net_slirp_hostfwd_remove(struct net_backend *nb, bool udp, struct in_addr host_addr,
                             uint16_t host_port, char *err, size_t errlen);
/* Human-readable connection table from libslirp; free() it. */
char *net_slirp_info(struct net_backend *nb);

#endif
