/* A network backend for the NIC fuzz targets, deterministic and with no
 * sockets: what the guest transmits comes back to it in the next event-loop
 * round (a network that reflects every frame, as libslirp answers in its
 * next round), and the target injects frames of its own from the input. */
#ifndef BURROW_FUZZ_NET_H
#define BURROW_FUZZ_NET_H

#include "devices/net/net.h"
#include "fuzz/fuzz_machine.h"

struct net_backend *fz_net_new(struct evloop *loop);
/* Host-side network events read from the input, for a target's TARGET op:
 * arg 0-5: a frame from the network (2 length bytes, then the frame, its
 * destination made the NIC's MAC when arg is even); 6: link down; 7: link up. */
void fz_net_op(struct fz *f, struct net_backend *nb, const uint8_t mac[6], unsigned arg);

#endif
