#include "vmm/kvmdev.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/kvm.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOAD_KVM "load kvm_intel or kvm_amd (sudo modprobe kvm_intel, or kvm_amd on AMD)"

void kvmdev_probe_init(struct kvmdev_probe *p)
{
    memset(p, 0, sizeof(*p));
    const char *env = getenv(KVMDEV_ENV);
    p->from_env = env && *env;
    snprintf(p->path, sizeof(p->path), "%s", p->from_env ? env : KVMDEV_DEFAULT_PATH);
    p->version = -1;
}

static int failed(struct kvmdev_probe *p, enum kvmdev_fault f, int err)
{
    p->fault = f;
    p->err = err;
    return -1;
}

static bool is_kvm_node(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) == KVMDEV_MAJOR &&
           minor(st->st_rdev) == KVMDEV_MINOR;
}

int kvmdev_open(struct kvmdev_probe *p)
{
    p->fault = KVMDEV_OK;
    if (stat(p->path, &p->st) < 0)
        return failed(p, errno == ENOENT || errno == ENOTDIR ? KVMDEV_MISSING : KVMDEV_OPEN_FAILED, errno);
    p->have_stat = true;
    if (!is_kvm_node(&p->st))
        return failed(p, KVMDEV_NOT_DEVICE, 0);
    /* Never O_CREAT: where the device is missing, that would leave an
     * empty file in its place for everyone after. */
    int fd = open(p->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)   /* it went away since stat */
            return failed(p, KVMDEV_MISSING, errno);
        return failed(p, errno == EACCES || errno == EPERM ? KVMDEV_NO_ACCESS : KVMDEV_OPEN_FAILED, errno);
    }
    p->version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (p->version != KVM_API_VERSION) {
        int e = p->version < 0 ? errno : 0;
        close(fd);
        return failed(p, KVMDEV_BAD_VERSION, e);
    }
    return fd;
}

int kvmdev_create_vm(int kvm_fd, struct kvmdev_probe *p)
{
    int vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm < 0)
        return failed(p, KVMDEV_NO_VM, errno);
    p->fault = KVMDEV_OK;
    return vm;
}

/* ---- who may open it ------------------------------------------------------------ */

/* Does the comma-separated list hold name? */
static bool list_has(const char *list, size_t len, const char *name)
{
    size_t n = strlen(name);
    while (len > 0) {
        const char *comma = memchr(list, ',', len);
        size_t item = comma ? (size_t)(comma - list) : len;
        if (n && item == n && !memcmp(list, name, n))
            return true;
        if (!comma)
            break;
        len -= item + 1;
        list = comma + 1;
    }
    return false;
}

/* One line of a group file ("name:password:gid:members", len bytes, no
 * newline): true when it is group's, with *gid and *member. */
static bool group_line(const char *line, size_t len, const char *group, const char *user,
                       gid_t primary_gid, gid_t *gid, bool *member)
{
    if (len && line[len - 1] == '\r')
        len--;
    const char *f[4];
    size_t nf = 0;
    f[nf++] = line;
    for (size_t i = 0; i < len && nf < 4; i++)
        if (line[i] == ':')
            f[nf++] = line + i + 1;
    size_t glen = strlen(group);
    if (nf < 4 || !glen || (size_t)(f[1] - 1 - f[0]) != glen || memcmp(f[0], group, glen))
        return false;
    char num[16], *end;
    size_t nlen = (size_t)(f[3] - 1 - f[2]);
    if (nlen == 0 || nlen >= sizeof(num) || f[2][0] < '0' || f[2][0] > '9')
        return false;
    memcpy(num, f[2], nlen);
    num[nlen] = '\0';
    errno = 0;
    unsigned long v = strtoul(num, &end, 10);
    if (errno || *end || v > UINT_MAX)
        return false;
    *gid = (gid_t)v;
    *member = *gid == primary_gid || (user && list_has(f[3], len - (size_t)(f[3] - line), user));
    return true;
}

bool kvmdev_group_parse(const char *text, const char *group, const char *user, gid_t primary_gid,
                        gid_t *gid, bool *member)
{
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (group_line(line, len, group, user, primary_gid, gid, member))
            return true;
        line = nl ? nl + 1 : NULL;
    }
    return false;
}

/* The same, read from a file line by line; false when it cannot be read. */
static bool group_file_lookup(const char *path, const char *group, const char *user, gid_t primary_gid,
                              gid_t *gid, bool *member)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool found = false;
    while (!found && (n = getline(&line, &cap, f)) >= 0)
        found = group_line(line, n && line[n - 1] == '\n' ? (size_t)n - 1 : (size_t)n, group, user,
                           primary_gid, gid, member);
    free(line);
    fclose(f);
    return found;
}

