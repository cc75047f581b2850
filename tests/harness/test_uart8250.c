/* 16550A UART driven through its registers as a guest driver would, with
 * expectations taken from the PC16550D datasheet. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/chardev.h"
#include "devices/uart8250.h"
#include "support/harness_platform.h"

#define BASE 0x3f8
#define GSI 4

/* Register offsets and bits, from the datasheet. */
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c
#define IIR_FIFO 0xc0

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

static char tmpdir[PATH_MAX];

struct fx {
    struct harness *h;
    struct chardev *cd;
    struct uart8250 *u;
    char path[PATH_MAX];
};

static uint8_t rd(struct fx *f, unsigned reg)
{
    return (uint8_t)harness_pio_read(f->h, BASE + reg, 1);
}

static void wr(struct fx *f, unsigned reg, uint8_t v)
{
    harness_pio_write(f->h, BASE + reg, 1, v);
}

static bool irq(struct fx *f)
{
    return f->h->irq_level[GSI];
}

static int setup_file(void **state)
{
    static unsigned n;
    struct fx *f = calloc(1, sizeof(*f));
    f->h = harness_new(1 << 20);
    assert_non_null(f->h);
    int len = snprintf(f->path, sizeof(f->path), "%s/uart-%u.out", tmpdir, n++);
    assert_true(len > 0 && (size_t)len < sizeof(f->path));
    char spec[PATH_MAX + 8], err[256];
    len = snprintf(spec, sizeof(spec), "file:%s", f->path);
    assert_true(len > 0 && (size_t)len < sizeof(spec));
    f->cd = chardev_open(spec, f->h->plat.loop, err, sizeof(err));
    assert_non_null(f->cd);
    f->u = uart8250_create(&f->h->plat, BASE, GSI, f->cd);
    assert_non_null(f->u);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    uart8250_destroy(f->u);
    chardev_close(f->cd);
    harness_free(f->h);
    unlink(f->path);
    free(f);
    return 0;
}

static size_t file_contents(const char *path, uint8_t *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, len);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

/* ---- tests ---- */

static void test_reset_values(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rd(f, IER), 0x00);
    assert_int_equal(rd(f, IIR), IIR_NONE);
    assert_int_equal(rd(f, LCR), 0x00);
    assert_int_equal(rd(f, MCR), 0x00);
    assert_int_equal(rd(f, LSR), LSR_THRE | LSR_TEMT);
    /* No modem: the lines read as a ready peer, with no change pending. */
    assert_int_equal(rd(f, MSR), 0xb0);
    assert_int_equal(rd(f, SCR), 0x00);
    assert_false(irq(f));
    /* Unknown bits of IER and MCR read as zero. */
    wr(f, IER, 0xff);
    assert_int_equal(rd(f, IER), 0x0f);
    wr(f, MCR, 0xff);
    assert_int_equal(rd(f, MCR), 0x1f);
    /* Reset brings it all back. */
    wr(f, SCR, 0x42);
    uart8250_reset(f->u);
    assert_int_equal(rd(f, IER), 0x00);
    assert_int_equal(rd(f, MCR), 0x00);
    assert_int_equal(rd(f, SCR), 0x00);
    assert_int_equal(rd(f, IIR), IIR_NONE);
    assert_false(irq(f));
}

static void test_divisor_latch(void **state)
{
    struct fx *f = *state;
    wr(f, IER, 0x05);
    wr(f, LCR, 0x80 | 0x03);           /* DLAB, 8N1 */
    wr(f, DLL, 0x01);
    wr(f, DLM, 0x02);
    assert_int_equal(rd(f, DLL), 0x01);
    assert_int_equal(rd(f, DLM), 0x02);
    assert_int_equal(rd(f, LCR), 0x83);
    wr(f, LCR, 0x03);
    /* With DLAB clear the same offsets are RBR/THR and IER again. */
    assert_int_equal(rd(f, IER), 0x05);
    wr(f, LCR, 0x83);
    assert_int_equal(rd(f, DLL), 0x01);
    assert_int_equal(rd(f, DLM), 0x02);
    wr(f, LCR, 0x03);
    /* Writing the divisor transmitted nothing. */
    uint8_t buf[16];
    assert_int_equal(file_contents(f->path, buf, sizeof(buf)), 0);
}

static void test_scratch(void **state)
{
    struct fx *f = *state;
    for (unsigned v = 0; v < 256; v += 0x55) {
        wr(f, SCR, (uint8_t)v);
        assert_int_equal(rd(f, SCR), v);
    }
}

