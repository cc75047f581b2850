/* Host checks and the KVM device's messages: group file parsing, the
 * advice for each permission case, /proc/cpuinfo flags, the probe of paths
 * that are not the KVM device, and the report's JSON shape.  Nothing here
 * needs KVM or looks under /dev beyond stat() of /dev/null. */
#include <errno.h>
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

#include "app/hostcheck.h"
#include "vmm/kvmdev.h"

static char tmpdir[] = "/tmp/burrow-hostcheck-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
    return p;
}

/* ---- group file ---------------------------------------------------------------- */

static const char group_text[] =
    "root:x:0:\n"
    "garbage line without colons\n"
    "kvmx:x:77:alice\n"
    "bad:x:notanumber:alice\n"
    "kvm:x:104:bob,alice,carol\r\n"
    "users:x:100:\n";

static void test_group_member(void **state)
{
    gid_t gid = 0;
    bool member = false;
    assert_true(kvmdev_group_parse(group_text, "kvm", "alice", 1000, &gid, &member));
    assert_int_equal(gid, 104);
    assert_true(member);
    assert_true(kvmdev_group_parse(group_text, "kvm", "carol", 1000, &gid, &member));
    assert_true(member);   /* last in the list, before "\r\n" */
}

static void test_group_not_member(void **state)
{
    gid_t gid = 0;
    bool member = true;
    assert_true(kvmdev_group_parse(group_text, "kvm", "ali", 1000, &gid, &member));
    assert_false(member);  /* a prefix of a member is not one */
    assert_true(kvmdev_group_parse(group_text, "kvm", "", 1000, &gid, &member));
    assert_false(member);
    assert_true(kvmdev_group_parse(group_text, "kvm", NULL, 1000, &gid, &member));
    assert_false(member);
}

static void test_group_primary(void **state)
{
    gid_t gid = 0;
    bool member = false;
    /* Nobody listed, but it is dave's primary group. */
    assert_true(kvmdev_group_parse(group_text, "users", "dave", 100, &gid, &member));
    assert_int_equal(gid, 100);
    assert_true(member);
}

