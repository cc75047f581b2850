/* Intel HDA controller (High Definition Audio Specification 1.0a, chapter 3,
 * register names from 3.3).  Guest-supplied rings and buffer descriptor
 * lists are checked before use: a bad one stops the stream or the command
 * ring with an error status and an interrupt, never the VM. */
#include "devices/hda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/audio/audio.h"
#include "devices/evloop.h"
#include "devices/hda_codec.h"
#include "devices/util.h"

/* Global registers (3.3) */
#define GCAP        0x00
#define VMIN        0x02
#define VMAJ        0x03
#define OUTPAY      0x04
#define INPAY       0x06
#define GCTL        0x08
#define  GCTL_CRST    (1u << 0)
#define  GCTL_MASK    0x103u        /* CRST, FCNTRL, UNSOL */
#define WAKEEN      0x0c
#define STATESTS    0x0e
#define GSTS        0x10
#define OUTSTRMPAY  0x18
#define INSTRMPAY   0x1a
#define INTCTL      0x20
#define  INTCTL_GIE   (1u << 31)
#define  INTCTL_CIE   (1u << 30)
#define INTSTS      0x24
#define WALCLK      0x30
#define SSYNC       0x38
#define SSYNC_ICH   0x34            /* where the ICH6 has it */
#define CORBLBASE   0x40
#define CORBUBASE   0x44
#define CORBWP      0x48
#define CORBRP      0x4a
#define  CORBRP_RST   0x8000
#define CORBCTL     0x4c
#define  CORBCTL_CMEIE 0x01
#define  CORBCTL_RUN  0x02
#define CORBSTS     0x4d
#define  CORBSTS_CMEI 0x01
#define CORBSIZE    0x4e
#define RIRBLBASE   0x50
#define RIRBUBASE   0x54
#define RIRBWP      0x58
#define  RIRBWP_RST   0x8000
#define RINTCNT     0x5a
#define RIRBCTL     0x5c
#define  RIRBCTL_RINTCTL 0x01
#define  RIRBCTL_DMAEN   0x02
#define  RIRBCTL_OIC     0x04
#define RIRBSTS     0x5d
#define  RIRBSTS_RINTFL  0x01
#define  RIRBSTS_OIS     0x04
#define RIRBSIZE    0x5e
#define ICOI        0x60
#define IRII        0x64
#define ICS         0x68
#define  ICS_ICB      0x01
#define  ICS_IRV      0x02
#define DPLBASE     0x70
#define  DPLBASE_ENABLE 0x01
#define DPUBASE     0x74
#define SD_BASE     0x80
#define SD_SIZE     0x20
#define ALIAS_BASE  0x2000          /* LPIB aliases at 0x2084 + 0x20 * n */

/* Stream descriptor registers (3.3.35-3.3.45), offsets in a descriptor */
#define SD_CTL      0x00
#define  SD_CTL_SRST  (1u << 0)
#define  SD_CTL_RUN   (1u << 1)
#define  SD_CTL_IOCE  (1u << 2)
#define  SD_CTL_FEIE  (1u << 3)
#define  SD_CTL_DEIE  (1u << 4)
#define  SD_CTL_MASK  0xff001fu     /* STRM, DIR, TP, stripe, the enables */
#define SD_STS      0x03
#define  SD_STS_BCIS  0x04
#define  SD_STS_FIFOE 0x08
#define  SD_STS_DESE  0x10
#define  SD_STS_FIFORDY 0x20
#define SD_LPIB     0x04
#define SD_CBL      0x08
#define SD_LVI      0x0c
#define SD_FIFOW    0x0e
#define SD_FIFOS    0x10
#define SD_FMT      0x12
#define SD_BDPL     0x18
#define SD_BDPU     0x1c

#define NSTREAMS    2               /* descriptor 0: input, 1: output */
#define RING_ENTRIES 256            /* the only CORB and RIRB size we offer */
#define RING_SIZE_REG 0x42          /* 256 entries supported and selected */
#define BDL_MAX     256
#define TICK_NS     1000000ull      /* streams move a millisecond at a time */
#define CATCH_UP_MAX_MS 200         /* a stream further behind skips ahead */
#define CHUNK       4096

struct hda_bde {                    /* buffer descriptor list entry (3.6.3) */
    uint64_t addr;
    uint32_t len;
    bool ioc;
};

