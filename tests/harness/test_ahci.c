/* The AHCI controller with ATA disks, driven through ABAR and DMA by the
 * spec-written test driver (tests/support/ahci_driver.c) on temporary raw
 * images.  Malformed command lists on purpose: the port reports a task file
 * error and the controller keeps working after recovery.  The suite runs
 * with io_uring and with the synchronous block fallback. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/ahci.h"
#include "support/ahci_driver.h"
#include "support/harness_platform.h"

#define RAM_SIZE    (32u << 20)
#define DISK_BYTES  (8u << 20)
#define SECTORS     (DISK_BYTES / 512)
#define MMIO_BASE   0xe0000000ULL
#define TIMEOUT_MS  5000
#define DISK_PORT   0
#define RO_PORT     2

/* ATA status/error and commands (ATA8-ACS) */
#define ST_ERR      0x01
#define ST_DRQ      0x08
#define ST_DRDY     0x40
#define ST_BSY      0x80
#define ER_ABRT     0x04
#define ER_IDNF     0x10
#define IDENTIFY            0xec
#define IDENTIFY_PACKET     0xa1
#define READ_DMA_EXT        0x25
#define WRITE_DMA_EXT       0x35
#define READ_DMA            0xc8
#define READ_FPDMA          0x60
#define WRITE_FPDMA         0x61
#define FLUSH_CACHE_EXT     0xea
#define SET_FEATURES        0xef
#define READ_NATIVE_MAX_EXT 0x27
#define READ_LOG_EXT        0x2f
#define READ_VERIFY_EXT     0x42

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct ahci *ahci;
    struct adrv d;
    char path[512], ro_path[512];
    int fd, ro_fd;
};

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : P_tmpdir;
}

static int make_image(char *path, size_t len, const char *tag)
{
    snprintf(path, len, "%s/burrow-ahci-%s-XXXXXX", tmpdir(), tag);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, DISK_BYTES), 0);
    return fd;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->fd = make_image(f->path, sizeof(f->path), "rw");
    f->ro_fd = make_image(f->ro_path, sizeof(f->ro_path), "ro");
    /* A recognisable pattern in the read-only image. */
    uint8_t pat[512];
    memset(pat, 0x5a, sizeof(pat));
    assert_int_equal(pwrite(f->ro_fd, pat, sizeof(pat), 0), (ssize_t)sizeof(pat));
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->ahci = ahci_create(&f->h->plat, &f->bus, -1, err, sizeof(err));
    if (!f->ahci)
        fail_msg("ahci_create: %s", err);
    if (ahci_attach_disk(f->ahci, DISK_PORT, f->path, NULL, false, err, sizeof(err)) < 0)
        fail_msg("attach: %s", err);
    if (ahci_attach_disk(f->ahci, RO_PORT, f->ro_path, NULL, true, err, sizeof(err)) < 0)
        fail_msg("attach ro: %s", err);
    int devfn = harness_pci_find(&f->bus, 0x8086, 0x2922);
    assert_true(devfn >= 0);
    assert_int_equal(adrv_probe(&f->d, f->h, &f->bus, (uint8_t)devfn, MMIO_BASE), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ahci_destroy(f->ahci);
    harness_free(f->h);
    close(f->fd);
    close(f->ro_fd);
    unlink(f->path);
    unlink(f->ro_path);
    free(f);
    return 0;
}

