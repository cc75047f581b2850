/* linuxtest: checks what a boot loader handed over in boot_params and
 * reports on COM1, one line per check, then writes its verdict to the
 * debug-exit port.  Freestanding; runs at CPL 0 where each instruction may
 * be emulated, so every loop here is short. */

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

/* boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BP_ACPI_RSDP_ADDR     0x070
#define BP_EXT_RAMDISK_IMAGE  0x0c0
#define BP_EXT_RAMDISK_SIZE   0x0c4
#define BP_EXT_CMD_LINE_PTR   0x0c8
#define BP_E820_ENTRIES       0x1e8
#define BP_SETUP_SECTS        0x1f1
#define BP_SYSSIZE            0x1f4
#define BP_BOOT_FLAG          0x1fe
#define BP_HEADER             0x202
#define BP_VERSION            0x206
#define BP_TYPE_OF_LOADER     0x210
#define BP_RAMDISK_IMAGE      0x218
#define BP_RAMDISK_SIZE       0x21c
#define BP_CMD_LINE_PTR       0x228
#define BP_INITRD_ADDR_MAX    0x22c
#define BP_CMDLINE_SIZE       0x238
#define BP_INIT_SIZE          0x260
#define BP_E820_TABLE         0x2d0
#define E820_MAX              128
#define E820_ENTRY_SIZE       20
#define E820_RAM              1

#define COM1            0x3f8
#define UART_LSR_THRE   0x20
#define UART_LSR_TEMT   0x40
#define DEBUG_EXIT_PORT 0xf4
#define VERDICT_PASS    0x10        /* exit status (0x10 << 1) | 1 = 33 */
#define VERDICT_FAIL    0x11        /* 35 */

#define FOUR_GIB        0x100000000ULL

extern char _kernel_start[], _end[];
extern char _setup_sects[], _syssize[], _init_size[];   /* linker constants */
extern volatile uint32_t linuxtest_entry_32;

void linuxtest_main(const uint8_t *bp);

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static uint8_t rd8(const uint8_t *p) { return *(const volatile uint8_t *)p; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(rd8(p) | rd8(p + 1) << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* ---- COM1 ---- */

static void serial_init(void)
{
    outb(COM1 + 1, 0x00);           /* IER: no interrupts */
    outb(COM1 + 3, 0x80);           /* LCR: DLAB */
    outb(COM1 + 0, 0x01);           /* DLL: 115200 baud */
    outb(COM1 + 1, 0x00);           /* DLM */
    outb(COM1 + 3, 0x03);           /* LCR: 8N1 */
    outb(COM1 + 2, 0x07);           /* FCR: FIFOs on and cleared */
    outb(COM1 + 4, 0x03);           /* MCR: DTR, RTS */
}

static void putc_raw(char c)
{
    /* Bounded: a UART that never reports THRE must not hang the test. */
    for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & UART_LSR_THRE); i++)
        ;
    outb(COM1, (uint8_t)c);
}

/* Waits until the transmitter is empty, so nothing is lost when the VM ends. */
static void serial_drain(void)
{
    for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & UART_LSR_TEMT); i++)
        ;
}

static void puts_(const char *s)
{
    while (*s)
        putc_raw(*s++);
}

static void puthex(uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    puts_("0x");
    for (int i = digits - 1; i >= 0; i--)
        putc_raw(hex[(v >> (i * 4)) & 0xf]);
}

static void putdec(uint64_t v)
{
    char buf[21];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_raw(buf[--n]);
}

/* ---- results ---- */

static unsigned n_ok, n_fail, n_skip;

static void result(int status, const char *name)
{
    if (status > 0) {
        puts_("[ ok ] ");
        n_ok++;
    } else if (status < 0) {
        puts_("[FAIL] ");
        n_fail++;
    } else {
        puts_("[skip] ");
        n_skip++;
    }
    puts_(name);
    puts_(": ");
}

/* ---- e820 ---- */

struct range { uint64_t addr, size; uint32_t type; };

static unsigned e820_count(const uint8_t *bp)
{
    unsigned n = rd8(bp + BP_E820_ENTRIES);
    return n > E820_MAX ? 0 : n;
}

static struct range e820_get(const uint8_t *bp, unsigned i)
{
    const uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_SIZE;
    struct range r = { rd64(e), rd64(e + 8), rd32(e + 16) };
    return r;
}

/* Is [addr, addr+size) wholly inside one RAM entry? */
static bool in_ram(const uint8_t *bp, uint64_t addr, uint64_t size)
{
    unsigned n = e820_count(bp);
    for (unsigned i = 0; i < n; i++) {
        struct range r = e820_get(bp, i);
        if (r.type == E820_RAM && addr >= r.addr && addr - r.addr <= r.size &&
            size <= r.size - (addr - r.addr))
            return true;
    }
    return false;
}

/* ---- the checks ---- */

