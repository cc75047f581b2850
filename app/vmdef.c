/* VM definitions (vm.ini) and the VM repository: create, load, save,
 * modify, clone, delete, list. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <linux/fs.h>
#include <linux/kvm.h>

#include "app/vmdef.h"
#include "app/supervise.h"
#include "vmm/kvmdev.h"

#if __has_include("app/disk.h")
#include "app/disk.h"
#include "devices/block/block.h"
#include "devices/block/qcow2.h"
#define HAVE_DISK_API 1
#endif

/* How long an edit waits for another program's edit of the same VM. */
#define EDIT_LOCK_TIMEOUT_MS 10000

/* ---- random identifiers ----------------------------------------------------- */

static void random_bytes(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)g_random_int_range(0, 256);
}

void vmdef_random_mac(char mac[18])
{
    uint8_t b[3];
    random_bytes(b, sizeof(b));
    /* 52:54:00 is the OUI that KVM guests commonly use: locally administered
     * in spirit, and recognised by DHCP set-ups for VMs. */
    snprintf(mac, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

void vmdef_random_uuid(char uuid[37])
{
    gchar *u = g_uuid_string_random();
    snprintf(uuid, 37, "%s", u);
    g_free(u);
}

/* ---- field checks ---------------------------------------------------------------- */

static bool parse_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static bool host_chars(const char *s, size_t n, bool allow_empty)
{
    if (n == 0)
        return allow_empty;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-:[]", s[i]))
            return false;
    return true;
}

bool vmdef_mac_valid(const char *mac)
{
    if (strlen(mac) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (mac[i] != ':')
                return false;
        } else if (!isxdigit((unsigned char)mac[i])) {
            return false;
        }
    }
    /* The first octet's low bit marks multicast: a NIC needs unicast. */
    unsigned first = (unsigned)strtoul(mac, NULL, 16);
    return !(first & 1);
}

bool vmdef_listen_valid(const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon)
        return false;
    return host_chars(hostport, (size_t)(colon - hostport), false) &&
           parse_port(colon + 1, strlen(colon + 1));
}

/* tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
bool vmdef_hostfwd_valid(const char *rule)
{
    const char *p;
    if (!strncmp(rule, "tcp:", 4) || !strncmp(rule, "udp:", 4))
        p = rule + 4;
    else
        return false;
    const char *dash = strchr(p, '-');
    if (!dash)
        return false;
    const char *c1 = memchr(p, ':', (size_t)(dash - p));
    if (!c1 || !host_chars(p, (size_t)(c1 - p), true) || !parse_port(c1 + 1, (size_t)(dash - c1 - 1)))
        return false;
    const char *g = dash + 1;
    const char *c2 = strrchr(g, ':');
    if (!c2 || !host_chars(g, (size_t)(c2 - g), true) || strchr(g, ','))
        return false;
    return parse_port(c2 + 1, strlen(c2 + 1));
}

/* The host side of a valid rule: protocol, address ("" for every address)
 * and port. */
static void hostfwd_host(const char *rule, char proto[4], char *addr, size_t addrlen, unsigned *port)
{
    snprintf(proto, 4, "%.3s", rule);
    const char *p = rule + 4;
    const char *c1 = strchr(p, ':');
    snprintf(addr, addrlen, "%.*s", (int)(c1 - p), p);
    if (!strcmp(addr, "0.0.0.0"))
        addr[0] = '\0';
    *port = (unsigned)strtoul(c1 + 1, NULL, 10);
}

bool vmdef_hostfwd_clash(const char *a, const char *b)
{
    if (!vmdef_hostfwd_valid(a) || !vmdef_hostfwd_valid(b))
        return false;
    char pa[4], pb[4], aa[128], ab[128];
    unsigned porta, portb;
    hostfwd_host(a, pa, aa, sizeof(aa), &porta);
    hostfwd_host(b, pb, ab, sizeof(ab), &portb);
    return !strcmp(pa, pb) && porta == portb && (!aa[0] || !ab[0] || !strcasecmp(aa, ab));
}

bool vmdef_boot_valid(const char *boot)
{
    size_t n = strlen(boot);
    if (n < 1 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!strchr("cdn", boot[i]) || strchr(boot + i + 1, boot[i]))
            return false;
    }
    return true;
}

static bool uuid_valid(const char *u)
{
    return !*u || g_uuid_string_is_valid(u);
}

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(v, *set))
            return true;
    return false;
}

static const char *const disk_ifs[] = { "virtio", "sata", "usb", NULL };
static const char *const disk_fmts[] = { "raw", "qcow2", "vdi", "vmdk", "vhd", "vhdx", NULL };
/* Formats Burrow reads but does not write: a VM may only read them. */
static const char *const ro_fmts[] = { "vdi", "vmdk", "vhd", "vhdx", NULL };
static const char *const nic_models[] = { "virtio", "e1000", NULL };
static const char *const nic_modes[] = { "user", NULL };
static const char *const displays[] = { "sdl", "vnc", "none", NULL };
static const char *const audios[] = { "pa", "none", "off", NULL };

/* Where each field sat in the file, for messages (0: unknown). */
struct linemap {
    int name, uuid, os, memory, cpus, boot, audio, audio_in, display, vnc_listen, vnc_pw, cdrom, end;
    int disk[BURROW_MAX_DISKS], disk_path[BURROW_MAX_DISKS], disk_if[BURROW_MAX_DISKS],
        disk_fmt[BURROW_MAX_DISKS];
    int nic[BURROW_MAX_NICS], nic_mode[BURROW_MAX_NICS], nic_model[BURROW_MAX_NICS],
        nic_mac[BURROW_MAX_NICS], nic_fwd[BURROW_MAX_NICS];
    int usbf[BURROW_MAX_USB_FILTERS];
};

/* Reports an error at a line of file when both are known, else naming the
 * field. */
static int fail_at(struct burrow_error *err, const char *file, int line, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_at(struct burrow_error *err, const char *file, int line, const char *field,
                   const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (file && line > 0)
        burrow_error_set(err, "%s:%d: %s", file, line, msg);
    else if (file)
        burrow_error_set(err, "%s: %s", file, msg);
    else
        burrow_error_set(err, "%s: %s", field, msg);
    return -1;
}

/* A USB id: 1-4 hexadecimal digits. */
static bool usb_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 4 && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* Text a filter holds: printable, and for the serial no ',' either, since
 * burrow-vm's --usb-filter separates its parts with it. */
static bool usb_text_valid(const char *s, bool comma)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (!comma && *s == ','))
            return false;
    return true;
}

/* What is wrong with a filter, or NULL. */
static const char *usb_filter_fault(const struct burrow_usb_filter *f)
{
    if (!f->vid[0] && !f->pid[0] && !f->serial[0])
        return "a USB filter needs vid, pid or serial";
    if (f->vid[0] && !usb_id_valid(f->vid))
        return "vid must be 1 to 4 hexadecimal digits";
    if (f->pid[0] && !usb_id_valid(f->pid))
        return "pid must be 1 to 4 hexadecimal digits";
    if (!usb_text_valid(f->serial, false))
        return "a serial cannot hold ',' or control characters";
    if (!usb_text_valid(f->name, true))
        return "a name cannot hold control characters";
    return NULL;
}

int burrow_usb_filter_parse(const char *spec, struct burrow_usb_filter *f, struct burrow_error *err)
{
    memset(f, 0, sizeof(*f));
    char buf[512];
    if (strlen(spec) >= sizeof(buf)) {
        burrow_error_set(err, "the USB filter is too long");
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *part = buf, *next; part && *part; part = next) {
        next = strchr(part, ',');
        if (next)
            *next++ = '\0';
        char *val = strchr(part, '=');
        if (!val) {
            burrow_error_set(err, "'%s' is not KEY=VALUE (keys: vid, pid, serial, name)", part);
            return -1;
        }
        *val++ = '\0';
        char *dst;
        size_t cap;
        if (!strcmp(part, "vid") || !strcmp(part, "pid")) {
            if (!usb_id_valid(val)) {
                burrow_error_set(err, "%s '%s' is not 1 to 4 hexadecimal digits", part, val);
                return -1;
            }
            dst = part[0] == 'v' ? f->vid : f->pid;
            snprintf(dst, 5, "%04lx", strtoul(val, NULL, 16));
            continue;
        } else if (!strcmp(part, "serial")) {
            dst = f->serial;
            cap = sizeof(f->serial);
        } else if (!strcmp(part, "name")) {
            dst = f->name;
            cap = sizeof(f->name);
        } else {
            burrow_error_set(err, "unknown key '%s' (keys: vid, pid, serial, name)", part);
            return -1;
        }
        if (!*val || strlen(val) >= cap) {
            burrow_error_set(err, "%s must have 1 to %zu characters", part, cap - 1);
            return -1;
        }
        snprintf(dst, cap, "%s", val);
    }
    const char *why = usb_filter_fault(f);
    if (why) {
        burrow_error_set(err, "%s", why);
        return -1;
    }
    return 0;
}

void burrow_usb_filter_option(const struct burrow_usb_filter *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s%s%s%s", f->vid[0] ? "vid=" : "", f->vid,
             f->vid[0] && (f->pid[0] || f->serial[0]) ? "," : "", f->pid[0] ? "pid=" : "", f->pid,
             f->pid[0] && f->serial[0] ? "," : "", f->serial[0] ? "serial=" : "", f->serial);
}

