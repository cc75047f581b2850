/* Client of burrow-vm's control socket (protocol: vmm/control.h).  The
 * public functions are declared in app/burrow.h (struct burrow_ctl); this
 * header adds what the library uses internally. */
#ifndef BURROW_APP_CTLCLIENT_H
#define BURROW_APP_CTLCLIENT_H

#include "app/burrow.h"

/* Longest line accepted from the server. */
#define CTL_MAX_LINE (4 * 1024 * 1024)

/* Events waiting in the client's queue (already read from the socket). */
size_t ctl_pending_events(const struct burrow_ctl *ctl);

#endif
