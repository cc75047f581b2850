/* The Settings dialog: every field of the definition, by section (general,
 * system, display, sound, storage, network), saved with the definition as it was
 * loaded: when someone else saved it meanwhile (the command line, say), the
 * save is refused and the dialog offers to reload, never overwriting their
 * change.  While the VM runs only the CD/DVD medium and the port forwards
 * can change; they are applied to the running VM too (and undone there if
 * the save fails).  The rest is shown but locked. */
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include "app/vmdef.h"
#include "gui/manager/manager.h"

/* One network adapter's page. */
struct nic_page {
    GtkWidget *enable, *model, *mac, *mac_msg;
    GtkWidget *fwd_view, *fwd_add, *fwd_edit, *fwd_remove;
    GtkListStore *fwd;           /* rule, protocol, host address, host port, guest address, guest port */
    char mac_random[18];         /* for an adapter that had none */
};

enum { FWD_RULE, FWD_PROTO, FWD_HADDR, FWD_HPORT, FWD_GADDR, FWD_GPORT, FWD_NCOLS };

struct settings {
    struct manager *m;
    char *name;
    bool running;
    struct burrow_vm *vm;        /* as loaded: the definition and its file's stamp */
    struct burrow_vmdef def;     /* disks edited here */
    GtkWidget *dialog, *stack;
    GtkWidget *os, *memory, *cpus, *boot;
    GtkWidget *display, *vnc_listen, *vnc_pw;
    GtkWidget *audio, *audio_in;
    GtkWidget *disks, *add_disk, *remove_disk;
    GtkWidget *cdrom, *cdrom_browse, *cdrom_eject, *cdrom_msg;
    GtkWidget *nics;             /* GtkNotebook, a page per adapter */
    struct nic_page nic[BURROW_MAX_NICS];
    GtkWidget *msg;
};

static GtkWidget *grid_new(void)
{
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 10);
    gtk_grid_set_column_spacing(GTK_GRID(g), 14);
    g_object_set(g, "margin", 18, NULL);
    return g;
}

static void set_acc_name(GtkWidget *w, const char *mnemonic)
{
    char *acc = g_strdup(mnemonic);
    char *p = strchr(acc, '_');
    if (p)
        memmove(p, p + 1, strlen(p));
    atk_object_set_name(gtk_widget_get_accessible(w), acc);
    g_free(acc);
}

/* A labelled row; target (NULL: w) is what the label names. */
static void add_row_for(GtkWidget *grid, int row, const char *mnemonic, GtkWidget *w, GtkWidget *target)
{
    if (!target)
        target = w;
    GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);
    gtk_label_set_xalign(GTK_LABEL(l), 1);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), target);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
    gtk_widget_set_valign(l, GTK_ALIGN_BASELINE);
    gtk_widget_set_hexpand(w, TRUE);
    set_acc_name(target, mnemonic);
    gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), w, 1, row, 1, 1);
}

static void add_row(GtkWidget *grid, int row, const char *mnemonic, GtkWidget *w)
{
    add_row_for(grid, row, mnemonic, w, NULL);
}

static GtkWidget *combo(const char *const *ids, const char *const *labels, const char *active)
{
    GtkWidget *c = gtk_combo_box_text_new();
    for (int i = 0; ids[i]; i++)
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(c), ids[i], labels[i]);
    if (!gtk_combo_box_set_active_id(GTK_COMBO_BOX(c), active))
        gtk_combo_box_set_active(GTK_COMBO_BOX(c), 0);
    return c;
}

static GtkWidget *entry(const char *text, const char *placeholder)
{
    GtkWidget *e = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(e), text);
    if (placeholder)
        gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
    return e;
}

/* A line under a field: a hint, or in red what is wrong with it. */
static GtkWidget *message_label(const char *acc)
{
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(l), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 50);
    atk_object_set_name(gtk_widget_get_accessible(l), acc);
    return l;
}

static void set_message(GtkWidget *label, const char *msg, bool error)
{
    char *markup = error ? g_markup_printf_escaped("<span foreground='#c01c28'>%s</span>", msg)
                         : g_markup_printf_escaped("<span alpha='70%%'>%s</span>", msg);
    gtk_label_set_markup(GTK_LABEL(label), markup);
    g_free(markup);
}

static void mark_locked(GtkWidget *w)
{
    g_object_set_data(G_OBJECT(w), "locked-if-running", GINT_TO_POINTER(1));
}

/* ---- storage --------------------------------------------------------------------------- */

static void fill_disks(struct settings *s)
{
    GtkListStore *st = GTK_LIST_STORE(gtk_tree_view_get_model(GTK_TREE_VIEW(s->disks)));
    gtk_list_store_clear(st);
    for (unsigned i = 0; i < s->def.ndisks; i++) {
        const struct burrow_disk *k = &s->def.disks[i];
        char *desc = g_strdup_printf("%s, %s%s", k->interface, k->format, k->readonly ? ", read-only" : "");
        gtk_list_store_insert_with_values(st, NULL, -1, 0, k->path, 1, desc, -1);
        g_free(desc);
    }
}

static void on_add_disk(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    if (s->def.ndisks >= BURROW_MAX_DISKS) {
        manager_error(s->m, GTK_WINDOW(s->dialog), "Cannot add a disk", "The VM has as many disks as it can have.");
        return;
    }
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Add a disk image", GTK_WINDOW(s->dialog),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, "_Add", "_Cancel");
    if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
        char *p = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
        if (p) {
            struct burrow_disk *k = &s->def.disks[s->def.ndisks++];
            memset(k, 0, sizeof(*k));
            snprintf(k->path, sizeof(k->path), "%s", p);
            const struct burrow_ostype *t = burrow_ostype_find(s->def.os);
            snprintf(k->interface, sizeof(k->interface), "%s", t ? t->disk_interface : "virtio");
            snprintf(k->format, sizeof(k->format), "%s", vmdef_detect_format(p));
            fill_disks(s);
        }
        g_free(p);
    }
    g_object_unref(fc);
}

static void on_remove_disk(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    GtkTreeModel *model;
    GtkTreeIter it;
    if (!gtk_tree_selection_get_selected(gtk_tree_view_get_selection(GTK_TREE_VIEW(s->disks)), &model, &it))
        return;
    GtkTreePath *path = gtk_tree_model_get_path(model, &it);
    int i = gtk_tree_path_get_indices(path)[0];
    gtk_tree_path_free(path);
    if (i < 0 || (unsigned)i >= s->def.ndisks)
        return;
    memmove(&s->def.disks[i], &s->def.disks[i + 1], (s->def.ndisks - (unsigned)i - 1) * sizeof(s->def.disks[0]));
    s->def.ndisks--;
    fill_disks(s);
}

/* The CD/DVD image must be a file that exists, named by its absolute path
 * (burrow-vm runs from another folder); empty is an empty drive.  Returns
 * the problem, or NULL. */
