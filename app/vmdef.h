/* VM definitions: the vm.ini format (GKeyFile INI, versioned), its checks,
 * and the VM handle that libburrow's functions pass around.
 *
 * Format 1:
 *   [burrow]    format=1
 *   [vm]        name, uuid, os, memory (MiB), cpus, boot (optional: "c",
 *               "d", "n" in order of preference), usb=on|off (a USB tablet
 *               and keyboard; optional, default on), audio=pa|none|off (a
 *               sound card played through the desktop's PulseAudio, one that
 *               plays into nothing, none; optional, default off),
 *               audio-in=on|off (its microphone; optional, default off)
 *   [display]   type=sdl|vnc|none, vnc-listen=HOST:PORT, vnc-password-file
 *   [cdrom]     path
 *   [disk N]    path (relative: to the VM's directory), interface=virtio|sata|usb
 *               (usb: USB mass storage, at most two, with usb=on),
 *               format=raw|qcow2|vdi|vmdk|vhd|vhdx (the last four, which
 *               Burrow only reads, need readonly=true), readonly=true|false
 *                                                              N = 0..7
 *   [nic N]     mode=user, model=virtio|e1000, mac, hostfwd (list, ';')  N = 0..3
 *   [usb-filter N]  name, vid, pid (hexadecimal), serial: host USB devices
 *               the VM takes when it starts and whenever one is plugged in
 *               (usb=on; one of vid, pid, serial at least)       N = 0..7
 * Unknown groups and keys are errors (a newer format bumps the version),
 * so a definition is never silently stripped of what this version does not
 * know. */
#ifndef BURROW_APP_VMDEF_H
#define BURROW_APP_VMDEF_H

#include <sys/stat.h>

#include "app/burrow.h"
#include "app/paths.h"

#define VMDEF_FORMAT 1

struct burrow_vm {
    struct burrow_vmdef def;
    struct vm_paths paths;
    /* The definition file as loaded, to notice another writer. */
    bool have_stat;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
};

/* Defaults of an OS type for a new VM called name (no disks, no NIC). */
void vmdef_init(struct burrow_vmdef *def, const char *name, const struct burrow_ostype *os);

/* Parses and checks vm.ini text.  file names it in messages ("FILE:LINE:
 * ..."); expect_name (may be NULL) must equal [vm] name. */
int vmdef_parse(const char *text, size_t len, const char *file, const char *expect_name,
                struct burrow_vmdef *def, struct burrow_error *err);
/* The text of a definition (g_free() it). */
char *vmdef_format(const struct burrow_vmdef *def, size_t *len);

int vmdef_load(const char *path, const char *expect_name, struct burrow_vmdef *def,
               struct stat *st, struct burrow_error *err);
/* Validates, then writes atomically (the caller holds the VM's lock). */
int vmdef_save(const char *path, const struct burrow_vmdef *def, struct burrow_error *err);

void vmdef_random_mac(char mac[18]);
void vmdef_random_uuid(char uuid[37]);

/* Field checks shared with the command line. */
bool vmdef_mac_valid(const char *mac);
bool vmdef_hostfwd_valid(const char *rule);
bool vmdef_listen_valid(const char *hostport);
bool vmdef_boot_valid(const char *boot);
/* True when two valid forward rules take the same host port: same protocol
 * and port, and the same host address or either on every address (empty
 * or 0.0.0.0).  The second could not be set up. */
bool vmdef_hostfwd_clash(const char *a, const char *b);

/* What this host can give a VM (0: unknown). */
struct vmdef_host {
    unsigned long long ram_mib;     /* MemTotal */
    unsigned long long swap_mib;    /* SwapTotal */
    unsigned online_cpus;
    unsigned kvm_max_vcpus;         /* KVM_CAP_MAX_VCPUS, when KVM opens */
};
void vmdef_host_query(struct vmdef_host *h);

enum vmdef_fit {
    VMDEF_FITS,
    VMDEF_FIT_WARN,     /* works, but the host is overcommitted: why says how */
    VMDEF_FIT_NO,       /* cannot work: why says why */
};
/* Whether so much memory, so many vCPUs fit this machine and host; why gets
 * "more than ..." when they do not. */
enum vmdef_fit vmdef_memory_fit(const struct vmdef_host *h, unsigned long long mib, char *why,
                                size_t len);
enum vmdef_fit vmdef_cpus_fit(const struct vmdef_host *h, unsigned cpus, char *why, size_t len);

/* "raw", "qcow2", "vdi", "vmdk", "vhd", "vhdx", or the name of a format
 * Burrow cannot read, from the image's first (or a fixed VHD's last)
 * bytes: never "raw" for an image of another format. */
const char *vmdef_detect_format(const char *path);

#endif
