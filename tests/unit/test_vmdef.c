/* VM definitions: name rules, the vm.ini round trip, validation errors that
 * name file and line, the repository (create, load, save conflicts, modify,
 * clone, delete, list) in a scratch XDG tree, and burrow-vm's command line
 * built from a definition. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "app/burrow.h"
#include "app/supervise.h"
#include "app/vmdef.h"

static char scratch[PATH_MAX];

static void remove_tree(const char *path)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

/* Every test gets an XDG tree of its own. */
static int setup_xdg(void **state)
{
    snprintf(scratch, sizeof(scratch), "%s/burrow-vmdef-XXXXXX", P_tmpdir);
    if (!mkdtemp(scratch))
        return -1;
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/data", scratch);
    setenv("XDG_DATA_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/state", scratch);
    setenv("XDG_STATE_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/run", scratch);
    setenv("XDG_RUNTIME_DIR", p, 1);
    return 0;
}

static int teardown_xdg(void **state)
{
    remove_tree(scratch);
    return 0;
}

/* ---- names ---- */

static void test_names(void **state)
{
    struct burrow_error err;
    const char *good[] = { "a", "debian-12", "Win_11", "x.y+z", "0", "My Windows VM", "two  spaces",
                           "caf\xc3\xa9", "\xd0\x94\xd0\xb5\xd0\xb1\xd0\xb8\xd0\xb0\xd0\xbd",
                           "\xe6\xb5\x8b\xe8\xaf\x95 1", "e\xcc\x81t\xc3\xa9", NULL };
    for (const char **n = good; *n; n++)
        assert_true(burrow_name_valid(*n, &err));
    char longest[BURROW_NAME_MAX + 2];
    memset(longest, 'n', sizeof(longest));
    longest[BURROW_NAME_MAX] = '\0';
    assert_true(burrow_name_valid(longest, &err));
    longest[BURROW_NAME_MAX] = 'n';
    longest[BURROW_NAME_MAX + 1] = '\0';
    assert_false(burrow_name_valid(longest, &err));
    assert_non_null(strstr(err.msg, "too long"));

    assert_false(burrow_name_valid("a/b", &err));
    assert_non_null(strstr(err.msg, "'/'"));
    assert_false(burrow_name_valid(".hidden", &err));
    assert_non_null(strstr(err.msg, "start with '.'"));
    assert_false(burrow_name_valid("-opt", &err));
    assert_false(burrow_name_valid("..", &err));
    assert_false(burrow_name_valid("", &err));
    assert_false(burrow_name_valid(NULL, &err));
    assert_false(burrow_name_valid("tab\there", &err));
    assert_non_null(strstr(err.msg, "control characters"));
    assert_false(burrow_name_valid("line\nbreak", &err));
    assert_false(burrow_name_valid("bell\a", &err));
    assert_false(burrow_name_valid("a*b", &err));
    assert_non_null(strstr(err.msg, "'*'"));
    /* ',' and ':' separate burrow-vm's option fields, where the folder shows */
    assert_false(burrow_name_valid("a,b", &err));
    assert_false(burrow_name_valid("a:b", &err));
    /* vm.ini keeps no spaces at the ends of a value */
    assert_false(burrow_name_valid(" lead", &err));
    assert_non_null(strstr(err.msg, "space"));
    assert_false(burrow_name_valid("trail ", &err));
    assert_false(burrow_name_valid(" ", &err));
    /* not UTF-8; a C1 control; a no-break space; a symbol */
    assert_false(burrow_name_valid("caf\xe9", &err));
    assert_non_null(strstr(err.msg, "UTF-8"));
    assert_false(burrow_name_valid("a\xc2\x85" "b", &err));
    assert_false(burrow_name_valid("a\xc2\xa0" "b", &err));
    assert_false(burrow_name_valid("a\xe2\x98\x83", &err));
    assert_non_null(strstr(err.msg, "\xe2\x98\x83"));
    /* the limit counts bytes: 32 two-byte letters fit, 33 do not */
    char wide[2 * 33 + 1] = "";
    for (int i = 0; i < 32; i++)
        strcat(wide, "\xc3\xa9");
    assert_true(burrow_name_valid(wide, &err));
    strcat(wide, "\xc3\xa9");
    assert_false(burrow_name_valid(wide, &err));
    assert_non_null(strstr(err.msg, "too long"));
}

/* ---- round trip ---- */

static void full_def(struct burrow_vmdef *d)
{
    vmdef_init(d, "full", burrow_ostype_find("debian"));
    d->memory_mib = 3072;
    d->cpus = 4;
    snprintf(d->boot, sizeof(d->boot), "dc");
    snprintf(d->display, sizeof(d->display), "vnc");
    d->usb = false;
    snprintf(d->audio, sizeof(d->audio), "none");
    d->audio_in = true;
    snprintf(d->vnc_listen, sizeof(d->vnc_listen), "127.0.0.1:5901");
    snprintf(d->vnc_password_file, sizeof(d->vnc_password_file), "/home/u/.vncpw");
    snprintf(d->cdrom, sizeof(d->cdrom), "/isos/debian 12; netinst=x.iso");
    d->ndisks = 2;
    snprintf(d->disks[0].path, sizeof(d->disks[0].path), "disk0.qcow2");
    snprintf(d->disks[0].interface, sizeof(d->disks[0].interface), "virtio");
    snprintf(d->disks[0].format, sizeof(d->disks[0].format), "qcow2");
    snprintf(d->disks[1].path, sizeof(d->disks[1].path), "/data/shared.img");
    snprintf(d->disks[1].interface, sizeof(d->disks[1].interface), "sata");
    snprintf(d->disks[1].format, sizeof(d->disks[1].format), "raw");
    d->disks[1].readonly = true;
    d->nnics = 2;
    snprintf(d->nics[0].mode, sizeof(d->nics[0].mode), "user");
    snprintf(d->nics[0].model, sizeof(d->nics[0].model), "virtio");
    snprintf(d->nics[0].mac, sizeof(d->nics[0].mac), "52:54:00:12:34:56");
    d->nics[0].nhostfwd = 2;
    snprintf(d->nics[0].hostfwd[0], sizeof(d->nics[0].hostfwd[0]), "tcp::2222-:22");
    snprintf(d->nics[0].hostfwd[1], sizeof(d->nics[0].hostfwd[1]), "udp:127.0.0.1:5353-10.0.2.15:53");
    snprintf(d->nics[1].mode, sizeof(d->nics[1].mode), "user");
    snprintf(d->nics[1].model, sizeof(d->nics[1].model), "e1000");
}