static const char *cdrom_problem(const char *p)
{
    struct stat st;
    if (!p[0])
        return NULL;
    if (p[0] != '/')
        return "Give the image's full path, starting with / (or choose it with Browse).";
    if (stat(p, &st) < 0)
        return "No such file.";
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return "That is not a file.";
    if (access(p, R_OK) < 0)
        return "That file cannot be read.";
    return NULL;
}

static bool check_cdrom(struct settings *s)
{
    const char *p = gtk_entry_get_text(GTK_ENTRY(s->cdrom));
    const char *why = cdrom_problem(p);
    if (why)
        set_message(s->cdrom_msg, why, true);
    else
        set_message(s->cdrom_msg, p[0] ? "Inserted in the CD/DVD drive." : "The drive is empty.", false);
    gtk_widget_set_sensitive(s->cdrom_eject, p[0] != '\0');
    return why == NULL;
}

static void on_cdrom_changed(GtkEditable *e, gpointer data)
{
    check_cdrom(data);
}

static void on_cdrom_browse(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Choose a CD/DVD image", GTK_WINDOW(s->dialog),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, "_Insert", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "CD/DVD images (*.iso)");
    gtk_file_filter_add_pattern(f, "*.iso");
    gtk_file_filter_add_pattern(f, "*.ISO");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
    GtkFileFilter *all = gtk_file_filter_new();
    gtk_file_filter_set_name(all, "All files");
    gtk_file_filter_add_pattern(all, "*");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), all);
    const char *cur = gtk_entry_get_text(GTK_ENTRY(s->cdrom));
    if (cur[0] == '/' && access(cur, F_OK) == 0)
        gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(fc), cur);
    if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
        char *p = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
        if (p)
            gtk_entry_set_text(GTK_ENTRY(s->cdrom), p);
        g_free(p);
    }
    g_object_unref(fc);
}

static void on_cdrom_eject(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    gtk_entry_set_text(GTK_ENTRY(s->cdrom), "");
}

/* ---- port forwards ------------------------------------------------------------------------ */

/* The parts of a rule "tcp:HADDR:HPORT-GADDR:GPORT" (valid, as
 * vmdef_hostfwd_valid says). */
struct fwd {
    char proto[4];
    char haddr[64], hport[8], gaddr[64], gport[8];
};

static bool fwd_parse(const char *rule, struct fwd *f)
{
    memset(f, 0, sizeof(*f));
    if (!vmdef_hostfwd_valid(rule))
        return false;
    snprintf(f->proto, sizeof(f->proto), "%.3s", rule);
    const char *p = rule + 4, *c1 = strchr(p, ':'), *dash = strchr(p, '-');
    const char *g = dash + 1, *c2 = strrchr(g, ':');
    snprintf(f->haddr, sizeof(f->haddr), "%.*s", (int)(c1 - p), p);
    snprintf(f->hport, sizeof(f->hport), "%.*s", (int)(dash - c1 - 1), c1 + 1);
    snprintf(f->gaddr, sizeof(f->gaddr), "%.*s", (int)(c2 - g), g);
    snprintf(f->gport, sizeof(f->gport), "%s", c2 + 1);
    return true;
}

static void fwd_store_set(GtkListStore *st, GtkTreeIter *it, const char *rule)
{
    struct fwd f;
    fwd_parse(rule, &f);
    gtk_list_store_set(st, it, FWD_RULE, rule, FWD_PROTO, !strcmp(f.proto, "udp") ? "UDP" : "TCP",
                       /* burrow-vm's default host address: this computer only */
                       FWD_HADDR, f.haddr[0] ? f.haddr : "127.0.0.1", FWD_HPORT, f.hport,
                       FWD_GADDR, f.gaddr[0] ? f.gaddr : "the guest", FWD_GPORT, f.gport, -1);
}

/* The rules in a page's table, in order. */
static GPtrArray *fwd_rules(struct nic_page *np)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    GtkTreeIter it;
    for (gboolean ok = gtk_tree_model_get_iter_first(GTK_TREE_MODEL(np->fwd), &it); ok;
         ok = gtk_tree_model_iter_next(GTK_TREE_MODEL(np->fwd), &it)) {
        char *rule;
        gtk_tree_model_get(GTK_TREE_MODEL(np->fwd), &it, FWD_RULE, &rule, -1);
        g_ptr_array_add(a, rule);
    }
    return a;
}

/* The forward being added or edited. */
struct fwd_dialog {
    struct settings *s;
    int nic;
    GtkTreeRowReference *row;    /* NULL: a new one */
    GtkWidget *dialog, *proto, *haddr, *hport, *gaddr, *gport, *msg, *ok;
};

