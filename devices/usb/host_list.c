/* The host's USB devices from sysfs, specs, filters, uevents, and advice
 * for a device node that cannot be opened (see host_list.h). */
#include "devices/usb/host_list.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/util.h"

#define HUB_CLASS 9

static const char *env_or(const char *env, const char *def)
{
    const char *v = getenv(env);
    return v && *v ? v : def;
}

const char *usbhost_sysfs_root(void)
{
    return env_or(USBHOST_SYSFS_ENV, USBHOST_SYSFS_DEFAULT);
}

const char *usbhost_devfs_root(void)
{
    return env_or(USBHOST_DEVFS_ENV, USBHOST_DEVFS_DEFAULT);
}

bool usbhost_speed(const struct usbhost_info *d, enum usb_speed *speed)
{
    if (d->mbps == 0)
        return false;
    *speed = d->mbps <= 1 ? USB_SPEED_LOW : d->mbps <= 12 ? USB_SPEED_FULL
           : d->mbps <= 480 ? USB_SPEED_HIGH : USB_SPEED_SUPER;
    return true;
}

const char *usbhost_speed_name(unsigned mbps)
{
    if (mbps == 0)
        return "unknown";
    return mbps <= 1 ? "low" : mbps <= 12 ? "full" : mbps <= 480 ? "high" : mbps <= 5000 ? "super" : "super+";
}

/* ---- sysfs ---- */

/* An attribute's first line, without the newline; false when absent. */
static bool read_attr(const char *dir, const char *name, const char *attr, char *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

static bool read_num(const char *dir, const char *name, const char *attr, int base, unsigned long max,
                     unsigned long *out)
{
    char buf[32], *end;
    if (!read_attr(dir, name, attr, buf, sizeof(buf)) || !buf[0])
        return false;
    errno = 0;
    unsigned long v = strtoul(buf, &end, base);
    if (errno || (*end && *end != '.') || v > max)
        return false;
    *out = v;
    return true;
}

/* Strings as the device gave them, with anything unprintable as '?':
 * they go into JSON and terminals. */
static void read_string(const char *dir, const char *name, const char *attr, char *buf, size_t len)
{
    if (!read_attr(dir, name, attr, buf, len)) {
        buf[0] = '\0';
        return;
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

/* Whether a name is a device's ("1-1", "3-2.4"), not a root hub's
 * ("usb1") or an interface's ("1-1:1.0"). */
static bool device_name(const char *n)
{
    struct usbhost_spec s;
    char err[8];
    return usbhost_spec_parse(n, &s, err, sizeof(err)) == 0 && !s.by_id;
}

/* Whether an interface of the device is bound to usbfs. */
static bool held_by_usbfs(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    size_t n = strlen(name);
    bool held = false;
    struct dirent *e;
    while (!held && (e = readdir(d))) {
        if (strncmp(e->d_name, name, n) || e->d_name[n] != ':')
            continue;
        char link[PATH_MAX], target[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s/driver", dir, e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        const char *base = strrchr(target, '/');
        held = !strcmp(base ? base + 1 : target, "usbfs");
    }
    closedir(d);
    return held;
}

int usbhost_read(const char *sysfs, const char *name, struct usbhost_info *d)
{
    const char *dir = sysfs ? sysfs : usbhost_sysfs_root();
    memset(d, 0, sizeof(*d));
    if (!device_name(name) || strlen(name) >= sizeof(d->name))
        return -1;
    snprintf(d->name, sizeof(d->name), "%s", name);
    unsigned long v;
    if (!read_num(dir, name, "busnum", 10, 999, &v))
        return -1;
    d->bus = (unsigned)v;
    if (!read_num(dir, name, "devnum", 10, 999, &v))
        return -1;
    d->devnum = (unsigned)v;
    if (!read_num(dir, name, "idVendor", 16, 0xffff, &v))
        return -1;
    d->vid = (uint16_t)v;
    if (!read_num(dir, name, "idProduct", 16, 0xffff, &v))
        return -1;
    d->pid = (uint16_t)v;
    if (read_num(dir, name, "speed", 10, 1000000, &v))
        d->mbps = (unsigned)v;    /* "1.5" reads as 1 */
    if (read_num(dir, name, "bDeviceClass", 16, 0xff, &v))
        d->dev_class = (uint8_t)v;
    read_string(dir, name, "manufacturer", d->manufacturer, sizeof(d->manufacturer));
    read_string(dir, name, "product", d->product, sizeof(d->product));
    read_string(dir, name, "serial", d->serial, sizeof(d->serial));
    d->usbfs = held_by_usbfs(dir, name);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct usbhost_info *x = a, *y = b;
    if (x->bus != y->bus)
        return x->bus < y->bus ? -1 : 1;
    return strcmp(x->name, y->name);
}

int usbhost_list(const char *sysfs, struct usbhost_info **out, size_t *n, char *err, size_t errlen)
{
    const char *dir = sysfs ? sysfs : usbhost_sysfs_root();
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;     /* no USB at all (no controller, or usbcore not loaded) */
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct usbhost_info *list = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!device_name(e->d_name))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct usbhost_info *l = realloc(list, ncap * sizeof(*l));
            if (!l)
                break;
            list = l;
            cap = ncap;
        }
        if (usbhost_read(dir, e->d_name, &list[*n]) == 0)
            ++*n;
    }
    closedir(d);
    if (*n)
        qsort(list, *n, sizeof(*list), by_name);
    *out = list;
    return 0;
}

void usbhost_node(const char *devfs, const struct usbhost_info *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%03u/%03u", devfs ? devfs : usbhost_devfs_root(), d->bus, d->devnum);
}

/* ---- specs ---- */

/* Hexadecimal of 1-4 digits, the whole string. */
static bool parse_hex16(const char *s, size_t n, uint16_t *out)
{
    if (n < 1 || n > 4)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
        v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
    }
    *out = (uint16_t)v;
    return true;
}

