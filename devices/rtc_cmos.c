/* MC146818A RTC and CMOS RAM (Motorola MC146818A data sheet).
 *
 * The clock is not ticked: the guest's time is host CLOCK_REALTIME plus
 * offset_s, so reading it costs nothing and it never drifts.  Updates
 * happen at the host's whole seconds.  While SET is held the guest sees
 * (and edits) a frozen copy in the register file; releasing SET turns that
 * copy back into an offset.  Flags whose interrupt is disabled are worked
 * out when register C is read, so an idle RTC runs no timers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* timegm */
#endif
#include "devices/rtc_cmos.h"

#include <stdlib.h>
#include <time.h>

#include "devices/evloop.h"
#include "devices/util.h"

#define NSEC 1000000000ULL
#define UIP_NS 244000ULL        /* UIP is high this long before an update */

struct rtc_cmos {
    struct platform *plat;
    uint8_t cmos[128];          /* RAM and register file */
    uint8_t index;
    bool nmi_disabled;
    bool frozen;                /* SET held: time lives in cmos[] */
    bool irq;
    int64_t offset_s;           /* guest seconds minus host seconds */
    int64_t last_update_s;      /* guest second of the last update seen */
    uint64_t last_pf_ns;        /* monotonic: last PF, for the lazy path */
    uint64_t periodic_next_ns;  /* monotonic deadline of the next PF */
    int periodic_timer;         /* evloop ids, -1 when not armed */
    int update_timer;
};

static void host_now(int64_t *sec, uint32_t *nsec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (uint32_t)ts.tv_nsec;
}

static int64_t guest_now_s(const struct rtc_cmos *rtc)
{
    int64_t s;
    uint32_t ns;
    host_now(&s, &ns);
    return s + rtc->offset_s;
}

static bool binary_mode(const struct rtc_cmos *rtc)
{
    return rtc->cmos[RTC_REG_B] & RTC_B_DM_BINARY;
}