static bool port_ok(const char *t)
{
    if (!t[0] || strlen(t) > 5)
        return false;
    for (const char *p = t; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    long v = strtol(t, NULL, 10);
    return v >= 1 && v <= 65535;
}

static bool ipv4_ok(const char *t)
{
    struct in_addr a;
    return !t[0] || inet_pton(AF_INET, t, &a) == 1;
}

/* The rule the dialog's fields make, and whether it can be saved (why not
 * in why). */
static char *fwd_dialog_rule(struct fwd_dialog *fd, const char **why)
{
    const char *proto = gtk_combo_box_get_active_id(GTK_COMBO_BOX(fd->proto));
    const char *haddr = gtk_entry_get_text(GTK_ENTRY(fd->haddr));
    const char *hport = gtk_entry_get_text(GTK_ENTRY(fd->hport));
    const char *gaddr = gtk_entry_get_text(GTK_ENTRY(fd->gaddr));
    const char *gport = gtk_entry_get_text(GTK_ENTRY(fd->gport));
    *why = NULL;
    if (!ipv4_ok(haddr))
        *why = "The host address is not an IPv4 address (like 127.0.0.1; 0.0.0.0 is every address).";
    else if (!port_ok(hport))
        *why = hport[0] ? "The host port must be a number from 1 to 65535." : "Give the host port.";
    else if (!ipv4_ok(gaddr))
        *why = "The guest address is not an IPv4 address (leave it empty for the guest's own).";
    else if (!port_ok(gport))
        *why = gport[0] ? "The guest port must be a number from 1 to 65535." : "Give the guest port.";
    if (*why)
        return NULL;
    char *rule = g_strdup_printf("%s:%s:%s-%s:%s", proto ? proto : "tcp", haddr, hport, gaddr, gport);
    /* No two forwards of one host port, on any adapter. */
    GtkTreePath *self = fd->row ? gtk_tree_row_reference_get_path(fd->row) : NULL;
    for (int i = 0; i < BURROW_MAX_NICS && !*why; i++) {
        struct nic_page *np = &fd->s->nic[i];
        if (!np->fwd || (i != fd->nic && !gtk_switch_get_active(GTK_SWITCH(np->enable))))
            continue;
        GtkTreeIter it;
        for (gboolean ok = gtk_tree_model_get_iter_first(GTK_TREE_MODEL(np->fwd), &it); ok && !*why;
             ok = gtk_tree_model_iter_next(GTK_TREE_MODEL(np->fwd), &it)) {
            if (self && i == fd->nic) {
                GtkTreePath *p = gtk_tree_model_get_path(GTK_TREE_MODEL(np->fwd), &it);
                bool same = gtk_tree_path_compare(p, self) == 0;
                gtk_tree_path_free(p);
                if (same)
                    continue;
            }
            char *other;
            gtk_tree_model_get(GTK_TREE_MODEL(np->fwd), &it, FWD_RULE, &other, -1);
            if (vmdef_hostfwd_clash(rule, other))
                *why = i == fd->nic ? "That host port is forwarded already."
                                    : "That host port is forwarded already, by another adapter.";
            g_free(other);
        }
    }
    if (self)
        gtk_tree_path_free(self);
    if (*why) {
        g_free(rule);
        return NULL;
    }
    return rule;
}

static void fwd_dialog_check(struct fwd_dialog *fd)
{
    const char *why;
    char *rule = fwd_dialog_rule(fd, &why);
    if (rule) {
        char *text = g_strdup_printf("Connections to port %s of %s reach port %s of the guest.",
                                     gtk_entry_get_text(GTK_ENTRY(fd->hport)),
                                     gtk_entry_get_text(GTK_ENTRY(fd->haddr))[0]
                                         ? gtk_entry_get_text(GTK_ENTRY(fd->haddr)) : "127.0.0.1",
                                     gtk_entry_get_text(GTK_ENTRY(fd->gport)));
        set_message(fd->msg, text, false);
        g_free(text);
    } else {
        set_message(fd->msg, why, true);
    }
    gtk_widget_set_sensitive(fd->ok, rule != NULL);
    g_free(rule);
}

static void on_fwd_field_changed(GtkWidget *w, gpointer data)
{
    fwd_dialog_check(data);
}

static void fwd_update_buttons(struct nic_page *np)
{
    bool sel = gtk_tree_selection_count_selected_rows(gtk_tree_view_get_selection(GTK_TREE_VIEW(np->fwd_view))) > 0;
    bool on = gtk_widget_is_sensitive(np->fwd_view);
    gtk_widget_set_sensitive(np->fwd_edit, on && sel);
    gtk_widget_set_sensitive(np->fwd_remove, on && sel);
    int n = gtk_tree_model_iter_n_children(GTK_TREE_MODEL(np->fwd), NULL);
    gtk_widget_set_sensitive(np->fwd_add, on && n < BURROW_MAX_HOSTFWD);
}

static void fwd_dialog_response(GtkDialog *d, int response, gpointer data)
{
    struct fwd_dialog *fd = data;
    if (response == GTK_RESPONSE_OK) {
        const char *why;
        char *rule = fwd_dialog_rule(fd, &why);
        if (!rule)
            return;   /* OK is insensitive then; Enter may still get here */
        struct nic_page *np = &fd->s->nic[fd->nic];
        GtkTreeIter it;
        GtkTreePath *p = fd->row ? gtk_tree_row_reference_get_path(fd->row) : NULL;
        if (p && gtk_tree_model_get_iter(GTK_TREE_MODEL(np->fwd), &it, p)) {
            fwd_store_set(np->fwd, &it, rule);
        } else {
            gtk_list_store_append(np->fwd, &it);
            fwd_store_set(np->fwd, &it, rule);
        }
        gtk_tree_selection_select_iter(gtk_tree_view_get_selection(GTK_TREE_VIEW(np->fwd_view)), &it);
        if (p)
            gtk_tree_path_free(p);
        g_free(rule);
        fwd_update_buttons(np);
    }
    gtk_widget_destroy(GTK_WIDGET(d));
}

static void fwd_dialog_free(gpointer data, GClosure *c)
{
    struct fwd_dialog *fd = data;
    if (fd->row)
        gtk_tree_row_reference_free(fd->row);
    g_free(fd);
}

static GtkWidget *port_entry(const char *text)
{
    GtkWidget *e = entry(text, NULL);
    gtk_entry_set_input_purpose(GTK_ENTRY(e), GTK_INPUT_PURPOSE_DIGITS);
    gtk_entry_set_max_length(GTK_ENTRY(e), 5);
    gtk_entry_set_width_chars(GTK_ENTRY(e), 6);
    return e;
}

/* Add (row NULL) or edit a forward of adapter nic. */
static void fwd_dialog_show(struct settings *s, int nic, GtkTreeIter *row)
{
    struct nic_page *np = &s->nic[nic];
    struct fwd_dialog *fd = g_new0(struct fwd_dialog, 1);
    fd->s = s;
    fd->nic = nic;
    struct fwd f = { .proto = "tcp", .haddr = "127.0.0.1" };
    if (row) {
        GtkTreePath *p = gtk_tree_model_get_path(GTK_TREE_MODEL(np->fwd), row);
        fd->row = gtk_tree_row_reference_new(GTK_TREE_MODEL(np->fwd), p);
        gtk_tree_path_free(p);
        char *rule;
        gtk_tree_model_get(GTK_TREE_MODEL(np->fwd), row, FWD_RULE, &rule, -1);
        fwd_parse(rule, &f);
        g_free(rule);
    }
    const char *title = row ? "Edit port forward" : "Add port forward";
    fd->dialog = gtk_dialog_new_with_buttons(title, GTK_WINDOW(s->dialog),
                                             GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT |
                                             GTK_DIALOG_USE_HEADER_BAR,
                                             "_Cancel", GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    atk_object_set_name(gtk_widget_get_accessible(fd->dialog), "Port forward");
    fd->ok = gtk_dialog_get_widget_for_response(GTK_DIALOG(fd->dialog), GTK_RESPONSE_OK);
    gtk_style_context_add_class(gtk_widget_get_style_context(fd->ok), "suggested-action");
    gtk_dialog_set_default_response(GTK_DIALOG(fd->dialog), GTK_RESPONSE_OK);
    GtkWidget *g = grid_new();
    static const char *const proto_ids[] = { "tcp", "udp", NULL };
    static const char *const proto_labels[] = { "TCP", "UDP", NULL };
    fd->proto = combo(proto_ids, proto_labels, f.proto);
    add_row(g, 0, "_Protocol", fd->proto);
    fd->haddr = entry(f.haddr, "127.0.0.1 (this computer only)");
    add_row(g, 1, "Host _address", fd->haddr);
    fd->hport = port_entry(f.hport);
    add_row(g, 2, "_Host port", fd->hport);
    fd->gaddr = entry(f.gaddr, "10.0.2.15 (the guest)");
    add_row(g, 3, "G_uest address", fd->gaddr);
    fd->gport = port_entry(f.gport);
    add_row(g, 4, "_Guest port", fd->gport);
    fd->msg = message_label("Forward check");
    gtk_grid_attach(GTK_GRID(g), fd->msg, 0, 5, 2, 1);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(fd->dialog))), g);
    for (GtkWidget **w = (GtkWidget *[]){ fd->haddr, fd->hport, fd->gaddr, fd->gport, NULL }; *w; w++) {
        gtk_entry_set_activates_default(GTK_ENTRY(*w), TRUE);
        g_signal_connect(*w, "changed", G_CALLBACK(on_fwd_field_changed), fd);
    }
    g_signal_connect(fd->proto, "changed", G_CALLBACK(on_fwd_field_changed), fd);
    g_signal_connect_data(fd->dialog, "response", G_CALLBACK(fwd_dialog_response), fd, fwd_dialog_free, 0);
    fwd_dialog_check(fd);
    gtk_widget_show_all(fd->dialog);
    gtk_widget_grab_focus(fd->hport);
}