/* A decimal number 1..max without leading zeros, ending at a character of
 * stop (or the end); advances *s. */
static bool parse_dec(const char **s, unsigned max, const char *stop)
{
    const char *p = *s;
    unsigned v = 0;
    if (*p < '1' || *p > '9')
        return false;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (unsigned)(*p++ - '0');
        if (v > max)
            return false;
    }
    if (*p && !strchr(stop, *p))
        return false;
    *s = p;
    return true;
}

int usbhost_spec_parse(const char *s, struct usbhost_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    const char *colon = s ? strchr(s, ':') : NULL;
    if (colon) {
        if (parse_hex16(s, (size_t)(colon - s), &spec->vid) &&
            parse_hex16(colon + 1, strlen(colon + 1), &spec->pid)) {
            spec->by_id = true;
            return 0;
        }
    } else if (s && strlen(s) < sizeof(spec->path)) {
        const char *p = s;
        unsigned ports = 0;
        bool ok = parse_dec(&p, 999, "-") && *p == '-';
        while (ok) {
            p++;
            ok = parse_dec(&p, 255, ".") && ++ports <= USBHOST_MAX_DEPTH;
            if (ok && !*p) {
                snprintf(spec->path, sizeof(spec->path), "%s", s);
                return 0;
            }
        }
    }
    snprintf(err, errlen, "'%s' is not VID:PID (hexadecimal, e.g. 0525:a4a5) or BUS-PORT[.PORT...] "
             "(e.g. 1-1.2)", s ? s : "");
    return -1;
}

bool usbhost_spec_match(const struct usbhost_spec *spec, const struct usbhost_info *d)
{
    if (spec->by_id)
        return spec->vid == d->vid && spec->pid == d->pid;
    return !strcmp(spec->path, d->name);
}

void usbhost_spec_format(const struct usbhost_spec *spec, char *buf, size_t len)
{
    if (spec->by_id)
        snprintf(buf, len, "%04x:%04x", spec->vid, spec->pid);
    else
        snprintf(buf, len, "%s", spec->path);
}

/* ---- filters ---- */

