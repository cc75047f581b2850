/* The main window: header bar with the VM actions, the list of VMs, and a
 * details pane with the selected VM's hardware and live screen. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib/gstdio.h>

#include "app/paths.h"
#include "gui/manager/manager.h"

/* ---- helpers ---------------------------------------------------------------------------- */

void manager_error(struct manager *m, GtkWindow *parent, const char *title, const char *msg)
{
    GtkWidget *d = gtk_message_dialog_new(parent ? parent : GTK_WINDOW(m->window),
                                          GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", title);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", msg);
    gtk_window_set_title(GTK_WINDOW(d), "Error");
    atk_object_set_name(gtk_widget_get_accessible(d), "Error");
    g_signal_connect(d, "response", G_CALLBACK(gtk_widget_destroy), NULL);
    gtk_widget_show(d);
}

#define SHORT_NAME_CHARS 32

char *manager_short_name(const char *name)
{
    glong n = g_utf8_strlen(name, -1);
    if (n <= SHORT_NAME_CHARS)
        return g_strdup(name);
    glong keep = (SHORT_NAME_CHARS - 1) / 2;
    const char *head_end = g_utf8_offset_to_pointer(name, keep);
    const char *tail = g_utf8_offset_to_pointer(name, n - keep);
    return g_strdup_printf("%.*s…%s", (int)(head_end - name), name, tail);
}

static GtkWidget *icon_button(const char *icon, const char *action, const char *tooltip)
{
    GtkWidget *b = gtk_button_new_from_icon_name(icon, GTK_ICON_SIZE_BUTTON);
    gtk_actionable_set_action_name(GTK_ACTIONABLE(b), action);
    gtk_widget_set_tooltip_text(b, tooltip);
    gtk_widget_set_valign(b, GTK_ALIGN_CENTER);
    atk_object_set_name(gtk_widget_get_accessible(b), tooltip);
    return b;
}

static void set_action_enabled(struct manager *m, const char *name, bool on)
{
    GAction *a = g_action_map_lookup_action(G_ACTION_MAP(m->app), name);
    if (a)
        g_simple_action_set_enabled(G_SIMPLE_ACTION(a), on);
}

struct vm_entry *manager_selected(struct manager *m)
{
    GtkListBoxRow *row = gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list));
    if (!row)
        return NULL;
    const char *name = g_object_get_data(G_OBJECT(row), "vm-name");
    return name ? g_hash_table_lookup(m->vms, name) : NULL;
}

void manager_select_name(struct manager *m, const char *name)
{
    struct vm_entry *e = g_hash_table_lookup(m->vms, name);
    if (e && e->row)
        gtk_list_box_select_row(GTK_LIST_BOX(m->list), GTK_LIST_BOX_ROW(e->row));
}

/* ---- details pane -------------------------------------------------------------------------- */

static void set_section(GtkWidget *label, GString *s)
{
    gtk_label_set_text(GTK_LABEL(label), s->str);
    g_string_free(s, TRUE);
}

static void update_details(struct manager *m)
{
    struct vm_entry *e = manager_selected(m);
    if (!e) {
        gtk_stack_set_visible_child_name(GTK_STACK(m->stack), "empty");
        return;
    }
    gtk_stack_set_visible_child_name(GTK_STACK(m->stack), "details");
    gtk_label_set_text(GTK_LABEL(m->d_title), e->name);
    gtk_widget_set_tooltip_text(m->d_title, e->name);
    char *state = e->busy && e->busy_text ? g_strdup(e->busy_text)
                  : e->pid ? g_strdup_printf("%s (process %d)%s", vm_entry_state_label(e), e->pid,
                                             e->busy ? ", working…" : "")
                           : g_strdup_printf("%s%s", vm_entry_state_label(e), e->busy ? ", working…" : "");
    gtk_label_set_text(GTK_LABEL(m->d_state), state);
    g_free(state);
    GtkStyleContext *sc = gtk_widget_get_style_context(m->d_state);
    if (e->state == BURROW_VM_PAUSED && !e->busy)
        gtk_style_context_add_class(sc, "paused");
    else
        gtk_style_context_remove_class(sc, "paused");
    if (e->thumb && e->state == BURROW_VM_PAUSED) {
        GdkPixbuf *grey = gdk_pixbuf_copy(e->thumb);
        gdk_pixbuf_saturate_and_pixelate(grey, grey, 0.0f, FALSE);
        gtk_image_set_from_pixbuf(GTK_IMAGE(m->d_thumb), grey);
        g_object_unref(grey);
    } else if (e->thumb) {
        gtk_image_set_from_pixbuf(GTK_IMAGE(m->d_thumb), e->thumb);
    } else {
        gtk_image_set_from_icon_name(GTK_IMAGE(m->d_thumb),
                                     vm_entry_is_running(e) ? "video-display-symbolic"
                                                            : "system-shutdown-symbolic",
                                     GTK_ICON_SIZE_DIALOG);
        gtk_image_set_pixel_size(GTK_IMAGE(m->d_thumb), 96);
    }
    if (!e->vm) {
        gtk_label_set_text(GTK_LABEL(m->d_subtitle), e->load_error ? e->load_error : "");
        const char *none = "—";
        gtk_label_set_text(GTK_LABEL(m->d_general), none);
        gtk_label_set_text(GTK_LABEL(m->d_system), none);
        gtk_label_set_text(GTK_LABEL(m->d_storage), none);
        gtk_label_set_text(GTK_LABEL(m->d_network), none);
        gtk_label_set_text(GTK_LABEL(m->d_display), none);
        return;
    }
    const struct burrow_vmdef *d = burrow_vm_def(e->vm);
    const struct burrow_ostype *os = burrow_ostype_find(d->os);
    gtk_label_set_text(GTK_LABEL(m->d_subtitle), os ? os->label : d->os);

    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "Name: %s\nOS type: %s\nUUID: %s\nFolder: %s", d->name,
                           os ? os->label : d->os, d->uuid, burrow_vm_dir(e->vm));
    set_section(m->d_general, s);

    s = g_string_new(NULL);
    g_string_append_printf(s, "Memory: %u MiB\nProcessors: %u\nBoot order: %s", d->memory_mib, d->cpus,
                           d->boot[0] ? d->boot : "firmware default");
    set_section(m->d_system, s);

    s = g_string_new(NULL);
    for (unsigned i = 0; i < d->ndisks; i++) {
        char path[BURROW_PATH_MAX];
        if (burrow_vm_disk_path(e->vm, i, path, sizeof(path)) < 0)
            snprintf(path, sizeof(path), "%s", d->disks[i].path);
        g_string_append_printf(s, "%sDisk %u (%s, %s%s): %s", i ? "\n" : "", i, d->disks[i].interface,
                               d->disks[i].format, d->disks[i].readonly ? ", read-only" : "", path);
    }
    if (!d->ndisks)
        g_string_append(s, "No disks");
    g_string_append_printf(s, "\nCD/DVD: %s", d->cdrom[0] ? d->cdrom : "empty");
    set_section(m->d_storage, s);

    s = g_string_new(NULL);
    for (unsigned i = 0; i < d->nnics; i++) {
        const struct burrow_nic *n = &d->nics[i];
        g_string_append_printf(s, "%sAdapter %u: %s (NAT), %s", i ? "\n" : "", i + 1, n->model, n->mac);
        for (unsigned j = 0; j < n->nhostfwd; j++)
            g_string_append_printf(s, "\n    forward %s", n->hostfwd[j]);
    }
    if (!d->nnics)
        g_string_append(s, "Not connected");
    set_section(m->d_network, s);

    s = g_string_new(NULL);
    if (vm_entry_is_running(e) && e->display[0]) {
        /* As the running VM says it was started, from here or elsewhere. */
        if (!strcmp(e->display, "sdl"))
            g_string_append(s, "Window on this desktop\n");
        else if (!strcmp(e->display, "headless"))
            g_string_append(s, "Headless: its screen shows in this program's console (Ctrl+O)\n");
        else if (!strcmp(e->display, "none"))
            g_string_append(s, "None (serial console only)\n");
        if (e->vnc_addr[0])
            g_string_append_printf(s, "VNC server on %s\nA VNC viewer connects to vnc://%s\n", e->vnc_addr,
                                   e->vnc_addr);
        if (s->len)
            g_string_truncate(s, s->len - 1);
    } else if (vm_entry_is_running(e)) {
        g_string_append(s, "Not known yet");
    } else if (!strcmp(d->display, "vnc")) {
        g_string_append_printf(s, "VNC server on %s", d->vnc_listen);
    } else if (!strcmp(d->display, "sdl")) {
        g_string_append(s, "Window on this desktop");
    } else {
        g_string_append(s, "None (serial console only)");
    }
    set_section(m->d_display, s);
}

