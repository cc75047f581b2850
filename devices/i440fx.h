/* Intel 82441FX (i440FX) PCI and memory controller: the host bridge at
 * 00:00.0 and the configuration mechanism #1 ports 0xcf8/0xcfc. */
#ifndef BURROW_I440FX_H
#define BURROW_I440FX_H

#include "devices/pci.h"

struct i440fx;

struct i440fx *i440fx_create(struct platform *p, struct pci_bus *bus);
void i440fx_destroy(struct i440fx *h);

#endif
