/* Debug exit port for test guests (`--debug-exit`): writing a byte v to the
 * port ends the VM process with exit status (v << 1) | 1, the convention of
 * QEMU's isa-debug-exit device, so status 0 and 1 stay distinguishable from
 * a guest-requested exit.  Reads return 0. */
#ifndef BURROW_DEBUG_EXIT_H
#define BURROW_DEBUG_EXIT_H

#include <stdint.h>

struct platform;
struct debug_exit;

#define DEBUG_EXIT_PORT 0xf4

/* Registers one port; NULL if it is taken or memory runs out.  The write
 * becomes platform_request(p, PLATFORM_DEBUG_EXIT, (v << 1) | 1). */
struct debug_exit *debug_exit_create(struct platform *p, uint16_t port);
void debug_exit_destroy(struct debug_exit *de);

#endif