static int check(const struct burrow_vmdef *d, const struct linemap *lm, const char *file,
                 struct burrow_error *err)
{
    static const struct linemap none;
    if (!lm)
        lm = &none;
    struct burrow_error nerr;
    if (!burrow_name_valid(d->name, &nerr))
        return fail_at(err, file, lm->name, "name", "%s", nerr.msg);
    if (!uuid_valid(d->uuid))
        return fail_at(err, file, lm->uuid, "uuid", "'%s' is not a UUID", d->uuid);
    if (!burrow_ostype_find(d->os))
        return fail_at(err, file, lm->os, "os", "unknown OS type '%s' (see 'burrow create --help')",
                       d->os);
    if (d->memory_mib < BURROW_MEMORY_MIN || d->memory_mib > BURROW_MEMORY_MAX)
        return fail_at(err, file, lm->memory, "memory",
                       "memory %u MiB is out of range (%d to %d MiB)", d->memory_mib,
                       BURROW_MEMORY_MIN, BURROW_MEMORY_MAX);
    if (d->cpus < 1 || d->cpus > BURROW_CPUS_MAX)
        return fail_at(err, file, lm->cpus, "cpus", "%u CPUs is out of range (1 to %d)", d->cpus,
                       BURROW_CPUS_MAX);
    if (d->boot[0] && !vmdef_boot_valid(d->boot))
        return fail_at(err, file, lm->boot, "boot",
                       "boot order '%s' is not made of c (disk), d (cdrom), n (network), "
                       "each at most once", d->boot);
    if (!one_of(d->audio, audios))
        return fail_at(err, file, lm->audio, "audio", "audio '%s' is not one of pa, none, off", d->audio);
    if (d->audio_in && !strcmp(d->audio, "off"))
        return fail_at(err, file, lm->audio_in, "audio-in",
                       "a microphone (audio-in on) needs a sound card (audio pa or none)");
    if (!one_of(d->display, displays))
        return fail_at(err, file, lm->display, "display",
                       "display '%s' is not one of sdl, vnc, none", d->display);
    if (d->vnc_listen[0] && !vmdef_listen_valid(d->vnc_listen))
        return fail_at(err, file, lm->vnc_listen, "vnc-listen",
                       "'%s' is not HOST:PORT (port 1-65535)", d->vnc_listen);
    if (!strcmp(d->display, "vnc") && !d->vnc_listen[0])
        return fail_at(err, file, lm->display, "display",
                       "display vnc needs vnc-listen=HOST:PORT");
    if (strchr(d->cdrom, '\n'))
        return fail_at(err, file, lm->cdrom, "cdrom", "paths cannot contain line breaks");
    if (strchr(d->vnc_password_file, '\n'))
        return fail_at(err, file, lm->vnc_pw, "vnc-password-file",
                       "paths cannot contain line breaks");
    if (d->ndisks > BURROW_MAX_DISKS)
        return fail_at(err, file, lm->end, "disks", "at most %d disks", BURROW_MAX_DISKS);
    unsigned nusb = 0;
    for (unsigned i = 0; i < d->ndisks; i++) {
        const struct burrow_disk *k = &d->disks[i];
        char field[32];
        snprintf(field, sizeof(field), "disk %u", i);
        if (!k->path[0])
            return fail_at(err, file, lm->disk[i], field, "a disk needs a path");
        if (strchr(k->path, ',') || strchr(k->path, '\n'))
            return fail_at(err, file, lm->disk_path[i], field,
                           "disk path '%s' cannot contain ',' or line breaks", k->path);
        if (!one_of(k->interface, disk_ifs))
            return fail_at(err, file, lm->disk_if[i], field,
                           "interface '%s' is not one of virtio, sata, usb", k->interface);
        if (!strcmp(k->interface, "usb")) {
            if (!d->usb)
                return fail_at(err, file, lm->disk_if[i], field,
                               "a USB disk needs usb=on in [vm]");
            if (++nusb > BURROW_MAX_USB_DISKS)
                return fail_at(err, file, lm->disk_if[i], field, "at most %d USB disks",
                               BURROW_MAX_USB_DISKS);
        }
        if (!one_of(k->format, disk_fmts))
            return fail_at(err, file, lm->disk_fmt[i], field, "'%s' is a %s image, which Burrow cannot "
                           "read (the formats it reads: raw, qcow2, and read-only vdi, vmdk, vhd, vhdx)",
                           k->path, k->format);
        if (one_of(k->format, ro_fmts) && !k->readonly) {
            char cmd[400] = "burrow disk convert ...";
#ifdef HAVE_DISK_API
            disk_convert_command(k->path, cmd, sizeof(cmd));
#endif
            return fail_at(err, file, lm->disk_fmt[i], field, "'%s' is a %s image, which Burrow reads but "
                           "does not write: attach it read-only, or convert it with '%s' and attach that",
                           k->path, k->format, cmd);
        }
        /* one image on two drives is two writers */
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(d->disks[j].path, k->path))
                return fail_at(err, file, lm->disk_path[i], field,
                               "'%s' is already disk %u: attach an image once", k->path, j);
        if (!strcmp(d->cdrom, k->path))
            return fail_at(err, file, lm->disk_path[i], field,
                           "'%s' is also the CD/DVD drive's medium: attach an image once", k->path);
    }
    if (d->nnics > BURROW_MAX_NICS)
        return fail_at(err, file, lm->end, "nics", "at most %d network adapters", BURROW_MAX_NICS);
    for (unsigned i = 0; i < d->nnics; i++) {
        const struct burrow_nic *n = &d->nics[i];
        char field[32];
        snprintf(field, sizeof(field), "nic %u", i);
        if (!one_of(n->mode, nic_modes))
            return fail_at(err, file, lm->nic_mode[i], field, "mode '%s' is not user", n->mode);
        if (!one_of(n->model, nic_models))
            return fail_at(err, file, lm->nic_model[i], field,
                           "model '%s' is not one of virtio, e1000", n->model);
        if (n->mac[0] && !vmdef_mac_valid(n->mac))
            return fail_at(err, file, lm->nic_mac[i], field,
                           "'%s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)", n->mac);
        if (n->nhostfwd > BURROW_MAX_HOSTFWD)
            return fail_at(err, file, lm->nic_fwd[i], field, "at most %d port forwards",
                           BURROW_MAX_HOSTFWD);
        for (unsigned j = 0; j < n->nhostfwd; j++)
            if (!vmdef_hostfwd_valid(n->hostfwd[j]))
                return fail_at(err, file, lm->nic_fwd[i], field,
                               "port forward '%s' is not tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT",
                               n->hostfwd[j]);
    }
    if (d->nusb_filters > BURROW_MAX_USB_FILTERS)
        return fail_at(err, file, lm->end, "usb-filters", "at most %d USB filters", BURROW_MAX_USB_FILTERS);
    for (unsigned i = 0; i < d->nusb_filters; i++) {
        char field[32];
        snprintf(field, sizeof(field), "usb-filter %u", i);
        const char *why = usb_filter_fault(&d->usb_filters[i]);
        if (why)
            return fail_at(err, file, lm->usbf[i], field, "%s", why);
        if (!d->usb)
            return fail_at(err, file, lm->usbf[i], field, "USB filters need usb=on in [vm]");
    }
    /* Two forwards of one host port cannot both be set up, in one NIC or
     * in two: each takes the port on the host. */
    for (unsigned i = 0; i < d->nnics; i++)
        for (unsigned j = 0; j < d->nics[i].nhostfwd; j++)
            for (unsigned k = i; k < d->nnics; k++)
                for (unsigned l = k == i ? j + 1 : 0; l < d->nics[k].nhostfwd; l++)
                    if (vmdef_hostfwd_clash(d->nics[i].hostfwd[j], d->nics[k].hostfwd[l])) {
                        char field[32];
                        snprintf(field, sizeof(field), "nic %u", k);
                        return fail_at(err, file, lm->nic_fwd[k], field,
                                       "port forwards '%s' and '%s' take the same host port",
                                       d->nics[i].hostfwd[j], d->nics[k].hostfwd[l]);
                    }
    return 0;
}

int burrow_vmdef_validate(const struct burrow_vmdef *def, struct burrow_error *err)
{
    return check(def, NULL, NULL, err);
}

void vmdef_init(struct burrow_vmdef *def, const char *name, const struct burrow_ostype *os)
{
    memset(def, 0, sizeof(*def));
    if (!os)
        os = burrow_ostype_default();
    snprintf(def->name, sizeof(def->name), "%s", name);
    vmdef_random_uuid(def->uuid);
    snprintf(def->os, sizeof(def->os), "%s", os->id);
    def->memory_mib = os->memory_mib;
    def->cpus = os->cpus;
    snprintf(def->display, sizeof(def->display), "%s", os->display);
    def->usb = true;
    snprintf(def->audio, sizeof(def->audio), "%s", os->audio);
}

/* ---- what the host can give -------------------------------------------------------- */

static unsigned long long meminfo_mib(const char *text, const char *key)
{
    const char *p = text ? strstr(text, key) : NULL;
    if (!p)
        return 0;
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    return strtoull(p, NULL, 10) / 1024;   /* kB */
}