static uint8_t enc(const struct rtc_cmos *rtc, unsigned v)
{
    return binary_mode(rtc) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* -1 when a BCD byte has a digit above 9. */
static int dec(const struct rtc_cmos *rtc, uint8_t b)
{
    if (binary_mode(rtc))
        return b;
    if ((b >> 4) > 9 || (b & 15) > 9)
        return -1;
    return (b >> 4) * 10 + (b & 15);
}

static uint8_t enc_hour(const struct rtc_cmos *rtc, unsigned h)
{
    if (rtc->cmos[RTC_REG_B] & RTC_B_24H)
        return enc(rtc, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return (uint8_t)(enc(rtc, h12) | (h >= 12 ? 0x80 : 0));
}

static int dec_hour(const struct rtc_cmos *rtc, uint8_t b)
{
    if (rtc->cmos[RTC_REG_B] & RTC_B_24H)
        return dec(rtc, b);
    int h = dec(rtc, b & 0x7f);
    if (h < 1 || h > 12)
        return -1;
    return h % 12 + (b & 0x80 ? 12 : 0);
}

/* Writes guest time t into the clock registers in the current format. */
static void fill_time_regs(struct rtc_cmos *rtc, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return;
    int year = tm.tm_year + 1900;
    rtc->cmos[RTC_SECONDS] = enc(rtc, (unsigned)tm.tm_sec);
    rtc->cmos[RTC_MINUTES] = enc(rtc, (unsigned)tm.tm_min);
    rtc->cmos[RTC_HOURS] = enc_hour(rtc, (unsigned)tm.tm_hour);
    rtc->cmos[RTC_DAY_OF_WEEK] = enc(rtc, (unsigned)tm.tm_wday + 1);
    rtc->cmos[RTC_DAY_OF_MONTH] = enc(rtc, (unsigned)tm.tm_mday);
    rtc->cmos[RTC_MONTH] = enc(rtc, (unsigned)tm.tm_mon + 1);
    rtc->cmos[RTC_YEAR] = enc(rtc, (unsigned)(year % 100));
    rtc->cmos[RTC_CENTURY] = enc(rtc, (unsigned)(year / 100));
}

/* Reads the clock registers back as seconds; -1 if they hold no date. */
static int regs_to_time(const struct rtc_cmos *rtc, int64_t *t)
{
    int sec = dec(rtc, rtc->cmos[RTC_SECONDS]);
    int min = dec(rtc, rtc->cmos[RTC_MINUTES]);
    int hour = dec_hour(rtc, rtc->cmos[RTC_HOURS]);
    int mday = dec(rtc, rtc->cmos[RTC_DAY_OF_MONTH]);
    int mon = dec(rtc, rtc->cmos[RTC_MONTH]);
    int year = dec(rtc, rtc->cmos[RTC_YEAR]);
    int cent = dec(rtc, rtc->cmos[RTC_CENTURY]);
    if (sec < 0 || sec > 59 || min < 0 || min > 59 || hour < 0 || hour > 23 ||
        mday < 1 || mday > 31 || mon < 1 || mon > 12 || year < 0 || year > 99 ||
        cent < 0 || cent > 99)
        return -1;
    struct tm tm = {
        .tm_sec = sec, .tm_min = min, .tm_hour = hour, .tm_mday = mday,
        .tm_mon = mon - 1, .tm_year = cent * 100 + year - 1900,
    };
    *t = (int64_t)timegm(&tm);
    return 0;
}

static bool is_time_reg(unsigned idx)
{
    return idx <= RTC_YEAR || idx == RTC_CENTURY;
}

static void update_irq(struct rtc_cmos *rtc)
{
    uint8_t c = rtc->cmos[RTC_REG_C], b = rtc->cmos[RTC_REG_B];
    bool irqf = ((c & RTC_C_PF) && (b & RTC_B_PIE)) ||
                ((c & RTC_C_AF) && (b & RTC_B_AIE)) ||
                ((c & RTC_C_UF) && (b & RTC_B_UIE));
    if (irqf)
        rtc->cmos[RTC_REG_C] |= RTC_C_IRQF;
    else
        rtc->cmos[RTC_REG_C] &= (uint8_t)~RTC_C_IRQF;
    if (irqf != rtc->irq) {
        rtc->irq = irqf;
        platform_set_irq(rtc->plat, RTC_IRQ_GSI, irqf);
    }
}

/* An alarm byte with its two top bits set matches any value. */
static bool alarm_byte_matches(uint8_t alarm, uint8_t now)
{
    return (alarm & 0xc0) == 0xc0 || alarm == now;
}

/* Catches up with updates (UF, AF) since the last one seen. */
static void catch_up_updates(struct rtc_cmos *rtc)
{
    if (rtc->frozen)
        return;
    int64_t now = guest_now_s(rtc);
    if (now == rtc->last_update_s)
        return;
    rtc->last_update_s = now;
    rtc->cmos[RTC_REG_C] |= RTC_C_UF;
    /* The alarm is checked against the time just reached (the registers
     * are computed on the fly, so fill a scratch copy). */
    uint8_t saved[128];
    memcpy(saved, rtc->cmos, sizeof(saved));
    fill_time_regs(rtc, now);
    bool match = alarm_byte_matches(saved[RTC_SECONDS_ALARM], rtc->cmos[RTC_SECONDS]) &&
                 alarm_byte_matches(saved[RTC_MINUTES_ALARM], rtc->cmos[RTC_MINUTES]) &&
                 alarm_byte_matches(saved[RTC_HOURS_ALARM], rtc->cmos[RTC_HOURS]);
    memcpy(rtc->cmos, saved, sizeof(saved));
    if (match)
        rtc->cmos[RTC_REG_C] |= RTC_C_AF;
}

/* Periodic interval for rate select rs (1-15) with the 32.768 kHz base:
 * rates 1 and 2 repeat rates 8 and 9. */
static uint64_t periodic_ns(const struct rtc_cmos *rtc)
{
    unsigned rs = rtc->cmos[RTC_REG_A] & RTC_A_RS_MASK;
    if (rs == 0)
        return 0;
    if (rs < 3)
        rs += 7;
    return (1ULL << (rs - 1)) * NSEC / 32768;
}

static void periodic_arm(struct rtc_cmos *rtc);
static void update_arm(struct rtc_cmos *rtc);

static void periodic_fire(void *opaque)
{
    struct rtc_cmos *rtc = opaque;
    rtc->periodic_timer = -1;
    rtc->cmos[RTC_REG_C] |= RTC_C_PF;
    rtc->last_pf_ns = evloop_now_ns();
    update_irq(rtc);
    uint64_t period = periodic_ns(rtc);
    rtc->periodic_next_ns += period;
    /* Fell far behind (loop stalled): restart the train from now. */
    if (rtc->periodic_next_ns + 16 * period < rtc->last_pf_ns)
        rtc->periodic_next_ns = rtc->last_pf_ns + period;
    periodic_arm(rtc);
}

/* A timer runs only while the periodic interrupt is enabled. */
static void periodic_arm(struct rtc_cmos *rtc)
{
    struct evloop *loop = rtc->plat->loop;
    uint64_t period = periodic_ns(rtc);
    bool want = loop && period && (rtc->cmos[RTC_REG_B] & RTC_B_PIE);
    if (!want) {
        if (rtc->periodic_timer >= 0)
            evloop_del_timer(loop, rtc->periodic_timer);
        rtc->periodic_timer = -1;
        return;
    }
    if (rtc->periodic_timer >= 0)
        return;
    uint64_t now = evloop_now_ns();
    if (rtc->periodic_next_ns <= rtc->last_pf_ns || rtc->periodic_next_ns > now + period)
        rtc->periodic_next_ns = now + period;
    uint64_t delay = rtc->periodic_next_ns > now ? rtc->periodic_next_ns - now : 0;
    rtc->periodic_timer = evloop_add_timer(loop, delay, periodic_fire, rtc);
}

static void update_fire(void *opaque)
{
    struct rtc_cmos *rtc = opaque;
    rtc->update_timer = -1;
    catch_up_updates(rtc);
    update_irq(rtc);
    update_arm(rtc);
}

/* A timer at each second boundary only while UIE or AIE is set. */
static void update_arm(struct rtc_cmos *rtc)
{
    struct evloop *loop = rtc->plat->loop;
    bool want = loop && !rtc->frozen &&
                (rtc->cmos[RTC_REG_B] & (RTC_B_UIE | RTC_B_AIE));
    if (!want) {
        if (rtc->update_timer >= 0)
            evloop_del_timer(loop, rtc->update_timer);
        rtc->update_timer = -1;
        return;
    }
    if (rtc->update_timer >= 0)
        return;
    int64_t s;
    uint32_t ns;
    host_now(&s, &ns);
    rtc->update_timer = evloop_add_timer(loop, NSEC - ns + 20000, update_fire, rtc);
}

static uint8_t read_reg(struct rtc_cmos *rtc, unsigned idx)
{
    if (is_time_reg(idx)) {
        if (!rtc->frozen)
            fill_time_regs(rtc, guest_now_s(rtc));
        return rtc->cmos[idx];
    }
    switch (idx) {
    case RTC_REG_A: {
        uint8_t a = rtc->cmos[RTC_REG_A] & (uint8_t)~RTC_A_UIP;
        int64_t s;
        uint32_t ns;
        host_now(&s, &ns);
        if (!rtc->frozen && ns >= NSEC - UIP_NS)
            a |= RTC_A_UIP;
        return a;
    }
    case RTC_REG_C: {
        catch_up_updates(rtc);
        /* Periodic flag for a rate running without its interrupt. */
        uint64_t period = periodic_ns(rtc), now = evloop_now_ns();
        if (period && rtc->periodic_timer < 0 && now - rtc->last_pf_ns >= period) {
            rtc->cmos[RTC_REG_C] |= RTC_C_PF;
            rtc->last_pf_ns = now;
        }
        update_irq(rtc);
        uint8_t c = rtc->cmos[RTC_REG_C];
        rtc->cmos[RTC_REG_C] = 0;    /* reading clears every flag */
        update_irq(rtc);
        return c;
    }
    case RTC_REG_D:
        return RTC_D_VRT;            /* the battery is always good */
    default:
        return rtc->cmos[idx];
    }
}

/* Turns the register copy back into an offset from the host clock. */
static void commit_time(struct rtc_cmos *rtc)
{
    int64_t t;
    if (regs_to_time(rtc, &t) < 0) {
        log_guest_error("rtc: invalid date/time written, clock unchanged");
        return;
    }
    int64_t s;
    uint32_t ns;
    host_now(&s, &ns);
    rtc->offset_s = t - s;
    rtc->last_update_s = t;
}

static void write_reg(struct rtc_cmos *rtc, unsigned idx, uint8_t v)
{
    if (is_time_reg(idx)) {
        if (rtc->frozen) {
            rtc->cmos[idx] = v;
        } else {
            /* A write while the clock runs sets that field from now on. */
            fill_time_regs(rtc, guest_now_s(rtc));
            rtc->cmos[idx] = v;
            commit_time(rtc);
        }
        return;
    }
    switch (idx) {
    case RTC_REG_A:
        rtc->cmos[RTC_REG_A] = v & (uint8_t)~RTC_A_UIP;
        if (rtc->periodic_timer >= 0) {   /* new rate: restart the train */
            evloop_del_timer(rtc->plat->loop, rtc->periodic_timer);
            rtc->periodic_timer = -1;
            rtc->periodic_next_ns = 0;
        }
        periodic_arm(rtc);
        break;
    case RTC_REG_B: {
        uint8_t old = rtc->cmos[RTC_REG_B];
        if ((v & RTC_B_SET) && !(old & RTC_B_SET)) {
            /* Freeze what the guest sees now, in the old format. */
            fill_time_regs(rtc, guest_now_s(rtc));
            rtc->frozen = true;
            v &= (uint8_t)~RTC_B_UIE;    /* SET clears UIE */
        } else if (v & RTC_B_SET) {
            v &= (uint8_t)~RTC_B_UIE;
        }
        rtc->cmos[RTC_REG_B] = v;
        if (!(v & RTC_B_SET) && (old & RTC_B_SET)) {
            rtc->frozen = false;
            commit_time(rtc);
            rtc->last_update_s = guest_now_s(rtc);
        }
        update_irq(rtc);
        periodic_arm(rtc);
        update_arm(rtc);
        break;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        log_guest_error("rtc: write 0x%02x to read-only register 0x%x", v, idx);
        break;
    default:
        rtc->cmos[idx] = v;
        break;
    }
}

static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
    struct rtc_cmos *rtc = opaque;
    uint64_t v = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint8_t b = 0xff;                  /* the index register is write-only */
        if (offset + i == 1)
            b = read_reg(rtc, rtc->index);
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static void rtc_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct rtc_cmos *rtc = opaque;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint8_t b = (uint8_t)(value >> (8 * i));
        if (offset + i == 0) {
            rtc->index = b & 0x7f;
            rtc->nmi_disabled = (b & 0x80) != 0;
        } else if (offset + i == 1) {
            write_reg(rtc, rtc->index, b);
        }
    }
}

static const struct io_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

void rtc_cmos_set(struct rtc_cmos *rtc, uint8_t index, uint8_t val)
{
    if (index < 128)
        rtc->cmos[index] = val;
}

uint8_t rtc_cmos_get(const struct rtc_cmos *rtc, uint8_t index)
{
    return index < 128 ? rtc->cmos[index] : 0xff;
}

void rtc_cmos_set_memory(struct rtc_cmos *rtc, uint64_t lowmem, uint64_t highmem, unsigned ncpus)
{
    rtc->cmos[CMOS_BASE_MEM_LO] = 640 & 0xff;
    rtc->cmos[CMOS_BASE_MEM_HI] = 640 >> 8;

    uint64_t ext = lowmem > MiB ? (lowmem - MiB) / KiB : 0;
    ext = MIN(ext, 0xffffULL);
    rtc->cmos[CMOS_EXT_MEM_LO] = rtc->cmos[CMOS_EXT_MEM2_LO] = (uint8_t)ext;
    rtc->cmos[CMOS_EXT_MEM_HI] = rtc->cmos[CMOS_EXT_MEM2_HI] = (uint8_t)(ext >> 8);

    uint64_t above16 = lowmem > 16 * MiB ? (lowmem - 16 * MiB) / (64 * KiB) : 0;
    above16 = MIN(above16, 0xffffULL);
    rtc->cmos[CMOS_MEM_ABOVE_16M_LO] = (uint8_t)above16;
    rtc->cmos[CMOS_MEM_ABOVE_16M_HI] = (uint8_t)(above16 >> 8);

    uint64_t above4g = MIN(highmem / (64 * KiB), 0xffffffULL);
    rtc->cmos[CMOS_MEM_ABOVE_4G_LO] = (uint8_t)above4g;
    rtc->cmos[CMOS_MEM_ABOVE_4G_MID] = (uint8_t)(above4g >> 8);
    rtc->cmos[CMOS_MEM_ABOVE_4G_HI] = (uint8_t)(above4g >> 16);

    rtc->cmos[CMOS_CPU_COUNT] = (uint8_t)(ncpus ? MIN(ncpus - 1, 255u) : 0);
}

void rtc_cmos_set_offset(struct rtc_cmos *rtc, int64_t seconds)
{
    rtc->offset_s = seconds;
    rtc->last_update_s = guest_now_s(rtc);
}

int64_t rtc_cmos_get_offset(const struct rtc_cmos *rtc)
{
    return rtc->offset_s;
}

bool rtc_cmos_nmi_disabled(const struct rtc_cmos *rtc)
{
    return rtc->nmi_disabled;
}

void rtc_cmos_reset(struct rtc_cmos *rtc)
{
    rtc->cmos[RTC_REG_B] &= (uint8_t)~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | RTC_B_SQWE);
    rtc->cmos[RTC_REG_C] = 0;
    update_irq(rtc);
    periodic_arm(rtc);
    update_arm(rtc);
}

