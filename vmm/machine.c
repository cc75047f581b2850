/* Machine assembly: the PC memory map, the i440FX/PIIX3 chipset and its
 * devices, firmware or direct Linux boot, and run control.
 *
 * Memory map:
 *   0 - 640 KiB           RAM
 *   640 KiB - 768 KiB     VGA window (no device yet: unassigned)
 *   768 KiB - low_ram     RAM; the BIOS's last 128 KiB is copied to
 *                         896 KiB - 1 MiB at power-on and reset
 *   low_ram - 0xfec00000  32-bit PCI hole (BARs placed by the firmware)
 *   0xfec00000            IOAPIC, 0xfee00000 local APICs (in KVM)
 *   4 GiB - bios_size     firmware image, read-only
 *   4 GiB -               RAM above 4 GiB (high_ram)
 * low_ram is all of RAM up to 3 GiB. */
#include "vmm/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "devices/acpi_pm.h"
#include "devices/ahci.h"
#include "devices/chardev.h"
#include "devices/debug_exit.h"
#include "devices/debugcon.h"
#include "devices/fw_cfg.h"
#include "devices/i440fx.h"
#include "devices/i8042.h"
#include "devices/piix3.h"
#include "devices/rtc_cmos.h"
#include "devices/uart8250.h"
#include "devices/util.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_rng.h"
#include "devices/vga.h"
#include "devices/display.h"
#include "devices/audio/audio.h"
#include "devices/e1000.h"
#include "devices/hda.h"
#include "devices/virtio_net.h"
#include "devices/usb/hid.h"
#include "devices/usb/msd.h"
#include "devices/usb/xhci.h"
#include "vmm/acpi.h"
#include "vmm/boot_linux.h"
#include "vmm/control.h"
#include "vmm/machine_internal.h"
#include "vmm/sandbox.h"
#include "vmm/usb_passthrough.h"
#include "vmm/smbios.h"
#include "gui/sdl.h"
#include "gui/ui.h"
#include "gui/vnc.h"

#define LOW_RAM_MAX      0xc0000000ULL
#define HIGH_RAM_BASE    0x100000000ULL
#define VGA_WINDOW_START 0xa0000ULL
#define VGA_WINDOW_END   0xc0000ULL
#define BIOS_MAX_SIZE    (16 * MiB)
#define BIOS_LOW_COPY    (128 * KiB)
#define ACPI_TABLES_BASE 0xe0040ULL   /* direct boot: reserved BIOS area, after the RSDP at 0xe0000 */




#define VRAM_SLOT KVM_FIXED_SLOTS_BASE

/* --- platform over KVM ------------------------------------------------- */

static struct machine *plat_machine(void *opaque) { return opaque; }

static void k_set_irq(void *opaque, unsigned gsi, bool level)
{
    vm_set_irq(&plat_machine(opaque)->vm, gsi, level);
}

static int k_msi_alloc(void *opaque) { return vm_msi_alloc(&plat_machine(opaque)->vm); }
static void k_msi_free(void *opaque, int r) { vm_msi_free(&plat_machine(opaque)->vm, r); }
static int k_msi_set(void *opaque, int r, uint64_t a, uint32_t d)
{
    return vm_msi_set(&plat_machine(opaque)->vm, r, a, d);
}
static void k_msi_fire(void *opaque, int r) { vm_msi_fire(&plat_machine(opaque)->vm, r); }

static int k_ioeventfd_add(void *opaque, bool pio, uint64_t addr, unsigned len, int fd)
{
    return vm_ioeventfd(&plat_machine(opaque)->vm, pio, addr, len, fd, true);
}

static int k_ioeventfd_del(void *opaque, bool pio, uint64_t addr, unsigned len, int fd)
{
    return vm_ioeventfd(&plat_machine(opaque)->vm, pio, addr, len, fd, false);
}

static void wake(struct machine *m)
{
    uint64_t one = 1;
    if (write(m->request_fd, &one, sizeof(one)) < 0) {
        /* already pending */
    }
}

/* Requests come from vCPU threads or the I/O thread; acted on by the I/O
 * thread so a vCPU never waits for itself to park. */
static void k_request(void *opaque, enum platform_request req, int arg)
{
    struct machine *m = opaque;
    switch (req) {
    case PLATFORM_RESET: atomic_store(&m->pending_reset, 1); break;
    case PLATFORM_POWEROFF: atomic_store(&m->pending_poweroff, 1); break;
    case PLATFORM_DEBUG_EXIT: atomic_store(&m->debug_exit_status, arg); break;
    }
    wake(m);
}

static const struct platform_ops kvm_platform_ops = {
    .set_irq = k_set_irq,
    .msi_alloc = k_msi_alloc,
    .msi_free = k_msi_free,
    .msi_set = k_msi_set,
    .msi_fire = k_msi_fire,
    .ioeventfd_add = k_ioeventfd_add,
    .ioeventfd_del = k_ioeventfd_del,
    .request = k_request,
};

/* --- memory -------------------------------------------------------------- */