struct hda_stream {
    unsigned index;
    bool out;
    /* registers */
    uint32_t ctl;
    uint8_t sts;
    uint32_t lpib, cbl;
    uint16_t lvi;                   /* as written: reserved bits make a DESE */
    uint16_t fmt;
    uint32_t bdpl, bdpu;
    /* DMA engine */
    bool running;
    struct audio_format af;
    uint64_t start_ns;              /* frames_done are counted from here */
    uint64_t frames_done;
    unsigned bde_index;
    uint32_t bde_off;
    struct hda_bde bde;
    uint8_t part[64];               /* a frame split across two buffers */
    unsigned npart;
};

struct hda {
    struct pci_device pci;
    struct platform *plat;
    struct audio_backend *audio;
    struct hda_codec *codec;
    uint32_t gctl;
    uint16_t wakeen, statests;
    uint32_t intctl;
    uint32_t ssync;
    uint64_t walclk_base;
    uint32_t corblbase, corbubase;
    uint16_t corbwp, corbrp;
    bool corbrp_rst;
    uint8_t corbctl, corbsts;
    uint32_t rirblbase, rirbubase;
    uint16_t rirbwp, rintcnt;
    uint8_t rirbctl, rirbsts;
    unsigned responses;             /* since RINTFL was last set */
    uint32_t icoi, irii;
    uint16_t ics;
    uint32_t dplbase, dpubase;
    struct hda_stream sd[NSTREAMS];
    int timer;                      /* -1 when no stream runs */
    bool irq_level;
    bool playing;                   /* the backend was told the output runs */
    bool recording;                 /* ... and that the guest records */
    void (*recording_fn)(void *opaque, bool on);
    void *recording_opaque;
    struct hda_counters counters;
};

/* --- interrupts ------------------------------------------------------- */

static uint32_t stream_int_bits(const struct hda *h)
{
    uint32_t sis = 0;
    for (unsigned i = 0; i < NSTREAMS; i++) {
        const struct hda_stream *s = &h->sd[i];
        if ((s->sts & SD_STS_BCIS && s->ctl & SD_CTL_IOCE) ||
            (s->sts & SD_STS_FIFOE && s->ctl & SD_CTL_FEIE) ||
            (s->sts & SD_STS_DESE && s->ctl & SD_CTL_DEIE))
            sis |= 1u << i;
    }
    return sis;
}

static bool controller_int(const struct hda *h)
{
    return (h->rirbsts & RIRBSTS_RINTFL && h->rirbctl & RIRBCTL_RINTCTL) ||
           (h->rirbsts & RIRBSTS_OIS && h->rirbctl & RIRBCTL_OIC) ||
           (h->corbsts & CORBSTS_CMEI && h->corbctl & CORBCTL_CMEIE) ||
           (h->statests & h->wakeen);
}

static uint32_t intsts(const struct hda *h)
{
    uint32_t v = stream_int_bits(h) | (controller_int(h) ? INTCTL_CIE : 0);
    return v ? v | INTCTL_GIE : 0;
}

static void update_irq(struct hda *h)
{
    uint32_t st = intsts(h);
    bool level = h->intctl & INTCTL_GIE &&
                 ((st & h->intctl & ((1u << NSTREAMS) - 1)) || (st & h->intctl & INTCTL_CIE));
    bool rising = level && !h->irq_level;
    h->irq_level = level;
    /* MSI is an edge: one message per new condition; the driver reads
     * INTSTS until it is clear, so conditions that come meanwhile are seen. */
    if (pci_msi_enabled(&h->pci)) {
        pci_set_intx(&h->pci, false);
        if (rising)
            pci_msi_notify(&h->pci);
    } else {
        pci_set_intx(&h->pci, level);
    }
}

/* --- what the backend and the machine hear of the streams ------------------ */

/* The backend plays while the output stream runs, and records from the
 * host while the input stream runs with the ADC (and so a connected
 * microphone) on it; the machine hears when recording starts and stops. */
static void update_activity(struct hda *h)
{
    const struct hda_stream *out = &h->sd[1], *in = &h->sd[0];
    if (out->running != h->playing) {
        h->playing = out->running;
        if (h->audio)
            audio_set_active(h->audio, true, h->playing ? &out->af : NULL);
    }
    bool rec = in->running && hda_codec_takes_stream(h->codec, false, in->ctl >> 20 & 0xf);
    if (rec != h->recording) {
        h->recording = rec;
        if (h->audio)
            audio_set_active(h->audio, false, rec ? &in->af : NULL);
        if (h->recording_fn)
            h->recording_fn(h->recording_opaque, rec);
    }
}

