/* XDG directories, VM names, locks and atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "app/paths.h"

void burrow_error_set(struct burrow_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->cls[0] = '\0';
}

int path_join(char *buf, size_t len, struct burrow_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        burrow_error_set(err, "path too long: %.200s...", buf);
        return -1;
    }
    return 0;
}

/* Names become folder and socket names: any letter or digit (of any
 * script), spaces inside, and . _ + -.  Refused: '/', NUL and control
 * characters (never in a file name), a leading '.' (hidden, or "..") or
 * '-' (an option to every command), spaces at either end (vm.ini drops
 * them), and other punctuation (',' and ':' separate the fields of
 * burrow-vm's options, where the VM's folder appears). */
bool burrow_name_valid(const char *name, struct burrow_error *err)
{
    static const char allowed[] = "letters, digits, spaces, '.', '_', '-', '+'";
    if (!name || !*name) {
        burrow_error_set(err, "a VM name cannot be empty");
        return false;
    }
    size_t n = strlen(name);
    if (n > BURROW_NAME_MAX) {
        burrow_error_set(err, "VM name '%.70s...' is too long (at most %d bytes: %d letters "
                         "without accents, fewer with)", name, BURROW_NAME_MAX, BURROW_NAME_MAX);
        return false;
    }
    if (!g_utf8_validate(name, (gssize)n, NULL)) {
        burrow_error_set(err, "VM name is not valid UTF-8 text");
        return false;
    }
    if (name[0] == '.' || name[0] == '-') {
        burrow_error_set(err, "VM name '%s' cannot start with '%c'", name, name[0]);
        return false;
    }
    if (name[0] == ' ' || name[n - 1] == ' ') {
        burrow_error_set(err, "VM name '%s' cannot start or end with a space", name);
        return false;
    }
    for (const char *p = name; *p; p = g_utf8_next_char(p)) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80) {
            if (g_ascii_isalnum((char)c) || strchr("._-+ ", (char)c))
                continue;
            if (c == '/')
                burrow_error_set(err, "VM name '%s' cannot contain '/'", name);
            else if (c > 0x20 && c < 0x7f)
                burrow_error_set(err, "VM name '%s' cannot contain '%c' (use %s)", name, c, allowed);
            else
                burrow_error_set(err, "VM name cannot contain tabs, line breaks or control characters "
                                 "(use %s)", allowed);
            return false;
        }
        gunichar u = g_utf8_get_char(p);
        if (g_unichar_isalnum(u) || g_unichar_ismark(u))
            continue;
        char ch[8] = "";
        g_unichar_to_utf8(u, ch);
        if (g_unichar_iscntrl(u) || !g_unichar_isprint(u) || g_unichar_isspace(u))
            burrow_error_set(err, "VM name cannot contain invisible or control characters (use %s)",
                             allowed);
        else
            burrow_error_set(err, "VM name '%s' cannot contain '%s' (use %s)", name, ch, allowed);
        return false;
    }
    return true;
}

/* An XDG variable counts only when it holds an absolute path (the spec says
 * relative ones are to be ignored). */
static const char *xdg_var(const char *var)
{
    const char *v = getenv(var);
    return v && v[0] == '/' ? v : NULL;
}

static int xdg_home_dir(char *buf, size_t len, const char *var, const char *fallback,
                        struct burrow_error *err)
{
    const char *v = xdg_var(var);
    if (v)
        return path_join(buf, len, err, "%s/burrow", v);
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        burrow_error_set(err, "neither %s nor HOME is set to an absolute path", var);
        return -1;
    }
    return path_join(buf, len, err, "%s/%s/burrow", home, fallback);
}

int paths_vms_dir(char *buf, size_t len, struct burrow_error *err)
{
    char base[BURROW_PATH_MAX];
    if (xdg_home_dir(base, sizeof(base), "XDG_DATA_HOME", ".local/share", err) < 0)
        return -1;
    return path_join(buf, len, err, "%s/vms", base);
}

int paths_state_dir(char *buf, size_t len, struct burrow_error *err)
{
    if (xdg_home_dir(buf, len, "XDG_STATE_HOME", ".local/state", err) < 0)
        return -1;
    return mkdir_p(buf, 0700, err);
}

