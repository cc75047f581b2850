/* The Intel HDA controller and its codec driven by a driver written from the
 * High Definition Audio Specification 1.0a: controller reset and codec
 * discovery, verbs over CORB/RIRB and the immediate command registers, a
 * widget walk, a 1 kHz sine played through an output stream into the WAV
 * backend and compared sample by sample, capture, MSI, and malformed buffer
 * descriptor lists and command rings (an error status and an interrupt; the
 * controller plays again after a stream reset).
 *
 * Then the same driver against a real PulseAudio server that the test
 * starts (support/pa_server.c: null sinks, a private socket): the sine,
 * played for 10 s, is recorded with parec from the sink's monitor and must
 * arrive whole (every frame, in order, no gap), at 1 kHz within 0.5%; a
 * tone that pacat plays into another null sink reaches the driver's input
 * stream through the backend's record stream, which exists only while the
 * guest records; a change of sample rate reopens the stream; and a server
 * that goes away and comes back costs the VM nothing but the sound in
 * between.  The delay from RUN to the first sound at parec is measured and
 * printed.  No timing is asserted beyond generous bounds: every wait is for
 * an event, with a limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/audio/audio.h"
#include "devices/hda.h"
#include "devices/hda_codec.h"
#include "devices/util.h"
#include "support/harness_platform.h"
#include "support/pa_server.h"

#define RAM_SIZE   (32u << 20)
#define MMIO_BASE  0xe0000000ULL
#define CORB_ADDR  0x10000
#define RIRB_ADDR  0x11000
#define DPL_ADDR   0x12000
#define BDL_ADDR   0x13000
#define BUF_ADDR   0x100000
#define MSI_ADDR   0xfee01000ULL
#define MSI_DATA   0x4061

/* Registers, from 3.3 */
#define GCTL 0x08
#define STATESTS 0x0e
#define INTCTL 0x20
#define INTSTS 0x24
#define WALCLK 0x30
#define CORBLBASE 0x40
#define CORBUBASE 0x44
#define CORBWP 0x48
#define CORBRP 0x4a
#define CORBCTL 0x4c
#define CORBSTS 0x4d
#define CORBSIZE 0x4e
#define RIRBLBASE 0x50
#define RIRBUBASE 0x54
#define RIRBWP 0x58
#define RINTCNT 0x5a
#define RIRBCTL 0x5c
#define RIRBSTS 0x5d
#define ICOI 0x60
#define IRII 0x64
#define ICS 0x68
#define DPLBASE 0x70
#define DPUBASE 0x74
#define SD_IN  0x80
#define SD_OUT 0xa0
#define SD_CTL 0x00
#define SD_STS 0x03
#define SD_LPIB 0x04
#define SD_CBL 0x08
#define SD_LVI 0x0c
#define SD_FMT 0x12
#define SD_BDPL 0x18
#define SD_BDPU 0x1c
#define CTL_SRST 0x01
#define CTL_RUN 0x02
#define CTL_IOCE 0x04
#define CTL_FEIE 0x08
#define CTL_DEIE 0x10
#define STS_BCIS 0x04
#define STS_FIFOE 0x08
#define STS_DESE 0x10

#define FMT_48K_16_STEREO 0x0011
#define OUT_TAG 1
#define IN_TAG 2

/* The played signal: 4 buffers of 50 ms, 48 kHz 16-bit stereo. */
#define NBUF 4
#define BUF_FRAMES 2400
#define BUF_BYTES (BUF_FRAMES * 4)
#define CBL_BYTES (NBUF * BUF_BYTES)

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct audio_backend *audio;
    struct hda *hda;
    int devfn;
    char wav[64];
    unsigned corbwp, rirbrp;
    unsigned bcis[2];             /* BCIS seen per descriptor */
    unsigned dese[2], fifoe[2];
    struct pa_server pa;          /* the PulseAudio tests' server */
    unsigned recording_changes;
    bool recording;
};

static uint32_t rd(struct fx *f, unsigned off, unsigned size)
{
    return (uint32_t)harness_mmio_read(f->h, MMIO_BASE + off, size);
}

static void wr(struct fx *f, unsigned off, unsigned size, uint32_t v)
{
    harness_mmio_write(f->h, MMIO_BASE + off, size, v);
}

static void put32(struct fx *f, uint64_t a, uint32_t v)
{
    memcpy(f->h->ram + a, &v, 4);
}

static uint32_t get32(struct fx *f, uint64_t a)
{
    uint32_t v;
    memcpy(&v, f->h->ram + a, 4);
    return v;
}

static bool wait_for(struct fx *f, bool (*cond)(void *), int ms)
{
    return harness_run_until(f->h, cond, f, ms);
}

/* --- controller set-up (4.2, 4.4) ------------------------------------ */

static bool crst_set(void *o) { return rd(o, GCTL, 4) & 1; }
static bool codec_seen(void *o) { return rd(o, STATESTS, 2) & 1; }

static void controller_reset(struct fx *f)
{
    wr(f, GCTL, 4, 0);
    assert_int_equal(rd(f, GCTL, 4) & 1, 0);
    wr(f, GCTL, 4, 1);
    assert_true(wait_for(f, crst_set, 1000));
    assert_true(wait_for(f, codec_seen, 1000));      /* the codec at SDIN0 */
    assert_int_equal(rd(f, STATESTS, 2), 1);
    wr(f, STATESTS, 2, 1);
    assert_int_equal(rd(f, STATESTS, 2), 0);
}

static void rings_start(struct fx *f)
{
    wr(f, CORBCTL, 1, 0);
    wr(f, CORBLBASE, 4, CORB_ADDR);
    wr(f, CORBUBASE, 4, 0);
    assert_int_equal(rd(f, CORBSIZE, 1) & 0x43, 0x42);      /* 256 entries offered */
    wr(f, CORBSIZE, 1, 2);
    wr(f, CORBWP, 2, 0);
    wr(f, CORBRP, 2, 0x8000);
    assert_int_equal(rd(f, CORBRP, 2), 0x8000);
    wr(f, CORBRP, 2, 0);
    assert_int_equal(rd(f, CORBRP, 2), 0);
    wr(f, RIRBLBASE, 4, RIRB_ADDR);
    wr(f, RIRBUBASE, 4, 0);
    wr(f, RIRBWP, 2, 0x8000);
    wr(f, RINTCNT, 2, 1);
    wr(f, RIRBCTL, 1, 0x03);                    /* DMA on, interrupt per response */
    wr(f, CORBCTL, 1, 0x03);                    /* run, memory error interrupt */
    wr(f, INTCTL, 4, 0xc0000003);               /* GIE, CIE, both streams */
    f->corbwp = 0;
    f->rirbrp = 0;
}