static void test_loopback(void **state)
{
    struct fx *f = *state;
    wr(f, MCR, MCR_LOOP);
    /* Entering loopback dropped CTS, DSR and DCD: their deltas are set. */
    assert_int_equal(rd(f, MSR), 0x0b);
    assert_int_equal(rd(f, MSR), 0x00);   /* deltas clear on read */
    /* Modem outputs loop to inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
    wr(f, MCR, MCR_LOOP | MCR_RTS);
    assert_int_equal(rd(f, MSR), 0x10 | 0x01);
    wr(f, MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT1 | MCR_OUT2);
    assert_int_equal(rd(f, MSR), 0xf0 | 0x02 | 0x08);
    wr(f, MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);
    assert_int_equal(rd(f, MSR), 0xb0 | 0x04);   /* trailing edge of RI */

    wr(f, THR, 'A');
    assert_int_equal(rd(f, LSR) & LSR_DR, LSR_DR);
    assert_int_equal(rd(f, RBR), 'A');
    assert_int_equal(rd(f, LSR), LSR_THRE | LSR_TEMT);
    wr(f, FCR, 0x01);
    const char *msg = "loop!";
    for (const char *p = msg; *p; p++)
        wr(f, THR, (uint8_t)*p);
    for (const char *p = msg; *p; p++) {
        assert_true(rd(f, LSR) & LSR_DR);
        assert_int_equal(rd(f, RBR), *p);
    }
    assert_false(rd(f, LSR) & LSR_DR);
    /* Nothing left the chip. */
    uint8_t buf[16];
    assert_int_equal(file_contents(f->path, buf, sizeof(buf)), 0);
    /* Leaving loopback brings the host lines back. */
    wr(f, MCR, 0);
    assert_int_equal(rd(f, MSR) & 0xf0, 0xb0);
}

static bool iir_is_cti(void *opaque)
{
    struct fx *f = opaque;
    return (rd(f, IIR) & 0x0f) == IIR_CTI;
}

static void test_fifo_trigger_levels(void **state)
{
    struct fx *f = *state;
    static const struct { uint8_t fcr; unsigned level; } trig[] = {
        { 0x01, 1 }, { 0x41, 4 }, { 0x81, 8 }, { 0xc1, 14 },
    };
    wr(f, MCR, MCR_LOOP);
    wr(f, IER, 0x01);   /* received data only */
    for (size_t t = 0; t < 4; t++) {
        wr(f, FCR, trig[t].fcr | 0x02);   /* also clear the RX FIFO */
        assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
        for (unsigned i = 0; i + 1 < trig[t].level; i++) {
            wr(f, THR, (uint8_t)i);
            assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
        }
        wr(f, THR, 0xee);
        assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_RDI);
        /* Reading below the trigger removes the RDA condition... */
        (void)rd(f, RBR);
        if (trig[t].level > 1) {
            assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
            /* ...and the rest is reported by the character timeout. */
            assert_true(harness_run_until(f->h, iir_is_cti, f, 1000));
            assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_CTI);
            /* A read clears the timeout indication. */
            (void)rd(f, RBR);
            assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
        }
        while (rd(f, LSR) & LSR_DR)
            (void)rd(f, RBR);
        assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
    }
    /* Without FIFOs: one byte raises RDA; no FIFO bits in IIR. */
    wr(f, FCR, 0x00);
    assert_int_equal(rd(f, IIR), IIR_NONE);
    wr(f, THR, 1);
    assert_int_equal(rd(f, IIR), IIR_RDI);
    (void)rd(f, RBR);
    assert_int_equal(rd(f, IIR), IIR_NONE);
}

static void test_interrupt_priority(void **state)
{
    struct fx *f = *state;
    wr(f, MCR, MCR_LOOP);
    (void)rd(f, MSR);
    wr(f, FCR, 0x01);
    wr(f, IER, 0x0f);
    /* THRE is pending (IER enable) and alone. */
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_THRI);
    /* 17 bytes into a 16-byte FIFO: data, an overrun, and THRE again. */
    for (unsigned i = 0; i < 17; i++)
        wr(f, THR, (uint8_t)('a' + i));
    wr(f, MCR, MCR_LOOP | MCR_DTR);   /* DSR changes: a modem status event */
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_RLSI);
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_RLSI);   /* IIR read does not clear it */
    uint8_t lsr = rd(f, LSR);
    assert_int_equal(lsr & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_RDI);
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(rd(f, RBR), 'a' + i);   /* the 17th was lost */
    assert_false(rd(f, LSR) & LSR_DR);
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_THRI);
    /* That IIR read acknowledged THRE; modem status is last in line. */
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_MSI);
    assert_int_equal(rd(f, MSR) & 0x0f, 0x02);
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
    /* Disabled sources stay quiet even when their condition holds. */
    wr(f, IER, 0x00);
    wr(f, THR, 'z');
    wr(f, MCR, MCR_LOOP);
    assert_int_equal(rd(f, IIR), IIR_FIFO | IIR_NONE);
}

