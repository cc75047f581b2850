/* 16550A UART, after the National Semiconductor / TI PC16550D datasheet.
 *
 * The transmitter is infinitely fast: a byte written to THR goes to the
 * backend at once, so THRE and TEMT always read as set.  The receiver has
 * the 16-byte FIFO with its trigger levels; the character-timeout interrupt
 * comes from an event-loop timer of four character times at the programmed
 * baud rate. */
#include "devices/uart8250.h"

#include <stdlib.h>

#include "devices/chardev.h"
#include "devices/evloop.h"
#include "devices/platform.h"
#include "devices/util.h"

/* Register offsets. */
#define UART_RBR 0   /* read, DLAB=0: receiver buffer */
#define UART_THR 0   /* write, DLAB=0: transmitter holding */
#define UART_DLL 0   /* DLAB=1: divisor latch low */
#define UART_IER 1   /* DLAB=0: interrupt enable */
#define UART_DLM 1   /* DLAB=1: divisor latch high */
#define UART_IIR 2   /* read: interrupt identification */
#define UART_FCR 2   /* write: FIFO control */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_NREGS 8

#define IER_ERBFI 0x01   /* received data available */
#define IER_ETBEI 0x02   /* transmitter holding register empty */
#define IER_ELSI  0x04   /* receiver line status */
#define IER_EDSSI 0x08   /* modem status */
#define IER_MASK  0x0f

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c  /* character timeout, FIFO mode only */
#define IIR_FIFOS  0xc0  /* both bits set while FCR0 is set */

#define FCR_ENABLE   0x01
#define FCR_CLR_RX   0x02
#define FCR_CLR_TX   0x04
#define FCR_DMA      0x08
#define FCR_TRIG(v)  (((v) >> 6) & 3)

#define LCR_WLS   0x03   /* word length - 5 */
#define LCR_STB   0x04   /* 2 stop bits */
#define LCR_PEN   0x08
#define LCR_DLAB  0x80

#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define MCR_MASK  0x1f

#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_PE    0x04
#define LSR_FE    0x08
#define LSR_BI    0x10
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define LSR_ERRS  (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

/* With no modem behind the port the lines read as a connected, ready
 * peer, so software that waits for CTS/DSR/DCD can talk. */
#define MSR_HOST_LINES (MSR_CTS | MSR_DSR | MSR_DCD)

#define UART_FIFO_SIZE 16
#define UART_CLOCK_HZ 115200   /* 1.8432 MHz / 16 */

struct uart8250 {
    struct platform *p;
    struct chardev *cd;
    uint16_t base;
    unsigned gsi;

    uint16_t divisor;
    uint8_t ier, lcr, mcr, msr, scr, fcr;
    uint8_t lsr_errs;      /* OE/PE/FE/BI latched until LSR is read */
    uint8_t rbr_last;      /* what RBR reads with nothing received */
    bool thre_pending;     /* THRE interrupt condition, see IIR rules */

    uint8_t rx[UART_FIFO_SIZE];
    unsigned rx_head, rx_count;
    bool timeout_pending;  /* character timeout reached */
    int timer_id;          /* 0: no character-timeout timer armed */

    bool irq_level;
};

static unsigned rx_capacity(const struct uart8250 *u)
{
    return (u->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart8250 *u)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };
    return (u->fcr & FCR_ENABLE) ? levels[FCR_TRIG(u->fcr)] : 1;
}

static uint8_t iir_id(const struct uart8250 *u)
{
    if ((u->ier & IER_ELSI) && (u->lsr_errs & LSR_ERRS))
        return IIR_RLSI;
    if (u->ier & IER_ERBFI) {
        if (u->rx_count >= rx_trigger(u))
            return IIR_RDI;
        if (u->timeout_pending && u->rx_count > 0)
            return IIR_CTI;
    }
    if ((u->ier & IER_ETBEI) && u->thre_pending)
        return IIR_THRI;
    if ((u->ier & IER_EDSSI) && (u->msr & 0x0f))
        return IIR_MSI;
    return IIR_NO_INT;
}

static void update_irq(struct uart8250 *u)
{
    /* On PCs the INTR pin is gated by the OUT2 pin; loopback mode forces
     * the OUT pins inactive, so no interrupt leaves the chip then. */
    bool gate = (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);
    bool level = gate && iir_id(u) != IIR_NO_INT;
    if (level != u->irq_level) {
        u->irq_level = level;
        platform_set_irq(u->p, u->gsi, level);
    }
}

/* ---- receive FIFO and character timeout ---- */

static void cancel_timeout(struct uart8250 *u)
{
    if (u->timer_id > 0 && u->p->loop)
        evloop_del_timer(u->p->loop, u->timer_id);
    u->timer_id = 0;
}

