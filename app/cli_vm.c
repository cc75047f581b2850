/* The `burrow` VM commands: create, list, show, modify, start, status, stop,
 * pause, resume, reset, console, screenshot, clone, delete, logs; and
 * host-check.
 * Every error is one line on stderr and a non-zero exit status (1 failure,
 * 2 usage). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <glib.h>

#include "app/burrow.h"
#include "app/cli.h"
#include "app/disk.h"
#include "app/hostcheck.h"
#include "app/vmdef.h"
#include "devices/block/block.h"

/* ---- helpers ------------------------------------------------------------------------ */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("burrow: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "burrow %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'burrow %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

/* The message for getopt_long's '?' or ':' (opterr is off). */
static int bad_option(const char *cmd, int c, char **argv)
{
    const char *opt = argv[optind - 1];
    if (c == ':')
        return usage_error(cmd, "option '%s' needs a value", opt);
    return usage_error(cmd, "unknown option '%s'", opt);
}

/* Strict whole number ("-5" parses, so that range errors can name it). */
static bool parse_ll(const char *s, long long *out)
{
    if (!s || !*s)
        return false;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e || (!(s[0] >= '0' && s[0] <= '9') && !(s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return false;
    *out = v;
    return true;
}

static int parse_memory(const char *cmd, const char *s, long long *out)
{
    if (!parse_ll(s, out) || *out < BURROW_MEMORY_MIN || *out > BURROW_MEMORY_MAX)
        return usage_error(cmd, "--memory: '%s' is not a size in MiB between %d and %d", s,
                           BURROW_MEMORY_MIN, BURROW_MEMORY_MAX);
    return 0;
}

static int parse_cpus(const char *cmd, const char *s, long long *out)
{
    if (!parse_ll(s, out) || *out < 1 || *out > BURROW_CPUS_MAX)
        return usage_error(cmd, "--cpus: '%s' is not a number between 1 and %d", s, BURROW_CPUS_MAX);
    return 0;
}

/* "20G", "512M", "1T", "1048576" (bytes); K/M/G/T are powers of 1024. */
static bool parse_size(const char *s, unsigned long long *out)
{
    if (!s || !(*s >= '0' && *s <= '9'))
        return false;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    switch (*e) {
    case 'k': case 'K': shift = 10; e++; break;
    case 'm': case 'M': shift = 20; e++; break;
    case 'g': case 'G': shift = 30; e++; break;
    case 't': case 'T': shift = 40; e++; break;
    default: break;
    }
    if (shift && (!strcmp(e, "iB") || !strcmp(e, "B")))
        e += strlen(e);
    if (*e || v == 0 || (shift && v > (ULLONG_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

static const char *ostype_list(void)
{
    static char buf[256];
    if (!buf[0]) {
        size_t n = 0;
        for (const struct burrow_ostype *t = burrow_ostypes(); t->id && n < sizeof(buf); t++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "", t->id);
    }
    return buf;
}

/* The one positional NAME of most commands. */
static int want_name(const char *cmd, int argc, char **argv, const char **name)
{
    if (optind >= argc)
        return usage_error(cmd, "missing the VM's NAME");
    if (optind + 1 < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    *name = argv[optind];
    struct burrow_error err;
    if (!burrow_name_valid(*name, &err))
        return fail("%s", err.msg);
    return 0;
}

static struct burrow_vm *load_or_fail(const char *name)
{
    struct burrow_error err;
    struct burrow_vm *vm = burrow_vm_load(name, &err);
    if (!vm)
        fail("%s", err.msg);
    return vm;
}

/* An error about VM name: the message as it is when it names the VM
 * already, else after the name, so that the name is said once. */
static int fail_vm(const char *name, const char *what, const struct burrow_error *err)
{
    char quoted[BURROW_NAME_MAX + 3];
    snprintf(quoted, sizeof(quoted), "'%s'", name);
    if (strstr(err->msg, quoted))
        return fail("%s", err->msg);
    return fail("'%s': %s%s%s", name, what ? what : "", what ? ": " : "", err->msg);
}

/* Memory and vCPUs against this host and the machine: warnings (printed
 * once the command succeeds) go to warn; what cannot work is refused.
 * memory_from and cpus_from say where the figures came from ("--memory"
 * or the OS type's default); 0 skips a check. */
struct fit_warnings {
    char text[2][300];
    unsigned n;
};

static int check_fit(const struct vmdef_host *h, unsigned long long memory_mib, bool memory_given,
                     unsigned cpus, bool cpus_given, struct fit_warnings *w)
{
    char why[200];
    if (memory_mib) {
        char what[64];
        if (memory_given)
            snprintf(what, sizeof(what), "--memory %llu", memory_mib);
        else
            snprintf(what, sizeof(what), "the OS type's %llu MiB of memory", memory_mib);
        switch (vmdef_memory_fit(h, memory_mib, why, sizeof(why))) {
        case VMDEF_FIT_NO: return fail("%s: %s; the VM could not run", what, why);
        case VMDEF_FIT_WARN:
            snprintf(w->text[w->n++], sizeof(w->text[0]), "%s: %s", what, why);
            break;
        case VMDEF_FITS: break;
        }
    }
    if (cpus) {
        char what[64];
        if (cpus_given)
            snprintf(what, sizeof(what), "--cpus %u", cpus);
        else
            snprintf(what, sizeof(what), "the OS type's %u vCPUs", cpus);
        switch (vmdef_cpus_fit(h, cpus, why, sizeof(why))) {
        case VMDEF_FIT_NO: return fail("%s: %s; the VM could not run", what, why);
        case VMDEF_FIT_WARN:
            snprintf(w->text[w->n++], sizeof(w->text[0]), "%s: %s", what, why);
            break;
        case VMDEF_FITS: break;
        }
    }
    return 0;
}

static void print_warnings(const struct fit_warnings *w)
{
    for (unsigned i = 0; i < w->n; i++)
        fprintf(stderr, "burrow: warning: %s\n", w->text[i]);
}

/* The handle for commands on a running VM: its definition, or, when that
 * is gone (its folder deleted while it ran) or broken but the VM still
 * runs, its runtime files alone (*orphan set; orphan may be NULL). */
static struct burrow_vm *load_live_or_fail(const char *name, bool *orphan)
{
    struct burrow_error err;
    bool dummy;
    if (!orphan)
        orphan = &dummy;
    *orphan = false;
    struct burrow_vm *vm = burrow_vm_load(name, &err);
    if (vm)
        return vm;
    vm = burrow_vm_open_runtime(name, NULL);
    if (vm && burrow_vm_state(vm, NULL) != BURROW_VM_STOPPED) {
        *orphan = true;
        return vm;
    }
    burrow_vm_free(vm);
    fail("%s", err.msg);
    return NULL;
}

#define HELP_OPT { "help", no_argument, NULL, 'h' }

/* Parses --help and, when flag is given, one boolean --FLAG.  Returns -1 to
 * go on (optind at the first operand), else the exit status: 0 after the
 * help text, 2 for an unknown option. */
static int parse_opts(const char *cmd, const char *help, int argc, char **argv,
                      const char *flag, bool *flag_set)
{
    const struct option opts[] = { { flag ? flag : "help", no_argument, NULL, 'f' }, HELP_OPT,
                                   { NULL, 0, NULL, 0 } };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", flag ? opts : opts + 1, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (c == 'f' && flag)
            *flag_set = true;
        else
            return bad_option(cmd, c, argv);
    }
    return -1;
}

/* Commands that take NAME and nothing else but --help. */
static int simple_args(const char *cmd, const char *help, int argc, char **argv, const char **name)
{
    int rc = parse_opts(cmd, help, argc, argv, NULL, NULL);
    if (rc >= 0)
        return rc == 0 ? -1 : rc + 1000;
    rc = want_name(cmd, argc, argv, name);
    return rc ? rc + 1000 : 0;
}
/* simple_args' results: 0 go on, -1 help shown (exit 0), 1000+rc: exit rc. */
#define SIMPLE_ARGS(cmd, help)                                        \
    const char *name;                                                 \
    do {                                                              \
        int r_ = simple_args(cmd, help, argc, argv, &name);           \
        if (r_ < 0)                                                   \
            return 0;                                                 \
        if (r_)                                                       \
            return r_ - 1000;                                         \
    } while (0)

/* ---- create --------------------------------------------------------------------- */

static const char help_create[] =
"Usage: burrow create NAME [OPTIONS]\n"
"Creates a virtual machine; its definition and new disk go to\n"
"$XDG_DATA_HOME/burrow/vms/NAME/.\n"
"\n"
"  --os TYPE              guest OS type, which picks the defaults (see below;\n"
"                         default linux64)\n"
"  --memory MIB           RAM in MiB\n"
"  --cpus N               virtual CPUs\n"
"  --disk PATH            attach this existing disk image (raw or qcow2; an\n"
"                         image of VirtualBox, VMware, Hyper-V: vdi, vmdk,\n"
"                         vhd, vhdx, needs --convert)\n"
"  --convert              convert a --disk in one of the formats Burrow only\n"
"                         reads into a qcow2 image in the VM's folder (the\n"
"                         original is not changed), with a progress bar\n"
"  --disk-size SIZE       create a new disk of SIZE (e.g. 20G); without --disk\n"
"                         or --disk-size a disk of the OS type's size is made\n"
"  --no-disk              no disk\n"
"  --disk-interface IF    virtio or sata\n"
"  --cdrom ISO            CD/DVD image to insert\n"
"  --net user|none        user-mode network adapter (default user) or none\n"
"  --nic-model MODEL      virtio or e1000\n"
"  --display DISPLAY      sdl, vnc or none\n"
"  --usb on|off           a USB tablet and keyboard (default on): the pointer\n"
"                         follows the host's without capturing it, in guests\n"
"                         with USB drivers\n"
"  --audio pa|none|off    a sound card (default: the OS type's): pa plays and\n"
"                         records through this desktop's PulseAudio (or\n"
"                         PipeWire) server; none plays into nothing; off: no card\n"
"  --audio-in on|off      the sound card's microphone (default off): the guest\n"
"                         records from this desktop's, and only while it records\n"
"  --help                 this text\n"
"\n"
"OS types (memory, CPUs, disk, disk interface, NIC, sound):\n";

static void print_create_help(void)
{
    fputs(help_create, stdout);
    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++)
        printf("  %-8s %-26s %5u MiB, %u CPU%s, %3u GiB, %s, %s, %s\n", t->id, t->label,
               t->memory_mib, t->cpus, t->cpus > 1 ? "s" : "", t->disk_gib, t->disk_interface,
               t->nic_model, t->audio);
}

static int cmd_create(int argc, char **argv)
{
    enum { O_OS = 256, O_MEMORY, O_CPUS, O_DISK, O_DISK_SIZE, O_NO_DISK, O_DISK_IF, O_CDROM,
           O_NET, O_NIC_MODEL, O_DISPLAY, O_USB, O_CONVERT, O_AUDIO, O_AUDIO_IN };
    static const struct option opts[] = {
        { "os", required_argument, NULL, O_OS },
        { "memory", required_argument, NULL, O_MEMORY },
        { "cpus", required_argument, NULL, O_CPUS },
        { "disk", required_argument, NULL, O_DISK },
        { "disk-size", required_argument, NULL, O_DISK_SIZE },
        { "no-disk", no_argument, NULL, O_NO_DISK },
        { "disk-interface", required_argument, NULL, O_DISK_IF },
        { "cdrom", required_argument, NULL, O_CDROM },
        { "net", required_argument, NULL, O_NET },
        { "nic-model", required_argument, NULL, O_NIC_MODEL },
        { "display", required_argument, NULL, O_DISPLAY },
        { "usb", required_argument, NULL, O_USB },
        { "convert", no_argument, NULL, O_CONVERT },
        { "audio", required_argument, NULL, O_AUDIO },
        { "audio-in", required_argument, NULL, O_AUDIO_IN },
        HELP_OPT, { NULL, 0, NULL, 0 },
    };
    struct burrow_vm_config cfg = { 0 };
    struct cli_bar bar = { .last = -1 };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': print_create_help(); return 0;
        case O_OS:
            if (!burrow_ostype_find(optarg))
                return usage_error("create", "--os: unknown OS type '%s' (known: %s)", optarg,
                                   ostype_list());
            cfg.os = optarg;
            break;
        case O_MEMORY:
            if (parse_memory("create", optarg, &cfg.memory_mib))
                return 2;
            break;
        case O_CPUS:
            if (parse_cpus("create", optarg, &cfg.cpus))
                return 2;
            break;
        case O_DISK: cfg.disk = optarg; break;
        case O_DISK_SIZE:
            if (!parse_size(optarg, &cfg.disk_size) || cfg.disk_size < (1ULL << 20) ||
                cfg.disk_size % 512)
                return usage_error("create", "--disk-size: '%s' is not a size of at least 1M "
                                   "in whole 512-byte sectors (e.g. 20G)", optarg);
            break;
        case O_NO_DISK: cfg.no_disk = true; break;
        case O_DISK_IF:
            if (strcmp(optarg, "virtio") && strcmp(optarg, "sata"))
                return usage_error("create", "--disk-interface: '%s' is not virtio or sata", optarg);
            cfg.disk_interface = optarg;
            break;
        case O_CDROM: cfg.cdrom = optarg; break;
        case O_NET:
            if (strcmp(optarg, "user") && strcmp(optarg, "none"))
                return usage_error("create", "--net: '%s' is not user or none", optarg);
            cfg.net = optarg;
            break;
        case O_NIC_MODEL:
            if (strcmp(optarg, "virtio") && strcmp(optarg, "e1000"))
                return usage_error("create", "--nic-model: '%s' is not virtio or e1000", optarg);
            cfg.nic_model = optarg;
            break;
        case O_DISPLAY:
            if (strcmp(optarg, "sdl") && strcmp(optarg, "vnc") && strcmp(optarg, "none"))
                return usage_error("create", "--display: '%s' is not sdl, vnc or none", optarg);
            if (!strcmp(optarg, "vnc"))
                return usage_error("create", "--display vnc: set the address with "
                                   "'burrow modify NAME --vnc HOST:PORT'");
            cfg.display = optarg;
            break;
        case O_USB:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return usage_error("create", "--usb: '%s' is not on or off", optarg);
            cfg.usb = optarg;
            break;
        case O_CONVERT: cfg.convert_disk = true; break;
        case O_AUDIO:
            if (strcmp(optarg, "pa") && strcmp(optarg, "none") && strcmp(optarg, "off"))
                return usage_error("create", "--audio: '%s' is not pa, none or off", optarg);
            cfg.audio = optarg;
            break;
        case O_AUDIO_IN:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return usage_error("create", "--audio-in: '%s' is not on or off", optarg);
            cfg.audio_in = optarg;
            break;
        default: return bad_option("create", c, argv);
        }
    }
    if ((cfg.disk != NULL) + (cfg.disk_size != 0) + cfg.no_disk > 1)
        return usage_error("create", "--disk, --disk-size and --no-disk exclude each other");
    int r = want_name("create", argc, argv, &cfg.name);
    if (r)
        return r;
    const struct burrow_ostype *os = cfg.os ? burrow_ostype_find(cfg.os) : burrow_ostype_default();
    if (cfg.audio_in && !strcmp(cfg.audio_in, "on") && !strcmp(cfg.audio ? cfg.audio : os->audio, "off"))
        return usage_error("create", "--audio-in on needs a sound card: add --audio pa (or none)");
    struct vmdef_host host;
    vmdef_host_query(&host);
    struct fit_warnings warn = { .n = 0 };
    if (check_fit(&host, cfg.memory_mib ? (unsigned long long)cfg.memory_mib : os->memory_mib,
                  cfg.memory_mib != 0, cfg.cpus ? (unsigned)cfg.cpus : os->cpus, cfg.cpus != 0,
                  &warn))
        return 1;
    if (cfg.convert_disk && isatty(2)) {
        cfg.progress = cli_progress;
        cfg.progress_opaque = &bar;
    }
    struct burrow_error err;
    struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
    if (bar.last >= 0)
        fprintf(stderr, "\n");
    if (!vm)
        return fail("%s", err.msg);
    print_warnings(&warn);
    const struct burrow_vmdef *d = burrow_vm_def(vm);
    printf("Created VM '%s' (%s, %u MiB, %u CPU%s) in %s\n", d->name, d->os, d->memory_mib,
           d->cpus, d->cpus > 1 ? "s" : "", burrow_vm_dir(vm));
    burrow_vm_free(vm);
    return 0;
}

/* ---- list, show, status ------------------------------------------------------------- */

static json_t *vm_json(struct burrow_vm *vm, const struct burrow_vm_status *st)
{
    const struct burrow_vmdef *d = burrow_vm_def(vm);
    json_t *disks = json_array(), *nics = json_array();
    for (unsigned i = 0; i < d->ndisks; i++) {
        char path[BURROW_PATH_MAX];
        burrow_vm_disk_path(vm, i, path, sizeof(path));
        json_array_append_new(disks, json_pack("{s:s,s:s,s:s,s:b}", "path", path, "interface",
                                               d->disks[i].interface, "format", d->disks[i].format,
                                               "readonly", d->disks[i].readonly));
    }
    for (unsigned i = 0; i < d->nnics; i++) {
        json_t *fwd = json_array();
        for (unsigned j = 0; j < d->nics[i].nhostfwd; j++)
            json_array_append_new(fwd, json_string(d->nics[i].hostfwd[j]));
        json_array_append_new(nics, json_pack("{s:s,s:s,s:s,s:o}", "mode", d->nics[i].mode,
                                              "model", d->nics[i].model, "mac", d->nics[i].mac,
                                              "hostfwd", fwd));
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:o,s:o,s:s,s:s}",
                          "name", d->name, "uuid", d->uuid, "os", d->os,
                          "memory_mib", (int)d->memory_mib, "cpus", (int)d->cpus,
                          "boot", d->boot, "display", d->display, "cdrom", d->cdrom,
                          "disks", disks, "nics", nics, "dir", burrow_vm_dir(vm),
                          "log", burrow_vm_log_path(vm));
    json_object_set_new(o, "usb", json_boolean(d->usb));
    json_t *filters = json_array();
    for (unsigned i = 0; i < d->nusb_filters; i++) {
        const struct burrow_usb_filter *f = &d->usb_filters[i];
        json_array_append_new(filters, json_pack("{s:s,s:s,s:s,s:s}", "name", f->name, "vid", f->vid,
                                                 "pid", f->pid, "serial", f->serial));
    }
    json_object_set_new(o, "usb_filters", filters);
    json_object_set_new(o, "audio", json_string(d->audio));
    json_object_set_new(o, "audio_in", json_boolean(d->audio_in));
    if (d->vnc_listen[0])
        json_object_set_new(o, "vnc_listen", json_string(d->vnc_listen));
    if (st) {
        json_object_set_new(o, "state", json_string(burrow_vm_state_name(st->state)));
        if (st->pid)
            json_object_set_new(o, "pid", json_integer(st->pid));
        if (st->detail[0])
            json_object_set_new(o, "detail", json_string(st->detail));
        if (st->recording)
            json_object_set_new(o, "recording", json_true());
    }
    return o;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

static const char help_list[] =
"Usage: burrow list [--json]\n"
"Lists the virtual machines with their state.  A VM whose folder was\n"
"deleted while it ran is listed as \"running (definition deleted)\" until it\n"
"is stopped ('burrow stop NAME' still reaches it).\n"
"\n"
"  --json     a JSON array of objects (name, state, os, memory_mib, cpus, ...;\n"
"             definition_deleted: true for a VM whose folder was deleted)\n"
"  --help     this text\n";

enum { L_NAME, L_STATE, L_OS, L_MEMORY, L_CPUS, L_NCOLS };

struct list_row {
    char *col[L_NCOLS];
};

static void add_row(GPtrArray *rows, const char *name, const char *state, const char *os,
                    const char *memory, const char *cpus)
{
    struct list_row *r = g_new0(struct list_row, 1);
    const char *v[L_NCOLS] = { name, state, os, memory, cpus };
    for (int i = 0; i < L_NCOLS; i++)
        r->col[i] = g_strdup(v[i]);
    g_ptr_array_add(rows, r);
}

static void free_row(gpointer p)
{
    struct list_row *r = p;
    for (int i = 0; i < L_NCOLS; i++)
        g_free(r->col[i]);
    g_free(r);
}

static gint row_cmp(gconstpointer a, gconstpointer b)
{
    const struct list_row *ra = *(struct list_row *const *)a, *rb = *(struct list_row *const *)b;
    return strcmp(ra->col[L_NAME], rb->col[L_NAME]);
}

/* The table, each column as wide as its longest entry. */
static void print_rows(GPtrArray *rows)
{
    static const char *const head[L_NCOLS] = { "NAME", "STATE", "OS", "MEMORY", "CPUS" };
    static const bool right[L_NCOLS] = { false, false, false, true, true };
    int w[L_NCOLS];
    for (int i = 0; i < L_NCOLS; i++)
        w[i] = (int)strlen(head[i]);
    /* Widths in characters: names may hold letters beyond ASCII. */
    for (guint r = 0; r < rows->len; r++) {
        const struct list_row *row = g_ptr_array_index(rows, r);
        for (int i = 0; i < L_NCOLS; i++)
            if ((int)g_utf8_strlen(row->col[i], -1) > w[i])
                w[i] = (int)g_utf8_strlen(row->col[i], -1);
    }
    for (guint r = 0; r <= rows->len; r++) {
        const char *const *cols = r == 0 ? head
                                         : (const char *const *)((const struct list_row *)
                                                                 g_ptr_array_index(rows, r - 1))->col;
        GString *line = g_string_new(NULL);
        for (int i = 0; i < L_NCOLS; i++) {
            if (i)
                g_string_append(line, "  ");
            int pad = w[i] - (int)g_utf8_strlen(cols[i], -1);
            if (right[i])
                g_string_append_printf(line, "%*s%s", pad, "", cols[i]);
            else
                g_string_append_printf(line, "%s%*s", cols[i], pad, "");
        }
        while (line->len && line->str[line->len - 1] == ' ')
            g_string_truncate(line, line->len - 1);
        puts(line->str);
        g_string_free(line, TRUE);
    }
}

static int cmd_list(int argc, char **argv)
{
    bool as_json = false;
    int rc_ = parse_opts("list", help_list, argc, argv, "json", &as_json);
    if (rc_ >= 0)
        return rc_;
    if (optind < argc)
        return usage_error("list", "unexpected argument '%s'", argv[optind]);
    struct burrow_error err;
    char **names = burrow_vm_list(&err);
    if (!names)
        return fail("%s", err.msg);
    char **orphans = burrow_vm_list_orphans(&err);
    if (!orphans) {
        burrow_strv_free(names);
        return fail("%s", err.msg);
    }
    json_t *arr = json_array();
    GPtrArray *rows = g_ptr_array_new_with_free_func(free_row);
    int rc = 0;
    for (char **n = names; *n; n++) {
        struct burrow_vm *vm = burrow_vm_load(*n, &err);
        if (!vm) {
            /* One broken definition must not hide the others. */
            fprintf(stderr, "burrow: %s\n", err.msg);
            rc = 1;
            if (as_json)
                json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", *n, "state",
                                                     "invalid", "error", err.msg));
            else
                add_row(rows, *n, "invalid", "", "", "");
            continue;
        }
        struct burrow_vm_status st;
        burrow_vm_state(vm, &st);
        const struct burrow_vmdef *d = burrow_vm_def(vm);
        if (as_json) {
            json_array_append_new(arr, vm_json(vm, &st));
        } else {
            char mem[32], cpus[16];
            snprintf(mem, sizeof(mem), "%u MiB", d->memory_mib);
            snprintf(cpus, sizeof(cpus), "%u", d->cpus);
            add_row(rows, d->name, burrow_vm_state_name(st.state), d->os, mem, cpus);
        }
        burrow_vm_free(vm);
    }
    for (char **n = orphans; *n; n++) {
        struct burrow_vm *vm = burrow_vm_open_runtime(*n, &err);
        if (!vm)
            continue;
        struct burrow_vm_status st;
        burrow_vm_state(vm, &st);
        if (st.state != BURROW_VM_STOPPED) {
            if (as_json) {
                json_t *o = json_pack("{s:s,s:s,s:b}", "name", *n, "state",
                                      burrow_vm_state_name(st.state), "definition_deleted", 1);
                if (st.pid)
                    json_object_set_new(o, "pid", json_integer(st.pid));
                json_object_set_new(o, "log", json_string(burrow_vm_log_path(vm)));
                json_array_append_new(arr, o);
            } else {
                char state[64];
                snprintf(state, sizeof(state), "%s (definition deleted)",
                         burrow_vm_state_name(st.state));
                add_row(rows, *n, state, "-", "-", "-");
            }
        }
        burrow_vm_free(vm);
    }
    if (as_json) {
        print_json(arr);
    } else if (rows->len) {
        g_ptr_array_sort(rows, row_cmp);
        print_rows(rows);
    }
    json_decref(arr);
    g_ptr_array_free(rows, TRUE);
    burrow_strv_free(names);
    burrow_strv_free(orphans);
    return rc;
}

static const char help_show[] =
"Usage: burrow show NAME [--json]\n"
"Shows a virtual machine's definition and state.\n"
"\n"
"  --json     as one JSON object\n"
"  --help     this text\n";

static int cmd_show(int argc, char **argv)
{
    bool as_json = false;
    int rc_ = parse_opts("show", help_show, argc, argv, "json", &as_json);
    if (rc_ >= 0)
        return rc_;
    const char *name;
    int r = want_name("show", argc, argv, &name);
    if (r)
        return r;
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    struct burrow_vm_status st;
    burrow_vm_state(vm, &st);
    if (as_json) {
        json_t *j = vm_json(vm, &st);
        print_json(j);
        json_decref(j);
        burrow_vm_free(vm);
        return 0;
    }
    const struct burrow_vmdef *d = burrow_vm_def(vm);
    const struct burrow_ostype *os = burrow_ostype_find(d->os);
    printf("Name:       %s\n", d->name);
    printf("UUID:       %s\n", d->uuid);
    printf("OS type:    %s (%s)\n", d->os, os ? os->label : "?");
    printf("Memory:     %u MiB\n", d->memory_mib);
    printf("CPUs:       %u\n", d->cpus);
    printf("Boot order: %s\n", d->boot[0] ? d->boot : "firmware default");
    if (!strcmp(d->display, "vnc"))
        printf("Display:    vnc on %s%s\n", d->vnc_listen, d->vnc_password_file[0] ? " (password)" : "");
    else
        printf("Display:    %s\n", d->display);
    printf("USB:        %s\n", d->usb ? "tablet and keyboard" : "off");
    if (!strcmp(d->audio, "off"))
        printf("Sound:      off\n");
    else
        printf("Sound:      %s, microphone %s\n",
               !strcmp(d->audio, "pa") ? "PulseAudio" : "a card that plays into nothing",
               d->audio_in ? "on" : "off");
    printf("CD/DVD:     %s\n", d->cdrom[0] ? d->cdrom : "(empty)");
    for (unsigned i = 0; i < d->ndisks; i++) {
        char path[BURROW_PATH_MAX];
        burrow_vm_disk_path(vm, i, path, sizeof(path));
        printf("Disk %u:     %s (%s, %s%s)\n", i, path, d->disks[i].interface, d->disks[i].format,
               d->disks[i].readonly ? ", read-only" : "");
    }
    if (!d->ndisks)
        printf("Disks:      none\n");
    for (unsigned i = 0; i < d->nnics; i++) {
        printf("NIC %u:      %s, %s, %s", i, d->nics[i].mode, d->nics[i].model,
               d->nics[i].mac[0] ? d->nics[i].mac : "random MAC");
        for (unsigned j = 0; j < d->nics[i].nhostfwd; j++)
            printf("%s%s", j ? ", " : "; forwards ", d->nics[i].hostfwd[j]);
        printf("\n");
    }
    if (!d->nnics)
        printf("Network:    none\n");
    for (unsigned i = 0; i < d->nusb_filters; i++) {
        const struct burrow_usb_filter *f = &d->usb_filters[i];
        printf("USB filter %u: %s:%s%s%s%s%s%s\n", i, f->vid[0] ? f->vid : "any", f->pid[0] ? f->pid : "any",
               f->serial[0] ? ", serial " : "", f->serial, f->name[0] ? " (" : "", f->name,
               f->name[0] ? ")" : "");
    }
    printf("State:      %s", burrow_vm_state_name(st.state));
    if (st.pid)
        printf(" (pid %d)", st.pid);
    if (st.recording)
        printf(", recording from the microphone");
    printf("\n");
    if (st.detail[0])
        printf("            %s\n", st.detail);
    printf("Directory:  %s\n", burrow_vm_dir(vm));
    printf("Log:        %s\n", burrow_vm_log_path(vm));
    burrow_vm_free(vm);
    return 0;
}

static const char help_status[] =
"Usage: burrow status NAME [--json]\n"
"Prints the live state of a virtual machine: stopped, starting, running,\n"
"paused, guest-error, stopping, or crashed (its process died without\n"
"cleaning up; 'burrow start' runs it again).\n"
"\n"
"A VM started with a VNC server says where it listens.\n"
"\n"
"  --json     {\"state\":..., \"pid\":..., \"detail\":..., \"display\": how it was\n"
"             started (sdl, vnc, headless, none), \"vnc_listen\": HOST:PORT}\n"
"  --help     this text\n";

static int cmd_status(int argc, char **argv)
{
    bool as_json = false;
    int rc_ = parse_opts("status", help_status, argc, argv, "json", &as_json);
    if (rc_ >= 0)
        return rc_;
    const char *name;
    int r = want_name("status", argc, argv, &name);
    if (r)
        return r;
    bool orphan;
    struct burrow_vm *vm = load_live_or_fail(name, &orphan);
    if (!vm)
        return 1;
    struct burrow_vm_status st;
    burrow_vm_state(vm, &st);
    if (orphan && !st.detail[0])
        snprintf(st.detail, sizeof(st.detail), "its definition was deleted while it ran");
    if (as_json) {
        json_t *j = json_pack("{s:s,s:s}", "name", name, "state", burrow_vm_state_name(st.state));
        if (orphan)
            json_object_set_new(j, "definition_deleted", json_true());
        if (st.pid)
            json_object_set_new(j, "pid", json_integer(st.pid));
        if (st.detail[0])
            json_object_set_new(j, "detail", json_string(st.detail));
        if (st.display[0])
            json_object_set_new(j, "display", json_string(st.display));
        if (st.vnc_listen[0])
            json_object_set_new(j, "vnc_listen", json_string(st.vnc_listen));
        if (st.recording)
            json_object_set_new(j, "recording", json_true());
        print_json(j);
        json_decref(j);
    } else {
        printf("%s", burrow_vm_state_name(st.state));
        if (st.pid)
            printf(" (pid %d)", st.pid);
        if (st.vnc_listen[0])
            printf(", VNC server on %s", st.vnc_listen);
        if (st.recording)
            printf(", recording from the microphone");
        if (st.detail[0])
            printf(": %s", st.detail);
        printf("\n");
    }
    burrow_vm_free(vm);
    return 0;
}

/* ---- modify ------------------------------------------------------------------------ */

static const char help_modify[] =
"Usage: burrow modify NAME [OPTIONS]\n"
"Changes a virtual machine's definition.  Changes to a running VM take\n"
"effect at its next start.\n"
"\n"
"  --os TYPE                  guest OS type (defaults are not re-applied)\n"
"  --memory MIB               RAM in MiB\n"
"  --cpus N                   virtual CPUs\n"
"  --cdrom ISO|none           insert or remove the CD/DVD image\n"
"  --boot ORDER|default       boot order from c (disk), d (CD/DVD), n (network)\n"
"  --display sdl|vnc|none     display\n"
"  --vnc HOST:PORT            VNC address (and the display becomes vnc)\n"
"  --vnc-password-file FILE|none\n"
"  --usb on|off               the USB tablet and keyboard\n"
"  --audio pa|none|off        the sound card: this desktop's PulseAudio, none\n"
"                             (plays into nothing), off (no card, no microphone)\n"
"  --audio-in on|off          its microphone (records from this desktop's)\n"
"  --add-disk PATH[,if=virtio|sata|usb][,readonly=on]\n"
"                             attach an existing disk image (if=usb: as a USB\n"
"                             disk, at most two, with --usb on); an image of\n"
"                             VirtualBox, VMware or Hyper-V (vdi, vmdk, vhd,\n"
"                             vhdx), which Burrow reads but does not write,\n"
"                             needs readonly=on or --convert\n"
"  --convert                  convert such an --add-disk into a qcow2 image in\n"
"                             the VM's folder (the original is not changed)\n"
"  --remove-disk N            detach disk N (the file stays)\n"
"  --net user|none            the network adapter\n"
"  --nic-model virtio|e1000   its model\n"
"  --mac XX:XX:XX:XX:XX:XX    its MAC address\n"
"  --add-hostfwd RULE         forward a host port: tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT\n"
"  --remove-hostfwd RULE      drop a forward\n"
"  --usb-filter-add [vid=HEX][,pid=HEX][,serial=TEXT][,name=TEXT]\n"
"                             take every host USB device that matches when the VM\n"
"                             starts and whenever one is plugged in (see 'burrow\n"
"                             usb list' for the ids)\n"
"  --usb-filter-remove N|NAME drop USB filter N (or the one called NAME)\n"
"  --help                     this text\n";

enum mod_kind {
    M_OS, M_MEMORY, M_CPUS, M_CDROM, M_BOOT, M_DISPLAY, M_VNC, M_VNC_PW, M_ADD_DISK,
    M_REMOVE_DISK, M_NET, M_NIC_MODEL, M_MAC, M_ADD_FWD, M_REMOVE_FWD, M_USB, M_ADD_USBF,
    M_REMOVE_USBF, M_AUDIO, M_AUDIO_IN,
};

struct mod_op {
    enum mod_kind kind;
    const char *arg;
    long long num;
};

struct mod_list {
    struct mod_op ops[64];
    unsigned n;
};

/* Why a file's absolute path cannot go into a definition. */
static const char *path_unfit(const char *path)
{
    if (strchr(path, '\n'))
        return "its path has a line break, which a definition cannot hold";
    if (strchr(path, ','))
        return "its path has a ',', which burrow-vm's --disk cannot take";
    return "its path is too long";
}

static struct burrow_nic *first_nic(struct burrow_vmdef *d, const char *what, struct burrow_error *err)
{
    if (!d->nnics) {
        burrow_error_set(err, "%s: the VM has no network adapter (add one with --net user)", what);
        return NULL;
    }
    return &d->nics[0];
}

/* Applies the options in the order given, on the definition as it is on
 * disk now (under the VM's lock). */
static int apply_mods(struct burrow_vmdef *d, void *opaque, struct burrow_error *err)
{
    const struct mod_list *ml = opaque;
    for (unsigned i = 0; i < ml->n; i++) {
        const struct mod_op *op = &ml->ops[i];
        struct burrow_nic *nic;
        switch (op->kind) {
        case M_OS: snprintf(d->os, sizeof(d->os), "%s", burrow_ostype_find(op->arg)->id); break;
        case M_MEMORY: d->memory_mib = (unsigned)op->num; break;
        case M_CPUS: d->cpus = (unsigned)op->num; break;
        case M_CDROM:
            if (!strcmp(op->arg, "none")) {
                d->cdrom[0] = '\0';
            } else {
                char *r = realpath(op->arg, NULL);
                if (!r || access(r, R_OK) < 0) {
                    burrow_error_set(err, "--cdrom '%s': %s", op->arg, strerror(errno));
                    free(r);
                    return -1;
                }
                if (strchr(r, '\n') || strlen(r) >= sizeof(d->cdrom)) {
                    burrow_error_set(err, "--cdrom: %s", path_unfit(r));
                    free(r);
                    return -1;
                }
                snprintf(d->cdrom, sizeof(d->cdrom), "%s", r);
                free(r);
            }
            break;
        case M_BOOT:
            if (!strcmp(op->arg, "default"))
                d->boot[0] = '\0';
            else
                snprintf(d->boot, sizeof(d->boot), "%s", op->arg);
            break;
        case M_DISPLAY: snprintf(d->display, sizeof(d->display), "%s", op->arg); break;
        case M_USB: d->usb = !strcmp(op->arg, "on"); break;
        case M_AUDIO:
            snprintf(d->audio, sizeof(d->audio), "%s", op->arg);
            if (!strcmp(op->arg, "off"))
                d->audio_in = false;    /* the microphone goes with the card */
            break;
        case M_AUDIO_IN: d->audio_in = !strcmp(op->arg, "on"); break;
        case M_VNC:
            snprintf(d->vnc_listen, sizeof(d->vnc_listen), "%s", op->arg);
            snprintf(d->display, sizeof(d->display), "vnc");
            break;
        case M_VNC_PW:
            if (!strcmp(op->arg, "none")) {
                d->vnc_password_file[0] = '\0';
            } else {
                char *r = realpath(op->arg, NULL);
                if (!r) {
                    burrow_error_set(err, "--vnc-password-file '%s': %s", op->arg, strerror(errno));
                    return -1;
                }
                if (strchr(r, '\n') || strlen(r) >= sizeof(d->vnc_password_file)) {
                    burrow_error_set(err, "--vnc-password-file: %s", path_unfit(r));
                    free(r);
                    return -1;
                }
                snprintf(d->vnc_password_file, sizeof(d->vnc_password_file), "%s", r);
                free(r);
            }
            break;
        case M_ADD_DISK: {
            if (d->ndisks >= BURROW_MAX_DISKS) {
                burrow_error_set(err, "--add-disk: the VM has %d disks already", BURROW_MAX_DISKS);
                return -1;
            }
            char spec[BURROW_PATH_MAX];
            snprintf(spec, sizeof(spec), "%s", op->arg);
            char *opts = strchr(spec, ',');
            if (opts)
                *opts++ = '\0';
            struct burrow_disk k = { .readonly = false };
            snprintf(k.interface, sizeof(k.interface), "%s", burrow_ostype_find(d->os)->disk_interface);
            while (opts && *opts) {
                char *next = strchr(opts, ',');
                if (next)
                    *next++ = '\0';
                if (!strcmp(opts, "if=virtio") || !strcmp(opts, "if=sata") || !strcmp(opts, "if=usb"))
                    snprintf(k.interface, sizeof(k.interface), "%s", opts + 3);
                else if (!strcmp(opts, "readonly=on") || !strcmp(opts, "readonly=off"))
                    k.readonly = !strcmp(opts, "readonly=on");
                else {
                    burrow_error_set(err, "--add-disk: '%s' is not if=virtio|sata|usb or readonly=on|off",
                                     opts);
                    return -1;
                }
                opts = next;
            }
            char *r = realpath(spec, NULL);
            if (!r || access(r, R_OK) < 0) {
                burrow_error_set(err, "--add-disk '%s': %s", spec, strerror(errno));
                free(r);
                return -1;
            }
            if (strpbrk(r, ",\n") || strlen(r) >= sizeof(k.path)) {
                burrow_error_set(err, "--add-disk: %s", path_unfit(r));
                free(r);
                return -1;
            }
            snprintf(k.path, sizeof(k.path), "%s", r);
            free(r);
            snprintf(k.format, sizeof(k.format), "%s", vmdef_detect_format(k.path));
            d->disks[d->ndisks++] = k;
            break;
        }
        case M_REMOVE_DISK:
            if (op->num < 0 || op->num >= (long long)d->ndisks) {
                burrow_error_set(err, "--remove-disk: the VM has no disk %lld (it has %u)", op->num,
                                 d->ndisks);
                return -1;
            }
            memmove(&d->disks[op->num], &d->disks[op->num + 1],
                    (d->ndisks - (unsigned)op->num - 1) * sizeof(d->disks[0]));
            d->ndisks--;
            break;
        case M_NET:
            if (!strcmp(op->arg, "none")) {
                d->nnics = 0;
            } else if (!d->nnics) {
                struct burrow_nic *n = &d->nics[d->nnics++];
                memset(n, 0, sizeof(*n));
                snprintf(n->mode, sizeof(n->mode), "user");
                snprintf(n->model, sizeof(n->model), "%s", burrow_ostype_find(d->os)->nic_model);
                vmdef_random_mac(n->mac);
            }
            break;
        case M_NIC_MODEL:
            if (!(nic = first_nic(d, "--nic-model", err)))
                return -1;
            snprintf(nic->model, sizeof(nic->model), "%s", op->arg);
            break;
        case M_MAC:
            if (!(nic = first_nic(d, "--mac", err)))
                return -1;
            snprintf(nic->mac, sizeof(nic->mac), "%s", op->arg);
            break;
        case M_ADD_FWD:
            if (!(nic = first_nic(d, "--add-hostfwd", err)))
                return -1;
            for (unsigned k = 0; k < d->nnics; k++)
                for (unsigned j = 0; j < d->nics[k].nhostfwd; j++)
                    if (vmdef_hostfwd_clash(op->arg, d->nics[k].hostfwd[j])) {
                        if (!strcmp(op->arg, d->nics[k].hostfwd[j]))
                            burrow_error_set(err, "--add-hostfwd: the VM has the forward '%s' "
                                             "already", op->arg);
                        else
                            burrow_error_set(err, "--add-hostfwd: '%s' takes the same host port "
                                             "as the forward '%s' (remove that one first)",
                                             op->arg, d->nics[k].hostfwd[j]);
                        return -1;
                    }
            if (nic->nhostfwd >= BURROW_MAX_HOSTFWD) {
                burrow_error_set(err, "--add-hostfwd: at most %d forwards", BURROW_MAX_HOSTFWD);
                return -1;
            }
            snprintf(nic->hostfwd[nic->nhostfwd++], sizeof(nic->hostfwd[0]), "%s", op->arg);
            break;
        case M_ADD_USBF: {
            struct burrow_usb_filter f;
            if (burrow_usb_filter_parse(op->arg, &f, err) < 0)
                return -1;      /* checked before: cannot happen */
            if (d->nusb_filters >= BURROW_MAX_USB_FILTERS) {
                burrow_error_set(err, "--usb-filter-add: at most %d USB filters", BURROW_MAX_USB_FILTERS);
                return -1;
            }
            for (unsigned k = 0; k < d->nusb_filters; k++) {
                const struct burrow_usb_filter *g = &d->usb_filters[k];
                if (f.name[0] && !strcmp(f.name, g->name)) {
                    burrow_error_set(err, "--usb-filter-add: filter %u is called '%s' already", k, f.name);
                    return -1;
                }
            }
            if (!d->usb) {
                burrow_error_set(err, "--usb-filter-add: USB filters need USB on (--usb on)");
                return -1;
            }
            d->usb_filters[d->nusb_filters++] = f;
            break;
        }
        case M_REMOVE_USBF: {
            unsigned k = 0;
            while (k < d->nusb_filters && strcmp(d->usb_filters[k].name, op->arg) &&
                   !(op->num >= 0 && (long long)k == op->num))
                k++;
            if (k == d->nusb_filters) {
                burrow_error_set(err, "--usb-filter-remove: no USB filter '%s' (the VM has %u; 'burrow show' "
                                 "lists them)", op->arg, d->nusb_filters);
                return -1;
            }
            memmove(&d->usb_filters[k], &d->usb_filters[k + 1],
                    (d->nusb_filters - k - 1) * sizeof(d->usb_filters[0]));
            d->nusb_filters--;
            break;
        }
        case M_REMOVE_FWD: {
            if (!(nic = first_nic(d, "--remove-hostfwd", err)))
                return -1;
            unsigned j;
            for (j = 0; j < nic->nhostfwd && strcmp(nic->hostfwd[j], op->arg); j++)
                ;
            if (j == nic->nhostfwd) {
                burrow_error_set(err, "--remove-hostfwd: no forward '%s'", op->arg);
                return -1;
            }
            memmove(nic->hostfwd[j], nic->hostfwd[j + 1], (nic->nhostfwd - j - 1) * sizeof(nic->hostfwd[0]));
            nic->nhostfwd--;
            break;
        }
        }
    }
    /* What the definition's own checks would refuse, said with the
     * options that led there. */
    if (!d->usb && d->nusb_filters) {
        burrow_error_set(err, "--usb off: the VM has USB filters, which need USB: remove them first "
                         "(--usb-filter-remove)");
        return -1;
    }
    if (!strcmp(d->display, "vnc") && !d->vnc_listen[0]) {
        burrow_error_set(err, "--display vnc needs the address to listen on: add --vnc HOST:PORT");
        return -1;
    }
    if (d->audio_in && !strcmp(d->audio, "off")) {
        burrow_error_set(err, "--audio-in on needs a sound card: add --audio pa (or none)");
        return -1;
    }
    return 0;
}

/* Disks that --convert made for an --add-disk, with the specs that
 * replace the ones given. */
struct converted {
    char path[BURROW_MAX_DISKS][BURROW_PATH_MAX];
    char spec[BURROW_MAX_DISKS][BURROW_PATH_MAX + 64];
    unsigned n;
};

/* --add-disk of an image Burrow only reads: attached read-only when asked
 * (readonly=on), converted into the VM's folder with --convert, or refused
 * with the ways to use it.  Returns 0 or an exit status. */
static int foreign_disks(const char *name, struct mod_list *ml, bool convert, struct converted *conv)
{
    for (unsigned i = 0; i < ml->n; i++) {
        struct mod_op *op = &ml->ops[i];
        if (op->kind != M_ADD_DISK)
            continue;
        char path[BURROW_PATH_MAX];
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(op->arg, ","), op->arg);
        const char *fmt = disk_detect_format(path);
        char opts[64];
        if (strlen(op->arg + strlen(path)) >= sizeof(opts))
            continue;       /* not options apply_mods takes: it says so */
        snprintf(opts, sizeof(opts), "%s", op->arg + strlen(path));
        if (!blk_format_read_only(fmt) || strstr(opts, ",readonly=on"))
            continue;
        if (!convert) {
            char cmd[512];
            disk_convert_command(path, cmd, sizeof(cmd));
            return fail("--add-disk: %s is a %s image, which Burrow reads but does not write: attach it "
                        "read-only (--add-disk %s,readonly=on), add --convert to convert it into the VM's "
                        "folder, or convert it yourself with '%s' and attach that", path, fmt, path, cmd);
        }
        if (conv->n == BURROW_MAX_DISKS)
            return fail("--add-disk: too many disks to convert at once");
        struct burrow_error err;
        struct burrow_vm *vm = burrow_vm_load(name, &err);
        if (!vm)
            return fail("%s", err.msg);
        char *dst = conv->path[conv->n], derr[512];
        int ret = disk_qcow2_name(path, burrow_vm_dir(vm), dst, sizeof(conv->path[0]));
        burrow_vm_free(vm);
        if (ret < 0)
            return fail("--add-disk: no free name for a converted copy of %s", path);
        struct cli_bar bar = { .last = -1 };
        ret = disk_convert(path, dst, "qcow2", isatty(2) ? cli_progress : NULL, &bar, derr, sizeof(derr));
        if (bar.last >= 0)
            fprintf(stderr, "\n");
        if (ret < 0) {
            for (unsigned k = 0; k < conv->n; k++)
                unlink(conv->path[k]);
            return fail("--add-disk: %s", derr);
        }
        fprintf(stderr, "burrow: converted %s into %s\n", path, dst);
        size_t dl = strlen(dst);
        memcpy(conv->spec[conv->n], dst, dl);
        snprintf(conv->spec[conv->n] + dl, sizeof(conv->spec[0]) - dl, "%s", opts);
        op->arg = conv->spec[conv->n++];
    }
    return 0;
}

static int cmd_modify(int argc, char **argv)
{
    static const struct option opts[] = {
        { "os", required_argument, NULL, 256 + M_OS },
        { "memory", required_argument, NULL, 256 + M_MEMORY },
        { "cpus", required_argument, NULL, 256 + M_CPUS },
        { "cdrom", required_argument, NULL, 256 + M_CDROM },
        { "boot", required_argument, NULL, 256 + M_BOOT },
        { "display", required_argument, NULL, 256 + M_DISPLAY },
        { "vnc", required_argument, NULL, 256 + M_VNC },
        { "vnc-password-file", required_argument, NULL, 256 + M_VNC_PW },
        { "add-disk", required_argument, NULL, 256 + M_ADD_DISK },
        { "remove-disk", required_argument, NULL, 256 + M_REMOVE_DISK },
        { "net", required_argument, NULL, 256 + M_NET },
        { "nic-model", required_argument, NULL, 256 + M_NIC_MODEL },
        { "mac", required_argument, NULL, 256 + M_MAC },
        { "add-hostfwd", required_argument, NULL, 256 + M_ADD_FWD },
        { "remove-hostfwd", required_argument, NULL, 256 + M_REMOVE_FWD },
        { "usb", required_argument, NULL, 256 + M_USB },
        { "usb-filter-add", required_argument, NULL, 256 + M_ADD_USBF },
        { "usb-filter-remove", required_argument, NULL, 256 + M_REMOVE_USBF },
        { "convert", no_argument, NULL, 'c' },
        { "audio", required_argument, NULL, 256 + M_AUDIO },
        { "audio-in", required_argument, NULL, 256 + M_AUDIO_IN },
        HELP_OPT, { NULL, 0, NULL, 0 },
    };
    struct mod_list ml = { .n = 0 };
    bool convert = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help_modify, stdout);
            return 0;
        }
        if (c == 'c') {
            convert = true;
            continue;
        }
        if (c < 256)
            return bad_option("modify", c, argv);
        if (ml.n == sizeof(ml.ops) / sizeof(ml.ops[0]))
            return usage_error("modify", "too many options at once");
        struct mod_op *op = &ml.ops[ml.n++];
        op->kind = (enum mod_kind)(c - 256);
        op->arg = optarg;
        switch (op->kind) {
        case M_OS:
            if (!burrow_ostype_find(optarg))
                return usage_error("modify", "--os: unknown OS type '%s' (known: %s)", optarg,
                                   ostype_list());
            break;
        case M_MEMORY:
            if (parse_memory("modify", optarg, &op->num))
                return 2;
            break;
        case M_CPUS:
            if (parse_cpus("modify", optarg, &op->num))
                return 2;
            break;
        case M_BOOT:
            if (strcmp(optarg, "default") && !vmdef_boot_valid(optarg))
                return usage_error("modify", "--boot: '%s' is not an order of c, d, n (or default)",
                                   optarg);
            break;
        case M_DISPLAY:
            if (strcmp(optarg, "sdl") && strcmp(optarg, "vnc") && strcmp(optarg, "none"))
                return usage_error("modify", "--display: '%s' is not sdl, vnc or none", optarg);
            break;
        case M_USB:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return usage_error("modify", "--usb: '%s' is not on or off", optarg);
            break;
        case M_AUDIO:
            if (strcmp(optarg, "pa") && strcmp(optarg, "none") && strcmp(optarg, "off"))
                return usage_error("modify", "--audio: '%s' is not pa, none or off", optarg);
            break;
        case M_AUDIO_IN:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return usage_error("modify", "--audio-in: '%s' is not on or off", optarg);
            break;
        case M_VNC:
            if (!vmdef_listen_valid(optarg))
                return usage_error("modify", "--vnc: '%s' is not HOST:PORT", optarg);
            break;
        case M_REMOVE_DISK:
            if (!parse_ll(optarg, &op->num) || op->num < 0)
                return usage_error("modify", "--remove-disk: '%s' is not a disk number", optarg);
            break;
        case M_NET:
            if (strcmp(optarg, "user") && strcmp(optarg, "none"))
                return usage_error("modify", "--net: '%s' is not user or none", optarg);
            break;
        case M_NIC_MODEL:
            if (strcmp(optarg, "virtio") && strcmp(optarg, "e1000"))
                return usage_error("modify", "--nic-model: '%s' is not virtio or e1000", optarg);
            break;
        case M_MAC:
            if (!vmdef_mac_valid(optarg))
                return usage_error("modify", "--mac: '%s' is not a unicast MAC address", optarg);
            break;
        case M_ADD_USBF: {
            struct burrow_usb_filter f;
            struct burrow_error ferr;
            if (burrow_usb_filter_parse(optarg, &f, &ferr) < 0)
                return usage_error("modify", "--usb-filter-add: %s", ferr.msg);
            break;
        }
        case M_REMOVE_USBF:
            /* A number is an index, unless a filter has that name. */
            if (!parse_ll(optarg, &op->num))
                op->num = -1;
            break;
        case M_ADD_FWD:
            if (!vmdef_hostfwd_valid(optarg))
                return usage_error("modify", "--add-hostfwd: '%s' is not "
                                   "tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT", optarg);
            break;
        default:
            break;
        }
    }
    const char *name;
    int r = want_name("modify", argc, argv, &name);
    if (r)
        return r;
    if (!ml.n)
        return usage_error("modify", "nothing to change");
    struct vmdef_host host;
    vmdef_host_query(&host);
    struct fit_warnings warn = { .n = 0 };
    unsigned long long memory = 0;
    unsigned cpus = 0;
    for (unsigned i = 0; i < ml.n; i++) {
        if (ml.ops[i].kind == M_MEMORY)
            memory = (unsigned long long)ml.ops[i].num;
        else if (ml.ops[i].kind == M_CPUS)
            cpus = (unsigned)ml.ops[i].num;
    }
    if (check_fit(&host, memory, true, cpus, true, &warn))
        return 1;
    struct converted conv = { .n = 0 };
    int rc = foreign_disks(name, &ml, convert, &conv);
    if (rc)
        return rc;
    struct burrow_error err;
    if (burrow_vm_modify(name, apply_mods, &ml, &err) < 0) {
        for (unsigned i = 0; i < conv.n; i++)
            unlink(conv.path[i]);       /* made just now, for this change only */
        return fail("%s", err.msg);
    }
    print_warnings(&warn);
    struct burrow_vm *vm = burrow_vm_load(name, &err);
    if (vm) {
        enum burrow_vm_state s = burrow_vm_state(vm, NULL);
        if (s != BURROW_VM_STOPPED && s != BURROW_VM_CRASHED)
            fprintf(stderr, "burrow: '%s' is %s: the changes take effect at its next start\n", name,
                    burrow_vm_state_name(s));
        burrow_vm_free(vm);
    }
    return 0;
}