void vmdef_host_query(struct vmdef_host *h)
{
    memset(h, 0, sizeof(*h));
    char *mi = read_file("/proc/meminfo", NULL);
    h->ram_mib = meminfo_mib(mi, "MemTotal:");
    h->swap_mib = meminfo_mib(mi, "SwapTotal:");
    free(mi);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    h->online_cpus = n > 0 ? (unsigned)n : 0;
    struct kvmdev_probe probe;
    kvmdev_probe_init(&probe);
    int fd = kvmdev_open(&probe);
    if (fd >= 0) {
        int max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
        if (max <= 0)
            max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
        h->kvm_max_vcpus = max > 0 ? (unsigned)max : 0;
        close(fd);
    }
}

enum vmdef_fit vmdef_memory_fit(const struct vmdef_host *h, unsigned long long mib, char *why,
                                size_t len)
{
    why[0] = '\0';
    if (mib > BURROW_MEMORY_MAX) {
        snprintf(why, len, "more than the machine takes (%d MiB)", BURROW_MEMORY_MAX);
        return VMDEF_FIT_NO;
    }
    if (!h->ram_mib)
        return VMDEF_FITS;
    if (mib > h->ram_mib + h->swap_mib) {
        if (h->swap_mib)
            snprintf(why, len, "more than this host's RAM and swap together (%llu MiB + %llu MiB)",
                     h->ram_mib, h->swap_mib);
        else
            snprintf(why, len, "more than this host's RAM (%llu MiB), and it has no swap",
                     h->ram_mib);
        return VMDEF_FIT_NO;
    }
    if (mib > h->ram_mib) {
        snprintf(why, len, "more than this host's RAM (%llu MiB): the host will swap", h->ram_mib);
        return VMDEF_FIT_WARN;
    }
    return VMDEF_FITS;
}

enum vmdef_fit vmdef_cpus_fit(const struct vmdef_host *h, unsigned cpus, char *why, size_t len)
{
    why[0] = '\0';
    if (cpus > BURROW_CPUS_MAX) {
        snprintf(why, len, "more than the machine supports (%d)", BURROW_CPUS_MAX);
        return VMDEF_FIT_NO;
    }
    if (h->kvm_max_vcpus && cpus > h->kvm_max_vcpus) {
        snprintf(why, len, "more than KVM allows on this host (%u)", h->kvm_max_vcpus);
        return VMDEF_FIT_NO;
    }
    if (h->online_cpus && cpus > h->online_cpus) {
        snprintf(why, len, "more than this host's %u online CPU%s: they will take turns",
                 h->online_cpus, h->online_cpus > 1 ? "s" : "");
        return VMDEF_FIT_WARN;
    }
    return VMDEF_FITS;
}

/* ---- parsing ------------------------------------------------------------------ */

/* The file's structure as written, with line numbers: GKeyFile parses the
 * values, but keeps no lines, and merges what a hand edit may have
 * duplicated by mistake. */
struct scan_entry {
    char *group;
    char *key;       /* NULL: the group's header */
    int line;
};

struct scan {
    struct scan_entry *e;
    size_t n, cap;
    int lines;
};

static void scan_free(struct scan *s)
{
    for (size_t i = 0; i < s->n; i++) {
        g_free(s->e[i].group);
        g_free(s->e[i].key);
    }
    g_free(s->e);
}

static int scan_find(const struct scan *s, const char *group, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].group, group) &&
            ((!key && !s->e[i].key) || (key && s->e[i].key && !strcmp(s->e[i].key, key))))
            return s->e[i].line;
    return 0;
}

static void scan_add(struct scan *s, const char *group, const char *key, int line)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->e = g_renew(struct scan_entry, s->e, s->cap);
    }
    s->e[s->n].group = g_strdup(group);
    s->e[s->n].key = key ? g_strdup(key) : NULL;
    s->e[s->n].line = line;
    s->n++;
}

static int scan_text(const char *text, size_t len, const char *file, struct scan *s,
                     struct burrow_error *err)
{
    char *group = NULL;
    int line = 0;
    const char *p = text, *end = text + len;
    int rc = 0;
    if (memchr(text, '\0', len)) {
        return fail_at(err, file, 0, NULL, "not a text file (contains NUL bytes)");
    }
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        char *l = g_strndup(p, (size_t)(le - p));
        g_strstrip(l);
        if (!*l || *l == '#') {
            /* blank or comment */
        } else if (*l == '[') {
            size_t n = strlen(l);
            if (n < 3 || l[n - 1] != ']' || strpbrk(l + 1, "[") || memchr(l + 1, ']', n - 2)) {
                rc = fail_at(err, file, line, NULL, "'%s' is not a [group] header", l);
            } else {
                g_free(group);
                group = g_strndup(l + 1, n - 2);
                if (scan_find(s, group, NULL))
                    rc = fail_at(err, file, line, NULL, "group [%s] appears twice (first on line %d)",
                                 group, scan_find(s, group, NULL));
                else
                    scan_add(s, group, NULL, line);
            }
        } else {
            char *eq = strchr(l, '=');
            if (!eq || eq == l) {
                rc = fail_at(err, file, line, NULL, "'%s' is not KEY=VALUE, a [group] or a # comment", l);
            } else if (!group) {
                rc = fail_at(err, file, line, NULL, "'%s' comes before any [group]", l);
            } else {
                *eq = '\0';
                g_strchomp(l);
                int first = scan_find(s, group, l);
                if (first)
                    rc = fail_at(err, file, line, NULL, "key '%s' appears twice in [%s] (first on line %d)",
                                 l, group, first);
                else
                    scan_add(s, group, l, line);
            }
        }
        g_free(l);
        p = nl ? nl + 1 : end;
    }
    g_free(group);
    s->lines = line;
    return rc;
}

/* Copies a string value; too long for its field is an error. */
static int get_str(GKeyFile *kf, const struct scan *s, const char *file, const char *group,
                   const char *key, char *out, size_t outlen, bool required, int *linep,
                   struct burrow_error *err)
{
    int line = scan_find(s, group, key);
    if (linep)
        *linep = line;
    if (!line) {
        if (required)
            return fail_at(err, file, scan_find(s, group, NULL), NULL, "[%s] lacks the key '%s'",
                           group, key);
        return 0;
    }
    GError *ge = NULL;
    gchar *v = g_key_file_get_string(kf, group, key, &ge);
    if (!v) {
        fail_at(err, file, line, NULL, "%s: %s", key, ge ? ge->message : "unreadable value");
        g_clear_error(&ge);
        return -1;
    }
    if (strlen(v) >= outlen) {
        g_free(v);
        return fail_at(err, file, line, NULL, "%s: value too long (at most %zu bytes)", key,
                       outlen - 1);
    }
    snprintf(out, outlen, "%s", v);
    g_free(v);
    return 0;
}

static int get_uint(GKeyFile *kf, const struct scan *s, const char *file, const char *group,
                    const char *key, unsigned min, unsigned max, unsigned *out, int *linep,
                    struct burrow_error *err)
{
    char buf[32];
    if (get_str(kf, s, file, group, key, buf, sizeof(buf), true, linep, err) < 0)
        return -1;
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (!buf[0] || *e || errno || !isdigit((unsigned char)buf[buf[0] == '-' ? 1 : 0]))
        return fail_at(err, file, *linep, NULL, "%s: '%s' is not a whole number", key, buf);
    if (v < (long long)min || v > (long long)max)
        return fail_at(err, file, *linep, NULL, "%s: %lld is out of range (%u to %u)", key, v, min,
                       max);
    *out = (unsigned)v;
    return 0;
}

static int get_bool(GKeyFile *kf, const struct scan *s, const char *file, const char *group,
                    const char *key, bool *out, struct burrow_error *err)
{
    char buf[16] = "";
    int line;
    if (get_str(kf, s, file, group, key, buf, sizeof(buf), false, &line, err) < 0)
        return -1;
    if (!line)
        return 0;
    if (!strcmp(buf, "true"))
        *out = true;
    else if (!strcmp(buf, "false"))
        *out = false;
    else
        return fail_at(err, file, line, NULL, "%s: '%s' is not true or false", key, buf);
    return 0;
}

static const char *const keys_burrow[] = { "format", NULL };
static const char *const keys_vm[] = { "name", "uuid", "os", "memory", "cpus", "boot", "usb", "audio",
                                       "audio-in", NULL };
static const char *const keys_display[] = { "type", "vnc-listen", "vnc-password-file", NULL };
static const char *const keys_cdrom[] = { "path", NULL };
static const char *const keys_disk[] = { "path", "interface", "format", "readonly", NULL };
static const char *const keys_nic[] = { "mode", "model", "mac", "hostfwd", NULL };
static const char *const keys_usbf[] = { "name", "vid", "pid", "serial", NULL };

/* "disk 3" -> 3 when prefix is "disk" and 0 <= 3 < max; else -1. */
static int indexed_group(const char *group, const char *prefix, int max)
{
    size_t n = strlen(prefix);
    if (strncmp(group, prefix, n) || group[n] != ' ' || !isdigit((unsigned char)group[n + 1]))
        return -1;
    char *e;
    long v = strtol(group + n + 1, &e, 10);
    if (*e || v < 0 || v >= max || (group[n + 1] == '0' && group[n + 2]))
        return -1;
    return (int)v;
}

int vmdef_parse(const char *text, size_t len, const char *file, const char *expect_name,
                struct burrow_vmdef *def, struct burrow_error *err)
{
    struct scan s = { 0 };
    struct linemap lm = { 0 };
    GKeyFile *kf = NULL;
    int rc = -1;
    memset(def, 0, sizeof(*def));
    if (scan_text(text, len, file, &s, err) < 0)
        goto out;
    lm.end = s.lines;