static void test_group_malformed(void **state)
{
    gid_t gid = 0;
    bool member = false;
    assert_false(kvmdev_group_parse(group_text, "bad", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse(group_text, "nosuch", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("", "kvm", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("kvm", "kvm", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("kvm:x:", "kvm", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("kvm:x::alice", "kvm", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("kvm:x:-1:alice", "kvm", "alice", 1000, &gid, &member));
    assert_false(kvmdev_group_parse("kvm:x:99999999999999999999:alice", "kvm", "alice", 1000, &gid, &member));
    /* No trailing newline, empty member list. */
    assert_true(kvmdev_group_parse("kvm:x:5:", "kvm", "alice", 1000, &gid, &member));
    assert_int_equal(gid, 5);
    assert_false(member);
}

/* ---- permission advice -------------------------------------------------------------- */

/* Each permission case gets its own advice: (facts, what it must say). */
static void test_access_hints(void **state)
{
    static const struct {
        struct kvmdev_access a;
        const char *says[3];
    } cases[] = {
        /* Not in the kvm group. */
        { { .user = "alice", .group = "kvm", .mode = 0660 },
          { "sudo usermod -aG kvm alice", "log out and in again", NULL } },
        /* In it since the last login. */
        { { .user = "alice", .group = "kvm", .mode = 0660, .group_listed = true },
          { "you are in the 'kvm' group", "log out and in again", "newgrp kvm" } },
        /* Only root may open it. */
        { { .user = "alice", .group = "root", .mode = 0600 },
          { "only its owner may open it", "sudo chmod 0660 /dev/kvm", "usermod -aG kvm alice" } },
        /* In the group, in this session, refused all the same. */
        { { .user = "", .group = "kvm", .mode = 0660, .group_listed = true, .group_in_session = true },
          { "getfacl /dev/kvm", NULL, NULL } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char todo[512];
        kvmdev_access_hint(&cases[i].a, "/dev/kvm", todo, sizeof(todo));
        for (size_t k = 0; k < 3 && cases[i].says[k]; k++)
            if (!strstr(todo, cases[i].says[k]))
                fail_msg("case %zu: '%s' lacks '%s'", i, todo, cases[i].says[k]);
    }
}

/* ---- the probe and its messages ------------------------------------------------------- */

static void probe_path(struct kvmdev_probe *p, const char *path)
{
    unsetenv(KVMDEV_ENV);
    kvmdev_probe_init(p);
    snprintf(p->path, sizeof(p->path), "%s", path);
    assert_int_equal(kvmdev_open(p), -1);
}

static void test_probe_env(void **state)
{
    struct kvmdev_probe p;
    unsetenv(KVMDEV_ENV);
    kvmdev_probe_init(&p);
    assert_string_equal(p.path, "/dev/kvm");
    assert_false(p.from_env);
    setenv(KVMDEV_ENV, "", 1);
    kvmdev_probe_init(&p);
    assert_string_equal(p.path, "/dev/kvm");
    setenv(KVMDEV_ENV, "/nonexistent/kvm", 1);
    kvmdev_probe_init(&p);
    assert_string_equal(p.path, "/nonexistent/kvm");
    assert_true(p.from_env);
    assert_int_equal(kvmdev_open(&p), -1);
    assert_int_equal(p.fault, KVMDEV_MISSING);
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "/nonexistent/kvm (from BURROW_KVM_DEVICE) does not exist"));
    assert_non_null(strstr(todo, "unset BURROW_KVM_DEVICE"));
    unsetenv(KVMDEV_ENV);
}

static void test_probe_missing(void **state)
{
    struct kvmdev_probe p;
    probe_path(&p, tmp_path("nokvm"));
    assert_int_equal(p.fault, KVMDEV_MISSING);
    /* Never created by looking. */
    assert_int_equal(access(tmp_path("nokvm"), F_OK), -1);
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "does not exist"));
    assert_non_null(strstr(todo, "kvm_intel or kvm_amd"));
}

static void test_probe_regular_file(void **state)
{
    const char *path = tmp_path("kvm");
    write_file(path, "");
    struct kvmdev_probe p;
    probe_path(&p, path);
    assert_int_equal(p.fault, KVMDEV_NOT_DEVICE);
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "is an empty regular file, not the KVM device"));
    assert_non_null(strstr(todo, "created it by mistake"));
    assert_non_null(strstr(todo, "remove it"));
    assert_non_null(strstr(todo, "kvm_intel or kvm_amd"));
}

static void test_probe_other_device(void **state)
{
    struct kvmdev_probe p;
    probe_path(&p, "/dev/null");
    assert_int_equal(p.fault, KVMDEV_NOT_DEVICE);
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "/dev/null is the character device 1:3, not the KVM device"));
    /* Only /dev/kvm itself may be advised away, never another device. */
    assert_null(strstr(todo, "sudo rm"));
    p.from_env = true;
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_null(strstr(todo, "sudo rm"));
    assert_non_null(strstr(todo, "BURROW_KVM_DEVICE"));
}

static void test_probe_directory_from_env(void **state)
{
    setenv(KVMDEV_ENV, tmpdir, 1);
    struct kvmdev_probe p;
    kvmdev_probe_init(&p);
    assert_int_equal(kvmdev_open(&p), -1);
    unsetenv(KVMDEV_ENV);
    assert_int_equal(p.fault, KVMDEV_NOT_DEVICE);
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "is a directory"));
    assert_null(strstr(todo, "sudo rm"));
}

static void test_explain_ioctl_faults(void **state)
{
    struct kvmdev_probe p = { .path = "/dev/kvm", .fault = KVMDEV_BAD_VERSION, .version = 11 };
    char what[384], todo[512];
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "answers KVM API version 11; Burrow needs 12"));
    p.version = -1;
    p.err = ENOTTY;
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "does not answer KVM's API version request"));
    p.fault = KVMDEV_NO_VM;
    p.err = EBUSY;
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(what, "KVM cannot create a virtual machine"));
    assert_non_null(strstr(todo, "another hypervisor"));
    p.err = EINVAL;
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(todo, "firmware setup"));
    p.fault = KVMDEV_OPEN_FAILED;
    p.err = ENXIO;
    kvmdev_explain(&p, NULL, what, sizeof(what), todo, sizeof(todo));
    assert_non_null(strstr(todo, "kvm module is not loaded"));
}