static void assert_defs_equal(const struct burrow_vmdef *a, const struct burrow_vmdef *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->uuid, b->uuid);
    assert_string_equal(a->os, b->os);
    assert_int_equal(a->memory_mib, b->memory_mib);
    assert_int_equal(a->cpus, b->cpus);
    assert_string_equal(a->boot, b->boot);
    assert_string_equal(a->display, b->display);
    assert_string_equal(a->vnc_listen, b->vnc_listen);
    assert_string_equal(a->vnc_password_file, b->vnc_password_file);
    assert_int_equal(a->usb, b->usb);
    assert_string_equal(a->audio, b->audio);
    assert_int_equal(a->audio_in, b->audio_in);
    assert_string_equal(a->cdrom, b->cdrom);
    assert_int_equal(a->ndisks, b->ndisks);
    for (unsigned i = 0; i < a->ndisks; i++) {
        assert_string_equal(a->disks[i].path, b->disks[i].path);
        assert_string_equal(a->disks[i].interface, b->disks[i].interface);
        assert_string_equal(a->disks[i].format, b->disks[i].format);
        assert_int_equal(a->disks[i].readonly, b->disks[i].readonly);
    }
    assert_int_equal(a->nnics, b->nnics);
    for (unsigned i = 0; i < a->nnics; i++) {
        assert_string_equal(a->nics[i].mode, b->nics[i].mode);
        assert_string_equal(a->nics[i].model, b->nics[i].model);
        assert_string_equal(a->nics[i].mac, b->nics[i].mac);
        assert_int_equal(a->nics[i].nhostfwd, b->nics[i].nhostfwd);
        for (unsigned j = 0; j < a->nics[i].nhostfwd; j++)
            assert_string_equal(a->nics[i].hostfwd[j], b->nics[i].hostfwd[j]);
    }
}

static void test_round_trip(void **state)
{
    struct burrow_vmdef *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct burrow_error err = { .msg = "" };
    full_def(a);
    assert_int_equal(burrow_vmdef_validate(a, &err), 0);
    size_t len;
    char *text = vmdef_format(a, &len);
    assert_non_null(strstr(text, "[burrow]\nformat=1\n"));
    assert_non_null(strstr(text, "memory=3072\n"));
    assert_non_null(strstr(text, "usb=off\n"));
    assert_non_null(strstr(text, "audio=none\naudio-in=on\n"));
    int rc = vmdef_parse(text, len, "vm.ini", "full", b, &err);
    if (rc)
        fprintf(stderr, "parse: %s\n%s", err.msg, text);
    assert_int_equal(rc, 0);
    assert_defs_equal(a, b);
    /* Formatting what was parsed gives the same text. */
    char *again = vmdef_format(b, NULL);
    assert_string_equal(text, again);
    g_free(again);
    g_free(text);

    /* A hand-written file: comments, blank lines, spaces around '='. */
    const char *hand =
        "# my VM\n"
        "\n"
        "[burrow]\n"
        "format = 1\n"
        "[vm]\n"
        "name=hand\n"
        "os=arch\n"
        "memory=512\n"
        "   cpus = 2\n"
        "[disk 3]\n"
        "path=d.img\n";
    rc = vmdef_parse(hand, strlen(hand), "vm.ini", "hand", b, &err);
    if (rc)
        fprintf(stderr, "parse: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(b->os, "arch");
    assert_int_equal(b->cpus, 2);
    assert_int_equal(b->ndisks, 1);
    assert_string_equal(b->disks[0].interface, "virtio");   /* defaults */
    assert_string_equal(b->disks[0].format, "raw");
    assert_string_equal(b->display, "sdl");
    assert_true(b->usb);                                    /* usb=on unless said */
    assert_string_equal(b->audio, "off");                   /* no sound card unless said */
    assert_false(b->audio_in);
    assert_string_equal(b->uuid, "");
    free(a);
    free(b);
}

/* ---- errors with file and line ---- */

static const char base_text[] =
    "[burrow]\n"            /* 1 */
    "format=1\n"            /* 2 */
    "[vm]\n"                /* 3 */
    "name=t\n"              /* 4 */
    "os=debian\n"           /* 5 */
    "memory=1024\n"         /* 6 */
    "cpus=1\n"              /* 7 */
    "[nic 0]\n"             /* 8 */
    "mac=52:54:00:00:00:01\n" /* 9 */
    "[disk 0]\n"            /* 10 */
    "path=a.img\n";         /* 11 */

/* Parses base_text with line `line` (1-based) replaced by repl (NULL:
 * appended after the end instead), expects failure with msg at that
 * position. */
static void expect_error(int line, const char *repl, int want_line, const char *want)
{
    GString *t = g_string_new(NULL);
    gchar **lines = g_strsplit(base_text, "\n", -1);
    int n = 0;
    for (gchar **l = lines; *l && **l; l++) {
        n++;
        g_string_append(t, n == line && repl ? repl : *l);
        g_string_append_c(t, '\n');
    }
    if (!repl || line > n)
        g_string_append_printf(t, "%s\n", repl ? repl : "");
    g_strfreev(lines);
    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    struct burrow_error err = { .msg = "" };
    int rc = vmdef_parse(t->str, t->len, "/vms/t/vm.ini", "t", d, &err);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "/vms/t/vm.ini:%d: ", want_line);
    if (rc == 0 || strncmp(err.msg, prefix, strlen(prefix)) || !strstr(err.msg, want))
        fail_msg("line %d '%s': got rc %d, '%s'; wanted '%s...%s'", line, repl, rc, err.msg,
                 prefix, want);
    free(d);
    g_string_free(t, TRUE);
}