static void probe(struct fx *f)
{
    f->devfn = harness_pci_find(&f->bus, 0x8086, 0x2668);
    assert_true(f->devfn >= 0);
    assert_int_equal(pci_config_read(&f->bus, (uint8_t)f->devfn, 0x09, 4) >> 8 & 0xffff, 0x0403);
    pci_config_write(&f->bus, (uint8_t)f->devfn, 0x10, 4, (uint32_t)MMIO_BASE);
    pci_config_write(&f->bus, (uint8_t)f->devfn, 0x14, 4, (uint32_t)(MMIO_BASE >> 32));
    pci_config_write(&f->bus, (uint8_t)f->devfn, 0x04, 2, 0x0006);
    assert_int_equal(rd(f, 0x00, 2), 0x1101);   /* GCAP: 1 out, 1 in, 64-bit */
    assert_int_equal(rd(f, 0x02, 2), 0x0100);   /* VMIN 0, VMAJ 1 */
    controller_reset(f);
    rings_start(f);
}

static int setup_mic(void **state, bool mic)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    strcpy(f->wav, "/tmp/burrow-hda-XXXXXX");
    int fd = mkstemp(f->wav);
    assert_true(fd >= 0);
    close(fd);
    char spec[80], err[256] = "";
    snprintf(spec, sizeof(spec), "wav:%s", f->wav);
    f->audio = audio_open(spec, err, sizeof(err));
    if (!f->audio)
        fail_msg("audio_open: %s", err);
    f->hda = hda_create(&f->h->plat, &f->bus, -1, f->audio, mic, err, sizeof(err));
    if (!f->hda)
        fail_msg("hda_create: %s", err);
    probe(f);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_mic(state, true); }

static int teardown(void **state)
{
    struct fx *f = *state;
    hda_destroy(f->hda);
    audio_close(f->audio);
    harness_free(f->h);
    unlink(f->wav);
    free(f);
    return 0;
}

/* --- verbs over CORB/RIRB (4.4.1) ------------------------------------- */

static unsigned wait_wp;
static bool rirb_moved(void *o) { return rd(o, RIRBWP, 2) != wait_wp; }

/* Sends one verb; returns whether a response came, in *resp. */
static bool corb_send(struct fx *f, uint32_t verb, uint32_t *resp)
{
    wait_wp = rd(f, RIRBWP, 2);
    f->corbwp = (f->corbwp + 1) % 256;
    put32(f, CORB_ADDR + 4 * f->corbwp, verb);
    wr(f, CORBWP, 2, f->corbwp);
    if (!wait_for(f, rirb_moved, 200))
        return false;
    f->rirbrp = (f->rirbrp + 1) % 256;
    assert_int_equal(rd(f, RIRBWP, 2), f->rirbrp);
    *resp = get32(f, RIRB_ADDR + 8 * f->rirbrp);
    assert_int_equal(get32(f, RIRB_ADDR + 8 * f->rirbrp + 4), verb >> 28);   /* codec, solicited */
    assert_true(rd(f, RIRBSTS, 1) & 1);
    wr(f, RIRBSTS, 1, 1);
    return true;
}

static uint32_t verb(struct fx *f, unsigned nid, unsigned v, unsigned payload)
{
    uint32_t resp = 0;
    uint32_t cmd = (uint32_t)nid << 20 | (v > 0xf ? v << 8 | (payload & 0xff) : v << 16 | (payload & 0xffff));
    assert_true(corb_send(f, cmd, &resp));
    return resp;
}

static uint32_t param(struct fx *f, unsigned nid, unsigned p)
{
    return verb(f, nid, 0xf00, p);
}

static unsigned intx_gsi(struct fx *f)
{
    return harness_pci_intx_gsi(&f->bus, (uint8_t)f->devfn);
}

static uint32_t walclk_start;
static bool walclk_moved(void *o) { return rd(o, WALCLK, 4) != walclk_start; }

static void test_codec_discovery(void **state)
{
    struct fx *f = *state;
    unsigned raises = f->h->irq_raises[intx_gsi(f)];
    assert_int_equal(param(f, 0, 0x00), HDA_CODEC_VENDOR_ID);
    assert_true(f->h->irq_raises[intx_gsi(f)] > raises);      /* the response interrupt */
    assert_false(f->h->irq_level[intx_gsi(f)]);                /* cleared with RINTFL */
    uint32_t nodes = param(f, 0, 0x04);
    unsigned afg = nodes >> 16 & 0xff;
    assert_int_equal(nodes & 0xff, 1);
    assert_int_equal(param(f, afg, 0x05) & 0xff, 0x01);         /* audio function group */
    assert_int_equal(verb(f, afg, 0xf20, 0), HDA_CODEC_SUBSYSTEM_ID);
    uint32_t pcm = param(f, afg, 0x0a);
    assert_true(pcm & 1u << 17);                                /* 16-bit */
    assert_true(pcm & 1u << 6 && pcm & 1u << 5);                /* 48 and 44.1 kHz */
    assert_true(param(f, afg, 0x0b) & 1);                       /* PCM */

    /* The walk: find the DAC, ADC, and the pins by type and connection. */
    uint32_t w = param(f, afg, 0x04);
    unsigned start = w >> 16 & 0xff, count = w & 0xff;
    assert_true(count >= 4);
    int dac = -1, adc = -1, out_pin = -1, mic_pin = -1;
    for (unsigned n = start; n < start + count; n++) {
        uint32_t caps = param(f, n, 0x09);
        unsigned type = caps >> 20 & 0xf;
        if (type == 0)
            dac = (int)n;
        else if (type == 1)
            adc = (int)n;
        else if (type == 4) {
            uint32_t pc = param(f, n, 0x0c);
            uint32_t cfg = verb(f, n, 0xf1c, 0);
            if (pc & 1u << 4) {
                out_pin = (int)n;
                assert_int_equal(cfg >> 20 & 0xf, 0x0);         /* line out */
                assert_int_not_equal(cfg >> 30, 1);             /* connected */
                assert_int_equal(param(f, n, 0x0e) & 0x7f, 1);
                assert_int_equal(verb(f, n, 0xf02, 0) & 0xff, HDA_NID_DAC);
                assert_true(verb(f, n, 0xf09, 0) & 1u << 31);   /* presence */
            } else if (pc & 1u << 5) {
                mic_pin = (int)n;
                assert_int_equal(cfg >> 20 & 0xf, 0xa);         /* mic in */
            }
        }
    }
    assert_int_equal(dac, HDA_NID_DAC);
    assert_int_equal(adc, HDA_NID_ADC);
    assert_int_equal(out_pin, HDA_NID_PIN_OUT);
    assert_int_equal(mic_pin, HDA_NID_PIN_MIC);
    assert_int_equal(verb(f, adc, 0xf02, 0) & 0xff, mic_pin);

    /* Amps: caps, a gain and mute written and read back per channel. */
    uint32_t amp = param(f, dac, 0x12);
    assert_true(amp & 1u << 31);
    unsigned steps = amp >> 8 & 0x7f;
    assert_true(steps > 0);
    verb(f, dac, 0x3, 0xa000 | 0x80 | 5);        /* output, left: mute, 5 */
    assert_int_equal(verb(f, dac, 0xb, 0xa000), 0x85);
    assert_int_equal(verb(f, dac, 0xb, 0x8000), steps);        /* right untouched */
    verb(f, dac, 0x3, 0xb000 | steps);
    assert_int_equal(verb(f, dac, 0xb, 0xa000), steps);
    assert_true(param(f, adc, 0x0d) & 1u << 31);                /* ADC input amp */

    /* Converter format, stream/channel, pin control, power, EAPD. */
    verb(f, dac, 0x2, 0x4011);                   /* 44.1 kHz */
    assert_int_equal(verb(f, dac, 0xa, 0), 0x4011);
    verb(f, dac, 0x706, 0x10);
    assert_int_equal(verb(f, dac, 0xf06, 0), 0x10);
    verb(f, out_pin, 0x707, 0x40);
    assert_int_equal(verb(f, out_pin, 0xf07, 0), 0x40);
    verb(f, afg, 0x705, 3);
    assert_int_equal(verb(f, afg, 0xf05, 0), 0x33);
    verb(f, out_pin, 0x70c, 2);
    assert_int_equal(verb(f, out_pin, 0xf0c, 0), 2);
    assert_int_equal(verb(f, afg, 0x7e3, 0), 0);               /* unknown: 0 */
    verb(f, afg, 0x7ff, 0);                                     /* function reset */
    assert_int_equal(verb(f, dac, 0xa, 0), FMT_48K_16_STEREO);
    assert_int_equal(verb(f, dac, 0xf06, 0), 0);

    /* No codec at address 1: no response. */
    uint32_t r;
    assert_false(corb_send(f, 1u << 28 | 0xf0000, &r));
    f->rirbrp = rd(f, RIRBWP, 2);

    /* The immediate command interface gives the same answers. */
    wr(f, ICOI, 4, 0xf0000);
    wr(f, ICS, 2, 1);
    assert_int_equal(rd(f, ICS, 2) & 3, 2);                     /* done, response valid */
    assert_int_equal(rd(f, IRII, 4), HDA_CODEC_VENDOR_ID);
    wr(f, ICS, 2, 2);
    assert_int_equal(rd(f, ICS, 2) & 3, 0);

    /* The wall clock runs. */
    walclk_start = rd(f, WALCLK, 4);
    assert_true(wait_for(f, walclk_moved, 1000));
}