static int button_nic(GtkWidget *b)
{
    return GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "nic"));
}

static void on_fwd_add(GtkWidget *b, gpointer data)
{
    fwd_dialog_show(data, button_nic(b), NULL);
}

static void on_fwd_edit(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    struct nic_page *np = &s->nic[button_nic(b)];
    GtkTreeIter it;
    if (gtk_tree_selection_get_selected(gtk_tree_view_get_selection(GTK_TREE_VIEW(np->fwd_view)), NULL, &it))
        fwd_dialog_show(s, button_nic(b), &it);
}

static void on_fwd_activated(GtkTreeView *v, GtkTreePath *p, GtkTreeViewColumn *c, gpointer data)
{
    struct settings *s = data;
    int nic = button_nic(GTK_WIDGET(v));
    GtkTreeIter it;
    if (gtk_widget_is_sensitive(GTK_WIDGET(v)) && gtk_tree_model_get_iter(GTK_TREE_MODEL(s->nic[nic].fwd), &it, p))
        fwd_dialog_show(s, nic, &it);
}

static void on_fwd_remove(GtkWidget *b, gpointer data)
{
    struct settings *s = data;
    struct nic_page *np = &s->nic[button_nic(b)];
    GtkTreeIter it;
    if (gtk_tree_selection_get_selected(gtk_tree_view_get_selection(GTK_TREE_VIEW(np->fwd_view)), NULL, &it))
        gtk_list_store_remove(np->fwd, &it);
    fwd_update_buttons(np);
}

static void on_fwd_selection(GtkTreeSelection *sel, gpointer data)
{
    fwd_update_buttons(data);
}

/* ---- network adapters ---------------------------------------------------------------------- */

static bool check_mac(struct nic_page *np)
{
    const char *mac = gtk_entry_get_text(GTK_ENTRY(np->mac));
    bool ok = !mac[0] || vmdef_mac_valid(mac);
    set_message(np->mac_msg, ok ? (mac[0] ? "" : "A random address is given on saving.")
                                : "Not a MAC address of one adapter (like 52:54:00:12:34:56).", !ok);
    return ok;
}

static void on_mac_changed(GtkEditable *e, gpointer data)
{
    check_mac(data);
}

static void nic_sensitivity(struct settings *s, int i)
{
    struct nic_page *np = &s->nic[i];
    bool on = gtk_switch_get_active(GTK_SWITCH(np->enable));
    /* While the VM runs, its adapters stay as they are; their forwards
     * can still change. */
    bool hw = on && !s->running;
    gtk_widget_set_sensitive(np->model, hw);
    gtk_widget_set_sensitive(np->mac, hw);
    gtk_widget_set_sensitive(np->fwd_view, on);
    fwd_update_buttons(np);
}

static void on_nic_switch(GObject *sw, GParamSpec *ps, gpointer data)
{
    struct settings *s = data;
    nic_sensitivity(s, GPOINTER_TO_INT(g_object_get_data(sw, "nic")));
}

static GtkWidget *build_nic_page(struct settings *s, int i)
{
    struct nic_page *np = &s->nic[i];
    const struct burrow_vmdef *d = burrow_vm_def(s->vm);
    const struct burrow_nic *n = (unsigned)i < d->nnics ? &d->nics[i] : NULL;
    const struct burrow_ostype *t = burrow_ostype_find(d->os);
    GtkWidget *g = grid_new();
    np->enable = gtk_switch_new();
    gtk_switch_set_active(GTK_SWITCH(np->enable), n != NULL);
    gtk_widget_set_halign(np->enable, GTK_ALIGN_START);
    g_object_set_data(G_OBJECT(np->enable), "nic", GINT_TO_POINTER(i));
    add_row(g, 0, "_Enabled (NAT)", np->enable);
    gtk_widget_set_hexpand(np->enable, FALSE);
    mark_locked(np->enable);
    static const char *const nic_ids[] = { "virtio", "e1000", NULL };
    static const char *const nic_labels[] = { "virtio-net (paravirtual)", "Intel e1000", NULL };
    np->model = combo(nic_ids, nic_labels, n ? n->model : t ? t->nic_model : "virtio");
    add_row(g, 1, "Adapter _model", np->model);
    np->mac = entry(n ? n->mac : "", "random");
    add_row(g, 2, "_MAC address", np->mac);
    np->mac_msg = message_label("MAC check");
    gtk_grid_attach(GTK_GRID(g), np->mac_msg, 1, 3, 1, 1);

    np->fwd = gtk_list_store_new(FWD_NCOLS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING,
                                 G_TYPE_STRING, G_TYPE_STRING);
    for (unsigned j = 0; n && j < n->nhostfwd; j++) {
        GtkTreeIter it;
        gtk_list_store_append(np->fwd, &it);
        fwd_store_set(np->fwd, &it, n->hostfwd[j]);
    }
    np->fwd_view = gtk_tree_view_new_with_model(GTK_TREE_MODEL(np->fwd));
    g_object_unref(np->fwd);
    static const char *const heads[] = { NULL, "Protocol", "Host address", "Host port", "Guest address",
                                         "Guest port" };
    for (int c = FWD_PROTO; c < FWD_NCOLS; c++)
        gtk_tree_view_append_column(GTK_TREE_VIEW(np->fwd_view),
            gtk_tree_view_column_new_with_attributes(heads[c], gtk_cell_renderer_text_new(), "text", c, NULL));
    atk_object_set_name(gtk_widget_get_accessible(np->fwd_view), "Port forwards");
    g_object_set_data(G_OBJECT(np->fwd_view), "nic", GINT_TO_POINTER(i));
    g_signal_connect(np->fwd_view, "row-activated", G_CALLBACK(on_fwd_activated), s);
    g_signal_connect(gtk_tree_view_get_selection(GTK_TREE_VIEW(np->fwd_view)), "changed",
                     G_CALLBACK(on_fwd_selection), np);
    GtkWidget *fsw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(fsw), GTK_SHADOW_IN);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(fsw), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_size_request(fsw, -1, 120);
    gtk_widget_set_vexpand(fsw, TRUE);
    gtk_container_add(GTK_CONTAINER(fsw), np->fwd_view);
    GtkWidget *fl = gtk_label_new_with_mnemonic("_Port forwards");
    gtk_label_set_mnemonic_widget(GTK_LABEL(fl), np->fwd_view);
    gtk_label_set_xalign(GTK_LABEL(fl), 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(fl), "dim-label");
    gtk_grid_attach(GTK_GRID(g), fl, 0, 4, 2, 1);
    gtk_grid_attach(GTK_GRID(g), fsw, 0, 5, 2, 1);
    GtkWidget *bb = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    np->fwd_add = gtk_button_new_with_mnemonic("_Add…");
    np->fwd_edit = gtk_button_new_with_mnemonic("_Edit…");
    np->fwd_remove = gtk_button_new_with_mnemonic("_Remove");
    atk_object_set_name(gtk_widget_get_accessible(np->fwd_add), "Add forward");
    atk_object_set_name(gtk_widget_get_accessible(np->fwd_edit), "Edit forward");
    atk_object_set_name(gtk_widget_get_accessible(np->fwd_remove), "Remove forward");
    for (GtkWidget **b = (GtkWidget *[]){ np->fwd_add, np->fwd_edit, np->fwd_remove, NULL }; *b; b++) {
        g_object_set_data(G_OBJECT(*b), "nic", GINT_TO_POINTER(i));
        gtk_container_add(GTK_CONTAINER(bb), *b);
    }
    g_signal_connect(np->fwd_add, "clicked", G_CALLBACK(on_fwd_add), s);
    g_signal_connect(np->fwd_edit, "clicked", G_CALLBACK(on_fwd_edit), s);
    g_signal_connect(np->fwd_remove, "clicked", G_CALLBACK(on_fwd_remove), s);
    gtk_grid_attach(GTK_GRID(g), bb, 0, 6, 2, 1);
    GtkWidget *hint = message_label("Forwards hint");
    set_message(hint, s->running ? "Changes to the forwards apply to the running VM at once when saved."
                                 : "A forward makes a port of this computer reach a port of the guest.",
                false);
    gtk_grid_attach(GTK_GRID(g), hint, 0, 7, 2, 1);

    g_signal_connect(np->mac, "changed", G_CALLBACK(on_mac_changed), np);
    g_signal_connect(np->enable, "notify::active", G_CALLBACK(on_nic_switch), s);
    check_mac(np);
    return g;
}