static void check_entry(void)
{
    result(1, "entry");
    if (linuxtest_entry_32)
        puts_("32-bit boot protocol (startup_32)\n");
    else
        puts_("64-bit boot protocol (startup_64)\n");
}

static void check_header(const uint8_t *bp)
{
    bool good = rd16(bp + BP_BOOT_FLAG) == 0xaa55 &&
                rd32(bp + BP_HEADER) == 0x53726448 /* "HdrS" */ &&
                rd16(bp + BP_VERSION) == 0x020f &&
                rd8(bp + BP_SETUP_SECTS) == (uintptr_t)_setup_sects &&
                rd32(bp + BP_SYSSIZE) == (uintptr_t)_syssize &&
                rd32(bp + BP_INIT_SIZE) == (uintptr_t)_init_size;
    result(good ? 1 : -1, "header");
    puts_("boot_flag ");
    puthex(rd16(bp + BP_BOOT_FLAG), 4);
    puts_(" version ");
    puthex(rd16(bp + BP_VERSION), 4);
    puts_(" setup_sects ");
    putdec(rd8(bp + BP_SETUP_SECTS));
    puts_(" type_of_loader ");
    puthex(rd8(bp + BP_TYPE_OF_LOADER), 2);
    puts_("\n");
}

static void check_e820(const uint8_t *bp)
{
    unsigned raw = rd8(bp + BP_E820_ENTRIES), n = e820_count(bp);
    for (unsigned i = 0; i < n; i++) {
        struct range r = e820_get(bp, i);
        puts_("e820: ");
        puthex(r.addr, 16);
        puts_("-");
        puthex(r.addr + r.size - 1, 16);
        puts_(" type ");
        putdec(r.type);
        puts_("\n");
    }
    uint64_t kstart = (uintptr_t)_kernel_start, kend = (uintptr_t)_end;
    bool good = n > 0 && in_ram(bp, kstart, kend - kstart);
    result(good ? 1 : -1, "e820");
    putdec(raw);
    puts_(" entries, kernel ");
    puthex(kstart, 8);
    puts_("-");
    puthex(kend - 1, 8);
    puts_(good ? " in RAM\n" : " not inside one RAM entry\n");
}