/* --- codec commands (CORB/RIRB, 3.4; immediate commands, 3.4.3) -------- */

static uint64_t ring_base(uint32_t lo, uint32_t hi)
{
    return (uint64_t)hi << 32 | (lo & ~0x7fu);
}

static void rirb_push(struct hda *h, uint32_t resp, unsigned cad)
{
    if (!(h->rirbctl & RIRBCTL_DMAEN)) {
        h->rirbsts |= RIRBSTS_OIS;      /* nowhere to put it */
        return;
    }
    uint16_t wp = (uint16_t)((h->rirbwp + 1) % RING_ENTRIES);
    uint32_t e[2] = { resp, cad & 0xf };
    if (guest_mem_write(h->plat->mem, ring_base(h->rirblbase, h->rirbubase) + 8ull * wp, e, 8) < 0) {
        log_guest_error("hda: RIRB outside RAM; response lost");
        h->counters.dma_errors++;
        h->rirbsts |= RIRBSTS_OIS;
        return;
    }
    h->rirbwp = wp;
    h->responses++;
    if (h->responses >= (h->rintcnt & 0xff ? h->rintcnt & 0xffu : 256u)) {
        h->rirbsts |= RIRBSTS_RINTFL;
        h->responses = 0;
    }
}

/* Codec address 0 answers; other addresses have no codec and no answer. */
static bool codec_command(struct hda *h, uint32_t verb, uint32_t *resp)
{
    if (verb >> 28 != 0)
        return false;
    *resp = hda_codec_command(h->codec, verb);
    return true;
}

static void corb_run(struct hda *h)
{
    if (!(h->corbctl & CORBCTL_RUN) || h->corbrp_rst)
        return;
    uint64_t base = ring_base(h->corblbase, h->corbubase);
    while (h->corbrp != (h->corbwp & 0xff)) {
        uint16_t rp = (uint16_t)((h->corbrp + 1) % RING_ENTRIES);
        uint32_t verb, resp;
        if (guest_mem_read(h->plat->mem, base + 4ull * rp, &verb, 4) < 0) {
            /* Memory error: the CORB stops until the guest fixes it. */
            log_guest_error("hda: CORB outside RAM; command ring stopped");
            h->counters.dma_errors++;
            h->corbsts |= CORBSTS_CMEI;
            h->corbctl &= (uint8_t)~CORBCTL_RUN;
            break;
        }
        h->corbrp = rp;
        if (codec_command(h, verb, &resp))
            rirb_push(h, resp, verb >> 28);
    }
    /* The ring ran empty: responses short of RINTCNT interrupt now too. */
    if (h->responses) {
        h->rirbsts |= RIRBSTS_RINTFL;
        h->responses = 0;
    }
    update_irq(h);
    update_activity(h);     /* a verb may have moved the ADC to another stream */
}

static void immediate_command(struct hda *h)
{
    uint32_t resp;
    if (codec_command(h, h->icoi, &resp)) {
        h->irii = resp;
        h->ics |= ICS_IRV;
    }
    h->ics &= (uint16_t)~ICS_ICB;
    update_activity(h);
}

/* --- streams (3.3.35 on, 3.6) ------------------------------------------ */

static uint64_t stream_bdl(const struct hda_stream *s)
{
    return (uint64_t)s->bdpu << 32 | (s->bdpl & ~0x7fu);
}

/* Stream format (3.3.41): base rate, multiple, divisor, bits, channels. */
static bool decode_format(uint16_t fmt, struct audio_format *af)
{
    static const unsigned bits[8] = { 8, 16, 20, 24, 32, 0, 0, 0 };
    unsigned mult = (fmt >> 11 & 7) + 1, div = (fmt >> 8 & 7) + 1;
    if (mult > 4 || !bits[fmt >> 4 & 7])
        return false;
    af->rate = (fmt & 0x4000 ? 44100 : 48000) * mult / div;
    af->bits = bits[fmt >> 4 & 7];
    af->channels = (fmt & 0xf) + 1u;
    return audio_frame_bytes(af) <= sizeof(((struct hda_stream *)0)->part);
}

static bool load_bde(struct hda *h, struct hda_stream *s, unsigned i, struct hda_bde *e)
{
    uint8_t raw[16];
    if (guest_mem_read(h->plat->mem, stream_bdl(s) + 16ull * i, raw, sizeof(raw)) < 0)
        return false;
    e->addr = ld64(raw);
    e->len = ld32(raw + 8);
    e->ioc = ld32(raw + 12) & 1;
    return e->len && guest_mem_ptr(h->plat->mem, e->addr, e->len);
}