static void *alloc_guest_ram(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_MERGEABLE);
    return p;
}

static void add_e820(struct machine *m, uint64_t addr, uint64_t size, uint32_t type)
{
    if (m->ne820 < MACHINE_MAX_E820)
        m->e820[m->ne820++] = (struct e820_entry){ addr, size, type };
}

static int setup_memory(struct machine *m, char *err, size_t errlen)
{
    uint64_t total = m->opts.memory_mib * MiB;
    m->low_ram = MIN(total, LOW_RAM_MAX);
    m->high_ram = total - m->low_ram;
    m->ram_low = alloc_guest_ram(m->low_ram);
    if (!m->ram_low || (m->high_ram && !(m->ram_high = alloc_guest_ram(m->high_ram)))) {
        snprintf(err, errlen, "cannot allocate %llu MiB of guest memory", (unsigned long long)m->opts.memory_mib);
        return -1;
    }
    /* The VGA window stays out of the RAM slots so a display can claim it. */
    if (vm_add_memslot(&m->vm, 0, VGA_WINDOW_START, m->ram_low, false) < 0 ||
        vm_add_memslot(&m->vm, VGA_WINDOW_END, m->low_ram - VGA_WINDOW_END,
                       m->ram_low + VGA_WINDOW_END, false) < 0 ||
        (m->high_ram && vm_add_memslot(&m->vm, HIGH_RAM_BASE, m->high_ram, m->ram_high, false) < 0)) {
        snprintf(err, errlen, "cannot register guest memory with KVM: %s", strerror(errno));
        return -1;
    }
    guest_mem_add(&m->mem, 0, VGA_WINDOW_START, m->ram_low);
    guest_mem_add(&m->mem, VGA_WINDOW_END, m->low_ram - VGA_WINDOW_END, m->ram_low + VGA_WINDOW_END);
    if (m->high_ram)
        guest_mem_add(&m->mem, HIGH_RAM_BASE, m->high_ram, m->ram_high);

    /* The map Linux sees; the firmware gets only the RAM parts and makes its own. */
    add_e820(m, 0, 0x9fc00, E820_RAM);
    add_e820(m, 0x9fc00, 0x400, E820_RESERVED);
    add_e820(m, 0xe0000, 0x20000, E820_RESERVED);
    add_e820(m, 0x100000, m->low_ram - 0x100000, E820_RAM);
    add_e820(m, 0xfec00000, 0x1000, E820_RESERVED);
    add_e820(m, 0xfee00000, 0x1000, E820_RESERVED);
    if (m->high_ram)
        add_e820(m, HIGH_RAM_BASE, m->high_ram, E820_RAM);
    return 0;
}

/* --- firmware ------------------------------------------------------------ */

static int read_file(const char *path, uint8_t **data, uint64_t *size, uint64_t max,
                     const char *what, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot open %s '%s': %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0 || (uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%s '%s' is not a regular file of 1 byte to %llu KiB", what, path,
                 (unsigned long long)(max / KiB));
        close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    *data = malloc(*size);
    if (!*data || pread(fd, *data, *size, 0) != (ssize_t)*size) {
        snprintf(err, errlen, "cannot read %s '%s'", what, path);
        free(*data);
        *data = NULL;
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int load_firmware(struct machine *m, char *err, size_t errlen)
{
    uint8_t *data;
    uint64_t size;
    if (read_file(m->opts.firmware, &data, &size, BIOS_MAX_SIZE, "firmware", err, errlen) < 0)
        return -1;
    if (size % (64 * KiB)) {
        snprintf(err, errlen, "firmware '%s' is %llu bytes, not a multiple of 64 KiB",
                 m->opts.firmware, (unsigned long long)size);
        free(data);
        return -1;
    }
    /* A page-aligned private copy for the read-only slot below 4 GiB. */
    m->bios = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->bios == MAP_FAILED) {
        m->bios = NULL;
        free(data);
        snprintf(err, errlen, "out of memory for the firmware");
        return -1;
    }
    memcpy(m->bios, data, size);
    free(data);
    m->bios_size = size;
    if (vm_add_memslot(&m->vm, HIGH_RAM_BASE - size, size, m->bios, true) < 0) {
        snprintf(err, errlen, "cannot map the firmware: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Power-on contents of the BIOS area below 1 MiB (also on every reset, so
 * the firmware starts cold). */
static void copy_bios_low(struct machine *m)
{
    uint64_t n = MIN(m->bios_size, BIOS_LOW_COPY);
    memcpy(m->ram_low + 0x100000 - n, m->bios + m->bios_size - n, n);
}

static void acpi_config_fill(struct machine *m, struct acpi_config *c)
{
    acpi_config_default(c, (unsigned)m->opts.cpus, m->low_ram, m->high_ram);
}

/* SeaBIOS's "bootorder": one device path per line, most wanted first; it
 * matches PCI devices by slot ("/pci@i0cf8/" then "*@" and the slot). */
static void bootorder_add_pci(char *buf, size_t len, const struct pci_device *d)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "/pci@i0cf8/*@%x\n", d->devfn >> 3);
}

static void bootorder_add_sata(char *buf, size_t len, struct ahci *a, int port)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "/pci@i0cf8/*@%x/drive@%d/disk@0\n", ahci_pci(a)->devfn >> 3, port);
}

