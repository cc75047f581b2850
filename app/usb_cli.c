/* `burrow usb list|attach|detach`: the host's USB devices, and passing them
 * through to a running VM (its control socket's usb-list, usb-attach and
 * usb-detach).  Errors are one line on stderr; exit status 1 for failures,
 * 2 for usage errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/burrow.h"
#include "app/cli.h"
#include "devices/usb/host_list.h"

/* usb-attach and usb-detach answer once the device is on its port or back
 * with the host's drivers, which may take the device a while. */
#define SLOW_COMMAND_MS 60000

static const char help_list[] =
"Usage: burrow usb list [VM] [--json]\n"
"Lists the host's USB devices: where each is plugged in (BUS-PORT[.PORT...],\n"
"what 'attach' and 'detach' take, as does VID:PID), bus and device number,\n"
"vendor and product id, speed, maker, product and serial.  With VM (a running\n"
"one), also which it holds; without, which another program holds (a VM).\n"
"\n"
"  --json     as JSON\n"
"  --help     this text\n";

static const char help_attach[] =
"Usage: burrow usb attach VM VID:PID|BUS-PORT[.PORT...]\n"
"Passes a USB device of the host through to a running VM: the host's drivers\n"
"let go of it and the guest sees it plugged in.  VID:PID is the vendor and\n"
"product id in hexadecimal (e.g. 0525:a4a5); BUS-PORT is where it is plugged\n"
"in (e.g. 1-1.2), as 'burrow usb list' shows.  To have a VM take a device\n"
"whenever it starts or the device is plugged in, give it a filter: 'burrow\n"
"modify VM --usb-filter-add vid=...,pid=...'.\n";

static const char help_detach[] =
"Usage: burrow usb detach VM VID:PID|BUS-PORT[.PORT...]\n"
"Unplugs a passed-through device from a running VM and gives it back to the\n"
"host's drivers.  A filter of the VM does not take it again until it is\n"
"plugged in anew.\n";

static int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "burrow usb %s: ", cmd);
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
    fprintf(stderr, "burrow usb %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'burrow usb %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

static bool is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* A running VM's control command, waiting long enough for the slow ones. */
static int vm_command(const char *cmd, const char *name, const char *command, json_t *args, json_t **reply)
{
    struct burrow_error err;
    if (!burrow_name_valid(name, &err))
        return fail(cmd, "%s", err.msg);
    /* A VM whose definition went while it ran is reached by its runtime
     * files. */
    bool defined = true;
    struct burrow_vm *vm = burrow_vm_load(name, &err);
    if (!vm) {
        defined = false;
        vm = burrow_vm_open_runtime(name, NULL);
    }
    if (!vm)
        return fail(cmd, "%s", err.msg);
    enum burrow_vm_state s = burrow_vm_state(vm, NULL);
    if (s != BURROW_VM_RUNNING && s != BURROW_VM_PAUSED && s != BURROW_VM_GUEST_ERROR) {
        burrow_vm_free(vm);
        if (!defined && s == BURROW_VM_STOPPED)
            return fail(cmd, "%s", err.msg);
        return fail(cmd, "'%s' is %s, not running", name, burrow_vm_state_name(s));
    }
    struct burrow_ctl *ctl = burrow_vm_connect(vm, &err);
    burrow_vm_free(vm);
    if (!ctl)
        return fail(cmd, "'%s': %s", name, err.msg);
    int rc = burrow_ctl_command(ctl, command, args, reply, SLOW_COMMAND_MS, &err);
    burrow_ctl_close(ctl);
    if (rc < 0) {
        if (!strcmp(err.cls, "unknown-command"))
            return fail(cmd, "'%s' runs a burrow-vm without USB pass-through", name);
        return fail(cmd, "%s", err.msg);
    }
    return 0;
}

static json_t *host_devices_json(const struct usbhost_info *list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%04x:%04x", list[i].vid, list[i].pid);
        json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:s,s:s,s:s,s:s,s:s,s:b}", "device", list[i].name,
                                           "bus", (int)list[i].bus, "devnum", (int)list[i].devnum, "id", id,
                                           "manufacturer", list[i].manufacturer, "product", list[i].product,
                                           "serial", list[i].serial, "speed", usbhost_speed_name(list[i].mbps),
                                           "busy", list[i].usbfs));
    }
    return a;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_table(json_t *devices, bool with_vm)
{
    printf("%-10s %-7s %-9s %-6s %-40s %-16s %s\n", "DEVICE", "BUS/DEV", "ID", "SPEED", "PRODUCT", "SERIAL",
           with_vm ? "THIS VM" : "IN USE");
    size_t i;
    json_t *d;
    json_array_foreach(devices, i, d) {
        char what[128], bd[16], state[48];
        snprintf(what, sizeof(what), "%s%s%s", str(d, "manufacturer"), *str(d, "manufacturer") ? " " : "",
                 str(d, "product"));
        snprintf(bd, sizeof(bd), "%03d/%03d", (int)json_integer_value(json_object_get(d, "bus")),
                 (int)json_integer_value(json_object_get(d, "devnum")));
        if (json_is_true(json_object_get(d, "attached")))
            snprintf(state, sizeof(state), "attached (port %d)", (int)json_integer_value(json_object_get(d, "port")));
        else if (*str(d, "state"))
            snprintf(state, sizeof(state), "%s", str(d, "state"));
        else if (json_is_true(json_object_get(d, "busy")))
            snprintf(state, sizeof(state), with_vm ? "held elsewhere" : "yes (a VM or program)");
        else
            snprintf(state, sizeof(state), "-");
        printf("%-10s %-7s %-9s %-6s %-40s %-16s %s\n", str(d, "device"), bd, str(d, "id"), str(d, "speed"),
               what[0] ? what : "-", *str(d, "serial") ? str(d, "serial") : "-", state);
    }
}

