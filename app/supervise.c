/* Starting, watching and stopping burrow-vm processes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <pthread.h>

#include "app/supervise.h"
#include "app/vmdef.h"

#define START_TIMEOUT_MS    30000
#define QUIT_TIMEOUT_MS     5000
#define KILL_TIMEOUT_MS     5000
#define STATUS_TIMEOUT_MS   2000
#define LOG_ROTATE_BYTES    (4 * 1024 * 1024)
#define VM_BINARY           "burrow-vm"

const char *burrow_vm_state_name(enum burrow_vm_state s)
{
    switch (s) {
    case BURROW_VM_STOPPED: return "stopped";
    case BURROW_VM_STARTING: return "starting";
    case BURROW_VM_RUNNING: return "running";
    case BURROW_VM_PAUSED: return "paused";
    case BURROW_VM_GUEST_ERROR: return "guest-error";
    case BURROW_VM_STOPPING: return "stopping";
    case BURROW_VM_CRASHED: return "crashed";
    }
    return "unknown";
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* ---- the command line ----------------------------------------------------------- */

char **supervise_build_argv(const char *binary, const struct burrow_vmdef *def,
                            const struct vm_paths *p, const struct burrow_start_opts *opts,
                            struct burrow_error *err)
{
    static const struct burrow_start_opts no_opts;
    if (!opts)
        opts = &no_opts;
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(a, g_strdup(binary));
    g_ptr_array_add(a, g_strdup("--name"));
    g_ptr_array_add(a, g_strdup(def->name));
    if (def->uuid[0]) {
        g_ptr_array_add(a, g_strdup("--uuid"));
        g_ptr_array_add(a, g_strdup(def->uuid));
    }
    g_ptr_array_add(a, g_strdup("--memory"));
    g_ptr_array_add(a, g_strdup_printf("%u", def->memory_mib));
    g_ptr_array_add(a, g_strdup("--cpus"));
    g_ptr_array_add(a, g_strdup_printf("%u", def->cpus));
    g_ptr_array_add(a, g_strdup("--control"));
    g_ptr_array_add(a, g_strdup(p->control));
    g_ptr_array_add(a, g_strdup("--serial"));
    g_ptr_array_add(a, g_strdup_printf("unix:%s", p->console));

    for (unsigned i = 0; i < def->ndisks; i++) {
        const struct burrow_disk *k = &def->disks[i];
        GString *s = g_string_new(NULL);
        if (k->path[0] == '/')
            g_string_append(s, k->path);
        else
            g_string_append_printf(s, "%s/%s", p->dir, k->path);
        bool usb = !strcmp(k->interface, "usb");
        if (!usb)
            g_string_append_printf(s, ",if=%s", k->interface);
        /* raw is burrow-vm's default format: say only what differs. */
        if (strcmp(k->format, "raw"))
            g_string_append_printf(s, ",format=%s", k->format);
        if (k->readonly)
            g_string_append(s, ",readonly=on");
        g_ptr_array_add(a, g_strdup(usb ? "--usb-disk" : "--disk"));
        g_ptr_array_add(a, g_string_free(s, FALSE));
    }
    if (def->cdrom[0]) {
        g_ptr_array_add(a, g_strdup("--cdrom"));
        g_ptr_array_add(a, g_strdup(def->cdrom));
    }
    if (def->boot[0]) {
        g_ptr_array_add(a, g_strdup("--boot"));
        g_ptr_array_add(a, g_strdup(def->boot));
    }
    g_ptr_array_add(a, g_strdup("--usb"));
    g_ptr_array_add(a, g_strdup(def->usb ? "on" : "off"));
    for (unsigned i = 0; i < def->nusb_filters; i++) {
        char opt[128];
        burrow_usb_filter_option(&def->usb_filters[i], opt, sizeof(opt));
        g_ptr_array_add(a, g_strdup("--usb-filter"));
        g_ptr_array_add(a, g_strdup(opt));
    }
    /* A sound card.  pa finds the desktop's server as any program of the
     * session does, from the environment burrow-vm inherits. */
    if (strcmp(def->audio, "off")) {
        g_ptr_array_add(a, g_strdup("--audio"));
        g_ptr_array_add(a, g_strdup(def->audio));
        if (def->audio_in) {
            g_ptr_array_add(a, g_strdup("--audio-in"));
            g_ptr_array_add(a, g_strdup("on"));
        }
    }