static void update_actions(struct manager *m)
{
    struct vm_entry *e = manager_selected(m);
    bool have = e && e->vm && !e->busy;
    enum burrow_vm_state st = e ? e->state : BURROW_VM_STOPPED;
    bool off = st == BURROW_VM_STOPPED || st == BURROW_VM_CRASHED;
    bool live = st == BURROW_VM_RUNNING || st == BURROW_VM_PAUSED || st == BURROW_VM_GUEST_ERROR;
    set_action_enabled(m, "settings", have);
    set_action_enabled(m, "start", have && off);
    set_action_enabled(m, "start-headless", have && off);
    set_action_enabled(m, "pause", have && (st == BURROW_VM_RUNNING || st == BURROW_VM_PAUSED));
    set_action_enabled(m, "stop", have && (st == BURROW_VM_RUNNING || st == BURROW_VM_CRASHED));
    set_action_enabled(m, "force-stop", have && (live || st == BURROW_VM_STOPPING || st == BURROW_VM_CRASHED));
    set_action_enabled(m, "reset", have && live);
    set_action_enabled(m, "delete", e && !e->busy && off);
    set_action_enabled(m, "clone", have && off);
    set_action_enabled(m, "console", have && live);
    /* One button that pauses or resumes, saying which. */
    bool paused = st == BURROW_VM_PAUSED;
    GtkWidget *img = gtk_image_new_from_icon_name(paused ? "media-playback-start-symbolic"
                                                         : "media-playback-pause-symbolic",
                                                  GTK_ICON_SIZE_BUTTON);
    gtk_button_set_image(GTK_BUTTON(m->b_pause), img);
    const char *label = paused ? "Resume" : "Pause";
    gtk_widget_set_tooltip_text(m->b_pause, paused ? "Resume (Ctrl+P)" : "Pause (Ctrl+P)");
    atk_object_set_name(gtk_widget_get_accessible(m->b_pause), label);
}

void manager_entry_changed(struct manager *m, struct vm_entry *e)
{
    if (manager_selected(m) == e) {
        update_details(m);
        update_actions(m);
    }
}

/* ---- the list ------------------------------------------------------------------------------- */

/* vm-2 before vm-10, as a file manager sorts; the keys are kept on the rows. */
static const char *sort_key(GtkListBoxRow *row)
{
    const char *key = g_object_get_data(G_OBJECT(row), "sort-key");
    if (!key) {
        const char *name = g_object_get_data(G_OBJECT(row), "vm-name");
        key = g_utf8_collate_key_for_filename(name ? name : "", -1);
        g_object_set_data_full(G_OBJECT(row), "sort-key", (gpointer)key, g_free);
    }
    return key;
}

static int sort_rows(GtkListBoxRow *a, GtkListBoxRow *b, gpointer data)
{
    int c = strcmp(sort_key(a), sort_key(b));
    return c ? c : g_strcmp0(g_object_get_data(G_OBJECT(a), "vm-name"), g_object_get_data(G_OBJECT(b), "vm-name"));
}

/* The search entry's text, casefolded, or NULL when empty. */
static char *search_text(struct manager *m)
{
    const char *t = m->search ? gtk_entry_get_text(GTK_ENTRY(m->search)) : "";
    if (!t[0])
        return NULL;
    char *norm = g_utf8_normalize(t, -1, G_NORMALIZE_ALL);
    char *fold = g_utf8_casefold(norm ? norm : t, -1);
    g_free(norm);
    return fold;
}

static gboolean filter_rows(GtkListBoxRow *row, gpointer data)
{
    struct manager *m = data;
    char *want = search_text(m);
    if (!want)
        return TRUE;
    const char *name = g_object_get_data(G_OBJECT(row), "vm-name");
    char *norm = g_utf8_normalize(name ? name : "", -1, G_NORMALIZE_ALL);
    char *fold = g_utf8_casefold(norm ? norm : "", -1);
    gboolean show = strstr(fold, want) != NULL;
    g_free(norm);
    g_free(fold);
    g_free(want);
    return show;
}

/* Says so when the search hides every row. */
static void update_no_match(struct manager *m)
{
    char *want = search_text(m);
    bool any = false;
    GtkListBoxRow *r;
    for (int i = 0; want && !any && (r = gtk_list_box_get_row_at_index(GTK_LIST_BOX(m->list), i)); i++)
        any = filter_rows(r, m);
    if (want && !any) {
        char *text = g_strdup_printf("No virtual machine’s name contains “%s”.",
                                     gtk_entry_get_text(GTK_ENTRY(m->search)));
        gtk_label_set_text(GTK_LABEL(m->no_match), text);
        g_free(text);
    }
    gtk_widget_set_visible(m->no_match, want && !any);
    g_free(want);
}

static void search_changed(GtkSearchEntry *entry, gpointer data)
{
    struct manager *m = data;
    gtk_list_box_invalidate_filter(GTK_LIST_BOX(m->list));
    update_no_match(m);
    /* Keep a visible row selected: the details follow the list. */
    GtkListBoxRow *sel = gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list));
    if (!sel || !gtk_widget_get_child_visible(GTK_WIDGET(sel))) {
        GtkListBoxRow *r;
        for (int i = 0; (r = gtk_list_box_get_row_at_index(GTK_LIST_BOX(m->list), i)); i++)
            if (filter_rows(r, m))
                break;
        if (r)
            gtk_list_box_select_row(GTK_LIST_BOX(m->list), r);
        else
            gtk_list_box_unselect_all(GTK_LIST_BOX(m->list));
    }
}