static void timeout_expired(void *opaque)
{
    struct uart8250 *u = opaque;
    u->timer_id = 0;
    if ((u->fcr & FCR_ENABLE) && u->rx_count > 0) {
        u->timeout_pending = true;
        update_irq(u);
    }
}

static uint64_t four_char_times_ns(const struct uart8250 *u)
{
    unsigned data_bits = 5 + (u->lcr & LCR_WLS);
    unsigned bits = 1 + data_bits + ((u->lcr & LCR_PEN) ? 1 : 0) + ((u->lcr & LCR_STB) ? 2 : 1);
    uint64_t divisor = u->divisor ? u->divisor : 65536;
    return 4ULL * bits * divisor * 1000000000ULL / UART_CLOCK_HZ;
}

/* Restarts the timeout clock: called on every character in or out of the
 * FIFO, as the datasheet resets the timer on both. */
static void restart_timeout(struct uart8250 *u)
{
    cancel_timeout(u);
    u->timeout_pending = false;
    if (!(u->fcr & FCR_ENABLE) || u->rx_count == 0)
        return;
    if (!u->p->loop) {
        /* No clock to wait on: report at once what sits below the trigger. */
        u->timeout_pending = true;
        return;
    }
    int id = evloop_add_timer(u->p->loop, four_char_times_ns(u), timeout_expired, u);
    u->timer_id = id > 0 ? id : 0;
    if (id <= 0)
        u->timeout_pending = true;
}

static void rx_clear(struct uart8250 *u)
{
    u->rx_head = u->rx_count = 0;
    cancel_timeout(u);
    u->timeout_pending = false;
}

/* A character finished arriving in the receiver shift register. */
static void rx_push(struct uart8250 *u, uint8_t c)
{
    if (u->rx_count < rx_capacity(u)) {
        u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
        u->rx_count++;
    } else {
        /* Overrun: in FIFO mode the new character is lost; without the FIFO
         * it overwrites the unread one in RBR. */
        u->lsr_errs |= LSR_OE;
        if (!(u->fcr & FCR_ENABLE))
            u->rx[u->rx_head] = c;
    }
}

static uint8_t rx_pop(struct uart8250 *u)
{
    if (u->rx_count == 0)
        return u->rbr_last;
    uint8_t c = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
    u->rx_count--;
    u->rbr_last = c;
    return c;
}

static size_t uart_can_receive(void *opaque)
{
    struct uart8250 *u = opaque;
    /* In loopback the receiver is cut off from the serial input pin. */
    if (u->mcr & MCR_LOOP)
        return 0;
    return rx_capacity(u) - u->rx_count;
}

static void uart_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct uart8250 *u = opaque;
    if (u->mcr & MCR_LOOP)
        return;
    for (size_t i = 0; i < len; i++)
        rx_push(u, buf[i]);
    restart_timeout(u);
    update_irq(u);
}

/* ---- modem lines ---- */