/* ---- start, stop, pause, resume, reset ---------------------------------------------------- */

static const char help_start[] =
"Usage: burrow start NAME [--headless | --vnc HOST:PORT | --sdl] [--timeout SECONDS]\n"
"Starts a virtual machine in the background and returns once it answers on\n"
"its control socket.  Its output goes to its log ('burrow logs NAME'), its\n"
"serial port to 'burrow console NAME'.\n"
"\n"
"  --headless         no window: the screen is only seen through screenshots\n"
"  --vnc HOST:PORT    display over VNC on that address\n"
"  --sdl              display in a window\n"
"  --timeout SECONDS  how long to wait for the VM to answer (default 30)\n"
"  --help             this text\n";

static int cmd_start(int argc, char **argv)
{
    enum { O_HEADLESS = 256, O_VNC, O_SDL, O_TIMEOUT };
    static const struct option opts[] = {
        { "headless", no_argument, NULL, O_HEADLESS },
        { "vnc", required_argument, NULL, O_VNC },
        { "sdl", no_argument, NULL, O_SDL },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        HELP_OPT, { NULL, 0, NULL, 0 },
    };
    struct burrow_start_opts so = { 0 };
    int displays = 0;
    long long t;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help_start, stdout); return 0;
        case O_HEADLESS: so.display = "headless"; displays++; break;
        case O_SDL: so.display = "sdl"; displays++; break;
        case O_VNC:
            if (!vmdef_listen_valid(optarg))
                return usage_error("start", "--vnc: '%s' is not HOST:PORT", optarg);
            so.display = "vnc";
            so.vnc_listen = optarg;
            displays++;
            break;
        case O_TIMEOUT:
            if (!parse_ll(optarg, &t) || t < 1 || t > 3600)
                return usage_error("start", "--timeout: '%s' is not a number of seconds (1-3600)",
                                   optarg);
            so.timeout_ms = (int)t * 1000;
            break;
        default: return bad_option("start", c, argv);
        }
    }
    if (displays > 1)
        return usage_error("start", "--headless, --vnc and --sdl exclude each other");
    const char *name;
    int r = want_name("start", argc, argv, &name);
    if (r)
        return r;
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    struct burrow_error err;
    if (burrow_vm_start(vm, &so, &err) < 0) {
        burrow_vm_free(vm);
        return fail("%s", err.msg);
    }
    struct burrow_vm_status st;
    burrow_vm_state(vm, &st);
    printf("Started '%s' (pid %d); log: %s\n", name, st.pid, burrow_vm_log_path(vm));
    burrow_vm_free(vm);
    return 0;
}