static void test_corb_outside_ram(void **state)
{
    struct fx *f = *state;
    wr(f, CORBCTL, 1, 0);
    wr(f, CORBUBASE, 4, 0x10);                   /* 64 GiB: no RAM there */
    wr(f, CORBCTL, 1, 3);
    wr(f, CORBWP, 2, 1);
    assert_true(rd(f, CORBSTS, 1) & 1);                         /* CMEI */
    assert_int_equal(rd(f, CORBCTL, 1) & 2, 0);                 /* stopped */
    assert_true(rd(f, INTSTS, 4) & 1u << 30);
    assert_true(f->h->irq_level[intx_gsi(f)]);
    wr(f, CORBSTS, 1, 1);
    assert_false(f->h->irq_level[intx_gsi(f)]);
    /* Fixed up, the rings work again. */
    rings_start(f);
    assert_int_equal(param(f, 0, 0x00), HDA_CODEC_VENDOR_ID);
}

static void test_msi(void **state)
{
    struct fx *f = *state;
    uint8_t devfn = (uint8_t)f->devfn;
    unsigned cap = pci_config_read(&f->bus, devfn, 0x34, 1);
    while (cap && pci_config_read(&f->bus, devfn, cap, 1) != 0x05)
        cap = pci_config_read(&f->bus, devfn, cap + 1, 1);
    assert_int_not_equal(cap, 0);
    assert_true(pci_config_read(&f->bus, devfn, cap + 2, 2) & 0x80);   /* 64-bit */
    pci_config_write(&f->bus, devfn, cap + 4, 4, (uint32_t)MSI_ADDR);
    pci_config_write(&f->bus, devfn, cap + 8, 4, 0);
    pci_config_write(&f->bus, devfn, cap + 12, 2, MSI_DATA);
    pci_config_write(&f->bus, devfn, cap + 2, 2, 1);
    unsigned before = f->h->msi_total;
    unsigned raises = f->h->irq_raises[intx_gsi(f)];
    assert_int_equal(param(f, 0, 0x00), HDA_CODEC_VENDOR_ID);
    assert_int_equal(f->h->msi_total, before + 1);
    assert_int_equal(f->h->irq_raises[intx_gsi(f)], raises);   /* not INTx */
    assert_true(harness_msi_fired(f->h, MSI_ADDR, MSI_DATA));
    /* One message per new condition: the next response sends another. */
    assert_int_equal(param(f, 0, 0x00), HDA_CODEC_VENDOR_ID);
    assert_int_equal(f->h->msi_total, before + 2);
}

/* --- streams (4.5) -------------------------------------------------------- */

static int16_t sine(unsigned frame)
{
    return (int16_t)lrint(12000.0 * sin(2 * M_PI * 1000.0 * frame / 48000.0));
}

/* Left: the 1 kHz sine; right: the frame number, so a lost or repeated
 * frame shows. */
static void fill_signal(struct fx *f)
{
    for (unsigned i = 0; i < NBUF * BUF_FRAMES; i++) {
        int16_t s[2] = { sine(i), (int16_t)i };
        memcpy(f->h->ram + BUF_ADDR + 4 * i, s, 4);
    }
}

static void bde(struct fx *f, unsigned i, uint64_t addr, uint32_t len, bool ioc)
{
    uint64_t a = BDL_ADDR + 16 * i;
    memcpy(f->h->ram + a, &addr, 8);
    put32(f, a + 8, len);
    put32(f, a + 12, ioc);
}

static void stream_reset(struct fx *f, unsigned sd)
{
    wr(f, sd + SD_CTL, 1, CTL_SRST);
    assert_int_equal(rd(f, sd + SD_CTL, 1) & CTL_SRST, CTL_SRST);
    wr(f, sd + SD_CTL, 1, 0);
    assert_int_equal(rd(f, sd + SD_CTL, 1) & CTL_SRST, 0);
    assert_int_equal(rd(f, sd + SD_LPIB, 4), 0);
}

static void stream_program(struct fx *f, unsigned sd, unsigned tag, unsigned lvi, uint32_t cbl)
{
    stream_reset(f, sd);
    wr(f, sd + SD_BDPL, 4, BDL_ADDR);
    wr(f, sd + SD_BDPU, 4, 0);
    wr(f, sd + SD_CBL, 4, cbl);
    wr(f, sd + SD_LVI, 2, lvi);
    wr(f, sd + SD_FMT, 2, FMT_48K_16_STEREO);
    wr(f, sd + SD_CTL + 2, 1, tag << 4);
}

static void stream_run(struct fx *f, unsigned sd, bool on)
{
    wr(f, sd + SD_CTL, 1, on ? CTL_RUN | CTL_IOCE | CTL_FEIE | CTL_DEIE : 0);
}