/* ---- /proc/cpuinfo ---------------------------------------------------------------- */

static void test_cpu_flags(void **state)
{
    assert_int_equal(hostcheck_cpu_flags("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"), HOSTCHECK_CPU_VMX);
    assert_int_equal(hostcheck_cpu_flags("flags\t\t: fpu svm\nflags\t\t: fpu svm"), HOSTCHECK_CPU_SVM);
    assert_int_equal(hostcheck_cpu_flags("flags : svm"), HOSTCHECK_CPU_SVM);   /* no newline */
    /* Lookalikes are not the flags. */
    assert_int_equal(hostcheck_cpu_flags("flags\t\t: vmx_ept svmx xvmx\n"), 0);
    assert_int_equal(hostcheck_cpu_flags("vmx flags: none\nmodel name\t: vmx svm\n"), 0);
    assert_int_equal(hostcheck_cpu_flags("flagsx\t: vmx\n"), 0);
    assert_int_equal(hostcheck_cpu_flags("flags vmx\n"), 0);   /* no colon, no list */
    /* "vmx flags" is a line of its own on newer kernels: no "flags" line. */
    assert_int_equal(hostcheck_cpu_flags("vmx flags\t: vnmi ept\n"), 0);
    assert_int_equal(hostcheck_cpu_flags("Features\t: fp asimd\n"), 0);
    assert_int_equal(hostcheck_cpu_flags(""), 0);
    assert_int_equal(hostcheck_cpu_flags(NULL), 0);
}

/* ---- the report ---------------------------------------------------------------------- */

static const struct hostcheck_item *item(const struct hostcheck_report *r, const char *id)
{
    for (unsigned i = 0; i < r->n; i++)
        if (!strcmp(r->items[i].id, id))
            return &r->items[i];
    fail_msg("no check %s", id);
    return NULL;
}

static void test_report_missing_kvm(void **state)
{
    write_file(tmp_path("cpuinfo"), "processor : 0\nflags : fpu svm\n");
    struct hostcheck_sources src = { .kvm_device = tmp_path("nokvm"), .cpuinfo = tmp_path("cpuinfo"),
                                     .pvm_module = tmp_path("no-pvm") };
    struct hostcheck_report r;
    hostcheck_run(&r, &src);
    assert_int_equal(r.verdict, HOSTCHECK_FAIL);
    assert_false(hostcheck_kvm_ok(&r));
    assert_int_equal(item(&r, "kvm-device")->status, HOSTCHECK_FAIL);
    assert_int_equal(item(&r, "kvm-chardev")->status, HOSTCHECK_SKIP);
    assert_int_equal(item(&r, "kvm-create-vm")->status, HOSTCHECK_SKIP);
    assert_int_equal(item(&r, "kvm-group")->status, HOSTCHECK_SKIP);
    assert_int_equal(item(&r, "cpu-virt")->status, HOSTCHECK_PASS);
    assert_non_null(strstr(item(&r, "cpu-virt")->detail, "SVM"));
    char v[160];
    hostcheck_verdict_text(&r, v, sizeof(v));
    assert_non_null(strstr(v, "FAIL: "));
    assert_non_null(strstr(v, "cannot run virtual machines"));

    char *why = hostcheck_problems_text(&r, HOSTCHECK_FAIL, true);
    assert_non_null(strstr(why, "does not exist"));
    assert_non_null(strstr(why, "kvm_intel or kvm_amd"));
    free(why);

    /* The JSON: every check with the same keys, ids unique, the verdict. */
    json_t *j = hostcheck_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "FAIL");
    assert_true(json_is_false(json_object_get(j, "kvm_ok")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "summary")), "FAIL"));
    json_t *checks = json_object_get(j, "checks");
    assert_int_equal(json_array_size(checks), r.n);
    assert_true(r.n >= 11);
    for (size_t i = 0; i < json_array_size(checks); i++) {
        json_t *c = json_array_get(checks, i);
        assert_int_equal(json_object_size(c), 6);
        for (const char *const *k = (const char *const[]){ "id", "title", "status", "detail", "hint", NULL };
             *k; k++)
            assert_true(json_is_string(json_object_get(c, *k)));
        assert_true(json_is_boolean(json_object_get(c, "kvm")));
        const char *st = json_string_value(json_object_get(c, "status"));
        assert_true(!strcmp(st, "PASS") || !strcmp(st, "WARN") || !strcmp(st, "FAIL") || !strcmp(st, "SKIP"));
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(json_string_value(json_object_get(c, "id")),
                                    json_string_value(json_object_get(json_array_get(checks, k), "id")));
    }
    json_decref(j);
}