void manager_rescan(struct manager *m)
{
    struct burrow_error err;
    char **names = burrow_vm_list(&err);
    if (!names)
        return;
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (char **n = names; *n; n++) {
        g_hash_table_add(seen, *n);
        struct vm_entry *e = g_hash_table_lookup(m->vms, *n);
        if (!e) {
            e = vm_entry_new(m, *n);
            g_hash_table_insert(m->vms, e->name, e);
            gtk_container_add(GTK_CONTAINER(m->list), vm_entry_row(e));
            vm_entry_update_state(e);
        } else if (!e->busy) {
            vm_entry_reload(e);
            vm_entry_update_state(e);
        }
    }
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, m->vms);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        struct vm_entry *e = val;
        if (!g_hash_table_contains(seen, key) && !e->busy) {
            g_hash_table_iter_steal(&it);
            vm_entry_free(e);
        }
    }
    g_hash_table_destroy(seen);
    burrow_strv_free(names);
    /* No VM at all: the whole window invites to create the first one. */
    if (!m->embedded)
        gtk_stack_set_visible_child_name(GTK_STACK(m->top), g_hash_table_size(m->vms) ? "vms" : "welcome");
    update_no_match(m);
    if (!manager_selected(m)) {
        GtkListBoxRow *first = gtk_list_box_get_row_at_index(GTK_LIST_BOX(m->list), 0);
        if (first)
            gtk_list_box_select_row(GTK_LIST_BOX(m->list), first);
    }
    update_details(m);
    update_actions(m);
}

static void row_selected(GtkListBox *box, GtkListBoxRow *row, gpointer data)
{
    struct manager *m = data;
    update_details(m);
    update_actions(m);
}

/* ---- watching the directories --------------------------------------------------------------- */

static guint rescan_idle;

static gboolean rescan_cb(gpointer data)
{
    rescan_idle = 0;
    manager_rescan(data);
    return G_SOURCE_REMOVE;
}

/* A VM directory came or went (created or deleted elsewhere too). */
static void vms_changed(GFileMonitor *mon, GFile *file, GFile *other, GFileMonitorEvent ev, gpointer data)
{
    if (!rescan_idle)
        rescan_idle = g_timeout_add(100, rescan_cb, data);
}

/* NAME.sock or NAME.pid appeared or went: a VM started or ended, maybe
 * from the command line.  Its state then comes from its socket's events. */
static void run_changed(GFileMonitor *mon, GFile *file, GFile *other, GFileMonitorEvent ev, gpointer data)
{
    struct manager *m = data;
    char *base = g_file_get_basename(file);
    char *dot = strrchr(base, '.');
    if (dot && (!strcmp(dot, ".sock") || !strcmp(dot, ".pid"))) {
        *dot = '\0';
        struct vm_entry *e = g_hash_table_lookup(m->vms, base);
        if (e && !e->busy)
            vm_entry_update_state(e);
    }
    g_free(base);
}

static GFileMonitor *watch_dir(const char *path, GCallback cb, struct manager *m)
{
    GFile *f = g_file_new_for_path(path);
    GFileMonitor *mon = g_file_monitor_directory(f, G_FILE_MONITOR_NONE, NULL, NULL);
    g_object_unref(f);
    if (mon)
        g_signal_connect(mon, "changed", cb, m);
    return mon;
}

/* ---- operations ------------------------------------------------------------------------------ */

struct vm_op {
    char *name;
    char *display, *vnc_listen;   /* start */
    bool force;                   /* stop */
    char *command;                /* pause, resume, reset */
    char *no_kvm;                 /* start: why KVM cannot run it */
    bool keep_disks;              /* delete */
    char *new_name;               /* clone */
    char kept[BURROW_PATH_MAX];
};

static void vm_op_free(gpointer p)
{
    struct vm_op *o = p;
    g_free(o->name);
    g_free(o->display);
    g_free(o->vnc_listen);
    g_free(o->command);
    g_free(o->no_kvm);
    g_free(o->new_name);
    g_free(o);
}

static struct vm_op *vm_op_new(const char *name)
{
    struct vm_op *o = g_new0(struct vm_op, 1);
    o->name = g_strdup(name);
    return o;
}

static void mark_busy(struct manager *m, const char *name, bool busy)
{
    struct vm_entry *e = g_hash_table_lookup(m->vms, name);
    if (!e)
        return;
    e->busy = busy;
    if (!busy)
        e->busy_text = NULL;
    vm_entry_update_row(e);
    manager_entry_changed(m, e);
}

static void set_busy(struct manager *m, struct vm_entry *e, const char *text)
{
    e->busy = true;
    e->busy_text = text;
    vm_entry_update_row(e);
    manager_entry_changed(m, e);
}

/* How long Stop waits for the guest to power off. */
#define STOP_TIMEOUT_MS 30000

/* Every worker loads its own handle: handles are not shared between threads. */
static int work_start(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct vm_op *o = data;
    /* Say why now, rather than spawn a burrow-vm that dies at once. */
    o->no_kvm = hostinfo_kvm_problems();
    if (o->no_kvm) {
        burrow_error_set(err, "KVM cannot run virtual machines here");
        return -1;
    }
    struct burrow_vm *vm = burrow_vm_load(o->name, err);
    if (!vm)
        return -1;
    struct burrow_start_opts so = { .display = o->display, .vnc_listen = o->vnc_listen };
    int rc = burrow_vm_start(vm, &so, err);
    burrow_vm_free(vm);
    return rc;
}

static void done_start(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct vm_op *o = data;
    mark_busy(m, o->name, false);
    struct vm_entry *e = g_hash_table_lookup(m->vms, o->name);
    if (e)
        vm_entry_update_state(e);
    if (rc < 0) {
        char *n = manager_short_name(o->name);
        char *t = o->no_kvm ? g_strdup_printf("Cannot start “%s”: %s", n, err->msg)
                            : g_strdup_printf("Cannot start “%s”", n);
        g_free(n);
        manager_error(m, NULL, t, o->no_kvm ? o->no_kvm : err->msg);
        g_free(t);
    }
}

static void start_vm(struct manager *m, struct vm_entry *e, bool headless)
{
    struct vm_op *o = vm_op_new(e->name);
    if (headless) {
        /* No window: the console shows the screen over the control
         * socket, so no TCP port is opened unless the definition asks
         * for a VNC server (for remote viewers). */
        const struct burrow_vmdef *d = burrow_vm_def(e->vm);
        bool vnc = !strcmp(d->display, "vnc") && d->vnc_listen[0];
        o->display = g_strdup(vnc ? "vnc" : "headless");
        if (vnc)
            o->vnc_listen = g_strdup(d->vnc_listen);
    }
    e->state = BURROW_VM_STARTING;
    set_busy(m, e, "Starting…");
    op_run(m, GTK_WINDOW(m->window), NULL, work_start, done_start, o, vm_op_free);
}

