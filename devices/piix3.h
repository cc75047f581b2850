/* Intel 82371SB (PIIX3) PCI-to-ISA bridge at 00:01.0: PCI interrupt
 * routing (PIRQ), the reset control register 0xcf9 and port 0x92. */
#ifndef BURROW_PIIX3_H
#define BURROW_PIIX3_H

#include "devices/pci.h"

/* In APIC mode, PCI INTx of (slot, pin) reaches IOAPIC pin
 * PIIX3_PIRQ_GSI_BASE + PIRQ; the DSDT's _PRT says the same. */
#define PIIX3_PIRQ_GSI_BASE 16

struct piix3;

struct piix3 *piix3_create(struct platform *p, struct pci_bus *bus);
void piix3_destroy(struct piix3 *s);
/* PIRQ (0..3 = A..D) that a device's pin (1..4) is wired to. */
unsigned piix3_pirq(uint8_t devfn, uint8_t pin);

#endif