static const char help_stop[] =
"Usage: burrow stop NAME [--force | --timeout SECONDS]\n"
"Presses the VM's ACPI power button and waits for the guest to power off.\n"
"\n"
"  --force            do not ask the guest: end the VM process at once (like\n"
"                     pulling the plug; what the guest has not saved is lost),\n"
"                     running, paused or hung alike\n"
"  --timeout SECONDS  how long to wait for the guest to power off (default\n"
"                     30; not used with --force)\n"
"  --help             this text\n";

static int cmd_stop(int argc, char **argv)
{
    enum { O_FORCE = 256, O_TIMEOUT };
    static const struct option opts[] = {
        { "force", no_argument, NULL, O_FORCE },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        HELP_OPT, { NULL, 0, NULL, 0 },
    };
    bool force = false;
    long long t = 30;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help_stop, stdout); return 0;
        case O_FORCE: force = true; break;
        case O_TIMEOUT:
            if (!parse_ll(optarg, &t) || t < 1 || t > 3600)
                return usage_error("stop", "--timeout: '%s' is not a number of seconds (1-3600)",
                                   optarg);
            break;
        default: return bad_option("stop", c, argv);
        }
    }
    const char *name;
    int r = want_name("stop", argc, argv, &name);
    if (r)
        return r;
    struct burrow_vm *vm = load_live_or_fail(name, NULL);
    if (!vm)
        return 1;
    bool crashed = burrow_vm_state(vm, NULL) == BURROW_VM_CRASHED;
    struct burrow_error err;
    int rc = burrow_vm_stop(vm, force, (int)t * 1000, &err);
    burrow_vm_free(vm);
    if (rc < 0)
        return fail("%s", err.msg);
    if (crashed)
        fprintf(stderr, "burrow: '%s' had crashed; its runtime files are cleaned up\n", name);
    return 0;
}