static int work_stop(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct vm_op *o = data;
    struct burrow_vm *vm = burrow_vm_load(o->name, err);
    if (!vm)
        return -1;
    int rc = burrow_vm_stop(vm, o->force, o->force ? 1 : STOP_TIMEOUT_MS, err);
    burrow_vm_free(vm);
    return rc;
}

static void done_simple(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct vm_op *o = data;
    mark_busy(m, o->name, false);
    struct vm_entry *e = g_hash_table_lookup(m->vms, o->name);
    if (e)
        vm_entry_update_state(e);
    if (rc < 0) {
        char *n = manager_short_name(o->name);
        char *t = g_strdup_printf("“%s”: the operation failed", n);
        g_free(n);
        manager_error(m, NULL, t, err->msg);
        g_free(t);
    }
}

static void stop_vm(struct manager *m, struct vm_entry *e, bool force);

/* After a stop that did not end the VM (the guest ignored the power
 * button, or could not see it): Force stop is one button away. */
static void stop_failed_response(GtkDialog *d, int r, gpointer data)
{
    struct manager *m = data;
    struct vm_entry *e = g_hash_table_lookup(m->vms, g_object_get_data(G_OBJECT(d), "vm-name"));
    gtk_widget_destroy(GTK_WIDGET(d));
    if (r == GTK_RESPONSE_ACCEPT && e && e->vm && !e->busy && vm_entry_is_running(e))
        stop_vm(m, e, true);
}

static void done_stop(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct vm_op *o = data;
    mark_busy(m, o->name, false);
    struct vm_entry *e = g_hash_table_lookup(m->vms, o->name);
    if (e)
        vm_entry_update_state(e);
    if (rc == 0)
        return;
    if (o->force || !e || !vm_entry_is_running(e)) {
        char *n = manager_short_name(o->name);
        char *t = g_strdup_printf("Cannot stop “%s”", n);
        manager_error(m, NULL, t, err->msg);
        g_free(t);
        g_free(n);
        return;
    }
    char *n = manager_short_name(o->name);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(m->window), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE, "“%s” is still running", n);
    g_free(n);
    gtk_window_set_title(GTK_WINDOW(d), "Stop virtual machine");
    atk_object_set_name(gtk_widget_get_accessible(d), "Stop virtual machine");
    if (e->state == BURROW_VM_RUNNING)
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
            "The guest did not power off within %d seconds after the power button: it may be busy, "
            "waiting for an answer on its screen, or ignoring the button.\n\n"
            "Force stop turns it off at once, as pulling its power cable would: what the guest has not "
            "saved is lost.", STOP_TIMEOUT_MS / 1000);
    else
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
            "The guest cannot see the power button while the VM is %s.\n\n"
            "Force stop turns it off at once, as pulling its power cable would: what the guest has not "
            "saved is lost.", vm_entry_state_label(e));
    gtk_dialog_add_button(GTK_DIALOG(d), "_Keep it running", GTK_RESPONSE_CANCEL);
    GtkWidget *force = gtk_dialog_add_button(GTK_DIALOG(d), "_Force stop", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(force), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    g_object_set_data_full(G_OBJECT(d), "vm-name", g_strdup(o->name), g_free);
    g_signal_connect(d, "response", G_CALLBACK(stop_failed_response), m);
    gtk_widget_show(d);
}

static void stop_vm(struct manager *m, struct vm_entry *e, bool force)
{
    struct vm_op *o = vm_op_new(e->name);
    o->force = force;
    set_busy(m, e, force ? "Turning it off…" : "Stopping (waiting for the guest to power off)…");
    op_run(m, GTK_WINDOW(m->window), NULL, work_stop, done_stop, o, vm_op_free);
}

/* Force stop loses what the guest has not saved: asked first. */
static void force_stop_response(GtkDialog *d, int r, gpointer data)
{
    struct manager *m = data;
    struct vm_entry *e = g_hash_table_lookup(m->vms, g_object_get_data(G_OBJECT(d), "vm-name"));
    gtk_widget_destroy(GTK_WIDGET(d));
    if (r == GTK_RESPONSE_ACCEPT && e && e->vm && !e->busy)
        stop_vm(m, e, true);
}

static void confirm_force_stop(struct manager *m, struct vm_entry *e)
{
    char *n = manager_short_name(e->name);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(m->window), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE, "Force “%s” off?", n);
    g_free(n);
    gtk_window_set_title(GTK_WINDOW(d), "Force stop");
    atk_object_set_name(gtk_widget_get_accessible(d), "Force stop");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
        "The VM is turned off at once, as pulling its power cable would: what the guest has not saved "
        "is lost, and its disks may need checking at the next start. Stop (Ctrl+H) asks the guest to "
        "shut down instead.");
    gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *force = gtk_dialog_add_button(GTK_DIALOG(d), "_Force stop", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(force), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    g_object_set_data_full(G_OBJECT(d), "vm-name", g_strdup(e->name), g_free);
    g_signal_connect(d, "response", G_CALLBACK(force_stop_response), m);
    gtk_widget_show(d);
}

static int work_command(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct vm_op *o = data;
    struct burrow_vm *vm = burrow_vm_load(o->name, err);
    if (!vm)
        return -1;
    int rc = burrow_vm_command(vm, o->command, NULL, NULL, err);
    burrow_vm_free(vm);
    return rc;
}

static void command_vm(struct manager *m, struct vm_entry *e, const char *command)
{
    struct vm_op *o = vm_op_new(e->name);
    o->command = g_strdup(command);
    set_busy(m, e, !strcmp(command, "pause") ? "Pausing…" : !strcmp(command, "resume") ? "Resuming…"
                                                                                      : "Resetting…");
    op_run(m, GTK_WINDOW(m->window), NULL, work_command, done_simple, o, vm_op_free);
}

static int work_delete(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct vm_op *o = data;
    return burrow_vm_delete(o->name, o->keep_disks, o->kept, sizeof(o->kept), err);
}

static void done_delete(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct vm_op *o = data;
    mark_busy(m, o->name, false);
    manager_rescan(m);
    if (rc < 0) {
        char *n = manager_short_name(o->name);
        char *t = g_strdup_printf("Cannot delete “%s”", n);
        g_free(n);
        manager_error(m, NULL, t, err->msg);
        g_free(t);
    }
}

/* Asked without a nested main loop, so the window (and its accessibility
 * interface) keeps answering while the question is open. */
static void delete_response(GtkDialog *d, int r, gpointer data)
{
    struct manager *m = data;
    GtkWidget *keep = g_object_get_data(G_OBJECT(d), "keep");
    bool keep_disks = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(keep));
    struct vm_entry *e = g_hash_table_lookup(m->vms, g_object_get_data(G_OBJECT(d), "vm-name"));
    if (r != GTK_RESPONSE_ACCEPT || !e || e->busy || vm_entry_is_running(e)) {
        gtk_widget_destroy(GTK_WIDGET(d));
        return;
    }
    struct vm_op *o = vm_op_new(e->name);
    o->keep_disks = keep_disks;
    e->busy = true;
    manager_entry_changed(m, e);
    char *n = manager_short_name(e->name);
    char *title = g_strdup_printf("Deleting “%s”", n);
    g_free(n);
    gtk_widget_destroy(GTK_WIDGET(d));
    op_run(m, GTK_WINDOW(m->window), title, work_delete, done_delete, o, vm_op_free);
    g_free(title);
}

