/* Guest OS types and the defaults they choose for a new VM.  The table and
 * its lookups are declared in app/burrow.h (struct burrow_ostype). */
#ifndef BURROW_APP_OSTYPES_H
#define BURROW_APP_OSTYPES_H

#include "app/burrow.h"

/* Number of entries in burrow_ostypes() (without the terminator). */
size_t ostypes_count(void);

#endif