    /* Every group and key must be known. */
    int disk_line[BURROW_MAX_DISKS] = { 0 }, nic_line[BURROW_MAX_NICS] = { 0 };
    int usbf_line[BURROW_MAX_USB_FILTERS] = { 0 };
    for (size_t i = 0; i < s.n; i++) {
        const struct scan_entry *e = &s.e[i];
        const char *const *keys = NULL;
        int di = indexed_group(e->group, "disk", BURROW_MAX_DISKS);
        int ni = indexed_group(e->group, "nic", BURROW_MAX_NICS);
        int fi = indexed_group(e->group, "usb-filter", BURROW_MAX_USB_FILTERS);
        if (!strcmp(e->group, "burrow"))
            keys = keys_burrow;
        else if (!strcmp(e->group, "vm"))
            keys = keys_vm;
        else if (!strcmp(e->group, "display"))
            keys = keys_display;
        else if (!strcmp(e->group, "cdrom"))
            keys = keys_cdrom;
        else if (di >= 0)
            keys = keys_disk;
        else if (ni >= 0)
            keys = keys_nic;
        else if (fi >= 0)
            keys = keys_usbf;
        if (!keys) {
            fail_at(err, file, e->line, NULL, "unknown group [%s] (known: burrow, vm, display, "
                    "cdrom, disk 0-%d, nic 0-%d, usb-filter 0-%d)", e->group, BURROW_MAX_DISKS - 1,
                    BURROW_MAX_NICS - 1, BURROW_MAX_USB_FILTERS - 1);
            goto out;
        }
        if (!e->key) {
            if (di >= 0)
                disk_line[di] = e->line;
            if (ni >= 0)
                nic_line[ni] = e->line;
            if (fi >= 0)
                usbf_line[fi] = e->line;
            continue;
        }
        if (!one_of(e->key, keys)) {
            fail_at(err, file, e->line, NULL, "unknown key '%s' in [%s]", e->key, e->group);
            goto out;
        }
    }

    kf = g_key_file_new();
    GError *ge = NULL;
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_KEEP_COMMENTS, &ge)) {
        fail_at(err, file, 0, NULL, "%s", ge->message);
        g_clear_error(&ge);
        goto out;
    }

    int line;
    unsigned format;
    if (!scan_find(&s, "burrow", NULL)) {
        fail_at(err, file, 1, NULL, "no [burrow] group with format=%d: not a Burrow VM definition",
                VMDEF_FORMAT);
        goto out;
    }
    if (get_uint(kf, &s, file, "burrow", "format", 1, INT_MAX, &format, &line, err) < 0)
        goto out;
    if (format != VMDEF_FORMAT) {
        fail_at(err, file, line, NULL, "format %u is newer than this version of Burrow reads (%d)",
                format, VMDEF_FORMAT);
        goto out;
    }
    if (!scan_find(&s, "vm", NULL)) {
        fail_at(err, file, s.lines, NULL, "no [vm] group");
        goto out;
    }
    if (get_str(kf, &s, file, "vm", "name", def->name, sizeof(def->name), true, &lm.name, err) < 0 ||
        get_str(kf, &s, file, "vm", "uuid", def->uuid, sizeof(def->uuid), false, &lm.uuid, err) < 0 ||
        get_str(kf, &s, file, "vm", "os", def->os, sizeof(def->os), true, &lm.os, err) < 0 ||
        get_uint(kf, &s, file, "vm", "memory", BURROW_MEMORY_MIN, BURROW_MEMORY_MAX,
                 &def->memory_mib, &lm.memory, err) < 0 ||
        get_uint(kf, &s, file, "vm", "cpus", 1, BURROW_CPUS_MAX, &def->cpus, &lm.cpus, err) < 0 ||
        get_str(kf, &s, file, "vm", "boot", def->boot, sizeof(def->boot), false, &lm.boot, err) < 0)
        goto out;
    char usb[8] = "on";
    int usb_line = 0;
    if (get_str(kf, &s, file, "vm", "usb", usb, sizeof(usb), false, &usb_line, err) < 0)
        goto out;
    if (strcmp(usb, "on") && strcmp(usb, "off")) {
        fail_at(err, file, usb_line, NULL, "usb: '%s' is not on or off", usb);
        goto out;
    }
    def->usb = !strcmp(usb, "on");
    /* Definitions from before sound cards have none. */
    snprintf(def->audio, sizeof(def->audio), "off");
    char audio_in[8] = "off";
    if (get_str(kf, &s, file, "vm", "audio", def->audio, sizeof(def->audio), false, &lm.audio, err) < 0 ||
        get_str(kf, &s, file, "vm", "audio-in", audio_in, sizeof(audio_in), false, &lm.audio_in, err) < 0)
        goto out;
    if (strcmp(audio_in, "on") && strcmp(audio_in, "off")) {
        fail_at(err, file, lm.audio_in, NULL, "audio-in: '%s' is not on or off", audio_in);
        goto out;
    }
    def->audio_in = !strcmp(audio_in, "on");
    struct burrow_error nerr;
    if (!burrow_name_valid(def->name, &nerr)) {
        fail_at(err, file, lm.name, NULL, "%s", nerr.msg);
        goto out;
    }
    if (expect_name && strcmp(def->name, expect_name)) {
        fail_at(err, file, lm.name, NULL, "name '%s' does not match the VM's directory '%s'",
                def->name, expect_name);
        goto out;
    }

    snprintf(def->display, sizeof(def->display), "sdl");
    if (get_str(kf, &s, file, "display", "type", def->display, sizeof(def->display), false,
                &lm.display, err) < 0 ||
        get_str(kf, &s, file, "display", "vnc-listen", def->vnc_listen, sizeof(def->vnc_listen),
                false, &lm.vnc_listen, err) < 0 ||
        get_str(kf, &s, file, "display", "vnc-password-file", def->vnc_password_file,
                sizeof(def->vnc_password_file), false, &lm.vnc_pw, err) < 0 ||
        get_str(kf, &s, file, "cdrom", "path", def->cdrom, sizeof(def->cdrom), false, &lm.cdrom,
                err) < 0)
        goto out;

    for (int i = 0; i < BURROW_MAX_DISKS; i++) {
        if (!disk_line[i])
            continue;
        unsigned k = def->ndisks++;
        struct burrow_disk *d = &def->disks[k];
        char g[16];
        snprintf(g, sizeof(g), "disk %d", i);
        lm.disk[k] = disk_line[i];
        snprintf(d->interface, sizeof(d->interface), "virtio");
        snprintf(d->format, sizeof(d->format), "raw");
        if (get_str(kf, &s, file, g, "path", d->path, sizeof(d->path), true, &lm.disk_path[k], err) < 0 ||
            get_str(kf, &s, file, g, "interface", d->interface, sizeof(d->interface), false,
                    &lm.disk_if[k], err) < 0 ||
            get_str(kf, &s, file, g, "format", d->format, sizeof(d->format), false, &lm.disk_fmt[k],
                    err) < 0 ||
            get_bool(kf, &s, file, g, "readonly", &d->readonly, err) < 0)
            goto out;
    }
    for (int i = 0; i < BURROW_MAX_NICS; i++) {
        if (!nic_line[i])
            continue;
        unsigned k = def->nnics++;
        struct burrow_nic *n = &def->nics[k];
        char g[16];
        snprintf(g, sizeof(g), "nic %d", i);
        lm.nic[k] = nic_line[i];
        snprintf(n->mode, sizeof(n->mode), "user");
        snprintf(n->model, sizeof(n->model), "virtio");
        if (get_str(kf, &s, file, g, "mode", n->mode, sizeof(n->mode), false, &lm.nic_mode[k], err) < 0 ||
            get_str(kf, &s, file, g, "model", n->model, sizeof(n->model), false, &lm.nic_model[k],
                    err) < 0 ||
            get_str(kf, &s, file, g, "mac", n->mac, sizeof(n->mac), false, &lm.nic_mac[k], err) < 0)
            goto out;
        lm.nic_fwd[k] = scan_find(&s, g, "hostfwd");
        if (lm.nic_fwd[k]) {
            gsize count = 0;
            gchar **list = g_key_file_get_string_list(kf, g, "hostfwd", &count, NULL);
            if (count > BURROW_MAX_HOSTFWD) {
                g_strfreev(list);
                fail_at(err, file, lm.nic_fwd[k], NULL, "hostfwd: at most %d rules",
                        BURROW_MAX_HOSTFWD);
                goto out;
            }
            for (gsize j = 0; j < count; j++) {
                if (strlen(list[j]) >= sizeof(n->hostfwd[0])) {
                    g_strfreev(list);
                    fail_at(err, file, lm.nic_fwd[k], NULL, "hostfwd: rule too long");
                    goto out;
                }
                snprintf(n->hostfwd[n->nhostfwd++], sizeof(n->hostfwd[0]), "%s", list[j]);
            }
            g_strfreev(list);
        }
    }
    for (int i = 0; i < BURROW_MAX_USB_FILTERS; i++) {
        if (!usbf_line[i])
            continue;
        unsigned k = def->nusb_filters++;
        struct burrow_usb_filter *f = &def->usb_filters[k];
        char g[24];
        snprintf(g, sizeof(g), "usb-filter %d", i);
        lm.usbf[k] = usbf_line[i];
        int line_;
        if (get_str(kf, &s, file, g, "name", f->name, sizeof(f->name), false, &line_, err) < 0 ||
            get_str(kf, &s, file, g, "vid", f->vid, sizeof(f->vid), false, &line_, err) < 0 ||
            get_str(kf, &s, file, g, "pid", f->pid, sizeof(f->pid), false, &line_, err) < 0 ||
            get_str(kf, &s, file, g, "serial", f->serial, sizeof(f->serial), false, &line_, err) < 0)
            goto out;
        /* Ids as 4 lowercase digits, however they were written. */
        if (f->vid[0] && usb_id_valid(f->vid))
            snprintf(f->vid, sizeof(f->vid), "%04lx", strtoul(f->vid, NULL, 16));
        if (f->pid[0] && usb_id_valid(f->pid))
            snprintf(f->pid, sizeof(f->pid), "%04lx", strtoul(f->pid, NULL, 16));
    }
    rc = check(def, &lm, file, err);
