/* The Intel HDA controller and its codec as a guest drives them, playing
 * into and recording from the "none" backend.
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = BAR0 (16 KiB of registers:
 * GCTL 0x08, STATESTS 0x0e, INTCTL/INTSTS 0x20/0x24, CORB 0x40-0x4e, RIRB
 * 0x50-0x5e, the immediate command registers 0x60-0x68, DPLBASE/DPUBASE
 * 0x70/0x74, the input stream descriptor at 0x80 and the output one at
 * 0xa0).  Command rings, BDLs and sample buffers are laid out with RAM ops;
 * streams move with the host's clock, caught up on every LPIB or INTSTS
 * read and on the 1 ms timer (LOOP ops).  TARGET: let 1 + argument times
 * 100 us of the host's clock pass, so that streams move further. */
#include <stdlib.h>
#include <time.h>

#include "devices/audio/audio.h"
#include "devices/hda.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void target_op(struct fz *f, unsigned arg)
{
    struct timespec ts = { 0, (long)(arg + 1) * 100000 };
    nanosleep(&ts, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    struct audio_backend *audio = audio_none_new();
    char err[256];
    struct hda *h = audio ? hda_create(&f.h->plat, &f.bus, -1, audio, true, err, sizeof(err)) : NULL;
    if (!h)
        abort();
    f.pci = hda_pci(h);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_bar(&f, "regs", f.pci, 0);
    fz_run(&f, data, size);
    hda_destroy(h);
    audio_close(audio);
    fz_fini(&f);
    return 0;
}
