/* burrow-vm: one KVM virtual machine per process. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/audio/audio.h"
#include "devices/block/block.h"
#include "devices/util.h"
#include "vmm/firmware.h"
#include "vmm/machine.h"
#include "vmm/smbios.h"
#include "gui/keymap.h"

#define DEFAULT_FIRMWARE FIRMWARE_BIOS_DEFAULT
#define MAX_MEMORY_MIB   (1024ULL * 1024)   /* 1 TiB */
#define MAX_CPUS         255

/* AddressSanitizer's leak check at exit stops the threads from a forked
 * helper with ptrace, and its reports start a symbolizer: neither belongs
 * in the sandbox, so such builds leave it off unless asked. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_DEFAULT false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_DEFAULT false
#endif
#endif
#ifndef SANDBOX_DEFAULT
#define SANDBOX_DEFAULT true
#endif

static void usage(FILE *f)
{
    fprintf(f,
"Usage: burrow-vm [OPTIONS]\n"
"Runs one virtual machine on KVM until the guest powers off or is told to quit.\n"
"\n"
"Machine:\n"
"  --name NAME            name shown in messages and the control socket's status\n"
"  --uuid UUID            the machine's UUID (SMBIOS; default: a random one)\n"
"  --memory MIB           guest RAM in MiB (default 512; RAM above 3 GiB is placed\n"
"                         above 4 GiB)\n"
"  --cpus N               number of vCPUs, 1-%d (default 1)\n"
"\n"
"Boot:\n"
"  --firmware PATH        BIOS image (default %s)\n"
"  --kernel BZIMAGE       boot a Linux kernel directly (64-bit boot protocol),\n"
"                         without firmware\n"
"  --initrd FILE          initial ramdisk for --kernel\n"
"  --append STRING        kernel command line for --kernel\n"
"\n"
"Devices:\n"
"  --disk PATH[,if=virtio|sata][,format=raw|qcow2|vdi|vmdk|vhd|vhdx][,readonly=on]\n"
"                         a disk image on virtio-blk (default) or on the AHCI (SATA)\n"
"                         controller; the format is detected from\n"
"                         the header when not given, and a raw image that looks\n"
"                         like another format is refused unless format=raw;\n"
"                         vdi, vmdk, vhd and vhdx images are only read, and need\n"
"                         readonly=on; may be repeated\n"
"  --serial stdio|file:PATH|unix:PATH|none\n"
"                         where COM1 goes (default stdio; on a terminal, Ctrl-A x\n"
"                         quits and Ctrl-A h shows the other keys)\n"
"  --net user[,model=virtio|e1000][,mac=52:54:00:12:34:56]\n"
"      [,hostfwd=tcp|udp:[HOSTADDR]:HPORT-[GUESTADDR]:GPORT]...[,tftp=DIR][,bootfile=FILE]\n"
"      [,ipv6=on|off][,restrict=on|off]\n"
"                         a NIC on user-mode NAT (DHCP 10.0.2.15, gateway 10.0.2.2,\n"
"                         DNS 10.0.2.3); forwards bind 127.0.0.1 unless told;\n"
"                         may be repeated; --net none: no NIC (the default)\n"
"  --cdrom ISO|empty      a CD/DVD drive on the AHCI controller with ISO inserted\n"
"                         (or none); 'eject' and 'change-media' on the control socket\n"
"  --boot ORDER           boot order letters: c disk, d CD/DVD, n network\n"
"                         (default: the firmware's, CD/DVD before disk)\n"
"  --display none|headless|sdl|vnc:HOST:PORT\n"
"                         none: no graphics device, the firmware uses the serial\n"
"                         console (the default); headless: a VGA seen only through\n"
"                         'screenshot'; sdl: a window; vnc: a VNC server on HOST:PORT\n"
"                         (HOST empty: 127.0.0.1).  sdl and vnc may be combined\n"
"  --vnc-password-file F  VNC viewers must give the password on F's first line\n"
"  --vnc-keymap LANG      the guest's keyboard layout, so VNC viewers' characters\n"
"                         reach it right: en-us (default), en-gb, de, fr, es, it\n"
"  --vga-rom PATH         VGA BIOS (default " FIRMWARE_VGABIOS_DEFAULT ")\n"
"  --no-rng               leave out the virtio entropy device\n"
"  --usb on|off           an xHCI USB controller with a USB tablet and keyboard\n"
"                         (default on): the pointer follows the host's exactly\n"
"                         once the guest drives them, and input goes to the PS/2\n"
"                         keyboard and mouse until then; off: PS/2 only\n"
"  --usb-disk PATH[,format=raw|qcow2|vdi|vmdk|vhd|vhdx][,readonly=on]\n"
"                         a disk image as a USB mass-storage device (bulk-only,\n"
"                         SCSI) on the xHCI controller; needs --usb on; may be\n"
"                         given twice\n"
"  --usb-host VID:PID|BUS-PORT[.PORT...]\n"
"                         pass a USB device of the host through to the guest:\n"
"                         by vendor and product id (hexadecimal, e.g. 0525:a4a5)\n"
"                         or by where it is plugged in (e.g. 1-1.2, as the\n"
"                         control socket's usb-list shows).  Taken from the\n"
"                         host's drivers when the VM starts and whenever it is\n"
"                         plugged in, given back when the VM ends; needs --usb\n"
"                         on; may be repeated (%d at most)\n"
"  --usb-filter [vid=HEX][,pid=HEX][,serial=TEXT]\n"
"                         take every host USB device that matches, at start and\n"
"                         whenever one is plugged in; may be repeated (%d at most)\n"
"  --audio pa[,OPTION=VALUE...]|wav:PATH|none\n"
"                         an Intel HDA sound card (ICH6) with a line out and a\n"
"                         microphone.  pa: played through the host's PulseAudio\n"
"                         (or PipeWire's PulseAudio) server, with options\n"
"                         server=SERVER (else PULSE_SERVER or the session's),\n"
"                         sink=NAME, source=NAME, latency=MS (the output's target,\n"
"                         10-500, default 40; more for a loaded host); a server\n"
"                         that is gone is tried again every 2 s while the VM\n"
"                         runs.  wav:PATH: what it plays goes to the WAV file\n"
"                         PATH (in the first format played).  none: the guest\n"
"                         plays into nothing and records silence.  Without\n"
"                         --audio the VM has no sound card\n"
"  --audio-in on|off      connect the sound card's microphone (default off: the\n"
"                         guest sees no microphone); with pa it records from the\n"
"                         server's source while the guest records, and only then;\n"
"                         with wav or none it records silence\n"
"\n"
"Control and testing:\n"
"  --control PATH         JSON-lines control socket (mode 0600); commands: status,\n"
"                         pause, resume, reset, powerdown, quit, usb-list,\n"
"                         usb-attach, usb-detach, help (which lists them all)\n"
"  --firmware-log PATH    write what the firmware prints to I/O port 0x402 to PATH\n"
"  --debug-exit           a byte V written to I/O port 0xf4 ends the process with\n"
"                         status (V<<1)|1\n"
"  --sandbox on|off       once the VM is built, allow only the system calls a\n"
"                         running VM needs (seccomp; default %s); a call off\n"
"                         the list ends the process with a message naming it.\n"
"                         off is for debugging\n"
"  --verbose              debug messages\n"
"  --help                 this text\n"
"  --version              the version\n"
"\n"
"Environment:\n"
"  BURROW_KVM_DEVICE      open this path instead of /dev/kvm; meant for tests\n"
"                         (e.g. a missing path, to see the messages)\n"
"\n"
"Exit status: 0 after a guest power-off or 'quit'; 1 on errors.\n",
            MAX_CPUS, DEFAULT_FIRMWARE, MACHINE_MAX_USB_HOSTS, MACHINE_MAX_USB_HOSTS,
            SANDBOX_DEFAULT ? "on" : "off");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "burrow-vm: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* on|off options: 0, or 1 after saying what is wrong. */
