/* The op interpreter shared by the device fuzz targets: a fake machine
 * (tests/support/harness_platform.c) with the device under test on it, and
 * a guest whose actions are read from the fuzzer's input, one op after
 * another until the bytes run out.
 *
 * Every op starts with one byte: bits 0-2 the kind, bits 3-4 the access
 * size (1, 2, 4 or 8 bytes; port I/O caps it at 4), bits 5-7 an argument.
 * Operands follow, little-endian; an input that ends inside an op ends it
 * with zeroes (so every byte string is a valid program).
 *
 *   0 READ      window byte, offset      read from a window (below)
 *   1 WRITE     window byte, offset, value (size bytes)
 *   2 RAM       address (2 bytes), length byte (0 = 256), that many bytes
 *                                        copied into guest RAM at the address
 *                                        (descriptors, command tables, data)
 *   3 LOOP      -                        run the event loop without waiting,
 *                                        1 + argument times: block and network
 *                                        completions, timers that are due
 *   4 CFG_READ  offset byte              PCI configuration read of the device
 *   5 CFG_WRITE offset byte, value       PCI configuration write (size <= 4)
 *   6 TARGET    -                        the target's own op (host-side events:
 *                                        frames from the network, key presses,
 *                                        a display refresh...), argument bits
 *                                        and further bytes are the target's
 *   7 RESET     -                        machine reset: the target's reset,
 *                                        then BARs placed again as firmware
 *                                        does (argument odd: no reset, only
 *                                        a LOOP)
 *
 * A window is a range the guest reaches: fixed ports, a fixed MMIO range,
 * or a BAR of a PCI device wherever the guest mapped it (an access to an
 * unmapped BAR is dropped).  The window byte is taken modulo the number of
 * windows; the offset has as many bytes as the window needs (1 up to 256
 * bytes, 2 up to 64 KiB, 3 beyond) and is taken modulo its length.  An
 * access may run past the end of a window, as a guest's can.
 *
 * Guest RAM is FZ_RAM_SIZE bytes at physical address 0, so that any 16-bit
 * value the guest writes into a device's address register is RAM. */
#ifndef BURROW_FUZZ_MACHINE_H
#define BURROW_FUZZ_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "support/harness_platform.h"

#define FZ_RAM_SIZE   (64u << 10)
#define FZ_MMIO_BASE  0xe0000000ULL    /* where BARs are placed first */
#define FZ_IO_BASE    0xc000
#define FZ_MAX_WIN    16
#define FZ_ROM        PCI_NUM_BARS

enum fz_op {
    FZ_READ, FZ_WRITE, FZ_RAM, FZ_LOOP, FZ_CFG_READ, FZ_CFG_WRITE, FZ_TARGET, FZ_RESET,
};

struct fz_window {
    const char *name;
    bool pio;
    uint64_t base, len;           /* fixed windows */
    struct pci_device *pci;       /* BAR windows: the device, */
    int bar;                      /* and its BAR (FZ_ROM: its expansion ROM) */
};

struct fz;

struct fz_hooks {
    /* The TARGET op; arg is bits 5-7 of the op byte.  May be NULL. */
    void (*target)(struct fz *f, unsigned arg);
    /* Machine reset of the device(s).  NULL: pci_bus_reset(). */
    void (*reset)(struct fz *f);
};

struct fz {
    struct harness *h;
    struct pci_bus bus;
    struct pci_device *pci;       /* the device under test, for CFG ops; may be NULL */
    struct fz_window win[FZ_MAX_WIN];
    unsigned nwin;
    struct fz_hooks hooks;
    void *opaque;                 /* the target's */
    const uint8_t *data;
    size_t size, pos;
    uint64_t now_ns;              /* a clock the target may hand to devices */
};

/* A harness with FZ_RAM_SIZE of RAM and a PCI bus; aborts on failure (the
 * fuzzer's environment is broken, not the input). */
void fz_init(struct fz *f);
void fz_fini(struct fz *f);

void fz_add_pio(struct fz *f, const char *name, uint16_t base, uint16_t len);
void fz_add_mmio(struct fz *f, const char *name, uint64_t base, uint64_t len);
void fz_add_bar(struct fz *f, const char *name, struct pci_device *d, int bar);
void fz_add_rom(struct fz *f, const char *name, struct pci_device *d);

/* Places every BAR of every device on the bus and the ROM the way firmware
 * does (from FZ_MMIO_BASE and FZ_IO_BASE up, naturally aligned), and
 * enables I/O, memory and bus mastering. */
void fz_place_bars(struct fz *f);

/* Interprets the input; returns when it is used up. */
void fz_run(struct fz *f, const uint8_t *data, size_t size);

/* Input reading for the hooks: bytes past the end read as 0. */
bool fz_more(const struct fz *f);
uint8_t fz_u8(struct fz *f);
uint64_t fz_le(struct fz *f, unsigned n);
/* Copies up to len bytes of input to dst; returns how many there were. */
size_t fz_bytes(struct fz *f, void *dst, size_t len);

/* Runs the event loop once without waiting. */
void fz_loop(struct fz *f);

/* A file under $TMPDIR (or /tmp) of size bytes, created once per process
 * and removed at exit; fz_image_zero() clears it between inputs. */
const char *fz_image(const char *tag, uint64_t size, int *fd);
void fz_image_zero(int fd, uint64_t size);

#endif