static uint32_t tfd(struct fx *f, unsigned port)
{
    return adrv_pread(&f->d, port, ADRV_PX_TFD);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* --- tests ---------------------------------------------------------------- */

static void test_pci_and_registers(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x08, 4) >> 8, 0x010601);
    uint32_t cap = d->cap;
    assert_int_equal(cap & 0x1f, 5);                  /* six ports */
    assert_int_equal((cap >> 8) & 0x1f, 31);          /* 32 slots */
    assert_true(cap & ADRV_CAP_S64A);
    assert_true(cap & ADRV_CAP_SNCQ);
    assert_int_equal(d->pi, 0x3f);
    uint32_t vs = adrv_read(d, ADRV_VS);
    assert_true(vs == 0x00010000 || vs == 0x00010300);
    assert_true(adrv_read(d, ADRV_GHC) & ADRV_GHC_AE);

    /* Signatures and link state: disks on 0 and 2, nothing on 1. */
    assert_int_equal(adrv_pread(d, 0, ADRV_PX_SIG), 0x00000101);
    assert_int_equal(adrv_pread(d, 0, ADRV_PX_SSTS) & 0xf, 3);
    assert_int_equal(adrv_pread(d, 1, ADRV_PX_SSTS) & 0xf, 0);
    assert_int_equal(adrv_pread(d, 0, ADRV_PX_TFD) & (ST_BSY | ST_DRQ), 0);
    assert_int_equal(adrv_port_start(d, 1, 0), -1);
    assert_int_equal(adrv_port_start(d, 0, 0), 0);
    uint32_t cmd = adrv_pread(d, 0, ADRV_PX_CMD);
    assert_true(cmd & ADRV_CMD_CR);
    assert_true(cmd & ADRV_CMD_FR);
    /* The command list and FIS base registers keep their alignment. */
    adrv_port_stop(d, 3);
    adrv_pwrite(d, 3, ADRV_PX_CLB, 0x123456ff);
    assert_int_equal(adrv_pread(d, 3, ADRV_PX_CLB), 0x12345400);
    adrv_pwrite(d, 3, ADRV_PX_FB, 0x123456ff);
    assert_int_equal(adrv_pread(d, 3, ADRV_PX_FB), 0x12345600);
}

static void test_identify(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0), 0);
    uint64_t buf = adrv_alloc(d, 512, 2);
    struct adrv_cmd c;
    adrv_cmd_ata(&c, IDENTIFY, 0, 0, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    uint16_t id[256];
    adrv_mem_read(d, buf, id, sizeof(id));
    assert_int_equal(adrv_prdbc(d, DISK_PORT, 0), 512);
    /* Model, words 27-46, byte-swapped. */
    char model[41];
    for (int i = 0; i < 20; i++) {
        model[2 * i] = (char)(id[27 + i] >> 8);
        model[2 * i + 1] = (char)id[27 + i];
    }
    model[40] = 0;
    assert_memory_equal(model, "BURROW HARDDISK ", 16);
    assert_int_equal(id[0] & 0x8000, 0);                           /* ATA device */
    assert_int_equal(id[60] | (uint32_t)id[61] << 16, SECTORS);
    uint64_t lba48 = id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48;
    assert_int_equal(lba48, SECTORS);
    assert_true(id[83] & (1 << 10));                                /* 48-bit */
    assert_true(id[76] & (1 << 8));                                 /* NCQ */
    assert_int_equal(id[75] & 0x1f, 31);
    assert_int_equal(id[255] & 0xff, 0xa5);
    uint8_t sum = 0;
    for (int i = 0; i < 256; i++)
        sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
    assert_int_equal(sum, 0);
    /* PIO data-in: PIO Setup FIS with the ending status, and a D2H FIS. */
    uint32_t is = adrv_pread(d, DISK_PORT, ADRV_PX_IS);
    assert_true(is & ADRV_IS_PSS);
    assert_true(is & ADRV_IS_DHRS);
    uint8_t pio[20];
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_PIO, pio, sizeof(pio));
    assert_int_equal(pio[0], 0x5f);
    assert_true(pio[2] & ST_DRDY);
    assert_int_equal(pio[15] & (ST_ERR | ST_BSY), 0);
    assert_int_equal(tfd(f, DISK_PORT) & (ST_ERR | ST_BSY | ST_DRQ), 0);

    /* IDENTIFY PACKET DEVICE is aborted by a disk; recovery restores it. */
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IS, 0xffffffff);
    adrv_cmd_ata(&c, IDENTIFY_PACKET, 0, 0, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    assert_int_equal(tfd(f, DISK_PORT) & 0xff, ST_DRDY | ST_ERR);
    assert_int_equal(tfd(f, DISK_PORT) >> 8 & 0xff, ER_ABRT);
    uint8_t d2h[20];
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_D2H, d2h, sizeof(d2h));
    assert_int_equal(d2h[0], 0x34);
    assert_int_equal(d2h[2] & ST_ERR, ST_ERR);
    assert_int_equal(d2h[3], ER_ABRT);
    /* The failed command stays in PxCI until the port is stopped. */
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 1);
    adrv_recover(d, DISK_PORT);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 0);
    adrv_cmd_ata(&c, IDENTIFY, 0, 0, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);

    /* READ NATIVE MAX ADDRESS EXT reports the last LBA in the D2H FIS. */
    adrv_cmd_ata(&c, READ_NATIVE_MAX_EXT, 0, 0, 0, 0, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_D2H, d2h, sizeof(d2h));
    uint64_t max = d2h[4] | d2h[5] << 8 | d2h[6] << 16 | (uint64_t)d2h[8] << 24;
    assert_int_equal(max, SECTORS - 1);
    /* SET FEATURES: a valid UDMA mode, and an unknown subcommand. */
    adrv_cmd_ata(&c, SET_FEATURES, 0, 0x45, 0, 0, false);
    c.feature = 0x03;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    adrv_cmd_ata(&c, SET_FEATURES, 0, 0, 0, 0, false);
    c.feature = 0x77;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    adrv_recover(d, DISK_PORT);
}