static void write_position(struct hda *h, const struct hda_stream *s)
{
    if (!(h->dplbase & DPLBASE_ENABLE))
        return;
    uint64_t a = ((uint64_t)h->dpubase << 32 | (h->dplbase & ~0x7fu)) + 8ull * s->index;
    if (guest_mem_write(h->plat->mem, a, &s->lpib, 4) < 0) {
        log_guest_error("hda: DMA position buffer outside RAM; turned off");
        h->counters.dma_errors++;
        h->dplbase &= ~DPLBASE_ENABLE;
    }
}

static void stream_error(struct hda *h, struct hda_stream *s, uint8_t sts, const char *why)
{
    log_guest_error("hda: %s stream stopped: %s", s->out ? "output" : "input", why);
    if (sts == SD_STS_DESE)
        h->counters.bdl_errors++;
    else
        h->counters.dma_errors++;
    s->sts |= sts;
    s->running = false;
    s->ctl &= ~SD_CTL_RUN;
    update_activity(h);
}

/* Checks the whole list before the stream runs, and finds where LPIB
 * points in it (a stream that was stopped resumes where it was). */
static const char *stream_check(struct hda *h, struct hda_stream *s)
{
    if (!decode_format(s->fmt, &s->af))
        return "unsupported stream format";
    if (s->lvi > BDL_MAX - 1)
        return "last valid index beyond 255";
    if (s->lvi < 1)
        return "fewer than two buffer descriptors";
    if (!s->cbl || s->lpib >= s->cbl)
        return "cyclic buffer length is zero or below the position";
    uint64_t sum = 0;
    bool found = false;
    for (unsigned i = 0; i <= s->lvi; i++) {
        struct hda_bde e;
        if (!load_bde(h, s, i, &e))
            return "buffer descriptor with zero length or outside RAM";
        if (!found && s->lpib < sum + e.len) {
            found = true;
            s->bde_index = i;
            s->bde = e;
            s->bde_off = (uint32_t)(s->lpib - sum);
        }
        sum += e.len;
    }
    if (sum != s->cbl)
        return "buffer lengths do not add up to the cyclic buffer length";
    return NULL;
}

static void apply_gain(struct hda *h, const struct hda_stream *s, uint8_t *buf, size_t len)
{
    uint32_t g[2];
    hda_codec_gain(h->codec, s->out, g);
    if (s->af.bits != 16 || (g[0] == 65536 && g[1] == 65536))
        return;
    for (size_t i = 0; i + 1 < len; i += 2) {
        int32_t v = (int16_t)ld16(buf + i);
        unsigned ch = (unsigned)(i / 2) % s->af.channels;
        v = (int32_t)(((int64_t)v * g[ch > 1 ? 1 : ch]) >> 16);
        st16(buf + i, (uint16_t)(int16_t)v);
    }
}

/* Output: whole frames go to the backend, a split frame waits in part[]. */
static void play(struct hda *h, struct hda_stream *s, const uint8_t *p, size_t len, bool heard)
{
    unsigned fb = audio_frame_bytes(&s->af);
    uint8_t buf[CHUNK + sizeof(s->part)];
    memcpy(buf, s->part, s->npart);
    memcpy(buf + s->npart, p, len);
    size_t total = s->npart + len, whole = total - total % fb;
    s->npart = (unsigned)(total - whole);
    memcpy(s->part, buf + whole, s->npart);
    if (!whole)
        return;
    h->counters.frames_out += whole / fb;
    if (!heard)
        return;
    apply_gain(h, s, buf, whole);
    audio_play(h->audio, &s->af, buf, whole);
}

static void capture(struct hda *h, struct hda_stream *s, uint8_t *p, size_t len, bool heard)
{
    size_t n = heard ? audio_capture(h->audio, &s->af, p, len) : 0;
    memset(p + n, 0, len - n);
    apply_gain(h, s, p, len);
    h->counters.frames_in += len / audio_frame_bytes(&s->af);
}

