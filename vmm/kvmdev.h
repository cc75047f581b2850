/* The KVM device node: finding, checking and opening it, and saying what
 * to do when that fails.  Shared by burrow-vm (vmm/kvm.c) and the host
 * checks of the VM library (app/hostcheck.c), so both say the same thing.
 * Plain C and libc only: no GLib, no KVM state. */
#ifndef BURROW_KVMDEV_H
#define BURROW_KVMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define KVMDEV_DEFAULT_PATH "/dev/kvm"
#define KVMDEV_MAJOR        10     /* a misc device ... */
#define KVMDEV_MINOR        232    /* ... with KVM's fixed minor */
#define KVMDEV_GROUP        "kvm"  /* the group distributions give it to */
/* Points the checks at another path instead of /dev/kvm; for tests. */
#define KVMDEV_ENV          "BURROW_KVM_DEVICE"

/* The first thing that went wrong, in the order the checks run. */
enum kvmdev_fault {
    KVMDEV_OK,
    KVMDEV_MISSING,        /* no such path */
    KVMDEV_NOT_DEVICE,     /* exists, but is not the character device 10:232 */
    KVMDEV_NO_ACCESS,      /* open: EACCES or EPERM */
    KVMDEV_OPEN_FAILED,    /* open: anything else */
    KVMDEV_BAD_VERSION,    /* KVM_GET_API_VERSION failed or is not 12 */
    KVMDEV_NO_VM,          /* KVM_CREATE_VM failed */
};

struct kvmdev_probe {
    char path[256];
    bool from_env;         /* path came from $BURROW_KVM_DEVICE */
    enum kvmdev_fault fault;
    int err;               /* errno of the call that failed, 0 if none */
    int version;           /* KVM_GET_API_VERSION's answer (-1: failed) */
    bool have_stat;
    struct stat st;        /* the node, once it was found */
};

/* Sets the probe's path: $BURROW_KVM_DEVICE when set and not empty, else
 * /dev/kvm; fault KVMDEV_OK. */
void kvmdev_probe_init(struct kvmdev_probe *p);

/* Checks the node and opens it read/write (never creating it), then asks
 * for the API version.  Returns the fd, or -1 with p->fault and p->err set.
 * Stops at the first fault. */
int kvmdev_open(struct kvmdev_probe *p);
/* KVM_CREATE_VM on an fd from kvmdev_open: the VM fd, or -1 with fault
 * KVMDEV_NO_VM. */
int kvmdev_create_vm(int kvm_fd, struct kvmdev_probe *p);

/* What a failed probe found (what) and what the user should do (todo),
 * one line each without a final period.  For KVMDEV_NO_ACCESS this looks
 * at the user's groups (group_file: NULL for /etc/group). */
void kvmdev_explain(const struct kvmdev_probe *p, const char *group_file, char *what, size_t wlen,
                    char *todo, size_t tlen);

/* ---- who may open the device ---------------------------------------------------- */

struct kvmdev_access {
    char user[64];         /* this user's login name ("" if unknown) */
    char group[64];        /* the device's group name ("" if unknown) */
    unsigned mode;         /* the device's permission bits */
    bool root;             /* effective uid 0 */
    bool group_listed;     /* the group file names the user in the device's
                            * group, or it is the user's primary group */
    bool group_in_session; /* this process has the device's group */
};

/* Gathers the facts above for a node (st from stat) from the system;
 * group_file: NULL for /etc/group (NSS answers when the group is not in it). */
void kvmdev_access_facts(const struct stat *st, const char *group_file, struct kvmdev_access *a);

/* Looks up group in the text of a group file ("name:x:gid:user,user").
 * Returns true when the group is there, with *gid and *member (user is
 * listed, or primary_gid is the group's).  Malformed lines are skipped. */
bool kvmdev_group_parse(const char *text, const char *group, const char *user, gid_t primary_gid,
                        gid_t *gid, bool *member);

/* What to do when the device exists but this user may not open it. */
void kvmdev_access_hint(const struct kvmdev_access *a, const char *path, char *todo, size_t tlen);

#endif
