/* burrow-manager: the GTK 3 front-end of the VM library (app/burrow.h).
 *
 * One main window lists the VMs (struct vm_entry); each running VM's
 * control socket is watched on the GLib main loop, so state changes arrive
 * as events.  New VMs and VMs started elsewhere are noticed through file
 * monitors on the definition and runtime directories.  Anything that can
 * take long (creating disks, starting, stopping, cloning, deleting) runs
 * on a worker thread (ops.c) while the window stays responsive. */
#ifndef BURROW_MANAGER_H
#define BURROW_MANAGER_H

#include <gtk/gtk.h>

#include "app/burrow.h"

#define MANAGER_APP_ID "org.burrow.Manager"

struct manager;
struct console;

/* One VM as the window shows it.  Only touched on the main thread. */
struct vm_entry {
    struct manager *mgr;
    char *name;
    struct burrow_vm *vm;          /* NULL when the definition does not load */
    char *load_error;
    enum burrow_vm_state state;
    int pid;
    bool busy;                     /* an operation on it is under way */
    const char *busy_text;         /* which, for people ("Stopping…"); NULL: unsaid */
    /* Control connection while the process runs: events come through it. */
    struct burrow_ctl *ctl;
    guint ctl_watch;
    guint settle_timer;            /* re-checks a process on its way out */
    /* How the running VM shows its screen, as its status says. */
    char display[16];              /* "sdl", "vnc", "headless", "none", "" */
    char vnc_addr[64];             /* its VNC server's HOST:PORT, "" without one */
    bool recording;                /* the guest records from the microphone now */
    /* Screen thumbnail of a running VM. */
    GdkPixbuf *thumb;
    guint thumb_timer;
    bool thumb_busy;
    /* The row in the list. */
    GtkWidget *row, *icon, *pause_badge, *name_label, *state_label, *row_thumb, *mic_badge;
};

struct manager {
    GtkApplication *app;
    GtkWidget *window;
    GtkWidget *header;
    GtkWidget *top;                  /* "welcome" (no VMs at all) | "vms" | "console" */
    GtkWidget *search, *no_match;    /* filters the list by name; says when nothing matches */
    GtkWidget *list;                 /* GtkListBox of VMs */
    GtkWidget *stack;                /* "empty" | "details" */
    /* Details pane. */
    GtkWidget *d_title, *d_subtitle, *d_state, *d_thumb, *d_thumb_frame;
    GtkWidget *d_general, *d_system, *d_storage, *d_network, *d_display;
    /* Header bar buttons (their actions carry the sensitivity). */
    GtkWidget *b_pause;
    /* Consoles (console.c): open ones by VM name, and the one shown in the
     * main window's "console" page (in place of the list), if any. */
    GHashTable *consoles;
    GtkWidget *console_page;
    struct console *embedded;
    GHashTable *vms;                 /* name -> struct vm_entry */
    GFileMonitor *vms_monitor, *run_monitor;
    char *thumb_dir;
};

/* window.c */
struct manager *manager_new(GtkApplication *app);
void manager_free(struct manager *m);
/* Re-reads the list of VMs (new ones appear, deleted ones go). */
void manager_rescan(struct manager *m);
/* The entry selected in the list, or NULL. */
struct vm_entry *manager_selected(struct manager *m);
void manager_select_name(struct manager *m, const char *name);
/* Refreshes the row and, when it is selected, the details and actions. */
void manager_entry_changed(struct manager *m, struct vm_entry *e);
/* A modal error dialog with the library's message. */
void manager_error(struct manager *m, GtkWindow *parent, const char *title, const char *msg);
/* A VM's name for titles and messages: a long one keeps its start and end
 * around an ellipsis (g_free it). */
char *manager_short_name(const char *name);
/* Shows the console page in place of the list, its title in the header
 * bar's subtitle; NULL goes back to the list (or the welcome page). */
void manager_show_console_page(struct manager *m, const char *subtitle);

/* vmrow.c: the list entries and their live state. */
struct vm_entry *vm_entry_new(struct manager *m, const char *name);
void vm_entry_free(struct vm_entry *e);
/* Reloads the definition from disk. */
void vm_entry_reload(struct vm_entry *e);
/* Asks the library for the live state; connects to (or lets go of) the
 * control socket accordingly. */
void vm_entry_update_state(struct vm_entry *e);
const char *vm_entry_state_label(const struct vm_entry *e);
const char *vm_entry_icon_name(const struct vm_entry *e);
/* The list row widget (created once). */
GtkWidget *vm_entry_row(struct vm_entry *e);
void vm_entry_update_row(struct vm_entry *e);
bool vm_entry_is_running(const struct vm_entry *e);

/* ops.c: long operations on a worker thread with a progress dialog. */
typedef int (*op_work_fn)(void *data, struct burrow_error *err, void (*progress)(void *op, double frac),
                          void *op);
typedef void (*op_done_fn)(struct manager *m, void *data, int rc, const struct burrow_error *err);
/* Runs work(data) on a thread.  title (NULL: none) names it in a progress
 * dialog (shown if it takes more than a moment); done runs on the main
 * thread.  free_data (may be NULL) frees data afterwards. */
void op_run(struct manager *m, GtkWindow *parent, const char *title, op_work_fn work, op_done_fn done,
            void *data, GDestroyNotify free_data);

/* assistant.c */
void assistant_show(struct manager *m);
/* settings.c */
void settings_show(struct manager *m, struct vm_entry *e);
/* console.c: the VM's screen and serial console, in a window of its own or
 * in the main window, as the user last chose.  Shows the VM's console,
 * opening it if it is not open. */
void console_show(struct manager *m, struct vm_entry *e);
/* Moves a console shown in the main window to a window of its own. */
void console_detach(struct console *c);
/* Closes consoles (the VMs run on). */
void console_close(struct console *c);
void console_close_all(struct manager *m);
/* Whether the widget with the focus is a console's screen or terminal,
 * which take every key (the window's shortcuts must not). */
bool console_takes_keys(GtkWidget *focus);

/* prefs.c: the manager's own settings ($XDG_CONFIG_HOME/burrow/manager.ini). */
/* Consoles open in the main window (else in windows of their own). */
bool prefs_console_in_main(void);
/* Remembers it; -1 with why (g_free it) when it cannot. */
int prefs_set_console_in_main(bool on, char **err);

/* hostinfo.c: the host checks (app/hostcheck.h).  An info bar with the
 * verdict and what to do about each problem; it says "Checking..." until
 * the checks, on a thread, are done. */
GtkWidget *hostinfo_bar(void);
/* NULL when KVM can run a VM, else why not and what to do (g_free it).
 * Blocks: for worker threads. */
char *hostinfo_kvm_problems(void);

/* Host limits for the sliders. */
unsigned host_memory_mib(void);
unsigned host_cpus(void);
/* Memory the host could give a new VM now (MemAvailable), MiB; 0 unknown. */
unsigned host_free_memory_mib(void);

#endif