static void delete_vm(struct manager *m, struct vm_entry *e)
{
    g_autofree char *short_name = manager_short_name(e->name);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(m->window), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE,
                                          "Delete “%s”?", short_name);
    gtk_window_set_title(GTK_WINDOW(d), "Delete virtual machine");
    atk_object_set_name(gtk_widget_get_accessible(d), "Delete virtual machine");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
        "Its definition, logs and the disks in its folder are removed. Disk images kept "
        "elsewhere are not touched.");
    GtkWidget *keep = gtk_check_button_new_with_mnemonic("_Keep the disk files");
    atk_object_set_name(gtk_widget_get_accessible(keep), "Keep the disk files");
    gtk_container_add(GTK_CONTAINER(gtk_message_dialog_get_message_area(GTK_MESSAGE_DIALOG(d))), keep);
    gtk_widget_show(keep);
    gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *del = gtk_dialog_add_button(GTK_DIALOG(d), "_Delete", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(del), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    g_object_set_data(G_OBJECT(d), "keep", keep);
    g_object_set_data_full(G_OBJECT(d), "vm-name", g_strdup(e->name), g_free);
    g_signal_connect(d, "response", G_CALLBACK(delete_response), m);
    gtk_widget_show(d);
}

static int work_clone(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct vm_op *o = data;
    struct burrow_vm *vm = burrow_vm_clone(o->name, o->new_name, err);
    if (!vm)
        return -1;
    burrow_vm_free(vm);
    return 0;
}

static void done_clone(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct vm_op *o = data;
    mark_busy(m, o->name, false);
    manager_rescan(m);
    if (rc < 0) {
        char *n = manager_short_name(o->name);
        char *t = g_strdup_printf("Cannot clone “%s”", n);
        g_free(n);
        manager_error(m, NULL, t, err->msg);
        g_free(t);
    } else {
        manager_select_name(m, o->new_name);
    }
}

static void clone_entry_changed(GtkEditable *ed, gpointer data)
{
    GtkWidget *ok = data;
    struct burrow_error err;
    gtk_widget_set_sensitive(ok, burrow_name_valid(gtk_entry_get_text(GTK_ENTRY(ed)), &err));
}

struct clone_dialog {
    struct manager *m;
    char *name;          /* the VM being copied */
    GtkWidget *entry;
};

static void clone_response(GtkDialog *d, int response, gpointer data)
{
    struct clone_dialog *cd = data;
    struct manager *m = cd->m;
    char *new_name = g_strdup(gtk_entry_get_text(GTK_ENTRY(cd->entry)));
    gtk_widget_destroy(GTK_WIDGET(d));
    /* The VM may have gone while the dialog was open. */
    struct vm_entry *e = g_hash_table_lookup(m->vms, cd->name);
    g_free(cd->name);
    g_free(cd);
    if (response != GTK_RESPONSE_ACCEPT || !e || !e->vm || e->busy) {
        g_free(new_name);
        return;
    }
    struct vm_op *o = vm_op_new(e->name);
    o->new_name = new_name;
    e->busy = true;
    manager_entry_changed(m, e);
    char *n = manager_short_name(e->name), *nn = manager_short_name(new_name);
    char *title = g_strdup_printf("Cloning “%s” as “%s”", n, nn);
    g_free(n);
    g_free(nn);
    op_run(m, GTK_WINDOW(m->window), title, work_clone, done_clone, o, vm_op_free);
    g_free(title);
}

static void clone_vm(struct manager *m, struct vm_entry *e)
{
    GtkWidget *d = gtk_dialog_new_with_buttons("Clone virtual machine", GTK_WINDOW(m->window),
                                               GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT |
                                               GTK_DIALOG_USE_HEADER_BAR,
                                               "_Cancel", GTK_RESPONSE_CANCEL, "C_lone", GTK_RESPONSE_ACCEPT, NULL);
    GtkWidget *ok = gtk_dialog_get_widget_for_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(ok), "suggested-action");
    GtkWidget *box = gtk_dialog_get_content_area(GTK_DIALOG(d));
    gtk_container_set_border_width(GTK_CONTAINER(box), 18);
    gtk_box_set_spacing(GTK_BOX(box), 6);
    GtkWidget *label = gtk_label_new_with_mnemonic("_Name of the copy");
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    GtkWidget *entry = gtk_entry_new();
    gtk_label_set_mnemonic_widget(GTK_LABEL(label), entry);
    atk_object_set_name(gtk_widget_get_accessible(entry), "Name of the copy");
    char *def = g_strdup_printf("%s-clone", e->name);
    gtk_entry_set_text(GTK_ENTRY(entry), def);
    g_free(def);
    gtk_entry_set_activates_default(GTK_ENTRY(entry), TRUE);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
    g_signal_connect(entry, "changed", G_CALLBACK(clone_entry_changed), ok);
    gtk_container_add(GTK_CONTAINER(box), label);
    gtk_container_add(GTK_CONTAINER(box), entry);
    /* Not gtk_dialog_run(): a nested main loop would keep the rest of the
     * window (and accessibility clients) waiting. */
    struct clone_dialog *cd = g_new0(struct clone_dialog, 1);
    cd->m = m;
    cd->name = g_strdup(e->name);
    cd->entry = entry;
    g_signal_connect(d, "response", G_CALLBACK(clone_response), cd);
    gtk_widget_show_all(d);
}

static void show_console(struct manager *m, struct vm_entry *e)
{
    /* Our own viewer, whatever the VM's display: its screen comes over the
     * control socket, so no VNC port nor external viewer is needed. */
    console_show(m, e);
}

void manager_show_console_page(struct manager *m, const char *subtitle)
{
    if (subtitle) {
        gtk_stack_set_visible_child_name(GTK_STACK(m->top), "console");
        gtk_header_bar_set_subtitle(GTK_HEADER_BAR(m->header), subtitle);
        return;
    }
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(m->header), "Virtual machines");
    gtk_stack_set_visible_child_name(GTK_STACK(m->top), g_hash_table_size(m->vms) ? "vms" : "welcome");
    /* Back in the list, keys move in it again. */
    GtkListBoxRow *sel = gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list));
    if (sel)
        gtk_widget_grab_focus(GTK_WIDGET(sel));
}

/* ---- actions ------------------------------------------------------------------------------- */