out:
    if (kf)
        g_key_file_free(kf);
    scan_free(&s);
    return rc;
}

char *vmdef_format(const struct burrow_vmdef *d, size_t *len)
{
    GKeyFile *kf = g_key_file_new();
    g_key_file_set_integer(kf, "burrow", "format", VMDEF_FORMAT);
    g_key_file_set_comment(kf, NULL, NULL,
                           " Burrow virtual machine definition.  Change it with 'burrow modify',\n"
                           " or edit it while the VM is stopped; 'burrow show' checks it.", NULL);
    g_key_file_set_string(kf, "vm", "name", d->name);
    if (d->uuid[0])
        g_key_file_set_string(kf, "vm", "uuid", d->uuid);
    g_key_file_set_string(kf, "vm", "os", d->os);
    g_key_file_set_integer(kf, "vm", "memory", (gint)d->memory_mib);
    g_key_file_set_integer(kf, "vm", "cpus", (gint)d->cpus);
    if (d->boot[0])
        g_key_file_set_string(kf, "vm", "boot", d->boot);
    g_key_file_set_string(kf, "vm", "usb", d->usb ? "on" : "off");
    g_key_file_set_string(kf, "vm", "audio", d->audio);
    g_key_file_set_string(kf, "vm", "audio-in", d->audio_in ? "on" : "off");
    g_key_file_set_string(kf, "display", "type", d->display);
    if (d->vnc_listen[0])
        g_key_file_set_string(kf, "display", "vnc-listen", d->vnc_listen);
    if (d->vnc_password_file[0])
        g_key_file_set_string(kf, "display", "vnc-password-file", d->vnc_password_file);
    if (d->cdrom[0])
        g_key_file_set_string(kf, "cdrom", "path", d->cdrom);
    for (unsigned i = 0; i < d->ndisks && i < BURROW_MAX_DISKS; i++) {
        char g[16];
        snprintf(g, sizeof(g), "disk %u", i);
        g_key_file_set_string(kf, g, "path", d->disks[i].path);
        g_key_file_set_string(kf, g, "interface", d->disks[i].interface);
        g_key_file_set_string(kf, g, "format", d->disks[i].format);
        g_key_file_set_boolean(kf, g, "readonly", d->disks[i].readonly);
    }
    for (unsigned i = 0; i < d->nnics && i < BURROW_MAX_NICS; i++) {
        const struct burrow_nic *n = &d->nics[i];
        char g[16];
        snprintf(g, sizeof(g), "nic %u", i);
        g_key_file_set_string(kf, g, "mode", n->mode);
        g_key_file_set_string(kf, g, "model", n->model);
        if (n->mac[0])
            g_key_file_set_string(kf, g, "mac", n->mac);
        if (n->nhostfwd) {
            const gchar *list[BURROW_MAX_HOSTFWD];
            unsigned cnt = n->nhostfwd < BURROW_MAX_HOSTFWD ? n->nhostfwd : BURROW_MAX_HOSTFWD;
            for (unsigned j = 0; j < cnt; j++)
                list[j] = n->hostfwd[j];
            g_key_file_set_string_list(kf, g, "hostfwd", list, cnt);
        }
    }
    for (unsigned i = 0; i < d->nusb_filters && i < BURROW_MAX_USB_FILTERS; i++) {
        const struct burrow_usb_filter *f = &d->usb_filters[i];
        char g[24];
        snprintf(g, sizeof(g), "usb-filter %u", i);
        if (f->name[0])
            g_key_file_set_string(kf, g, "name", f->name);
        if (f->vid[0])
            g_key_file_set_string(kf, g, "vid", f->vid);
        if (f->pid[0])
            g_key_file_set_string(kf, g, "pid", f->pid);
        if (f->serial[0])
            g_key_file_set_string(kf, g, "serial", f->serial);
    }
    gsize n = 0;
    gchar *text = g_key_file_to_data(kf, &n, NULL);
    g_key_file_free(kf);
    if (len)
        *len = n;
    return text;
}

int vmdef_load(const char *path, const char *expect_name, struct burrow_vmdef *def,
               struct stat *st, struct burrow_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            burrow_error_set(err, "%s: no such file (is '%s' a Burrow VM?)", path,
                             expect_name ? expect_name : "?");
        else
            burrow_error_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > 1024 * 1024) {
        close(fd);
        burrow_error_set(err, "%s: not a regular file of reasonable size", path);
        return -1;
    }
    close(fd);
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        burrow_error_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = vmdef_parse(text, len, path, expect_name, def, err);
    free(text);
    if (rc == 0 && st)
        *st = sb;
    return rc;
}

int vmdef_save(const char *path, const struct burrow_vmdef *def, struct burrow_error *err)
{
    if (burrow_vmdef_validate(def, err) < 0)
        return -1;
    size_t len;
    char *text = vmdef_format(def, &len);
    int rc = write_file_atomic(path, text, len, 0644, err);
    g_free(text);
    return rc;
}

const char *vmdef_detect_format(const char *path)
{
#ifdef HAVE_DISK_API
    return disk_detect_format(path);
#else
    unsigned char magic[4] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, magic, 4) != 4)
            memset(magic, 0, sizeof(magic));
        close(fd);
    }
    /* "QFI\xfb": the qcow2 header's magic. */
    return memcmp(magic, "QFI\xfb", 4) ? "raw" : "qcow2";
#endif
}

/* ---- the repository: VMs as directories ---------------------------------------------- */

const char *burrow_vm_name(const struct burrow_vm *vm)
{
    return vm->def.name;
}

struct burrow_vmdef *burrow_vm_def(struct burrow_vm *vm)
{
    return &vm->def;
}

const char *burrow_vm_dir(const struct burrow_vm *vm)
{
    return vm->paths.dir;
}

const char *burrow_vm_console_path(const struct burrow_vm *vm)
{
    return vm->paths.console;
}

const char *burrow_vm_control_path(const struct burrow_vm *vm)
{
    return vm->paths.control;
}

const char *burrow_vm_log_path(const struct burrow_vm *vm)
{
    return vm->paths.log;
}