/* ---- sound ----------------------------------------------------------------------------- */

/* No microphone without a sound card. */
static void audio_sensitivity(struct settings *s)
{
    bool card = strcmp(gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->audio)), "off") != 0;
    if (!card)
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->audio_in), FALSE);
    gtk_widget_set_sensitive(s->audio_in, card && !s->running);
}

static void on_audio_changed(GtkComboBox *c, gpointer data)
{
    audio_sensitivity(data);
}

static GtkWidget *build_sound_page(struct settings *s)
{
    const struct burrow_vmdef *d = &s->def;
    GtkWidget *g = grid_new();
    static const char *const ids[] = { "pa", "none", "off", NULL };
    static const char *const labels[] = { "This desktop's sound (PulseAudio)", "A sound card that plays nothing",
                                          "Off (no sound card)", NULL };
    s->audio = combo(ids, labels, d->audio);
    add_row(g, 0, "_Sound card", s->audio);
    s->audio_in = gtk_check_button_new_with_mnemonic("Let the guest record from this desktop's _microphone");
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(s->audio_in), d->audio_in);
    atk_object_set_name(gtk_widget_get_accessible(s->audio_in), "Microphone");
    gtk_grid_attach(GTK_GRID(g), s->audio_in, 1, 1, 1, 1);
    GtkWidget *hint = message_label("Sound hint");
    set_message(hint, "The microphone is used only while the guest records; the list shows a microphone "
                      "by the VM then.", false);
    gtk_grid_attach(GTK_GRID(g), hint, 1, 2, 1, 1);
    mark_locked(s->audio);
    mark_locked(s->audio_in);
    g_signal_connect(s->audio, "changed", G_CALLBACK(on_audio_changed), s);
    return g;
}

/* ---- saving ----------------------------------------------------------------------------- */