int paths_runtime_dir(char *buf, size_t len, struct burrow_error *err)
{
    const char *v = xdg_var("XDG_RUNTIME_DIR");
    if (v) {
        if (path_join(buf, len, err, "%s/burrow", v) < 0)
            return -1;
        return mkdir_p(buf, 0700, err);
    }
    /* No runtime directory: a private one in the temporary directory, made
     * by us and refused when someone else owns it or it is a link. */
    const char *tmp = xdg_var("TMPDIR");
    if (path_join(buf, len, err, "%s/burrow-%u", tmp ? tmp : "/tmp", (unsigned)getuid()) < 0)
        return -1;
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
        burrow_error_set(err, "cannot create %s: %s", buf, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077)) {
        burrow_error_set(err, "%s is not a private directory of this user; set XDG_RUNTIME_DIR",
                         buf);
        return -1;
    }
    return 0;
}

int mkdir_p(const char *path, mode_t mode, struct burrow_error *err)
{
    char tmp[BURROW_PATH_MAX];
    if (path_join(tmp, sizeof(tmp), err, "%s", path) < 0)
        return -1;
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST) {
                burrow_error_set(err, "cannot create directory %s: %s", tmp, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        burrow_error_set(err, "%s is not a directory", path);
        return -1;
    }
    return 0;
}

int vm_paths_get(const char *name, struct vm_paths *p, struct burrow_error *err)
{
    if (!burrow_name_valid(name, err))
        return -1;
    char vms[BURROW_PATH_MAX], run[BURROW_PATH_MAX], state[BURROW_PATH_MAX];
    if (paths_vms_dir(vms, sizeof(vms), err) < 0 || paths_runtime_dir(run, sizeof(run), err) < 0 ||
        paths_state_dir(state, sizeof(state), err) < 0)
        return -1;
    if (path_join(p->dir, sizeof(p->dir), err, "%s/%s", vms, name) < 0 ||
        path_join(p->def, sizeof(p->def), err, "%s/%s/" VM_DEF_FILE, vms, name) < 0 ||
        path_join(p->lock, sizeof(p->lock), err, "%s/%s.lock", run, name) < 0 ||
        path_join(p->run, sizeof(p->run), err, "%s/%s.run", run, name) < 0 ||
        path_join(p->pid, sizeof(p->pid), err, "%s/%s.pid", run, name) < 0 ||
        path_join(p->control, sizeof(p->control), err, "%s/%s.sock", run, name) < 0 ||
        path_join(p->console, sizeof(p->console), err, "%s/%s.console", run, name) < 0 ||
        path_join(p->log, sizeof(p->log), err, "%s/%s.log", state, name) < 0)
        return -1;
    return 0;
}

int lock_file(const char *path, int timeout_ms, struct burrow_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        burrow_error_set(err, "cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            burrow_error_set(err, "cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long el = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (timeout_ms >= 0 && el >= timeout_ms) {
            burrow_error_set(err, "another program holds %s (busy for %d s); try again", path,
                             timeout_ms / 1000);
            close(fd);
            return -1;
        }
        usleep(10000);
    }
}

/* The run lock is an open-file-description lock (F_OFD_SETLK) on the whole
 * file: like flock, it belongs to the open file, which burrow-vm inherits,
 * and the kernel drops it when the last descriptor closes, however the
 * process ends; unlike flock, it can be tested without taking it
 * (F_OFD_GETLK), so probes never stand in a start's way. */
int run_lock_take(const char *path, struct burrow_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        burrow_error_set(err, "cannot open the run lock %s: %s", path, strerror(errno));
        return -1;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EACCES)
            burrow_error_set(err, "another process holds the run lock %s", path);
        else
            burrow_error_set(err, "cannot take the run lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

bool lock_is_held(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);   /* takes nothing, so drops nothing */
    return held;
}

char *read_file(const char *path, size_t *lenp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            errno = ENOMEM;
            return NULL;
        }
        if (len + 1 >= cap) {
            if (cap >= 16 * 1024 * 1024) {   /* no definition is that large */
                free(buf);
                close(fd);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return buf;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct burrow_error *err)
{
    char tmp[BURROW_PATH_MAX], dir[BURROW_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        burrow_error_set(err, "'%s' is not an absolute path", path);
        return -1;
    }
    if (path_join(dir, sizeof(dir), err, "%.*s", (int)(slash - path), path) < 0 ||
        path_join(tmp, sizeof(tmp), err, "%s/.%s.XXXXXX", dir, slash + 1) < 0)
        return -1;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        burrow_error_set(err, "cannot create a file in %s: %s", dir, strerror(errno));
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            burrow_error_set(err, "cannot write %s: %s", tmp, strerror(errno));
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        burrow_error_set(err, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        burrow_error_set(err, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        burrow_error_set(err, "cannot replace %s: %s", path, strerror(errno));
        goto fail;
    }
    /* The rename itself must reach the disk too. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}
