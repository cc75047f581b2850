/* The seccomp sandbox of burrow-vm.
 *
 * burrow-vm parses what a guest writes to hundreds of device registers,
 * DMA rings and network packets: a bug there is a bug an untrusted guest
 * can reach.  Once the machine is built, the process needs few system
 * calls, so it keeps only those: a guest that took over the process still
 * cannot run programs, trace others, change its privileges, load kernel
 * modules or BPF, or make new namespaces.
 *
 * Set-up (opening /dev/kvm and the images, creating the devices, SDL's and
 * X11's initialisation, the listeners) runs unconfined; the filter goes on
 * afterwards, on every thread at once (TSYNC), so the threads already
 * running get it too, and the threads started later inherit it.  Anything
 * off the list raises SIGSYS: the handler writes one line naming the call
 * to stderr (the VM's log) and ends the process, which is easier to act on
 * than a silent kill or a call that fails somewhere deep in a library. */
#include "vmm/sandbox.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/fs.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "devices/chardev.h"

#ifndef SOCK_TYPE_MASK
#define SOCK_TYPE_MASK 0xf   /* the type bits of socket()'s second argument, below the flags */
#endif

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1   /* si_code of a seccomp SIGSYS (linux/siginfo.h, which clashes with glibc's) */
#endif

/* System calls allowed with any arguments.  Grouped by what needs them;
 * the ones that take argument checks are in install_conditional(). */
static const char *const allowed[] = {
    /* Memory: malloc, thread stacks, guest RAM (KSM hints), the VGA's
     * framebuffer reset, the mapped rings of io_uring and kvm_run. */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    /* Threads and locks.  glibc registers rseq and the robust futex list
     * in every new thread. */
    "futex", "set_robust_list", "rseq", "sched_yield",
    "sched_getaffinity", "gettid", "getpid", "exit", "exit_group",
    "restart_syscall",
    /* Signals: the vCPU kick, the terminal restore on fatal signals, this
     * file's SIGSYS handler. */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    /* Time (the vDSO falls back to real calls on some clock sources). */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep",
    "clock_nanosleep",
    /* File descriptors: images, the serial console, logs, sockets. */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
    "pwritev", "preadv2", "pwritev2", "lseek", "close", "dup", "dup2",
    "dup3", "fcntl", "fstat", "newfstatat", "statx", "fsync", "fdatasync",
    "fallocate", "ftruncate",
    /* Paths: a CD/DVD change opens a new image; screenshots are written to
     * a temporary file, chmod'ed and renamed into place; the control
     * socket's file goes when the VM ends; libraries read their files. */
    "open", "openat", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "fchmod", "umask", "readlink", "readlinkat", "access", "faccessat",
    "faccessat2", "getdents64",
    /* The I/O thread's event loop and its notifications. */
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll",
    "ppoll", "select", "pselect6", "eventfd2", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "signalfd4", "pipe2",
    /* Disk I/O; the CD/DVD drive sets up a new ring for a new medium. */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* Sockets: the control socket (with descriptors passed over it), the
     * VNC server and its viewers, the X server, user-mode networking's
     * TCP, UDP and ICMP on the guest's behalf and its host forwards.
     * socket() itself is checked below. */
    "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom",
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt",
    "getsockopt", "getsockname", "getpeername",
    /* The SDL window's shared-memory images (MIT-SHM). */
    "shmget", "shmat", "shmdt", "shmctl",
    /* Odds and ends libraries ask for. */
    "getrandom", "uname", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "sysinfo", "getcwd",
};

/* Names by number, filled before the filter goes on: the SIGSYS handler
 * may not allocate, and libseccomp's lookup does. */
#define NAMES_MAX 1024
static char *syscall_names[NAMES_MAX];

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t append_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at + 1 < cap)
        buf[at++] = digits[--n];
    return at;
}

/* Async-signal-safe only: no stdio, no malloc, no locks. */
static void on_sigsys(int sig, siginfo_t *si, void *ucontext)
{
    (void)sig;
    (void)ucontext;
    /* A serial console on a terminal left it raw; the line must show. */
    chardev_restore_terminal();
    char line[256];
    size_t n = 0;
    n = append(line, n, sizeof(line), "burrow-vm: error: sandbox: ");
    if (si->si_code == SYS_SECCOMP) {
        int nr = si->si_syscall;
        const char *name = nr >= 0 && nr < NAMES_MAX ? syscall_names[nr] : NULL;
        n = append(line, n, sizeof(line), "the system call ");
        n = append(line, n, sizeof(line), name ? name : "(unknown)");
        n = append(line, n, sizeof(line), " (");
        n = append_uint(line, n, sizeof(line), (unsigned)nr);
        n = append(line, n, sizeof(line), ") is not allowed");
    } else {
        n = append(line, n, sizeof(line), "SIGSYS from outside the sandbox");
    }
    n = append(line, n, sizeof(line), "; ending (run with --sandbox off to debug)\n");
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    _exit(1);
}

static int allow(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *cmp)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;   /* newer than this libseccomp: the kernel cannot have it either */
    return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
}