static void add_bootorder(struct machine *m, struct fw_cfg *fw)
{
    char order[2048] = "";
    struct machine_devices *d = m->dev;
    for (const char *c = m->opts.boot; *c; c++) {
        if (*c == 'c') {
            for (int i = 0; i < d->nblk; i++)
                bootorder_add_pci(order, sizeof(order), virtio_blk_pci(d->blk[i]));
            for (int port = 0; port < d->sata_ports; port++)
                bootorder_add_sata(order, sizeof(order), d->ahci, port);
        }
        if (*c == 'd' && d->cdrom_port >= 0)
            bootorder_add_sata(order, sizeof(order), d->ahci, d->cdrom_port);
        if (*c == 'n')
            for (int i = 0; i < m->dev->nnics; i++)
                bootorder_add_pci(order, sizeof(order), m->dev->nic_pci[i]);
    }
    fw_cfg_add_file(fw, "bootorder", order, strlen(order) + 1);
}

static int setup_fw_cfg(struct machine *m, char *err, size_t errlen)
{
    struct fw_cfg *fw = m->dev->fw_cfg;
    fw_cfg_add_i64(fw, FW_CFG_RAM_SIZE, m->opts.memory_mib * MiB);
    fw_cfg_add_i16(fw, FW_CFG_NB_CPUS, (uint16_t)m->opts.cpus);
    fw_cfg_add_i16(fw, FW_CFG_MAX_CPUS, (uint16_t)m->opts.cpus);
    fw_cfg_add_i64(fw, FW_CFG_NUMA, 0);
    fw_cfg_add_i16(fw, FW_CFG_BOOT_MENU, 0);

    /* RAM only: SeaBIOS adds its own reservations. */
    struct e820_entry ram[2];
    unsigned n = 0;
    ram[n++] = (struct e820_entry){ 0, m->low_ram, E820_RAM };
    if (m->high_ram)
        ram[n++] = (struct e820_entry){ HIGH_RAM_BASE, m->high_ram, E820_RAM };
    fw_cfg_add_file(fw, "etc/e820", ram, n * sizeof(ram[0]));

    /* No display device: the firmware and boot loaders talk on COM1. */
    if (!m->dev->vga) {
        uint16_t port = 0x3f8;
        fw_cfg_add_file(fw, "etc/sercon-port", &port, sizeof(port));
    }
    uint16_t no_menu = 0;
    fw_cfg_add_file(fw, "etc/show-boot-menu", &no_menu, sizeof(no_menu));
    if (m->opts.boot)
        add_bootorder(m, fw);

    struct acpi_config ac;
    acpi_config_fill(m, &ac);
    if (acpi_build_fw_cfg(&ac, fw) < 0) {
        snprintf(err, errlen, "cannot build the ACPI tables");
        return -1;
    }

    /* Ready-made SMBIOS tables spare SeaBIOS building its own. */
    struct smbios_config sc = {
        .ncpus = (unsigned)m->opts.cpus,
        .lowmem_end = m->low_ram,
        .highmem_size = m->high_ram,
        .bios_size = m->bios_size,
        .entry_point = SMBIOS_EP_32,
    };
    if ((m->opts.uuid ? smbios_uuid_parse(m->opts.uuid, sc.uuid) : smbios_random_uuid(sc.uuid)) < 0 ||
        smbios_build_fw_cfg(&sc, fw) < 0) {
        snprintf(err, errlen, "cannot build the SMBIOS tables");
        return -1;
    }
    fw_cfg_add_bytes(fw, FW_CFG_UUID, sc.uuid, sizeof(sc.uuid));
    return 0;
}

