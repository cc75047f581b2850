/* Host checks (app/hostcheck.h). */
#include "app/hostcheck.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/e1000.h"
#include "devices/virtio_net.h"
#include "vmm/firmware.h"
#include "vmm/kvmdev.h"

static struct hostcheck_item *add(struct hostcheck_report *r, const char *id, const char *title, bool kvm)
{
    if (r->n >= HOSTCHECK_MAX)   /* cannot happen: the checks are fixed */
        return &r->items[HOSTCHECK_MAX - 1];
    struct hostcheck_item *it = &r->items[r->n++];
    memset(it, 0, sizeof(*it));
    it->id = id;
    it->title = title;
    it->kvm = kvm;
    return it;
}

static void set(struct hostcheck_item *it, enum hostcheck_status s, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set(struct hostcheck_item *it, enum hostcheck_status s, const char *hint, const char *fmt, ...)
{
    it->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
    va_end(ap);
    snprintf(it->hint, sizeof(it->hint), "%s", hint ? hint : "");
}

/* ---- the KVM device ------------------------------------------------------------- */

/* The device checks in order, and the fault that fails each. */
static const struct {
    const char *id, *title;
} kvm_steps[] = {
    { "kvm-device", "KVM device present" },
    { "kvm-chardev", "KVM character device (10:232)" },
    { "kvm-access", "KVM device opens read/write" },
    { "kvm-api", "KVM API version 12" },
    { "kvm-create-vm", "KVM creates a virtual machine" },
};

static unsigned failing_step(const struct kvmdev_probe *p)
{
    switch (p->fault) {
    case KVMDEV_MISSING: return 0;
    case KVMDEV_NOT_DEVICE: return 1;
    case KVMDEV_NO_ACCESS: return 2;
    case KVMDEV_OPEN_FAILED: return p->have_stat ? 2 : 0;   /* stat itself failed */
    case KVMDEV_BAD_VERSION: return 3;
    case KVMDEV_NO_VM: return 4;
    case KVMDEV_OK: break;
    }
    return G_N_ELEMENTS(kvm_steps);
}

static void pass_detail(unsigned step, const struct kvmdev_probe *p, const struct kvmdev_access *a,
                        char *buf, size_t len)
{
    switch (step) {
    case 0:
        snprintf(buf, len, "%s exists%s", p->path, p->from_env ? " (from " KVMDEV_ENV ")" : "");
        break;
    case 1: snprintf(buf, len, "a character device %d:%d", KVMDEV_MAJOR, KVMDEV_MINOR); break;
    case 2: snprintf(buf, len, "%s opens it read/write", a->user[0] ? a->user : "this user"); break;
    case 3: snprintf(buf, len, "API version %d", p->version); break;
    default: snprintf(buf, len, "a test VM was created and closed again"); break;
    }
}

/* Who may open the device: only telling when it exists and is KVM's. */
static void group_check(struct hostcheck_report *r, const struct kvmdev_probe *p,
                        const struct kvmdev_access *a, unsigned step)
{
    struct hostcheck_item *it = add(r, "kvm-group", "Permission to use KVM", true);
    const char *user = a->user[0] ? a->user : "this user";
    if (step < 2) {
        set(it, HOSTCHECK_SKIP, NULL, "not checked: there is no KVM device");
        return;
    }
    if (step > 2 || p->fault == KVMDEV_OPEN_FAILED) {
        if (a->root)
            set(it, HOSTCHECK_PASS, NULL, "root may open %s", p->path);
        else
            set(it, HOSTCHECK_PASS, NULL, "%s may open %s (group '%s', mode %04o; %s that group)", user,
                p->path, a->group, a->mode, a->group_in_session ? "in" : "not in");
        return;
    }
    char hint[512];
    kvmdev_access_hint(a, p->path, hint, sizeof(hint));
    if ((a->mode & 060) != 060)
        set(it, HOSTCHECK_FAIL, hint, "%s (group '%s', mode %04o) lets only its owner open it", p->path,
            a->group, a->mode);
    else if (!a->group_listed)
        set(it, HOSTCHECK_FAIL, hint, "%s is not in the '%s' group, which may open %s", user, a->group,
            p->path);
    else if (!a->group_in_session)
        set(it, HOSTCHECK_FAIL, hint, "%s is in the '%s' group, but this login session began before that: "
            "not logged in again since", user, a->group);
    else
        set(it, HOSTCHECK_FAIL, hint, "%s is in the '%s' group, which may open %s, yet the open was refused",
            user, a->group, p->path);
}

/* Returns whether a VM could be created. */
static bool kvm_checks(struct hostcheck_report *r, const struct hostcheck_sources *src)
{
    struct kvmdev_probe p;
    kvmdev_probe_init(&p);
    if (src && src->kvm_device) {
        snprintf(p.path, sizeof(p.path), "%s", src->kvm_device);
        p.from_env = false;
    }
    int fd = kvmdev_open(&p);
    if (fd >= 0) {
        int vm = kvmdev_create_vm(fd, &p);
        if (vm >= 0)
            close(vm);
        close(fd);
    }
    const char *group_file = src ? src->group_file : NULL;
    struct kvmdev_access a = { 0 };
    unsigned step = failing_step(&p);
    if (step >= 2)
        kvmdev_access_facts(&p.st, group_file, &a);
    for (unsigned i = 0; i < G_N_ELEMENTS(kvm_steps); i++) {
        struct hostcheck_item *it = add(r, kvm_steps[i].id, kvm_steps[i].title, true);
        if (i < step) {
            it->status = HOSTCHECK_PASS;
            pass_detail(i, &p, &a, it->detail, sizeof(it->detail));
        } else if (i == step) {
            it->status = HOSTCHECK_FAIL;
            kvmdev_explain(&p, group_file, it->detail, sizeof(it->detail), it->hint, sizeof(it->hint));
        } else {
            set(it, HOSTCHECK_SKIP, NULL, "not checked: \"%s\" failed", kvm_steps[step].title);
        }
    }
    group_check(r, &p, &a, step);
    return p.fault == KVMDEV_OK;
}

/* ---- the CPU ---------------------------------------------------------------------- */

static bool is_flag_char(char c)
{
    return c && c != ' ' && c != '\t' && c != '\n' && c != '\r';
}

unsigned hostcheck_cpu_flags(const char *text)
{
    unsigned found = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        /* "flags\t\t: fpu vme ... vmx ..." (x86; other architectures
         * have no such flags and come out as none). */
        if (!strncmp(line, "flags", 5) && (line[5] == ' ' || line[5] == '\t' || line[5] == ':')) {
            const char *colon = memchr(line, ':', (size_t)(end - line));
            for (const char *t = colon ? colon + 1 : end; t < end;) {
                while (t < end && !is_flag_char(*t))
                    t++;
                const char *s = t;
                while (t < end && is_flag_char(*t))
                    t++;
                if (t - s == 3 && !memcmp(s, "vmx", 3))
                    found |= HOSTCHECK_CPU_VMX;
                else if (t - s == 3 && !memcmp(s, "svm", 3))
                    found |= HOSTCHECK_CPU_SVM;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

static void cpu_check(struct hostcheck_report *r, const struct hostcheck_sources *src, bool kvm_works)
{
    struct hostcheck_item *it = add(r, "cpu-virt", "CPU virtualization (VT-x/AMD-V)", false);
    const char *cpuinfo = src && src->cpuinfo ? src->cpuinfo : "/proc/cpuinfo";
    const char *pvm = src && src->pvm_module ? src->pvm_module : "/sys/module/kvm_pvm";
    char *text = NULL;
    GError *gerr = NULL;
    if (!g_file_get_contents(cpuinfo, &text, NULL, &gerr)) {
        set(it, HOSTCHECK_WARN, "check that /proc is mounted", "cannot read %s: %s", cpuinfo, gerr->message);
        g_error_free(gerr);
        return;
    }
    unsigned flags = hostcheck_cpu_flags(text);
    g_free(text);
    if (flags & HOSTCHECK_CPU_VMX)
        set(it, HOSTCHECK_PASS, NULL, "the CPU has VMX (Intel VT-x)");
    else if (flags & HOSTCHECK_CPU_SVM)
        set(it, HOSTCHECK_PASS, NULL, "the CPU has SVM (AMD-V)");
    else if (access(pvm, F_OK) == 0)
        set(it, HOSTCHECK_WARN, "run Linux guests on a machine with VT-x or AMD-V; firmware, boot loaders "
            "and simple guests run here",
            "no VMX or SVM: KVM is backed by PVM (module kvm_pvm), whose instruction emulator cannot run "
            "a Linux kernel, so Linux guests cannot run");
    else if (kvm_works)
        set(it, HOSTCHECK_WARN, "guests may run slowly or not at all; enable VT-x/AMD-V where you can",
            "the CPU shows neither VMX nor SVM, yet KVM works (an emulated or unusual KVM)");
    else
        set(it, HOSTCHECK_FAIL, "enable virtualization (Intel VT-x, or AMD-V/SVM) in the firmware setup; "
            "inside a virtual machine, enable nested virtualization on its host",
            "the CPU shows neither VMX (Intel VT-x) nor SVM (AMD-V)");
}

/* ---- firmware ------------------------------------------------------------------------ */

static void firmware_checks(struct hostcheck_report *r)
{
    static const struct {
        const char *id, *title, *path, *package;
        bool required;
        const char *without;   /* what does not work without it */
    } fw[] = {
        { "fw-bios", "SeaBIOS firmware", FIRMWARE_BIOS_DEFAULT, "seabios", true,
          "no VM can boot without it" },
        { "fw-vgabios", "VGA BIOS", FIRMWARE_VGABIOS_DEFAULT, "seabios", true,
          "VMs with a screen cannot start without it" },
        { "fw-pxe-virtio", "Network boot ROM (virtio-net)", VIRTIO_NET_ROM_DEFAULT, "ipxe-qemu", false,
          "VMs cannot boot from the network without it" },
        { "fw-pxe-e1000", "Network boot ROM (e1000)", E1000_ROM_DEFAULT, "ipxe-qemu", false,
          "VMs cannot boot from the network without it" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fw); i++) {
        struct hostcheck_item *it = add(r, fw[i].id, fw[i].title, false);
        enum hostcheck_status bad = fw[i].required ? HOSTCHECK_FAIL : HOSTCHECK_WARN;
        char hint[256];
        struct stat st;
        int err = stat(fw[i].path, &st) < 0 ? errno : access(fw[i].path, R_OK) < 0 ? errno : 0;
        if (err == ENOENT) {
            snprintf(hint, sizeof(hint), "install Debian's %s package (sudo apt install %s); %s",
                     fw[i].package, fw[i].package, fw[i].without);
            set(it, bad, hint, "%s is missing", fw[i].path);
            continue;
        }
        snprintf(hint, sizeof(hint), "reinstall the %s package (sudo apt install --reinstall %s); %s",
                 fw[i].package, fw[i].package, fw[i].without);
        if (err)
            set(it, bad, hint, "cannot read %s: %s", fw[i].path, strerror(err));
        else if (!S_ISREG(st.st_mode) || st.st_size == 0)
            set(it, bad, hint, "%s is not a firmware file (empty or not a regular file)", fw[i].path);
        else
            set(it, HOSTCHECK_PASS, NULL, "%s (%lld KiB, package %s)", fw[i].path,
                (long long)(st.st_size + 1023) / 1024, fw[i].package);
    }
}

/* ---- the report --------------------------------------------------------------------- */

void hostcheck_run(struct hostcheck_report *r, const struct hostcheck_sources *src)
{
    memset(r, 0, sizeof(*r));
    bool kvm_works = kvm_checks(r, src);
    cpu_check(r, src, kvm_works);
    firmware_checks(r);
    r->verdict = HOSTCHECK_PASS;
    for (unsigned i = 0; i < r->n; i++) {
        enum hostcheck_status s = r->items[i].status;
        r->nfail += s == HOSTCHECK_FAIL;
        r->nwarn += s == HOSTCHECK_WARN;
        if (s > r->verdict)
            r->verdict = s;
    }
}

const char *hostcheck_status_name(enum hostcheck_status s)
{
    switch (s) {
    case HOSTCHECK_PASS: return "PASS";
    case HOSTCHECK_WARN: return "WARN";
    case HOSTCHECK_FAIL: return "FAIL";
    case HOSTCHECK_SKIP: return "SKIP";
    }
    return "?";
}

bool hostcheck_kvm_ok(const struct hostcheck_report *r)
{
    for (unsigned i = 0; i < r->n; i++)
        if (r->items[i].kvm && r->items[i].status == HOSTCHECK_FAIL)
            return false;
    return true;
}

void hostcheck_verdict_text(const struct hostcheck_report *r, char *buf, size_t len)
{
    if (r->verdict == HOSTCHECK_FAIL)
        snprintf(buf, len, "FAIL: %u check%s failed; %s", r->nfail, r->nfail == 1 ? "" : "s",
                 hostcheck_kvm_ok(r) ? "some virtual machines cannot start"
                                     : "Burrow cannot run virtual machines on this host");
    else if (r->verdict == HOSTCHECK_WARN)
        snprintf(buf, len, "WARN: virtual machines can run, with %u warning%s", r->nwarn,
                 r->nwarn == 1 ? "" : "s");
    else
        snprintf(buf, len, "PASS: this host can run Burrow's virtual machines");
}

json_t *hostcheck_json(const struct hostcheck_report *r)
{
    char summary[160];
    hostcheck_verdict_text(r, summary, sizeof(summary));
    json_t *checks = json_array();
    for (unsigned i = 0; i < r->n; i++) {
        const struct hostcheck_item *it = &r->items[i];
        json_array_append_new(checks, json_pack("{s:s,s:s,s:b,s:s,s:s,s:s}", "id", it->id, "title", it->title,
                                                "kvm", it->kvm, "status", hostcheck_status_name(it->status),
                                                "detail", it->detail, "hint", it->hint));
    }
    return json_pack("{s:s,s:s,s:b,s:o}", "verdict", hostcheck_status_name(r->verdict), "summary", summary,
                     "kvm_ok", hostcheck_kvm_ok(r), "checks", checks);
}

char *hostcheck_problems_text(const struct hostcheck_report *r, enum hostcheck_status min, bool kvm_only)
{
    GString *s = g_string_new(NULL);
    const char *last_hint = "";
    for (unsigned i = 0; i < r->n; i++) {
        const struct hostcheck_item *it = &r->items[i];
        if (it->status < min || it->status == HOSTCHECK_SKIP || (kvm_only && !it->kvm))
            continue;
        g_string_append_printf(s, "%s%s", s->len ? "\n\n" : "", it->detail);
        /* Two checks failing for one cause share the hint: say it once. */
        if (it->hint[0] && strcmp(it->hint, last_hint))
            g_string_append_printf(s, "\n→ %s", it->hint);
        last_hint = it->hint;
    }
    return g_string_free(s, FALSE);
}