static void codec_route(struct fx *f)
{
    verb(f, HDA_NID_DAC, 0x2, FMT_48K_16_STEREO);
    verb(f, HDA_NID_DAC, 0x706, OUT_TAG << 4);
    verb(f, HDA_NID_PIN_OUT, 0x707, 0x40);
    verb(f, HDA_NID_ADC, 0x2, FMT_48K_16_STEREO);
    verb(f, HDA_NID_ADC, 0x706, IN_TAG << 4);
    verb(f, HDA_NID_PIN_MIC, 0x707, 0x20);
}

/* The interrupt handler: stream status from INTSTS, cleared. */
static void service(struct fx *f)
{
    uint32_t st = rd(f, INTSTS, 4);
    for (unsigned i = 0; i < 2; i++) {
        if (!(st & 1u << i))
            continue;
        unsigned sd = i ? SD_OUT : SD_IN;
        uint8_t s = (uint8_t)rd(f, sd + SD_STS, 1);
        f->bcis[i] += !!(s & STS_BCIS);
        f->dese[i] += !!(s & STS_DESE);
        f->fifoe[i] += !!(s & STS_FIFOE);
        wr(f, sd + SD_STS, 1, s & (STS_BCIS | STS_FIFOE | STS_DESE));
    }
}

static unsigned want_bcis;
static bool out_bcis(void *o)
{
    struct fx *f = o;
    if (f->h->irq_level[intx_gsi(f)])
        service(f);
    return f->bcis[1] >= want_bcis;
}

static bool out_error(void *o)
{
    struct fx *f = o;
    if (f->h->irq_level[intx_gsi(f)])
        service(f);
    return f->dese[1] || f->fifoe[1];
}

struct wav_data {
    uint8_t *bytes;
    size_t len;
};

static struct wav_data read_wav(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t h[44];
    assert_int_equal(fread(h, 1, 44, fp), 44);
    assert_memory_equal(h, "RIFF", 4);
    assert_memory_equal(h + 8, "WAVEfmt ", 8);
    uint16_t fmt, ch, bits;
    uint32_t rate, data;
    memcpy(&fmt, h + 20, 2);
    memcpy(&ch, h + 22, 2);
    memcpy(&rate, h + 24, 4);
    memcpy(&bits, h + 34, 2);
    memcpy(&data, h + 40, 4);
    assert_int_equal(fmt, 1);
    assert_int_equal(ch, 2);
    assert_int_equal(rate, 48000);
    assert_int_equal(bits, 16);
    struct wav_data w = { malloc(data + 1), data };
    assert_non_null(w.bytes);
    assert_int_equal(fread(w.bytes, 1, data, fp), data);
    assert_int_equal(fgetc(fp), EOF);          /* the header's size is the file's */
    fclose(fp);
    return w;
}

/* Plays whole cycles of the buffer; returns the LPIB values seen. */
static void play_and_check(struct fx *f, unsigned cycles, bool check_lpib)
{
    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    memset(f->bcis, 0, sizeof(f->bcis));
    struct hda_counters c0;
    hda_counters(f->hda, &c0);
    stream_run(f, SD_OUT, true);
    assert_true(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN);

    if (check_lpib) {
        /* LPIB moves in whole frames, inside the buffer, and between the
         * buffer completions too (not only at their ends). */
        uint32_t last = rd(f, SD_OUT + SD_LPIB, 4), distinct = 0;
        bool inside_entry = false;
        while (f->bcis[1] < 2) {
            evloop_run_once(f->h->plat.loop, 1);
            if (f->h->irq_level[intx_gsi(f)])
                service(f);
            uint32_t l = rd(f, SD_OUT + SD_LPIB, 4);
            assert_true(l < CBL_BYTES);
            assert_int_equal(l % 4, 0);
            if (l != last) {
                distinct++;
                inside_entry |= l % BUF_BYTES != 0;
            }
            last = l;
        }
        assert_true(distinct >= 2);
        assert_true(inside_entry);
        /* The position buffer follows LPIB. */
        uint32_t dp = get32(f, DPL_ADDR + 8);
        assert_true(dp < CBL_BYTES && dp != 0);
    }
    want_bcis = NBUF * cycles;
    assert_true(wait_for(f, out_bcis, 20000));
    stream_run(f, SD_OUT, false);
    assert_int_equal(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN, 0);
    struct hda_counters c1;
    hda_counters(f->hda, &c1);
    assert_true(c1.frames_out - c0.frames_out >= (uint64_t)NBUF * BUF_FRAMES * cycles);
    assert_int_equal(c1.bdl_errors, c0.bdl_errors);
}

/* Every frame in the file is the buffer's frame at that position. */
static void check_wav(struct fx *f, uint64_t min_frames)
{
    audio_flush(f->audio);
    struct wav_data w = read_wav(f->wav);
    assert_int_equal(w.len % 4, 0);
    assert_true(w.len / 4 >= min_frames);
    for (size_t i = 0; i < w.len / 4; i++) {
        unsigned pos = (unsigned)(i % (NBUF * BUF_FRAMES));
        int16_t s[2];
        memcpy(s, w.bytes + 4 * i, 4);
        if (s[0] != sine(pos) || s[1] != (int16_t)pos)
            fail_msg("frame %zu: %d/%d, played %d/%d", i, s[0], s[1], sine(pos), (int16_t)pos);
    }
    free(w.bytes);
}

static void test_play_sine(void **state)
{
    struct fx *f = *state;
    wr(f, DPLBASE, 4, DPL_ADDR | 1);
    wr(f, DPUBASE, 4, 0);
    codec_route(f);
    play_and_check(f, 2, true);
    check_wav(f, 2 * NBUF * BUF_FRAMES);
}

static void test_mute_and_unrouted(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    /* Muted, the frames reach the backend as silence; with the DAC on
     * another stream, they go nowhere. */
    verb(f, HDA_NID_DAC, 0x3, 0xb080);
    play_and_check(f, 1, false);
    uint64_t muted = f->audio->frames_played;
    assert_true(muted >= (uint64_t)NBUF * BUF_FRAMES);
    verb(f, HDA_NID_DAC, 0x3, 0xb000 | 63);
    verb(f, HDA_NID_DAC, 0x706, 0x50);          /* listens to stream 5 */
    play_and_check(f, 1, false);
    assert_int_equal(f->audio->frames_played, muted);
    audio_flush(f->audio);
    struct wav_data w = read_wav(f->wav);
    assert_int_equal(w.len, muted * 4);
    size_t i = 0;
    while (i < w.len && w.bytes[i] == 0)
        i++;
    assert_int_equal(i, w.len);
    free(w.bytes);
}

static void check_dese(struct fx *f, const char *what)
{
    unsigned errs = f->dese[1];
    stream_run(f, SD_OUT, true);
    if (!wait_for(f, out_error, 2000) || f->dese[1] == errs)
        fail_msg("%s: no descriptor error", what);
    assert_int_equal(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN, 0);
    f->dese[1] = 0;
}