static void test_write_read_multi_prd(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0), 0);
    enum { N = 24, LBA = 1000 };
    uint8_t data[N * 512], back[N * 512];
    fill(data, sizeof(data), 3);

    /* Write through three scattered buffers. */
    uint32_t parts[3] = { 4096, 2048, N * 512 - 6144 };
    struct adrv_cmd c;
    adrv_cmd_ata(&c, WRITE_DMA_EXT, LBA, N, 0, 0, true);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t b = adrv_alloc(d, parts[i] + 512, 512) + (i == 1 ? 2 : 0);
        adrv_mem_write(d, b, data + off, parts[i]);
        c.prd[i] = (struct adrv_prd){ b, parts[i], false };
        off += parts[i];
    }
    c.nprd = 3;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_int_equal(adrv_prdbc(d, DISK_PORT, 0), sizeof(data));
    assert_int_equal(pread(f->fd, back, sizeof(back), LBA * 512), (ssize_t)sizeof(back));
    assert_memory_equal(back, data, sizeof(data));

    /* Read back through four buffers of other sizes. */
    uint32_t rparts[4] = { 512, 1536, 6144, N * 512 - 8192 };
    adrv_cmd_ata(&c, READ_DMA_EXT, LBA, N, 0, 0, false);
    uint64_t rb[4];
    for (int i = 0; i < 4; i++) {
        rb[i] = adrv_alloc(d, rparts[i], 512);
        c.prd[i] = (struct adrv_prd){ rb[i], rparts[i], i == 3 };
    }
    c.nprd = 4;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    memset(back, 0, sizeof(back));
    off = 0;
    for (int i = 0; i < 4; i++) {
        adrv_mem_read(d, rb[i], back + off, rparts[i]);
        off += rparts[i];
    }
    assert_memory_equal(back, data, sizeof(data));
    assert_true(adrv_pread(d, DISK_PORT, ADRV_PX_IS) & ADRV_IS_DPS);

    /* 28-bit READ DMA of the first sector, and a zero count meaning 256. */
    adrv_cmd_ata(&c, READ_DMA, LBA, 1, rb[0], 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    uint8_t s[512];
    adrv_mem_read(d, rb[0], s, 512);
    assert_memory_equal(s, data, 512);
    uint64_t big = adrv_alloc(d, 256 * 512, 512);
    adrv_cmd_ata(&c, READ_DMA, 0, 0, big, 256 * 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_int_equal(adrv_prdbc(d, DISK_PORT, 0), 256 * 512);

    /* PRDs shorter than the transfer: aborted, nothing read past them. */
    adrv_cmd_ata(&c, READ_DMA_EXT, LBA, 4, rb[0], 1024, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    assert_int_equal(tfd(f, DISK_PORT) >> 8 & 0xff, ER_ABRT);
    adrv_recover(d, DISK_PORT);

    /* FLUSH CACHE EXT and READ VERIFY. */
    adrv_cmd_ata(&c, FLUSH_CACHE_EXT, 0, 0, 0, 0, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    adrv_cmd_ata(&c, READ_VERIFY_EXT, SECTORS - 8, 8, 0, 0, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
}

static void test_ncq(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    enum { TAGS = 12, SECT = 8 };
    static uint8_t data[TAGS][SECT * 512], back[SECT * 512];
    uint64_t wb[TAGS], rb[TAGS];
    uint32_t mask = 0;
    struct adrv_cmd c;

    /* Several writes outstanding at once, tag = slot, spread over the disk. */
    for (unsigned t = 0; t < TAGS; t++) {
        fill(data[t], sizeof(data[t]), 100 + t);
        wb[t] = adrv_alloc(d, sizeof(data[t]), 512);
        adrv_mem_write(d, wb[t], data[t], sizeof(data[t]));
        memset(&c, 0, sizeof(c));
        c.command = WRITE_FPDMA;
        c.feature = SECT;                           /* count in the feature field */
        c.count = (uint16_t)(t << 3);               /* tag */
        c.lba = 4096 + t * 64;
        c.device = 0x40;
        c.write = true;
        c.prd[0] = (struct adrv_prd){ wb[t], sizeof(data[t]), false };
        c.nprd = 1;
        adrv_build(d, DISK_PORT, t, &c);
        mask |= 1u << t;
    }
    adrv_pwrite(d, DISK_PORT, ADRV_PX_SACT, mask);
    adrv_issue(d, DISK_PORT, mask);
    assert_int_equal(adrv_wait(d, DISK_PORT, mask, TIMEOUT_MS), 0);
    assert_int_equal(adrv_wait_sact(d, DISK_PORT, mask, TIMEOUT_MS), 0);
    assert_true(adrv_pread(d, DISK_PORT, ADRV_PX_IS) & ADRV_IS_SDBS);
    uint8_t sdb[8];
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_SDB, sdb, sizeof(sdb));
    assert_int_equal(sdb[0], 0xa1);
    assert_int_equal(sdb[2] & ST_ERR, 0);
    for (unsigned t = 0; t < TAGS; t++) {
        assert_int_equal(pread(f->fd, back, sizeof(back), (4096 + t * 64) * 512), (ssize_t)sizeof(back));
        assert_memory_equal(back, data[t], sizeof(back));
    }

    /* Reads, issued one by one so several are in flight together. */
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IS, 0xffffffff);
    for (unsigned t = 0; t < TAGS; t++) {
        rb[t] = adrv_alloc(d, SECT * 512, 512);
        memset(&c, 0, sizeof(c));
        c.command = READ_FPDMA;
        c.feature = SECT;
        c.count = (uint16_t)(t << 3);
        c.lba = 4096 + t * 64;
        c.device = 0x40;
        c.prd[0] = (struct adrv_prd){ rb[t], SECT * 512, false };
        c.nprd = 1;
        adrv_build(d, DISK_PORT, t, &c);
        adrv_pwrite(d, DISK_PORT, ADRV_PX_SACT, 1u << t);
        adrv_issue(d, DISK_PORT, 1u << t);
    }
    assert_int_equal(adrv_wait_sact(d, DISK_PORT, mask, TIMEOUT_MS), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 0);
    for (unsigned t = 0; t < TAGS; t++) {
        adrv_mem_read(d, rb[t], back, sizeof(back));
        assert_memory_equal(back, data[t], sizeof(back));
    }

    /* A queued read beyond the end: SDB FIS with ERR, TFES, and the NCQ
     * error log names the tag. */
    memset(&c, 0, sizeof(c));
    c.command = READ_FPDMA;
    c.feature = 8;
    c.count = 5 << 3;
    c.lba = SECTORS - 4;
    c.device = 0x40;
    c.prd[0] = (struct adrv_prd){ rb[0], 4096, false };
    c.nprd = 1;
    adrv_build(d, DISK_PORT, 5, &c);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_SACT, 1u << 5);
    adrv_issue(d, DISK_PORT, 1u << 5);
    assert_int_equal(adrv_wait_sact(d, DISK_PORT, 1u << 5, TIMEOUT_MS), -1);
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_SDB, sdb, sizeof(sdb));
    assert_int_equal(sdb[2] & ST_ERR, ST_ERR);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SACT) & (1u << 5), 1u << 5);
    adrv_recover(d, DISK_PORT);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SACT), 0);
    uint64_t log = adrv_alloc(d, 512, 2);
    adrv_cmd_ata(&c, READ_LOG_EXT, 0x10, 1, log, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    uint8_t l[512];
    adrv_mem_read(d, log, l, sizeof(l));
    assert_int_equal(l[0], 5);                      /* tag, NQ clear */
    assert_int_equal(l[2] & ST_ERR, ST_ERR);
    uint8_t sum = 0;
    for (int i = 0; i < 512; i++)
        sum = (uint8_t)(sum + l[i]);
    assert_int_equal(sum, 0);
}