static bool collect(struct settings *s, struct burrow_vmdef *n, struct burrow_error *err)
{
    *n = s->def;
    snprintf(n->os, sizeof(n->os), "%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->os)));
    n->memory_mib = (unsigned)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->memory));
    n->cpus = (unsigned)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->cpus));
    const char *boot = gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->boot));
    snprintf(n->boot, sizeof(n->boot), "%s", strcmp(boot, "default") ? boot : "");
    snprintf(n->display, sizeof(n->display), "%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->display)));
    snprintf(n->vnc_listen, sizeof(n->vnc_listen), "%s", gtk_entry_get_text(GTK_ENTRY(s->vnc_listen)));
    snprintf(n->vnc_password_file, sizeof(n->vnc_password_file), "%s", gtk_entry_get_text(GTK_ENTRY(s->vnc_pw)));
    snprintf(n->audio, sizeof(n->audio), "%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->audio)));
    n->audio_in = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(s->audio_in));
    const char *cd = gtk_entry_get_text(GTK_ENTRY(s->cdrom));
    const char *why = cdrom_problem(cd);
    if (why) {
        burrow_error_set(err, "CD/DVD image “%s”: %c%s", cd, g_ascii_tolower(why[0]), why + 1);
        gtk_stack_set_visible_child_name(GTK_STACK(s->stack), "storage");
        return false;
    }
    snprintf(n->cdrom, sizeof(n->cdrom), "%s", cd);
    const struct burrow_vmdef *old = burrow_vm_def(s->vm);
    n->nnics = 0;
    for (int i = 0; i < BURROW_MAX_NICS; i++) {
        struct nic_page *np = &s->nic[i];
        if (!gtk_switch_get_active(GTK_SWITCH(np->enable)))
            continue;
        if (!check_mac(np)) {
            burrow_error_set(err, "Adapter %d: the MAC address is not valid", i + 1);
            gtk_stack_set_visible_child_name(GTK_STACK(s->stack), "network");
            gtk_notebook_set_current_page(GTK_NOTEBOOK(s->nics), i);
            return false;
        }
        struct burrow_nic *k = &n->nics[n->nnics++];
        memset(k, 0, sizeof(*k));
        if ((unsigned)i < old->nnics)
            *k = old->nics[i];
        else
            snprintf(k->mode, sizeof(k->mode), "user");
        snprintf(k->model, sizeof(k->model), "%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(np->model)));
        snprintf(k->mac, sizeof(k->mac), "%s", gtk_entry_get_text(GTK_ENTRY(np->mac)));
        if (!k->mac[0]) {
            if (!np->mac_random[0])
                vmdef_random_mac(np->mac_random);
            snprintf(k->mac, sizeof(k->mac), "%s", np->mac_random);
        }
        GPtrArray *rules = fwd_rules(np);
        k->nhostfwd = 0;
        for (guint j = 0; j < rules->len && j < BURROW_MAX_HOSTFWD; j++)
            snprintf(k->hostfwd[k->nhostfwd++], sizeof(k->hostfwd[0]), "%s", (char *)rules->pdata[j]);
        g_ptr_array_free(rules, TRUE);
    }
    return burrow_vmdef_validate(n, err) == 0;
}

/* What was done to the running VM, to undo if the save fails. */
struct live_op {
    const char *command;         /* "hostfwd-add", "hostfwd-remove", "cdrom" */
    int nic;
    char arg[BURROW_PATH_MAX];   /* the rule, or the medium before ("" empty) */
};

static int live_command(struct settings *s, const char *command, json_t *args, struct burrow_error *err)
{
    int rc = burrow_vm_command(s->vm, command, args, NULL, err);
    json_decref(args);
    return rc;
}

static int live_cdrom(struct settings *s, const char *path, struct burrow_error *err)
{
    if (path[0])
        return live_command(s, "change-media", json_pack("{s:s,s:s}", "device", "cdrom", "path", path), err);
    return live_command(s, "eject", json_pack("{s:s,s:b}", "device", "cdrom", "force", 1), err);
}

static int live_fwd(struct settings *s, bool add, int nic, const char *rule, struct burrow_error *err)
{
    return live_command(s, add ? "hostfwd-add" : "hostfwd-remove", json_pack("{s:s,s:i}", "rule", rule, "nic", nic),
                        err);
}

static void live_undo(struct settings *s, GArray *done)
{
    for (guint i = done->len; i-- > 0;) {
        struct live_op *op = &g_array_index(done, struct live_op, i);
        struct burrow_error err;
        int rc = !strcmp(op->command, "cdrom") ? live_cdrom(s, op->arg, &err)
                                               : live_fwd(s, !strcmp(op->command, "hostfwd-remove"), op->nic,
                                                          op->arg, &err);
        if (rc < 0)
            g_warning("%s: undoing %s: %s", s->name, op->command, err.msg);
    }
    g_array_set_size(done, 0);
}

static bool has_rule(const struct burrow_nic *n, const char *rule)
{
    for (unsigned j = 0; j < n->nhostfwd; j++)
        if (!strcmp(n->hostfwd[j], rule))
            return true;
    return false;
}

/* Applies the medium and the forwards to the running VM: removed forwards
 * first (an edited one may keep its port), then the new ones.  A forward
 * removed from the definition that the VM no longer has is no error. */
static int live_apply(struct settings *s, const struct burrow_vmdef *n, GArray *done, struct burrow_error *err)
{
    const struct burrow_vmdef *old = burrow_vm_def(s->vm);
    struct live_op op;
    if (strcmp(n->cdrom, old->cdrom)) {
        if (live_cdrom(s, n->cdrom, err) < 0)
            return -1;
        memset(&op, 0, sizeof(op));
        op.command = "cdrom";
        snprintf(op.arg, sizeof(op.arg), "%s", old->cdrom);
        g_array_append_val(done, op);
    }
    for (unsigned i = 0; i < old->nnics && i < n->nnics; i++)
        for (unsigned j = 0; j < old->nics[i].nhostfwd; j++) {
            const char *rule = old->nics[i].hostfwd[j];
            struct burrow_error ignored;
            if (has_rule(&n->nics[i], rule) || live_fwd(s, false, (int)i, rule, &ignored) < 0)
                continue;
            memset(&op, 0, sizeof(op));
            op.command = "hostfwd-remove";
            op.nic = (int)i;
            snprintf(op.arg, sizeof(op.arg), "%s", rule);
            g_array_append_val(done, op);
        }
    for (unsigned i = 0; i < old->nnics && i < n->nnics; i++)
        for (unsigned j = 0; j < n->nics[i].nhostfwd; j++) {
            const char *rule = n->nics[i].hostfwd[j];
            if (has_rule(&old->nics[i], rule))
                continue;
            if (live_fwd(s, true, (int)i, rule, err) < 0) {
                struct fwd f;
                fwd_parse(rule, &f);
                struct burrow_error why = *err;
                burrow_error_set(err, "The running VM cannot forward host port %s: %s", f.hport, why.msg);
                return -1;
            }
            memset(&op, 0, sizeof(op));
            op.command = "hostfwd-add";
            op.nic = (int)i;
            snprintf(op.arg, sizeof(op.arg), "%s", rule);
            g_array_append_val(done, op);
        }
    return 0;
}

static void show_problem(struct settings *s, const char *msg)
{
    set_message(s->msg, msg, true);
}

static void settings_open(struct manager *m, const char *name, const char *page);

static void conflict_response(GtkDialog *d, int response, gpointer data)
{
    struct settings *s = data;
    gtk_widget_destroy(GTK_WIDGET(d));
    if (response != GTK_RESPONSE_ACCEPT)
        return;
    /* The settings as saved elsewhere, in a fresh dialog on the same page. */
    struct manager *m = s->m;
    char *name = g_strdup(s->name);
    char *page = g_strdup(gtk_stack_get_visible_child_name(GTK_STACK(s->stack)));
    gtk_widget_destroy(s->dialog);
    struct vm_entry *e = g_hash_table_lookup(m->vms, name);
    if (e) {
        vm_entry_reload(e);
        manager_entry_changed(m, e);
    }
    settings_open(m, name, page);
    g_free(name);
    g_free(page);
}

/* Someone else saved the definition since this dialog read it: nothing is
 * overwritten; the user reloads or goes back to their changes. */
static void show_conflict(struct settings *s)
{
    char *n = manager_short_name(s->name);
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(s->dialog), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE, "“%s” was changed elsewhere", n);
    g_free(n);
    gtk_window_set_title(GTK_WINDOW(d), "Changed elsewhere");
    atk_object_set_name(gtk_widget_get_accessible(d), "Changed elsewhere");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
        "Another program (the command line, say) saved this VM's settings while this window was open. "
        "Saving now would undo that change, so nothing was saved.\n\n"
        "Reload shows the settings as they are now; the changes made here are dropped. "
        "Cancel goes back to them.");
    gtk_dialog_add_button(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL);
    GtkWidget *reload = gtk_dialog_add_button(GTK_DIALOG(d), "_Reload", GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(reload), "suggested-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
    g_signal_connect(d, "response", G_CALLBACK(conflict_response), s);
    gtk_widget_show(d);
}

