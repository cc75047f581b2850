/* 16550A UART (National Semiconductor / TI PC16550D) on the ISA port bus,
 * as found at COM1 (0x3f8, IRQ 4) and COM2 (0x2f8, IRQ 3) on PCs.
 *
 * Transmitted bytes go straight to a character backend; received bytes come
 * from it into the 16-byte receive FIFO.  The interrupt line is level
 * triggered and, as on PCs, reaches the interrupt controller only while
 * MCR.OUT2 is set (and not in loopback mode, where OUT2 is internal). */
#ifndef BURROW_UART8250_H
#define BURROW_UART8250_H

#include <stdint.h>

struct platform;
struct chardev;
struct uart8250;

#define UART8250_COM1_BASE 0x3f8
#define UART8250_COM1_GSI  4
#define UART8250_COM2_BASE 0x2f8
#define UART8250_COM2_GSI  3

/* Registers 8 ports at base on p->pio.  cd may be NULL (output discarded,
 * no input); the UART does not own cd (close it after uart8250_destroy).
 * Returns NULL if the ports are taken or memory runs out. */
struct uart8250 *uart8250_create(struct platform *p, uint16_t base, unsigned gsi,
                                 struct chardev *cd);
/* Power-on state of every register; the FIFO is emptied, the line lowered. */
void uart8250_reset(struct uart8250 *u);
void uart8250_destroy(struct uart8250 *u);

#endif