static void test_interrupts(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    unsigned gsi = adrv_intx_gsi(d);
    uint64_t buf = adrv_alloc(d, 512, 2);
    struct adrv_cmd c;
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);

    /* GHC.IE clear: PxIS records the FIS, no INTx. */
    assert_int_equal(adrv_port_start(d, DISK_PORT, ADRV_IS_DHRS), 0);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_true(adrv_pread(d, DISK_PORT, ADRV_PX_IS) & ADRV_IS_DHRS);
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(adrv_read(d, ADRV_IS), 1u << DISK_PORT);
    /* Enabling GHC.IE with the port's interrupt pending raises the line. */
    adrv_write(d, ADRV_GHC, ADRV_GHC_AE | ADRV_GHC_IE);
    assert_true(f->h->irq_level[gsi]);
    /* Clearing IS.IPS alone does not drop it while PxIS is pending. */
    adrv_write(d, ADRV_IS, 1u << DISK_PORT);
    assert_true(f->h->irq_level[gsi]);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IS, 0xffffffff);
    adrv_write(d, ADRV_IS, 1u << DISK_PORT);
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(adrv_read(d, ADRV_IS), 0);

    /* A completion raises it again; PxIE masks individual causes. */
    unsigned raises = f->h->irq_raises[gsi];
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_true(f->h->irq_level[gsi]);
    assert_int_equal(f->h->irq_raises[gsi], raises + 1);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IS, 0xffffffff);
    adrv_write(d, ADRV_IS, 1u << DISK_PORT);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IE, ADRV_IS_TFES);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_false(f->h->irq_level[gsi]);
    /* An error is signalled through TFES. */
    adrv_cmd_ata(&c, READ_DMA_EXT, SECTORS, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    assert_true(f->h->irq_level[gsi]);
    adrv_recover(d, DISK_PORT);
    assert_false(f->h->irq_level[gsi]);
    /* INTx disable in the PCI command register masks the line. */
    adrv_pwrite(d, DISK_PORT, ADRV_PX_IE, ADRV_IS_DHRS);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    pci_config_write(&f->bus, d->devfn, 0x04, 2, 0x0406);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_false(f->h->irq_level[gsi]);
    pci_config_write(&f->bus, d->devfn, 0x04, 2, 0x0006);
    assert_true(f->h->irq_level[gsi]);
}