static void check_cmdline(const uint8_t *bp)
{
    uint64_t ptr = rd32(bp + BP_CMD_LINE_PTR) | (uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32;
    uint32_t max = rd32(bp + BP_CMDLINE_SIZE);
    if (ptr == 0 || ptr >= FOUR_GIB - max - 1 || !in_ram(bp, ptr, 1)) {
        result(-1, "cmdline");
        puts_("cmd_line_ptr ");
        puthex(ptr, 16);
        puts_(" is not usable\n");
        return;
    }
    const char *s = (const char *)(uintptr_t)ptr;
    uint32_t len = 0;
    while (len <= max && s[len])
        len++;
    if (len > max) {
        result(-1, "cmdline");
        puts_("not terminated within cmdline_size\n");
        return;
    }
    result(1, "cmdline");
    puts_("\"");
    puts_(s);
    puts_("\"\n");
}

static uint32_t crc32(const uint8_t *p, uint64_t n)
{
    uint32_t c = 0xffffffff;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c;
}

static void check_initrd(const uint8_t *bp)
{
    uint64_t addr = rd32(bp + BP_RAMDISK_IMAGE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_IMAGE) << 32;
    uint64_t size = rd32(bp + BP_RAMDISK_SIZE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_SIZE) << 32;
    uint64_t limit = (uint64_t)rd32(bp + BP_INITRD_ADDR_MAX) + 1;
    uint64_t kstart = (uintptr_t)_kernel_start, kend = (uintptr_t)_end;
    const char *why = NULL;

    if (addr == 0 || size == 0)
        why = "no initrd given";
    else if (addr > limit || size > limit - addr)
        why = "above initrd_addr_max";
    else if (!in_ram(bp, addr, size))
        why = "not inside one RAM entry";
    else if (addr < kend && kstart < addr + size)
        why = "overlaps the kernel";
    else if (size > 1024 * 1024)
        why = "larger than this test checksums (1 MiB)";
    if (why) {
        result(-1, "initrd");
        puthex(addr, 16);
        puts_(" size ");
        putdec(size);
        puts_(": ");
        puts_(why);
        puts_("\n");
        return;
    }
    result(1, "initrd");
    puts_("size ");
    putdec(size);
    puts_(" crc32 ");
    puthex(crc32((const uint8_t *)(uintptr_t)addr, size), 8);
    puts_(" at ");
    puthex(addr, 8);
    puts_("\n");
}

static void check_rsdp(const uint8_t *bp)
{
    uint64_t addr = rd64(bp + BP_ACPI_RSDP_ADDR);
    if (addr == 0) {
        result(0, "rsdp");
        puts_("acpi_rsdp_addr not given\n");
        return;
    }
    const char *why = NULL;
    const uint8_t *p = (const uint8_t *)(uintptr_t)addr;
    if (addr >= FOUR_GIB - 36) {
        why = "address above 4 GiB";
    } else {
        static const char sig[] = "RSD PTR ";
        for (int i = 0; i < 8; i++)
            if (p[i] != (uint8_t)sig[i])
                why = "no \"RSD PTR \" signature";
        uint8_t sum = 0;
        for (int i = 0; i < 20; i++)
            sum += p[i];
        if (!why && sum)
            why = "bad checksum";
        if (!why && p[15] >= 2) {       /* ACPI 2.0+: extended checksum */
            uint32_t len = rd32(p + 20);
            if (len < 36 || len > 4096) {
                why = "bad length";
            } else {
                sum = 0;
                for (uint32_t i = 0; i < len; i++)
                    sum += p[i];
                if (sum)
                    why = "bad extended checksum";
            }
        }
    }
    result(why ? -1 : 1, "rsdp");
    puthex(addr, 8);
    if (why) {
        puts_(": ");
        puts_(why);
        puts_("\n");
    } else {
        puts_(" revision ");
        putdec(p[15]);
        puts_(" checksum valid\n");
    }
}

/* Maps the 2 MiB page holding addr, identity, in the page tables we run on
 * (the loader's, or ours from startup_32), which cover only 0-4 GiB. */
static uint64_t spare_tables[2][512] __attribute__((aligned(4096)));
static unsigned spare_used;

static uint64_t *next_table(uint64_t *entry)
{
    if (*entry & 1)
        return (uint64_t *)(uintptr_t)(*entry & 0x000ffffffffff000ULL);
    if (spare_used >= 2)
        return NULL;
    uint64_t *t = spare_tables[spare_used++];
    memset(t, 0, 4096);
    *entry = (uintptr_t)t | 3;
    return t;
}

static bool map_2m(uint64_t addr)
{
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t *pml4 = (uint64_t *)(uintptr_t)(cr3 & 0x000ffffffffff000ULL);
    if ((uintptr_t)pml4 >= FOUR_GIB)
        return false;
    uint64_t *pdpt = next_table(&pml4[(addr >> 39) & 511]);
    if (!pdpt || (uintptr_t)pdpt >= FOUR_GIB)
        return false;
    uint64_t *e = &pdpt[(addr >> 30) & 511];
    if ((*e & 0x81) == 0x81)            /* already a 1 GiB page */
        return true;
    uint64_t *pd = next_table(e);
    if (!pd || (uintptr_t)pd >= FOUR_GIB)
        return false;
    e = &pd[(addr >> 21) & 511];
    if (*e & 1)
        return (*e & 0x80) != 0;
    *e = (addr & ~0x1fffffULL) | 0x83;
    __asm__ volatile("invlpg (%0)" : : "r"((uintptr_t)addr) : "memory");
    return true;
}

static bool probe(uint64_t addr)
{
    if (!map_2m(addr))
        return false;
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr;
    uint64_t pattern = 0x4275727277000000ULL ^ addr;
    *p = pattern;
    return *p == pattern;
}

static void check_highmem(const uint8_t *bp)
{
    unsigned n = e820_count(bp);
    uint64_t total = 0, lo = 0, hi = 0;
    for (unsigned i = 0; i < n; i++) {
        struct range r = e820_get(bp, i);
        if (r.type != E820_RAM || r.addr < FOUR_GIB || r.size < 8)
            continue;
        total += r.size;
        if (!lo || r.addr < lo)
            lo = r.addr;
        if (r.addr + r.size - 8 > hi)
            hi = r.addr + r.size - 8;
    }
    if (!total) {
        result(0, "highmem");
        puts_("no RAM above 4 GiB\n");
        return;
    }
    /* The first and last bytes of RAM above 4 GiB must be real memory. */
    bool good = probe(lo) && probe(hi);
    result(good ? 1 : -1, "highmem");
    putdec(total >> 20);
    puts_(" MiB of RAM above 4 GiB, probed ");
    puthex(lo, 9);
    puts_(" and ");
    puthex(hi, 9);
    puts_(good ? "\n" : ": memory does not hold a value\n");
}

void linuxtest_main(const uint8_t *bp)
{
    serial_init();
    puts_("linuxtest: Burrow boot protocol test kernel, boot_params at ");
    puthex((uintptr_t)bp, 8);
    puts_("\n");

    check_entry();
    check_header(bp);
    check_e820(bp);
    check_cmdline(bp);
    check_initrd(bp);
    check_rsdp(bp);
    check_highmem(bp);

    if (n_fail) {
        puts_("linuxtest: FAIL (");
        putdec(n_fail);
        puts_(" of ");
        putdec(n_ok + n_fail);
        puts_(" checks failed)\n");
    } else {
        puts_("linuxtest: PASS (");
        putdec(n_ok);
        puts_(" checks ok, ");
        putdec(n_skip);
        puts_(" skipped)\n");
    }
    serial_drain();
    outb(DEBUG_EXIT_PORT, n_fail ? VERDICT_FAIL : VERDICT_PASS);
}