static void test_errors_with_lines(void **state)
{
    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    struct burrow_error err;
    assert_int_equal(vmdef_parse(base_text, strlen(base_text), "f", "t", d, &err), 0);
    free(d);

    expect_error(6, "memory=-5", 6, "memory: -5 is out of range");
    expect_error(6, "memory=8", 6, "out of range");
    expect_error(6, "memory=lots", 6, "not a whole number");
    expect_error(7, "cpus=0", 7, "cpus");
    expect_error(7, "cpus=1000", 7, "cpus");
    expect_error(5, "os=beos", 5, "unknown OS type 'beos'");
    expect_error(4, "name=other", 4, "does not match");
    expect_error(4, "name=a/b", 4, "'/'");
    expect_error(2, "format=2", 2, "newer");
    expect_error(7, "cpus", 7, "not KEY=VALUE");
    expect_error(7, "[broken", 7, "not a [group]");
    expect_error(7, "memory=2", 7, "appears twice");
    expect_error(7, "colour=red", 7, "unknown key 'colour'");
    expect_error(7, "cpus=1\nusb=maybe", 8, "usb: 'maybe' is not on or off");
    expect_error(7, "cpus=1\naudio=alsa", 8, "audio 'alsa' is not one of pa, none, off");
    expect_error(7, "cpus=1\naudio-in=yes", 8, "audio-in: 'yes' is not on or off");
    expect_error(7, "cpus=1\naudio=off\naudio-in=on", 9, "needs a sound card");
    expect_error(7, "cpus=1\naudio-in=on", 8, "needs a sound card");
    expect_error(8, "[disk 9]", 8, "unknown group [disk 9]");
    expect_error(8, "[floppy]", 8, "unknown group");
    expect_error(11, "interface=ide", 10, "[disk 0] lacks the key 'path'");
    expect_error(9, "mac=01:00:5e:00:00:01", 9, "not a unicast MAC");
    expect_error(9, "model=rtl8139", 9, "model 'rtl8139'");
    expect_error(9, "hostfwd=tcp::99999-:22", 9, "port forward");
    expect_error(12, "readonly=maybe", 12, "not true or false");
    expect_error(12, "interface=scsi", 12, "interface 'scsi'");
    /* Formats Burrow only reads: read-only, or refused with the command
     * that converts them; formats it cannot read, named. */
    expect_error(12, "format=vdi", 12, "'a.img' is a vdi image, which Burrow reads but does not write");
    expect_error(12, "format=vhdx", 12, "convert it with 'burrow disk convert a.img a.qcow2'");
    expect_error(12, "format=qed", 12, "'a.img' is a qed image, which Burrow cannot read");
    GString *ro = g_string_new(base_text);
    g_string_append(ro, "format=vmdk\nreadonly=true\n");
    d = calloc(1, sizeof(*d));
    assert_int_equal(vmdef_parse(ro->str, ro->len, "f", "t", d, &err), 0);
    assert_string_equal(d->disks[0].format, "vmdk");
    free(d);
    g_string_free(ro, TRUE);
    expect_error(11, "path=a,b.img", 11, "cannot contain ','");
    expect_error(6, "cpus=1", 7, "appears twice");
    expect_error(3, "[burrow]", 3, "appears twice");

    /* Missing pieces: a group's header line, or the first line. */
    const char *no_vm = "[burrow]\nformat=1\n";
    d = calloc(1, sizeof(*d));
    assert_int_equal(vmdef_parse(no_vm, strlen(no_vm), "f.ini", NULL, d, &err), -1);
    assert_non_null(strstr(err.msg, "f.ini:2: no [vm] group"));
    const char *not_ours = "[Desktop Entry]\nName=x\n";
    assert_int_equal(vmdef_parse(not_ours, strlen(not_ours), "f.ini", NULL, d, &err), -1);
    assert_non_null(strstr(err.msg, "f.ini:1: "));
    const char *no_mem = "[burrow]\nformat=1\n[vm]\nname=t\nos=other\ncpus=1\n";
    assert_int_equal(vmdef_parse(no_mem, strlen(no_mem), "f.ini", NULL, d, &err), -1);
    assert_non_null(strstr(err.msg, "f.ini:3: [vm] lacks the key 'memory'"));
    const char *binary = "[burrow]\nformat=1\0\n";
    assert_int_equal(vmdef_parse(binary, 18, "f.ini", NULL, d, &err), -1);
    free(d);
}

/* [usb-filter N]: read in index order, ids normalised, written back the
 * same; mistakes named with their line; the CLI's spec parser and
 * burrow-vm's option. */