static void test_read_only(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, RO_PORT, 0), 0);
    uint64_t buf = adrv_alloc(d, 512, 2);
    uint8_t z[512] = { 0 }, s[512];
    adrv_mem_write(d, buf, z, sizeof(z));
    struct adrv_cmd c;
    adrv_cmd_ata(&c, WRITE_DMA_EXT, 0, 1, buf, 512, true);
    assert_int_equal(adrv_exec(d, RO_PORT, &c, TIMEOUT_MS), -1);
    assert_int_equal(tfd(f, RO_PORT) >> 8 & 0xff, ER_ABRT);
    assert_int_equal(pread(f->ro_fd, s, sizeof(s), 0), (ssize_t)sizeof(s));
    assert_int_equal(s[0], 0x5a);
    assert_int_equal(s[511], 0x5a);
    adrv_recover(d, RO_PORT);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, RO_PORT, &c, TIMEOUT_MS), 0);
    adrv_mem_read(d, buf, s, sizeof(s));
    assert_int_equal(s[100], 0x5a);
}

static void test_out_of_range(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    uint64_t buf = adrv_alloc(d, 4096, 2);
    struct adrv_cmd c;
    /* Last sector reads; one past it, or a range crossing the end, fails. */
    adrv_cmd_ata(&c, READ_DMA_EXT, SECTORS - 1, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    adrv_cmd_ata(&c, READ_DMA_EXT, SECTORS - 2, 4, buf, 2048, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    uint8_t d2h[20];
    adrv_rfis(d, DISK_PORT, ADRV_RFIS_D2H, d2h, sizeof(d2h));
    assert_int_equal(d2h[0], 0x34);
    assert_int_equal(d2h[2] & ST_ERR, ST_ERR);
    assert_true(d2h[3] & ER_IDNF);
    assert_int_equal(adrv_prdbc(d, DISK_PORT, 0), 0);
    adrv_recover(d, DISK_PORT);
    adrv_cmd_ata(&c, WRITE_DMA_EXT, 0xffffffffffffULL, 1, buf, 512, true);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    adrv_recover(d, DISK_PORT);
    adrv_cmd_ata(&c, 0x77, 0, 0, 0, 0, false);      /* no such command */
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    assert_int_equal(tfd(f, DISK_PORT) >> 8 & 0xff, ER_ABRT);
    adrv_recover(d, DISK_PORT);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
}

/* After each malformed command: a task file error, then recovery and a
 * normal command works. */
static void expect_error_then_recover(struct fx *f, const struct adrv_cmd *bad)
{
    struct adrv *d = &f->d;
    assert_int_equal(adrv_exec(d, DISK_PORT, bad, TIMEOUT_MS), -1);
    assert_true(tfd(f, DISK_PORT) & ST_ERR);
    adrv_recover(d, DISK_PORT);
    uint64_t buf = adrv_alloc(d, 512, 2);
    struct adrv_cmd c;
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
}

static void test_malformed(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    uint64_t buf = adrv_alloc(d, 4096, 2);
    struct adrv_cmd c;

    /* PRDTL of 65535 with a table running past the end of RAM. */
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    c.prdtl_override = 0xffff;
    uint64_t saved = d->port[DISK_PORT].ctba[0];
    d->port[DISK_PORT].ctba[0] = RAM_SIZE - 0x1000;
    expect_error_then_recover(f, &c);
    d->port[DISK_PORT].ctba[0] = saved;

    /* PRD addresses outside RAM, and one straddling its end. */
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, 0x4000000000ULL, 512, false);
    expect_error_then_recover(f, &c);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 8, RAM_SIZE - 512, 4096, false);
    expect_error_then_recover(f, &c);

    /* Command FIS of a garbage type; a control FIS is not an error. */
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    c.fis_type = 0x99;
    expect_error_then_recover(f, &c);

    /* Command table outside RAM. */
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    adrv_build(d, DISK_PORT, 0, &c);
    uint8_t hdr[4] = { 0, 0, 0, 0x80 };     /* CTBA = 0x80000000 */
    adrv_mem_write(d, d->port[DISK_PORT].clb + 8, hdr, 4);
    adrv_issue(d, DISK_PORT, 1);
    assert_int_equal(adrv_wait(d, DISK_PORT, 1, TIMEOUT_MS), -1);
    adrv_recover(d, DISK_PORT);

    /* Command list outside RAM. */
    adrv_port_stop(d, DISK_PORT);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_CLB, 0xfffffc00);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_CLBU, 0x10);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_CMD, ADRV_CMD_FRE | ADRV_CMD_ST);
    adrv_issue(d, DISK_PORT, 1);
    assert_int_equal(adrv_wait(d, DISK_PORT, 1, TIMEOUT_MS), -1);
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);

    /* Commands issued while PxCMD.ST is clear are not taken. */
    assert_int_equal(adrv_port_stop(d, DISK_PORT), 0);
    uint8_t pat[512], s[512];
    memset(pat, 0xee, sizeof(pat));
    adrv_mem_write(d, buf, pat, sizeof(pat));
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    adrv_build(d, DISK_PORT, 0, &c);
    adrv_issue(d, DISK_PORT, 1);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 0);
    evloop_run_once(f->h->plat.loop, 20);
    adrv_mem_read(d, buf, s, sizeof(s));
    assert_memory_equal(s, pat, sizeof(s));

    /* Ports past the implemented six read as zero and ignore writes. */
    adrv_pwrite(d, 6, ADRV_PX_CMD, ADRV_CMD_ST | ADRV_CMD_FRE);
    adrv_pwrite(d, 6, ADRV_PX_CI, 1);
    adrv_pwrite(d, 29, ADRV_PX_CI, 1);
    assert_int_equal(adrv_pread(d, 6, ADRV_PX_CMD), 0);
    assert_int_equal(adrv_pread(d, 29, ADRV_PX_CI), 0);
    char err[128];
    assert_int_equal(ahci_attach_disk(f->ahci, 6, f->path, NULL, false, err, sizeof(err)), -1);
    assert_int_equal(ahci_attach_disk(f->ahci, -1, f->path, NULL, false, err, sizeof(err)), -1);
    assert_int_equal(ahci_attach_disk(f->ahci, DISK_PORT, f->path, NULL, false, err, sizeof(err)), -1);
    assert_int_equal(ahci_eject(f->ahci, DISK_PORT, false, err, sizeof(err)), -1);

    /* Partial (byte) writes to PxIS clear only the addressed byte's bits. */
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    adrv_cmd_ata(&c, READ_DMA_EXT, SECTORS, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), -1);
    harness_mmio_write(f->h, d->abar + 0x100 + ADRV_PX_IS, 1, 0xff);
    uint32_t is = adrv_pread(d, DISK_PORT, ADRV_PX_IS);
    assert_int_equal(is & 0xff, 0);
    assert_true(is & ADRV_IS_TFES);
    adrv_recover(d, DISK_PORT);
}