static void test_malformed_bdl(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    struct hda_counters c;

    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    bde(f, 2, BUF_ADDR, 0, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    check_dese(f, "zero length");

    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    bde(f, 1, RAM_SIZE - 16, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    check_dese(f, "buffer past the end of RAM");

    bde(f, 1, 0x4000000000ULL, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    check_dese(f, "buffer far outside RAM");

    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, 0x1ff, CBL_BYTES);
    check_dese(f, "LVI beyond 255");

    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES - 4);
    check_dese(f, "CBL not the sum of the lengths");

    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    wr(f, SD_OUT + SD_BDPU, 4, 0x40);           /* the list itself outside RAM */
    check_dese(f, "BDL outside RAM");

    /* An entry made bad while the stream runs stops it when reached. */
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    stream_run(f, SD_OUT, true);
    assert_true(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN);
    bde(f, 2, BUF_ADDR, 0, true);
    assert_true(wait_for(f, out_error, 5000));
    assert_int_equal(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN, 0);

    hda_counters(f->hda, &c);
    assert_int_equal(c.bdl_errors, 7);
    /* After a stream reset the controller plays, every frame intact. */
    play_and_check(f, 1, false);
    /* The file holds the half-played frames too; the clean cycle is at the
     * end: compare the tail. */
    audio_flush(f->audio);
    struct wav_data w = read_wav(f->wav);
    size_t frames = w.len / 4, n = NBUF * BUF_FRAMES;
    assert_true(frames >= n);
    /* Find the start of the last clean run: frame numbers count up from 0. */
    size_t start = frames;
    while (start > 0) {
        int16_t s[2];
        memcpy(s, w.bytes + 4 * (start - 1), 4);
        if (start < frames) {
            int16_t nx[2];
            memcpy(nx, w.bytes + 4 * start, 4);
            if ((uint16_t)(s[1] + 1) != (uint16_t)nx[1] && !(nx[1] == 0 && s[1] == (int16_t)(n - 1)))
                break;
        }
        start--;
    }
    assert_true(frames - start >= n);
    for (size_t i = start; i < frames; i++) {
        int16_t s[2];
        memcpy(s, w.bytes + 4 * i, 4);
        unsigned pos = (unsigned)(uint16_t)s[1] % n;
        assert_int_equal(s[0], sine(pos));
    }
    free(w.bytes);
}

static bool in_done(void *o)
{
    struct fx *f = o;
    if (f->h->irq_level[intx_gsi(f)])
        service(f);
    return f->bcis[0] >= 1;
}

static void test_capture(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    /* The WAV backend captures silence: it lands over the 0xaa pattern. */
    memset(f->h->ram + BUF_ADDR, 0xaa, CBL_BYTES);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_IN, IN_TAG, NBUF - 1, CBL_BYTES);
    stream_run(f, SD_IN, true);
    assert_true(wait_for(f, in_done, 5000));
    stream_run(f, SD_IN, false);
    for (unsigned i = 0; i < BUF_BYTES; i++)
        assert_int_equal(f->h->ram[BUF_ADDR + i], 0);
    struct hda_counters c;
    hda_counters(f->hda, &c);
    assert_true(c.frames_in >= BUF_FRAMES);
}

static void test_reset_stops(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    stream_run(f, SD_OUT, true);
    /* A controller reset mid-stream stops it and clears every register. */
    controller_reset(f);
    assert_int_equal(rd(f, SD_OUT + SD_CTL, 4) & 0xffffff, 0);
    assert_int_equal(rd(f, SD_OUT + SD_CBL, 4), 0);
    assert_int_equal(rd(f, INTCTL, 4), 0);
    rings_start(f);
    assert_int_equal(param(f, 0, 0x00), HDA_CODEC_VENDOR_ID);
    /* The codec was reset with the link. */
    assert_int_equal(verb(f, HDA_NID_DAC, 0xf06, 0), 0);
}

/* --- through a real PulseAudio server ------------------------------------- */

static void on_recording(void *opaque, bool on)
{
    struct fx *f = opaque;
    f->recording = on;
    f->recording_changes++;
}

/* latency: the backend's option, "" for its default. */
static int setup_pa_latency(void **state, const char *latency)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[1024] = "", spec[400];
    if (pa_server_start(&f->pa, err, sizeof(err)) < 0)
        fail_msg("the PulseAudio server: %s", err);
    snprintf(spec, sizeof(spec), "pa,server=%s,sink=burrow_out,source=burrow_mic.monitor%s", f->pa.server,
             latency);
    f->audio = audio_open(spec, err, sizeof(err));
    if (!f->audio)
        fail_msg("audio_open: %s", err);
    f->hda = hda_create(&f->h->plat, &f->bus, -1, f->audio, true, err, sizeof(err));
    if (!f->hda)
        fail_msg("hda_create: %s", err);
    hda_watch_recording(f->hda, on_recording, f);
    probe(f);
    *state = f;
    return 0;
}

/* The tests that count gaps ask for a long target latency: the machines
 * the tests run on are shared with builds, fuzzers and nested VMs, and
 * stall a process (the test's, the server's) for 100 ms and more now and
 * then, which no cushion of a desktop's size covers.  How soon the sound
 * starts with the default target is measured on its own
 * (test_pa_default_latency). */
#define PA_TEST_LATENCY "500"

static int setup_pa(void **state)
{
    return setup_pa_latency(state, ",latency=" PA_TEST_LATENCY);
}

static int setup_pa_default(void **state)
{
    return setup_pa_latency(state, "");
}

static int teardown_pa(void **state)
{
    struct fx *f = *state;
    hda_destroy(f->hda);
    audio_close(f->audio);
    harness_free(f->h);
    pa_server_stop(&f->pa, false);
    free(f);
    return 0;
}

