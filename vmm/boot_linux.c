/* Linux direct boot, 64-bit boot protocol.  See boot_linux.h. */
#include "vmm/boot_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "devices/util.h"

/* Setup header fields, as offsets into the image and into boot_params
 * (the header sits at 0x1f1 in both). */
#define HDR_START             0x1f1
#define HDR_SETUP_SECTS       0x1f1
#define HDR_VID_MODE          0x1fa
#define HDR_BOOT_FLAG         0x1fe
#define HDR_JUMP              0x200
#define HDR_HEADER            0x202
#define HDR_VERSION           0x206
#define HDR_TYPE_OF_LOADER    0x210
#define HDR_LOADFLAGS         0x211
#define HDR_RAMDISK_IMAGE     0x218
#define HDR_RAMDISK_SIZE      0x21c
#define HDR_HEAP_END_PTR      0x224
#define HDR_CMD_LINE_PTR      0x228
#define HDR_INITRD_ADDR_MAX   0x22c
#define HDR_XLOADFLAGS        0x236
#define HDR_CMDLINE_SIZE      0x238
#define HDR_INIT_SIZE         0x260
#define HDR_MIN_END           0x264   /* through init_size (protocol 2.10) */

/* boot_params fields outside the setup header (zero-page.rst). */
#define BP_SIZE               4096
#define BP_ACPI_RSDP_ADDR     0x070
#define BP_EXT_RAMDISK_IMAGE  0x0c0
#define BP_EXT_RAMDISK_SIZE   0x0c4
#define BP_EXT_CMD_LINE_PTR   0x0c8
#define BP_E820_ENTRIES       0x1e8
#define BP_HDR_LIMIT          0x290   /* the header area ends here */
#define BP_E820_TABLE         0x2d0
#define BP_E820_ENTRY_SIZE    20

#define BOOT_FLAG_MAGIC       0xaa55
#define HDRS_MAGIC            0x53726448      /* "HdrS" */
#define PROTOCOL_MIN          0x020c          /* xloadflags */
#define PROTOCOL_RSDP         0x020e          /* acpi_rsdp_addr */
#define LOADED_HIGH           0x01
#define CAN_USE_HEAP          0x80
#define XLF_KERNEL_64         0x0001
#define TYPE_OF_LOADER_OTHER  0xff
#define VID_MODE_NORMAL       0xffff
#define HEAP_END              0xfe00          /* no real-mode code runs; protocol default */
#define ENTRY_64_OFFSET       0x200

/* The image is read whole; nothing real is near this. */
#define KERNEL_FILE_MAX       (512 * MiB)

#define PTE_PRESENT           0x001ULL
#define PTE_WRITE             0x002ULL
#define PTE_PS                0x080ULL

