/* libburrow: the Burrow VM library (VM definitions, OS types, supervision of
 * burrow-vm processes, control-socket client).  Used by the `burrow` command
 * line and the GTK manager; contains no GTK.
 *
 * Conventions:
 *   - Functions that can fail take a `struct burrow_error *err` (may be NULL)
 *     and return -1 (or NULL) with one line of text in err->msg.
 *   - Where things live (XDG base directories):
 *       $XDG_DATA_HOME/burrow/vms/NAME/vm.ini   the definition (and, by
 *                                               default, the VM's disks)
 *       $XDG_RUNTIME_DIR/burrow/NAME.{sock,console,pid,lock,run}
 *       $XDG_STATE_HOME/burrow/NAME.log         burrow-vm's output
 *   - Definition writes are atomic (temporary file, fsync, rename) and done
 *     under a per-VM lock (flock on NAME.lock), so concurrent writers never
 *     leave a torn or invalid file.
 *   - Thread safety: handles are not shared between threads without the
 *     caller's own locking; distinct handles may be used from distinct
 *     threads. */
#ifndef BURROW_LIB_H
#define BURROW_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct burrow_error {
    char msg[512];
    /* When the error was an answer of the VM's control socket: its class
     * ("unknown-command", "failed", ...); "conflict" when burrow_vm_save()
     * found the definition saved by someone else; "" otherwise. */
    char cls[32];
};

