/* What vmm/machine.c shares with the control commands (vmm/commands.c):
 * the devices of a machine and a few run-control helpers.  Not a public
 * interface. */
#ifndef BURROW_MACHINE_INTERNAL_H
#define BURROW_MACHINE_INTERNAL_H

#include <jansson.h>

#include "gui/input_route.h"
#include "vmm/machine.h"

struct acpi_pm;
struct ahci;
struct chardev;
struct debug_exit;
struct debugcon;
struct display;
struct e1000;
struct fw_cfg;
struct i440fx;
struct i8042;
struct net_backend;
struct piix3;
struct rtc_cmos;
struct sdl_window;
struct uart8250;
struct vga;
struct virtio_blk;
struct virtio_net;
struct virtio_rng;
struct vnc_server;
struct usb_kbd;
struct usb_msd;
struct passthrough;
struct usb_tablet;
struct xhci;
struct hda;
struct audio_backend;

struct machine_devices {
    struct i440fx *host;
    struct piix3 *isa;
    struct fw_cfg *fw_cfg;
    struct acpi_pm *pm;
    struct rtc_cmos *rtc;
    struct i8042 *kbc;
    struct chardev *serial_cd;
    struct uart8250 *com1;
    struct debugcon *debugcon;
    struct debug_exit *debug_exit;
    struct virtio_blk *blk[MACHINE_MAX_DISKS];
    int nblk;
    struct ahci *ahci;
    int sata_ports;                 /* disks on ports 0..sata_ports-1 */
    int cdrom_port;                 /* -1: no CD/DVD drive */
    struct virtio_rng *rng;
    struct display *display;
    struct vga *vga;
    struct vnc_server *vnc;
    struct sdl_window *sdl;
    struct xhci *xhci;              /* NULL: started with --usb off */
    struct hda *hda;                /* NULL: started without --audio */
    struct audio_backend *audio;
    bool recording_told;            /* what the last audio-recording event said */
    int recording_timer;            /* -1, or the pause between two such events */
    struct usb_tablet *usb_tablet;
    struct usb_kbd *usb_kbd;
    struct usb_msd *usb_disk[MACHINE_MAX_USB_DISKS];
    struct passthrough *usb_pt;     /* host devices passed through (vmm/usb_passthrough.c) */
    struct input_route route;       /* front-end input to the PS/2 or USB devices */
    struct {                        /* send-keys: key events paced out by a timer */
        struct {
            keymap_key key;
            bool down;
            bool last;              /* the last of one combination's presses or releases */
        } ev[1024];
        size_t len, pos;
        int timer;
    } keys;
    struct net_backend *net[MACHINE_MAX_NICS];
    struct virtio_net *vnet[MACHINE_MAX_NICS];
    struct e1000 *e1000[MACHINE_MAX_NICS];
    struct pci_device *nic_pci[MACHINE_MAX_NICS];
    int nnics;
};

/* Sends an event to every control client (steals data; NULL: {}). */
void machine_broadcast(struct machine *m, const char *event, json_t *data);
/* Announces the end of the VM ("shutdown" event) and quits with status. */
void machine_shutdown_event(struct machine *m, const char *reason, int status);
/* Creates the control socket and registers the commands. */
int machine_control_setup(struct machine *m, char *err, size_t errlen);

#endif
