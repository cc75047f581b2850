/* One virtual machine: options, guest memory, devices, vCPU threads, the
 * I/O thread's event loop, and the run state the control socket reports. */
#ifndef BURROW_MACHINE_H
#define BURROW_MACHINE_H

#include <stdint.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <pthread.h>

#include "devices/bus.h"
#include "devices/e820.h"
#include "devices/evloop.h"
#include "devices/guest_mem.h"
#include "devices/pci.h"
#include "devices/platform.h"
#include "devices/net/net.h"
#include "devices/usb/host_list.h"
#include "vmm/kvm.h"

#define MACHINE_MAX_DISKS 8
#define MACHINE_MAX_E820  16
#define MACHINE_MAX_NICS  4
/* USB disks take the USB 2 root ports the tablet and keyboard leave. */
#define MACHINE_MAX_USB_DISKS 2
/* --usb-host and --usb-filter rules, each. */
#define MACHINE_MAX_USB_HOSTS 8

struct disk_opt {
    const char *path;
    const char *format;             /* "raw", "qcow2"; NULL: detect */
    bool readonly;
    bool sata;                      /* on the AHCI controller, else virtio-blk */
};

struct machine_opts {
    uint64_t memory_mib;
    int cpus;
    const char *name;
    const char *uuid;               /* SMBIOS system UUID; NULL: random */
    const char *firmware;
    const char *kernel, *initrd, *append;
    struct disk_opt disks[MACHINE_MAX_DISKS];
    int ndisks;
    const char *serial;
    /* Display: none at all (the firmware uses the serial port), or a VGA
     * seen through any of the front-ends (headless: screenshots only). */
    bool vga;
    bool sdl;
    const char *vnc_host;           /* NULL: no VNC server */
    int vnc_port;
    const char *vnc_password_file;
    const char *vnc_keymap;         /* guest keyboard layout for VNC keysyms; NULL: en-us */
    const char *vga_rom;
    const char *control;
    const char *firmware_log;
    bool debug_exit;
    bool rng;
    bool usb;                       /* xHCI controller with a USB tablet and keyboard */
    struct disk_opt usb_disks[MACHINE_MAX_USB_DISKS];   /* USB mass storage, needs usb */
    int nusb_disks;
    struct usbhost_spec usb_hosts[MACHINE_MAX_USB_HOSTS];     /* host devices passed through */
    int nusb_hosts;
    struct usbhost_filter usb_filters[MACHINE_MAX_USB_HOSTS]; /* host devices taken when they match */
    int nusb_filters;
    const char *audio;              /* an HDA controller on this backend (pa[,...], wav:PATH, none); NULL: no sound device */
    bool audio_in;                  /* its microphone is connected */
    struct net_user_opts nics[MACHINE_MAX_NICS];
    int nnics;
    const char *boot;               /* boot order letters: c disk, d cdrom, n network */
    const char *cdrom;              /* ISO path, "" for an empty drive, NULL: no drive */
    bool sandbox;                   /* the seccomp allowlist once set-up is done */
};

enum run_state {
    STATE_RUNNING,
    STATE_PAUSED,
    STATE_GUEST_ERROR,   /* a vCPU stopped on something KVM cannot run */
    STATE_SHUTDOWN,
};

struct machine_devices;

struct machine {
    struct machine_opts opts;
    struct vm vm;
    struct guest_mem mem;
    struct io_bus pio, mmio;
    struct platform plat;
    struct evloop *loop;
    pthread_mutex_t lock;           /* the device lock */
    struct pci_bus pci;
    struct machine_devices *dev;

    uint8_t *ram_low;               /* [0, low_ram) */
    uint8_t *ram_high;              /* [4 GiB, 4 GiB + high_ram) */
    uint64_t low_ram, high_ram;
    uint8_t *bios;                  /* firmware image, also mapped at 4 GiB - size */
    uint64_t bios_size;
    struct e820_entry e820[MACHINE_MAX_E820];
    unsigned ne820;

    /* Run control; protected by the device lock. */
    enum run_state state;
    bool user_paused;
    atomic_bool park_request;       /* vCPUs should leave KVM_RUN and wait */
    bool stopping;
    int parked;
    pthread_cond_t park_cond;       /* vCPUs waiting to run */
    pthread_cond_t parked_cond;     /* someone waiting for vCPUs to park */

    /* Requests from vCPU threads, handled on the I/O thread. */
    int request_fd;
    atomic_int pending_reset, pending_poweroff, pending_error;
    atomic_int debug_exit_status;   /* -1 when none */

    int exit_status;
    struct control_server *control;
};

/* Builds the whole machine from opts; err gets a one-line reason. */
int machine_init(struct machine *m, const struct machine_opts *opts, char *err, size_t errlen);
/* Starts the vCPUs and runs the I/O loop until the VM ends; returns the
 * process exit status. */
int machine_run(struct machine *m);
void machine_destroy(struct machine *m);

/* Run control (device lock held). */
void machine_pause(struct machine *m);
void machine_resume(struct machine *m);
int machine_reset(struct machine *m);
void machine_powerdown(struct machine *m);   /* ACPI power button */
/* Makes fd, a connected stream socket, a VNC viewer of the VM's screen
 * (starting a VNC server that listens nowhere if there is none).  The
 * machine owns fd on success; -1 with a message in err otherwise. */
int machine_vnc_connect(struct machine *m, int fd, char *err, size_t errlen);
void machine_quit(struct machine *m, int status);
const char *machine_state_name(const struct machine *m);

/* vCPU threads (vmm/vcpu.c). */
int vcpus_start(struct machine *m);
void vcpus_park(struct machine *m);          /* device lock held; waits */
void vcpus_unpark(struct machine *m);
void vcpus_stop(struct machine *m);          /* device lock NOT held */

#endif