void burrow_error_set(struct burrow_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- names ---------------------------------------------------------------- */

#define BURROW_NAME_MAX 64

/* 1..64 bytes of UTF-8: letters and digits of any script, spaces, '.', '_',
 * '+', '-'; not starting with '.' or '-', nor starting or ending with a
 * space. */
bool burrow_name_valid(const char *name, struct burrow_error *err);

/* ---- OS types --------------------------------------------------------------- */

struct burrow_ostype {
    const char *id;              /* "debian", "win11", ... (definition value) */
    const char *label;           /* "Debian (64-bit)" */
    const char *family;          /* "linux", "windows", "other" */
    unsigned memory_mib;         /* defaults for a new VM */
    unsigned cpus;
    unsigned disk_gib;
    const char *disk_interface;  /* "virtio" | "sata" */
    const char *nic_model;       /* "virtio" | "e1000" */
    const char *display;         /* "sdl" | "vnc" | "none" */
    const char *audio;           /* "pa" (desktops: a sound card played on this
                                  * desktop, as VirtualBox gives them) | "off" */
};

/* NULL-id-terminated table, in presentation order. */
const struct burrow_ostype *burrow_ostypes(void);
/* Case-insensitive lookup by id; NULL if unknown. */
const struct burrow_ostype *burrow_ostype_find(const char *id);
/* The type used when none is given ("linux64"). */
const struct burrow_ostype *burrow_ostype_default(void);

/* ---- definitions ---------------------------------------------------------------- */

#define BURROW_MAX_DISKS   8
#define BURROW_MAX_NICS    4
#define BURROW_MAX_USB_DISKS 2  /* of the disks, interface "usb" */
#define BURROW_MAX_HOSTFWD 8
#define BURROW_MAX_USB_FILTERS 8
#define BURROW_PATH_MAX    4096
#define BURROW_MEMORY_MIN  16
#define BURROW_MEMORY_MAX  (1024 * 1024)   /* MiB: 1 TiB */
#define BURROW_CPUS_MAX    254             /* xAPIC ids; the IOAPIC takes the next */

struct burrow_disk {
    /* Relative paths are relative to the VM's directory. */
    char path[BURROW_PATH_MAX];
    char interface[16];          /* "virtio" | "sata" | "usb" */
    char format[16];             /* "raw" | "qcow2" | "vdi" | "vmdk" | "vhd" | "vhdx"
                                  * (the last four read-only) */
    bool readonly;
};

struct burrow_nic {
    char mode[16];               /* "user" */
    char model[16];              /* "virtio" | "e1000" */
    char mac[18];                /* "52:54:00:xx:xx:xx" */
    unsigned nhostfwd;
    char hostfwd[BURROW_MAX_HOSTFWD][128];   /* "tcp:HOSTADDR:PORT-GUESTADDR:PORT" */
};

/* A host USB device the VM takes whenever it is there (when the VM starts,
 * when it is plugged in): every field given must match. */
struct burrow_usb_filter {
    char name[64];               /* a label for people ("" none) */
    char vid[5], pid[5];         /* 4 lowercase hexadecimal digits, "" any */
    char serial[64];             /* "" any; no ',' nor control characters */
};

/* Plain data: what vm.ini says.  Edit it, then burrow_vm_save(). */
struct burrow_vmdef {
    char name[BURROW_NAME_MAX + 1];
    char uuid[37];
    char os[32];                 /* an OS type id */
    unsigned memory_mib;
    unsigned cpus;
    char boot[4];                /* "" (firmware default) or e.g. "c", "dc" */
    char display[8];             /* "sdl" | "vnc" | "none" */
    char vnc_listen[64];         /* "HOST:PORT" when display is vnc */
    char vnc_password_file[BURROW_PATH_MAX];
    bool usb;                    /* USB tablet and keyboard (xHCI) */
    char audio[8];               /* sound card: "pa" (the desktop's PulseAudio),
                                  * "none" (a card that plays into nothing), "off" */
    bool audio_in;               /* its microphone records from the host's (needs a card) */
    char cdrom[BURROW_PATH_MAX]; /* "" = no medium */
    unsigned ndisks;
    struct burrow_disk disks[BURROW_MAX_DISKS];
    unsigned nnics;
    struct burrow_nic nics[BURROW_MAX_NICS];
    unsigned nusb_filters;
    struct burrow_usb_filter usb_filters[BURROW_MAX_USB_FILTERS];   /* need usb */
};

/* "vid=HEX,pid=HEX,serial=TEXT,name=TEXT", each part optional, one of vid,
 * pid and serial at least (the CLI's and the manager's way to write one);
 * ids are normalised to 4 lowercase digits. */
int burrow_usb_filter_parse(const char *spec, struct burrow_usb_filter *f, struct burrow_error *err);
/* burrow-vm's --usb-filter value for it ("vid=0525,pid=a4a5"). */
void burrow_usb_filter_option(const struct burrow_usb_filter *f, char *buf, size_t len);

/* Checks a definition held in memory (the messages name the field). */
int burrow_vmdef_validate(const struct burrow_vmdef *def, struct burrow_error *err);

/* ---- VMs ------------------------------------------------------------------------ */

struct burrow_vm;   /* a loaded definition plus where its files are */

enum burrow_vm_state {
    BURROW_VM_STOPPED,
    BURROW_VM_STARTING,      /* process up, control socket not answering yet */
    BURROW_VM_RUNNING,
    BURROW_VM_PAUSED,
    BURROW_VM_GUEST_ERROR,   /* the guest hit something KVM cannot run */
    BURROW_VM_STOPPING,      /* the process is shutting down */
    BURROW_VM_CRASHED,       /* the process died leaving its runtime files */
};
const char *burrow_vm_state_name(enum burrow_vm_state s);

struct burrow_vm_config {
    const char *name;
    const char *os;              /* NULL: burrow_ostype_default() */
    long long memory_mib;        /* 0: the OS type's default */
    long long cpus;              /* 0: the OS type's default */
    const char *disk;            /* attach this existing image, or */
    unsigned long long disk_size;/* create a new disk of so many bytes;
                                  * both unset: a disk of the OS type's size */
    bool no_disk;                /* no disk at all */
    const char *disk_interface;  /* NULL: the OS type's */
    const char *cdrom;           /* ISO image or NULL */
    const char *net;             /* "user" (default) or "none" */
    const char *nic_model;       /* NULL: the OS type's */
    const char *display;         /* NULL: the OS type's */
    const char *usb;             /* "on" or "off"; NULL: on */
    /* A `disk` in a format Burrow only reads (vdi, vmdk, vhd, vhdx) is
     * refused with the command that converts it, unless convert_disk:
     * then it is converted into a qcow2 image in the VM's folder, telling
     * progress(progress_opaque, done, total) now and then (may be NULL). */
    bool convert_disk;
    void (*progress)(void *opaque, uint64_t done, uint64_t total);
    void *progress_opaque;
    const char *audio;           /* "pa", "none" or "off"; NULL: the OS type's */
    const char *audio_in;        /* "on" or "off"; NULL: off */
};

/* Creates the VM's directory, its disk (if any) and vm.ini.  Refuses an
 * existing name.  Returns the new VM's handle. */
struct burrow_vm *burrow_vm_create(const struct burrow_vm_config *cfg, struct burrow_error *err);
/* Loads NAME's definition (validated; errors say FILE:LINE). */
struct burrow_vm *burrow_vm_load(const char *name, struct burrow_error *err);
void burrow_vm_free(struct burrow_vm *vm);

const char *burrow_vm_name(const struct burrow_vm *vm);
/* The definition, to read or edit in place before burrow_vm_save(). */
struct burrow_vmdef *burrow_vm_def(struct burrow_vm *vm);
/* The VM's directory (absolute). */
const char *burrow_vm_dir(const struct burrow_vm *vm);
/* Absolute path of disk i (relative paths resolved against the VM dir). */
int burrow_vm_disk_path(const struct burrow_vm *vm, unsigned i, char *buf, size_t len);

/* Validates and writes the definition atomically under the VM's lock.
 * Fails if the file changed on disk since this handle loaded it (another
 * program saved first), with err->cls "conflict": reload and apply the
 * change again; the other program's change is never overwritten. */
int burrow_vm_save(struct burrow_vm *vm, struct burrow_error *err);
/* True when burrow_vm_save() would find the definition changed (or gone)
 * since this handle loaded it: a check before work that a refused save
 * would have to undo. */
bool burrow_vm_stale(const struct burrow_vm *vm);

/* Read-modify-write under the VM's lock: loads the current definition,
 * calls edit() on it (return -1 with err set to abort), validates, saves.
 * The way to change a VM that other programs may change too. */
typedef int (*burrow_vm_edit_fn)(struct burrow_vmdef *def, void *opaque, struct burrow_error *err);
int burrow_vm_modify(const char *name, burrow_vm_edit_fn edit, void *opaque, struct burrow_error *err);

/* Removes a stopped VM: its definition, runtime files, logs and the disks
 * inside its directory.  keep_disks: the files left in the VM's directory
 * (its disks) move to $XDG_DATA_HOME/burrow/kept/NAME[.N], whose path goes
 * to kept_dir ("" when nothing was left).  Disks outside the VM's directory
 * are never deleted. */
int burrow_vm_delete(const char *name, bool keep_disks, char *kept_dir, size_t kept_len,
                     struct burrow_error *err);

/* Copies a stopped VM under a new name: disks are copied (sparse) into the
 * new VM's directory, read-only disks are shared; new UUID and MACs. */
struct burrow_vm *burrow_vm_clone(const char *name, const char *new_name, struct burrow_error *err);

/* Names of every VM directory, sorted, NULL-terminated; free with
 * burrow_strv_free.  (Load each to see whether its definition is valid.) */
char **burrow_vm_list(struct burrow_error *err);
/* Names of VMs that run (or crashed) without a VM directory: their folder
 * was deleted while they ran.  Sorted, NULL-terminated; burrow_strv_free.
 * burrow_vm_open_runtime reaches them. */
char **burrow_vm_list_orphans(struct burrow_error *err);
void burrow_strv_free(char **v);

/* A handle on NAME's runtime files alone, whatever became of its
 * definition (deleted, or broken): enough for burrow_vm_state,
 * burrow_vm_stop and burrow_vm_command.  Its definition is empty but for
 * the name. */
struct burrow_vm *burrow_vm_open_runtime(const char *name, struct burrow_error *err);

/* ---- running VMs ----------------------------------------------------------------- */

struct burrow_start_opts {
    const char *display;         /* NULL: the definition's; "none", "sdl", "vnc" */
    const char *vnc_listen;      /* with display "vnc"; NULL: the definition's */
    int timeout_ms;              /* wait for the control socket; 0: 30 s */
};

/* Spawns burrow-vm detached (new session, stdin /dev/null, stdout and
 * stderr appended to the VM's log), waits until its control socket answers.
 * If burrow-vm exits first, err carries its last message; if it does not
 * answer within the timeout, it is killed (a failed start leaves nothing
 * running).  A VM already running (or starting) is refused at once.  burrow-vm is
 * $BURROW_VM, else the one next to this program, else found in PATH. */
int burrow_vm_start(struct burrow_vm *vm, const struct burrow_start_opts *opts,
                    struct burrow_error *err);

struct burrow_vm_status {
    enum burrow_vm_state state;
    int pid;                     /* 0 when not running */
    char detail[256];            /* e.g. why it is considered crashed */
    /* How the running process shows its screen, as its control socket's
     * status says: "sdl" (a window, maybe with a VNC server too), "vnc",
     * "headless" (seen over the control socket only), "none"; "" when not
     * known (not running, not answering).  vnc_listen: the VNC server's
     * HOST:PORT, "" without one. */
    char display[16];
    char vnc_listen[64];
    /* Whether the guest records from the host's microphone now, as status
     * says (false when not known). */
    bool recording;
};
/* The live state: the process (pid file, run lock, /proc) and the control
 * socket's answer.  Stale runtime files are reported as CRASHED (and left
 * for burrow_vm_start or burrow_vm_stop to clean up). */
enum burrow_vm_state burrow_vm_state(struct burrow_vm *vm, struct burrow_vm_status *st);

/* Presses the ACPI power button and waits up to timeout_ms for the process
 * to end (fails when it does not, or when the guest cannot see the button:
 * paused, guest error).  force: the guest is not asked; the process ends
 * at once ("quit", then SIGKILL), timeout_ms unused.  Stopping a crashed
 * VM cleans its runtime files.  Fails if the VM is not running. */
int burrow_vm_stop(struct burrow_vm *vm, bool force, int timeout_ms, struct burrow_error *err);

/* Runs one control command (args borrowed, NULL for none); *reply gets the
 * "return" object (caller json_decref's) when reply is not NULL.  On an
 * error answer err->cls holds its class. */
int burrow_vm_command(struct burrow_vm *vm, const char *command, json_t *args, json_t **reply,
                      struct burrow_error *err);

/* Runtime file paths, for the console and logs. */
const char *burrow_vm_console_path(const struct burrow_vm *vm);
const char *burrow_vm_control_path(const struct burrow_vm *vm);
const char *burrow_vm_log_path(const struct burrow_vm *vm);

/* ---- control socket client (events) --------------------------------------------- */

struct burrow_ctl;

/* Connects (retrying up to timeout_ms while the socket is absent or not
 * listening yet) and reads the greeting. */
struct burrow_ctl *burrow_ctl_connect(const char *path, int timeout_ms, struct burrow_error *err);
struct burrow_ctl *burrow_vm_connect(struct burrow_vm *vm, struct burrow_error *err);
void burrow_ctl_close(struct burrow_ctl *ctl);

/* The socket, for poll()/GLib sources: when it is readable, call
 * burrow_ctl_read_event(ctl, &ev, 0, err) until it returns 0. */
int burrow_ctl_fd(const struct burrow_ctl *ctl);

/* Sends a command and waits up to timeout_ms (<= 0: 10 s) for its reply;
 * events arriving meanwhile are kept for burrow_ctl_read_event(). */
int burrow_ctl_command(struct burrow_ctl *ctl, const char *command, json_t *args, json_t **reply,
                       int timeout_ms, struct burrow_error *err);
/* The same, with pass_fd (>= 0) sent along with the request (SCM_RIGHTS);
 * the caller keeps its own copy. */
int burrow_ctl_command_fd(struct burrow_ctl *ctl, const char *command, json_t *args, int pass_fd,
                          json_t **reply, int timeout_ms, struct burrow_error *err);
/* A socket on which the VM's screen speaks RFB (VNC), handed over the
 * control socket ("display-connect"): no TCP port involved.  The caller
 * owns the returned descriptor; -1 with err set on failure. */
int burrow_ctl_display_connect(struct burrow_ctl *ctl, struct burrow_error *err);

/* Next event ({"event":NAME,"data":{...},"timestamp":{...}}; caller
 * json_decref's).  Returns 1 with *event set, 0 when none came within
 * timeout_ms (0: do not wait), -1 when the connection closed or failed. */
int burrow_ctl_read_event(struct burrow_ctl *ctl, json_t **event, int timeout_ms,
                          struct burrow_error *err);

#endif