static int load_linux(struct machine *m, char *err, size_t errlen)
{
    struct acpi_config ac;
    acpi_config_fill(m, &ac);
    uint64_t rsdp = acpi_build_in_memory(&ac, &m->mem, ACPI_TABLES_BASE);
    struct linux_boot_config cfg = {
        .kernel = m->opts.kernel,
        .initrd = m->opts.initrd,
        .cmdline = m->opts.append ? m->opts.append : "",
        .e820 = m->e820,
        .ne820 = m->ne820,
        .rsdp_addr = rsdp,
    };
    struct linux_boot_entry entry;
    if (linux_boot_load(&m->mem, &cfg, &entry, err, errlen) < 0)
        return -1;
    if (linux_boot_setup_vcpu(m->vm.vcpus[0].fd, &entry) < 0) {
        snprintf(err, errlen, "cannot set up the boot vCPU: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Puts boot code in place for a cold start (power-on and reset). */
static int load_boot(struct machine *m, char *err, size_t errlen)
{
    if (m->opts.kernel)
        return load_linux(m, err, errlen);
    copy_bios_low(m);
    return 0;
}

/* --- devices ------------------------------------------------------------- */

static void serial_quit(void *opaque)
{
    machine_quit(opaque, 0);
}

/* The linear framebuffer is a KVM memory slot with dirty logging wherever
 * the guest puts BAR0, so drawing costs no exits and refreshes redraw only
 * the pages written since the last one. */
static void vram_map(void *opaque, bool mapped, uint64_t gpa)
{
    struct machine *m = opaque;
    uint64_t size;
    uint8_t *vram = vga_vram(m->dev->vga, &size);
    if (vm_set_slot(&m->vm, VRAM_SLOT, gpa, mapped ? size : 0, vram, true) < 0)
        log_error("cannot map the framebuffer at %#llx: %s", (unsigned long long)gpa, strerror(errno));
}

static void vram_sync(void *opaque, struct vga *v)
{
    struct machine *m = opaque;
    uint64_t size;
    vga_vram(v, &size);
    uint64_t bitmap[(16 * MiB / 4096) / 64];
    uint64_t pages = MIN(size / 4096, (uint64_t)ARRAY_SIZE(bitmap) * 64);
    if (vm_dirty_log(&m->vm, VRAM_SLOT, bitmap) == 0)
        vga_mark_dirty_pages(v, bitmap, 0, pages);
}

static int create_display(struct machine *m, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    d->display = display_new(m->loop);
    if (!d->display) {
        snprintf(err, errlen, "out of memory for the display");
        return -1;
    }
    d->vga = vga_create(&m->plat, &m->pci, d->display, m->opts.vga_rom, err, errlen);
    if (!d->vga)
        return -1;
    vga_set_vram_map_cb(d->vga, vram_map, m);
    vga_set_dirty_sync(d->vga, vram_sync, m);
    return 0;
}

/* One AHCI controller when there is a SATA disk or a CD/DVD drive: disks
 * on ports 0, 1, ... in order, the drive on the next port. */
static int create_ahci(struct machine *m, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    bool need = m->opts.cdrom != NULL;
    for (int i = 0; i < m->opts.ndisks; i++)
        need |= m->opts.disks[i].sata;
    if (!need)
        return 0;
    d->ahci = ahci_create(&m->plat, &m->pci, -1, err, errlen);
    if (!d->ahci)
        return -1;
    for (int i = 0; i < m->opts.ndisks; i++) {
        const struct disk_opt *o = &m->opts.disks[i];
        if (!o->sata)
            continue;
        char why[256] = "";
        if (ahci_attach_disk(d->ahci, d->sata_ports, o->path, o->format, o->readonly, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "disk '%s': %s", o->path, why);
            return -1;
        }
        d->sata_ports++;
    }
    if (m->opts.cdrom) {
        char why[256] = "";
        const char *iso = *m->opts.cdrom ? m->opts.cdrom : NULL;
        if (ahci_attach_cdrom(d->ahci, d->sata_ports, iso, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "cdrom '%s': %s", m->opts.cdrom, why);
            return -1;
        }
        d->cdrom_port = d->sata_ports;
    }
    return 0;
}

/* Input from the front-ends (I/O thread, device lock held). */
static void ui_key(void *opaque, keymap_key key, bool down)
{
    struct machine *m = opaque;
    input_route_key(&m->dev->route, key, down);
}

static void ui_pointer(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
    struct machine *m = opaque;
    input_route_pointer(&m->dev->route, dx, dy, dz, buttons);
}

static void ui_pointer_abs(void *opaque, int x, int y, int width, int height, int dz,
                           unsigned buttons)
{
    struct machine *m = opaque;
    input_route_pointer_abs(&m->dev->route, x, y, width, height, dz, buttons);
}

static void ui_close(void *opaque)
{
    machine_powerdown(opaque);
}

static const struct ui_input_ops ui_input = { ui_key, ui_pointer, ui_pointer_abs, ui_close };

static int create_frontends(struct machine *m, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    if (m->opts.vnc_host) {
        d->vnc = vnc_server_new(d->display, m->loop, m->opts.vnc_host, m->opts.vnc_port,
                                m->opts.vnc_password_file, &ui_input, m, err, errlen);
        if (!d->vnc)
            return -1;
        if (m->opts.vnc_keymap && vnc_server_set_layout(d->vnc, m->opts.vnc_keymap, err, errlen) < 0)
            return -1;
    }
    if (m->opts.sdl) {
        d->sdl = sdl_window_new(d->display, m->loop, m->opts.name ? m->opts.name : "VM",
                                &ui_input, m, err, errlen);
        if (!d->sdl)
            return -1;
    }
    return 0;
}

int machine_vnc_connect(struct machine *m, int fd, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    if (!d->display) {
        snprintf(err, errlen, "the VM has no display (started with --display none)");
        return -1;
    }
    if (!d->vnc) {
        /* The first viewer handed over starts a server that listens
         * nowhere: the control socket is its only door. */
        d->vnc = vnc_server_new(d->display, m->loop, NULL, 0, NULL, &ui_input, m, err, errlen);
        if (!d->vnc)
            return -1;
        if (m->opts.vnc_keymap && vnc_server_set_layout(d->vnc, m->opts.vnc_keymap, err, errlen) < 0)
            return -1;
    }
    return vnc_server_add_client(d->vnc, fd, err, errlen);
}

/* The guest started or stopped using a USB input device. */
static void usb_input_changed(void *opaque, struct usb_device *dev)
{
    struct machine *m = opaque;
    struct machine_devices *d = m->dev;
    bool tablet = input_route_pointer_usb(&d->route);
    log_debug("input: keys to the %s keyboard, the pointer to the %s",
              input_route_kbd_usb(&d->route) ? "USB" : "PS/2", tablet ? "USB tablet" : "PS/2 mouse");
    if (d->sdl)
        sdl_window_set_absolute(d->sdl, tablet);
}

/* The guest started or stopped recording from the microphone: an
 * audio-recording event tells the manager, which shows it.  A guest that
 * flips its input stream on and off fast gets at most one event each
 * RECORDING_EVENT_NS, the last one telling the state it ended in. */
#define RECORDING_EVENT_NS 100000000ull

static void recording_tell(struct machine *m);

static void recording_timer_cb(void *opaque)
{
    struct machine *m = opaque;
    m->dev->recording_timer = -1;
    if (hda_recording(m->dev->hda) != m->dev->recording_told)
        recording_tell(m);
}

static void recording_tell(struct machine *m)
{
    struct machine_devices *d = m->dev;
    d->recording_told = hda_recording(d->hda);
    log_debug("audio: the guest %s recording", d->recording_told ? "started" : "stopped");
    machine_broadcast(m, "audio-recording", json_pack("{s:b}", "recording", d->recording_told));
    d->recording_timer = evloop_add_timer(m->loop, RECORDING_EVENT_NS, recording_timer_cb, m);
}

static void audio_recording_changed(void *opaque, bool on)
{
    struct machine *m = opaque;
    if (m->dev->recording_timer < 0 && on != m->dev->recording_told)
        recording_tell(m);
}

/* An xHCI controller (after every other PCI device, so that their slots
 * stay where they were without it) with the tablet on port 1 and the
 * keyboard on port 2. */
static int create_usb(struct machine *m, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    d->xhci = xhci_create(&m->plat, &m->pci, -1, err, errlen);
    if (!d->xhci)
        return -1;
    d->usb_tablet = usb_tablet_new();
    d->usb_kbd = usb_kbd_new();
    if (!d->usb_tablet || !d->usb_kbd) {
        snprintf(err, errlen, "out of memory for the USB devices");
        return -1;
    }
    if (xhci_attach(d->xhci, usb_tablet_device(d->usb_tablet), 0, err, errlen) < 0 ||
        xhci_attach(d->xhci, usb_kbd_device(d->usb_kbd), 0, err, errlen) < 0)
        return -1;
    /* USB disks after them, on the ports left. */
    for (int i = 0; i < m->opts.nusb_disks; i++) {
        const struct disk_opt *o = &m->opts.usb_disks[i];
        char why[256] = "";
        d->usb_disk[i] = usb_msd_new(m->loop, o->path, o->format, o->readonly, (unsigned)i, why, sizeof(why));
        if (!d->usb_disk[i]) {
            snprintf(err, errlen, "USB disk '%s': %s", o->path, why);
            return -1;
        }
        if (xhci_attach(d->xhci, usb_msd_device(d->usb_disk[i]), 0, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "USB disk '%s': %s", o->path, why);
            return -1;
        }
    }
    usb_watch_active(usb_tablet_device(d->usb_tablet), usb_input_changed, m);
    usb_watch_active(usb_kbd_device(d->usb_kbd), usb_input_changed, m);
    input_route_init(&d->route, d->kbc, d->usb_kbd, d->usb_tablet);
    /* Host devices on the ports left. */
    return passthrough_setup(m, err, errlen);
}

/* iPXE's ROM only boots from the network: without the ipxe-qemu package a
 * NIC still works, so go on without it. */
static const char *nic_rom(const char *path)
{
    if (access(path, F_OK) == 0)
        return path;
    log_warn("%s is missing (install ipxe-qemu): the VM cannot boot from the network", path);
    return NULL;
}

/* One image behind two drives of one VM is two writers (or a writer and
 * a reader whose data changes under it): refused by name, before the
 * second open would meet the first one's lock. */
static int check_images_distinct(const struct machine *m, char *err, size_t errlen)
{
    const char *paths[MACHINE_MAX_DISKS + MACHINE_MAX_USB_DISKS + 1];
    int n = 0;
    for (int i = 0; i < m->opts.ndisks; i++)
        paths[n++] = m->opts.disks[i].path;
    for (int i = 0; i < m->opts.nusb_disks; i++)
        paths[n++] = m->opts.usb_disks[i].path;
    if (m->opts.cdrom && *m->opts.cdrom)
        paths[n++] = m->opts.cdrom;
    struct stat st[ARRAY_SIZE(paths)];
    bool have[ARRAY_SIZE(paths)];
    for (int i = 0; i < n; i++) {
        have[i] = stat(paths[i], &st[i]) == 0;
        for (int j = 0; have[i] && j < i; j++) {
            if (have[j] && st[i].st_dev == st[j].st_dev && st[i].st_ino == st[j].st_ino) {
                snprintf(err, errlen, "'%s' and '%s' are the same image: attach it once",
                         paths[j], paths[i]);
                return -1;
            }
        }
    }
    return 0;
}

static int create_devices(struct machine *m, char *err, size_t errlen)
{
    struct machine_devices *d = m->dev;
    struct platform *p = &m->plat;
    pci_bus_init(&m->pci, p);
    d->host = i440fx_create(p, &m->pci);
    d->isa = piix3_create(p, &m->pci);
    /* The VGA goes first so it gets slot 2, as on a PC with onboard VGA. */
    if (m->opts.vga && create_display(m, err, errlen) < 0)
        return -1;
    d->fw_cfg = fw_cfg_create(p);
    d->pm = acpi_pm_create(p);
    d->rtc = rtc_cmos_create(p);
    d->kbc = i8042_create(p);
    if (!d->host || !d->isa || !d->fw_cfg || !d->pm || !d->rtc || !d->kbc) {
        snprintf(err, errlen, "cannot create the chipset devices");
        return -1;
    }
    rtc_cmos_set_memory(d->rtc, m->low_ram, m->high_ram, (unsigned)m->opts.cpus);
    input_route_init(&d->route, d->kbc, NULL, NULL);
    if (d->display && create_frontends(m, err, errlen) < 0)
        return -1;

    d->serial_cd = chardev_open(m->opts.serial, m->loop, err, errlen);
    if (!d->serial_cd)
        return -1;
    chardev_set_quit_handler(d->serial_cd, serial_quit, m);
    d->com1 = uart8250_create(p, 0x3f8, 4, d->serial_cd);
    if (!d->com1) {
        snprintf(err, errlen, "cannot create the serial port");
        return -1;
    }
    if (m->opts.firmware_log) {
        d->debugcon = debugcon_create(p, 0x402, m->opts.firmware_log, err, errlen);
        if (!d->debugcon)
            return -1;
    }
    if (m->opts.debug_exit) {
        d->debug_exit = debug_exit_create(p, 0xf4);
        if (!d->debug_exit) {
            snprintf(err, errlen, "cannot create the debug-exit port");
            return -1;
        }
    }
    d->cdrom_port = -1;
    if (create_ahci(m, err, errlen) < 0)
        return -1;
    for (int i = 0; i < m->opts.ndisks; i++) {
        if (m->opts.disks[i].sata)
            continue;
        char why[256] = "";
        d->blk[i] = virtio_blk_create(p, &m->pci, m->opts.disks[i].path, m->opts.disks[i].format,
                                      m->opts.disks[i].readonly,
                                      why, sizeof(why));
        if (!d->blk[i]) {
            snprintf(err, errlen, "disk '%s': %s", m->opts.disks[i].path, why);
            return -1;
        }
        d->nblk++;
    }
    for (int i = 0; i < m->opts.nnics; i++) {
        const struct net_user_opts *no = &m->opts.nics[i];
        uint8_t mac[NET_ETH_ALEN];
        if (no->has_mac)
            memcpy(mac, no->mac, sizeof(mac));
        else
            net_default_mac((unsigned)i, mac);
        d->net[i] = net_slirp_new(m->loop, no, err, errlen);
        if (!d->net[i])
            return -1;
        d->nnics++;
        if (no->model == NET_MODEL_E1000) {
            d->e1000[i] = e1000_create(p, &m->pci, d->net[i], mac, nic_rom(E1000_ROM_DEFAULT), err, errlen);
            if (!d->e1000[i])
                return -1;
            d->nic_pci[i] = e1000_pci(d->e1000[i]);
        } else {
            d->vnet[i] = virtio_net_create(p, &m->pci, d->net[i], mac, nic_rom(VIRTIO_NET_ROM_DEFAULT), err,
                                           errlen);
            if (!d->vnet[i])
                return -1;
            d->nic_pci[i] = virtio_net_pci(d->vnet[i]);
        }
    }
    if (m->opts.rng) {
        d->rng = virtio_rng_create(p, &m->pci, err, errlen);
        if (!d->rng)
            return -1;
    }
    if (m->opts.usb && create_usb(m, err, errlen) < 0)
        return -1;
    if (m->opts.audio) {
        /* Last of all, so the other devices keep their slots without it. */
        d->audio = audio_open(m->opts.audio, err, errlen);
        if (!d->audio)
            return -1;
        d->hda = hda_create(p, &m->pci, -1, d->audio, m->opts.audio_in, err, errlen);
        if (!d->hda)
            return -1;
        d->recording_timer = -1;
        hda_watch_recording(d->hda, audio_recording_changed, m);
    }
    return setup_fw_cfg(m, err, errlen);
}

static void reset_devices(struct machine *m)
{
    struct machine_devices *d = m->dev;
    pci_bus_reset(&m->pci);
    fw_cfg_reset(d->fw_cfg);
    acpi_pm_reset(d->pm);
    rtc_cmos_reset(d->rtc);
    i8042_reset(d->kbc);
    uart8250_reset(d->com1);
}

/* --- run control ------------------------------------------------------------ */

const char *machine_state_name(const struct machine *m)
{
    switch (m->state) {
    case STATE_RUNNING: return "running";
    case STATE_PAUSED: return "paused";
    case STATE_GUEST_ERROR: return "guest-error";
    case STATE_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}

void machine_broadcast(struct machine *m, const char *event, json_t *data)
{
    if (m->control)
        control_broadcast(m->control, event, data);
    else
        json_decref(data);
}

static void set_state(struct machine *m, enum run_state s)
{
    if (m->state == s)
        return;
    m->state = s;
    if (m->dev->sdl)
        sdl_window_set_state(m->dev->sdl, machine_state_name(m));
    machine_broadcast(m, "state-changed", json_pack("{s:s}", "state", machine_state_name(m)));
}

void machine_pause(struct machine *m)
{
    if (m->state != STATE_RUNNING)
        return;
    vcpus_park(m);
    vm_clock_pause(&m->vm);
    set_state(m, STATE_PAUSED);
}

void machine_resume(struct machine *m)
{
    if (m->state != STATE_PAUSED)
        return;
    set_state(m, STATE_RUNNING);
    vm_clock_resume(&m->vm);
    vcpus_unpark(m);
}

int machine_reset(struct machine *m)
{
    if (m->state == STATE_SHUTDOWN)
        return -1;
    vcpus_park(m);
    reset_devices(m);
    char err[256];
    int rc = vm_reset_cpus(&m->vm);
    if (rc < 0)
        log_error("cannot reset the vCPUs");
    if (load_boot(m, err, sizeof(err)) < 0) {
        log_error("reset: %s", err);
        rc = -1;
    }
    machine_broadcast(m, "reset", NULL);
    if (rc < 0) {
        set_state(m, STATE_GUEST_ERROR);
        return -1;
    }
    if (m->state == STATE_GUEST_ERROR)
        set_state(m, STATE_RUNNING);
    if (m->state == STATE_RUNNING)
        vcpus_unpark(m);
    return 0;
}

void machine_powerdown(struct machine *m)
{
    acpi_pm_power_button(m->dev->pm);
    machine_broadcast(m, "powerdown-requested", NULL);
}

void machine_quit(struct machine *m, int status)
{
    if (m->state == STATE_SHUTDOWN)
        return;
    m->exit_status = status;
    if (m->state == STATE_RUNNING || m->state == STATE_GUEST_ERROR)
        vcpus_park(m);
    set_state(m, STATE_SHUTDOWN);
    evloop_stop(m->loop);
}

void machine_shutdown_event(struct machine *m, const char *reason, int status)
{
    machine_broadcast(m, "shutdown", json_pack("{s:s,s:i}", "reason", reason, "status", status));
    machine_quit(m, status);
}

/* Requests from vCPU threads and devices; runs on the I/O thread. */
static void on_request(void *opaque, int fd, unsigned events)
{
    struct machine *m = opaque;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* spurious */
    }
    int status = atomic_exchange(&m->debug_exit_status, -1);
    if (status >= 0) {
        machine_shutdown_event(m, "debug-exit", status);
        return;
    }
    if (atomic_exchange(&m->pending_poweroff, 0)) {
        log_info("guest powered off");
        machine_shutdown_event(m, "guest-poweroff", 0);
        return;
    }
    if (atomic_exchange(&m->pending_reset, 0))
        machine_reset(m);
    if (atomic_exchange(&m->pending_error, 0) && m->state != STATE_SHUTDOWN) {
        vcpus_park(m);
        set_state(m, STATE_GUEST_ERROR);
        machine_broadcast(m, "guest-error", NULL);
        if (!m->control) {
            log_error("the guest cannot continue; stopping");
            machine_quit(m, 1);
        } else {
            log_error("the guest is stopped; 'reset' or 'quit' through the control socket");
        }
    }
}

static void on_signal(void *opaque, int fd, unsigned events)
{
    struct machine *m = opaque;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != sizeof(si))
        return;
    log_info("terminating on signal %u", si.ssi_signo);
    machine_shutdown_event(m, "signal", 0);
}

/* --- life cycle ---------------------------------------------------------------- */

int machine_init(struct machine *m, const struct machine_opts *opts, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->opts = *opts;
    m->request_fd = -1;
    atomic_store(&m->debug_exit_status, -1);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->park_cond, NULL);
    pthread_cond_init(&m->parked_cond, NULL);
    io_bus_init(&m->pio, "pio");
    io_bus_init(&m->mmio, "mmio");
    m->dev = calloc(1, sizeof(*m->dev));
    m->loop = evloop_new(&m->lock);
    m->request_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!m->dev || !m->loop || m->request_fd < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->plat = (struct platform){ &m->mem, &m->pio, &m->mmio, m->loop, &kvm_platform_ops, m };

    if (check_images_distinct(m, err, errlen) < 0)
        return -1;
    if (vm_create(&m->vm, err, errlen) < 0 || setup_memory(m, err, errlen) < 0)
        return -1;
    if (!m->opts.kernel && load_firmware(m, err, errlen) < 0)
        return -1;
    if (vm_create_vcpus(&m->vm, m->opts.cpus, err, errlen) < 0)
        return -1;

    /* Devices are built before any thread runs, but hold the lock anyway:
     * their constructors may call what expects it. */
    pthread_mutex_lock(&m->lock);
    int rc = create_devices(m, err, errlen);
    if (rc == 0)
        rc = load_boot(m, err, errlen);
    if (rc == 0 && m->opts.control)
        rc = machine_control_setup(m, err, errlen);
    pthread_mutex_unlock(&m->lock);
    if (rc < 0)
        return -1;

    evloop_add_fd(m->loop, m->request_fd, EVLOOP_IN, on_request, m);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        /* Blocked and never read, SIGTERM would be ignored for good. */
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        return -1;
    }
    evloop_add_fd(m->loop, sfd, EVLOOP_IN, on_signal, m);
    return 0;
}

