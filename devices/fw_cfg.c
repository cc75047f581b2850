/* fw_cfg: firmware configuration items over port I/O and DMA.
 * Interface as documented in QEMU's docs/specs/fw_cfg.rst. */
#include "devices/fw_cfg.h"

#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

#define FW_CFG_MAX_FILES 0x1000   /* keys 0x0020..0x101f */
#define FW_CFG_DIR_ENTRY 64       /* be32 size, be16 select, u16 rsvd, name[56] */

struct fw_cfg_item {
    uint16_t key;
    bool is_file;
    char name[FW_CFG_MAX_FILE_PATH];
    uint8_t *data;
    uint32_t len;
};

struct fw_cfg {
    struct platform *plat;
    struct fw_cfg_item *items;    /* never shrinks, so indexes stay valid */
    unsigned nitems, cap;
    unsigned nfiles;
    int cur;                      /* selected item index, -1 if none */
    uint16_t selector;
    uint64_t offset;              /* read position in the selected item */
    uint8_t dma_addr[8];          /* big-endian, as the guest wrote it */
};

static uint16_t be16(uint16_t v) { return __builtin_bswap16(v); }
static uint32_t be32(uint32_t v) { return __builtin_bswap32(v); }
static uint64_t be64(uint64_t v) { return __builtin_bswap64(v); }

static int find_key(const struct fw_cfg *fw, uint16_t key)
{
    for (unsigned i = 0; i < fw->nitems; i++)
        if (fw->items[i].key == key)
            return (int)i;
    return -1;
}