#define CR0_PE                (1ULL << 0)
#define CR0_MP                (1ULL << 1)
#define CR0_ET                (1ULL << 4)
#define CR0_NE                (1ULL << 5)
#define CR0_PG                (1ULL << 31)
#define CR4_PAE               (1ULL << 5)
#define EFER_LME              (1ULL << 8)
#define EFER_LMA              (1ULL << 10)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Reads a whole regular file of at most max bytes into a malloc'd buffer. */
static uint8_t *read_file(const char *path, uint64_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail(err, errlen, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        fail(err, errlen, "%s is too large (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fail(err, errlen, "out of memory reading %s", path);
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(err, errlen, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = size;
    return buf;
}

/* Is [addr, addr+size) inside one E820_RAM entry? */
static bool e820_covers(const struct linux_boot_config *cfg, uint64_t addr, uint64_t size)
{
    for (unsigned i = 0; i < cfg->ne820; i++) {
        const struct e820_entry *e = &cfg->e820[i];
        if (e->type == E820_RAM && addr >= e->addr && addr - e->addr <= e->size &&
            size <= e->size - (addr - e->addr))
            return true;
    }
    return false;
}

/* The highest page-aligned address below limit where size bytes fit in one
 * E820_RAM entry, above floor, and in guest memory; 0 if there is none. */
static uint64_t place_initrd(const struct guest_mem *mem, const struct linux_boot_config *cfg,
                             uint64_t size, uint64_t floor, uint64_t limit)
{
    uint64_t best = 0;
    for (unsigned i = 0; i < cfg->ne820; i++) {
        const struct e820_entry *e = &cfg->e820[i];
        if (e->type != E820_RAM || e->size == 0 || e->addr >= limit)
            continue;
        uint64_t end = e->addr + e->size < e->addr ? UINT64_MAX : e->addr + e->size;
        uint64_t top = MIN(end, limit);
        if (top < size)
            continue;
        uint64_t start = (top - size) & ~(uint64_t)(4 * KiB - 1);
        if (start < e->addr || start < floor || start <= best)
            continue;
        if (!guest_mem_ptr(mem, start, size))
            continue;
        best = start;
    }
    return best;
}

static int load_initrd(struct guest_mem *mem, const struct linux_boot_config *cfg,
                       uint64_t floor, uint64_t limit, struct linux_boot_entry *out,
                       char *err, size_t errlen)
{
    int fd = open(cfg->initrd, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "cannot open initrd %s: %s", cfg->initrd, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "initrd %s is not a regular file", cfg->initrd);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        close(fd);
        return fail(err, errlen, "initrd %s is empty", cfg->initrd);
    }
    uint64_t addr = size < limit ? place_initrd(mem, cfg, size, floor, limit) : 0;
    if (!addr) {
        close(fd);
        return fail(err, errlen, "initrd %s (%llu bytes) does not fit in RAM between the kernel "
                    "and 0x%llx", cfg->initrd, (unsigned long long)size, (unsigned long long)limit);
    }
    uint8_t *dst = guest_mem_ptr(mem, addr, size);
    uint64_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, dst + got, MIN(size - got, (uint64_t)(1 * GiB)));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return fail(err, errlen, "cannot read initrd %s: %s", cfg->initrd,
                        n < 0 ? strerror(errno) : "file shrank");
        }
        got += (uint64_t)n;
    }
    close(fd);
    out->initrd_addr = addr;
    out->initrd_size = size;
    return 0;
}

/* Identity map of 0-4 GiB with 2 MiB pages: PML4[0] -> PDPT[0..3] -> 4 PDs. */
static int write_page_tables(struct guest_mem *mem)
{
    uint64_t *pml4 = guest_mem_ptr(mem, LINUX_BOOT_PML4_ADDR, 4 * KiB);
    uint64_t *pdpt = guest_mem_ptr(mem, LINUX_BOOT_PDPT_ADDR, 4 * KiB);
    uint64_t *pd = guest_mem_ptr(mem, LINUX_BOOT_PD_ADDR, 16 * KiB);
    if (!pml4 || !pdpt || !pd)
        return -1;
    memset(pml4, 0, 4 * KiB);
    memset(pdpt, 0, 4 * KiB);
    st64(&pml4[0], LINUX_BOOT_PDPT_ADDR | PTE_PRESENT | PTE_WRITE);
    for (uint64_t i = 0; i < 4; i++)
        st64(&pdpt[i], (LINUX_BOOT_PD_ADDR + i * 4 * KiB) | PTE_PRESENT | PTE_WRITE);
    for (uint64_t i = 0; i < 4 * 512; i++)
        st64(&pd[i], (i * 2 * MiB) | PTE_PRESENT | PTE_WRITE | PTE_PS);
    return 0;
}