static void save(struct settings *s)
{
    struct burrow_vmdef n;
    struct burrow_error err;
    if (!collect(s, &n, &err)) {
        show_problem(s, err.msg);   /* the dialog stays open to fix it */
        return;
    }
    if (burrow_vm_stale(s->vm)) {
        show_conflict(s);
        return;
    }
    GArray *done = g_array_new(FALSE, TRUE, sizeof(struct live_op));
    if (s->running && live_apply(s, &n, done, &err) < 0) {
        live_undo(s, done);
        g_array_free(done, TRUE);
        show_problem(s, err.msg);
        return;
    }
    struct burrow_vmdef *d = burrow_vm_def(s->vm);
    struct burrow_vmdef before = *d;
    snprintf(n.name, sizeof(n.name), "%s", before.name);
    snprintf(n.uuid, sizeof(n.uuid), "%s", before.uuid);
    *d = n;
    if (burrow_vm_save(s->vm, &err) < 0) {
        *d = before;
        live_undo(s, done);
        g_array_free(done, TRUE);
        if (!strcmp(err.cls, "conflict"))
            show_conflict(s);
        else
            show_problem(s, err.msg);
        return;
    }
    g_array_free(done, TRUE);
    struct vm_entry *e = g_hash_table_lookup(s->m->vms, s->name);
    if (e) {
        vm_entry_reload(e);
        manager_entry_changed(s->m, e);
    }
    gtk_widget_destroy(s->dialog);
}

static void on_response(GtkDialog *d, int response, gpointer data)
{
    struct settings *s = data;
    if (response == GTK_RESPONSE_ACCEPT)
        save(s);
    else
        gtk_widget_destroy(GTK_WIDGET(d));
}

static void on_destroy(GtkWidget *w, gpointer data)
{
    struct settings *s = data;
    if (s->vm)
        burrow_vm_free(s->vm);
    g_free(s->name);
    g_free(s);
}

static void lock_running(GtkWidget *w, gpointer data)
{
    struct settings *s = data;
    if (GTK_IS_CONTAINER(w) && !GTK_IS_COMBO_BOX(w) && !GTK_IS_SPIN_BUTTON(w) && !GTK_IS_ENTRY(w))
        gtk_container_foreach(GTK_CONTAINER(w), lock_running, s);
    if (g_object_get_data(G_OBJECT(w), "locked-if-running"))
        gtk_widget_set_sensitive(w, FALSE);
}

/* ---- the dialog ----------------------------------------------------------------------------- */

