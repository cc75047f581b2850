/* The host's USB devices as Linux shows them, for pass-through: the list
 * from sysfs, the specs and filters that pick devices, the kernel's
 * hot-plug messages, and what to tell a user who may not open a device
 * node.  Only files under sysfs and the node's owner and mode are read,
 * never the device itself, so the VM library uses this too (no libusb).
 *
 * A device is named as the kernel names it in sysfs: BUS-PORT[.PORT...],
 * e.g. "1-1.2" for port 2 of the hub on port 1 of bus 1.  That name stays
 * while the device stays plugged where it is; its device number (DEVNUM,
 * the node /dev/bus/usb/BBB/DDD) changes at every plug. */
#ifndef BURROW_USB_HOST_LIST_H
#define BURROW_USB_HOST_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/usb/usb.h"

#define USBHOST_SYSFS_DEFAULT "/sys/bus/usb/devices"
#define USBHOST_DEVFS_DEFAULT "/dev/bus/usb"
/* Replace the two above (tests: a fake tree, a machine without USB). */
#define USBHOST_SYSFS_ENV     "BURROW_USB_SYSFS"
#define USBHOST_DEVFS_ENV     "BURROW_USB_DEVFS"

#define USBHOST_NAME_MAX   32
#define USBHOST_STRING_MAX 64
#define USBHOST_MAX_DEPTH  7       /* ports in a path: the root port and six hub tiers */

const char *usbhost_sysfs_root(void);
const char *usbhost_devfs_root(void);

struct usbhost_info {
    char name[USBHOST_NAME_MAX];   /* "1-1.2" */
    unsigned bus, devnum;
    uint16_t vid, pid;
    unsigned mbps;                 /* sysfs "speed": 1 (for 1.5), 12, 480, 5000, ...; 0 unknown */
    uint8_t dev_class;             /* bDeviceClass; 9 is a hub */
    char manufacturer[USBHOST_STRING_MAX];
    char product[USBHOST_STRING_MAX];
    char serial[USBHOST_STRING_MAX];
    bool usbfs;                    /* an interface is held through usbfs (a VM, another program) */
};

/* The speed a device runs at, from its mbps; false when unknown. */
bool usbhost_speed(const struct usbhost_info *d, enum usb_speed *speed);
const char *usbhost_speed_name(unsigned mbps);    /* "low", "full", "high", "super", "super+" */

/* The devices under sysfs (NULL: usbhost_sysfs_root()), root hubs left
 * out, sorted by name.  *out is malloc'ed (free it); *n may be 0.  -1 with
 * a message only when the folder exists but cannot be read; a missing
 * folder is a machine without USB: 0 devices. */
int usbhost_list(const char *sysfs, struct usbhost_info **out, size_t *n, char *err, size_t errlen);
/* One device by its sysfs name: 0, or -1 when it is not there (any more). */
int usbhost_read(const char *sysfs, const char *name, struct usbhost_info *d);
/* /dev/bus/usb/BBB/DDD under devfs (NULL: usbhost_devfs_root()). */
void usbhost_node(const char *devfs, const struct usbhost_info *d, char *buf, size_t len);

/* ---- specs: which device a command or --usb-host means ---- */

struct usbhost_spec {
    bool by_id;                    /* VID:PID, else a port path */
    uint16_t vid, pid;
    char path[USBHOST_NAME_MAX];   /* "1-1.2" */
};

/* "VID:PID" (hexadecimal, e.g. 0525:a4a5) or "BUS-PORT[.PORT...]"
 * (e.g. 1-1.2); -1 with a message otherwise. */
int usbhost_spec_parse(const char *s, struct usbhost_spec *spec, char *err, size_t errlen);
bool usbhost_spec_match(const struct usbhost_spec *spec, const struct usbhost_info *d);
/* Back to text: "0525:a4a5" or "1-1.2". */
void usbhost_spec_format(const struct usbhost_spec *spec, char *buf, size_t len);

/* ---- filters: devices a VM takes whenever they are there ---- */

struct usbhost_filter {
    int vid, pid;                  /* -1: any */
    char serial[USBHOST_STRING_MAX];   /* "": any */
};

/* "vid=0525,pid=a4a5,serial=ABC123", each part optional but one at
 * least; a serial cannot hold ',' or control characters. */
int usbhost_filter_parse(const char *s, struct usbhost_filter *f, char *err, size_t errlen);
bool usbhost_filter_match(const struct usbhost_filter *f, const struct usbhost_info *d);
void usbhost_filter_format(const struct usbhost_filter *f, char *buf, size_t len);

/* ---- hot-plug: the kernel's uevents (NETLINK_KOBJECT_UEVENT, group 1) ---- */

struct usbhost_uevent {
    bool add;                      /* else remove */
    char name[USBHOST_NAME_MAX];
    unsigned bus, devnum;
};

/* A uevent message ("ACTION@DEVPATH\0KEY=VALUE\0..."): 1 when it is a USB
 * device (not an interface, not a root hub) being added or removed, else
 * 0. */
int usbhost_uevent_parse(const char *buf, size_t len, struct usbhost_uevent *ev);

/* ---- a node that cannot be opened ---- */

struct usbhost_access {
    char user[64];                 /* who runs this ("" unknown) */
    bool root;
    char owner[64], group[64];     /* the node's, names or numbers */
    unsigned mode;                 /* st_mode, type bits included */
    unsigned gid;                  /* the node's group */
    bool in_group;                 /* this process has the node's group */
    bool have_stat;
};

/* The facts for path as this process sees them. */
void usbhost_access_facts(const char *path, struct usbhost_access *a);
/* One paragraph: that path (the device d) could not be opened (errno
 * err), who owns it with which mode, and the udev rule or group that
 * would let this user open it.  d may be NULL. */
void usbhost_open_advice(const char *path, int err, const struct usbhost_info *d,
                         const struct usbhost_access *a, char *buf, size_t len);

#endif