static int allow_if(scmp_filter_ctx ctx, const char *name, struct scmp_arg_cmp cmp)
{
    return allow(ctx, name, 1, &cmp);
}

/* Calls allowed only with some arguments: cheap checks that close what the
 * call could do beyond the VM's needs. */
static int install_conditional(scmp_filter_ctx ctx)
{
    int rc = 0;

    /* New threads only: no fork (nothing could be run in it), no new
     * namespaces.  clone3 passes its flags in memory a filter cannot read,
     * so it fails with ENOSYS, on which glibc falls back to clone. */
    const unsigned long clone_mask = CLONE_THREAD | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                     CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
    rc |= allow_if(ctx, "clone", SCMP_A0(SCMP_CMP_MASKED_EQ, clone_mask, CLONE_THREAD));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);

    /* No new folders, but a clean failure rather than the end of the VM:
     * libpulse makes sure of its runtime folder whenever it looks for the
     * session's sound server (the pa backend connects again by the
     * server's address, so this is only a safety net). */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(mkdir), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(mkdirat), 0);

    /* Signals to this process's own threads only (pthread_kill, raise). */
    rc |= allow_if(ctx, "tgkill", SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));

    /* Local, IPv4 and IPv6 streams and datagrams (user-mode networking's
     * pings are ICMP datagram sockets); no netlink, packet or other
     * families.  Raw sockets fail as they do for any user, so a library
     * that tries one falls back instead of ending the VM. */
    static const int domains[] = { AF_UNIX, AF_INET, AF_INET6 };
    static const int types[] = { SOCK_STREAM, SOCK_DGRAM };
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
        for (size_t j = 0; j < sizeof(types) / sizeof(types[0]); j++) {
            struct scmp_arg_cmp cmp[] = {
                SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]),
                SCMP_A1(SCMP_CMP_MASKED_EQ, SOCK_TYPE_MASK, (scmp_datum_t)types[j]),
            };
            rc |= allow(ctx, "socket", 2, cmp);
        }
    }
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                           SCMP_A1(SCMP_CMP_MASKED_EQ, SOCK_TYPE_MASK, SOCK_RAW));
    rc |= allow_if(ctx, "socketpair", SCMP_A0(SCMP_CMP_EQ, AF_UNIX));

    /* Thread names (pthread_setname_np, SDL's threads). */
    rc |= allow_if(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    rc |= allow_if(ctx, "prctl", SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));

    /* Reading limits; setting them is not needed. */
    rc |= allow_if(ctx, "prlimit64", SCMP_A2(SCMP_CMP_EQ, 0));
    rc |= allow(ctx, "getrlimit", 0, NULL);

    /* ioctl: KVM's (the vCPU loop, memory slots, irqfd, ioeventfd, the
     * interrupt controllers), usbfs's, the terminal of a serial console on stdio,
     * sockets' queues and modes, an interface's index (if_nametoindex, for
     * a scoped IPv6 name server libslirp reads from resolv.conf), block
     * devices' sizes.  Others, TIOCSTI among them, are off. */
    rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVMIO << 8));
    /* usbfs ('U'): the host USB devices passed through (transfers,
     * claiming interfaces from the host's drivers and giving them back,
     * configurations, resets), on nodes the VM opened itself. */
    rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, (unsigned)'U' << 8));
    static const unsigned long ioctls[] = {
        TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX,
        SIOCGIFINDEX, BLKGETSIZE64, BLKSSZGET,
    };
    for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
        rc |= allow_if(ctx, "ioctl", SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
    return rc;
}

int sandbox_install(char *err, size_t errlen)
{
    uint32_t arch = seccomp_arch_native();
    for (int nr = 0; nr < NAMES_MAX; nr++)
        syscall_names[nr] = seccomp_syscall_resolve_num_arch(arch, nr);

    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        snprintf(err, errlen, "sandbox: cannot handle SIGSYS: %s", strerror(errno));
        return -1;
    }
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sys, NULL);

    /* No-new-privs: required for an unprivileged filter, and it keeps a
     * setuid program from gaining anything should one ever be run. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: cannot create a seccomp filter");
        return -1;
    }
    /* Other architectures' calls (int 0x80, x32) never belong here.  A
     * binary tree of checks rather than a chain: the vCPU loop's ioctl is
     * checked on every exit to user space. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc < 0)
        snprintf(err, errlen, "sandbox: this libseccomp lacks a filter attribute: %s",
                 strerror(-rc));
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++) {
        rc = allow(ctx, allowed[i], 0, NULL);
        if (rc < 0)
            snprintf(err, errlen, "sandbox: cannot allow %s: %s", allowed[i], strerror(-rc));
    }
    if (rc == 0 && install_conditional(ctx) < 0) {
        rc = -1;
        snprintf(err, errlen, "sandbox: cannot add the argument checks");
    }
    if (rc == 0) {
        rc = seccomp_load(ctx);
        if (rc < 0)
            snprintf(err, errlen, "sandbox: cannot load the seccomp filter: %s", strerror(-rc));
    }
    seccomp_release(ctx);
    return rc < 0 ? -1 : 0;
}