static void act_dispatch(GSimpleAction *a, GVariant *param, gpointer data)
{
    struct manager *m = data;
    const char *name = g_action_get_name(G_ACTION(a));
    if (!strcmp(name, "new")) {
        assistant_show(m);
        return;
    }
    if (!strcmp(name, "refresh")) {
        manager_rescan(m);
        return;
    }
    if (!strcmp(name, "find")) {
        gtk_widget_grab_focus(m->search);
        return;
    }
    struct vm_entry *e = manager_selected(m);
    if (!e)
        return;
    if (!strcmp(name, "delete")) {
        delete_vm(m, e);
        return;
    }
    if (!e->vm || e->busy)
        return;
    if (!strcmp(name, "settings"))
        settings_show(m, e);
    else if (!strcmp(name, "start"))
        start_vm(m, e, false);
    else if (!strcmp(name, "start-headless"))
        start_vm(m, e, true);
    else if (!strcmp(name, "pause"))
        command_vm(m, e, e->state == BURROW_VM_PAUSED ? "resume" : "pause");
    else if (!strcmp(name, "stop"))
        stop_vm(m, e, false);
    else if (!strcmp(name, "force-stop"))
        confirm_force_stop(m, e);
    else if (!strcmp(name, "reset"))
        command_vm(m, e, "reset");
    else if (!strcmp(name, "clone"))
        clone_vm(m, e);
    else if (!strcmp(name, "console"))
        show_console(m, e);
}

static const struct {
    const char *name;
    const char *accels[3];
} actions[] = {
    { "new", { "<Primary>n", NULL } },
    { "settings", { "<Primary>s", NULL } },
    { "start", { "<Primary>Return", NULL } },
    { "start-headless", { "<Primary><Shift>Return", NULL } },
    { "pause", { "<Primary>p", NULL } },
    { "stop", { "<Primary>h", NULL } },
    { "force-stop", { "<Primary><Shift>h", NULL } },
    { "reset", { "<Primary><Shift>r", NULL } },
    { "delete", { "Delete", NULL } },
    { "clone", { "<Primary>d", NULL } },
    { "console", { "<Primary>o", NULL } },
    { "refresh", { "F5", NULL } },
    { "find", { "<Primary>f", NULL } },
};

/* ---- building the window ------------------------------------------------------------------- */

static GtkWidget *section(GtkWidget *grid, int row, const char *title, GtkWidget **value)
{
    GtkWidget *h = gtk_label_new(title);
    gtk_label_set_xalign(GTK_LABEL(h), 0);
    gtk_widget_set_valign(h, GTK_ALIGN_START);
    gtk_style_context_add_class(gtk_widget_get_style_context(h), "dim-label");
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes(GTK_LABEL(h), attrs);
    pango_attr_list_unref(attrs);
    *value = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(*value), 0);
    gtk_label_set_selectable(GTK_LABEL(*value), TRUE);
    gtk_label_set_line_wrap(GTK_LABEL(*value), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(*value), PANGO_WRAP_WORD_CHAR);
    gtk_widget_set_hexpand(*value, TRUE);
    gtk_widget_set_can_focus(*value, FALSE);
    atk_object_set_name(gtk_widget_get_accessible(*value), title);
    gtk_grid_attach(GTK_GRID(grid), h, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), *value, 1, row, 1, 1);
    return h;
}

static GtkWidget *build_details(struct manager *m)
{
    GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
    g_object_set(outer, "margin", 24, NULL);

    GtkWidget *top = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);
    GtkWidget *titles = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    gtk_widget_set_hexpand(titles, TRUE);
    m->d_title = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(m->d_title), 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(m->d_title), "title-1");
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_scale_new(1.6));
    pango_attr_list_insert(attrs, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes(GTK_LABEL(m->d_title), attrs);
    pango_attr_list_unref(attrs);
    /* A long name must not widen the window past the screen: two lines
     * at most, then an ellipsis (the tooltip has it whole). */
    gtk_label_set_line_wrap(GTK_LABEL(m->d_title), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(m->d_title), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_lines(GTK_LABEL(m->d_title), 2);
    gtk_label_set_ellipsize(GTK_LABEL(m->d_title), PANGO_ELLIPSIZE_END);
    atk_object_set_name(gtk_widget_get_accessible(m->d_title), "Selected VM");
    m->d_subtitle = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(m->d_subtitle), 0);
    gtk_label_set_line_wrap(GTK_LABEL(m->d_subtitle), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(m->d_subtitle), PANGO_WRAP_WORD_CHAR);
    gtk_style_context_add_class(gtk_widget_get_style_context(m->d_subtitle), "dim-label");
    m->d_state = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(m->d_state), 0);
    atk_object_set_name(gtk_widget_get_accessible(m->d_state), "State");
    gtk_container_add(GTK_CONTAINER(titles), m->d_title);
    gtk_container_add(GTK_CONTAINER(titles), m->d_subtitle);
    gtk_container_add(GTK_CONTAINER(titles), m->d_state);
    gtk_container_add(GTK_CONTAINER(top), titles);

    m->d_thumb_frame = gtk_frame_new(NULL);
    gtk_widget_set_size_request(m->d_thumb_frame, 320, 200);
    gtk_widget_set_valign(m->d_thumb_frame, GTK_ALIGN_START);
    m->d_thumb = gtk_image_new();
    atk_object_set_name(gtk_widget_get_accessible(m->d_thumb), "Screen");
    gtk_container_add(GTK_CONTAINER(m->d_thumb_frame), m->d_thumb);
    gtk_container_add(GTK_CONTAINER(top), m->d_thumb_frame);
    gtk_container_add(GTK_CONTAINER(outer), top);

    GtkWidget *grid = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(grid), 14);
    gtk_grid_set_column_spacing(GTK_GRID(grid), 24);
    section(grid, 0, "General", &m->d_general);
    section(grid, 1, "System", &m->d_system);
    section(grid, 2, "Storage", &m->d_storage);
    section(grid, 3, "Network", &m->d_network);
    section(grid, 4, "Display", &m->d_display);
    gtk_container_add(GTK_CONTAINER(outer), grid);

    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_container_add(GTK_CONTAINER(sw), outer);
    return sw;
}

static GtkWidget *build_empty(void)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
    GtkWidget *img = gtk_image_new_from_icon_name("computer-symbolic", GTK_ICON_SIZE_DIALOG);
    gtk_image_set_pixel_size(GTK_IMAGE(img), 96);
    gtk_style_context_add_class(gtk_widget_get_style_context(img), "dim-label");
    GtkWidget *l1 = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(l1), "<span size='x-large' weight='bold'>No virtual machine selected</span>");
    GtkWidget *l2 = gtk_label_new("Create one with New (Ctrl+N), or pick one from the list.");
    gtk_style_context_add_class(gtk_widget_get_style_context(l2), "dim-label");
    gtk_container_add(GTK_CONTAINER(box), img);
    gtk_container_add(GTK_CONTAINER(box), l1);
    gtk_container_add(GTK_CONTAINER(box), l2);
    return box;
}