static void test_resets(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    adrv_write(d, ADRV_GHC, ADRV_GHC_AE | ADRV_GHC_IE);
    uint64_t buf = adrv_alloc(d, 512, 2);
    struct adrv_cmd c;

    /* COMRESET through SCTL.DET: the link drops, then the device is ready
     * again with its signature. */
    adrv_port_stop(d, DISK_PORT);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_SCTL, 1);
    assert_int_not_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SSTS) & 0xf, 3);
    adrv_pwrite(d, DISK_PORT, ADRV_PX_SCTL, 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SSTS) & 0xf, 3);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SIG), 0x101);
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0xffffffff), 0);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);

    /* Software reset through two control FISes. */
    memset(&c, 0, sizeof(c));
    c.control = true;
    c.devctl = 0x04;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    c.devctl = 0;
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);
    assert_int_equal(tfd(f, DISK_PORT) & (ST_BSY | ST_DRQ), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SIG), 0x101);

    /* GHC.HR: everything back to defaults, CLB/FB kept, HR self-clears. */
    adrv_write(d, ADRV_GHC, ADRV_GHC_HR);
    assert_int_equal(adrv_read(d, ADRV_GHC) & (ADRV_GHC_HR | ADRV_GHC_IE), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CMD) & (ADRV_CMD_ST | ADRV_CMD_FRE), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_IE), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CLB), (uint32_t)d->port[DISK_PORT].clb);
    assert_false(f->h->irq_level[adrv_intx_gsi(d)]);
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0), 0);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);

    /* Stopping a port with queued reads in flight: nothing completes into
     * the stopped port, and it restarts cleanly. */
    for (unsigned t = 0; t < 4; t++) {
        memset(&c, 0, sizeof(c));
        c.command = READ_FPDMA;
        c.feature = 1;
        c.count = (uint16_t)(t << 3);
        c.device = 0x40;
        c.prd[0] = (struct adrv_prd){ buf, 512, false };
        c.nprd = 1;
        adrv_build(d, DISK_PORT, t, &c);
    }
    adrv_pwrite(d, DISK_PORT, ADRV_PX_SACT, 0xf);
    adrv_issue(d, DISK_PORT, 0xf);
    assert_int_equal(adrv_port_stop(d, DISK_PORT), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SACT), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 0);
    evloop_run_once(f->h->plat.loop, 20);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_SACT), 0);
    assert_int_equal(adrv_port_start(d, DISK_PORT, 0), 0);
    adrv_cmd_ata(&c, READ_DMA_EXT, 0, 1, buf, 512, false);
    assert_int_equal(adrv_exec(d, DISK_PORT, &c, TIMEOUT_MS), 0);

    /* The PCI function reset resets the HBA too. */
    pci_device_reset(ahci_pci(f->ahci));
    uint8_t devfn = d->devfn;
    assert_int_equal(adrv_probe(d, f->h, &f->bus, devfn, MMIO_BASE), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CMD) & (ADRV_CMD_ST | ADRV_CMD_CR), 0);
    assert_int_equal(adrv_pread(d, DISK_PORT, ADRV_PX_CI), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_pci_and_registers),
    T(test_identify),
    T(test_write_read_multi_prd),
    T(test_ncq),
    T(test_interrupts),
    T(test_read_only),
    T(test_out_of_range),
    T(test_malformed),
    T(test_resets),
};

int main(void)
{
    int failed = cmocka_run_group_tests_name("ahci, io_uring when available", tests, NULL, NULL);
    setenv("BURROW_BLOCK_SYNC", "1", 1);
    failed += cmocka_run_group_tests_name("ahci, synchronous block I/O", tests, NULL, NULL);
    return failed ? 1 : 0;
}