static void stream_transfer(struct hda *h, struct hda_stream *s, uint64_t bytes)
{
    bool heard = hda_codec_takes_stream(h->codec, s->out, s->ctl >> 20 & 0xf);
    while (bytes && s->running) {
        uint32_t chunk = (uint32_t)MIN(MIN(bytes, (uint64_t)(s->bde.len - s->bde_off)), (uint64_t)CHUNK);
        uint8_t *p = guest_mem_ptr(h->plat->mem, s->bde.addr + s->bde_off, chunk);
        if (!p) {
            stream_error(h, s, SD_STS_FIFOE, "buffer outside RAM");
            break;
        }
        if (s->out)
            play(h, s, p, chunk, heard);
        else
            capture(h, s, p, chunk, heard);
        bytes -= chunk;
        s->bde_off += chunk;
        s->lpib += chunk;
        if (s->lpib >= s->cbl)
            s->lpib = 0;
        if (s->bde_off < s->bde.len)
            continue;
        if (s->bde.ioc)
            s->sts |= SD_STS_BCIS;
        s->bde_index = (s->bde_index + 1) % (s->lvi + 1u);
        s->bde_off = 0;
        /* The guest may rewrite entries while the stream runs. */
        if (!load_bde(h, s, s->bde_index, &s->bde))
            stream_error(h, s, SD_STS_DESE, "buffer descriptor with zero length or outside RAM");
    }
    write_position(h, s);
}

/* Moves the stream up to now: as many frames as its rate says are due. */
static void stream_advance(struct hda *h, struct hda_stream *s, uint64_t now)
{
    if (!s->running || now <= s->start_ns)
        return;
    unsigned rate = s->af.rate;
    if (now - s->start_ns > 10 * 1000000000ull) {
        /* Held up for long (the process stopped): start over a little
         * behind now, so the products below stay small. */
        s->start_ns = now - CATCH_UP_MAX_MS * 1000000ull;
        s->frames_done = 0;
    }
    uint64_t target = (now - s->start_ns) * rate / 1000000000ull;
    if (target <= s->frames_done)
        return;
    uint64_t due = target - s->frames_done;
    if (due > (uint64_t)rate * CATCH_UP_MAX_MS / 1000) {
        /* The I/O thread was held up: skip ahead rather than flood. */
        due = (uint64_t)rate * CATCH_UP_MAX_MS / 1000;
    }
    s->frames_done = target;
    /* Keep the products small: count from the last whole second. */
    uint64_t secs = s->frames_done / rate;
    s->start_ns += secs * 1000000000ull;
    s->frames_done -= secs * rate;
    stream_transfer(h, s, due * audio_frame_bytes(&s->af));
}

static void timer_cb(void *opaque);

static void arm_timer(struct hda *h)
{
    if (h->timer < 0 && h->plat->loop)
        h->timer = evloop_add_timer(h->plat->loop, TICK_NS, timer_cb, h);
}

static void advance_all(struct hda *h)
{
    uint64_t now = evloop_now_ns();
    for (unsigned i = 0; i < NSTREAMS; i++)
        stream_advance(h, &h->sd[i], now);
}

static void timer_cb(void *opaque)
{
    struct hda *h = opaque;
    h->timer = -1;
    advance_all(h);
    update_irq(h);
    for (unsigned i = 0; i < NSTREAMS; i++)
        if (h->sd[i].running)
            arm_timer(h);
}

static void stream_start(struct hda *h, struct hda_stream *s)
{
    const char *why = stream_check(h, s);
    if (why) {
        stream_error(h, s, SD_STS_DESE, why);
        return;
    }
    s->running = true;
    s->start_ns = evloop_now_ns();
    s->frames_done = 0;
    arm_timer(h);
    update_activity(h);
}

static void stream_stop(struct hda *h, struct hda_stream *s)
{
    stream_advance(h, s, evloop_now_ns());
    s->running = false;
    if (s->out && h->audio)
        audio_flush(h->audio);     /* what was played is in the file now */
    update_activity(h);
}

static void stream_reset(struct hda_stream *s)
{
    unsigned index = s->index;
    bool out = s->out;
    memset(s, 0, sizeof(*s));
    s->index = index;
    s->out = out;
}

static uint32_t stream_read(struct hda *h, struct hda_stream *s, unsigned off)
{
    switch (off) {
    case SD_CTL: {
        uint8_t sts = s->sts | (s->ctl & SD_CTL_SRST ? 0 : SD_STS_FIFORDY);
        return (s->ctl & 0xffffff) | (uint32_t)sts << 24;
    }
    case SD_LPIB:
        stream_advance(h, s, evloop_now_ns());
        update_irq(h);
        return s->lpib;
    case SD_CBL: return s->cbl;
    case SD_LVI: return (s->lvi & 0xffu) | 0x04u << 16;      /* FIFOW: 32 bytes */
    case SD_FIFOS: return (s->out ? 0xffu : 0x7fu) | (uint32_t)s->fmt << 16;
    case SD_BDPL: return s->bdpl;
    case SD_BDPU: return s->bdpu;
    default: return 0;
    }
}