static int find_file(const struct fw_cfg *fw, const char *name)
{
    for (unsigned i = 0; i < fw->nitems; i++)
        if (fw->items[i].is_file && strcmp(fw->items[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Stores a copy of data in item idx (creating the slot when idx < 0). */
static int set_item(struct fw_cfg *fw, int idx, uint16_t key, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return -1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, data, len);
    if (idx < 0) {
        if (fw->nitems == fw->cap) {
            unsigned cap = fw->cap ? fw->cap * 2 : 32;
            struct fw_cfg_item *n = realloc(fw->items, cap * sizeof(*n));
            if (!n) {
                free(copy);
                return -1;
            }
            fw->items = n;
            fw->cap = cap;
        }
        idx = (int)fw->nitems++;
        fw->items[idx] = (struct fw_cfg_item){ .key = key };
    }
    free(fw->items[idx].data);
    fw->items[idx].data = copy;
    fw->items[idx].len = (uint32_t)len;
    return idx;
}

static int cmp_file_names(const void *a, const void *b)
{
    const struct fw_cfg_item *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Rebuilds item 0x0019: big-endian count, then one entry per file sorted by
 * name (the order firmware expects when it lists files). */
static int rebuild_dir(struct fw_cfg *fw)
{
    size_t len = 4 + (size_t)fw->nfiles * FW_CFG_DIR_ENTRY;
    uint8_t *dir = calloc(1, len);
    const struct fw_cfg_item **files = calloc(fw->nfiles ? fw->nfiles : 1, sizeof(*files));
    if (!dir || !files) {
        free(dir);
        free(files);
        return -1;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < fw->nitems; i++)
        if (fw->items[i].is_file)
            files[n++] = &fw->items[i];
    qsort(files, n, sizeof(*files), cmp_file_names);
    st32(dir, be32(n));
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = dir + 4 + (size_t)i * FW_CFG_DIR_ENTRY;
        st32(e, be32(files[i]->len));
        st16(e + 4, be16(files[i]->key));
        memcpy(e + 8, files[i]->name, strlen(files[i]->name));
    }
    int r = set_item(fw, find_key(fw, FW_CFG_FILE_DIR), FW_CFG_FILE_DIR, dir, len);
    free(dir);
    free(files);
    return r < 0 ? -1 : 0;
}

static bool reserved_key(uint16_t key)
{
    key &= ~FW_CFG_WRITE_CHANNEL;
    return key == FW_CFG_SIGNATURE || key == FW_CFG_ID || key == FW_CFG_FILE_DIR ||
           (key >= FW_CFG_FILE_FIRST && key < FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES);
}

int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
    if (reserved_key(key) || (key & FW_CFG_WRITE_CHANNEL)) {
        log_error("fw_cfg: key 0x%04x is reserved", key);
        return -1;
    }
    return set_item(fw, find_key(fw, key), key, data, len) < 0 ? -1 : 0;
}

int fw_cfg_add_i16(struct fw_cfg *fw, uint16_t key, uint16_t v)
{
    uint8_t b[2];
    st_le(b, 2, v);
    return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

int fw_cfg_add_i32(struct fw_cfg *fw, uint16_t key, uint32_t v)
{
    uint8_t b[4];
    st_le(b, 4, v);
    return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

int fw_cfg_add_i64(struct fw_cfg *fw, uint16_t key, uint64_t v)
{
    uint8_t b[8];
    st_le(b, 8, v);
    return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

int fw_cfg_add_string(struct fw_cfg *fw, uint16_t key, const char *s)
{
    return fw_cfg_add_bytes(fw, key, s, strlen(s) + 1);
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= FW_CFG_MAX_FILE_PATH) {
        log_error("fw_cfg: bad file name '%s'", name);
        return -1;
    }
    if (find_file(fw, name) >= 0) {
        log_error("fw_cfg: duplicate file '%s'", name);
        return -1;
    }
    if (fw->nfiles >= FW_CFG_MAX_FILES) {
        log_error("fw_cfg: too many files");
        return -1;
    }
    uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + fw->nfiles);
    int idx = set_item(fw, -1, key, data, len);
    if (idx < 0)
        return -1;
    fw->items[idx].is_file = true;
    memcpy(fw->items[idx].name, name, nlen + 1);
    fw->nfiles++;
    if (rebuild_dir(fw) < 0)
        return -1;
    return key;
}

int fw_cfg_modify_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    int idx = find_file(fw, name);
    if (idx < 0)
        return -1;
    if (set_item(fw, idx, fw->items[idx].key, data, len) < 0)
        return -1;
    /* The directory carries the size. */
    return rebuild_dir(fw);
}

const void *fw_cfg_file_data(const struct fw_cfg *fw, const char *name, size_t *len)
{
    int idx = find_file(fw, name);
    if (idx < 0)
        return NULL;
    if (len)
        *len = fw->items[idx].len;
    return fw->items[idx].data;
}

static void do_select(struct fw_cfg *fw, uint16_t key)
{
    fw->selector = key;
    fw->offset = 0;
    /* The write-channel bit selects the same item; writes are refused later. */
    fw->cur = find_key(fw, key & ~FW_CFG_WRITE_CHANNEL);
}

/* Next byte of the selected item; zero past its end or with no item. */
static uint8_t data_byte(struct fw_cfg *fw)
{
    uint8_t v = 0;
    if (fw->cur >= 0 && fw->offset < fw->items[fw->cur].len)
        v = fw->items[fw->cur].data[fw->offset];
    if (fw->cur >= 0 && fw->offset < UINT64_MAX)
        fw->offset++;
    return v;
}

/* Copies len bytes of the selected item (zeros past its end) to guest
 * memory at gpa.  Returns 0, or -1 if any of it is outside guest RAM. */
static int dma_read(struct fw_cfg *fw, uint64_t gpa, uint32_t len)
{
    static const uint8_t zeros[4096];
    struct guest_mem *mem = fw->plat->mem;
    while (len) {
        uint32_t n;
        const uint8_t *src;
        if (fw->cur >= 0 && fw->offset < fw->items[fw->cur].len) {
            n = (uint32_t)MIN((uint64_t)len, fw->items[fw->cur].len - fw->offset);
            src = fw->items[fw->cur].data + fw->offset;
        } else {
            n = MIN(len, (uint32_t)sizeof(zeros));
            src = zeros;
        }
        if (gpa + n < gpa || guest_mem_write(mem, gpa, src, n) < 0)
            return -1;
        if (fw->cur >= 0)
            fw->offset += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

/* Runs the FWCfgDmaAccess at the address in the DMA register. */
static void dma_transfer(struct fw_cfg *fw)
{
    uint64_t desc = ld64(fw->dma_addr);
    desc = be64(desc);
    memset(fw->dma_addr, 0, sizeof(fw->dma_addr));

    uint8_t acc[16];
    if (desc + sizeof(acc) < desc || guest_mem_read(fw->plat->mem, desc, acc, sizeof(acc)) < 0) {
        log_guest_error("fw_cfg: DMA descriptor at 0x%llx outside RAM",
                        (unsigned long long)desc);
        return;
    }
    uint32_t control = be32(ld32(acc));
    uint32_t length = be32(ld32(acc + 4));
    uint64_t addr = be64(ld64(acc + 8));
    bool error = false;

    if (control & FW_CFG_DMA_CTL_SELECT)
        do_select(fw, (uint16_t)(control >> 16));

    if (control & FW_CFG_DMA_CTL_READ) {
        if (dma_read(fw, addr, length) < 0) {
            log_guest_error("fw_cfg: DMA read of %u bytes to 0x%llx outside RAM",
                            length, (unsigned long long)addr);
            error = true;
        }
    } else if (control & FW_CFG_DMA_CTL_WRITE) {
        log_guest_error("fw_cfg: DMA write to read-only item 0x%04x", fw->selector);
        error = true;
    } else if (control & FW_CFG_DMA_CTL_SKIP) {
        if (fw->cur >= 0)
            fw->offset += length;
    }

    uint8_t status[4];
    st32(status, be32(error ? FW_CFG_DMA_CTL_ERROR : 0));
    if (guest_mem_write(fw->plat->mem, desc, status, sizeof(status)) < 0)
        log_guest_error("fw_cfg: cannot write DMA status");
}

static uint64_t fw_cfg_read(void *opaque, uint64_t off, unsigned size)
{
    struct fw_cfg *fw = opaque;
    uint64_t v = 0;
    if (size > 8)
        return 0;
    if (off == FW_CFG_PORT_DATA - FW_CFG_PORT_SEL) {
        /* Wider reads return consecutive bytes, lowest address first. */
        for (unsigned i = 0; i < size; i++)
            v |= (uint64_t)data_byte(fw) << (8 * i);
        return v;
    }
    if (off >= FW_CFG_PORT_DMA - FW_CFG_PORT_SEL) {
        /* The DMA register reads back the signature, byte-addressed. */
        unsigned o = (unsigned)(off - (FW_CFG_PORT_DMA - FW_CFG_PORT_SEL));
        uint8_t sig[8];
        st64(sig, be64(FW_CFG_DMA_SIGNATURE));
        for (unsigned i = 0; i < size && o + i < 8; i++)
            v |= (uint64_t)sig[o + i] << (8 * i);
        return v;
    }
    return 0;
}

static void fw_cfg_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    struct fw_cfg *fw = opaque;
    if (size > 8)
        return;
    if (off == 0) {
        do_select(fw, (uint16_t)value);
        return;
    }
    if (off == FW_CFG_PORT_DATA - FW_CFG_PORT_SEL) {
        log_guest_error("fw_cfg: write to data port ignored");
        return;
    }
    if (off >= FW_CFG_PORT_DMA - FW_CFG_PORT_SEL) {
        /* The register is big-endian in guest byte order; a write that
         * reaches its last byte (the low half at 0x518, or all 8 bytes at
         * 0x514) starts the transfer. */
        unsigned o = (unsigned)(off - (FW_CFG_PORT_DMA - FW_CFG_PORT_SEL));
        for (unsigned i = 0; i < size && o + i < 8; i++)
            fw->dma_addr[o + i] = (uint8_t)(value >> (8 * i));
        if (o + size == 8)
            dma_transfer(fw);
        return;
    }
    log_guest_error("fw_cfg: write to unused port 0x%llx",
                    (unsigned long long)(FW_CFG_PORT_SEL + off));
}

static const struct io_ops fw_cfg_ops = {
    .read = fw_cfg_read,
    .write = fw_cfg_write,
};

void fw_cfg_reset(struct fw_cfg *fw)
{
    do_select(fw, FW_CFG_SIGNATURE);
    memset(fw->dma_addr, 0, sizeof(fw->dma_addr));
}

struct fw_cfg *fw_cfg_create(struct platform *p)
{
    struct fw_cfg *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    fw->plat = p;
    fw->cur = -1;
    uint8_t id[4];
    st_le(id, 4, FW_CFG_VERSION | FW_CFG_VERSION_DMA);
    if (set_item(fw, -1, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
        set_item(fw, -1, FW_CFG_ID, id, sizeof(id)) < 0 ||
        rebuild_dir(fw) < 0)
        goto fail;
    if (io_bus_register(p->pio, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, &fw_cfg_ops, fw, "fw_cfg") < 0) {
        log_error("fw_cfg: ports 0x%x-0x%x busy", FW_CFG_PORT_SEL,
                  FW_CFG_PORT_SEL + FW_CFG_PORT_LEN - 1);
        goto fail;
    }
    fw_cfg_reset(fw);
    return fw;
fail:
    for (unsigned i = 0; i < fw->nitems; i++)
        free(fw->items[i].data);
    free(fw->items);
    free(fw);
    return NULL;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
    if (!fw)
        return;
    io_bus_unregister(fw->plat->pio, FW_CFG_PORT_SEL, fw);
    for (unsigned i = 0; i < fw->nitems; i++)
        free(fw->items[i].data);
    free(fw->items);
    free(fw);
}
