/* Intel High Definition Audio controller (Intel High Definition Audio
 * Specification 1.0a, chapter 3), with the ICH6's PCI identity (8086:2668,
 * class 040300h): BAR 0 (64-bit, 16 KiB) holds the registers; MSI, or INTx
 * on pin A.  One input and one output stream, CORB/RIRB and the immediate
 * command registers, the DMA position buffer, and one codec (hda_codec.c)
 * at address 0.  Streams move samples at their sample rate, in steps of a
 * millisecond, between guest memory and an audio backend. */
#ifndef BURROW_HDA_H
#define BURROW_HDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/platform.h"

struct audio_backend;
struct hda;

#define HDA_VENDOR_ID  0x8086
#define HDA_DEVICE_ID  0x2668
#define HDA_BAR_SIZE   0x4000

/* Places the controller at devfn (-1: first free slot).  The backend stays
 * the caller's: close it after hda_destroy.  mic: the codec's microphone is
 * connected (capture reads the backend), else capture is silence and the
 * pin says nothing is there.  Returns NULL with a message in err. */
struct hda *hda_create(struct platform *p, struct pci_bus *bus, int devfn,
                       struct audio_backend *audio, bool mic, char *err, size_t errlen);
void hda_destroy(struct hda *h);
struct pci_device *hda_pci(struct hda *h);

/* What the controller refused, for tests and logs. */
struct hda_counters {
    uint64_t bdl_errors;      /* streams stopped on a bad buffer descriptor list */
    uint64_t dma_errors;      /* CORB/RIRB/stream memory outside RAM */
    uint64_t frames_out;      /* frames the output stream moved */
    uint64_t frames_in;       /* frames the input stream moved */
};
void hda_counters(const struct hda *h, struct hda_counters *out);

/* Whether the guest records now: its input stream runs on the ADC with the
 * microphone connected (never without --audio-in on). */
bool hda_recording(const struct hda *h);
/* fn(opaque, on) each time that changes, with the device lock held. */
void hda_watch_recording(struct hda *h, void (*fn)(void *opaque, bool on), void *opaque);

#endif
