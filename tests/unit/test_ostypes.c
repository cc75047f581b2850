/* OS types: the table is complete and sane, lookups work, and a new VM
 * takes its defaults (memory, CPUs, disk size, disk interface, NIC model,
 * display) from its type. */
#include <limits.h>
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

#include "app/burrow.h"
#include "app/ostypes.h"

static void test_table(void **state)
{
    const char *required[] = { "linux64", "debian", "ubuntu", "fedora", "arch", "win10", "win11",
                               "other", NULL };
    for (const char **id = required; *id; id++)
        assert_non_null(burrow_ostype_find(*id));
    size_t n = 0;
    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++, n++) {
        assert_non_null(t->label);
        assert_true(t->memory_mib >= BURROW_MEMORY_MIN && t->memory_mib <= BURROW_MEMORY_MAX);
        assert_true(t->cpus >= 1 && t->cpus <= BURROW_CPUS_MAX);
        assert_true(t->disk_gib >= 1);
        assert_true(!strcmp(t->disk_interface, "virtio") || !strcmp(t->disk_interface, "sata"));
        assert_true(!strcmp(t->nic_model, "virtio") || !strcmp(t->nic_model, "e1000"));
        assert_true(!strcmp(t->display, "sdl") || !strcmp(t->display, "vnc") ||
                    !strcmp(t->display, "none"));
        /* Desktops get a sound card on the host's desktop, as VirtualBox
         * gives them; generic and unknown types none. */
        assert_string_equal(t->audio, strcmp(t->id, "linux64") && strcmp(t->id, "other") ? "pa" : "off");
        /* Linux drives virtio out of the box; Windows installers do not. */
        if (!strcmp(t->family, "linux")) {
            assert_string_equal(t->disk_interface, "virtio");
            assert_string_equal(t->nic_model, "virtio");
        } else if (!strcmp(t->family, "windows")) {
            assert_string_equal(t->disk_interface, "sata");
            assert_string_equal(t->nic_model, "e1000");
            assert_true(t->memory_mib >= 2048);
            assert_true(t->disk_gib >= 32);
        } else {
            assert_string_equal(t->family, "other");
        }
        for (const struct burrow_ostype *u = t + 1; u->id; u++)
            assert_string_not_equal(t->id, u->id);
    }
    assert_int_equal(n, ostypes_count());
    /* Windows 11's installer refuses less than 4 GiB and 64 GB. */
    assert_true(burrow_ostype_find("win11")->memory_mib >= 4096);
    assert_true(burrow_ostype_find("win11")->disk_gib >= 64);
}

static void test_lookup(void **state)
{
    assert_ptr_equal(burrow_ostype_find("Debian"), burrow_ostype_find("debian"));
    assert_ptr_equal(burrow_ostype_find("WIN10"), burrow_ostype_find("win10"));
    assert_null(burrow_ostype_find("beos"));
    assert_null(burrow_ostype_find(""));
    assert_null(burrow_ostype_find(NULL));
    assert_string_equal(burrow_ostype_default()->id, "linux64");
}

static char scratch[PATH_MAX];

static void test_defaults_of_new_vms(void **state)
{
    snprintf(scratch, sizeof(scratch), "%s/burrow-ostypes-XXXXXX", P_tmpdir);
    assert_non_null(mkdtemp(scratch));
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/data", scratch);
    setenv("XDG_DATA_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/state", scratch);
    setenv("XDG_STATE_HOME", p, 1);
    snprintf(p, sizeof(p), "%s/run", scratch);
    setenv("XDG_RUNTIME_DIR", p, 1);

    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++) {
        struct burrow_error err;
        struct burrow_vm_config cfg = { .name = t->id, .os = t->id };
        struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
        if (!vm)
            fail_msg("%s: %s", t->id, err.msg);
        const struct burrow_vmdef *d = burrow_vm_def(vm);
        assert_string_equal(d->os, t->id);
        assert_int_equal(d->memory_mib, t->memory_mib);
        assert_int_equal(d->cpus, t->cpus);
        assert_string_equal(d->display, t->display);
        assert_int_equal(d->ndisks, 1);
        assert_string_equal(d->disks[0].interface, t->disk_interface);
        assert_int_equal(d->nnics, 1);
        assert_string_equal(d->nics[0].model, t->nic_model);
        char disk[PATH_MAX];
        assert_int_equal(burrow_vm_disk_path(vm, 0, disk, sizeof(disk)), 0);
        struct stat st;
        assert_int_equal(stat(disk, &st), 0);
        /* The guest sees the type's size: a raw file's length, or the
         * size in a qcow2 header (big-endian at byte 24); sparse either way. */
        unsigned long long size = (unsigned long long)st.st_size;
        if (!strcmp(d->disks[0].format, "qcow2")) {
            unsigned char h[32];
            FILE *f = fopen(disk, "rb");
            assert_non_null(f);
            assert_int_equal(fread(h, 1, sizeof(h), f), sizeof(h));
            fclose(f);
            assert_memory_equal(h, "QFI\xfb", 4);
            size = 0;
            for (int i = 24; i < 32; i++)
                size = size << 8 | h[i];
        } else {
            assert_string_equal(d->disks[0].format, "raw");
        }
        assert_int_equal(size, (unsigned long long)t->disk_gib << 30);
        assert_true((unsigned long long)st.st_blocks * 512 < (16ULL << 20));
        burrow_vm_free(vm);
    }
    /* Explicit values beat the type's. */
    struct burrow_error err;
    struct burrow_vm_config cfg = { .name = "custom", .os = "win11", .memory_mib = 8192, .cpus = 8,
                                    .no_disk = true, .nic_model = "virtio", .display = "none" };
    struct burrow_vm *vm = burrow_vm_create(&cfg, &err);
    assert_non_null(vm);
    assert_int_equal(burrow_vm_def(vm)->memory_mib, 8192);
    assert_int_equal(burrow_vm_def(vm)->cpus, 8);
    assert_int_equal(burrow_vm_def(vm)->ndisks, 0);
    assert_string_equal(burrow_vm_def(vm)->nics[0].model, "virtio");
    assert_string_equal(burrow_vm_def(vm)->display, "none");
    burrow_vm_free(vm);
    cfg = (struct burrow_vm_config){ .name = "bad", .os = "beos" };
    assert_null(burrow_vm_create(&cfg, &err));
    assert_non_null(strstr(err.msg, "unknown OS type 'beos'"));

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_defaults_of_new_vms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
