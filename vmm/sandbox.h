/* The seccomp sandbox of burrow-vm: once the machine is built, the process
 * keeps only the system calls a running VM needs (see vmm/sandbox.c). */
#ifndef BURROW_SANDBOX_H
#define BURROW_SANDBOX_H

#include <stddef.h>

/* Installs the allowlist on every thread of the process, with no-new-privs;
 * a call off the list then ends the process with a line on stderr naming
 * it.  Call once, after set-up, with all threads started.  Returns 0, or
 * -1 with a one-line reason in err. */
int sandbox_install(char *err, size_t errlen);

#endif