int usbhost_filter_parse(const char *s, struct usbhost_filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->vid = f->pid = -1;
    char buf[256];
    if (!s || strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "a USB filter is vid=HEX,pid=HEX,serial=TEXT (one part at least)");
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", s);
    bool any = false;
    for (char *part = buf, *next; part; part = next) {
        next = strchr(part, ',');
        if (next)
            *next++ = '\0';
        char *val = strchr(part, '=');
        if (!val) {
            snprintf(err, errlen, "'%s' is not KEY=VALUE (keys: vid, pid, serial)", part);
            return -1;
        }
        *val++ = '\0';
        uint16_t id;
        if (!strcmp(part, "vid") || !strcmp(part, "pid")) {
            if (!parse_hex16(val, strlen(val), &id)) {
                snprintf(err, errlen, "%s '%s' is not 1 to 4 hexadecimal digits", part, val);
                return -1;
            }
            if (part[0] == 'v')
                f->vid = id;
            else
                f->pid = id;
        } else if (!strcmp(part, "serial")) {
            if (!*val || strlen(val) >= sizeof(f->serial)) {
                snprintf(err, errlen, "a serial has 1 to %zu characters", sizeof(f->serial) - 1);
                return -1;
            }
            for (const char *p = val; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                    snprintf(err, errlen, "the serial has a control character");
                    return -1;
                }
            snprintf(f->serial, sizeof(f->serial), "%s", val);
        } else {
            snprintf(err, errlen, "unknown key '%s' (known: vid, pid, serial)", part);
            return -1;
        }
        any = true;
    }
    if (!any) {
        snprintf(err, errlen, "a USB filter needs vid, pid or serial");
        return -1;
    }
    return 0;
}

bool usbhost_filter_match(const struct usbhost_filter *f, const struct usbhost_info *d)
{
    return (f->vid < 0 || f->vid == d->vid) && (f->pid < 0 || f->pid == d->pid) &&
           (!f->serial[0] || !strcmp(f->serial, d->serial));
}

void usbhost_filter_format(const struct usbhost_filter *f, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    if (f->vid >= 0)
        at += (size_t)snprintf(buf + at, len - MIN(at, len), "vid=%04x", f->vid);
    if (f->pid >= 0)
        at += (size_t)snprintf(buf + at, len - MIN(at, len), "%spid=%04x", at ? "," : "", f->pid);
    if (f->serial[0])
        snprintf(buf + MIN(at, len), len - MIN(at, len), "%sserial=%s", at ? "," : "", f->serial);
}

/* ---- uevents ---- */

int usbhost_uevent_parse(const char *buf, size_t len, struct usbhost_uevent *ev)
{
    memset(ev, 0, sizeof(*ev));
    const char *action = NULL, *devpath = NULL, *subsystem = NULL, *devtype = NULL;
    const char *busnum = NULL, *devnum = NULL;
    /* The header ("add@/devices/...") must be a string; udev's own
     * messages ("libudev" and a binary header) are not for us. */
    const char *hdr_end = memchr(buf, '\0', len);
    if (!hdr_end || !memchr(buf, '@', (size_t)(hdr_end - buf)))
        return 0;
    for (const char *p = hdr_end + 1; p < buf + len;) {
        const char *end = memchr(p, '\0', (size_t)(buf + len - p));
        if (!end)
            break;      /* a field cut off: ignore it */
#define FIELD(key, var) else if (!strncmp(p, key "=", sizeof(key))) var = p + sizeof(key)
        if (0) {
        }
        FIELD("ACTION", action);
        FIELD("DEVPATH", devpath);
        FIELD("SUBSYSTEM", subsystem);
        FIELD("DEVTYPE", devtype);
        FIELD("BUSNUM", busnum);
        FIELD("DEVNUM", devnum);
#undef FIELD
        p = end + 1;
    }
    if (!action || !devpath || !subsystem || !devtype || strcmp(subsystem, "usb") ||
        strcmp(devtype, "usb_device"))
        return 0;
    if (strcmp(action, "add") && strcmp(action, "remove"))
        return 0;
    const char *base = strrchr(devpath, '/');
    base = base ? base + 1 : devpath;
    if (!device_name(base) || strlen(base) >= sizeof(ev->name))
        return 0;
    ev->add = !strcmp(action, "add");
    snprintf(ev->name, sizeof(ev->name), "%s", base);
    if (busnum)
        ev->bus = (unsigned)strtoul(busnum, NULL, 10);
    if (devnum)
        ev->devnum = (unsigned)strtoul(devnum, NULL, 10);
    return 1;
}

/* ---- permissions ---- */