static int write_gdt(struct guest_mem *mem)
{
    /* Null, unused, then the protocol's __BOOT_CS (64-bit code, L=1) and
     * __BOOT_DS (flat read/write data). */
    const uint64_t gdt[4] = {
        0,
        0,
        0x00af9b000000ffffULL,
        0x00cf93000000ffffULL,
    };
    return guest_mem_write(mem, LINUX_BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

int linux_boot_load(struct guest_mem *mem, const struct linux_boot_config *cfg,
                    struct linux_boot_entry *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!cfg->kernel)
        return fail(err, errlen, "no kernel given");
    if (cfg->ne820 == 0 || cfg->ne820 > LINUX_BOOT_E820_MAX || !cfg->e820)
        return fail(err, errlen, "memory map has %u entries (1 to %d allowed)",
                    cfg->ne820, LINUX_BOOT_E820_MAX);

    const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
    size_t cmdlen = strlen(cmdline);

    size_t ksize;
    uint8_t *k = read_file(cfg->kernel, KERNEL_FILE_MAX, &ksize, err, errlen);
    if (!k)
        return -1;
    int ret = -1;
    const char *kp = cfg->kernel;

    /* The setup header: magic numbers, then the fields we rely on. */
    if (ksize < HDR_HEADER + 4) {
        fail(err, errlen, "kernel %s is too small (%zu bytes) to be a bzImage", kp, ksize);
        goto out;
    }
    if (ld16(k + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
        fail(err, errlen, "kernel %s has no boot sector signature 0xaa55 at 0x1fe", kp);
        goto out;
    }
    if (ld32(k + HDR_HEADER) != HDRS_MAGIC) {
        fail(err, errlen, "kernel %s has no \"HdrS\" setup header (not a bzImage, or a kernel "
             "older than 2.0)", kp);
        goto out;
    }
    size_t hdr_end = HDR_HEADER + k[HDR_JUMP + 1];
    if (ksize < HDR_VERSION + 2 || hdr_end > ksize) {
        fail(err, errlen, "kernel %s: setup header is truncated", kp);
        goto out;
    }
    uint16_t version = ld16(k + HDR_VERSION);
    if (version < PROTOCOL_MIN || hdr_end < HDR_MIN_END) {
        fail(err, errlen, "kernel %s: boot protocol %u.%02u is too old (2.12 or later needed)",
             kp, version >> 8, version & 0xff);
        goto out;
    }
    if (!(ld16(k + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        fail(err, errlen, "kernel %s does not support the 64-bit boot protocol "
             "(XLF_KERNEL_64 not set)", kp);
        goto out;
    }
    if (!(k[HDR_LOADFLAGS] & LOADED_HIGH)) {
        fail(err, errlen, "kernel %s is a zImage (not loaded high); only bzImage is supported", kp);
        goto out;
    }

    unsigned setup_sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (size_t)(setup_sects + 1) * 512;
    if (setup_size + ENTRY_64_OFFSET >= ksize) {
        fail(err, errlen, "kernel %s is truncated: %zu bytes, setup alone is %zu and the "
             "64-bit entry lies beyond", kp, ksize, setup_size);
        goto out;
    }
    uint64_t pm_size = ksize - setup_size;
    uint64_t init_size = ld32(k + HDR_INIT_SIZE);
    uint64_t kernel_span = ALIGN_UP(MAX(pm_size, init_size), 4 * KiB);
    uint8_t *kdst = guest_mem_ptr(mem, LINUX_BOOT_KERNEL_ADDR, kernel_span);
    if (!kdst || !e820_covers(cfg, LINUX_BOOT_KERNEL_ADDR, kernel_span)) {
        fail(err, errlen, "kernel %s needs %llu KiB of RAM at 0x%llx, which the machine does "
             "not have", kp, (unsigned long long)(kernel_span / KiB),
             (unsigned long long)LINUX_BOOT_KERNEL_ADDR);
        goto out;
    }

    /* The command line: cmdline_size is its maximum length, NUL excluded. */
    uint32_t cmdline_max = ld32(k + HDR_CMDLINE_SIZE);
    if (cmdlen > cmdline_max || cmdlen + 1 > LINUX_BOOT_CMDLINE_MAX) {
        fail(err, errlen, "kernel command line is %zu bytes; the kernel accepts at most %llu",
             cmdlen, (unsigned long long)MIN((uint64_t)cmdline_max, LINUX_BOOT_CMDLINE_MAX - 1));
        goto out;
    }

    /* The loader's own low-memory structures must be RAM. */
    if (!guest_mem_ptr(mem, LINUX_BOOT_GDT_ADDR, 32) ||
        !guest_mem_ptr(mem, LINUX_BOOT_PARAMS_ADDR, BP_SIZE) ||
        !guest_mem_ptr(mem, LINUX_BOOT_STACK_TOP - 4 * KiB, 4 * KiB) ||
        !guest_mem_ptr(mem, LINUX_BOOT_CMDLINE_ADDR, cmdlen + 1) ||
        write_page_tables(mem) < 0 || write_gdt(mem) < 0) {
        fail(err, errlen, "guest RAM does not cover the low memory the Linux loader uses");
        goto out;
    }

    memcpy(kdst, k + setup_size, pm_size);
    out->kernel_addr = LINUX_BOOT_KERNEL_ADDR;
    out->kernel_size = pm_size;

    if (cfg->initrd) {
        /* Below initrd_addr_max (the highest byte address allowed) and below
         * 4 GiB, above everything the kernel occupies. */
        uint64_t limit = MIN((uint64_t)ld32(k + HDR_INITRD_ADDR_MAX) + 1, 4 * GiB);
        if (load_initrd(mem, cfg, LINUX_BOOT_KERNEL_ADDR + kernel_span, limit, out,
                        err, errlen) < 0)
            goto out;
    }

    guest_mem_write(mem, LINUX_BOOT_CMDLINE_ADDR, cmdline, cmdlen + 1);
    out->cmdline_addr = LINUX_BOOT_CMDLINE_ADDR;

    /* boot_params: zeroed, the image's setup header, then what we decided. */
    uint8_t bp[BP_SIZE] = { 0 };
    memcpy(bp + HDR_START, k + HDR_START, MIN(hdr_end, (size_t)BP_HDR_LIMIT) - HDR_START);
    st16(bp + HDR_VID_MODE, VID_MODE_NORMAL);
    bp[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_OTHER;
    bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    st16(bp + HDR_HEAP_END_PTR, HEAP_END);
    st32(bp + HDR_CMD_LINE_PTR, (uint32_t)LINUX_BOOT_CMDLINE_ADDR);
    st32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LINUX_BOOT_CMDLINE_ADDR >> 32));
    st32(bp + HDR_RAMDISK_IMAGE, (uint32_t)out->initrd_addr);
    st32(bp + HDR_RAMDISK_SIZE, (uint32_t)out->initrd_size);
    st32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(out->initrd_addr >> 32));
    st32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(out->initrd_size >> 32));
    bp[BP_E820_ENTRIES] = (uint8_t)cfg->ne820;
    for (unsigned i = 0; i < cfg->ne820; i++) {
        uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
        st64(e, cfg->e820[i].addr);
        st64(e + 8, cfg->e820[i].size);
        st32(e + 16, cfg->e820[i].type);
    }
    if (cfg->rsdp_addr && version >= PROTOCOL_RSDP)
        st64(bp + BP_ACPI_RSDP_ADDR, cfg->rsdp_addr);
    guest_mem_write(mem, LINUX_BOOT_PARAMS_ADDR, bp, sizeof(bp));

    out->protocol = version;
    out->rip = LINUX_BOOT_KERNEL_ADDR + ENTRY_64_OFFSET;
    out->rsi = LINUX_BOOT_PARAMS_ADDR;
    out->rsp = LINUX_BOOT_STACK_TOP;
    out->cr3 = LINUX_BOOT_PML4_ADDR;
    out->gdt_base = LINUX_BOOT_GDT_ADDR;
    out->gdt_limit = 4 * 8 - 1;
    log_debug("linux: protocol %u.%02u, kernel %llu bytes at 0x%llx, initrd %llu bytes at 0x%llx",
              version >> 8, version & 0xff, (unsigned long long)pm_size,
              (unsigned long long)LINUX_BOOT_KERNEL_ADDR, (unsigned long long)out->initrd_size,
              (unsigned long long)out->initrd_addr);
    ret = 0;
out:
    free(k);
    return ret;
}

int linux_boot_setup_vcpu(int vcpu_fd, const struct linux_boot_entry *e)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
        log_error("KVM_GET_SREGS: %s", strerror(errno));
        return -1;
    }
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = LINUX_BOOT_CS,
        .type = 0xb,                    /* execute/read, accessed */
        .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = {
        .base = 0, .limit = 0xffffffff, .selector = LINUX_BOOT_DS,
        .type = 0x3,                    /* read/write, accessed */
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = e->gdt_base;
    sregs.gdt.limit = e->gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
    sregs.cr3 = e->cr3;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
        log_error("KVM_SET_SREGS (64-bit Linux entry): %s", strerror(errno));
        return -1;
    }

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rflags = 0x2;                  /* reserved bit 1; IF clear */
    regs.rip = e->rip;
    regs.rsi = e->rsi;
    regs.rsp = e->rsp;
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
        log_error("KVM_SET_REGS (64-bit Linux entry): %s", strerror(errno));
        return -1;
    }
    return 0;
}
