/* `burrow disk create|info|resize|convert`: disk images from the command
 * line.  Errors are one line on stderr; exit status 1 for failures, 2 for
 * usage errors. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/disk.h"
#include "devices/block/qcow2.h"
#include "devices/block/roimage.h"
#include "devices/util.h"

#define ERRLEN 512

struct cmd_help {
    const char *name;
    const char *usage;
    const char *text;
};

static const struct cmd_help helps[] = {
    { "create", "burrow disk create PATH SIZE [--format qcow2|raw] [--backing FILE]",
      "Creates a disk image.  SIZE is in bytes, or with K, M, G or T (powers of\n"
      "1024), and must be a multiple of 512.  qcow2 (the default) grows as it is\n"
      "written; raw is a sparse file.  --backing FILE makes a qcow2 image that\n"
      "reads FILE wherever it has not been written itself; FILE is stored as\n"
      "given and taken relative to PATH's folder, and SIZE may then be left out\n"
      "to take FILE's size.  An existing PATH is never overwritten.\n" },
    { "info", "burrow disk info PATH [--json]",
      "Shows an image's format, virtual size, space used on the host, cluster\n"
      "size, backing file and state flags.  --json prints one JSON object.\n"
      "Images of VirtualBox (vdi), VMware (vmdk), Virtual PC and Hyper-V (vhd,\n"
      "vhdx) show their variant, block size, parent and how much guest data\n"
      "they store (allocated).\n" },
    { "resize", "burrow disk resize PATH SIZE",
      "Grows an image to SIZE (bytes, or with K, M, G or T).  Shrinking is\n"
      "refused: it would destroy data.  The partitions and file systems inside\n"
      "are not touched.  vdi, vmdk, vhd and vhdx images are only read: convert\n"
      "them first.\n" },
    { "convert", "burrow disk convert SRC DST [--format qcow2|raw]",
      "Copies image SRC into a new image DST of the given format (default\n"
      "qcow2), flattening any backing files or parents; regions that SRC does\n"
      "not store, or that read as zeroes, are not stored.  SRC may be qcow2,\n"
      "raw, or an image of VirtualBox (vdi: dynamic, fixed), VMware (vmdk:\n"
      "monolithicSparse, streamOptimized, twoGbMaxExtentSparse/Flat,\n"
      "monolithicFlat, with parents), Virtual PC or Hyper-V (vhd, vhdx: fixed,\n"
      "dynamic, differencing), which Burrow reads but does not write: convert\n"
      "them to use them.  A progress bar is shown on a terminal.  SRC is never\n"
      "changed; an existing DST is never overwritten; on failure DST is removed.\n" },
};

static const struct cmd_help *help_for(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(helps); i++)
        if (!strcmp(helps[i].name, name))
            return &helps[i];
    return NULL;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "burrow disk %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (usage: %s)\n", help_for(cmd)->usage);
    va_end(ap);
    return 2;
}

static int failure(const char *cmd, const char *msg)
{
    fprintf(stderr, "burrow disk %s: %s\n", cmd, msg);
    return 1;
}

static bool is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static void show_help(const char *cmd)
{
    const struct cmd_help *h = help_for(cmd);
    printf("Usage: %s\n\n%s", h->usage, h->text);
}

/* Options shared by the commands; positional arguments are collected. */
struct args {
    const char *pos[3];
    int npos;
    const char *format;
    const char *backing;
    bool json;
    bool help;
};