static void stream_write(struct hda *h, struct hda_stream *s, unsigned off, uint32_t v, uint32_t m)
{
    switch (off) {
    case SD_CTL: {
        if (m & 0xff000000u) {
            s->sts &= (uint8_t)~((v >> 24) & (SD_STS_BCIS | SD_STS_FIFOE | SD_STS_DESE));
        }
        if (!(m & 0xffffff))
            break;
        uint32_t ctl = (s->ctl & ~m) | (v & m & SD_CTL_MASK);
        if (ctl & SD_CTL_SRST) {
            if (s->running)
                stream_stop(h, s);
            stream_reset(s);
            s->ctl = SD_CTL_SRST;
            break;
        }
        bool was = s->ctl & SD_CTL_RUN;
        s->ctl = ctl;
        if (!was && (ctl & SD_CTL_RUN))
            stream_start(h, s);
        else if (was && !(ctl & SD_CTL_RUN))
            stream_stop(h, s);
        break;
    }
    case SD_CBL:
        if (!s->running)
            s->cbl = (s->cbl & ~m) | (v & m);
        break;
    case SD_LVI:
        if (!s->running && (m & 0xffff))
            s->lvi = (uint16_t)((s->lvi & ~m) | (v & m));
        break;
    case SD_FIFOS:
        if (!s->running && (m & 0xffff0000u))
            s->fmt = (uint16_t)(((s->fmt & ~(m >> 16)) | ((v & m) >> 16)) & 0x7f7f);
        break;
    case SD_BDPL:
        if (!s->running)
            s->bdpl = ((s->bdpl & ~m) | (v & m)) & ~0x7fu;
        break;
    case SD_BDPU:
        if (!s->running)
            s->bdpu = (s->bdpu & ~m) | (v & m);
        break;
    default:
        break;
    }
    update_irq(h);
}

/* --- controller reset ---------------------------------------------------- */

static void controller_reset(struct hda *h)
{
    h->gctl = 0;
    h->wakeen = h->statests = 0;
    h->intctl = 0;
    h->ssync = 0;
    h->corblbase = h->corbubase = 0;
    h->corbwp = h->corbrp = 0;
    h->corbrp_rst = false;
    h->corbctl = h->corbsts = 0;
    h->rirblbase = h->rirbubase = 0;
    h->rirbwp = h->rintcnt = 0;
    h->rirbctl = h->rirbsts = 0;
    h->responses = 0;
    h->icoi = h->irii = 0;
    h->ics = 0;
    h->dplbase = h->dpubase = 0;
    for (unsigned i = 0; i < NSTREAMS; i++)
        stream_reset(&h->sd[i]);
    if (h->timer >= 0) {
        evloop_del_timer(h->plat->loop, h->timer);
        h->timer = -1;
    }
    hda_codec_reset(h->codec);
    update_irq(h);
    update_activity(h);
}

/* --- register access ------------------------------------------------------ */

static uint32_t reg_read(struct hda *h, unsigned off)
{
    if (off >= ALIAS_BASE + SD_BASE && off < ALIAS_BASE + SD_BASE + NSTREAMS * SD_SIZE &&
        (off - ALIAS_BASE - SD_BASE) % SD_SIZE == SD_LPIB)
        off -= ALIAS_BASE;
    if (off >= SD_BASE && off < SD_BASE + NSTREAMS * SD_SIZE)
        return stream_read(h, &h->sd[(off - SD_BASE) / SD_SIZE], (off - SD_BASE) % SD_SIZE);
    switch (off) {
    case GCAP: return 0x1101 | 0x00 << 16 | 0x01u << 24;   /* 1 out, 1 in, 64-bit; 1.0 */
    case OUTPAY: return 0x3c | 0x1d << 16;
    case GCTL: return h->gctl;
    case WAKEEN: return h->wakeen | (uint32_t)h->statests << 16;
    case OUTSTRMPAY: return 0x30 | 0x18 << 16;
    case INTCTL: return h->intctl;
    case INTSTS:
        advance_all(h);
        update_irq(h);
        return intsts(h);
    case WALCLK:
        /* 24 MHz: 3 ticks every 125 ns. */
        return (uint32_t)((evloop_now_ns() - h->walclk_base) * 3 / 125);
    case SSYNC: case SSYNC_ICH: return h->ssync;
    case CORBLBASE: return h->corblbase;
    case CORBUBASE: return h->corbubase;
    case CORBWP: return h->corbwp | (uint32_t)(h->corbrp | (h->corbrp_rst ? CORBRP_RST : 0)) << 16;
    case CORBCTL: return h->corbctl | (uint32_t)h->corbsts << 8 | (uint32_t)RING_SIZE_REG << 16;
    case RIRBLBASE: return h->rirblbase;
    case RIRBUBASE: return h->rirbubase;
    case RIRBWP: return h->rirbwp | (uint32_t)h->rintcnt << 16;
    case RIRBCTL: return h->rirbctl | (uint32_t)h->rirbsts << 8 | (uint32_t)RING_SIZE_REG << 16;
    case ICOI: return h->icoi;
    case IRII: return h->irii;
    case ICS: return h->ics;
    case DPLBASE: return h->dplbase;
    case DPUBASE: return h->dpubase;
    default: return 0;
    }
}