static void test_usb_filters(void **state)
{
    static const char text[] =
        "[burrow]\nformat=1\n[vm]\nname=t\nos=debian\nmemory=1024\ncpus=1\n"
        "[usb-filter 3]\nname=My stick, the red one\nvid=525\npid=A4A5\n"
        "[usb-filter 0]\nserial=XYZ-1\n";
    struct burrow_vmdef *d = calloc(1, sizeof(*d)), *e = calloc(1, sizeof(*e));
    struct burrow_error err = { .msg = "" };
    assert_int_equal(vmdef_parse(text, strlen(text), "f", "t", d, &err), 0);
    assert_int_equal(d->nusb_filters, 2);
    assert_string_equal(d->usb_filters[0].serial, "XYZ-1");
    assert_string_equal(d->usb_filters[0].vid, "");
    assert_string_equal(d->usb_filters[1].name, "My stick, the red one");
    assert_string_equal(d->usb_filters[1].vid, "0525");
    assert_string_equal(d->usb_filters[1].pid, "a4a5");
    char *out = vmdef_format(d, NULL);
    assert_non_null(strstr(out, "[usb-filter 0]\nserial=XYZ-1\n"));
    assert_non_null(strstr(out, "[usb-filter 1]\nname=My stick, the red one\nvid=0525\npid=a4a5\n"));
    assert_int_equal(vmdef_parse(out, strlen(out), "f", "t", e, &err), 0);
    assert_int_equal(e->nusb_filters, 2);
    assert_string_equal(e->usb_filters[1].pid, "a4a5");
    g_free(out);

    expect_error(11, "path=a.img\n[usb-filter 0]\nvid=zz", 12, "vid must be 1 to 4 hexadecimal digits");
    expect_error(11, "path=a.img\n[usb-filter 0]\npid=12345", 13, "pid: value too long");
    expect_error(11, "path=a.img\n[usb-filter 0]\nname=only a name", 12, "needs vid, pid or serial");
    expect_error(11, "path=a.img\n[usb-filter 0]\nserial=a,b", 12, "cannot hold ','");
    expect_error(11, "path=a.img\n[usb-filter 0]\ncolour=red", 13, "unknown key 'colour'");
    expect_error(11, "path=a.img\n[usb-filter 8]\nvid=1", 12, "unknown group [usb-filter 8]");
    expect_error(7, "cpus=1\nusb=off\n[usb-filter 0]\nvid=1", 9, "need usb=on");

    /* The CLI's spec. */
    struct burrow_usb_filter f;
    assert_int_equal(burrow_usb_filter_parse("vid=1d6b,pid=2,serial=S 1,name=hub", &f, &err), 0);
    assert_string_equal(f.vid, "1d6b");
    assert_string_equal(f.pid, "0002");
    assert_string_equal(f.serial, "S 1");
    assert_string_equal(f.name, "hub");
    char opt[128];
    burrow_usb_filter_option(&f, opt, sizeof(opt));
    assert_string_equal(opt, "vid=1d6b,pid=0002,serial=S 1");
    assert_int_equal(burrow_usb_filter_parse("serial=ABC", &f, &err), 0);
    burrow_usb_filter_option(&f, opt, sizeof(opt));
    assert_string_equal(opt, "serial=ABC");
    assert_int_equal(burrow_usb_filter_parse("pid=a4a5", &f, &err), 0);
    burrow_usb_filter_option(&f, opt, sizeof(opt));
    assert_string_equal(opt, "pid=a4a5");
    assert_int_equal(burrow_usb_filter_parse("name=x", &f, &err), -1);
    assert_non_null(strstr(err.msg, "needs vid, pid or serial"));
    assert_int_equal(burrow_usb_filter_parse("vid=12345", &f, &err), -1);
    assert_non_null(strstr(err.msg, "vid '12345'"));
    assert_int_equal(burrow_usb_filter_parse("vid", &f, &err), -1);
    assert_non_null(strstr(err.msg, "not KEY=VALUE"));
    assert_int_equal(burrow_usb_filter_parse("class=8", &f, &err), -1);
    assert_non_null(strstr(err.msg, "unknown key 'class'"));
    assert_int_equal(burrow_usb_filter_parse("serial=", &f, &err), -1);
    assert_int_equal(burrow_usb_filter_parse("serial=a\tb", &f, &err), -1);
    free(d);
    free(e);
}

static void test_validate_in_memory(void **state)
{
    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    struct burrow_error err;
    full_def(d);
    d->memory_mib = 4;
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "memory: "));
    full_def(d);
    snprintf(d->display, sizeof(d->display), "vnc");
    d->vnc_listen[0] = '\0';
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "vnc-listen"));
    full_def(d);
    snprintf(d->boot, sizeof(d->boot), "cc");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "boot: "));
    full_def(d);
    snprintf(d->nics[1].mac, sizeof(d->nics[1].mac), "zz:54:00:00:00:01");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "nic 1: "));
    full_def(d);
    d->disks[1].path[0] = '\0';
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "disk 1: "));
    /* USB disks: only with the USB controller, two at most. */
    full_def(d);
    snprintf(d->disks[1].interface, sizeof(d->disks[1].interface), "usb");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "disk 1: a USB disk needs usb=on"));
    d->usb = true;
    assert_int_equal(burrow_vmdef_validate(d, &err), 0);
    d->disks[2] = d->disks[1];
    snprintf(d->disks[2].path, sizeof(d->disks[2].path), "/data/third.img");
    d->ndisks = 3;
    snprintf(d->disks[0].interface, sizeof(d->disks[0].interface), "usb");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "disk 2: at most 2 USB disks"));

    assert_true(vmdef_hostfwd_valid("tcp:127.0.0.1:8080-10.0.2.15:80"));
    assert_true(vmdef_hostfwd_valid("udp::53-:53"));
    assert_false(vmdef_hostfwd_valid("sctp::1-:1"));
    assert_false(vmdef_hostfwd_valid("tcp::0-:22"));
    assert_false(vmdef_hostfwd_valid("tcp::22"));
    assert_false(vmdef_hostfwd_valid("tcp::22-:22,restrict=on"));
    assert_true(vmdef_listen_valid("0.0.0.0:5900"));
    assert_true(vmdef_listen_valid("localhost:1"));
    assert_false(vmdef_listen_valid(":5900"));
    assert_false(vmdef_listen_valid("host:65536"));
    assert_true(vmdef_mac_valid("52:54:00:AB:cd:01"));
    assert_false(vmdef_mac_valid("52:54:00:ab:cd"));
    assert_false(vmdef_mac_valid("53:54:00:ab:cd:01"));   /* multicast */
    free(d);
}

/* A second forward of a host port cannot be set up: refused. */
static void test_hostfwd_clash(void **state)
{
    assert_true(vmdef_hostfwd_clash("tcp::8080-:80", "tcp::8080-:80"));
    assert_true(vmdef_hostfwd_clash("tcp::8080-:80", "tcp::8080-10.0.2.15:22"));
    assert_true(vmdef_hostfwd_clash("tcp::8080-:80", "tcp:127.0.0.1:8080-:80"));
    assert_true(vmdef_hostfwd_clash("tcp:0.0.0.0:8080-:80", "tcp:127.0.0.1:8080-:80"));
    assert_true(vmdef_hostfwd_clash("udp:127.0.0.1:53-:53", "udp:127.0.0.1:053-:5353"));
    assert_false(vmdef_hostfwd_clash("tcp::8080-:80", "udp::8080-:80"));
    assert_false(vmdef_hostfwd_clash("tcp::8080-:80", "tcp::8081-:80"));
    assert_false(vmdef_hostfwd_clash("tcp:127.0.0.1:8080-:80", "tcp:127.0.0.2:8080-:80"));
    assert_false(vmdef_hostfwd_clash("tcp::8080-:80", "nonsense"));

    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    struct burrow_error err;
    full_def(d);
    assert_int_equal(burrow_vmdef_validate(d, &err), 0);
    /* In one NIC, and across two (each forward takes the host's port). */
    snprintf(d->nics[0].hostfwd[1], sizeof(d->nics[0].hostfwd[1]), "tcp::2222-:2222");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "same host port"));
    full_def(d);
    d->nics[1].nhostfwd = 1;
    snprintf(d->nics[1].hostfwd[0], sizeof(d->nics[1].hostfwd[0]), "tcp:127.0.0.1:2222-:22");
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    assert_non_null(strstr(err.msg, "nic 1: "));
    free(d);
}