static int resolve_disk(const char *dir, const char *path, char *buf, size_t len)
{
    int n = path[0] == '/' ? snprintf(buf, len, "%s", path) : snprintf(buf, len, "%s/%s", dir, path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int burrow_vm_disk_path(const struct burrow_vm *vm, unsigned i, char *buf, size_t len)
{
    if (i >= vm->def.ndisks)
        return -1;
    return resolve_disk(vm->paths.dir, vm->def.disks[i].path, buf, len);
}

void burrow_vm_free(struct burrow_vm *vm)
{
    free(vm);
}

static void remember_stat(struct burrow_vm *vm, const struct stat *st)
{
    vm->have_stat = true;
    vm->dev = st->st_dev;
    vm->ino = st->st_ino;
    vm->mtime = st->st_mtim;
    vm->size = st->st_size;
}

struct burrow_vm *burrow_vm_load(const char *name, struct burrow_error *err)
{
    struct burrow_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    if (vm_paths_get(name, &vm->paths, err) < 0)
        goto fail;
    struct stat st;
    if (access(vm->paths.dir, F_OK) < 0) {
        burrow_error_set(err, "no VM named '%s'", name);
        goto fail;
    }
    if (vmdef_load(vm->paths.def, name, &vm->def, &st, err) < 0)
        goto fail;
    remember_stat(vm, &st);
    return vm;
fail:
    free(vm);
    return NULL;
}

static bool stat_differs(const struct burrow_vm *vm, const struct stat *st)
{
    return vm->have_stat && (st->st_dev != vm->dev || st->st_ino != vm->ino || st->st_size != vm->size ||
                             st->st_mtim.tv_sec != vm->mtime.tv_sec || st->st_mtim.tv_nsec != vm->mtime.tv_nsec);
}

bool burrow_vm_stale(const struct burrow_vm *vm)
{
    struct stat st;
    return stat(vm->paths.def, &st) < 0 || stat_differs(vm, &st);
}

int burrow_vm_save(struct burrow_vm *vm, struct burrow_error *err)
{
    if (burrow_vmdef_validate(&vm->def, err) < 0)
        return -1;
    if (strcmp(vm->def.name, strrchr(vm->paths.dir, '/') + 1)) {
        burrow_error_set(err, "a VM's name cannot be changed by editing its definition");
        return -1;
    }
    int lk = lock_file(vm->paths.lock, EDIT_LOCK_TIMEOUT_MS, err);
    if (lk < 0)
        return -1;
    int rc = -1;
    struct stat st;
    if (stat(vm->paths.def, &st) < 0) {
        burrow_error_set(err, "%s: %s (was the VM deleted?)", vm->paths.def, strerror(errno));
        goto out;
    }
    if (stat_differs(vm, &st)) {
        burrow_error_set(err, "%s changed since it was loaded (another program saved it); "
                         "reload and try again", vm->paths.def);
        if (err)
            snprintf(err->cls, sizeof(err->cls), "conflict");
        goto out;
    }
    if (vmdef_save(vm->paths.def, &vm->def, err) < 0)
        goto out;
    if (stat(vm->paths.def, &st) == 0)
        remember_stat(vm, &st);
    rc = 0;
out:
    close(lk);
    return rc;
}

int burrow_vm_modify(const char *name, burrow_vm_edit_fn edit, void *opaque, struct burrow_error *err)
{
    struct vm_paths p;
    if (vm_paths_get(name, &p, err) < 0)
        return -1;
    if (access(p.dir, F_OK) < 0) {
        burrow_error_set(err, "no VM named '%s'", name);
        return -1;
    }
    int lk = lock_file(p.lock, EDIT_LOCK_TIMEOUT_MS, err);
    if (lk < 0)
        return -1;
    int rc = -1;
    struct burrow_vmdef *def = malloc(sizeof(*def));
    if (!def) {
        burrow_error_set(err, "out of memory");
        goto out;
    }
    if (vmdef_load(p.def, name, def, NULL, err) < 0)
        goto out;
    if (edit(def, opaque, err) < 0)
        goto out;
    if (strcmp(def->name, name)) {
        burrow_error_set(err, "a VM's name cannot be changed by editing its definition");
        goto out;
    }
    rc = vmdef_save(p.def, def, err);
out:
    free(def);
    close(lk);
    return rc;
}

#ifndef HAVE_DISK_API
/* A new, empty raw image: a sparse file of size bytes. */
static int create_raw_sparse(const char *path, unsigned long long size, struct burrow_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        burrow_error_set(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
        burrow_error_set(err, "cannot size %s to %llu bytes: %s", path, size, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    return 0;
}
#endif

static int check_image(const char *what, const char *path, char *abs, size_t abslen,
                       struct burrow_error *err)
{
    char *r = realpath(path, NULL);
    if (!r) {
        burrow_error_set(err, "%s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (stat(r, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)))
        burrow_error_set(err, "%s '%s' is not a file", what, path);
    else if (access(r, R_OK) < 0)
        burrow_error_set(err, "%s '%s': %s", what, path, strerror(errno));
    else if (strlen(r) >= abslen)
        burrow_error_set(err, "%s '%s': path too long", what, path);
    else {
        snprintf(abs, abslen, "%s", r);
        rc = 0;
    }
    free(r);
    return rc;
}

/* Removes a directory tree we made (no symlinks followed). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[BURROW_PATH_MAX];
            if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
                continue;
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static int make_tmp_dir(const struct vm_paths *p, char *tmp, size_t len, struct burrow_error *err)
{
    char parent[BURROW_PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", p->dir);
    *strrchr(parent, '/') = '\0';
    if (mkdir_p(parent, 0700, err) < 0)
        return -1;
    /* A leading dot: never a valid VM name, so `list` skips it. */
    if (path_join(tmp, len, err, "%s/.new-%s.XXXXXX", parent, strrchr(p->dir, '/') + 1) < 0)
        return -1;
    if (!mkdtemp(tmp)) {
        burrow_error_set(err, "cannot create a directory in %s: %s", parent, strerror(errno));
        return -1;
    }
    return 0;
}

/* Moves the finished directory into place; never over an existing VM. */
static int publish_dir(const char *tmp, const struct vm_paths *p, const char *name,
                       struct burrow_error *err)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, p->dir, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            burrow_error_set(err, "a VM named '%s' already exists", name);
        else
            burrow_error_set(err, "cannot create %s: %s", p->dir, strerror(errno));
        return -1;
    }
    return 0;
}

struct burrow_vm *burrow_vm_create(const struct burrow_vm_config *cfg, struct burrow_error *err)
{
    if (!burrow_name_valid(cfg->name, err))
        return NULL;
    const struct burrow_ostype *os = cfg->os ? burrow_ostype_find(cfg->os) : burrow_ostype_default();
    if (!os) {
        burrow_error_set(err, "unknown OS type '%s' (see 'burrow create --help')", cfg->os);
        return NULL;
    }
    if (cfg->memory_mib < 0 || (cfg->memory_mib &&
        (cfg->memory_mib < BURROW_MEMORY_MIN || cfg->memory_mib > BURROW_MEMORY_MAX))) {
        burrow_error_set(err, "memory %lld MiB is out of range (%d to %d MiB)", cfg->memory_mib,
                         BURROW_MEMORY_MIN, BURROW_MEMORY_MAX);
        return NULL;
    }
    if (cfg->cpus < 0 || cfg->cpus > BURROW_CPUS_MAX) {
        burrow_error_set(err, "%lld CPUs is out of range (1 to %d)", cfg->cpus, BURROW_CPUS_MAX);
        return NULL;
    }
    if (cfg->disk && (cfg->disk_size || cfg->no_disk)) {
        burrow_error_set(err, "give an existing disk, a new disk's size, or no disk: not several");
        return NULL;
    }
    struct burrow_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    int lk = -1;
    char tmp[BURROW_PATH_MAX] = "";
    if (vm_paths_get(cfg->name, &vm->paths, err) < 0)
        goto fail;
    struct burrow_vmdef *d = &vm->def;
    vmdef_init(d, cfg->name, os);
    if (cfg->memory_mib)
        d->memory_mib = (unsigned)cfg->memory_mib;
    if (cfg->cpus)
        d->cpus = (unsigned)cfg->cpus;
    if (cfg->display)
        snprintf(d->display, sizeof(d->display), "%s", cfg->display);
    if (cfg->usb && strcmp(cfg->usb, "on") && strcmp(cfg->usb, "off")) {
        burrow_error_set(err, "usb '%s' is not on or off", cfg->usb);
        goto fail;
    }
    if (cfg->usb)
        d->usb = !strcmp(cfg->usb, "on");
    if (cfg->audio)
        snprintf(d->audio, sizeof(d->audio), "%s", cfg->audio);
    if (cfg->audio_in && strcmp(cfg->audio_in, "on") && strcmp(cfg->audio_in, "off")) {
        burrow_error_set(err, "audio-in '%s' is not on or off", cfg->audio_in);
        goto fail;
    }
    if (cfg->audio_in)
        d->audio_in = !strcmp(cfg->audio_in, "on");
    if (cfg->cdrom && check_image("cdrom image", cfg->cdrom, d->cdrom, sizeof(d->cdrom), err) < 0)
        goto fail;
    const char *iface = cfg->disk_interface ? cfg->disk_interface : os->disk_interface;
    unsigned long long new_size = 0;
    char convert_from[BURROW_PATH_MAX] = "";
    if (cfg->disk) {
        struct burrow_disk *k = &d->disks[d->ndisks++];
        if (check_image("disk", cfg->disk, k->path, sizeof(k->path), err) < 0)
            goto fail;
        snprintf(k->interface, sizeof(k->interface), "%s", iface);
        snprintf(k->format, sizeof(k->format), "%s", vmdef_detect_format(k->path));
        /* A disk Burrow only reads is never recorded as anything else:
         * converted into the VM's folder, or refused with how to. */
        if (one_of(k->format, ro_fmts) && cfg->convert_disk) {
            snprintf(convert_from, sizeof(convert_from), "%s", k->path);
            snprintf(k->path, sizeof(k->path), "disk0.qcow2");
            snprintf(k->format, sizeof(k->format), "qcow2");
        } else if (one_of(k->format, ro_fmts)) {
            char cmd[400] = "burrow disk convert ...";
#ifdef HAVE_DISK_API
            disk_convert_command(cfg->disk, cmd, sizeof(cmd));
#endif
            burrow_error_set(err, "%s is a %s image, which Burrow reads but cannot run a VM on: convert it "
                             "with '%s' and give that, or have it converted into the VM's folder "
                             "(burrow create --convert)", cfg->disk, k->format, cmd);
            goto fail;
        }
    } else if (!cfg->no_disk) {
        new_size = cfg->disk_size ? cfg->disk_size : (unsigned long long)os->disk_gib << 30;
        struct burrow_disk *k = &d->disks[d->ndisks++];
#ifdef HAVE_DISK_API
        snprintf(k->path, sizeof(k->path), "disk0.qcow2");
        snprintf(k->format, sizeof(k->format), "qcow2");
#else
        snprintf(k->path, sizeof(k->path), "disk0.img");
        snprintf(k->format, sizeof(k->format), "raw");
#endif
        snprintf(k->interface, sizeof(k->interface), "%s", iface);
    }
    const char *net = cfg->net ? cfg->net : "user";
    if (!strcmp(net, "user")) {
        struct burrow_nic *n = &d->nics[d->nnics++];
        snprintf(n->mode, sizeof(n->mode), "user");
        snprintf(n->model, sizeof(n->model), "%s", cfg->nic_model ? cfg->nic_model : os->nic_model);
        vmdef_random_mac(n->mac);
    } else if (strcmp(net, "none")) {
        burrow_error_set(err, "network '%s' is not user or none", net);
        goto fail;
    }
    if (burrow_vmdef_validate(d, err) < 0)
        goto fail;

    lk = lock_file(vm->paths.lock, EDIT_LOCK_TIMEOUT_MS, err);
    if (lk < 0)
        goto fail;
    if (access(vm->paths.dir, F_OK) == 0) {
        burrow_error_set(err, "a VM named '%s' already exists", cfg->name);
        goto fail;
    }
    if (make_tmp_dir(&vm->paths, tmp, sizeof(tmp), err) < 0) {
        tmp[0] = '\0';
        goto fail;
    }
    if (new_size) {
        char disk[BURROW_PATH_MAX];
        if (path_join(disk, sizeof(disk), err, "%s/%s", tmp, d->disks[0].path) < 0)
            goto fail;
#ifdef HAVE_DISK_API
        char derr[512] = "";
        if (disk_create(disk, new_size, d->disks[0].format, NULL, derr, sizeof(derr)) < 0) {
            burrow_error_set(err, "%s", derr[0] ? derr : "cannot create the disk");
            goto fail;
        }
#else
        if (create_raw_sparse(disk, new_size, err) < 0)
            goto fail;
#endif
    }
    if (convert_from[0]) {
        char disk[BURROW_PATH_MAX];
        if (path_join(disk, sizeof(disk), err, "%s/%s", tmp, d->disks[0].path) < 0)
            goto fail;
#ifdef HAVE_DISK_API
        char derr[512] = "";
        if (disk_convert(convert_from, disk, "qcow2", cfg->progress, cfg->progress_opaque, derr,
                         sizeof(derr)) < 0) {
            burrow_error_set(err, "%s", derr[0] ? derr : "cannot convert the disk");
            goto fail;
        }
#else
        burrow_error_set(err, "this build cannot convert disks");
        goto fail;
#endif
    }
    char def_path[BURROW_PATH_MAX];
    if (path_join(def_path, sizeof(def_path), err, "%s/" VM_DEF_FILE, tmp) < 0 ||
        vmdef_save(def_path, d, err) < 0 || publish_dir(tmp, &vm->paths, cfg->name, err) < 0)
        goto fail;
    close(lk);
    struct stat st;
    if (stat(vm->paths.def, &st) == 0)
        remember_stat(vm, &st);
    return vm;
fail:
    if (tmp[0])
        remove_tree(tmp);
    if (lk >= 0)
        close(lk);
    free(vm);
    return NULL;
}

static bool is_running_state(enum burrow_vm_state s)
{
    return s != BURROW_VM_STOPPED && s != BURROW_VM_CRASHED;
}

/* Moves what is left of a deleted VM's directory (its disks) aside, so the
 * name is free again and the files stay. */
static int keep_leftovers(const struct vm_paths *p, const char *name, char *kept, size_t len,
                          struct burrow_error *err)
{
    if (rmdir(p->dir) == 0)
        return 0;   /* nothing was left */
    char base[BURROW_PATH_MAX], dst[BURROW_PATH_MAX];
    snprintf(base, sizeof(base), "%s", p->dir);
    *strrchr(base, '/') = '\0';               /* .../burrow/vms */
    *strrchr(base, '/') = '\0';               /* .../burrow */
    if (path_join(base + strlen(base), sizeof(base) - strlen(base), err, "/kept") < 0 ||
        mkdir_p(base, 0700, err) < 0)
        return -1;
    for (int i = 0; i < 1000; i++) {
        if (i == 0 ? path_join(dst, sizeof(dst), err, "%s/%s", base, name) :
                     path_join(dst, sizeof(dst), err, "%s/%s.%d", base, name, i))
            return -1;
        if (renameat2(AT_FDCWD, p->dir, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) {
            if (kept)
                snprintf(kept, len, "%s", dst);
            return 0;
        }
        if (errno != EEXIST && errno != ENOTEMPTY)
            break;
    }
    burrow_error_set(err, "cannot move the disks of '%s' out of %s: %s", name, p->dir,
                     strerror(errno));
    return -1;
}

/* path, resolved, lies inside the directory rdir (itself resolved). */
static bool path_inside(const char *rdir, const char *path)
{
    char r[PATH_MAX];
    size_t n = strlen(rdir);
    return realpath(path, r) && !strncmp(r, rdir, n) && r[n] == '/';
}

/* Some image of the chain that starts at path (the image, then its backing
 * files) lies in rdir; its name goes to hit. */
static bool chain_inside(const char *rdir, const char *path, char *hit, size_t hitlen)
{
    char cur[BURROW_PATH_MAX], next[BURROW_PATH_MAX], name[1024];
    snprintf(cur, sizeof(cur), "%s", path);
    for (int depth = 0; depth < 16; depth++) {
        if (path_inside(rdir, cur)) {
            snprintf(hit, hitlen, "%s", cur);
            return true;
        }
        if (qcow2_peek_backing(cur, name, sizeof(name)) < 0 || !name[0])
            return false;
        /* a relative backing name is relative to the image's directory */
        const char *slash = strrchr(cur, '/');
        int dl = slash ? (int)(slash - cur) : 1;
        if (name[0] == '/')
            snprintf(next, sizeof(next), "%s", name);
        else if (snprintf(next, sizeof(next), "%.*s/%s", dl, slash ? cur : ".", name) >= (int)sizeof(next))
            return false;
        memcpy(cur, next, sizeof(cur));
    }
    return false;
}

/* Deleting NAME's folder must not take an image that something else still
 * uses: another VM's definition (a disk, the CD/DVD medium, or a backing
 * file of its disks), or a program that has the file open with an image
 * lock (a running VM, QEMU, qemu-nbd). */
static int check_folder_unused(const char *name, const char *dir, struct burrow_error *err)
{
    char rdir[PATH_MAX];
    if (!realpath(dir, rdir))
        return 0;
    char **names = burrow_vm_list(err);
    if (!names)
        return -1;
    int rc = 0;
    char path[BURROW_PATH_MAX], hit[BURROW_PATH_MAX];
    for (char **n = names; *n && rc == 0; n++) {
        if (!strcmp(*n, name))
            continue;
        struct burrow_error ignored = { 0 };
        struct burrow_vm *o = burrow_vm_load(*n, &ignored);
        if (!o)
            continue;   /* a definition that does not load names nothing */
        for (unsigned i = 0; i < o->def.ndisks && rc == 0; i++) {
            if (burrow_vm_disk_path(o, i, path, sizeof(path)) == 0 &&
                chain_inside(rdir, path, hit, sizeof(hit))) {
                burrow_error_set(err, "'%s' uses %s, which is in the folder of '%s'; detach it from "
                                 "'%s' first, or delete with --keep-disks", *n, hit, name, *n);
                rc = -1;
            }
        }
        if (rc == 0 && o->def.cdrom[0] && path_inside(rdir, o->def.cdrom)) {
            burrow_error_set(err, "'%s' has %s in its CD/DVD drive, which is in the folder of '%s'; "
                             "eject it first, or delete with --keep-disks", *n, o->def.cdrom, name);
            rc = -1;
        }
        burrow_vm_free(o);
    }
    for (char **n = names; *n; n++)
        free(*n);
    free(names);
    if (rc < 0)
        return rc;

    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            continue;
        char why[512];
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            blk_lock_image(fd, true, path, why, sizeof(why)) == -EBUSY) {
            burrow_error_set(err, "%s", why);
            rc = -1;
        }
        close(fd);
    }
    closedir(d);
    return rc;
}

int burrow_vm_delete(const char *name, bool keep_disks, char *kept_dir, size_t kept_len,
                     struct burrow_error *err)
{
    if (kept_dir && kept_len)
        kept_dir[0] = '\0';
    struct burrow_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        burrow_error_set(err, "out of memory");
        return -1;
    }
    int rc = -1, lk = -1;
    if (vm_paths_get(name, &vm->paths, err) < 0)
        goto out;
    if (access(vm->paths.dir, F_OK) < 0) {
        burrow_error_set(err, "no VM named '%s'", name);
        goto out;
    }
    lk = lock_file(vm->paths.lock, EDIT_LOCK_TIMEOUT_MS, err);
    if (lk < 0)
        goto out;
    snprintf(vm->def.name, sizeof(vm->def.name), "%s", name);
    struct burrow_vm_status st;
    if (is_running_state(supervise_state(vm, &st))) {
        burrow_error_set(err, "'%s' is %s; stop it first", name, burrow_vm_state_name(st.state));
        goto out;
    }
    /* keep_disks keeps every file but the definition: a definition that
     * does not load still deletes, so nothing can tell disks apart. */
    if (!keep_disks) {
        if (check_folder_unused(name, vm->paths.dir, err) < 0)
            goto out;
        remove_tree(vm->paths.dir);
        if (access(vm->paths.dir, F_OK) == 0) {
            burrow_error_set(err, "could not remove everything in %s", vm->paths.dir);
            goto out;
        }
    } else {
        if (unlink(vm->paths.def) < 0 && errno != ENOENT) {
            burrow_error_set(err, "cannot remove %s: %s", vm->paths.def, strerror(errno));
            goto out;
        }
        if (keep_leftovers(&vm->paths, name, kept_dir, kept_len, err) < 0)
            goto out;
    }
    supervise_cleanup(vm);
    unlink(vm->paths.log);
    char old[BURROW_PATH_MAX + 8];
    snprintf(old, sizeof(old), "%s.1", vm->paths.log);
    unlink(old);
    /* The lock file stays: removing it would let a waiter and a newcomer
     * lock two different files. */
    rc = 0;
out:
    if (lk >= 0)
        close(lk);
    free(vm);
    return rc;
}

/* Copies src to dst keeping holes: only the data extents are written.  Tries
 * a reflink first (instant on btrfs/XFS). */
static int copy_sparse(const char *src, const char *dst, struct burrow_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        burrow_error_set(err, "cannot open %s: %s", src, strerror(errno));
        return -1;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        burrow_error_set(err, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    int rc = -1;
    struct stat st;
    if (fstat(in, &st) < 0)
        goto io_err;
    if (ioctl(out, FICLONE, in) == 0) {
        rc = 0;
        goto done;
    }
    if (ftruncate(out, st.st_size) < 0)
        goto io_err;
    static char buf[1 << 20];
    off_t pos = 0;
    while (pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break;            /* only a hole is left */
            data = pos;           /* no SEEK_DATA here: copy everything */
        }
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        for (off_t o = data; o < hole;) {
            size_t want = hole - o < (off_t)sizeof(buf) ? (size_t)(hole - o) : sizeof(buf);
            ssize_t n = pread(in, buf, want, o);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                goto io_err;
            for (ssize_t w = 0; w < n;) {
                ssize_t m = pwrite(out, buf + w, (size_t)(n - w), o + w);
                if (m < 0 && errno == EINTR)
                    continue;
                if (m <= 0)
                    goto io_err;
                w += m;
            }
            o += n;
        }
        pos = hole;
    }
    if (fsync(out) < 0)
        goto io_err;
    rc = 0;
    goto done;
io_err:
    burrow_error_set(err, "copying %s to %s: %s", src, dst, strerror(errno ? errno : EIO));
done:
    close(in);
    close(out);
    if (rc < 0)
        unlink(dst);
    return rc;
}

struct burrow_vm *burrow_vm_clone(const char *name, const char *new_name, struct burrow_error *err)
{
    if (!burrow_name_valid(new_name, err))
        return NULL;
    struct burrow_vm *src = burrow_vm_load(name, err);
    if (!src)
        return NULL;
    struct burrow_vm *vm = calloc(1, sizeof(*vm));
    int lk_src = -1, lk_dst = -1;
    char tmp[BURROW_PATH_MAX] = "";
    if (!vm) {
        burrow_error_set(err, "out of memory");
        goto fail;
    }
    if (vm_paths_get(new_name, &vm->paths, err) < 0)
        goto fail;
    if (access(vm->paths.dir, F_OK) == 0) {
        burrow_error_set(err, "a VM named '%s' already exists", new_name);
        goto fail;
    }
    /* Lock both, always in name order, so two crossing clones cannot
     * deadlock. */
    bool src_first = strcmp(name, new_name) < 0;
    int *first = src_first ? &lk_src : &lk_dst, *second = src_first ? &lk_dst : &lk_src;
    if ((*first = lock_file(src_first ? src->paths.lock : vm->paths.lock, EDIT_LOCK_TIMEOUT_MS, err)) < 0 ||
        (*second = lock_file(src_first ? vm->paths.lock : src->paths.lock, EDIT_LOCK_TIMEOUT_MS, err)) < 0)
        goto fail;
    struct burrow_vm_status st;
    if (is_running_state(supervise_state(src, &st))) {
        burrow_error_set(err, "'%s' is %s; stop it before cloning (its disks are in use)", name,
                         burrow_vm_state_name(st.state));
        goto fail;
    }
    /* The definition again, now under the lock. */
    if (vmdef_load(src->paths.def, name, &src->def, NULL, err) < 0)
        goto fail;
    vm->def = src->def;
    snprintf(vm->def.name, sizeof(vm->def.name), "%s", new_name);
    vmdef_random_uuid(vm->def.uuid);
    for (unsigned i = 0; i < vm->def.nnics; i++)
        vmdef_random_mac(vm->def.nics[i].mac);
    if (make_tmp_dir(&vm->paths, tmp, sizeof(tmp), err) < 0) {
        tmp[0] = '\0';
        goto fail;
    }
    for (unsigned i = 0; i < vm->def.ndisks; i++) {
        struct burrow_disk *k = &vm->def.disks[i];
        if (k->readonly)
            continue;   /* shared as it is: nobody writes to it */
        char from[BURROW_PATH_MAX], to[BURROW_PATH_MAX];
        if (burrow_vm_disk_path(src, i, from, sizeof(from)) < 0) {
            burrow_error_set(err, "disk %u: path too long", i);
            goto fail;
        }
        /* Disks in the VM's directory keep their name; others get one. */
        if (k->path[0] != '/' && !strchr(k->path, '/'))
            ; /* keep k->path */
        else
            snprintf(k->path, sizeof(k->path), "disk%u.%s", i, !strcmp(k->format, "qcow2") ? "qcow2" : "img");
        if (path_join(to, sizeof(to), err, "%s/%s", tmp, k->path) < 0 || copy_sparse(from, to, err) < 0)
            goto fail;
    }
    char def_path[BURROW_PATH_MAX];
    if (path_join(def_path, sizeof(def_path), err, "%s/" VM_DEF_FILE, tmp) < 0 ||
        vmdef_save(def_path, &vm->def, err) < 0 || publish_dir(tmp, &vm->paths, new_name, err) < 0)
        goto fail;
    close(lk_src);
    close(lk_dst);
    burrow_vm_free(src);
    struct stat sb;
    if (stat(vm->paths.def, &sb) == 0)
        remember_stat(vm, &sb);
    return vm;
fail:
    if (tmp[0])
        remove_tree(tmp);
    if (lk_src >= 0)
        close(lk_src);
    if (lk_dst >= 0)
        close(lk_dst);
    burrow_vm_free(src);
    free(vm);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **burrow_vm_list(struct burrow_error *err)
{
    char dir[BURROW_PATH_MAX];
    if (paths_vms_dir(dir, sizeof(dir), err) < 0)
        return NULL;
    size_t n = 0, cap = 16;
    char **v = calloc(cap + 1, sizeof(char *));
    if (!v) {
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return v;   /* no VM yet */
        burrow_error_set(err, "cannot read %s: %s", dir, strerror(errno));
        free(v);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!burrow_name_valid(e->d_name, NULL))
            continue;
        char sub[BURROW_PATH_MAX];
        struct stat st;
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub) ||
            stat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            char **nv = realloc(v, (cap * 2 + 1) * sizeof(char *));
            if (!nv)
                break;
            v = nv;
            cap *= 2;
        }
        v[n++] = strdup(e->d_name);
        v[n] = NULL;
    }
    closedir(d);
    qsort(v, n, sizeof(char *), cmp_str);
    return v;
}

