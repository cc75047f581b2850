/* The host side of USB pass-through that needs no device (host_list.c):
 * specs, filters, the device list from a fake sysfs tree, the kernel's
 * uevents, and the advice for a node that cannot be opened, on a fake
 * node. */
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

#include "devices/usb/host_list.h"

static char tmpdir[64];

static void write_file(const char *dir, const char *name, const char *attr, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A device directory as the kernel makes it. */
static void fake_device(const char *dir, const char *name, const char *bus, const char *dev, const char *vid,
                        const char *pid, const char *speed, const char *cls, const char *product,
                        const char *serial)
{
    write_file(dir, name, "busnum", bus);
    write_file(dir, name, "devnum", dev);
    write_file(dir, name, "idVendor", vid);
    write_file(dir, name, "idProduct", pid);
    write_file(dir, name, "speed", speed);
    write_file(dir, name, "bDeviceClass", cls);
    if (product)
        write_file(dir, name, "product", product);
    if (serial)
        write_file(dir, name, "serial", serial);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/burrow-usbhost-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- specs ---- */

static void test_specs(void **state)
{
    struct usbhost_spec s;
    char err[256], buf[64];
    assert_int_equal(usbhost_spec_parse("0525:a4a5", &s, err, sizeof(err)), 0);
    assert_true(s.by_id);
    assert_int_equal(s.vid, 0x0525);
    assert_int_equal(s.pid, 0xa4a5);
    assert_int_equal(usbhost_spec_parse("525:A4A5", &s, err, sizeof(err)), 0);
    usbhost_spec_format(&s, buf, sizeof(buf));
    assert_string_equal(buf, "0525:a4a5");
    assert_int_equal(usbhost_spec_parse("1-1", &s, err, sizeof(err)), 0);
    assert_false(s.by_id);
    assert_string_equal(s.path, "1-1");
    assert_int_equal(usbhost_spec_parse("12-3.4.255", &s, err, sizeof(err)), 0);
    usbhost_spec_format(&s, buf, sizeof(buf));
    assert_string_equal(buf, "12-3.4.255");
    assert_int_equal(usbhost_spec_parse("1-1.2.3.4.5.6.7", &s, err, sizeof(err)), 0);   /* 7 ports */

    static const char *const bad[] = {
        "", "1", "1-", "-1", "1-0", "0-1", "1-01", "1-1.", "1-1..2", "1-256", "1-1.2.3.4.5.6.7.8",
        "usb1", "1-1:1.0", "12345:1", "1:", ":1", "g:1", "1-1 ", "0525:a4a5:1", "1-1-2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (usbhost_spec_parse(bad[i], &s, err, sizeof(err)) == 0)
            fail_msg("'%s' was taken as a spec", bad[i]);
        assert_non_null(strstr(err, "is not VID:PID"));
    }
    assert_int_equal(usbhost_spec_parse(NULL, &s, err, sizeof(err)), -1);

    struct usbhost_info d = { .name = "2-1.3", .vid = 0x0525, .pid = 0xa4a5 };
    usbhost_spec_parse("0525:a4a5", &s, err, sizeof(err));
    assert_true(usbhost_spec_match(&s, &d));
    usbhost_spec_parse("0525:a4a6", &s, err, sizeof(err));
    assert_false(usbhost_spec_match(&s, &d));
    usbhost_spec_parse("2-1.3", &s, err, sizeof(err));
    assert_true(usbhost_spec_match(&s, &d));
    usbhost_spec_parse("2-1", &s, err, sizeof(err));
    assert_false(usbhost_spec_match(&s, &d));     /* the hub, not the device behind it */
}

/* ---- filters ---- */

static void test_filters(void **state)
{
    struct usbhost_filter f;
    char err[256], buf[128];
    struct usbhost_info d = { .name = "1-1", .vid = 0x0525, .pid = 0xa4a5, .serial = "ABC" };
    assert_int_equal(usbhost_filter_parse("vid=0525,pid=a4a5", &f, err, sizeof(err)), 0);
    assert_true(usbhost_filter_match(&f, &d));
    usbhost_filter_format(&f, buf, sizeof(buf));
    assert_string_equal(buf, "vid=0525,pid=a4a5");
    assert_int_equal(usbhost_filter_parse("vid=525", &f, err, sizeof(err)), 0);
    assert_true(usbhost_filter_match(&f, &d));       /* any product of the vendor */
    assert_int_equal(usbhost_filter_parse("pid=A4A5,serial=ABC", &f, err, sizeof(err)), 0);
    assert_true(usbhost_filter_match(&f, &d));
    usbhost_filter_format(&f, buf, sizeof(buf));
    assert_string_equal(buf, "pid=a4a5,serial=ABC");
    assert_int_equal(usbhost_filter_parse("serial=ABCD", &f, err, sizeof(err)), 0);
    assert_false(usbhost_filter_match(&f, &d));      /* serials match whole */
    assert_int_equal(usbhost_filter_parse("serial=abc", &f, err, sizeof(err)), 0);
    assert_false(usbhost_filter_match(&f, &d));      /* and with their case */
    assert_int_equal(usbhost_filter_parse("vid=0525,pid=a4a6", &f, err, sizeof(err)), 0);
    assert_false(usbhost_filter_match(&f, &d));
    struct usbhost_info noserial = d;
    noserial.serial[0] = '\0';
    assert_int_equal(usbhost_filter_parse("serial=ABC", &f, err, sizeof(err)), 0);
    assert_false(usbhost_filter_match(&f, &noserial));

    static const char *const bad[][2] = {
        { "", "not KEY=VALUE" }, { "vid", "not KEY=VALUE" }, { "vid=", "hexadecimal" },
        { "vid=12345", "hexadecimal" }, { "pid=xyz", "hexadecimal" }, { "class=8", "unknown key 'class'" },
        { "serial=", "a serial has 1 to" }, { "serial=a\tb", "control character" },
        { "vid=1,,pid=2", "not KEY=VALUE" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (usbhost_filter_parse(bad[i][0], &f, err, sizeof(err)) == 0)
            fail_msg("'%s' was taken as a filter", bad[i][0]);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': '%s' does not say '%s'", bad[i][0], err, bad[i][1]);
    }
}

/* ---- sysfs ---- */

static void test_list(void **state)
{
    char sys[300], err[256];
    snprintf(sys, sizeof(sys), "%s/sys", tmpdir);
    struct usbhost_info *list;
    size_t n = 99;
    /* No folder at all: a machine without USB, not an error. */
    assert_int_equal(usbhost_list(sys, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    free(list);
    mkdir(sys, 0755);
    assert_int_equal(usbhost_list(sys, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    free(list);

    fake_device(sys, "usb1", "1", "1", "1d6b", "0002", "480", "09", "root hub", NULL);
    fake_device(sys, "2-1", "2", "7", "0525", "a4a5", "5000", "00", "Disk\x01X", "S1\n");
    fake_device(sys, "1-1.10", "1", "4", "046d", "c52b", "12", "00", "Receiver", NULL);
    fake_device(sys, "1-1.2", "1", "3", "1234", "5678", "1.5", "00", NULL, NULL);
    fake_device(sys, "1-1", "1", "2", "05e3", "0608", "480", "09", "Hub", NULL);
    write_file(sys, "1-1.2:1.0", "bInterfaceClass", "03");       /* an interface: not a device */
    write_file(sys, "2-2", "busnum", "2");                        /* half there: skipped */
    char link[400];
    snprintf(link, sizeof(link), "%s/1-1.10:1.0", sys);
    assert_int_equal(mkdir(link, 0755), 0);
    snprintf(link, sizeof(link), "%s/1-1.10:1.0/driver", sys);
    assert_int_equal(symlink("../../../bus/usb/drivers/usbfs", link), 0);

    assert_int_equal(usbhost_list(sys, &list, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].name, "1-1");
    assert_string_equal(list[1].name, "1-1.10");
    assert_string_equal(list[2].name, "1-1.2");
    assert_string_equal(list[3].name, "2-1");
    assert_int_equal(list[0].dev_class, 9);
    assert_true(list[1].usbfs);                  /* held through usbfs */
    assert_false(list[2].usbfs);
    assert_int_equal(list[2].mbps, 1);           /* "1.5" */
    assert_string_equal(usbhost_speed_name(list[2].mbps), "low");
    enum usb_speed sp;
    assert_true(usbhost_speed(&list[2], &sp));
    assert_int_equal(sp, USB_SPEED_LOW);
    assert_true(usbhost_speed(&list[1], &sp));
    assert_int_equal(sp, USB_SPEED_FULL);
    assert_true(usbhost_speed(&list[0], &sp));
    assert_int_equal(sp, USB_SPEED_HIGH);
    assert_true(usbhost_speed(&list[3], &sp));
    assert_int_equal(sp, USB_SPEED_SUPER);
    assert_int_equal(list[3].bus, 2);
    assert_int_equal(list[3].devnum, 7);
    assert_int_equal(list[3].vid, 0x0525);
    assert_int_equal(list[3].pid, 0xa4a5);
    assert_string_equal(list[3].product, "Disk?X");      /* control characters shown as '?' */
    assert_string_equal(list[3].serial, "S1");
    assert_string_equal(list[2].product, "");
    char node[300];
    usbhost_node("/dev/bus/usb", &list[3], node, sizeof(node));
    assert_string_equal(node, "/dev/bus/usb/002/007");
    free(list);

    struct usbhost_info d;
    assert_int_equal(usbhost_read(sys, "1-1.2", &d), 0);
    assert_int_equal(d.vid, 0x1234);
    assert_int_equal(usbhost_read(sys, "2-2", &d), -1);
    assert_int_equal(usbhost_read(sys, "9-9", &d), -1);
    assert_int_equal(usbhost_read(sys, "usb1", &d), -1);
    assert_int_equal(usbhost_read(sys, "../etc", &d), -1);
    assert_false(usbhost_speed(&(struct usbhost_info){ .mbps = 0 }, &sp));   /* unknown */
}

/* ---- uevents ---- */

static size_t msg(char *buf, const char *const *fields)
{
    size_t n = 0;
    for (; *fields; fields++) {
        size_t l = strlen(*fields) + 1;
        memcpy(buf + n, *fields, l);
        n += l;
    }
    return n;
}

static void test_uevents(void **state)
{
    char buf[1024];
    struct usbhost_uevent ev;
    const char *add[] = { "add@/devices/platform/dummy_hcd.0/usb1/1-1", "ACTION=add",
                          "DEVPATH=/devices/platform/dummy_hcd.0/usb1/1-1", "SUBSYSTEM=usb",
                          "MAJOR=189", "MINOR=1", "DEVNAME=bus/usb/001/002", "DEVTYPE=usb_device",
                          "PRODUCT=525/a4a5/601", "BUSNUM=001", "DEVNUM=002", "SEQNUM=1234", NULL };
    size_t n = msg(buf, add);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 1);
    assert_true(ev.add);
    assert_string_equal(ev.name, "1-1");
    assert_int_equal(ev.bus, 1);
    assert_int_equal(ev.devnum, 2);

    const char *rm[] = { "remove@/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2.4", "ACTION=remove",
                         "DEVPATH=/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2.4", "SUBSYSTEM=usb",
                         "DEVTYPE=usb_device", "BUSNUM=003", "DEVNUM=009", NULL };
    n = msg(buf, rm);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 1);
    assert_false(ev.add);
    assert_string_equal(ev.name, "3-2.4");
    assert_int_equal(ev.devnum, 9);

    /* Not for us: interfaces, root hubs, other actions and subsystems,
     * udev's own messages, cut-off messages. */
    const char *intf[] = { "add@/devices/x/usb1/1-1/1-1:1.0", "ACTION=add", "DEVPATH=/devices/x/usb1/1-1/1-1:1.0",
                           "SUBSYSTEM=usb", "DEVTYPE=usb_interface", NULL };
    n = msg(buf, intf);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 0);
    const char *hub[] = { "add@/devices/x/usb1", "ACTION=add", "DEVPATH=/devices/x/usb1", "SUBSYSTEM=usb",
                          "DEVTYPE=usb_device", NULL };
    n = msg(buf, hub);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 0);
    const char *bind[] = { "bind@/devices/x/usb1/1-1", "ACTION=bind", "DEVPATH=/devices/x/usb1/1-1",
                           "SUBSYSTEM=usb", "DEVTYPE=usb_device", NULL };
    n = msg(buf, bind);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 0);
    const char *blk[] = { "add@/devices/x/block/sda", "ACTION=add", "DEVPATH=/devices/x/block/sda",
                          "SUBSYSTEM=block", "DEVTYPE=disk", NULL };
    n = msg(buf, blk);
    assert_int_equal(usbhost_uevent_parse(buf, n, &ev), 0);
    static const char udev[] = "libudev\0\xfe\xed\xca\xfe\0\0\0\0";
    assert_int_equal(usbhost_uevent_parse(udev, sizeof(udev), &ev), 0);
    n = msg(buf, add);
    assert_int_equal(usbhost_uevent_parse(buf, 30, &ev), 0);          /* cut in the header */
    assert_int_equal(usbhost_uevent_parse(buf, n - 5, &ev), 1);       /* the last field cut: ignored */
    assert_int_equal(usbhost_uevent_parse(buf, 0, &ev), 0);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(usbhost_uevent_parse(buf, sizeof(buf), &ev), 0); /* no NUL at all */
}

/* ---- a node that cannot be opened ---- */

static void test_advice(void **state)
{
    char node[300], buf[600];
    snprintf(node, sizeof(node), "%s/005", tmpdir);
    FILE *f = fopen(node, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(node, 0640), 0);
    /* An owner and group this system does not name: shown as numbers. */
    if (getuid() == 0)
        assert_int_equal(chown(node, 4242, 4343), 0);

    struct usbhost_info d = { .name = "1-1", .vid = 0x0525, .pid = 0xa4a5, .product = "Gadget" };
    struct usbhost_access a;
    usbhost_access_facts(node, &a);
    assert_true(a.have_stat);
    assert_true(a.user[0] != '\0');
    if (getuid() == 0) {
        assert_string_equal(a.owner, "4242");
        assert_string_equal(a.group, "4343");
        assert_int_equal(a.gid, 4343);
        assert_false(a.in_group);
    }
    usbhost_open_advice(node, EACCES, &d, &a, buf, sizeof(buf));
    assert_non_null(strstr(buf, node));
    assert_non_null(strstr(buf, "(0525:a4a5 Gadget)"));
    assert_non_null(strstr(buf, "permission denied"));
    assert_non_null(strstr(buf, "-rw-r-----"));
    assert_non_null(strstr(buf, "/etc/udev/rules.d/"));
    assert_non_null(strstr(buf, "ATTR{idVendor}==\"0525\", ATTR{idProduct}==\"a4a5\""));
    assert_non_null(strstr(buf, "GROUP=\"plugdev\""));
    assert_non_null(strstr(buf, "udevadm"));
    if (getuid() == 0) {
        char who[64];
        snprintf(who, sizeof(who), "belongs to 4242:4343");
        assert_non_null(strstr(buf, who));
    }

    /* A group that may read and write it, which the user is not in: join it. */
    struct usbhost_access g = { .user = "alice", .owner = "root", .group = "plugdev",
                                .mode = 020660, .gid = 46, .have_stat = true };
    usbhost_open_advice("/dev/bus/usb/001/005", EACCES, &d, &g, buf, sizeof(buf));
    assert_non_null(strstr(buf, "belongs to root:plugdev with mode crw-rw---- and this runs as alice"));
    assert_non_null(strstr(buf, "sudo usermod -aG plugdev alice"));
    assert_null(strstr(buf, "udev rule"));
    /* ... unless that group is root's. */
    g.gid = 0;
    snprintf(g.group, sizeof(g.group), "root");
    usbhost_open_advice("/dev/bus/usb/001/005", EPERM, &d, &g, buf, sizeof(buf));
    assert_null(strstr(buf, "-aG root"));
    assert_non_null(strstr(buf, "udev rule"));
    /* In the group already, but the group may only read: the rule. */
    g = (struct usbhost_access){ .user = "alice", .owner = "root", .group = "plugdev", .mode = 020640,
                                 .gid = 46, .in_group = true, .have_stat = true };
    usbhost_open_advice("/dev/bus/usb/001/005", EACCES, NULL, &g, buf, sizeof(buf));
    assert_non_null(strstr(buf, "SUBSYSTEM==\"usb\", MODE=\"0660\""));   /* no ids without a device */
    assert_true(strlen(buf) < 500);                                      /* fits a CLI error */

    usbhost_open_advice("/dev/bus/usb/001/005", ENOENT, &d, &g, buf, sizeof(buf));
    assert_non_null(strstr(buf, "the device is gone"));
    usbhost_open_advice("/dev/bus/usb/001/005", EBUSY, &d, &g, buf, sizeof(buf));
    assert_non_null(strstr(buf, strerror(EBUSY)));
    /* A long product name still leaves room for the advice. */
    snprintf(d.product, sizeof(d.product), "%s", "A very long product name that goes on and on and on and on");
    usbhost_access_facts(node, &a);
    usbhost_open_advice(node, EACCES, &d, &a, buf, sizeof(buf));
    assert_non_null(strstr(buf, "udevadm"));
    assert_true(strlen(buf) < 511);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_filters),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test(test_uevents),
        cmocka_unit_test_setup_teardown(test_advice, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