static bool in_session(gid_t gid)
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

void kvmdev_access_facts(const struct stat *st, const char *group_file, struct kvmdev_access *a)
{
    memset(a, 0, sizeof(*a));
    a->mode = st->st_mode & 07777;
    a->root = geteuid() == 0;
    /* The _r lookups: the manager runs this on a worker thread. */
    gid_t primary = (gid_t)-1;
    struct passwd pwbuf, *pw = NULL;
    char pwtext[1024];
    if (getpwuid_r(geteuid(), &pwbuf, pwtext, sizeof(pwtext), &pw) == 0 && pw) {
        snprintf(a->user, sizeof(a->user), "%s", pw->pw_name);
        primary = pw->pw_gid;
    }
    struct group grbuf, *gr = NULL;
    char *grtext = malloc(64 * 1024);   /* room for a long member list */
    if (!grtext || getgrgid_r(st->st_gid, &grbuf, grtext, 64 * 1024, &gr) != 0)
        gr = NULL;
    if (gr)
        snprintf(a->group, sizeof(a->group), "%s", gr->gr_name);
    else
        snprintf(a->group, sizeof(a->group), "%u", (unsigned)st->st_gid);
    a->group_in_session = in_session(st->st_gid);

    /* Listed in the group file: what the next login will have. */
    gid_t gid;
    bool member = false;
    if (gr && group_file_lookup(group_file ? group_file : "/etc/group", a->group, a->user, primary, &gid,
                                &member)) {
        a->group_listed = member;
    } else if (gr) {
        a->group_listed = st->st_gid == primary;
        for (char **m = gr->gr_mem; m && *m && !a->group_listed; m++)
            a->group_listed = a->user[0] && !strcmp(*m, a->user);
    }
    free(grtext);
}

void kvmdev_access_hint(const struct kvmdev_access *a, const char *path, char *todo, size_t tlen)
{
    const char *user = a->user[0] ? a->user : "$USER";
    bool group_rw = (a->mode & 060) == 060;
    bool kvm_group = !strcmp(a->group, KVMDEV_GROUP);
    if (kvm_group && group_rw && !a->group_listed)
        snprintf(todo, tlen, "add your user to the '%s' group (sudo usermod -aG %s %s), then log out "
                 "and in again", a->group, a->group, user);
    else if (group_rw && a->group_listed && !a->group_in_session)
        snprintf(todo, tlen, "you are in the '%s' group, but this login session began before you were "
                 "added: log out and in again (or run 'newgrp %s' in this shell)", a->group, a->group);
    else if (group_rw && a->group_in_session)
        snprintf(todo, tlen, "your '%s' group may open it, yet the system refused: check its access "
                 "control list and security policy (getfacl %s; dmesg)", a->group, path);
    else
        snprintf(todo, tlen, "only its owner may open it: give it to the '%s' group with mode 0660 "
                 "(sudo chgrp %s %s; sudo chmod 0660 %s, as Debian's udev rules do), then add your "
                 "user to that group (sudo usermod -aG %s %s) and log in again",
                 KVMDEV_GROUP, KVMDEV_GROUP, path, path, KVMDEV_GROUP, user);
}

/* ---- explanations ---------------------------------------------------------------- */

static const char *node_kind(mode_t m)
{
    if (S_ISREG(m))
        return "regular file";
    if (S_ISDIR(m))
        return "directory";
    if (S_ISBLK(m))
        return "block device";
    if (S_ISCHR(m))
        return "character device";
    if (S_ISFIFO(m))
        return "FIFO";
    if (S_ISSOCK(m))
        return "socket";
    return "special file";
}

#define ENV_TODO "unset " KVMDEV_ENV ", or point it at the KVM device"