static int cmd_list(int argc, char **argv)
{
    const char *vm = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(help_list, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = true;
        } else if (argv[i][0] == '-') {
            return usage_error("list", "unknown option '%s'", argv[i]);
        } else if (vm) {
            return usage_error("list", "unexpected argument '%s'", argv[i]);
        } else {
            vm = argv[i];
        }
    }
    json_t *devices;
    json_t *reply = NULL;
    if (vm) {
        int rc = vm_command("list", vm, "usb-list", NULL, &reply);
        if (rc)
            return rc;
        devices = json_incref(json_object_get(reply, "devices"));
        if (!json_is_array(devices)) {
            json_decref(devices);
            json_decref(reply);
            return fail("list", "'%s' answered without a device list", vm);
        }
    } else {
        struct usbhost_info *list;
        size_t n;
        char err[256];
        if (usbhost_list(NULL, &list, &n, err, sizeof(err)) < 0)
            return fail("list", "%s", err);
        devices = host_devices_json(list, n);
        free(list);
    }
    if (as_json) {
        json_t *o = json_pack("{s:O}", "devices", devices);
        if (reply && json_object_get(reply, "available"))
            json_object_set(o, "available", json_object_get(reply, "available"));
        if (reply && json_object_get(reply, "reason"))
            json_object_set(o, "reason", json_object_get(reply, "reason"));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    } else if (json_array_size(devices) == 0) {
        printf("No USB devices on this host.\n");
    } else {
        print_table(devices, vm != NULL);
        if (reply && json_is_false(json_object_get(reply, "available")))
            printf("'%s' cannot pass devices through: %s\n", vm, str(reply, "reason"));
    }
    json_decref(devices);
    json_decref(reply);
    return 0;
}

/* attach and detach: VM and SPEC. */
static int attach_detach(int argc, char **argv, bool attach)
{
    const char *cmd = attach ? "attach" : "detach";
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) {
            fputs(attach ? help_attach : help_detach, stdout);
            return 0;
        }
    if (argc != 3)
        return usage_error(cmd, argc < 3 ? "a VM and a device are needed" : "unexpected argument '%s'",
                           argc > 3 ? argv[3] : "");
    const char *vm = argv[1], *spec = argv[2];
    struct usbhost_spec s;
    char why[256];
    if (usbhost_spec_parse(spec, &s, why, sizeof(why)) < 0)
        return usage_error(cmd, "%s", why);
    json_t *args = json_pack("{s:s}", "device", spec), *reply = NULL;
    int rc = vm_command(cmd, vm, attach ? "usb-attach" : "usb-detach", args, &reply);
    json_decref(args);
    if (rc)
        return rc;
    const char *prod = str(reply, "product");
    if (attach)
        printf("Attached %s (%s%s%s) to '%s' on USB port %d\n", str(reply, "device"), str(reply, "id"),
               *prod ? " " : "", prod, vm, (int)json_integer_value(json_object_get(reply, "port")));
    else
        printf("Detached %s (%s%s%s) from '%s'; the host has it back\n", str(reply, "device"),
               str(reply, "id"), *prod ? " " : "", prod, vm);
    json_decref(reply);
    return 0;
}

static int cmd_attach(int argc, char **argv)
{
    return attach_detach(argc, argv, true);
}

static int cmd_detach(int argc, char **argv)
{
    return attach_detach(argc, argv, false);
}

const struct cli_command cli_usb_commands[] = {
    { "list", "the host's USB devices, and which a VM holds", cmd_list },
    { "attach", "pass a host USB device through to a running VM", cmd_attach },
    { "detach", "give a passed-through USB device back to the host", cmd_detach },
    { NULL, NULL, NULL },
};