static void test_report_cpu_cases(void **state)
{
    write_file(tmp_path("cpuinfo"), "processor : 0\nflags : fpu sse\n");
    struct hostcheck_sources src = { .kvm_device = "/dev/null", .cpuinfo = tmp_path("cpuinfo"),
                                     .pvm_module = tmp_path("kvm_pvm") };
    struct hostcheck_report r;
    /* No flags, no KVM, no PVM: the CPU fails too. */
    hostcheck_run(&r, &src);
    assert_int_equal(item(&r, "kvm-device")->status, HOSTCHECK_PASS);
    assert_int_equal(item(&r, "kvm-chardev")->status, HOSTCHECK_FAIL);
    assert_int_equal(item(&r, "cpu-virt")->status, HOSTCHECK_FAIL);
    assert_non_null(strstr(item(&r, "cpu-virt")->hint, "firmware setup"));
    /* PVM: a warning that Linux guests cannot run. */
    assert_int_equal(mkdir(tmp_path("kvm_pvm"), 0700), 0);
    hostcheck_run(&r, &src);
    assert_int_equal(item(&r, "cpu-virt")->status, HOSTCHECK_WARN);
    assert_non_null(strstr(item(&r, "cpu-virt")->detail, "Linux guests cannot run"));
    rmdir(tmp_path("kvm_pvm"));
    /* An unreadable cpuinfo is a warning, not a crash. */
    src.cpuinfo = tmp_path("no-cpuinfo");
    hostcheck_run(&r, &src);
    assert_int_equal(item(&r, "cpu-virt")->status, HOSTCHECK_WARN);
    /* Only the KVM failures, when asked for. */
    char *kvm = hostcheck_problems_text(&r, HOSTCHECK_FAIL, true);
    char *warn = hostcheck_problems_text(&r, HOSTCHECK_WARN, false);
    assert_non_null(strstr(kvm, "not the KVM device"));
    assert_null(strstr(kvm, "cpuinfo"));
    assert_non_null(strstr(warn, "not the KVM device"));
    assert_non_null(strstr(warn, "cannot read"));   /* the cpuinfo warning */
    free(kvm);
    free(warn);
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = { "kvm", "cpuinfo", NULL };
    for (const char **n = names; *n; n++)
        unlink(tmp_path(*n));
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_member),
        cmocka_unit_test(test_group_not_member),
        cmocka_unit_test(test_group_primary),
        cmocka_unit_test(test_group_malformed),
        cmocka_unit_test(test_access_hints),
        cmocka_unit_test(test_probe_env),
        cmocka_unit_test(test_probe_missing),
        cmocka_unit_test(test_probe_regular_file),
        cmocka_unit_test(test_probe_other_device),
        cmocka_unit_test(test_probe_directory_from_env),
        cmocka_unit_test(test_explain_ioctl_faults),
        cmocka_unit_test(test_cpu_flags),
        cmocka_unit_test(test_report_missing_kvm),
        cmocka_unit_test(test_report_cpu_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