static uint32_t frame_at(const uint8_t *buf, size_t i)
{
    uint32_t v;
    memcpy(&v, buf + 4 * i, 4);
    return v;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* parec on a monitor: what the sink played, as it comes. */
struct rec {
    pid_t pid;
    int fd;
    uint8_t *buf;
    size_t len, cap;
    size_t first;               /* first frame that is not silence; SIZE_MAX: none yet */
    double first_ms;            /* when it came through the pipe */
};

static void rec_poll(struct rec *r)
{
    for (;;) {
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? 2 * r->cap : 1 << 22;
            r->buf = realloc(r->buf, r->cap);
            assert_non_null(r->buf);
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    if (r->first != SIZE_MAX)
        return;
    for (size_t i = 0; i < r->len / 4; i++) {
        if (frame_at(r->buf, i)) {
            r->first = i;
            r->first_ms = now_ms();
            break;
        }
    }
}

/* Lines of `pactl list short WHAT` that name our client's streams. */
static unsigned pa_count(struct fx *f, const char *what, const char *needle)
{
    char *argv[] = { "pactl", "list", "short", (char *)what, NULL };
    char *out = pa_server_output(&f->pa, argv);
    assert_non_null(out);
    unsigned n = 0;
    for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strstr(l, needle) && (!strchr(l, '\n') || strstr(l, needle) < strchr(l, '\n'));
    free(out);
    return n;
}

struct pa_wait {
    struct fx *f;
    const char *what, *needle;
    unsigned want;
};

static bool pa_count_is(void *o)
{
    struct pa_wait *w = o;
    return pa_count(w->f, w->what, w->needle) == w->want;
}

/* Waits (running the event loop) until pactl shows `want` such lines. */
static bool wait_pa_count(struct fx *f, const char *what, const char *needle, unsigned want)
{
    struct pa_wait w = { f, what, needle, want };
    return harness_run_until(f->h, pa_count_is, &w, 20000);
}

static void rec_start(struct fx *f, struct rec *r, const char *device)
{
    memset(r, 0, sizeof(*r));
    r->first = SIZE_MAX;
    char dev[64];
    snprintf(dev, sizeof(dev), "--device=%s", device);
    char *argv[] = { "parec", "--raw", "--format=s16le", "--rate=48000", "--channels=2",
                     "--latency-msec=5", dev, NULL };
    r->pid = pa_server_spawn(&f->pa, argv, -1, &r->fd);
    assert_true(r->pid > 0);
    /* Recording once the server lists its stream. */
    if (!wait_pa_count(f, "source-outputs", "protocol-native", 1))
        fail_msg("parec did not connect");
}

struct silence_wait {
    struct rec *r;
    size_t frames;
};

static bool silent_tail(void *o)
{
    struct silence_wait *w = o;
    rec_poll(w->r);
    size_t n = w->r->len / 4;
    if (n < w->frames)
        return false;
    for (size_t i = n - w->frames; i < n; i++)
        if (frame_at(w->r->buf, i))
            return false;
    return true;
}

/* Waits until the monitor has given 100 ms of silence in a row (what an
 * earlier sound left in the server has played), then forgets what parec
 * recorded so far. */
static void rec_wait_silence(struct fx *f, struct rec *r)
{
    struct silence_wait w = { r, 4800 };
    if (!harness_run_until(f->h, silent_tail, &w, 30000))
        fail_msg("the monitor did not fall silent");
    r->len = 0;
    r->first = SIZE_MAX;
}

static void rec_stop(struct rec *r)
{
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
    close(r->fd);
}

struct play_wait {
    struct fx *f;
    struct rec *r;
    size_t frames;              /* wanted after the first sound */
    double last_ms;             /* the loop's last turn */
    double max_stall_ms;        /* its longest pause: the machine held the device up */
};

static bool recorded_enough(void *o)
{
    struct play_wait *w = o;
    double t = now_ms();
    if (w->last_ms > 0 && t - w->last_ms > w->max_stall_ms)
        w->max_stall_ms = t - w->last_ms;
    w->last_ms = t;

    if (w->f->h->irq_level[intx_gsi(w->f)])
        service(w->f);
    rec_poll(w->r);
    return w->r->first != SIZE_MAX && w->r->len / 4 >= w->r->first + w->frames;
}

/* How many times the signal (left: sine(k), right: k, k counting modulo
 * period) breaks in n frames from the first: a gap of silence, a lost or a
 * repeated frame.  *bad_at: the first break. */
static unsigned discontinuities(const uint8_t *buf, size_t first, size_t n, unsigned period,
                                int16_t (*left)(unsigned), size_t *bad_at)
{
    int16_t s[2];
    memcpy(s, buf + 4 * first, 4);
    unsigned k = (uint16_t)s[1] % period, breaks = 0;
    bool in_break = false;
    *bad_at = SIZE_MAX;
    for (size_t i = 0; i < n; i++, k = (k + 1) % period) {
        memcpy(s, buf + 4 * (first + i), 4);
        bool ok = s[0] == left(k) && (uint16_t)s[1] == (uint16_t)k;
        if (!ok && !in_break) {
            breaks++;
            if (*bad_at == SIZE_MAX)
                *bad_at = i;
            /* Pick the signal up again where it goes on. */
        }
        in_break = !ok;
        if (!ok && (uint16_t)s[1] < period && s[0] == left((uint16_t)s[1]))
            k = (uint16_t)s[1], in_break = false;
    }
    return breaks;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The left channel's frequency: the median time between its rising zero
 * crossings (interpolated), so a gap or a skip does not move it. */
static double frequency(const uint8_t *buf, size_t first, size_t n, unsigned rate)
{
    double *periods = malloc(sizeof(double) * (n / 2 + 1)), last = -1;
    assert_non_null(periods);
    size_t np = 0;
    int16_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        int16_t s;
        memcpy(&s, buf + 4 * (first + i), 2);
        if (i && prev < 0 && s >= 0) {
            double t = (double)(i - 1) + (double)-prev / (double)(s - prev);
            if (last >= 0)
                periods[np++] = t - last;
            last = t;
        }
        prev = s;
    }
    double hz = 0;
    if (np) {
        qsort(periods, np, sizeof(double), cmp_double);
        hz = rate / periods[np / 2];
    }
    free(periods);
    return hz;
}

struct played {
    double latency_ms;          /* from RUN to the first sound at parec */
    unsigned breaks;
    double max_stall_ms;        /* the test loop's longest pause meanwhile */
};

/* Plays the sine for `seconds` of sound at parec. */
static struct played play_recorded(struct fx *f, unsigned seconds)
{
    struct played res;
    unsigned *breaks = &res.breaks;
    codec_route(f);
    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    struct rec r;
    rec_start(f, &r, "burrow_out.monitor");
    rec_wait_silence(f, &r);                    /* silence until the guest plays */

    const size_t frames = (size_t)seconds * 48000;
    double t0 = now_ms();
    stream_run(f, SD_OUT, true);
    struct play_wait w = { .f = f, .r = &r, .frames = frames };
    /* The sound takes its own time; the limit is for a machine many times
     * slower. */
    bool done = harness_run_until(f->h, recorded_enough, &w, 60000 + 10000 * (int)seconds);
    stream_run(f, SD_OUT, false);
    struct audio_stats st;
    audio_stats(f->audio, &st);
    rec_stop(&r);
    if (!done)
        fail_msg("parec recorded %zu frames, first sound at %zd", r.len / 4,
                 r.first == SIZE_MAX ? (ssize_t)-1 : (ssize_t)r.first);

    size_t bad_at;
    *breaks = discontinuities(r.buf, r.first, frames, NBUF * BUF_FRAMES, sine, &bad_at);
    double hz = frequency(r.buf, r.first, frames, 48000);
    double latency = r.first_ms - t0;
    printf("pa: first sound at parec %.1f ms after RUN; %.4f Hz (error %.4f%%); %zu frames, "
           "%u breaks; the loop's longest pause %.0f ms; backend: %llu underruns, %llu frames dropped, "
           "%llu skipped, latency now %.1f ms\n",
           latency, hz, 100 * fabs(hz - 1000) / 1000, frames, *breaks, w.max_stall_ms,
           (unsigned long long)st.underruns,
           (unsigned long long)f->audio->frames_dropped, (unsigned long long)st.skipped,
           st.latency_us / 1000.0);
    if (*breaks) {
        int16_t s[2], s0[2];
        memcpy(s0, r.buf + 4 * r.first, 4);
        memcpy(s, r.buf + 4 * (r.first + bad_at), 4);
        printf("pa: the first break: frame %zu after the first (%d/%d) is %d/%d\n", bad_at, s0[0], s0[1],
               s[0], s[1]);
    }
    fflush(stdout);
    free(r.buf);
    assert_true(st.connected);
    /* Exact: the server mixes one stream at full volume, at its rate. */
    assert_true(fabs(hz - 1000) < 5);
    /* The issue asks for 100 ms and the figure is printed above; this
     * bound only catches a stream that waits for seconds, and holds on a
     * machine ten times slower, with parec's own buffering on top. */
    assert_true(latency < 1000);
    res.latency_ms = latency;
    res.max_stall_ms = w.max_stall_ms;
    return res;
}

/* Half the test's target latency: how long the device may be held up
 * before the server runs dry. */
#define PA_TEST_CUSHION_MS (atoi(PA_TEST_LATENCY) / 2)

/* Tries of a check whose breaks the machine may cause. */
#define PA_TRIES 3

/* Whether breaks come from the machine: the test's loop (the device's
 * clock) paused for more than half the cushion.  As for the nested helper's
 * soft lockups, that is said and the check made again; a try with breaks
 * and no such pause fails the test, and when every try was held up so,
 * the test says that the machine gave it no chance and is skipped, never
 * passed. */
static bool machine_stalled(const struct played *p, int try)
{
    if (!p->breaks || p->max_stall_ms <= PA_TEST_CUSHION_MS / 2)
        return false;
    printf("pa: the machine held the test's loop up for %.0f ms (the cushion is %d ms)%s\n",
           p->max_stall_ms, PA_TEST_CUSHION_MS, try + 1 < PA_TRIES ? ": once more" : "");
    fflush(stdout);
    if (try + 1 == PA_TRIES) {
        printf("pa: SKIP: this machine held the test up beyond the cushion in each of %d tries; "
               "no verdict on dropouts here\n", PA_TRIES);
        fflush(stdout);
        skip();
    }
    return true;
}

static void test_pa_play(void **state)
{
    struct played p;
    for (int try = 0; (p = play_recorded(*state, 10)), machine_stalled(&p, try); try++)
        ;
    /* No dropout in 10 s: every frame, in order, no silence between. */
    assert_int_equal(p.breaks, 0);
}

/* A guest that stops and starts again (a short sound, then the next): the
 * second sound arrives whole too. */
static void test_pa_stop_start(void **state)
{
    play_recorded(*state, 1);
    struct played p;
    for (int try = 0; (p = play_recorded(*state, 2)), machine_stalled(&p, try); try++)
        ;
    assert_int_equal(p.breaks, 0);
}

/* The default 40 ms target: how soon the sound starts (breaks are only
 * reported: its 20 ms cushion is a desktop's, not a shared test machine's). */
static void test_pa_default_latency(void **state)
{
    play_recorded(*state, 1);
}

/* 48 kHz and 44.1 kHz tones for the microphone and the format change. */
static int16_t sine44(unsigned frame)
{
    return (int16_t)lrint(12000.0 * sin(2 * M_PI * 1000.0 * frame / 44100.0));
}

static void test_pa_format_change(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    /* A short 48 kHz sound first, then 44.1 kHz: the stream is reopened. */
    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    stream_run(f, SD_OUT, true);
    want_bcis = NBUF;
    memset(f->bcis, 0, sizeof(f->bcis));
    assert_true(wait_for(f, out_bcis, 20000));
    stream_run(f, SD_OUT, false);

    /* 4 buffers of 2205 frames: 50 whole periods each. */
    const unsigned n44 = 2205;
    for (unsigned i = 0; i < NBUF * n44; i++) {
        int16_t s[2] = { sine44(i), (int16_t)i };
        memcpy(f->h->ram + BUF_ADDR + 4 * i, s, 4);
    }
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * n44 * 4, n44 * 4, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, NBUF * n44 * 4);
    wr(f, SD_OUT + SD_FMT, 2, 0x4011);          /* 44.1 kHz, 16-bit, stereo */
    verb(f, HDA_NID_DAC, 0x2, 0x4011);
    struct rec r;
    rec_start(f, &r, "burrow_out.monitor");
    rec_wait_silence(f, &r);
    stream_run(f, SD_OUT, true);
    /* The server lists our stream at the new rate. */
    if (!wait_pa_count(f, "sink-inputs", "44100Hz", 1))
        fail_msg("no playback stream at 44100 Hz");
    struct play_wait w = { .f = f, .r = &r, .frames = 2 * 48000 };
    bool done = harness_run_until(f->h, recorded_enough, &w, 60000);
    stream_run(f, SD_OUT, false);
    rec_stop(&r);
    assert_true(done);
    /* The server resamples to the sink's 48 kHz: the tone stays 1 kHz.
     * (Skip the first 100 ms, where the resampler starts.) */
    double hz = frequency(r.buf, r.first + 4800, 48000, 48000);
    printf("pa: 44.1 kHz sine recorded at 48 kHz: %.4f Hz\n", hz);
    assert_true(fabs(hz - 1000) < 5);
    free(r.buf);
}

/* The microphone: pacat plays a tone into burrow_mic, whose monitor is the
 * backend's source; the driver's input stream records it. */
struct in_wait {
    struct fx *f;
    double last_ms, max_stall_ms;
};

static bool in_cycles(void *o)
{
    struct in_wait *w = o;
    double t = now_ms();
    if (w->last_ms > 0 && t - w->last_ms > w->max_stall_ms)
        w->max_stall_ms = t - w->last_ms;
    w->last_ms = t;
    if (w->f->h->irq_level[intx_gsi(w->f)])
        service(w->f);
    return w->f->bcis[0] >= NBUF;
}

/* Records 4 s while pacat plays 6 s of the counted sine. */
static struct played capture_recorded(struct fx *f)
{
    struct played res = { 0 };
    /* 4 buffers of 1 s: the whole recording stays in RAM. */
    const unsigned sec = 48000 * 4;
    memset(f->h->ram + BUF_ADDR, 0, NBUF * sec);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * sec, sec, true);
    stream_program(f, SD_IN, IN_TAG, NBUF - 1, NBUF * sec);
    assert_false(f->recording);
    /* No record stream until the guest records: the host shows no
     * microphone in use. */
    assert_int_equal(pa_count(f, "source-outputs", "protocol-native"), 0);
    unsigned changes = f->recording_changes;
    memset(f->bcis, 0, sizeof(f->bcis));
    stream_run(f, SD_IN, true);
    assert_true(f->recording);
    assert_true(hda_recording(f->hda));
    if (!wait_pa_count(f, "source-outputs", "protocol-native", 1))
        fail_msg("the backend opened no record stream");

    /* 6 s of tone, counted like the played signal, through pacat (with a
     * cushion as long as ours: the tone must not break on its way in). */
    char path[96];
    snprintf(path, sizeof(path), "%s/tone.raw", f->pa.dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (unsigned i = 0; i < 6 * 48000; i++) {
        int16_t s[2] = { sine(i % (NBUF * BUF_FRAMES)), (int16_t)(i % (NBUF * BUF_FRAMES)) };
        fwrite(s, 4, 1, fp);
    }
    fclose(fp);
    int tone = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(tone >= 0);
    char *argv[] = { "pacat", "--raw", "--format=s16le", "--rate=48000", "--channels=2",
                     "--latency-msec=" PA_TEST_LATENCY, "--device=burrow_mic", NULL };
    pid_t pacat = pa_server_spawn(&f->pa, argv, tone, NULL);
    close(tone);
    assert_true(pacat > 0);

    struct in_wait w = { .f = f };
    bool done = harness_run_until(f->h, in_cycles, &w, 120000);
    stream_run(f, SD_IN, false);
    uint32_t lpib = rd(f, SD_IN + SD_LPIB, 4);
    kill(pacat, SIGTERM);
    waitpid(pacat, NULL, 0);
    assert_true(done);
    assert_false(f->recording);
    assert_int_equal(f->recording_changes, changes + 2);
    /* The record stream goes with the guest's. */
    if (!wait_pa_count(f, "source-outputs", "protocol-native", 0))
        fail_msg("the record stream stayed after the guest stopped recording");

    /* The buffer is a ring: the oldest frames start at LPIB. */
    size_t total = NBUF * sec / 4, first = 0;
    uint8_t *buf = malloc(NBUF * sec);
    assert_non_null(buf);
    assert_true(lpib < NBUF * sec && lpib % 4 == 0);
    memcpy(buf, f->h->ram + BUF_ADDR + lpib, NBUF * sec - lpib);
    memcpy(buf + NBUF * sec - lpib, f->h->ram + BUF_ADDR, lpib);
    while (first < total && !frame_at(buf, first))
        first++;
    if (first + 48000 > total)
        fail_msg("the tone did not reach the input stream (first sound at frame %zu of %zu)", first, total);
    size_t bad_at, n = total - first;
    res.breaks = discontinuities(buf, first, n, NBUF * BUF_FRAMES, sine, &bad_at);
    res.max_stall_ms = w.max_stall_ms;
    double hz = frequency(buf, first, n, 48000);
    struct audio_stats st;
    audio_stats(f->audio, &st);
    printf("pa: microphone: the tone from frame %zu, %zu frames, %.4f Hz, %u breaks; the loop's longest "
           "pause %.0f ms; %llu overruns\n", first, n, hz, res.breaks, w.max_stall_ms,
           (unsigned long long)st.overruns);
    if (res.breaks) {
        int16_t x[2];
        memcpy(x, buf + 4 * (first + bad_at), 4);
        printf("pa: microphone: the first break at frame %zu after the first: %d/%d\n", bad_at, x[0], x[1]);
    }
    fflush(stdout);
    free(buf);
    assert_true(fabs(hz - 1000) < 5);
    return res;
}

static void test_pa_capture(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    struct played p;
    for (int try = 0; (p = capture_recorded(f)), machine_stalled(&p, try); try++)
        ;
    assert_int_equal(p.breaks, 0);
}

static bool disconnected(void *o)
{
    struct fx *f = o;
    struct audio_stats st;
    audio_stats(f->audio, &st);
    return !st.connected;
}

static bool connected(void *o)
{
    return !disconnected(o);
}

/* The server goes away mid-sound and comes back: the device plays on into
 * nothing, the backend says so and connects again by itself. */
static void test_pa_server_restart(void **state)
{
    struct fx *f = *state;
    codec_route(f);
    fill_signal(f);
    for (unsigned i = 0; i < NBUF; i++)
        bde(f, i, BUF_ADDR + i * BUF_BYTES, BUF_BYTES, true);
    stream_program(f, SD_OUT, OUT_TAG, NBUF - 1, CBL_BYTES);
    assert_true(connected(f));
    stream_run(f, SD_OUT, true);
    want_bcis = NBUF;
    memset(f->bcis, 0, sizeof(f->bcis));
    assert_true(wait_for(f, out_bcis, 20000));

    pa_server_stop(&f->pa, true);
    assert_true(wait_for(f, disconnected, 20000));
    /* The device runs on: buffers complete as before. */
    want_bcis = f->bcis[1] + NBUF;
    assert_true(wait_for(f, out_bcis, 20000));
    assert_true(rd(f, SD_OUT + SD_CTL, 1) & CTL_RUN);

    char err[1024];
    if (pa_server_start(&f->pa, err, sizeof(err)) < 0)
        fail_msg("restarting the PulseAudio server: %s", err);
    /* The backend tries every 2 s. */
    assert_true(wait_for(f, connected, 30000));
    struct rec r;
    rec_start(f, &r, "burrow_out.monitor");
    struct play_wait w = { .f = f, .r = &r, .frames = 48000 };
    bool done = harness_run_until(f->h, recorded_enough, &w, 60000);
    stream_run(f, SD_OUT, false);
    rec_stop(&r);
    assert_true(done);
    size_t bad_at;
    assert_int_equal(discontinuities(r.buf, r.first, 48000, NBUF * BUF_FRAMES, sine, &bad_at), 0);
    free(r.buf);
}

static void test_audio_spec(void **state)
{
    char err[128];
    assert_int_equal(audio_parse_check("none", err, sizeof(err)), 0);
    assert_int_equal(audio_parse_check("wav:/x.wav", err, sizeof(err)), 0);
    assert_int_equal(audio_parse_check("wav:", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pulse", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pa", err, sizeof(err)), 0);
    assert_int_equal(audio_parse_check("pa,latency=20,sink=s,source=s.monitor", err, sizeof(err)), 0);
    assert_int_equal(audio_parse_check("pa,server=unix:/run/x/native", err, sizeof(err)), 0);
    assert_int_equal(audio_parse_check("pa,latency=5", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "latency"));
    assert_int_equal(audio_parse_check("pa,latency=40ms", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pa,volume=1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "volume"));
    assert_int_equal(audio_parse_check("pa,", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pa,sink", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pa,sink=", err, sizeof(err)), -1);
    assert_int_equal(audio_parse_check("pa:x", err, sizeof(err)), -1);
    assert_null(audio_open("wav:/nonexistent-dir/x.wav", err, sizeof(err)));
    assert_non_null(strstr(err, "nonexistent-dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_codec_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corb_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_play_sine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mute_and_unrouted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_bdl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pa_play, setup_pa, teardown_pa),
        cmocka_unit_test_setup_teardown(test_pa_stop_start, setup_pa, teardown_pa),
        cmocka_unit_test_setup_teardown(test_pa_default_latency, setup_pa_default, teardown_pa),
        cmocka_unit_test_setup_teardown(test_pa_format_change, setup_pa, teardown_pa),
        cmocka_unit_test_setup_teardown(test_pa_capture, setup_pa, teardown_pa),
        cmocka_unit_test_setup_teardown(test_pa_server_restart, setup_pa, teardown_pa),
        cmocka_unit_test(test_audio_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