static int run_simple_command(const char *cmd, const char *help, const char *control, int argc,
                              char **argv)
{
    SIMPLE_ARGS(cmd, help);
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    struct burrow_error err;
    json_t *reply = NULL;
    int rc = burrow_vm_command(vm, control, NULL, &reply, &err);
    burrow_vm_free(vm);
    if (rc < 0)
        return fail_vm(name, NULL, &err);
    const char *state = json_string_value(json_object_get(reply, "state"));
    if (state)
        printf("%s\n", state);
    json_decref(reply);
    return 0;
}

static const char help_pause[] =
"Usage: burrow pause NAME\nStops the VM's virtual CPUs ('burrow resume' lets them run again).\n";
static const char help_resume[] =
"Usage: burrow resume NAME\nLets a paused VM's virtual CPUs run again.\n";
static const char help_reset[] =
"Usage: burrow reset NAME\nResets the VM, like its reset button (the guest does not shut down).\n";

static int cmd_pause(int argc, char **argv)
{
    return run_simple_command("pause", help_pause, "pause", argc, argv);
}

static int cmd_resume(int argc, char **argv)
{
    return run_simple_command("resume", help_resume, "resume", argc, argv);
}

static int cmd_reset(int argc, char **argv)
{
    return run_simple_command("reset", help_reset, "reset", argc, argv);
}