static int parse_on_off(const char *opt, const char *arg, bool *out)
{
    if (!strcmp(arg, "on"))
        *out = true;
    else if (!strcmp(arg, "off"))
        *out = false;
    else
        return fail("%s must be on or off, not '%s'", opt, arg);
    return 0;
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* PATH[,if=virtio|sata][,format=FORMAT][,readonly=on|off] for --disk;
 * for --usb-disk (usb) the same without if=. */
static int parse_disk(char *spec, struct disk_opt *d, bool usb)
{
    const char *opt = usb ? "--usb-disk" : "--disk";
    char *opts = strchr(spec, ',');
    if (opts)
        *opts++ = '\0';
    if (!*spec)
        return fail("%s needs a path", opt);
    d->path = spec;
    while (opts && *opts) {
        char *next = strchr(opts, ',');
        if (next)
            *next++ = '\0';
        char *val = strchr(opts, '=');
        if (!val)
            return fail("%s: '%s' is not KEY=VALUE", opt, opts);
        *val++ = '\0';
        if (!strcmp(opts, "if") && !usb) {
            if (!strcmp(val, "sata"))
                d->sata = true;
            else if (!strcmp(val, "virtio"))
                d->sata = false;
            else
                return fail("--disk: unsupported interface '%s' (supported: virtio, sata)", val);
        } else if (!strcmp(opts, "format")) {
            if (strcmp(val, "raw") && strcmp(val, "qcow2") && !blk_format_read_only(val))
                return fail("%s: unsupported format '%s' (supported: raw, qcow2, and read-only "
                            "vdi, vmdk, vhd, vhdx)", opt, val);
            d->format = val;
        } else if (!strcmp(opts, "readonly")) {
            if (!strcmp(val, "on"))
                d->readonly = true;
            else if (!strcmp(val, "off"))
                d->readonly = false;
            else
                return fail("%s: readonly must be on or off, not '%s'", opt, val);
        } else {
            return fail("%s: unknown option '%s' (known: %s)", opt, opts,
                        usb ? "format, readonly" : "if, format, readonly");
        }
        opts = next;
    }
    return 0;
}

/* none | headless | sdl | vnc:HOST:PORT (the port after the last colon). */
static int parse_display(char *spec, struct machine_opts *o)
{
    if (!strcmp(spec, "none")) {
        o->vga = o->sdl = false;
        o->vnc_host = NULL;
    } else if (!strcmp(spec, "headless")) {
        o->vga = true;
    } else if (!strcmp(spec, "sdl")) {
        o->vga = o->sdl = true;
    } else if (!strncmp(spec, "vnc:", 4)) {
        char *colon = strrchr(spec + 4, ':');
        uint64_t port;
        if (!colon || !parse_uint(colon + 1, 65535, &port))
            return fail("--display: '%s' is not vnc:HOST:PORT (a port from 0 to 65535)", spec);
        *colon = '\0';
        char *host = spec + 4;
        if (*host == '[' && host[strlen(host) - 1] == ']') {   /* [IPv6] */
            host[strlen(host) - 1] = '\0';
            host++;
        }
        o->vga = true;
        o->vnc_host = *host ? host : "127.0.0.1";
        o->vnc_port = (int)port;
    } else {
        return fail("--display: unsupported display '%s' (supported: none, headless, sdl, vnc:HOST:PORT)",
                    spec);
    }
    return 0;
}

static int check_readable(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return fail("%s '%s': %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return fail("%s '%s' is not a file", what, path);
    if (access(path, R_OK) < 0)
        return fail("%s '%s': %s", what, path, strerror(errno));
    return 0;
}

enum {
    OPT_MEMORY = 256, OPT_CPUS, OPT_NAME, OPT_FIRMWARE, OPT_KERNEL, OPT_INITRD, OPT_APPEND,
    OPT_DISK, OPT_SERIAL, OPT_DISPLAY, OPT_CONTROL, OPT_FIRMWARE_LOG, OPT_DEBUG_EXIT,
    OPT_NO_RNG, OPT_VERBOSE, OPT_HELP, OPT_VERSION, OPT_NET, OPT_BOOT, OPT_CDROM,
    OPT_VNC_PASSWORD_FILE, OPT_VGA_ROM, OPT_UUID, OPT_VNC_KEYMAP, OPT_SANDBOX, OPT_USB,
    OPT_USB_DISK, OPT_AUDIO, OPT_AUDIO_IN, OPT_USB_HOST, OPT_USB_FILTER,
};

static const struct option long_opts[] = {
    { "memory", required_argument, NULL, OPT_MEMORY },
    { "cpus", required_argument, NULL, OPT_CPUS },
    { "name", required_argument, NULL, OPT_NAME },
    { "firmware", required_argument, NULL, OPT_FIRMWARE },
    { "kernel", required_argument, NULL, OPT_KERNEL },
    { "initrd", required_argument, NULL, OPT_INITRD },
    { "append", required_argument, NULL, OPT_APPEND },
    { "disk", required_argument, NULL, OPT_DISK },
    { "serial", required_argument, NULL, OPT_SERIAL },
    { "display", required_argument, NULL, OPT_DISPLAY },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "firmware-log", required_argument, NULL, OPT_FIRMWARE_LOG },
    { "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
    { "no-rng", no_argument, NULL, OPT_NO_RNG },
    { "net", required_argument, NULL, OPT_NET },
    { "boot", required_argument, NULL, OPT_BOOT },
    { "cdrom", required_argument, NULL, OPT_CDROM },
    { "vnc-password-file", required_argument, NULL, OPT_VNC_PASSWORD_FILE },
    { "vga-rom", required_argument, NULL, OPT_VGA_ROM },
    { "uuid", required_argument, NULL, OPT_UUID },
    { "vnc-keymap", required_argument, NULL, OPT_VNC_KEYMAP },
    { "sandbox", required_argument, NULL, OPT_SANDBOX },
    { "usb", required_argument, NULL, OPT_USB },
    { "usb-disk", required_argument, NULL, OPT_USB_DISK },
    { "usb-host", required_argument, NULL, OPT_USB_HOST },
    { "usb-filter", required_argument, NULL, OPT_USB_FILTER },
    { "audio", required_argument, NULL, OPT_AUDIO },
    { "audio-in", required_argument, NULL, OPT_AUDIO_IN },
    { "verbose", no_argument, NULL, OPT_VERBOSE },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    struct machine_opts o = {
        .memory_mib = 512,
        .cpus = 1,
        .serial = "stdio",
        .rng = true,
        .usb = true,
        .vga_rom = FIRMWARE_VGABIOS_DEFAULT,
        .sandbox = SANDBOX_DEFAULT,
    };
    bool firmware_given = false;
    uint64_t v;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_MEMORY:
            if (!parse_uint(optarg, MAX_MEMORY_MIB, &v) || v < 16)
                return fail("--memory: '%s' is not a size in MiB between 16 and %llu", optarg,
                            (unsigned long long)MAX_MEMORY_MIB);
            o.memory_mib = v;
            break;
        case OPT_CPUS:
            if (!parse_uint(optarg, MAX_CPUS, &v) || v < 1)
                return fail("--cpus: '%s' is not a number between 1 and %d", optarg, MAX_CPUS);
            o.cpus = (int)v;
            break;
        case OPT_NAME: o.name = optarg; break;
        case OPT_FIRMWARE: o.firmware = optarg; firmware_given = true; break;
        case OPT_KERNEL: o.kernel = optarg; break;
        case OPT_INITRD: o.initrd = optarg; break;
        case OPT_APPEND: o.append = optarg; break;
        case OPT_DISK:
            if (o.ndisks == MACHINE_MAX_DISKS)
                return fail("--disk: at most %d disks", MACHINE_MAX_DISKS);
            if (parse_disk(optarg, &o.disks[o.ndisks], false))
                return 1;
            o.ndisks++;
            break;
        case OPT_USB_DISK:
            if (o.nusb_disks == MACHINE_MAX_USB_DISKS)
                return fail("--usb-disk: at most %d USB disks", MACHINE_MAX_USB_DISKS);
            if (parse_disk(optarg, &o.usb_disks[o.nusb_disks], true))
                return 1;
            o.nusb_disks++;
            break;
        case OPT_USB_HOST: {
            char why[256];
            if (o.nusb_hosts == MACHINE_MAX_USB_HOSTS)
                return fail("--usb-host: at most %d devices", MACHINE_MAX_USB_HOSTS);
            if (usbhost_spec_parse(optarg, &o.usb_hosts[o.nusb_hosts], why, sizeof(why)) < 0)
                return fail("--usb-host: %s", why);
            o.nusb_hosts++;
            break;
        }
        case OPT_USB_FILTER: {
            char why[256];
            if (o.nusb_filters == MACHINE_MAX_USB_HOSTS)
                return fail("--usb-filter: at most %d filters", MACHINE_MAX_USB_HOSTS);
            if (usbhost_filter_parse(optarg, &o.usb_filters[o.nusb_filters], why, sizeof(why)) < 0)
                return fail("--usb-filter: %s", why);
            o.nusb_filters++;
            break;
        }
        case OPT_SERIAL: o.serial = optarg; break;
        case OPT_DISPLAY:
            if (parse_display(optarg, &o))
                return 1;
            break;
        case OPT_VNC_PASSWORD_FILE: o.vnc_password_file = optarg; break;
        case OPT_VGA_ROM: o.vga_rom = optarg; break;
        case OPT_VNC_KEYMAP: {
            char why[256];
            if (!keymap_layout_find(optarg, why, sizeof(why)))
                return fail("--vnc-keymap: %s", why);
            o.vnc_keymap = optarg;
            break;
        }
        case OPT_UUID: {
            uint8_t u[16];
            if (smbios_uuid_parse(optarg, u) < 0)
                return fail("--uuid: '%s' is not a UUID like 123e4567-e89b-12d3-a456-426614174000", optarg);
            o.uuid = optarg;
            break;
        }
        case OPT_CONTROL: o.control = optarg; break;
        case OPT_FIRMWARE_LOG: o.firmware_log = optarg; break;
        case OPT_DEBUG_EXIT: o.debug_exit = true; break;
        case OPT_NO_RNG: o.rng = false; break;
        case OPT_SANDBOX:
            if (parse_on_off("--sandbox", optarg, &o.sandbox))
                return 1;
            break;
        case OPT_USB:
            if (parse_on_off("--usb", optarg, &o.usb))
                return 1;
            break;
        case OPT_AUDIO: {
            char why[256];
            if (audio_parse_check(optarg, why, sizeof(why)) < 0)
                return fail("%s", why);
            o.audio = optarg;
            break;
        }
        case OPT_AUDIO_IN:
            if (parse_on_off("--audio-in", optarg, &o.audio_in))
                return 1;
            break;
        case OPT_NET: {
            struct net_user_opts no;
            char why[256];
            if (net_parse_opts(optarg, &no, why, sizeof(why)) < 0)
                return fail("%s", why);
            if (no.none)
                break;
            if (o.nnics == MACHINE_MAX_NICS)
                return fail("--net: at most %d NICs", MACHINE_MAX_NICS);
            o.nics[o.nnics++] = no;
            break;
        }
        case OPT_BOOT:
            if (!*optarg || strspn(optarg, "cdn") != strlen(optarg))
                return fail("--boot: '%s' is not a boot order of c (disk), d (CD/DVD) and n (network)",
                            optarg);
            o.boot = optarg;
            break;
        case OPT_CDROM:
            o.cdrom = strcmp(optarg, "empty") ? optarg : "";
            break;
        case OPT_VERBOSE: log_set_debug(true); break;
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("burrow-vm 0.1.0\n"); return 0;
        case '?':
        default:
            if (optopt)
                return fail("option '%s' needs a value (see --help)", argv[optind - 1]);
            return fail("unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail("unexpected argument '%s' (see --help)", argv[optind]);
    if ((o.initrd || o.append) && !o.kernel)
        return fail("--initrd and --append need --kernel");
    if (o.kernel && firmware_given)
        return fail("--kernel and --firmware exclude each other");
    if (!o.kernel && !o.firmware)
        o.firmware = DEFAULT_FIRMWARE;
    if (o.firmware && check_readable("firmware", o.firmware))
        return 1;
    if (o.kernel && check_readable("kernel", o.kernel))
        return 1;
    if (o.initrd && check_readable("initrd", o.initrd))
        return 1;
    for (int i = 0; i < o.ndisks; i++)
        if (check_readable("disk", o.disks[i].path))
            return 1;
    if (o.nusb_disks && !o.usb)
        return fail("--usb-disk needs --usb on");
    if ((o.nusb_hosts || o.nusb_filters) && !o.usb)
        return fail("%s needs --usb on", o.nusb_hosts ? "--usb-host" : "--usb-filter");
    for (int i = 0; i < o.nusb_disks; i++)
        if (check_readable("USB disk", o.usb_disks[i].path))
            return 1;
    if (o.cdrom && *o.cdrom && check_readable("cdrom image", o.cdrom))
        return 1;
    if (o.audio_in && !o.audio)
        return fail("--audio-in needs --audio");
    if (o.vnc_password_file && !o.vnc_host)
        return fail("--vnc-password-file needs --display vnc:HOST:PORT");
    if (o.vnc_keymap && !o.vnc_host)
        return fail("--vnc-keymap needs --display vnc:HOST:PORT");
    if (o.vga && check_readable("VGA BIOS", o.vga_rom))
        return 1;

    /* A serial console on a pipe whose reader left must not kill the VM. */
    signal(SIGPIPE, SIG_IGN);

    struct machine *m = calloc(1, sizeof(*m));
    if (!m)
        return fail("out of memory");
    char err[512] = "";
    if (machine_init(m, &o, err, sizeof(err)) < 0) {
        fail("%s", err[0] ? err : "cannot start the VM");
        machine_destroy(m);
        free(m);
        return 1;
    }
    int status = machine_run(m);
    machine_destroy(m);
    free(m);
    return status;
}