static bool have_group(gid_t gid)
{
    if (getegid() == gid)
        return true;
    gid_t groups[NGROUPS_MAX];
    int n = getgroups(NGROUPS_MAX, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

void usbhost_access_facts(const char *path, struct usbhost_access *a)
{
    memset(a, 0, sizeof(*a));
    a->root = geteuid() == 0;
    /* The _r lookups: the VM library may run this off the main thread. */
    char text[4096];
    struct passwd pwbuf, *pw = NULL;
    if (getpwuid_r(geteuid(), &pwbuf, text, sizeof(text), &pw) == 0 && pw)
        snprintf(a->user, sizeof(a->user), "%s", pw->pw_name);
    else
        snprintf(a->user, sizeof(a->user), "uid %u", (unsigned)geteuid());
    struct stat st;
    if (stat(path, &st) < 0)
        return;
    a->have_stat = true;
    a->mode = st.st_mode;
    a->gid = (unsigned)st.st_gid;
    a->in_group = have_group(st.st_gid);
    pw = NULL;
    if (getpwuid_r(st.st_uid, &pwbuf, text, sizeof(text), &pw) == 0 && pw)
        snprintf(a->owner, sizeof(a->owner), "%s", pw->pw_name);
    else
        snprintf(a->owner, sizeof(a->owner), "%u", (unsigned)st.st_uid);
    struct group grbuf, *gr = NULL;
    char *grtext = malloc(64 * 1024);   /* room for a long member list */
    if (grtext && getgrgid_r(st.st_gid, &grbuf, grtext, 64 * 1024, &gr) == 0 && gr)
        snprintf(a->group, sizeof(a->group), "%s", gr->gr_name);
    else
        snprintf(a->group, sizeof(a->group), "%u", (unsigned)st.st_gid);
    free(grtext);
}

/* "crw-rw-r--" */
static void mode_string(unsigned mode, char s[11])
{
    s[0] = S_ISCHR(mode) ? 'c' : S_ISBLK(mode) ? 'b' : S_ISDIR(mode) ? 'd' : S_ISREG(mode) ? '-' : '?';
    static const char rwx[] = "rwx";
    for (int i = 0; i < 9; i++)
        s[1 + i] = (mode & (0400u >> i)) ? rwx[i % 3] : '-';
    s[10] = '\0';
}

void usbhost_open_advice(const char *path, int err, const struct usbhost_info *d,
                         const struct usbhost_access *a, char *buf, size_t len)
{
    char what[128] = "";
    if (d)
        snprintf(what, sizeof(what), " (%04x:%04x%s%.32s)", d->vid, d->pid, d->product[0] ? " " : "",
                 d->product);
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
        snprintf(buf, len, "cannot open %s%s: the device is gone (unplugged, or reset by the host)",
                 path, what);
        return;
    }
    if (err != EACCES && err != EPERM) {
        snprintf(buf, len, "cannot open %s%s: %s", path, what, strerror(err));
        return;
    }
    if (!a->have_stat) {
        snprintf(buf, len, "cannot open %s%s: permission denied", path, what);
        return;
    }
    char ms[11];
    mode_string(a->mode, ms);
    size_t at = (size_t)snprintf(buf, len, "cannot open %s%s: permission denied; it belongs to %s:%s "
                                 "with mode %s and this runs as %s. ", path, what, a->owner, a->group,
                                 ms, a->user);
    at = MIN(at, len);
    const char *user = a->user[0] && strncmp(a->user, "uid ", 4) ? a->user : "$USER";
    /* Joining a group that may write the node is the fix, unless it is
     * root's group, which gives far more than this device. */
    bool group_rw = (a->mode & 060) == 060;
    if (group_rw && !a->in_group && a->gid != 0) {
        snprintf(buf + at, len - at, "Join its group: sudo usermod -aG %s %s, then log out and in again",
                 a->group, user);
        return;
    }
    char ids[80] = "";
    if (d)
        snprintf(ids, sizeof(ids), ", ATTR{idVendor}==\"%04x\", ATTR{idProduct}==\"%04x\"", d->vid, d->pid);
    snprintf(buf + at, len - at, "A udev rule gives the plugdev group access: put SUBSYSTEM==\"usb\"%s, "
             "MODE=\"0660\", GROUP=\"plugdev\" in /etc/udev/rules.d/70-burrow-usb.rules, run sudo udevadm "
             "control --reload && sudo udevadm trigger, and be in plugdev (sudo usermod -aG plugdev %s, "
             "then log in again)", ids, user);
}