int machine_run(struct machine *m)
{
    m->state = STATE_RUNNING;
    if (vcpus_start(m) < 0)
        return 1;
    /* Everything is built and every thread runs: from here on the process
     * does only what a running VM needs. */
    char err[256];
    if (m->opts.sandbox && sandbox_install(err, sizeof(err)) < 0) {
        log_error("%s; --sandbox off runs the VM without it", err);
        vcpus_stop(m);
        return 1;
    }
    evloop_run(m->loop);
    vcpus_stop(m);
    return m->exit_status;
}

void machine_destroy(struct machine *m)
{
    if (m->control) {
        pthread_mutex_lock(&m->lock);
        control_server_free(m->control);
        m->control = NULL;
        pthread_mutex_unlock(&m->lock);
    }
    if (m->dev) {
        struct machine_devices *d = m->dev;
        if (d->usb_pt) {
            /* The host's drivers get their devices back. */
            pthread_mutex_lock(&m->lock);
            passthrough_teardown(m);
            pthread_mutex_unlock(&m->lock);
        }
        if (d->hda && d->recording_timer >= 0)
            evloop_del_timer(m->loop, d->recording_timer);
        if (d->hda)
            hda_destroy(d->hda);
        audio_close(d->audio);   /* the WAV file's sizes are written here */
        if (d->xhci)
            xhci_destroy(d->xhci);
        usb_tablet_free(d->usb_tablet);
        usb_kbd_free(d->usb_kbd);
        for (int i = 0; i < MACHINE_MAX_USB_DISKS; i++)
            usb_msd_free(d->usb_disk[i]);
        for (int i = 0; i < d->nblk; i++)
            virtio_blk_destroy(d->blk[i]);
        if (d->ahci)
            ahci_destroy(d->ahci);
        if (d->rng)
            virtio_rng_destroy(d->rng);
        for (int i = 0; i < d->nnics; i++) {
            if (d->vnet[i])
                virtio_net_destroy(d->vnet[i]);
            if (d->e1000[i])
                e1000_destroy(d->e1000[i]);
            net_backend_free(d->net[i]);
        }
        if (d->com1)
            uart8250_destroy(d->com1);
        if (d->serial_cd)
            chardev_close(d->serial_cd);
        if (d->debugcon)
            debugcon_destroy(d->debugcon);
        if (d->debug_exit)
            debug_exit_destroy(d->debug_exit);
        if (d->kbc)
            i8042_destroy(d->kbc);
        if (d->rtc)
            rtc_cmos_destroy(d->rtc);
        if (d->pm)
            acpi_pm_destroy(d->pm);
        if (d->fw_cfg)
            fw_cfg_destroy(d->fw_cfg);
        if (d->isa)
            piix3_destroy(d->isa);
        if (d->keys.timer > 0)
            evloop_del_timer(m->loop, d->keys.timer);
        if (d->vnc)
            vnc_server_free(d->vnc);
        if (d->sdl)
            sdl_window_free(d->sdl);
        if (d->vga)
            vga_destroy(d->vga);
        if (d->display)
            display_free(d->display);
        if (d->host)
            i440fx_destroy(d->host);
        free(d);
        m->dev = NULL;
    }
    vm_destroy(&m->vm);
    if (m->loop)
        evloop_free(m->loop);
    if (m->request_fd >= 0)
        close(m->request_fd);
    if (m->ram_low)
        munmap(m->ram_low, m->low_ram);
    if (m->ram_high)
        munmap(m->ram_high, m->high_ram);
    if (m->bios)
        munmap(m->bios, m->bios_size);
    io_bus_destroy(&m->pio);
    io_bus_destroy(&m->mmio);
}