    const char *display = opts->display ? opts->display : def->display;
    const char *listen = opts->vnc_listen ? opts->vnc_listen : def->vnc_listen;
    g_ptr_array_add(a, g_strdup("--display"));
    if (!strcmp(display, "vnc")) {
        if (!listen[0] || !vmdef_listen_valid(listen)) {
            burrow_error_set(err, "a VNC display needs HOST:PORT to listen on ('%s' is not)", listen);
            g_ptr_array_free(a, TRUE);
            return NULL;
        }
        g_ptr_array_add(a, g_strdup_printf("vnc:%s", listen));
        if (def->vnc_password_file[0]) {
            g_ptr_array_add(a, g_strdup("--vnc-password-file"));
            g_ptr_array_add(a, g_strdup(def->vnc_password_file));
        }
    } else if (!strcmp(display, "sdl") || !strcmp(display, "none") || !strcmp(display, "headless")) {
        g_ptr_array_add(a, g_strdup(display));
    } else {
        burrow_error_set(err, "display '%s' is not one of sdl, vnc, none", display);
        g_ptr_array_free(a, TRUE);
        return NULL;
    }

    for (unsigned i = 0; i < def->nnics; i++) {
        const struct burrow_nic *n = &def->nics[i];
        GString *s = g_string_new(n->mode);
        g_string_append_printf(s, ",model=%s", n->model);
        if (n->mac[0])
            g_string_append_printf(s, ",mac=%s", n->mac);
        for (unsigned j = 0; j < n->nhostfwd; j++)
            g_string_append_printf(s, ",hostfwd=%s", n->hostfwd[j]);
        g_ptr_array_add(a, g_strdup("--net"));
        g_ptr_array_add(a, g_string_free(s, FALSE));
    }
    g_ptr_array_add(a, NULL);
    g_ptr_array_set_free_func(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int supervise_find_vm_binary(char *buf, size_t len, struct burrow_error *err)
{
    const char *env = getenv("BURROW_VM");
    if (env && *env) {
        if (!executable(env)) {
            burrow_error_set(err, "BURROW_VM=%s is not an executable file", env);
            return -1;
        }
        return path_join(buf, len, err, "%s", env);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (path_join(buf, len, NULL, "%s/" VM_BINARY, self) == 0 && executable(buf))
                return 0;
        }
    }
    gchar *found = g_find_program_in_path(VM_BINARY);
    if (found) {
        int rc = path_join(buf, len, err, "%s", found);
        g_free(found);
        return rc;
    }
    burrow_error_set(err, "cannot find " VM_BINARY " (not next to this program nor in PATH; "
                     "set BURROW_VM)");
    return -1;
}

/* ---- liveness -------------------------------------------------------------------- */

static int read_pid(const char *path)
{
    char *s = read_file(path, NULL);
    if (!s)
        return 0;
    char *e;
    long v = strtol(s, &e, 10);
    bool ok = e != s && (*e == '\n' || *e == '\0') && v > 0 && v <= INT_MAX;
    free(s);
    return ok ? (int)v : 0;
}

/* True when pid is alive (not a zombie) and is a burrow-vm serving our
 * control socket: a recycled pid belongs to someone else. */
static bool pid_is_our_vm(int pid, const char *control)
{
    if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    char *stat = read_file(path, NULL);
    if (stat) {
        const char *rp = strrchr(stat, ')');
        bool zombie = rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
        free(stat);
        if (zombie)
            return false;
    }
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    size_t len;
    char *cmd = read_file(path, &len);
    if (!cmd)
        return false;
    bool match = false;
    for (size_t i = 0; i < len;) {
        const char *arg = cmd + i;
        size_t al = strlen(arg);
        if (!strcmp(arg, "--control") && i + al + 1 < len && !strcmp(arg + al + 1, control)) {
            match = true;
            break;
        }
        i += al + 1;
    }
    free(cmd);
    return match;
}

static bool vm_alive(const struct vm_paths *p, int pid)
{
    return lock_is_held(p->run) || pid_is_our_vm(pid, p->control);
}

void supervise_cleanup(struct burrow_vm *vm)
{
    unlink(vm->paths.pid);
    unlink(vm->paths.control);
    unlink(vm->paths.console);
    unlink(vm->paths.run);
}

static enum burrow_vm_state state_from_name(const char *s)
{
    if (!strcmp(s, "running"))
        return BURROW_VM_RUNNING;
    if (!strcmp(s, "paused"))
        return BURROW_VM_PAUSED;
    if (!strcmp(s, "guest-error"))
        return BURROW_VM_GUEST_ERROR;
    if (!strcmp(s, "shutdown"))
        return BURROW_VM_STOPPING;
    return BURROW_VM_STARTING;
}

/* Long paths may be cut: the detail is for people. */
static void set_detail(struct burrow_vm_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_detail(struct burrow_vm_status *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
    va_end(ap);
}

enum burrow_vm_state supervise_state(struct burrow_vm *vm, struct burrow_vm_status *st)
{
    struct burrow_vm_status tmp;
    if (!st)
        st = &tmp;
    memset(st, 0, sizeof(*st));
    const struct vm_paths *p = &vm->paths;
    int pid = read_pid(p->pid);
    if (!vm_alive(p, pid)) {
        struct stat sb;
        if (lstat(p->control, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
            st->state = BURROW_VM_CRASHED;
            if (pid)
                set_detail(st,
                         "burrow-vm (pid %d) ended without cleaning up; its log: %s", pid, p->log);
            else
                set_detail(st,
                         "burrow-vm ended without cleaning up; its log: %s", p->log);
        } else {
            st->state = BURROW_VM_STOPPED;
        }
        return st->state;
    }
    st->pid = pid;
    if (pid && !pid_is_our_vm(pid, p->control) && kill(pid, 0) == 0) {
        /* The run lock is still held but the main thread is a zombie: the
         * other threads are on their way out (a killed VM tears down its
         * memory first). */
        st->state = BURROW_VM_STOPPING;
        set_detail(st, "the process is exiting");
        return st->state;
    }
    if (!pid) {
        /* The run lock is held but no pid file yet: `start` is under way. */
        st->state = BURROW_VM_STARTING;
        return st->state;
    }
    struct burrow_error err;
    struct burrow_ctl *ctl = burrow_ctl_connect(p->control, 0, &err);
    if (!ctl) {
        st->state = BURROW_VM_STARTING;
        set_detail(st, "control socket not answering: %s", err.msg);
        return st->state;
    }
    json_t *reply = NULL;
    if (burrow_ctl_command(ctl, "status", NULL, &reply, STATUS_TIMEOUT_MS, &err) < 0) {
        st->state = BURROW_VM_STOPPING;
        set_detail(st, "status: %s", err.msg);
    } else {
        const char *s = json_string_value(json_object_get(reply, "state"));
        st->state = state_from_name(s ? s : "");
        const char *disp = json_string_value(json_object_get(reply, "display"));
        const char *vnc = json_string_value(json_object_get(reply, "vnc"));
        snprintf(st->display, sizeof(st->display), "%s", disp ? disp : "");
        snprintf(st->vnc_listen, sizeof(st->vnc_listen), "%s", vnc ? vnc : "");
        st->recording = json_is_true(json_object_get(json_object_get(reply, "audio"), "recording"));
    }
    json_decref(reply);
    burrow_ctl_close(ctl);
    return st->state;
}

enum burrow_vm_state burrow_vm_state(struct burrow_vm *vm, struct burrow_vm_status *st)
{
    return supervise_state(vm, st);
}

/* ---- start ---------------------------------------------------------------------- */

/* The last line burrow-vm wrote to the log after offset: why it ended. */
static void last_log_line(const char *log, off_t from, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t n;
    char *text = read_file(log, &n);
    if (!text)
        return;
    if ((size_t)from > n)
        from = 0;
    char *start = text + from;
    char *best = NULL;
    for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == '\r')
            line++;
        if (*line)
            best = line;
        /* An error line beats what comes after it (a "shutting down"). */
        if (strstr(line, "error") || strstr(line, "burrow-vm: "))
            if (!strstr(line, "info:"))
                best = line;
    }
    if (best)
        snprintf(buf, len, "%s", best);
    free(text);
}

static int open_log(const struct vm_paths *p, off_t *start, struct burrow_error *err)
{
    struct stat st;
    if (stat(p->log, &st) == 0 && st.st_size > LOG_ROTATE_BYTES) {
        char old[BURROW_PATH_MAX + 8];
        snprintf(old, sizeof(old), "%s.1", p->log);
        rename(p->log, old);
    }
    int fd = open(p->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        burrow_error_set(err, "cannot open the log %s: %s", p->log, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        burrow_error_set(err, "%s: %s", p->log, strerror(errno));
        close(fd);
        return -1;
    }
    *start = st.st_size;
    return fd;
}

static void log_header(int fd, char **argv)
{
    GString *s = g_string_new(NULL);
    GDateTime *now = g_date_time_new_now_local();
    gchar *ts = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
    g_string_append_printf(s, "==== %s burrow: starting:", ts);
    for (char **a = argv; *a; a++)
        g_string_append_printf(s, " %s", *a);
    g_string_append_c(s, '\n');
    if (write(fd, s->str, s->len) < 0) {
        /* the log is best effort; burrow-vm will report on its own */
    }
    g_free(ts);
    g_date_time_unref(now);
    g_string_free(s, TRUE);
}

/* Forks twice so burrow-vm belongs to no one here (a new session, adopted
 * by init): it outlives this program and is never our zombie.  Only
 * async-signal-safe calls between fork and exec: everything is prepared
 * before.  Returns burrow-vm's pid. */
static int spawn_detached(char **argv, int logfd, int runfd, struct burrow_error *err)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int pfd[2];
    if (devnull < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
        burrow_error_set(err, "cannot prepare to start: %s", strerror(errno));
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t mid = fork();
    if (mid == 0) {
        setsid();
        pid_t vm = fork();
        if (vm == 0) {
            dup2(devnull, 0);
            dup2(logfd, 1);
            dup2(logfd, 2);
            /* The run lock goes with burrow-vm: the kernel drops it when
             * the process ends, however it ends. */
            fcntl(runfd, F_SETFD, 0);
            if (chdir("/") < 0) {
                /* harmless: every path given is absolute */
            }
            struct sigaction dfl = { .sa_handler = SIG_DFL };
            for (int s = 1; s < NSIG; s++)
                sigaction(s, &dfl, NULL);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execv(argv[0], argv);
            int e = errno;
            if (write(pfd[1], &e, sizeof(e)) < 0) {
                /* nothing left to tell it with */
            }
            _exit(127);
        }
        int v = vm;
        if (write(pfd[1], &v, sizeof(v)) < 0) {
            /* the parent then sees no pid */
        }
        _exit(vm < 0 ? 1 : 0);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pfd[1]);
    close(devnull);
    if (mid < 0) {
        close(pfd[0]);
        burrow_error_set(err, "cannot fork: %s", strerror(errno));
        return -1;
    }
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
    int vals[2] = { 0, 0 };
    size_t got = 0;
    while (got < sizeof(vals)) {
        ssize_t n = read(pfd[0], (char *)vals + got, sizeof(vals) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(pfd[0]);
    if (got < sizeof(int) || vals[0] <= 0) {
        burrow_error_set(err, "cannot fork burrow-vm");
        return -1;
    }
    if (got >= 2 * sizeof(int)) {
        burrow_error_set(err, "cannot run %s: %s", argv[0], strerror(vals[1]));
        return -1;
    }
    return vals[0];
}

static bool wait_gone(const struct vm_paths *p, int pid, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (vm_alive(p, pid)) {
        if (now_ms() >= deadline)
            return false;
        usleep(50000);
    }
    return true;
}

/* "is already running (pid N)", or "(starting, pid N)" and the like. */
static void set_already(struct burrow_error *err, const char *name, const struct burrow_vm_status *st)
{
    if (st->state == BURROW_VM_RUNNING)
        burrow_error_set(err, "'%s' is already running (pid %d)", name, st->pid);
    else if (st->pid)
        burrow_error_set(err, "'%s' is already running (%s, pid %d)", name,
                         burrow_vm_state_name(st->state), st->pid);
    else
        burrow_error_set(err, "'%s' is already running (%s)", name,
                         burrow_vm_state_name(st->state));
}

/* After a start that failed: under the VM's lock again, and only while the
 * pid file still names the process this start made (a later start may own
 * the runtime files by now), ends that process when kill is set and
 * removes the runtime files.  Returns false when the process survives. */
static bool undo_start(struct burrow_vm *vm, int pid, bool kill_it)
{
    const struct vm_paths *p = &vm->paths;
    int lk = lock_file(p->lock, 10000, NULL);
    bool gone = true;
    if (read_pid(p->pid) == pid) {
        if (kill_it && pid_is_our_vm(pid, p->control))
            kill(pid, SIGKILL);
        gone = wait_gone(p, pid, KILL_TIMEOUT_MS);
        if (gone)
            supervise_cleanup(vm);
    } else if (kill_it && pid_is_our_vm(pid, p->control)) {
        kill(pid, SIGKILL);
        gone = wait_gone(p, pid, KILL_TIMEOUT_MS);
    }
    if (lk >= 0)
        close(lk);
    return gone;
}

int burrow_vm_start(struct burrow_vm *vm, const struct burrow_start_opts *opts,
                    struct burrow_error *err)
{
    const struct vm_paths *p = &vm->paths;
    /* The VM's lock makes the check and the spawn one step for every
     * start; it is let go once the process runs and its pid file is
     * written, so that a second start says at once that it is already
     * running rather than wait for this one to end. */
    int lk = lock_file(p->lock, 10000, err);
    if (lk < 0)
        return -1;
    int rc = -1, logfd = -1, runfd = -1;
    char **argv = NULL;
    /* Start what the file says now, not what this handle read earlier. */
    struct stat sb;
    if (vmdef_load(p->def, vm->def.name, &vm->def, &sb, err) < 0)
        goto out;
    struct burrow_vm_status st;
    enum burrow_vm_state s = supervise_state(vm, &st);
    /* A process on its way out: give it a moment rather than refuse. */
    for (int i = 0; i < 100 && s == BURROW_VM_STOPPING; i++) {
        usleep(100000);
        s = supervise_state(vm, &st);
    }
    if (s == BURROW_VM_CRASHED || s == BURROW_VM_STOPPED) {
        supervise_cleanup(vm);   /* stale files of an earlier run */
    } else {
        set_already(err, vm->def.name, &st);
        goto out;
    }
    char binary[BURROW_PATH_MAX];
    if (supervise_find_vm_binary(binary, sizeof(binary), err) < 0)
        goto out;
    argv = supervise_build_argv(binary, &vm->def, p, opts, err);
    if (!argv)
        goto out;
    if (strlen(p->control) >= 108 || strlen(p->console) >= 108) {
        burrow_error_set(err, "the runtime directory's path is too long for a socket (%s)",
                         p->control);
        goto out;
    }
    off_t log_start;
    logfd = open_log(p, &log_start, err);
    if (logfd < 0)
        goto out;
    log_header(logfd, argv);
    struct stat ls;
    if (fstat(logfd, &ls) == 0)
        log_start = ls.st_size;
    runfd = run_lock_take(p->run, err);
    if (runfd < 0)
        goto out;
    int pid = spawn_detached(argv, logfd, runfd, err);
    close(runfd);   /* burrow-vm holds it now */
    runfd = -1;
    if (pid < 0)
        goto out;
    char pidtext[32];
    int n = snprintf(pidtext, sizeof(pidtext), "%d\n", pid);
    if (write_file_atomic(p->pid, pidtext, (size_t)n, 0600, err) < 0) {
        kill(pid, SIGKILL);
        goto out;
    }
    close(lk);
    lk = -1;

    int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : START_TIMEOUT_MS;
    long long deadline = now_ms() + timeout;
    for (;;) {
        if (!vm_alive(p, pid)) {
            char why[400];
            usleep(50000);   /* let the last words reach the log */
            last_log_line(p->log, log_start, why, sizeof(why));
            burrow_error_set(err, "'%s' did not start: %s", vm->def.name,
                             why[0] ? why : "burrow-vm exited without a message");
            undo_start(vm, pid, false);
            goto out;
        }
        struct burrow_error cerr;
        struct burrow_ctl *ctl = burrow_ctl_connect(p->control, 0, &cerr);
        if (ctl) {
            json_t *reply = NULL;
            int r = burrow_ctl_command(ctl, "status", NULL, &reply, STATUS_TIMEOUT_MS, &cerr);
            json_decref(reply);
            burrow_ctl_close(ctl);
            if (r == 0) {
                rc = 0;
                break;
            }
        }
        if (now_ms() > deadline) {
            /* Leave nothing half started behind: a VM that comes up after
             * its start reported failure would surprise everyone. */
            if (undo_start(vm, pid, true))
                burrow_error_set(err, "'%s' did not answer on %s within %d s, so its burrow-vm "
                                 "(pid %d) was ended; see %s", vm->def.name, p->control,
                                 timeout / 1000, pid, p->log);
            else
                burrow_error_set(err, "'%s' did not answer on %s within %d s, and its burrow-vm "
                                 "(pid %d) could not be ended; see %s", vm->def.name, p->control,
                                 timeout / 1000, pid, p->log);
            break;
        }
        usleep(50000);
    }
out:
    if (runfd >= 0)
        close(runfd);
    if (logfd >= 0)
        close(logfd);
    g_strfreev(argv);
    if (lk >= 0)
        close(lk);
    return rc;
}

/* ---- stop and commands --------------------------------------------------------------- */

int burrow_vm_command(struct burrow_vm *vm, const char *command, json_t *args, json_t **reply,
                      struct burrow_error *err)
{
    if (reply)
        *reply = NULL;
    struct burrow_vm_status st;
    enum burrow_vm_state s = supervise_state(vm, &st);
    if (s == BURROW_VM_STOPPED || s == BURROW_VM_CRASHED) {
        burrow_error_set(err, "'%s' is not running", vm->def.name);
        return -1;
    }
    struct burrow_ctl *ctl = burrow_vm_connect(vm, err);
    if (!ctl)
        return -1;
    json_t *r = NULL;
    int rc = burrow_ctl_command(ctl, command, args, &r, 0, err);
    burrow_ctl_close(ctl);
    if (reply)
        *reply = r;
    else
        json_decref(r);
    return rc;
}

struct burrow_ctl *burrow_vm_connect(struct burrow_vm *vm, struct burrow_error *err)
{
    return burrow_ctl_connect(vm->paths.control, 2000, err);
}

/* One control command straight to the socket, without the state check of
 * burrow_vm_command (the caller made it). */
static int vm_ctl(struct burrow_vm *vm, const char *command, int timeout_ms, struct burrow_error *err)
{
    struct burrow_ctl *ctl = burrow_vm_connect(vm, err);
    if (!ctl)
        return -1;
    int rc = burrow_ctl_command(ctl, command, NULL, NULL, timeout_ms, err);
    burrow_ctl_close(ctl);
    return rc;
}

int burrow_vm_stop(struct burrow_vm *vm, bool force, int timeout_ms, struct burrow_error *err)
{
    const struct vm_paths *p = &vm->paths;
    struct burrow_vm_status st;
    enum burrow_vm_state s = supervise_state(vm, &st);
    if (s == BURROW_VM_CRASHED) {
        supervise_cleanup(vm);
        return 0;
    }
    if (s == BURROW_VM_STOPPED) {
        supervise_cleanup(vm);
        burrow_error_set(err, "'%s' is not running", vm->def.name);
        return -1;
    }
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    int pid = st.pid;
    if (!force) {
        if (s == BURROW_VM_RUNNING) {
            struct burrow_error cerr;
            if (vm_ctl(vm, "powerdown", 0, &cerr) < 0) {
                burrow_error_set(err, "'%s': the power button: %s", vm->def.name, cerr.msg);
                return -1;
            }
        } else if (s != BURROW_VM_STOPPING) {
            burrow_error_set(err, "'%s' is %s: the guest cannot see the power button (resume it, "
                             "or use --force)", vm->def.name, burrow_vm_state_name(s));
            return -1;
        }
        if (wait_gone(p, pid, timeout_ms)) {
            supervise_cleanup(vm);
            return 0;
        }
        burrow_error_set(err, "'%s' did not power off within %d s (the guest may ignore the "
                         "power button); 'stop --force' ends it", vm->def.name, timeout_ms / 1000);
        return -1;
    }
    /* Forced: the guest is not asked.  "quit" ends the process at once
     * (burrow-vm flushes its disk images on the way out); SIGKILL when it
     * does not answer or does not go. */
    struct burrow_error qerr;
    if (vm_ctl(vm, "quit", STATUS_TIMEOUT_MS, &qerr) == 0 && wait_gone(p, pid, QUIT_TIMEOUT_MS)) {
        supervise_cleanup(vm);
        return 0;
    }
    if (!pid || !pid_is_our_vm(pid, p->control)) {
        if (wait_gone(p, pid, KILL_TIMEOUT_MS)) {
            supervise_cleanup(vm);
            return 0;
        }
        burrow_error_set(err, "'%s' does not quit and its process is unknown", vm->def.name);
        return -1;
    }
    kill(pid, SIGKILL);
    if (!wait_gone(p, pid, KILL_TIMEOUT_MS)) {
        burrow_error_set(err, "'%s' (pid %d) survives SIGKILL", vm->def.name, pid);
        return -1;
    }
    supervise_cleanup(vm);
    return 0;
}