static void explain_node(const struct kvmdev_probe *p, const char *label, char *what, size_t wlen,
                         char *todo, size_t tlen)
{
    const struct stat *st = &p->st;
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        snprintf(what, wlen, "%s is the %s %u:%u, not the KVM device (character device %d:%d)", label,
                 node_kind(st->st_mode), major(st->st_rdev), minor(st->st_rdev), KVMDEV_MAJOR,
                 KVMDEV_MINOR);
    else
        snprintf(what, wlen, "%s is %s%s, not the KVM device (character device %d:%d)", label,
                 S_ISREG(st->st_mode) && st->st_size == 0 ? "an empty " : "a ",
                 node_kind(st->st_mode), KVMDEV_MAJOR, KVMDEV_MINOR);
    /* An empty file where the device should be is what an open with
     * O_CREAT (a shell's "<>" redirection) leaves when KVM was not loaded.
     * Removal is only advised for that, or for the real device's path:
     * never for whatever else a path given for tests names. */
    bool kvm_path = !strcmp(p->path, KVMDEV_DEFAULT_PATH);
    if (S_ISREG(st->st_mode) && (st->st_size == 0 || kvm_path))
        snprintf(todo, tlen, "something created it by mistake (a program that opened it while KVM "
                 "was not loaded): remove it (sudo rm %s), then " LOAD_KVM ", which makes the real "
                 "device", p->path);
    else if (kvm_path)
        snprintf(todo, tlen, "something else took its name: remove it (sudo rm %s%s), then " LOAD_KVM
                 ", which makes the real device", S_ISDIR(st->st_mode) ? "-r " : "", p->path);
    else if (p->from_env)
        snprintf(todo, tlen, ENV_TODO);
    else
        snprintf(todo, tlen, "use the KVM device, " KVMDEV_DEFAULT_PATH);
}

static void explain_no_vm(const struct kvmdev_probe *p, char *what, size_t wlen, char *todo, size_t tlen)
{
    snprintf(what, wlen, "KVM cannot create a virtual machine: %s", strerror(p->err));
    if (p->err == EBUSY)
        snprintf(todo, tlen, "the CPU's virtualization is held by another hypervisor (VirtualBox, "
                 "VMware) or could not be switched on for every CPU: quit the other hypervisor and "
                 "try again; 'sudo dmesg | grep -i kvm' says more");
    else if (p->err == ENOMEM)
        snprintf(todo, tlen, "the kernel is out of memory for a new VM: close programs or VMs and "
                 "try again");
    else if (p->err == EMFILE || p->err == ENFILE)
        snprintf(todo, tlen, "too many open files: raise the limit (ulimit -n) or close programs");
    else
        snprintf(todo, tlen, "make sure virtualization (VT-x/AMD-V) is enabled in the firmware setup "
                 "and not held by another hypervisor (VirtualBox, VMware); 'sudo dmesg | grep -i kvm' "
                 "gives the kernel's reason");
}

void kvmdev_explain(const struct kvmdev_probe *p, const char *group_file, char *what, size_t wlen,
                    char *todo, size_t tlen)
{
    const char *path = p->path;
    /* Say so when the path is not the real one, lest it mislead. */
    char label[sizeof(p->path) + 32];
    snprintf(label, sizeof(label), "%s%s", path, p->from_env ? " (from " KVMDEV_ENV ")" : "");
    switch (p->fault) {
    case KVMDEV_OK:
        snprintf(what, wlen, "%s is a working KVM device", label);
        snprintf(todo, tlen, "nothing");
        break;
    case KVMDEV_MISSING:
        snprintf(what, wlen, "%s does not exist, so KVM is not available on this host", label);
        if (p->from_env)
            snprintf(todo, tlen, ENV_TODO);
        else
            snprintf(todo, tlen, "enable virtualization (VT-x/AMD-V) in the firmware setup, then " LOAD_KVM);
        break;
    case KVMDEV_NOT_DEVICE:
        explain_node(p, label, what, wlen, todo, tlen);
        break;
    case KVMDEV_NO_ACCESS: {
        struct kvmdev_access a;
        kvmdev_access_facts(&p->st, group_file, &a);
        snprintf(what, wlen, "no permission to open %s read/write (group '%s', mode %04o)", label, a.group,
                 a.mode);
        kvmdev_access_hint(&a, path, todo, tlen);
        break;
    }
    case KVMDEV_OPEN_FAILED:
        snprintf(what, wlen, "cannot open %s: %s", label, strerror(p->err));
        if (p->err == ENODEV || p->err == ENXIO)
            snprintf(todo, tlen, "the kvm module is not loaded: " LOAD_KVM);
        else
            snprintf(todo, tlen, "check that it is the KVM device (ls -l %s) and that KVM loaded without "
                     "errors (sudo dmesg | grep -i kvm)", path);
        break;
    case KVMDEV_BAD_VERSION:
        if (p->version < 0)
            snprintf(what, wlen, "%s does not answer KVM's API version request: %s", label,
                     strerror(p->err));
        else
            snprintf(what, wlen, "%s answers KVM API version %d; Burrow needs %d", label, p->version,
                     KVM_API_VERSION);
        snprintf(todo, tlen, "this is not a KVM Burrow can use: run a Linux kernel with the stable KVM "
                 "API (every one since 2.6.22) and check 'sudo dmesg | grep -i kvm'");
        break;
    case KVMDEV_NO_VM:
        explain_no_vm(p, what, wlen, todo, tlen);
        break;
    }
}