struct rtc_cmos *rtc_cmos_create(struct platform *p)
{
    struct rtc_cmos *rtc = calloc(1, sizeof(*rtc));
    if (!rtc)
        return NULL;
    rtc->plat = p;
    rtc->periodic_timer = -1;
    rtc->update_timer = -1;
    rtc->cmos[RTC_REG_A] = 0x26;                 /* 32.768 kHz base, 1024 Hz */
    rtc->cmos[RTC_REG_B] = RTC_B_24H;            /* BCD, 24-hour */
    rtc->cmos[RTC_REG_D] = RTC_D_VRT;
    rtc->last_update_s = guest_now_s(rtc);
    rtc->last_pf_ns = evloop_now_ns();
    if (io_bus_register(p->pio, RTC_PORT_INDEX, 2, &rtc_ops, rtc, "rtc") < 0) {
        log_error("rtc: ports 0x70-0x71 busy");
        free(rtc);
        return NULL;
    }
    return rtc;
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
    if (!rtc)
        return;
    struct evloop *loop = rtc->plat->loop;
    if (loop && rtc->periodic_timer >= 0)
        evloop_del_timer(loop, rtc->periodic_timer);
    if (loop && rtc->update_timer >= 0)
        evloop_del_timer(loop, rtc->update_timer);
    io_bus_unregister(rtc->plat->pio, RTC_PORT_INDEX, rtc);
    free(rtc);
}