static void test_thre_rules(void **state)
{
    struct fx *f = *state;
    wr(f, MCR, MCR_OUT2);
    assert_int_equal(rd(f, IIR), IIR_NONE);
    /* Enabling ETBEI with THR empty interrupts at once. */
    wr(f, IER, 0x02);
    assert_true(irq(f));
    assert_int_equal(rd(f, IIR), IIR_THRI);
    /* Reading IIR while it shows THRE acknowledges it. */
    assert_false(irq(f));
    assert_int_equal(rd(f, IIR), IIR_NONE);
    /* Rewriting IER with ETBEI already set raises nothing new. */
    wr(f, IER, 0x02);
    assert_int_equal(rd(f, IIR), IIR_NONE);
    /* Clearing and setting it again does (Linux's start-up probe). */
    wr(f, IER, 0x00);
    wr(f, IER, 0x02);
    assert_int_equal(rd(f, IIR), IIR_THRI);
    /* A THR write empties at once: a new THRE interrupt each time. */
    unsigned raises = f->h->irq_raises[GSI];
    wr(f, THR, 'x');
    assert_true(irq(f));
    assert_int_equal(f->h->irq_raises[GSI], raises + 1);
    assert_int_equal(rd(f, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    assert_int_equal(rd(f, IIR), IIR_THRI);
    assert_false(irq(f));
    /* With ETBEI off a pending THRE stays invisible. */
    wr(f, THR, 'y');
    wr(f, IER, 0x00);
    assert_false(irq(f));
    assert_int_equal(rd(f, IIR), IIR_NONE);
}

static void test_out2_gates_irq(void **state)
{
    struct fx *f = *state;
    wr(f, IER, 0x02);   /* THRE pending */
    assert_false(irq(f));
    assert_int_equal(f->h->irq_raises[GSI], 0);
    wr(f, MCR, MCR_DTR | MCR_RTS);
    assert_false(irq(f));
    wr(f, MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
    assert_true(irq(f));
    wr(f, MCR, MCR_DTR | MCR_RTS);
    assert_false(irq(f));
    /* Loopback disconnects the OUT2 pin as well. */
    wr(f, MCR, MCR_LOOP | MCR_OUT2);
    assert_false(irq(f));
    wr(f, MCR, MCR_OUT2);
    assert_true(irq(f));
    /* The condition itself was untouched all along. */
    assert_int_equal(rd(f, IIR), IIR_THRI);
    assert_false(irq(f));
}

static void test_overrun_no_fifo(void **state)
{
    struct fx *f = *state;
    wr(f, MCR, MCR_LOOP);
    wr(f, IER, 0x04);
    wr(f, THR, '1');
    assert_int_equal(rd(f, IIR), IIR_NONE);
    wr(f, THR, '2');
    /* Without FIFOs the new character overwrites the unread one. */
    assert_int_equal(rd(f, IIR), IIR_RLSI);
    assert_int_equal(rd(f, LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
    assert_int_equal(rd(f, LSR) & LSR_OE, 0);   /* OE clears on read */
    assert_int_equal(rd(f, RBR), '2');
    assert_int_equal(rd(f, IIR), IIR_NONE);
}

static void test_output_to_file(void **state)
{
    struct fx *f = *state;
    wr(f, LCR, 0x03);
    wr(f, FCR, 0x07);
    uint8_t expect[512];
    for (unsigned i = 0; i < sizeof(expect); i++) {
        expect[i] = (uint8_t)(i ^ (i >> 8) * 0x35);
        while (!(rd(f, LSR) & LSR_THRE))
            ;
        wr(f, THR, expect[i]);
    }
    uint8_t got[600];
    size_t n = file_contents(f->path, got, sizeof(got));
    assert_int_equal(n, sizeof(expect));
    assert_memory_equal(got, expect, sizeof(expect));
}

static void test_wide_access(void **state)
{
    struct fx *f = *state;
    /* A 16-bit access to the 8-bit part is two byte cycles. */
    harness_pio_write(f->h, BASE + LCR, 2, 0x0b03);   /* LCR=03, MCR=0b */
    assert_int_equal(rd(f, LCR), 0x03);
    assert_int_equal(rd(f, MCR), 0x0b);
    assert_int_equal(harness_pio_read(f->h, BASE + LCR, 2), 0x0b03);
}

/* ---- input from a unix-socket backend ---- */

struct ufx {
    struct harness *h;
    struct chardev *cd;
    struct uart8250 *u;
    int client;
    char path[PATH_MAX];
};

static bool cd_connected(void *opaque)
{
    return chardev_connected(((struct ufx *)opaque)->cd);
}

static bool data_ready(void *opaque)
{
    struct ufx *f = opaque;
    return harness_pio_read(f->h, BASE + LSR, 1) & LSR_DR;
}

static void test_input_from_backend(void **state)
{
    (void)state;
    struct ufx f = { .h = harness_new(1 << 20) };
    assert_non_null(f.h);
    int len = snprintf(f.path, sizeof(f.path), "%s/uart.sock", tmpdir);
    assert_true(len > 0 && (size_t)len < sizeof(f.path));
    char spec[PATH_MAX + 8], err[256];
    len = snprintf(spec, sizeof(spec), "unix:%s", f.path);
    assert_true(len > 0 && (size_t)len < sizeof(spec));
    f.cd = chardev_open(spec, f.h->plat.loop, err, sizeof(err));
    assert_non_null(f.cd);
    f.u = uart8250_create(&f.h->plat, BASE, GSI, f.cd);
    assert_non_null(f.u);

    f.client = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    assert_true(strlen(f.path) < sizeof(addr.sun_path));
    memcpy(addr.sun_path, f.path, strlen(f.path) + 1);
    assert_int_equal(connect(f.client, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_true(harness_run_until(f.h, cd_connected, &f, 2000));

    /* Receive interrupts with FIFO, trigger level 1, OUT2 set. */
    harness_pio_write(f.h, BASE + FCR, 1, 0x07);
    harness_pio_write(f.h, BASE + MCR, 1, MCR_DTR | MCR_RTS | MCR_OUT2);
    harness_pio_write(f.h, BASE + IER, 1, 0x01);
    assert_false(f.h->irq_level[GSI]);

    /* 40 bytes through a 16-byte FIFO: the backend holds the rest back
     * until the guest reads, so nothing overruns. */
    uint8_t msg[40];
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)('A' + i);
    assert_int_equal(send(f.client, msg, sizeof(msg), 0), sizeof(msg));
    uint8_t got[sizeof(msg)];
    size_t n = 0;
    while (n < sizeof(msg)) {
        assert_true(harness_run_until(f.h, data_ready, &f, 2000));
        assert_true(f.h->irq_level[GSI]);
        assert_int_equal(harness_pio_read(f.h, BASE + IIR, 1), IIR_FIFO | IIR_RDI);
        uint8_t lsr;
        while ((lsr = (uint8_t)harness_pio_read(f.h, BASE + LSR, 1)) & LSR_DR) {
            assert_false(lsr & LSR_OE);
            assert_true(n < sizeof(msg));
            got[n++] = (uint8_t)harness_pio_read(f.h, BASE + RBR, 1);
        }
        assert_false(f.h->irq_level[GSI]);
    }
    assert_memory_equal(got, msg, sizeof(msg));

    /* And the transmit side reaches the client. */
    harness_pio_write(f.h, BASE + THR, 1, 'o');
    harness_pio_write(f.h, BASE + THR, 1, 'k');
    char back[2];
    assert_int_equal(recv(f.client, back, 2, MSG_WAITALL), 2);
    assert_memory_equal(back, "ok", 2);

    close(f.client);
    uart8250_destroy(f.u);
    chardev_close(f.cd);
    harness_free(f.h);
}

int main(void)
{
    const char *base = getenv("BURROW_BUILD_DIR");
    if (!base || strlen(base) > 60)
        base = P_tmpdir;
    int n = snprintf(tmpdir, sizeof(tmpdir), "%s/uart-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a scratch directory\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_values, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_latch, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_scratch, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_trigger_levels, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_priority, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_thre_rules, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_out2_gates_irq, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_overrun_no_fifo, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_output_to_file, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_wide_access, setup_file, teardown),
        cmocka_unit_test(test_input_from_backend),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