/* ---- console, screenshot, logs ---------------------------------------------------------- */

static const char help_console[] =
"Usage: burrow console NAME\n"
"Attaches to the VM's serial port.  On a terminal, Ctrl-] detaches.  With\n"
"input from a pipe or file, that input is sent and the output shown until\n"
"the VM ends.\n";

#define CONSOLE_ESCAPE 0x1d   /* Ctrl-] */

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static bool write_all_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static int cmd_console(int argc, char **argv)
{
    SIMPLE_ARGS("console", help_console);
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    enum burrow_vm_state s = burrow_vm_state(vm, NULL);
    if (s == BURROW_VM_STOPPED || s == BURROW_VM_CRASHED) {
        burrow_vm_free(vm);
        return fail("'%s' is not running", name);
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", burrow_vm_console_path(vm));
    burrow_vm_free(vm);
    int fd = -1;
    for (int i = 0; i < 100; i++) {   /* the VM may still be creating it */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        int e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
        if (e != ENOENT && e != ECONNREFUSED)
            return fail("'%s': cannot attach to the serial console %s: %s", name, sa.sun_path,
                        strerror(e));
        usleep(50000);
    }
    if (fd < 0)
        return fail("'%s': its serial console %s does not answer", name, sa.sun_path);
    bool tty = isatty(STDIN_FILENO);
    if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        tio_saved = true;
        atexit(restore_tty);
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        fprintf(stderr, "Connected to the serial console of '%s'; Ctrl-] detaches.\r\n", name);
    }
    bool in_open = true;
    char buf[4096];
    for (;;) {
        struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
        int r = poll(pfd, in_open ? 2 : 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (pfd[0].revents) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                break;   /* the VM ended or dropped us */
            if (!write_all_fd(STDOUT_FILENO, buf, (size_t)n))
                break;
        }
        if (in_open && pfd[1].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n <= 0) {
                /* Keep showing output; no half-close, which the VM would
                 * take for the client leaving. */
                in_open = false;
                continue;
            }
            if (tty) {
                char *esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
                if (esc) {
                    write_all_fd(fd, buf, (size_t)(esc - buf));
                    break;
                }
            }
            if (!write_all_fd(fd, buf, (size_t)n))
                break;
        }
    }
    close(fd);
    restore_tty();
    if (tty)
        fprintf(stderr, "\nDetached from '%s'.\n", name);
    return 0;
}

