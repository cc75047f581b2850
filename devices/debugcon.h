/* Firmware debug console: a write-only I/O port whose bytes go to a log
 * file, as Bochs and QEMU provide at port 0x402 (SeaBIOS writes its debug
 * output there).  Reading the port returns 0xe9, by which firmware detects
 * that the console is present. */
#ifndef BURROW_DEBUGCON_H
#define BURROW_DEBUGCON_H

#include <stddef.h>
#include <stdint.h>

struct platform;
struct debugcon;

#define DEBUGCON_PORT 0x402
#define DEBUGCON_READBACK 0xe9

/* Registers one port at `port` and creates or truncates the file at path
 * (mode 0644).  On failure returns NULL with a message in err. */
struct debugcon *debugcon_create(struct platform *p, uint16_t port, const char *path,
                                 char *err, size_t errlen);
void debugcon_destroy(struct debugcon *dc);

#endif