/* Returns 0, or the exit status of a usage error. */
static int parse(const char *cmd, int argc, char **argv, int max_pos, bool takes_format,
                 bool takes_backing, bool takes_json, struct args *a)
{
    memset(a, 0, sizeof(*a));
    log_set_prefix("burrow");
    qcow2_set_quiet(true);      /* errors are reported in one line */
    ro_set_quiet(true);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot = NULL;
        const char *name = NULL;
        if (is_help(arg)) {
            a->help = true;
            return 0;
        }
        if (takes_json && !strcmp(arg, "--json")) {
            a->json = true;
            continue;
        }
        if (takes_format && !strncmp(arg, "--format", 8)) {
            slot = &a->format;
            name = "--format";
        } else if (takes_backing && !strncmp(arg, "--backing", 9)) {
            slot = &a->backing;
            name = "--backing";
        }
        if (slot) {
            size_t nl = strlen(name);
            if (arg[nl] == '=') {
                *slot = arg + nl + 1;
            } else if (arg[nl] == 0) {
                if (i + 1 >= argc)
                    return usage_error(cmd, "%s needs a value", name);
                *slot = argv[++i];
            } else {
                return usage_error(cmd, "unknown option '%s'", arg);
            }
            if (!**slot)
                return usage_error(cmd, "%s needs a value", name);
            continue;
        }
        if (arg[0] == '-' && arg[1])
            return usage_error(cmd, "unknown option '%s'", arg);
        if (a->npos == max_pos)
            return usage_error(cmd, "unexpected argument '%s'", arg);
        a->pos[a->npos++] = arg;
    }
    if (a->format && strcmp(a->format, "qcow2") && strcmp(a->format, "raw"))
        return usage_error(cmd, "unknown format '%s' (known: qcow2, raw)", a->format);
    return 0;
}

static int cmd_create(int argc, char **argv)
{
    struct args a;
    int rc = parse("create", argc, argv, 2, true, true, false, &a);
    if (rc || a.help) {
        if (a.help)
            show_help("create");
        return rc;
    }
    if (a.npos < 1)
        return usage_error("create", "missing PATH");
    if (a.npos < 2 && !a.backing)
        return usage_error("create", "missing SIZE");
    const char *format = a.format ? a.format : "qcow2";
    if (a.backing && strcmp(format, "qcow2"))
        return usage_error("create", "--backing needs --format qcow2");
    char err[ERRLEN];
    uint64_t size = 0;
    if (a.npos == 2 && disk_parse_size(a.pos[1], &size, err, sizeof(err)) < 0)
        return usage_error("create", "%s", err);
    if (disk_create(a.pos[0], size, format, a.backing, err, sizeof(err)) < 0)
        return failure("create", err);
    return 0;
}

static void human(uint64_t v, char *buf, size_t len)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    unsigned u = 0;
    double d = (double)v;
    while (d >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", v);
    else
        snprintf(buf, len, "%.3g %s", d, units[u]);
}

static int cmd_info(int argc, char **argv)
{
    struct args a;
    int rc = parse("info", argc, argv, 1, false, false, true, &a);
    if (rc || a.help) {
        if (a.help)
            show_help("info");
        return rc;
    }
    if (a.npos < 1)
        return usage_error("info", "missing PATH");
    char err[ERRLEN];
    struct disk_info in;
    if (disk_get_info(a.pos[0], &in, err, sizeof(err)) < 0)
        return failure("info", err);
    bool q = !strcmp(in.format, "qcow2");
    if (a.json) {
        json_t *o = json_object();
        json_object_set_new(o, "filename", json_string(a.pos[0]));
        json_object_set_new(o, "format", json_string(in.format));
        json_object_set_new(o, "virtual-size", json_integer((json_int_t)in.virtual_size));
        json_object_set_new(o, "actual-size", json_integer((json_int_t)in.actual_size));
        if (in.read_only_format) {
            json_object_set_new(o, "subformat", json_string(in.subformat));
            json_object_set_new(o, "allocated-size", json_integer((json_int_t)in.allocated_size));
            if (in.cluster_size)
                json_object_set_new(o, "cluster-size", json_integer(in.cluster_size));
            json_object_set_new(o, "read-only-format", json_true());
            if (in.backing_file[0])
                json_object_set_new(o, "backing-filename", json_string(in.backing_file));
        }
        if (q) {
            json_object_set_new(o, "cluster-size", json_integer(in.cluster_size));
            json_object_set_new(o, "qcow2-version", json_integer(in.qcow2_version));
            json_object_set_new(o, "refcount-bits", json_integer(in.refcount_bits));
            json_object_set_new(o, "lazy-refcounts", json_boolean(in.lazy_refcounts));
            json_object_set_new(o, "dirty-flag", json_boolean(in.dirty));
            json_object_set_new(o, "corrupt", json_boolean(in.corrupt));
            if (in.backing_file[0])
                json_object_set_new(o, "backing-filename", json_string(in.backing_file));
            if (in.backing_format[0])
                json_object_set_new(o, "backing-format", json_string(in.backing_format));
        }
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
            return failure("info", "out of memory");
        printf("%s\n", s);
        free(s);
        return 0;
    }
    char vs[32], as[32];
    human(in.virtual_size, vs, sizeof(vs));
    human(in.actual_size, as, sizeof(as));
    printf("image: %s\n", a.pos[0]);
    printf("format: %s\n", in.format);
    printf("virtual size: %s (%" PRIu64 " bytes)\n", vs, in.virtual_size);
    printf("disk size: %s\n", as);
    if (in.read_only_format) {
        char al[32];
        human(in.allocated_size, al, sizeof(al));
        printf("variant: %s\n", in.subformat);
        printf("allocated: %s (%" PRIu64 " bytes of guest data stored)\n", al, in.allocated_size);
        if (in.cluster_size)
            printf("block size: %" PRIu32 "\n", in.cluster_size);
        if (in.backing_file[0])
            printf("parent: %s\n", in.backing_file);
        printf("Burrow reads this format but does not write it: convert it to use it "
               "(burrow disk convert %s NEW.qcow2)\n", a.pos[0]);
    }
    if (q) {
        printf("cluster size: %" PRIu32 "\n", in.cluster_size);
        if (in.backing_file[0])
            printf("backing file: %s%s%s%s\n", in.backing_file, in.backing_format[0] ? " (format " : "",
                   in.backing_format, in.backing_format[0] ? ")" : "");
        printf("qcow2 version: %u, refcount bits: %u, lazy refcounts: %s\n", in.qcow2_version,
               in.refcount_bits, in.lazy_refcounts ? "on" : "off");
        printf("dirty: %s\ncorrupt: %s\n", in.dirty ? "yes" : "no", in.corrupt ? "yes" : "no");
    }
    return 0;
}