static const char help_screenshot[] =
"Usage: burrow screenshot NAME FILE\n"
"Saves the VM's screen to FILE as a PNG image (the VM writes it).  FILE ends\n"
"in .png, or has no extension.\n";

static int cmd_screenshot(int argc, char **argv)
{
    int rc_ = parse_opts("screenshot", help_screenshot, argc, argv, NULL, NULL);
    if (rc_ >= 0)
        return rc_;
    if (argc - optind != 2)
        return usage_error("screenshot", "needs NAME and FILE");
    const char *name = argv[optind], *file = argv[optind + 1];
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *ext = strrchr(base, '.');
    if (ext && ext != base && strcasecmp(ext, ".png"))
        return usage_error("screenshot", "FILE '%s': screenshots are PNG images; name it .png, "
                           "not %s", file, ext);
    struct burrow_error err;
    if (!burrow_name_valid(name, &err))
        return fail("%s", err.msg);
    /* burrow-vm runs elsewhere: give it an absolute path. */
    char abs[BURROW_PATH_MAX];
    if (file[0] == '/') {
        snprintf(abs, sizeof(abs), "%s", file);
    } else {
        char cwd[BURROW_PATH_MAX - 256];
        if (!getcwd(cwd, sizeof(cwd)) || strlen(file) > 250)
            return fail("screenshot: cannot make '%s' an absolute path", file);
        snprintf(abs, sizeof(abs), "%s/%s", cwd, file);
    }
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    json_t *args = json_pack("{s:s}", "path", abs);
    int rc = burrow_vm_command(vm, "screenshot", args, NULL, &err);
    json_decref(args);
    burrow_vm_free(vm);
    if (rc < 0) {
        if (!strcmp(err.cls, "unknown-command"))
            return fail("'%s': this burrow-vm cannot take screenshots (its control socket has no "
                        "'screenshot' command)", name);
        return fail_vm(name, "screenshot", &err);
    }
    return 0;
}