/* What the window shows before there is any VM, as GNOME Boxes does. */
static GtkWidget *build_welcome(void)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
    gtk_widget_set_halign(box, GTK_ALIGN_CENTER);
    g_object_set(box, "margin", 24, NULL);
    GtkWidget *img = gtk_image_new_from_icon_name("computer-symbolic", GTK_ICON_SIZE_DIALOG);
    gtk_image_set_pixel_size(GTK_IMAGE(img), 128);
    gtk_style_context_add_class(gtk_widget_get_style_context(img), "dim-label");
    GtkWidget *title = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(title), "<span size='xx-large' weight='bold'>No virtual machines yet</span>");
    atk_object_set_name(gtk_widget_get_accessible(title), "Welcome");
    GtkWidget *text = gtk_label_new("A virtual machine runs another operating system in a window: install "
                                    "one from an ISO image, or start from a disk image you have.");
    gtk_label_set_line_wrap(GTK_LABEL(text), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(text), 50);
    gtk_label_set_justify(GTK_LABEL(text), GTK_JUSTIFY_CENTER);
    gtk_style_context_add_class(gtk_widget_get_style_context(text), "dim-label");
    GtkWidget *b = gtk_button_new_with_mnemonic("_New VM");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(b), "app.new");
    gtk_widget_set_halign(b, GTK_ALIGN_CENTER);
    gtk_widget_set_margin_top(b, 12);
    gtk_style_context_add_class(gtk_widget_get_style_context(b), "suggested-action");
    atk_object_set_name(gtk_widget_get_accessible(b), "New VM");
    gtk_container_add(GTK_CONTAINER(box), img);
    gtk_container_add(GTK_CONTAINER(box), title);
    gtk_container_add(GTK_CONTAINER(box), text);
    gtk_container_add(GTK_CONTAINER(box), b);
    return box;
}

static GtkWidget *build_header(struct manager *m)
{
    GtkWidget *hb = gtk_header_bar_new();
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(hb), TRUE);
    gtk_header_bar_set_title(GTK_HEADER_BAR(hb), "Burrow");
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(hb), "Virtual machines");

    GtkWidget *b_new = gtk_button_new_with_mnemonic("_New");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(b_new), "app.new");
    gtk_widget_set_tooltip_text(b_new, "New virtual machine (Ctrl+N)");
    atk_object_set_name(gtk_widget_get_accessible(b_new), "New");
    gtk_style_context_add_class(gtk_widget_get_style_context(b_new), "suggested-action");
    gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), b_new);

    GtkWidget *run = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(run), "linked");
    gtk_container_add(GTK_CONTAINER(run), icon_button("media-playback-start-symbolic", "app.start", "Start"));
    GtkWidget *hl = gtk_button_new_with_label("Headless");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(hl), "app.start-headless");
    gtk_widget_set_tooltip_text(hl, "Start without a window, with a VNC server (Ctrl+Shift+Enter)");
    atk_object_set_name(gtk_widget_get_accessible(hl), "Start headless");
    gtk_container_add(GTK_CONTAINER(run), hl);
    gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), run);

    GtkWidget *ctl = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(ctl), "linked");
    m->b_pause = icon_button("media-playback-pause-symbolic", "app.pause", "Pause");
    gtk_container_add(GTK_CONTAINER(ctl), m->b_pause);
    gtk_container_add(GTK_CONTAINER(ctl), icon_button("system-shutdown-symbolic", "app.stop", "Stop"));
    gtk_container_add(GTK_CONTAINER(ctl), icon_button("process-stop-symbolic", "app.force-stop", "Force stop"));
    gtk_container_add(GTK_CONTAINER(ctl), icon_button("view-refresh-symbolic", "app.reset", "Reset"));
    gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), ctl);

    /* pack_end goes right to left. */
    GtkWidget *menu = g_object_new(GTK_TYPE_MENU_BUTTON, NULL);
    gtk_button_set_image(GTK_BUTTON(menu), gtk_image_new_from_icon_name("open-menu-symbolic", GTK_ICON_SIZE_BUTTON));
    GMenu *model = g_menu_new();
    g_menu_append(model, "_Clone…", "app.clone");
    g_menu_append(model, "_Refresh", "app.refresh");
    g_menu_append(model, "_Keyboard Shortcuts", "win.show-help-overlay");
    g_menu_append(model, "_About Burrow", "app.about");
    gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(menu), G_MENU_MODEL(model));
    g_object_unref(model);
    gtk_widget_set_tooltip_text(menu, "Main menu");
    atk_object_set_name(gtk_widget_get_accessible(menu), "Main menu");
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), menu);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), icon_button("user-trash-symbolic", "app.delete", "Delete"));
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), icon_button("emblem-system-symbolic", "app.settings", "Settings"));
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), icon_button("video-display-symbolic", "app.console", "Show console"));
    return hb;
}

static void act_about(GSimpleAction *a, GVariant *p, gpointer data)
{
    struct manager *m = data;
    gtk_show_about_dialog(GTK_WINDOW(m->window), "program-name", "Burrow", "logo-icon-name", MANAGER_APP_ID,
                          "comments", "Desktop virtualization on KVM", "version", "0.1.0",
                          "license-type", GTK_LICENSE_UNKNOWN, NULL);
}

/* Plain keys go to a text entry first (the search entry), before the
 * window's accelerators: Delete there deletes a character, not a VM. */
static gboolean on_key_press(GtkWidget *w, GdkEventKey *ev, gpointer data)
{
    GtkWidget *focus = gtk_window_get_focus(GTK_WINDOW(w));
    if (focus && GTK_IS_ENTRY(focus) && !(ev->state & (GDK_CONTROL_MASK | GDK_MOD1_MASK)))
        return gtk_window_propagate_key_event(GTK_WINDOW(w), ev);
    /* A console in this window takes every key, Ctrl ones included: they
     * are the guest's, not the window's shortcuts. */
    if (console_takes_keys(focus))
        return gtk_window_propagate_key_event(GTK_WINDOW(w), ev);
    return FALSE;
}

static gboolean on_focus_in(GtkWidget *w, GdkEvent *ev, gpointer data)
{
    /* Definitions edited elsewhere (the command line) show when the user
     * comes back to the window. */
    manager_rescan(data);
    return FALSE;
}

