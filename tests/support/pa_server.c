/* A private PulseAudio server for tests (pa_server.h). */
#include "support/pa_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_LIMIT_MS 30000    /* a loaded machine starts it in well under a second */

extern char **environ;

/* The environment of the server and the tools: nothing of the user's or
 * the system's, its own folders only.  Made before fork: the test process
 * has threads (libpulse's), so the child may not allocate. */
struct child_env {
    char **envp;
    char vars[6][160];
};

static bool ours(const char *v)
{
    static const char *const names[] = { "HOME=", "XDG_CONFIG_HOME=", "PULSE_RUNTIME_PATH=",
        "XDG_RUNTIME_DIR=", "PULSE_STATE_PATH=", "PULSE_SERVER=", "DISPLAY=",
        "DBUS_SESSION_BUS_ADDRESS=" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strncmp(v, names[i], strlen(names[i])))
            return true;
    return false;
}

static bool child_env_make(const struct pa_server *s, struct child_env *e)
{
    size_t n = 0;
    while (environ[n])
        n++;
    e->envp = calloc(n + 8, sizeof(char *));
    if (!e->envp)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!ours(environ[i]))
            e->envp[k++] = environ[i];
    snprintf(e->vars[0], sizeof(e->vars[0]), "HOME=%s", s->dir);
    snprintf(e->vars[1], sizeof(e->vars[1]), "XDG_CONFIG_HOME=%s/config", s->dir);
    snprintf(e->vars[2], sizeof(e->vars[2]), "PULSE_RUNTIME_PATH=%s/runtime", s->dir);
    snprintf(e->vars[3], sizeof(e->vars[3]), "XDG_RUNTIME_DIR=%s/runtime", s->dir);
    snprintf(e->vars[4], sizeof(e->vars[4]), "PULSE_STATE_PATH=%s/state", s->dir);
    snprintf(e->vars[5], sizeof(e->vars[5]), "PULSE_SERVER=%s", s->server);
    for (int i = 0; i < 6; i++)
        e->envp[k++] = e->vars[i];
    e->envp[k] = NULL;
    return true;
}

static bool answers(const struct pa_server *s)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t n = strlen(s->socket);
    if (n >= sizeof(a.sun_path)) {
        close(fd);
        return false;
    }
    memcpy(a.sun_path, s->socket, n + 1);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static void log_tail(const struct pa_server *s, char *err, size_t errlen, size_t at)
{
    char path[96];
    snprintf(path, sizeof(path), "%s/pa.log", s->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    snprintf(err + at, errlen - at, "; its log: %s", n > 600 ? buf + n - 600 : buf);
}

int pa_server_start(struct pa_server *s, char *err, size_t errlen)
{
    if (!s->dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof(s->dir), "%s/burrow-pa-XXXXXX", tmp && strlen(tmp) < 24 ? tmp : "/tmp");
        if (!mkdtemp(s->dir)) {
            snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
            return -1;
        }
        snprintf(s->socket, sizeof(s->socket), "%s/native", s->dir);
        snprintf(s->server, sizeof(s->server), "unix:%s", s->socket);
    }
    char path[96];
    snprintf(path, sizeof(path), "%s/test.pa", s->dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* norewinds: a null sink that can rewind holds its monitor's data back
     * by its longest latency (2 s) in case it rewinds. */
    fprintf(f, "load-module module-null-sink sink_name=burrow_out rate=48000 channels=2 norewinds=1\n"
               "load-module module-null-sink sink_name=burrow_mic rate=48000 channels=2 norewinds=1\n"
               "load-module module-native-protocol-unix socket=%s auth-anonymous=1\n", s->socket);
    fclose(f);
    unlink(s->socket);
    char logp[96], script[112];
    snprintf(logp, sizeof(logp), "%s/pa.log", s->dir);
    snprintf(script, sizeof(script), "--file=%s", path);
    /* Real-time and high priority, as a desktop's server runs (where it
     * may: root, or rtkit's limits): the test machine's other work must not
     * stall it. */
    char *const argv[] = { "pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1",
        "--use-pid-file=no", "--system=no", "--realtime=yes", "--high-priority=yes",
        "--disallow-exit=yes", "--log-target=stderr", "--log-time=1",
        getenv("BURROW_PA_VERBOSE") ? "-vvvv" : "-v", script, NULL };
    struct child_env env;
    if (!child_env_make(s, &env)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    s->pid = fork();
    if (s->pid == 0) {
        /* It goes with the test, however the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int nul = open("/dev/null", O_RDONLY);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execvpe("pulseaudio", argv, env.envp);
        static const char msg[] = "cannot run pulseaudio (packaging/install-deps.sh installs it)\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    free(env.envp);
    if (log >= 0)
        close(log);
    if (s->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    for (unsigned waited = 0; waited < START_LIMIT_MS; waited += 20) {
        if (answers(s))
            return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            size_t at = (size_t)snprintf(err, errlen, "pulseaudio ended (status %d) before it answered",
                                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            log_tail(s, err, errlen, at < errlen ? at : errlen - 1);
            s->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    size_t at = (size_t)snprintf(err, errlen, "pulseaudio did not answer on %s within %d s", s->socket,
                                 START_LIMIT_MS / 1000);
    log_tail(s, err, errlen, at < errlen ? at : errlen - 1);
    pa_server_stop(s, true);
    return -1;
}

void pa_server_stop(struct pa_server *s, bool keep)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (!keep && s->dir[0]) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("rm", "rm", "-rf", "--", s->dir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
        s->dir[0] = 0;
    }
}

pid_t pa_server_spawn(const struct pa_server *s, char *const argv[], int in_fd, int *out_fd)
{
    int p[2] = { -1, -1 };
    struct child_env env;
    if (!child_env_make(s, &env))
        return -1;
    if (out_fd && pipe2(p, O_CLOEXEC) < 0) {
        free(env.envp);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int nul = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : nul, 0);
        dup2(out_fd ? p[1] : nul, 1);
        execvpe(argv[0], argv, env.envp);
        static const char msg[] = "cannot run a PulseAudio tool (packaging/install-deps.sh installs them)\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    free(env.envp);
    if (out_fd) {
        close(p[1]);
        if (pid < 0) {
            close(p[0]);
            return -1;
        }
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        *out_fd = p[0];
    }
    return pid;
}

char *pa_server_output(const struct pa_server *s, char *const argv[])
{
    int fd;
    pid_t pid = pa_server_spawn(s, argv, -1, &fd);
    if (pid < 0)
        return NULL;
    fcntl(fd, F_SETFL, 0);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    int st;
    waitpid(pid, &st, 0);
    if (buf)
        buf[len] = 0;
    return buf;
}