static const char help_logs[] =
"Usage: burrow logs NAME\n"
"Prints the VM's log: what burrow-vm reported over its runs (the previous\n"
"log, when it grew large, is NAME.log.1 next to it).\n";

static int cmd_logs(int argc, char **argv)
{
    SIMPLE_ARGS("logs", help_logs);
    struct burrow_vm *vm = load_or_fail(name);
    if (!vm)
        return 1;
    int fd = open(burrow_vm_log_path(vm), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        int rc = e == ENOENT ? 0 : fail("%s: %s", burrow_vm_log_path(vm), strerror(e));
        if (e == ENOENT)
            fprintf(stderr, "burrow: '%s' has no log yet (it has not been started)\n", name);
        burrow_vm_free(vm);
        return rc;
    }
    burrow_vm_free(vm);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (!write_all_fd(STDOUT_FILENO, buf, (size_t)n))
            break;
    close(fd);
    return 0;
}

/* ---- clone, delete -------------------------------------------------------------------- */

static const char help_clone[] =
"Usage: burrow clone NAME NEW\n"
"Copies a stopped VM to a new one called NEW: its disks are copied (sparse),\n"
"read-only disks shared; the copy gets a new UUID and new MAC addresses.\n";

static int cmd_clone(int argc, char **argv)
{
    int rc_ = parse_opts("clone", help_clone, argc, argv, NULL, NULL);
    if (rc_ >= 0)
        return rc_;
    if (argc - optind != 2)
        return usage_error("clone", "needs NAME and NEW");
    struct burrow_error err;
    if (!burrow_name_valid(argv[optind], &err) || !burrow_name_valid(argv[optind + 1], &err))
        return fail("%s", err.msg);
    struct burrow_vm *vm = burrow_vm_clone(argv[optind], argv[optind + 1], &err);
    if (!vm)
        return fail("%s", err.msg);
    printf("Cloned '%s' to '%s' in %s\n", argv[optind], argv[optind + 1], burrow_vm_dir(vm));
    burrow_vm_free(vm);
    return 0;
}