static void settings_open(struct manager *m, const char *name, const char *page)
{
    struct vm_entry *e = g_hash_table_lookup(m->vms, name);
    if (!e)
        return;
    struct settings *s = g_new0(struct settings, 1);
    s->m = m;
    s->name = g_strdup(e->name);
    s->running = vm_entry_is_running(e);
    struct burrow_error err;
    s->vm = burrow_vm_load(e->name, &err);
    if (!s->vm) {
        manager_error(m, NULL, "Cannot read the settings", err.msg);
        g_free(s->name);
        g_free(s);
        return;
    }
    s->def = *burrow_vm_def(s->vm);
    const struct burrow_vmdef *d = &s->def;

    char *short_name = manager_short_name(d->name);
    char *title = g_strdup_printf("%s — Settings", short_name);
    g_free(short_name);
    s->dialog = gtk_dialog_new_with_buttons(title, GTK_WINDOW(m->window),
                                            GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT | GTK_DIALOG_USE_HEADER_BAR,
                                            "_Cancel", GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_ACCEPT, NULL);
    atk_object_set_name(gtk_widget_get_accessible(s->dialog), title);
    g_free(title);
    gtk_window_set_default_size(GTK_WINDOW(s->dialog), 760, 500);
    GtkWidget *savebtn = gtk_dialog_get_widget_for_response(GTK_DIALOG(s->dialog), GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(savebtn), "suggested-action");
    GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(s->dialog));

    if (s->running) {
        GtkWidget *bar = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), GTK_MESSAGE_INFO);
        GtkWidget *l = gtk_label_new("The VM is running: only the CD/DVD medium and the port forwards can "
                                     "change now. The other settings can be changed when it is powered off.");
        gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
        atk_object_set_name(gtk_widget_get_accessible(l), "Running notice");
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), l);
        gtk_container_add(GTK_CONTAINER(content), bar);
    }

    GtkWidget *hbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_set_vexpand(hbox, TRUE);
    s->stack = gtk_stack_new();
    gtk_stack_set_transition_type(GTK_STACK(s->stack), GTK_STACK_TRANSITION_TYPE_CROSSFADE);
    GtkWidget *sidebar = gtk_stack_sidebar_new();
    gtk_stack_sidebar_set_stack(GTK_STACK_SIDEBAR(sidebar), GTK_STACK(s->stack));
    gtk_widget_set_size_request(sidebar, 150, -1);
    atk_object_set_name(gtk_widget_get_accessible(sidebar), "Sections");
    gtk_container_add(GTK_CONTAINER(hbox), sidebar);
    gtk_container_add(GTK_CONTAINER(hbox), gtk_separator_new(GTK_ORIENTATION_VERTICAL));
    gtk_widget_set_hexpand(s->stack, TRUE);
    gtk_container_add(GTK_CONTAINER(hbox), s->stack);
    gtk_container_add(GTK_CONTAINER(content), hbox);

    /* General */
    GtkWidget *g = grid_new();
    GtkWidget *name_entry = entry(d->name, NULL);
    gtk_widget_set_sensitive(name_entry, FALSE);   /* the name is the VM's folder: clone to rename */
    add_row(g, 0, "_Name", name_entry);
    int n = 0;
    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++)
        n++;
    const char **ids = g_new0(const char *, (size_t)n + 1), **labels = g_new0(const char *, (size_t)n + 1);
    n = 0;
    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++, n++)
        ids[n] = t->id, labels[n] = t->label;
    s->os = combo(ids, labels, d->os);
    g_free(ids);
    g_free(labels);
    add_row(g, 1, "_OS type", s->os);
    GtkWidget *uuid = entry(d->uuid, NULL);
    gtk_editable_set_editable(GTK_EDITABLE(uuid), FALSE);
    add_row(g, 2, "_UUID", uuid);
    GtkWidget *folder = entry(burrow_vm_dir(s->vm), NULL);
    gtk_editable_set_editable(GTK_EDITABLE(folder), FALSE);
    add_row(g, 3, "_Folder", folder);
    mark_locked(s->os);
    gtk_stack_add_titled(GTK_STACK(s->stack), g, "general", "General");

    /* System */
    g = grid_new();
    s->memory = gtk_spin_button_new_with_range(BURROW_MEMORY_MIN, MAX(host_memory_mib(), d->memory_mib), 64);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->memory), d->memory_mib);
    add_row(g, 0, "_Memory (MiB)", s->memory);
    s->cpus = gtk_spin_button_new_with_range(1, MAX(host_cpus(), d->cpus), 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->cpus), d->cpus);
    add_row(g, 1, "_Processors", s->cpus);
    static const char *const boot_ids[] = { "default", "c", "d", "n", "dc", "cd", "nc", NULL };
    static const char *const boot_labels[] = { "Firmware default", "Hard disk", "CD/DVD", "Network",
                                               "CD/DVD, then hard disk", "Hard disk, then CD/DVD",
                                               "Network, then hard disk", NULL };
    s->boot = combo(boot_ids, boot_labels, d->boot[0] ? d->boot : "default");
    add_row(g, 2, "_Boot order", s->boot);
    mark_locked(s->memory);
    mark_locked(s->cpus);
    mark_locked(s->boot);
    gtk_stack_add_titled(GTK_STACK(s->stack), g, "system", "System");

    /* Display */
    g = grid_new();
    static const char *const disp_ids[] = { "sdl", "vnc", "none", NULL };
    static const char *const disp_labels[] = { "Window on this desktop (SDL)", "VNC server",
                                               "None (serial console)", NULL };
    s->display = combo(disp_ids, disp_labels, d->display);
    add_row(g, 0, "_Display", s->display);
    s->vnc_listen = entry(d->vnc_listen, "127.0.0.1:5901");
    add_row(g, 1, "VNC _address", s->vnc_listen);
    s->vnc_pw = entry(d->vnc_password_file, "none");
    add_row(g, 2, "VNC _password file", s->vnc_pw);
    mark_locked(s->display);
    mark_locked(s->vnc_listen);
    mark_locked(s->vnc_pw);
    gtk_stack_add_titled(GTK_STACK(s->stack), g, "display", "Display");

    /* Sound */
    gtk_stack_add_titled(GTK_STACK(s->stack), build_sound_page(s), "sound", "Sound");

    /* Storage */
    g = grid_new();
    GtkListStore *st = gtk_list_store_new(2, G_TYPE_STRING, G_TYPE_STRING);
    s->disks = gtk_tree_view_new_with_model(GTK_TREE_MODEL(st));
    g_object_unref(st);
    gtk_tree_view_append_column(GTK_TREE_VIEW(s->disks),
        gtk_tree_view_column_new_with_attributes("Image", gtk_cell_renderer_text_new(), "text", 0, NULL));
    gtk_tree_view_append_column(GTK_TREE_VIEW(s->disks),
        gtk_tree_view_column_new_with_attributes("Interface and format", gtk_cell_renderer_text_new(), "text", 1, NULL));
    GtkWidget *dsw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(dsw), GTK_SHADOW_IN);
    gtk_widget_set_size_request(dsw, -1, 110);
    gtk_container_add(GTK_CONTAINER(dsw), s->disks);
    atk_object_set_name(gtk_widget_get_accessible(s->disks), "Disks");
    gtk_grid_attach(GTK_GRID(g), dsw, 0, 0, 2, 1);
    GtkWidget *bb = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    s->add_disk = gtk_button_new_with_mnemonic("_Add disk…");
    s->remove_disk = gtk_button_new_with_mnemonic("_Remove disk");
    atk_object_set_name(gtk_widget_get_accessible(s->add_disk), "Add disk");
    atk_object_set_name(gtk_widget_get_accessible(s->remove_disk), "Remove disk");
    g_signal_connect(s->add_disk, "clicked", G_CALLBACK(on_add_disk), s);
    g_signal_connect(s->remove_disk, "clicked", G_CALLBACK(on_remove_disk), s);
    gtk_container_add(GTK_CONTAINER(bb), s->add_disk);
    gtk_container_add(GTK_CONTAINER(bb), s->remove_disk);
    gtk_grid_attach(GTK_GRID(g), bb, 0, 1, 2, 1);
    GtkWidget *cdrow = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    s->cdrom = entry(d->cdrom, "empty");
    gtk_widget_set_hexpand(s->cdrom, TRUE);
    s->cdrom_browse = gtk_button_new_with_mnemonic("_Browse…");
    atk_object_set_name(gtk_widget_get_accessible(s->cdrom_browse), "Browse for a CD/DVD image");
    s->cdrom_eject = gtk_button_new_from_icon_name("media-eject-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_widget_set_tooltip_text(s->cdrom_eject, "Eject: empty the drive");
    atk_object_set_name(gtk_widget_get_accessible(s->cdrom_eject), "Eject");
    gtk_container_add(GTK_CONTAINER(cdrow), s->cdrom);
    gtk_container_add(GTK_CONTAINER(cdrow), s->cdrom_browse);
    gtk_container_add(GTK_CONTAINER(cdrow), s->cdrom_eject);
    add_row_for(g, 2, "_CD/DVD image", cdrow, s->cdrom);
    s->cdrom_msg = message_label("CD/DVD check");
    gtk_grid_attach(GTK_GRID(g), s->cdrom_msg, 1, 3, 1, 1);
    g_signal_connect(s->cdrom, "changed", G_CALLBACK(on_cdrom_changed), s);
    g_signal_connect(s->cdrom_browse, "clicked", G_CALLBACK(on_cdrom_browse), s);
    g_signal_connect(s->cdrom_eject, "clicked", G_CALLBACK(on_cdrom_eject), s);
    check_cdrom(s);
    mark_locked(s->disks);
    mark_locked(s->add_disk);
    mark_locked(s->remove_disk);
    fill_disks(s);
    gtk_stack_add_titled(GTK_STACK(s->stack), g, "storage", "Storage");

    /* Network: a page per adapter */
    s->nics = gtk_notebook_new();
    g_object_set(s->nics, "margin", 12, NULL);
    atk_object_set_name(gtk_widget_get_accessible(s->nics), "Network adapters");
    for (int i = 0; i < BURROW_MAX_NICS; i++) {
        char *tab = g_strdup_printf("Adapter %d", i + 1);
        gtk_notebook_append_page(GTK_NOTEBOOK(s->nics), build_nic_page(s, i), gtk_label_new(tab));
        g_free(tab);
    }
    gtk_stack_add_titled(GTK_STACK(s->stack), s->nics, "network", "Network");

    s->msg = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(s->msg), 0);
    gtk_label_set_line_wrap(GTK_LABEL(s->msg), TRUE);
    gtk_label_set_line_wrap_mode(GTK_LABEL(s->msg), PANGO_WRAP_WORD_CHAR);
    g_object_set(s->msg, "margin-start", 18, "margin-end", 18, "margin-bottom", 12, NULL);
    atk_object_set_name(gtk_widget_get_accessible(s->msg), "Settings check");
    gtk_container_add(GTK_CONTAINER(content), s->msg);

    if (s->running)
        gtk_container_foreach(GTK_CONTAINER(s->stack), lock_running, s);
    g_signal_connect(s->dialog, "response", G_CALLBACK(on_response), s);
    g_signal_connect(s->dialog, "destroy", G_CALLBACK(on_destroy), s);
    gtk_widget_show_all(s->dialog);
    for (int i = 0; i < BURROW_MAX_NICS; i++)
        nic_sensitivity(s, i);
    audio_sensitivity(s);
    if (page)
        gtk_stack_set_visible_child_name(GTK_STACK(s->stack), page);
}

void settings_show(struct manager *m, struct vm_entry *e)
{
    settings_open(m, e->name, NULL);
}