/* Memory and vCPUs against a made-up host: more than it has warns, more
 * than can work is refused. */
static void test_resource_fit(void **state)
{
    const struct vmdef_host h = { .ram_mib = 8192, .swap_mib = 2048, .online_cpus = 4,
                                  .kvm_max_vcpus = 16 };
    char why[200];
    assert_int_equal(vmdef_memory_fit(&h, 8192, why, sizeof(why)), VMDEF_FITS);
    assert_int_equal(vmdef_memory_fit(&h, 8193, why, sizeof(why)), VMDEF_FIT_WARN);
    assert_non_null(strstr(why, "8192 MiB"));
    assert_int_equal(vmdef_memory_fit(&h, 10240, why, sizeof(why)), VMDEF_FIT_WARN);
    assert_int_equal(vmdef_memory_fit(&h, 10241, why, sizeof(why)), VMDEF_FIT_NO);
    assert_non_null(strstr(why, "RAM and swap"));
    const struct vmdef_host noswap = { .ram_mib = 8192, .online_cpus = 4 };
    assert_int_equal(vmdef_memory_fit(&noswap, 8193, why, sizeof(why)), VMDEF_FIT_NO);
    assert_non_null(strstr(why, "no swap"));
    const struct vmdef_host unknown = { 0 };
    assert_int_equal(vmdef_memory_fit(&unknown, 65536, why, sizeof(why)), VMDEF_FITS);
    assert_int_equal(vmdef_memory_fit(&unknown, BURROW_MEMORY_MAX + 1ULL, why, sizeof(why)),
                     VMDEF_FIT_NO);

    assert_int_equal(vmdef_cpus_fit(&h, 4, why, sizeof(why)), VMDEF_FITS);
    assert_int_equal(vmdef_cpus_fit(&h, 5, why, sizeof(why)), VMDEF_FIT_WARN);
    assert_non_null(strstr(why, "4 online CPUs"));
    assert_int_equal(vmdef_cpus_fit(&h, 16, why, sizeof(why)), VMDEF_FIT_WARN);
    assert_int_equal(vmdef_cpus_fit(&h, 17, why, sizeof(why)), VMDEF_FIT_NO);
    assert_non_null(strstr(why, "KVM"));
    assert_int_equal(vmdef_cpus_fit(&unknown, 254, why, sizeof(why)), VMDEF_FITS);
    assert_int_equal(vmdef_cpus_fit(&unknown, 255, why, sizeof(why)), VMDEF_FIT_NO);
    assert_non_null(strstr(why, "254"));

    /* The definition takes no more vCPUs than the machine has APIC ids for. */
    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    struct burrow_error err;
    full_def(d);
    d->cpus = 254;
    assert_int_equal(burrow_vmdef_validate(d, &err), 0);
    d->cpus = 255;
    assert_int_equal(burrow_vmdef_validate(d, &err), -1);
    free(d);

    struct vmdef_host real;
    vmdef_host_query(&real);
    assert_true(real.ram_mib > 0);
    assert_true(real.online_cpus > 0);
}

/* ---- the repository ---- */

/* The size the guest sees: a raw file's length, or a qcow2 header's size
 * field (big-endian, at byte 24, by the qcow2 specification). */
static long long virtual_size(const char *path, const char *format)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (!strcmp(format, "raw"))
        return st.st_size;
    FILE *f = fopen(path, "rb");
    unsigned char h[32];
    if (!f || fread(h, 1, sizeof(h), f) != sizeof(h) || memcmp(h, "QFI\xfb", 4)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    unsigned long long v = 0;
    for (int i = 24; i < 32; i++)
        v = v << 8 | h[i];
    return (long long)v;
}