static int cmd_resize(int argc, char **argv)
{
    struct args a;
    int rc = parse("resize", argc, argv, 2, false, false, false, &a);
    if (rc || a.help) {
        if (a.help)
            show_help("resize");
        return rc;
    }
    if (a.npos < 2)
        return usage_error("resize", a.npos ? "missing SIZE" : "missing PATH");
    char err[ERRLEN];
    uint64_t size;
    if (disk_parse_size(a.pos[1], &size, err, sizeof(err)) < 0)
        return usage_error("resize", "%s", err);
    if (disk_resize(a.pos[0], size, err, sizeof(err)) < 0)
        return failure("resize", err);
    return 0;
}

void cli_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct cli_bar *b = opaque;
    int pm = total ? (int)(done * 1000 / total) : 1000;
    if (pm == b->last)
        return;
    b->last = pm;
    enum { WIDTH = 40 };
    char cells[WIDTH + 1];
    int full = pm * WIDTH / 1000;
    for (int i = 0; i < WIDTH; i++)
        cells[i] = i < full ? '#' : '.';
    cells[WIDTH] = 0;
    fprintf(stderr, "\r[%s] %3d.%d%%", cells, pm / 10, pm % 10);
    fflush(stderr);
}

static int cmd_convert(int argc, char **argv)
{
    struct args a;
    int rc = parse("convert", argc, argv, 2, true, false, false, &a);
    if (rc || a.help) {
        if (a.help)
            show_help("convert");
        return rc;
    }
    if (a.npos < 2)
        return usage_error("convert", a.npos ? "missing DST" : "missing SRC");
    char err[ERRLEN];
    struct cli_bar b = { .last = -1 };
    bool tty = isatty(2);
    int ret = disk_convert(a.pos[0], a.pos[1], a.format ? a.format : "qcow2",
                           tty ? cli_progress : NULL, &b, err, sizeof(err));
    if (tty && b.last >= 0)
        fprintf(stderr, "\n");
    if (ret < 0)
        return failure("convert", err);
    return 0;
}

const struct cli_command cli_disk_commands[] = {
    { "create", "create a disk image (qcow2 or raw)", cmd_create },
    { "info", "show a disk image's format (also vdi, vmdk, vhd, vhdx), size and state", cmd_info },
    { "resize", "grow a disk image", cmd_resize },
    { "convert", "copy a disk image (also vdi, vmdk, vhd, vhdx) into a new qcow2 or raw one", cmd_convert },
    { NULL, NULL, NULL },
};