static uint32_t merge(uint32_t old, uint32_t v, uint32_t m)
{
    return (old & ~m) | (v & m);
}

/* m: the bits the access wrote (whole bytes). */
static void reg_write(struct hda *h, unsigned off, uint32_t v, uint32_t m)
{
    if (off == GCTL) {
        uint32_t g = merge(h->gctl, v, m) & GCTL_MASK;
        if (!(g & GCTL_CRST)) {
            controller_reset(h);
            return;
        }
        if (!(h->gctl & GCTL_CRST)) {
            /* Leaving reset: the link comes up and the codec at SDIN0
             * announces itself. */
            h->walclk_base = evloop_now_ns();
            h->statests |= 1;
        }
        h->gctl = g;
        update_irq(h);
        return;
    }
    if (!(h->gctl & GCTL_CRST))
        return;     /* in reset, only GCTL listens */
    if (off >= SD_BASE && off < SD_BASE + NSTREAMS * SD_SIZE) {
        stream_write(h, &h->sd[(off - SD_BASE) / SD_SIZE], (off - SD_BASE) % SD_SIZE, v, m);
        return;
    }
    switch (off) {
    case WAKEEN:
        h->wakeen = (uint16_t)(merge(h->wakeen, v, m) & 0x7fff);
        h->statests &= (uint16_t)~((v & m) >> 16);
        break;
    case INTCTL:
        h->intctl = merge(h->intctl, v, m) & (INTCTL_GIE | INTCTL_CIE | ((1u << NSTREAMS) - 1));
        break;
    case SSYNC: case SSYNC_ICH:
        h->ssync = merge(h->ssync, v, m) & ((1u << NSTREAMS) - 1);
        break;
    case CORBLBASE:
        if (!(h->corbctl & CORBCTL_RUN))
            h->corblbase = merge(h->corblbase, v, m) & ~0x7fu;
        break;
    case CORBUBASE:
        if (!(h->corbctl & CORBCTL_RUN))
            h->corbubase = merge(h->corbubase, v, m);
        break;
    case CORBWP:
        if (m & 0xffff)
            h->corbwp = (uint16_t)(merge(h->corbwp, v, m) & 0xff);
        if (m & 0xffff0000u) {
            /* CORBRPRST: the pointer clears, and the bit reads back as set
             * until the guest clears it (3.3.21). */
            h->corbrp_rst = (v >> 16) & CORBRP_RST;
            if (h->corbrp_rst)
                h->corbrp = 0;
        }
        corb_run(h);
        break;
    case CORBCTL:
        if (m & 0xff)
            h->corbctl = (uint8_t)(merge(h->corbctl, v, m) & (CORBCTL_CMEIE | CORBCTL_RUN));
        if (m & 0xff00)
            h->corbsts &= (uint8_t)~((v >> 8) & CORBSTS_CMEI);
        corb_run(h);
        break;
    case RIRBLBASE:
        if (!(h->rirbctl & RIRBCTL_DMAEN))
            h->rirblbase = merge(h->rirblbase, v, m) & ~0x7fu;
        break;
    case RIRBUBASE:
        if (!(h->rirbctl & RIRBCTL_DMAEN))
            h->rirbubase = merge(h->rirbubase, v, m);
        break;
    case RIRBWP:
        if ((m & 0xffff) && (v & RIRBWP_RST))
            h->rirbwp = 0;
        if (m & 0xffff0000u)
            h->rintcnt = (uint16_t)(merge((uint32_t)h->rintcnt << 16, v, m) >> 16 & 0xff);
        break;
    case RIRBCTL:
        if (m & 0xff)
            h->rirbctl = (uint8_t)(merge(h->rirbctl, v, m) & 0x07);
        if (m & 0xff00)
            h->rirbsts &= (uint8_t)~((v >> 8) & (RIRBSTS_RINTFL | RIRBSTS_OIS));
        break;
    case ICOI:
        h->icoi = merge(h->icoi, v, m);
        break;
    case ICS:
        if (m & 0xff) {
            h->ics &= (uint16_t)~(v & ICS_IRV);
            if (v & ICS_ICB)
                immediate_command(h);
        }
        break;
    case DPLBASE:
        h->dplbase = merge(h->dplbase, v, m) & ~0x7eu;
        break;
    case DPUBASE:
        h->dpubase = merge(h->dpubase, v, m);
        break;
    default:
        break;
    }
    update_irq(h);
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    struct hda *h = opaque;
    uint64_t v = 0;
    /* Registers are bytes of aligned dwords; an access may span two. */
    for (unsigned k = 0; k < size; k++) {
        uint64_t o = off + k;
        if (o >= HDA_BAR_SIZE)
            break;
        uint32_t d = reg_read(h, (unsigned)(o & ~3ull));
        v |= (uint64_t)((d >> (8 * (o & 3))) & 0xff) << (8 * k);
    }
    return v;
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct hda *h = opaque;
    unsigned k = 0;
    while (k < size && off + k < HDA_BAR_SIZE) {
        unsigned dw = (unsigned)((off + k) & ~3ull);
        uint32_t v = 0, m = 0;
        for (; k < size && ((off + k) & ~3ull) == dw; k++) {
            unsigned sh = 8 * ((off + k) & 3);
            v |= (uint32_t)((val >> (8 * k)) & 0xff) << sh;
            m |= 0xffu << sh;
        }
        reg_write(h, dw, v, m);
    }
}

