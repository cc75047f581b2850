/* Host checks: can this machine run Burrow's VMs, and if not, what to do.
 * In the spirit of libvirt's virt-host-validate: the KVM device (present,
 * the right character device, opens read/write, API version 12, creates a
 * VM), who may open it, the CPU's virtualization, and the firmware files
 * burrow-vm loads.  `burrow host-check` prints them; the manager shows the
 * verdict in its New VM assistant and refuses to start a VM whose KVM
 * checks fail.  $BURROW_KVM_DEVICE replaces /dev/kvm, as in burrow-vm. */
#ifndef BURROW_HOSTCHECK_H
#define BURROW_HOSTCHECK_H

#include <stdbool.h>
#include <jansson.h>

/* Ordered by severity, so a verdict is the worst status seen. */
enum hostcheck_status {
    HOSTCHECK_SKIP,    /* not checked: an earlier check it depends on failed */
    HOSTCHECK_PASS,
    HOSTCHECK_WARN,    /* VMs run, with a limitation */
    HOSTCHECK_FAIL,
};

struct hostcheck_item {
    const char *id;                /* "kvm-device", "cpu-virt", ... (stable) */
    const char *title;             /* "KVM device present" */
    bool kvm;                      /* a KVM check: failing, no VM can start */
    enum hostcheck_status status;
    char detail[384];              /* what was found */
    char hint[512];                /* what to do ("" when nothing) */
};

#define HOSTCHECK_MAX 16

struct hostcheck_report {
    unsigned n;
    struct hostcheck_item items[HOSTCHECK_MAX];
    enum hostcheck_status verdict; /* the worst status (PASS when all pass) */
    unsigned nfail, nwarn;
};

/* Where the checks look; NULL fields mean the system's own (tests point
 * them at files of their own). */
struct hostcheck_sources {
    const char *kvm_device;        /* $BURROW_KVM_DEVICE, else /dev/kvm */
    const char *cpuinfo;           /* /proc/cpuinfo */
    const char *pvm_module;        /* /sys/module/kvm_pvm */
    const char *group_file;        /* /etc/group */
};

/* Runs every check.  Never fails: what cannot be found is a check's
 * result.  src may be NULL. */
void hostcheck_run(struct hostcheck_report *r, const struct hostcheck_sources *src);

/* "PASS", "WARN", "FAIL", "SKIP". */
const char *hostcheck_status_name(enum hostcheck_status s);

/* True when no KVM check failed (a VM can be started). */
bool hostcheck_kvm_ok(const struct hostcheck_report *r);

/* One line for the whole report, e.g. "FAIL: 2 checks failed; Burrow
 * cannot run virtual machines on this host". */
void hostcheck_verdict_text(const struct hostcheck_report *r, char *buf, size_t len);

/* {"verdict":..., "summary":..., "checks":[{"id","title","kvm","status",
 * "detail","hint"}...]}; caller json_decref's. */
json_t *hostcheck_json(const struct hostcheck_report *r);

/* The checks with status min (HOSTCHECK_FAIL or HOSTCHECK_WARN) or worse
 * (kvm_only: only the KVM ones), each as "detail\n→ hint", separated by
 * blank lines; caller g_free's.  "" when there are none. */
char *hostcheck_problems_text(const struct hostcheck_report *r, enum hostcheck_status min, bool kvm_only);

/* ---- pure parts, for tests ------------------------------------------------------ */

#define HOSTCHECK_CPU_VMX 1u
#define HOSTCHECK_CPU_SVM 2u
/* The virtualization flags the "flags" lines of /proc/cpuinfo text name. */
unsigned hostcheck_cpu_flags(const char *cpuinfo);

#endif