static void test_create_load_save(void **state)
{
    struct burrow_error err = { .msg = "" };
    struct burrow_vm_config cfg = { .name = "alpha", .os = "fedora", .memory_mib = 256,
                                    .disk_size = 64 << 20 };
    struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
    if (!vm)
        fail_msg("create: %s", err.msg);
    char disk[PATH_MAX];
    assert_int_equal(burrow_vm_disk_path(vm, 0, disk, sizeof(disk)), 0);
    assert_int_equal(virtual_size(disk, burrow_vm_def(vm)->disks[0].format), 64 << 20);
    assert_string_equal(burrow_vm_def(vm)->os, "fedora");
    assert_int_equal(burrow_vm_def(vm)->memory_mib, 256);
    assert_int_equal(burrow_vm_def(vm)->cpus, burrow_ostype_find("fedora")->cpus);
    assert_int_equal(burrow_vm_def(vm)->nnics, 1);
    assert_true(vmdef_mac_valid(burrow_vm_def(vm)->nics[0].mac));
    assert_true(g_uuid_string_is_valid(burrow_vm_def(vm)->uuid));
    assert_true(burrow_vm_def(vm)->usb);                    /* on for every OS type */
    assert_string_equal(burrow_vm_def(vm)->audio, "pa");    /* a desktop's sound */
    assert_false(burrow_vm_def(vm)->audio_in);              /* no microphone unless asked */

    /* Refusals that change nothing. */
    assert_null(burrow_vm_create(&cfg, &err));
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(virtual_size(disk, burrow_vm_def(vm)->disks[0].format), 64 << 20);
    struct burrow_vm_config bad = { .name = "beta", .memory_mib = -5 };
    assert_null(burrow_vm_create(&bad, &err));
    assert_non_null(strstr(err.msg, "-5"));
    bad = (struct burrow_vm_config){ .name = "beta", .usb = "maybe" };
    assert_null(burrow_vm_create(&bad, &err));
    assert_non_null(strstr(err.msg, "usb"));
    bad = (struct burrow_vm_config){ .name = "beta", .audio = "alsa" };
    assert_null(burrow_vm_create(&bad, &err));
    assert_non_null(strstr(err.msg, "audio"));
    bad = (struct burrow_vm_config){ .name = "beta", .os = "linux64", .audio_in = "on" };
    assert_null(burrow_vm_create(&bad, &err));
    assert_non_null(strstr(err.msg, "sound card"));
    bad = (struct burrow_vm_config){ .name = "x/y" };
    assert_null(burrow_vm_create(&bad, &err));
    bad = (struct burrow_vm_config){ .name = "beta", .disk = "/nonexistent/disk.img" };
    assert_null(burrow_vm_create(&bad, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/disk.img"));
    char **names = burrow_vm_list(&err);
    assert_non_null(names);
    assert_string_equal(names[0], "alpha");
    assert_null(names[1]);
    burrow_strv_free(names);

    /* Two handles: the second save notices the first. */
    struct burrow_vm *a = burrow_vm_load("alpha", &err), *b = burrow_vm_load("alpha", &err);
    assert_non_null(a);
    assert_non_null(b);
    burrow_vm_def(a)->cpus = 3;
    assert_false(burrow_vm_stale(a));
    assert_int_equal(burrow_vm_save(a, &err), 0);
    assert_false(burrow_vm_stale(a));
    assert_true(burrow_vm_stale(b));
    burrow_vm_def(b)->memory_mib = 512;
    assert_int_equal(burrow_vm_save(b, &err), -1);
    assert_non_null(strstr(err.msg, "changed since it was loaded"));
    assert_string_equal(err.cls, "conflict");
    /* An invalid edit is refused and the file stays as it was. */
    burrow_vm_def(a)->memory_mib = 1;
    assert_int_equal(burrow_vm_save(a, &err), -1);
    assert_string_equal(err.cls, "");
    burrow_vm_free(a);
    burrow_vm_free(b);
    a = burrow_vm_load("alpha", &err);
    assert_non_null(a);
    assert_int_equal(burrow_vm_def(a)->cpus, 3);
    assert_int_equal(burrow_vm_def(a)->memory_mib, 256);
    burrow_vm_free(a);
    assert_int_equal(burrow_vm_state(vm, NULL), BURROW_VM_STOPPED);

    /* A hand edit gone wrong: reported with file and line, not rewritten. */
    char def[PATH_MAX + 16];
    snprintf(def, sizeof(def), "%s/vm.ini", burrow_vm_dir(vm));
    size_t len;
    char *text = read_file(def, &len);
    assert_non_null(text);
    char *broken = g_strdup_printf("%sbogus line\n", text);
    FILE *f = fopen(def, "w");
    fputs(broken, f);
    fclose(f);
    int lines = 0;
    for (char *p = broken; *p; p++)
        lines += *p == '\n';
    assert_null(burrow_vm_load("alpha", &err));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s:%d: ", def, lines);
    if (strncmp(err.msg, want, strlen(want)))
        fail_msg("'%s' does not start with '%s'", err.msg, want);
    char *after = read_file(def, NULL);
    assert_string_equal(after, broken);
    free(after);
    g_free(broken);
    free(text);
    burrow_vm_free(vm);
}

static int edit_cpus(struct burrow_vmdef *d, void *opaque, struct burrow_error *err)
{
    d->cpus = *(unsigned *)opaque;
    return 0;
}

static int edit_refuse(struct burrow_vmdef *d, void *opaque, struct burrow_error *err)
{
    d->cpus = 7;
    burrow_error_set(err, "refused on purpose");
    return -1;
}

static void test_modify_clone_delete(void **state)
{
    struct burrow_error err = { .msg = "" };
    char img[PATH_MAX + 16];
    snprintf(img, sizeof(img), "%s/outside.img", scratch);
    FILE *f = fopen(img, "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, 8 << 20, SEEK_SET), 0);
    fputs("tail", f);
    fclose(f);
    struct burrow_vm_config cfg = { .name = "src", .disk = img, .net = "none" };
    struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
    if (!vm)
        fail_msg("create: %s", err.msg);
    assert_string_equal(burrow_vm_def(vm)->disks[0].path, img);
    assert_int_equal(burrow_vm_def(vm)->nnics, 0);
    burrow_vm_free(vm);

    unsigned cpus = 6;
    assert_int_equal(burrow_vm_modify("src", edit_cpus, &cpus, &err), 0);
    assert_int_equal(burrow_vm_modify("src", edit_refuse, NULL, &err), -1);
    assert_string_equal(err.msg, "refused on purpose");
    assert_int_equal(burrow_vm_modify("nope", edit_cpus, &cpus, &err), -1);
    assert_non_null(strstr(err.msg, "no VM named 'nope'"));
    vm = burrow_vm_load("src", &err);
    assert_int_equal(burrow_vm_def(vm)->cpus, 6);
    burrow_vm_free(vm);

    struct burrow_vm *cl = burrow_vm_clone("src", "copy", &err);
    if (!cl)
        fail_msg("clone: %s", err.msg);
    char path[PATH_MAX];
    assert_int_equal(burrow_vm_disk_path(cl, 0, path, sizeof(path)), 0);
    assert_non_null(strstr(path, "/copy/"));
    struct stat a, b;
    assert_int_equal(stat(img, &a), 0);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_size, b.st_size);
    char *orig = read_file(img, NULL), *copy = read_file(path, NULL);
    assert_memory_equal(orig, copy, (size_t)a.st_size);
    free(orig);
    free(copy);
    assert_int_equal(burrow_vm_def(cl)->cpus, 6);
    burrow_vm_free(cl);
    assert_null(burrow_vm_clone("src", "copy", &err));
    assert_non_null(strstr(err.msg, "already exists"));

    /* Delete: the VM's own disk goes, the attached one stays. */
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/data/burrow/vms/copy", scratch);
    assert_int_equal(burrow_vm_delete("copy", false, NULL, 0, &err), 0);
    assert_int_equal(access(dir, F_OK), -1);
    char kept[PATH_MAX];
    assert_int_equal(burrow_vm_delete("src", false, kept, sizeof(kept), &err), 0);
    assert_string_equal(kept, "");
    assert_int_equal(access(img, F_OK), 0);
    assert_int_equal(burrow_vm_delete("src", false, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no VM named 'src'"));
    assert_null(burrow_vm_load("src", &err));

    /* --keep-disks moves the VM's own disks aside and frees the name. */
    struct burrow_vm_config k = { .name = "keep", .disk_size = 1 << 20, .net = "none" };
    vm = burrow_vm_create(&k, &err);
    assert_non_null(vm);
    char kfmt[16];
    snprintf(kfmt, sizeof(kfmt), "%s", burrow_vm_def(vm)->disks[0].format);
    burrow_vm_free(vm);
    assert_int_equal(burrow_vm_delete("keep", true, kept, sizeof(kept), &err), 0);
    assert_non_null(strstr(kept, "/kept/keep"));
    char kd[PATH_MAX + 32];
    snprintf(kd, sizeof(kd), "%s/disk0.%s", kept, strcmp(kfmt, "qcow2") ? "img" : "qcow2");
    assert_int_equal(access(kd, F_OK), 0);
    vm = burrow_vm_create(&k, &err);
    assert_non_null(vm);
    burrow_vm_free(vm);
    char **names = burrow_vm_list(&err);
    assert_string_equal(names[0], "keep");
    assert_null(names[1]);
    burrow_strv_free(names);
}

/* ---- burrow-vm's command line ---- */

static const char *arg_after(char **argv, const char *opt, int nth)
{
    for (char **a = argv; *a; a++)
        if (!strcmp(*a, opt) && nth-- == 0)
            return a[1];
    return NULL;
}

static void test_argv(void **state)
{
    struct burrow_vmdef *d = calloc(1, sizeof(*d));
    full_def(d);
    struct vm_paths p = { .dir = "/vms/full", .control = "/run/full.sock",
                          .console = "/run/full.console" };
    struct burrow_error err;
    char **argv = supervise_build_argv("/bin/burrow-vm", d, &p, NULL, &err);
    assert_non_null(argv);
    assert_string_equal(argv[0], "/bin/burrow-vm");
    assert_string_equal(arg_after(argv, "--name", 0), "full");
    assert_string_equal(arg_after(argv, "--memory", 0), "3072");
    assert_string_equal(arg_after(argv, "--cpus", 0), "4");
    assert_string_equal(arg_after(argv, "--control", 0), "/run/full.sock");
    assert_string_equal(arg_after(argv, "--serial", 0), "unix:/run/full.console");
    assert_string_equal(arg_after(argv, "--disk", 0), "/vms/full/disk0.qcow2,if=virtio,format=qcow2");
    assert_string_equal(arg_after(argv, "--disk", 1), "/data/shared.img,if=sata,readonly=on");
    assert_null(arg_after(argv, "--disk", 2));
    assert_string_equal(arg_after(argv, "--cdrom", 0), "/isos/debian 12; netinst=x.iso");
    assert_string_equal(arg_after(argv, "--boot", 0), "dc");
    assert_string_equal(arg_after(argv, "--display", 0), "vnc:127.0.0.1:5901");
    assert_string_equal(arg_after(argv, "--vnc-password-file", 0), "/home/u/.vncpw");
    assert_string_equal(arg_after(argv, "--net", 0),
                        "user,model=virtio,mac=52:54:00:12:34:56,hostfwd=tcp::2222-:22,"
                        "hostfwd=udp:127.0.0.1:5353-10.0.2.15:53");
    assert_string_equal(arg_after(argv, "--net", 1), "user,model=e1000");
    assert_string_equal(arg_after(argv, "--usb", 0), "off");
    g_strfreev(argv);
    d->usb = true;
    argv = supervise_build_argv("/bin/burrow-vm", d, &p, NULL, &err);
    assert_string_equal(arg_after(argv, "--usb", 0), "on");
    g_strfreev(argv);
    /* A disk Burrow only reads goes with its format, read-only. */
    snprintf(d->disks[1].format, sizeof(d->disks[1].format), "vdi");
    argv = supervise_build_argv("/bin/burrow-vm", d, &p, NULL, &err);
    assert_string_equal(arg_after(argv, "--disk", 1), "/data/shared.img,if=sata,format=vdi,readonly=on");
    g_strfreev(argv);
    snprintf(d->disks[1].format, sizeof(d->disks[1].format), "raw");
    /* A USB disk goes to --usb-disk, with no interface. */
    snprintf(d->disks[1].interface, sizeof(d->disks[1].interface), "usb");
    argv = supervise_build_argv("/bin/burrow-vm", d, &p, NULL, &err);
    assert_string_equal(arg_after(argv, "--usb-disk", 0), "/data/shared.img,readonly=on");
    assert_null(arg_after(argv, "--usb-disk", 1));
    assert_null(arg_after(argv, "--disk", 1));
    assert_null(arg_after(argv, "--usb-filter", 0));
    g_strfreev(argv);
    /* USB filters go to --usb-filter, without their names. */
    struct burrow_error ferr;
    assert_int_equal(burrow_usb_filter_parse("vid=0525,pid=a4a5,name=stick", &d->usb_filters[0], &ferr), 0);
    assert_int_equal(burrow_usb_filter_parse("serial=XYZ", &d->usb_filters[1], &ferr), 0);
    d->nusb_filters = 2;
    argv = supervise_build_argv("/bin/burrow-vm", d, &p, NULL, &err);
    assert_string_equal(arg_after(argv, "--usb-filter", 0), "vid=0525,pid=a4a5");
    assert_string_equal(arg_after(argv, "--usb-filter", 1), "serial=XYZ");
    assert_null(arg_after(argv, "--usb-filter", 2));
    g_strfreev(argv);
    d->nusb_filters = 0;

    /* The start options override the display; nothing optional is sent
     * when the definition does not ask for it. */
    struct burrow_start_opts o = { .display = "none" };
    d->ndisks = 0;
    d->nnics = 0;
    d->boot[0] = '\0';
    d->cdrom[0] = '\0';
    argv = supervise_build_argv("vm", d, &p, &o, &err);
    assert_string_equal(arg_after(argv, "--display", 0), "none");
    assert_null(arg_after(argv, "--vnc-password-file", 0));
    assert_null(arg_after(argv, "--boot", 0));
    assert_null(arg_after(argv, "--cdrom", 0));
    assert_null(arg_after(argv, "--disk", 0));
    assert_null(arg_after(argv, "--net", 0));
    g_strfreev(argv);
    o = (struct burrow_start_opts){ .display = "vnc", .vnc_listen = "0.0.0.0:5999" };
    argv = supervise_build_argv("vm", d, &p, &o, &err);
    assert_string_equal(arg_after(argv, "--display", 0), "vnc:0.0.0.0:5999");
    g_strfreev(argv);
    o = (struct burrow_start_opts){ .display = "vnc", .vnc_listen = "nowhere" };
    assert_null(supervise_build_argv("vm", d, &p, &o, &err));
    assert_non_null(strstr(err.msg, "HOST:PORT"));
    free(d);
}

/* Names with spaces and letters beyond ASCII: their folder, definition,
 * list, clone and delete, and burrow-vm's command line with the folder in
 * a disk's path. */
static void test_spaced_names(void **state)
{
    struct burrow_error err = { .msg = "" };
    const char *name = "My Windows VM \xc3\xa9t\xc3\xa9";
    struct burrow_vm_config cfg = { .name = name, .os = "win11", .disk_size = 1 << 20 };
    struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
    if (!vm)
        fail_msg("create: %s", err.msg);
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/data/burrow/vms/%s", scratch, name);
    assert_string_equal(burrow_vm_dir(vm), dir);
    char **argv = supervise_build_argv("vm", burrow_vm_def(vm), &vm->paths, NULL, &err);
    assert_non_null(argv);
    assert_string_equal(arg_after(argv, "--name", 0), name);
    char *want = g_strdup_printf("%s/%s,if=%s", dir, burrow_vm_def(vm)->disks[0].path,
                                 burrow_vm_def(vm)->disks[0].interface);
    assert_memory_equal(arg_after(argv, "--disk", 0), want, strlen(want));
    g_free(want);
    g_strfreev(argv);
    burrow_vm_def(vm)->cpus = 2;
    assert_int_equal(burrow_vm_save(vm, &err), 0);
    burrow_vm_free(vm);

    vm = burrow_vm_load(name, &err);
    if (!vm)
        fail_msg("load: %s", err.msg);
    assert_string_equal(burrow_vm_def(vm)->name, name);
    assert_int_equal(burrow_vm_def(vm)->cpus, 2);
    burrow_vm_free(vm);
    const char *copy = "\xd0\x9a\xd0\xbe\xd0\xbf\xd0\xb8\xd1\x8f 2";
    struct burrow_vm *cl = burrow_vm_clone(name, copy, &err);
    if (!cl)
        fail_msg("clone: %s", err.msg);
    burrow_vm_free(cl);
    char **names = burrow_vm_list(&err);
    assert_non_null(names);
    assert_string_equal(names[0], name);
    assert_string_equal(names[1], copy);
    assert_null(names[2]);
    burrow_strv_free(names);
    assert_int_equal(burrow_vm_delete(name, false, NULL, 0, &err), 0);
    assert_int_equal(burrow_vm_delete(copy, false, NULL, 0, &err), 0);
    assert_int_equal(access(dir, F_OK), -1);
}

/* ---- the run lock: probes never make a start fail ---- */

struct prober {
    const char *path;
    volatile bool stop;
    unsigned long probes;
};

static void *probe_loop(void *arg)
{
    struct prober *pr = arg;
    while (!pr->stop) {
        lock_is_held(pr->path);
        pr->probes++;
    }
    return NULL;
}

/* `list` and `status` probe the run lock while a `start` may be taking it:
 * the probe must never be what makes the start fail.  Two threads probe
 * without pause while the lock is taken and dropped again and again; every
 * take succeeds, and a held lock reads as held. */
static void test_run_lock_probe(void **state)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/run/probe.run", scratch);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/run", scratch);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct burrow_error err;
    int fd = run_lock_take(path, &err);
    assert_true(fd >= 0);
    assert_true(lock_is_held(path));
    close(fd);
    assert_false(lock_is_held(path));

    struct prober pr = { .path = path };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, probe_loop, &pr), 0);
    unsigned failures = 0;
    for (int i = 0; i < 20000; i++) {
        fd = run_lock_take(path, &err);
        if (fd < 0) {
            failures++;
            continue;
        }
        close(fd);
    }
    pr.stop = true;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    if (failures)
        fprintf(stderr, "%u of 20000 takes failed beside %lu probes: %s\n", failures, pr.probes,
                err.msg);
    assert_int_equal(failures, 0);
}

static void test_state_names(void **state)
{
    assert_string_equal(burrow_vm_state_name(BURROW_VM_STOPPED), "stopped");
    assert_string_equal(burrow_vm_state_name(BURROW_VM_RUNNING), "running");
    assert_string_equal(burrow_vm_state_name(BURROW_VM_PAUSED), "paused");
    assert_string_equal(burrow_vm_state_name(BURROW_VM_CRASHED), "crashed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_usb_filters),
        cmocka_unit_test(test_validate_in_memory),
        cmocka_unit_test(test_hostfwd_clash),
        cmocka_unit_test(test_resource_fit),
        cmocka_unit_test_setup_teardown(test_create_load_save, setup_xdg, teardown_xdg),
        cmocka_unit_test_setup_teardown(test_modify_clone_delete, setup_xdg, teardown_xdg),
        cmocka_unit_test(test_argv),
        cmocka_unit_test_setup_teardown(test_spaced_names, setup_xdg, teardown_xdg),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup_teardown(test_run_lock_probe, setup_xdg, teardown_xdg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