static const char help_delete[] =
"Usage: burrow delete NAME [--keep-disks]\n"
"Deletes a stopped VM: its definition, logs and the disks in its directory.\n"
"Disks attached from elsewhere are never deleted.\n"
"\n"
"  --keep-disks   keep the disks: they move to $XDG_DATA_HOME/burrow/kept/NAME\n"
"  --help         this text\n";

static int cmd_delete(int argc, char **argv)
{
    bool keep = false;
    int rc_ = parse_opts("delete", help_delete, argc, argv, "keep-disks", &keep);
    if (rc_ >= 0)
        return rc_;
    const char *name;
    int r = want_name("delete", argc, argv, &name);
    if (r)
        return r;
    struct burrow_error err;
    char kept[BURROW_PATH_MAX];
    if (burrow_vm_delete(name, keep, kept, sizeof(kept), &err) < 0)
        return fail("%s", err.msg);
    if (kept[0])
        printf("Deleted '%s'; its disks are in %s\n", name, kept);
    else
        printf("Deleted '%s'\n", name);
    return 0;
}

/* ---- host-check --------------------------------------------------------------------- */

static const char help_host_check[] =
"Usage: burrow host-check [--json]\n"
"Checks that this host can run virtual machines, one line per check (PASS,\n"
"WARN or FAIL, with what to do when not PASS): the KVM device (present, the\n"
"right character device, opens read/write, API version 12, creates a VM), the\n"
"permission to use it (the kvm group), the CPU's virtualization (VT-x/AMD-V;\n"
"PVM-backed KVM cannot run Linux guests), and the firmware from the seabios\n"
"and ipxe-qemu packages; then a verdict.\n"
"\n"
"  --json     one JSON object: verdict, summary, kvm_ok and checks (each with\n"
"             id, title, kvm, status, detail, hint)\n"
"  --help     this text\n"
"\n"
"BURROW_KVM_DEVICE, when set, replaces /dev/kvm (for tests).\n"
"Exit status: 0 when nothing failed (warnings are fine), 1 when a check\n"
"failed, 2 on usage errors.\n";

static int cmd_host_check(int argc, char **argv)
{
    bool as_json = false;
    int rc = parse_opts("host-check", help_host_check, argc, argv, "json", &as_json);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return usage_error("host-check", "unexpected argument '%s'", argv[optind]);
    struct hostcheck_report r;
    hostcheck_run(&r, NULL);
    if (as_json) {
        json_t *j = hostcheck_json(&r);
        print_json(j);
        json_decref(j);
    } else {
        for (unsigned i = 0; i < r.n; i++) {
            const struct hostcheck_item *it = &r.items[i];
            printf("%-4s  %-32s %s\n", hostcheck_status_name(it->status), it->title, it->detail);
            if (it->status != HOSTCHECK_PASS && it->hint[0])
                printf("      hint: %s\n", it->hint);
        }
        char verdict[160];
        hostcheck_verdict_text(&r, verdict, sizeof(verdict));
        printf("Verdict: %s\n", verdict);
    }
    return r.verdict == HOSTCHECK_FAIL ? 1 : 0;
}

const struct cli_command cli_vm_commands[] = {
    { "create", "create a virtual machine", cmd_create },
    { "list", "list the virtual machines", cmd_list },
    { "show", "show a VM's settings and state", cmd_show },
    { "modify", "change a VM's settings", cmd_modify },
    { "start", "start a VM in the background", cmd_start },
    { "status", "print a VM's live state", cmd_status },
    { "stop", "power a VM off (ACPI button; --force ends it at once)", cmd_stop },
    { "pause", "pause a VM", cmd_pause },
    { "resume", "resume a paused VM", cmd_resume },
    { "reset", "reset a VM", cmd_reset },
    { "console", "attach to a VM's serial console", cmd_console },
    { "screenshot", "save a VM's screen to a file", cmd_screenshot },
    { "clone", "copy a VM", cmd_clone },
    { "delete", "delete a VM", cmd_delete },
    { "logs", "print a VM's log", cmd_logs },
    { "host-check", "check that this host can run VMs (KVM, firmware)", cmd_host_check },
    { NULL, NULL, NULL },
};