static const struct io_ops hda_ops = { mmio_read, mmio_write };

/* --- creation ----------------------------------------------------------- */

static void pci_reset(struct pci_device *d)
{
    controller_reset(d->opaque);
}

struct hda *hda_create(struct platform *p, struct pci_bus *bus, int devfn,
                       struct audio_backend *audio, bool mic, char *err, size_t errlen)
{
    struct hda *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "hda: out of memory");
        return NULL;
    }
    h->plat = p;
    h->audio = audio;
    h->timer = -1;
    h->codec = hda_codec_new(mic);
    if (!h->codec) {
        snprintf(err, errlen, "hda: out of memory");
        free(h);
        return NULL;
    }
    for (unsigned i = 0; i < NSTREAMS; i++) {
        h->sd[i].index = i;
        h->sd[i].out = i == 1;
    }
    struct pci_device *d = &h->pci;
    pci_device_init(d, HDA_VENDOR_ID, HDA_DEVICE_ID, 0x040300, 1, "hda");
    d->opaque = h;
    d->reset = pci_reset;
    pci_set_irq_pin(d, 1);
    pci_add_bar(d, 0, PCI_BAR_MEM64, false, HDA_BAR_SIZE, &hda_ops, h);
    /* The ICH6 keeps 40h-5fh for its own registers (TCSEL at 44h, which
     * drivers write) and has MSI at 60h. */
    d->next_cap = 0x60;
    if (pci_msi_init(d) < 0 || pci_bus_add(bus, d, devfn) < 0) {
        snprintf(err, errlen, "hda: no free PCI slot");
        hda_codec_free(h->codec);
        free(h);
        return NULL;
    }
    controller_reset(h);
    return h;
}

void hda_destroy(struct hda *h)
{
    if (!h)
        return;
    if (h->timer >= 0)
        evloop_del_timer(h->plat->loop, h->timer);
    pci_bus_remove(&h->pci);
    hda_codec_free(h->codec);
    free(h);
}

struct pci_device *hda_pci(struct hda *h)
{
    return &h->pci;
}

void hda_counters(const struct hda *h, struct hda_counters *out)
{
    *out = h->counters;
}

bool hda_recording(const struct hda *h)
{
    return h->recording;
}

void hda_watch_recording(struct hda *h, void (*fn)(void *opaque, bool on), void *opaque)
{
    h->recording_fn = fn;
    h->recording_opaque = opaque;
}