static void set_msr_lines(struct uart8250 *u)
{
    uint8_t lines;
    if (u->mcr & MCR_LOOP) {
        /* Loopback wires the outputs to the inputs inside the chip. */
        lines = ((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
                ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
    } else {
        lines = MSR_HOST_LINES;
    }
    uint8_t old = u->msr & 0xf0, changed = old ^ lines, delta = 0;
    if (changed & MSR_CTS)
        delta |= MSR_DCTS;
    if (changed & MSR_DSR)
        delta |= MSR_DDSR;
    if ((old & MSR_RI) && !(lines & MSR_RI))
        delta |= MSR_TERI;   /* only the trailing edge of RI counts */
    if (changed & MSR_DCD)
        delta |= MSR_DDCD;
    u->msr = lines | (u->msr & 0x0f) | delta;
}

/* ---- register access ---- */

static uint8_t uart_read_reg(struct uart8250 *u, unsigned reg)
{
    uint8_t v = 0xff;
    switch (reg) {
    case UART_RBR:
        if (u->lcr & LCR_DLAB)
            return u->divisor & 0xff;
        v = rx_pop(u);
        restart_timeout(u);
        if (u->rx_count < rx_capacity(u))
            chardev_input_ready(u->cd);
        update_irq(u);
        return v;
    case UART_IER:
        if (u->lcr & LCR_DLAB)
            return u->divisor >> 8;
        return u->ier;
    case UART_IIR: {
        uint8_t id = iir_id(u);
        /* Reading IIR while it names THRE is what acknowledges THRE. */
        if (id == IIR_THRI) {
            u->thre_pending = false;
            update_irq(u);
        }
        return id | ((u->fcr & FCR_ENABLE) ? IIR_FIFOS : 0);
    }
    case UART_LCR:
        return u->lcr;
    case UART_MCR:
        return u->mcr;
    case UART_LSR:
        v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0) | u->lsr_errs;
        /* Error bits clear on read; the RLS interrupt goes with them. */
        u->lsr_errs = 0;
        update_irq(u);
        return v;
    case UART_MSR:
        v = u->msr;
        u->msr &= 0xf0;
        update_irq(u);
        return v;
    case UART_SCR:
        return u->scr;
    }
    return v;
}

static void uart_write_fcr(struct uart8250 *u, uint8_t v)
{
    if ((v ^ u->fcr) & FCR_ENABLE) {
        /* Switching the FIFOs on or off empties them. */
        rx_clear(u);
        chardev_input_ready(u->cd);
    }
    if (!(v & FCR_ENABLE)) {
        /* Other bits are only programmed together with FCR0 = 1. */
        u->fcr = 0;
        return;
    }
    if (!(u->fcr & FCR_ENABLE))
        u->thre_pending = true;   /* first TX interrupt after enabling is immediate */
    u->fcr = v & (FCR_ENABLE | FCR_DMA | 0xc0);
    if (v & FCR_CLR_RX) {
        rx_clear(u);
        chardev_input_ready(u->cd);
    }
    /* FCR_CLR_TX: the transmitter never holds anything. */
}

static void uart_write_reg(struct uart8250 *u, unsigned reg, uint8_t v)
{
    switch (reg) {
    case UART_THR:
        if (u->lcr & LCR_DLAB) {
            u->divisor = (u->divisor & 0xff00) | v;
            break;
        }
        if (u->mcr & MCR_LOOP) {
            rx_push(u, v);
            restart_timeout(u);
        } else {
            chardev_write(u->cd, &v, 1);
        }
        /* The byte left THR at once: THR is empty again, and that is a new
         * THRE interrupt condition (the write cleared the previous one). */
        u->thre_pending = true;
        break;
    case UART_IER: {
        if (u->lcr & LCR_DLAB) {
            u->divisor = (u->divisor & 0x00ff) | (uint16_t)(v << 8);
            break;
        }
        uint8_t old = u->ier;
        u->ier = v & IER_MASK;
        /* Enabling ETBEI while THR is empty raises THRE at once; Linux's
         * 8250 driver tests for exactly this at start-up. */
        if ((u->ier & IER_ETBEI) && !(old & IER_ETBEI))
            u->thre_pending = true;
        break;
    }
    case UART_FCR:
        uart_write_fcr(u, v);
        break;
    case UART_LCR:
        u->lcr = v;
        break;
    case UART_MCR: {
        uint8_t old = u->mcr;
        u->mcr = v & MCR_MASK;
        set_msr_lines(u);
        if ((old & MCR_LOOP) && !(u->mcr & MCR_LOOP))
            chardev_input_ready(u->cd);
        break;
    }
    case UART_LSR:
        /* Factory test register on real parts; writes do nothing here. */
        break;
    case UART_MSR:
        break;
    case UART_SCR:
        u->scr = v;
        break;
    }
    update_irq(u);
}

static uint64_t uart_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct uart8250 *u = opaque;
    uint64_t v = 0;
    /* The UART sits on an 8-bit bus: wider accesses become byte cycles on
     * the following ports. */
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t reg = offset + i;
        uint8_t b = reg < UART_NREGS ? uart_read_reg(u, (unsigned)reg) : 0xff;
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static void uart_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct uart8250 *u = opaque;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t reg = offset + i;
        if (reg < UART_NREGS)
            uart_write_reg(u, (unsigned)reg, (uint8_t)(value >> (8 * i)));
    }
}

static const struct io_ops uart_ops = {
    .read = uart_io_read,
    .write = uart_io_write,
};

void uart8250_reset(struct uart8250 *u)
{
    rx_clear(u);
    u->divisor = 12;   /* 9600 baud, what PC firmware sets up */
    u->ier = 0;
    u->lcr = 0;
    u->mcr = 0;
    u->fcr = 0;
    u->scr = 0;
    u->lsr_errs = 0;
    u->rbr_last = 0;
    u->thre_pending = false;
    u->msr = MSR_HOST_LINES;
    update_irq(u);
    chardev_input_ready(u->cd);
}

struct uart8250 *uart8250_create(struct platform *p, uint16_t base, unsigned gsi,
                                 struct chardev *cd)
{
    struct uart8250 *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->p = p;
    u->cd = cd;
    u->base = base;
    u->gsi = gsi;
    if (io_bus_register(p->pio, base, UART_NREGS, &uart_ops, u, "uart8250") < 0) {
        log_error("uart8250: ports 0x%x-0x%x are already taken", base, base + UART_NREGS - 1);
        free(u);
        return NULL;
    }
    uart8250_reset(u);
    chardev_set_input(cd, uart_receive, uart_can_receive, u);
    return u;
}

void uart8250_destroy(struct uart8250 *u)
{
    if (!u)
        return;
    chardev_set_input(u->cd, NULL, NULL, NULL);
    cancel_timeout(u);
    io_bus_unregister(u->p->pio, u->base, u);
    free(u);
}