struct burrow_vm *burrow_vm_open_runtime(const char *name, struct burrow_error *err)
{
    struct burrow_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    if (vm_paths_get(name, &vm->paths, err) < 0) {
        free(vm);
        return NULL;
    }
    snprintf(vm->def.name, sizeof(vm->def.name), "%s", name);
    return vm;
}

/* NAME of a runtime file NAME.run, NAME.pid or NAME.sock; false for others. */
static bool runtime_file_name(const char *file, char *name, size_t len)
{
    static const char *const suffixes[] = { ".run", ".pid", ".sock", NULL };
    size_t n = strlen(file);
    for (const char *const *sfx = suffixes; *sfx; sfx++) {
        size_t sl = strlen(*sfx);
        if (n > sl && n - sl < len && !strcmp(file + n - sl, *sfx)) {
            snprintf(name, len, "%.*s", (int)(n - sl), file);
            return burrow_name_valid(name, NULL);
        }
    }
    return false;
}

char **burrow_vm_list_orphans(struct burrow_error *err)
{
    char run[BURROW_PATH_MAX], vms[BURROW_PATH_MAX];
    if (paths_runtime_dir(run, sizeof(run), err) < 0 || paths_vms_dir(vms, sizeof(vms), err) < 0)
        return NULL;
    GPtrArray *a = g_ptr_array_new();
    DIR *d = opendir(run);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char name[BURROW_NAME_MAX + 1], dir[BURROW_PATH_MAX];
            if (!runtime_file_name(e->d_name, name, sizeof(name)) ||
                snprintf(dir, sizeof(dir), "%s/%s", vms, name) >= (int)sizeof(dir) ||
                access(dir, F_OK) == 0)
                continue;
            bool seen = false;
            for (guint i = 0; i < a->len && !seen; i++)
                seen = !strcmp(g_ptr_array_index(a, i), name);
            if (seen)
                continue;
            struct burrow_vm *vm = burrow_vm_open_runtime(name, NULL);
            if (vm && supervise_state(vm, NULL) != BURROW_VM_STOPPED)
                g_ptr_array_add(a, strdup(name));
            burrow_vm_free(vm);
        }
        closedir(d);
    }
    char **v = calloc(a->len + 1, sizeof(char *));
    if (!v) {
        for (guint i = 0; i < a->len; i++)
            free(g_ptr_array_index(a, i));
        g_ptr_array_free(a, TRUE);
        burrow_error_set(err, "out of memory");
        return NULL;
    }
    size_t n = a->len;
    for (size_t i = 0; i < n; i++)
        v[i] = g_ptr_array_index(a, i);
    g_ptr_array_free(a, TRUE);
    qsort(v, n, sizeof(char *), cmp_str);
    return v;
}

void burrow_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