static void load_css(void)
{
    GtkCssProvider *p = gtk_css_provider_new();
    gtk_css_provider_load_from_data(p,
        "list.vm-list row { border-bottom: 1px solid alpha(@borders, 0.5); }\n"
        ".row-thumb { background: alpha(@borders, 0.25); border-radius: 3px; }\n"
        ".pause-badge { background: @theme_selected_bg_color; color: @theme_selected_fg_color;"
        " border-radius: 50%; padding: 2px; }\n"
        "label.paused { color: @theme_selected_bg_color; font-weight: bold; }\n"
        "list.vm-list row:selected label.paused { color: inherit; }\n"
        ".details-thumb { background: #1e1e1e; }\n", -1, NULL);
    gtk_style_context_add_provider_for_screen(gdk_screen_get_default(), GTK_STYLE_PROVIDER(p),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(p);
}

static void add_shortcuts_window(struct manager *m)
{
    static const struct { const char *title, *accel; } keys[] = {
        { "New virtual machine", "<Primary>n" }, { "Settings", "<Primary>s" },
        { "Start", "<Primary>Return" }, { "Start headless", "<Primary><Shift>Return" },
        { "Pause or resume", "<Primary>p" }, { "Stop (ACPI power button)", "<Primary>h" },
        { "Force stop", "<Primary><Shift>h" }, { "Reset", "<Primary><Shift>r" },
        { "Delete", "Delete" }, { "Clone", "<Primary>d" }, { "Show console", "<Primary>o" },
        { "Refresh", "F5" }, { "Search the list", "<Primary>f" }, { "Quit", "<Primary>q" },
    };
    GtkWidget *sw = g_object_new(GTK_TYPE_SHORTCUTS_WINDOW, "modal", TRUE, NULL);
    GtkWidget *sec = g_object_new(GTK_TYPE_SHORTCUTS_SECTION, "visible", TRUE, "section-name", "main", NULL);
    GtkWidget *grp = g_object_new(GTK_TYPE_SHORTCUTS_GROUP, "visible", TRUE, "title", "Virtual machines", NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        GtkWidget *s = g_object_new(GTK_TYPE_SHORTCUTS_SHORTCUT, "visible", TRUE, "title", keys[i].title,
                                    "accelerator", keys[i].accel, NULL);
        gtk_container_add(GTK_CONTAINER(grp), s);
    }
    gtk_container_add(GTK_CONTAINER(sec), grp);
    gtk_container_add(GTK_CONTAINER(sw), sec);
    gtk_application_window_set_help_overlay(GTK_APPLICATION_WINDOW(m->window), GTK_SHORTCUTS_WINDOW(sw));
}

struct manager *manager_new(GtkApplication *app)
{
    struct manager *m = g_new0(struct manager, 1);
    m->app = app;
    m->vms = g_hash_table_new(g_str_hash, g_str_equal);
    m->consoles = g_hash_table_new(g_str_hash, g_str_equal);
    GError *gerr = NULL;
    m->thumb_dir = g_dir_make_tmp("burrow-manager-XXXXXX", &gerr);
    g_clear_error(&gerr);

    for (size_t i = 0; i < G_N_ELEMENTS(actions); i++) {
        GSimpleAction *a = g_simple_action_new(actions[i].name, NULL);
        g_signal_connect(a, "activate", G_CALLBACK(act_dispatch), m);
        g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(a));
        g_object_unref(a);
        char *detailed = g_strdup_printf("app.%s", actions[i].name);
        gtk_application_set_accels_for_action(app, detailed, actions[i].accels);
        g_free(detailed);
    }
    GSimpleAction *about = g_simple_action_new("about", NULL);
    g_signal_connect(about, "activate", G_CALLBACK(act_about), m);
    g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(about));
    g_object_unref(about);
    const char *help_accels[] = { "<Primary>question", "<Primary>F1", NULL };
    gtk_application_set_accels_for_action(app, "win.show-help-overlay", help_accels);

    load_css();
    m->window = gtk_application_window_new(app);
    gtk_window_set_title(GTK_WINDOW(m->window), "Burrow");
    gtk_window_set_default_size(GTK_WINDOW(m->window), 1040, 680);
    gtk_window_set_icon_name(GTK_WINDOW(m->window), MANAGER_APP_ID);
    atk_object_set_name(gtk_widget_get_accessible(m->window), "Burrow");
    m->header = build_header(m);
    gtk_window_set_titlebar(GTK_WINDOW(m->window), m->header);

    GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_widget_set_size_request(left, 320, -1);
    m->search = gtk_search_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(m->search), "Search virtual machines");
    atk_object_set_name(gtk_widget_get_accessible(m->search), "Search VMs");
    g_object_set(m->search, "margin", 6, NULL);
    g_signal_connect(m->search, "search-changed", G_CALLBACK(search_changed), m);
    gtk_container_add(GTK_CONTAINER(left), m->search);
    GtkWidget *sw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_vexpand(sw, TRUE);
    m->list = gtk_list_box_new();
    gtk_style_context_add_class(gtk_widget_get_style_context(m->list), "vm-list");
    gtk_list_box_set_sort_func(GTK_LIST_BOX(m->list), sort_rows, NULL, NULL);
    gtk_list_box_set_filter_func(GTK_LIST_BOX(m->list), filter_rows, m, NULL);
    atk_object_set_name(gtk_widget_get_accessible(m->list), "Virtual machines");
    g_signal_connect(m->list, "row-selected", G_CALLBACK(row_selected), m);
    m->no_match = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(m->no_match), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(m->no_match), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_xalign(GTK_LABEL(m->no_match), 0);
    g_object_set(m->no_match, "margin", 12, NULL);
    gtk_style_context_add_class(gtk_widget_get_style_context(m->no_match), "dim-label");
    atk_object_set_name(gtk_widget_get_accessible(m->no_match), "No match");
    gtk_widget_set_no_show_all(m->no_match, TRUE);
    gtk_container_add(GTK_CONTAINER(left), m->no_match);
    gtk_container_add(GTK_CONTAINER(sw), m->list);
    gtk_container_add(GTK_CONTAINER(left), sw);
    gtk_paned_pack1(GTK_PANED(paned), left, FALSE, FALSE);

    m->stack = gtk_stack_new();
    gtk_stack_add_named(GTK_STACK(m->stack), build_empty(), "empty");
    gtk_stack_add_named(GTK_STACK(m->stack), build_details(m), "details");
    gtk_paned_pack2(GTK_PANED(paned), m->stack, TRUE, FALSE);
    m->top = gtk_stack_new();
    gtk_stack_add_named(GTK_STACK(m->top), paned, "vms");
    gtk_stack_add_named(GTK_STACK(m->top), build_welcome(), "welcome");
    /* A console shown in the main window takes the list's place. */
    m->console_page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_stack_add_named(GTK_STACK(m->top), m->console_page, "console");
    gtk_container_add(GTK_CONTAINER(m->window), m->top);
    add_shortcuts_window(m);
    g_signal_connect(m->window, "focus-in-event", G_CALLBACK(on_focus_in), m);
    g_signal_connect(m->window, "key-press-event", G_CALLBACK(on_key_press), m);

    char dir[BURROW_PATH_MAX];
    struct burrow_error err;
    if (paths_vms_dir(dir, sizeof(dir), &err) == 0 && mkdir_p(dir, 0700, &err) == 0)
        m->vms_monitor = watch_dir(dir, G_CALLBACK(vms_changed), m);
    if (paths_runtime_dir(dir, sizeof(dir), &err) == 0)
        m->run_monitor = watch_dir(dir, G_CALLBACK(run_changed), m);

    gtk_widget_show_all(m->window);
    manager_rescan(m);
    /* Arrow keys move in the list from the start; Ctrl+F searches. */
    GtkListBoxRow *sel = gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list));
    if (sel)
        gtk_widget_grab_focus(GTK_WIDGET(sel));
    return m;
}

void manager_free(struct manager *m)
{
    if (rescan_idle) {
        g_source_remove(rescan_idle);
        rescan_idle = 0;
    }
    console_close_all(m);
    g_hash_table_destroy(m->consoles);
    g_clear_object(&m->vms_monitor);
    g_clear_object(&m->run_monitor);
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, m->vms);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        g_hash_table_iter_steal(&it);
        vm_entry_free(val);
    }
    g_hash_table_destroy(m->vms);
    if (m->thumb_dir) {
        g_rmdir(m->thumb_dir);   /* empty: each thumbnail is removed once loaded */
        g_free(m->thumb_dir);
    }
    g_free(m);
}
