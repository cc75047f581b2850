/* The Settings dialog: every field of the definition, by section (general,
 * system, display, storage, network), applied on Save through the
 * library's read-modify-write.  While the VM runs only the CD/DVD medium
 * can change (it is swapped live); the rest is shown but locked. */
#include <string.h>

#include "app/vmdef.h"
#include "gui/manager/manager.h"

struct settings {
    struct manager *m;
    char *name;
    bool running;
    struct burrow_vmdef def;     /* as loaded; disks and NICs edited here */
    GtkWidget *dialog;
    GtkWidget *os, *memory, *cpus, *boot;
    GtkWidget *display, *vnc_listen, *vnc_pw;
    GtkWidget *disks, *add_disk, *remove_disk, *cdrom;
    GtkWidget *net, *nic_model, *mac, *fwd;
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

static void add_row(GtkWidget *grid, int row, const char *mnemonic, GtkWidget *w, bool live)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);
    gtk_label_set_xalign(GTK_LABEL(l), 1);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), w);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
    gtk_widget_set_hexpand(w, TRUE);
    char *acc = g_strdup(mnemonic);
    char *p = strchr(acc, '_');
    if (p)
        memmove(p, p + 1, strlen(p));
    atk_object_set_name(gtk_widget_get_accessible(w), acc);
    g_free(acc);
    g_object_set_data(G_OBJECT(w), "live", GINT_TO_POINTER(live));
    gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), w, 1, row, 1, 1);
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

/* The edited definition, copied in under the VM's lock. */
static int apply_edit(struct burrow_vmdef *d, void *opaque, struct burrow_error *err)
{
    const struct burrow_vmdef *n = opaque;
    char name[sizeof(d->name)], uuid[sizeof(d->uuid)];
    memcpy(name, d->name, sizeof(name));
    memcpy(uuid, d->uuid, sizeof(uuid));
    *d = *n;
    memcpy(d->name, name, sizeof(name));
    memcpy(d->uuid, uuid, sizeof(uuid));
    return 0;
}

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
    snprintf(n->cdrom, sizeof(n->cdrom), "%s", gtk_entry_get_text(GTK_ENTRY(s->cdrom)));
    bool net = gtk_switch_get_active(GTK_SWITCH(s->net));
    if (!net) {
        n->nnics = 0;
    } else {
        if (!n->nnics) {
            n->nnics = 1;
            memset(&n->nics[0], 0, sizeof(n->nics[0]));
            snprintf(n->nics[0].mode, sizeof(n->nics[0].mode), "user");
        }
        struct burrow_nic *k = &n->nics[0];
        snprintf(k->model, sizeof(k->model), "%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->nic_model)));
        snprintf(k->mac, sizeof(k->mac), "%s", gtk_entry_get_text(GTK_ENTRY(s->mac)));
        if (!k->mac[0])
            vmdef_random_mac(k->mac);
        GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(s->fwd));
        GtkTextIter a, b;
        gtk_text_buffer_get_bounds(buf, &a, &b);
        char *text = gtk_text_buffer_get_text(buf, &a, &b, FALSE);
        char **lines = g_strsplit(text, "\n", -1);
        k->nhostfwd = 0;
        for (char **l = lines; *l; l++) {
            char *rule = g_strstrip(*l);
            if (!rule[0])
                continue;
            if (k->nhostfwd >= BURROW_MAX_HOSTFWD) {
                burrow_error_set(err, "at most %d port forwards", BURROW_MAX_HOSTFWD);
                g_strfreev(lines);
                g_free(text);
                return false;
            }
            snprintf(k->hostfwd[k->nhostfwd++], sizeof(k->hostfwd[0]), "%s", rule);
        }
        g_strfreev(lines);
        g_free(text);
    }
    return burrow_vmdef_validate(n, err) == 0;
}

/* Swaps the medium of the running VM's drive to match the new setting. */
static int apply_cdrom_live(struct settings *s, const char *cdrom, struct burrow_error *err)
{
    struct burrow_vm *vm = burrow_vm_load(s->name, err);
    if (!vm)
        return -1;
    int rc;
    if (cdrom[0]) {
        json_t *args = json_pack("{s:s,s:s}", "device", "cdrom", "path", cdrom);
        rc = burrow_vm_command(vm, "change-media", args, NULL, err);
        json_decref(args);
    } else {
        json_t *args = json_pack("{s:s,s:b}", "device", "cdrom", "force", 1);
        rc = burrow_vm_command(vm, "eject", args, NULL, err);
        json_decref(args);
    }
    burrow_vm_free(vm);
    return rc;
}

static void show_problem(struct settings *s, const struct burrow_error *err)
{
    char *markup = g_markup_printf_escaped("<span foreground='#c01c28'>%s</span>", err->msg);
    gtk_label_set_markup(GTK_LABEL(s->msg), markup);
    g_free(markup);
}

static void on_response(GtkDialog *d, int response, gpointer data)
{
    struct settings *s = data;
    if (response == GTK_RESPONSE_ACCEPT) {
        struct burrow_vmdef n;
        struct burrow_error err;
        if (!collect(s, &n, &err) ||
            (s->running && strcmp(n.cdrom, s->def.cdrom) && apply_cdrom_live(s, n.cdrom, &err) < 0) ||
            burrow_vm_modify(s->name, apply_edit, &n, &err) < 0) {
            show_problem(s, &err);   /* the dialog stays open to fix it */
            return;
        }
        struct vm_entry *e = g_hash_table_lookup(s->m->vms, s->name);
        if (e) {
            vm_entry_reload(e);
            manager_entry_changed(s->m, e);
        }
    }
    gtk_widget_destroy(GTK_WIDGET(d));
}

static void on_destroy(GtkWidget *w, gpointer data)
{
    struct settings *s = data;
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

static void mark_locked(GtkWidget *w)
{
    g_object_set_data(G_OBJECT(w), "locked-if-running", GINT_TO_POINTER(1));
}

void settings_show(struct manager *m, struct vm_entry *e)
{
    struct settings *s = g_new0(struct settings, 1);
    s->m = m;
    s->name = g_strdup(e->name);
    s->running = vm_entry_is_running(e);
    struct burrow_error err;
    struct burrow_vm *vm = burrow_vm_load(e->name, &err);
    if (!vm) {
        manager_error(m, NULL, "Cannot read the settings", err.msg);
        g_free(s->name);
        g_free(s);
        return;
    }
    s->def = *burrow_vm_def(vm);
    burrow_vm_free(vm);
    const struct burrow_vmdef *d = &s->def;

    char *title = g_strdup_printf("%s — Settings", d->name);
    s->dialog = gtk_dialog_new_with_buttons(title, GTK_WINDOW(m->window),
                                            GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT | GTK_DIALOG_USE_HEADER_BAR,
                                            "_Cancel", GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_ACCEPT, NULL);
    atk_object_set_name(gtk_widget_get_accessible(s->dialog), title);
    g_free(title);
    gtk_window_set_default_size(GTK_WINDOW(s->dialog), 680, 440);
    GtkWidget *save = gtk_dialog_get_widget_for_response(GTK_DIALOG(s->dialog), GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(save), "suggested-action");
    GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(s->dialog));

    if (s->running) {
        GtkWidget *bar = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), GTK_MESSAGE_INFO);
        GtkWidget *l = gtk_label_new("The VM is running: only the CD/DVD medium can change now. "
                                     "The other settings can be changed when it is powered off.");
        gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
        atk_object_set_name(gtk_widget_get_accessible(l), "Running notice");
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), l);
        gtk_container_add(GTK_CONTAINER(content), bar);
    }

    GtkWidget *hbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_set_vexpand(hbox, TRUE);
    GtkWidget *stack = gtk_stack_new();
    gtk_stack_set_transition_type(GTK_STACK(stack), GTK_STACK_TRANSITION_TYPE_CROSSFADE);
    GtkWidget *sidebar = gtk_stack_sidebar_new();
    gtk_stack_sidebar_set_stack(GTK_STACK_SIDEBAR(sidebar), GTK_STACK(stack));
    gtk_widget_set_size_request(sidebar, 150, -1);
    atk_object_set_name(gtk_widget_get_accessible(sidebar), "Sections");
    gtk_container_add(GTK_CONTAINER(hbox), sidebar);
    gtk_container_add(GTK_CONTAINER(hbox), gtk_separator_new(GTK_ORIENTATION_VERTICAL));
    gtk_widget_set_hexpand(stack, TRUE);
    gtk_container_add(GTK_CONTAINER(hbox), stack);
    gtk_container_add(GTK_CONTAINER(content), hbox);

    /* General */
    GtkWidget *g = grid_new();
    GtkWidget *name = entry(d->name, NULL);
    gtk_widget_set_sensitive(name, FALSE);   /* the name is the VM's folder: clone to rename */
    add_row(g, 0, "_Name", name, false);
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
    add_row(g, 1, "_OS type", s->os, false);
    add_row(g, 2, "_UUID", entry(d->uuid, NULL), false);
    gtk_editable_set_editable(GTK_EDITABLE(gtk_grid_get_child_at(GTK_GRID(g), 1, 2)), FALSE);
    add_row(g, 3, "_Folder", entry(burrow_vm_dir(e->vm), NULL), false);
    gtk_editable_set_editable(GTK_EDITABLE(gtk_grid_get_child_at(GTK_GRID(g), 1, 3)), FALSE);
    mark_locked(s->os);
    gtk_stack_add_titled(GTK_STACK(stack), g, "general", "General");

    /* System */
    g = grid_new();
    s->memory = gtk_spin_button_new_with_range(BURROW_MEMORY_MIN, MAX(host_memory_mib(), d->memory_mib), 64);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->memory), d->memory_mib);
    add_row(g, 0, "_Memory (MiB)", s->memory, false);
    s->cpus = gtk_spin_button_new_with_range(1, MAX(host_cpus(), d->cpus), 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->cpus), d->cpus);
    add_row(g, 1, "_Processors", s->cpus, false);
    static const char *const boot_ids[] = { "default", "c", "d", "n", "dc", "cd", "nc", NULL };
    static const char *const boot_labels[] = { "Firmware default", "Hard disk", "CD/DVD", "Network",
                                               "CD/DVD, then hard disk", "Hard disk, then CD/DVD",
                                               "Network, then hard disk", NULL };
    s->boot = combo(boot_ids, boot_labels, d->boot[0] ? d->boot : "default");
    add_row(g, 2, "_Boot order", s->boot, false);
    mark_locked(s->memory);
    mark_locked(s->cpus);
    mark_locked(s->boot);
    gtk_stack_add_titled(GTK_STACK(stack), g, "system", "System");

    /* Display */
    g = grid_new();
    static const char *const disp_ids[] = { "sdl", "vnc", "none", NULL };
    static const char *const disp_labels[] = { "Window on this desktop (SDL)", "VNC server",
                                               "None (serial console)", NULL };
    s->display = combo(disp_ids, disp_labels, d->display);
    add_row(g, 0, "_Display", s->display, false);
    s->vnc_listen = entry(d->vnc_listen, "127.0.0.1:5901");
    add_row(g, 1, "VNC _address", s->vnc_listen, false);
    s->vnc_pw = entry(d->vnc_password_file, "none");
    add_row(g, 2, "VNC _password file", s->vnc_pw, false);
    mark_locked(s->display);
    mark_locked(s->vnc_listen);
    mark_locked(s->vnc_pw);
    gtk_stack_add_titled(GTK_STACK(stack), g, "display", "Display");

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
    s->cdrom = entry(d->cdrom, "empty");
    add_row(g, 2, "_CD/DVD image", s->cdrom, true);
    mark_locked(s->disks);
    mark_locked(s->add_disk);
    mark_locked(s->remove_disk);
    fill_disks(s);
    gtk_stack_add_titled(GTK_STACK(stack), g, "storage", "Storage");

    /* Network */
    g = grid_new();
    s->net = gtk_switch_new();
    gtk_switch_set_active(GTK_SWITCH(s->net), d->nnics > 0);
    gtk_widget_set_halign(s->net, GTK_ALIGN_START);
    add_row(g, 0, "_Network adapter (NAT)", s->net, false);
    gtk_widget_set_hexpand(s->net, FALSE);
    static const char *const nic_ids[] = { "virtio", "e1000", NULL };
    static const char *const nic_labels[] = { "virtio-net (paravirtual)", "Intel e1000", NULL };
    const struct burrow_ostype *t = burrow_ostype_find(d->os);
    s->nic_model = combo(nic_ids, nic_labels, d->nnics ? d->nics[0].model : t ? t->nic_model : "virtio");
    add_row(g, 1, "Adapter _model", s->nic_model, false);
    s->mac = entry(d->nnics ? d->nics[0].mac : "", "random");
    add_row(g, 2, "_MAC address", s->mac, false);
    s->fwd = gtk_text_view_new();
    GString *fw = g_string_new(NULL);
    for (unsigned i = 0; d->nnics && i < d->nics[0].nhostfwd; i++)
        g_string_append_printf(fw, "%s\n", d->nics[0].hostfwd[i]);
    gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(s->fwd)), fw->str, -1);
    g_string_free(fw, TRUE);
    gtk_text_view_set_monospace(GTK_TEXT_VIEW(s->fwd), TRUE);
    GtkWidget *fsw = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(fsw), GTK_SHADOW_IN);
    gtk_widget_set_size_request(fsw, -1, 80);
    gtk_container_add(GTK_CONTAINER(fsw), s->fwd);
    add_row(g, 3, "_Port forwards", fsw, false);
    atk_object_set_name(gtk_widget_get_accessible(s->fwd), "Port forwards");
    GtkWidget *hint = gtk_label_new("One per line: tcp:127.0.0.1:2222-:22");
    gtk_style_context_add_class(gtk_widget_get_style_context(hint), "dim-label");
    gtk_label_set_xalign(GTK_LABEL(hint), 0);
    gtk_grid_attach(GTK_GRID(g), hint, 1, 4, 1, 1);
    mark_locked(s->net);
    mark_locked(s->nic_model);
    mark_locked(s->mac);
    mark_locked(fsw);
    gtk_stack_add_titled(GTK_STACK(stack), g, "network", "Network");

    s->msg = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(s->msg), 0);
    gtk_label_set_line_wrap(GTK_LABEL(s->msg), TRUE);
    g_object_set(s->msg, "margin-start", 18, "margin-end", 18, "margin-bottom", 12, NULL);
    atk_object_set_name(gtk_widget_get_accessible(s->msg), "Settings check");
    gtk_container_add(GTK_CONTAINER(content), s->msg);

    if (s->running)
        gtk_container_foreach(GTK_CONTAINER(stack), lock_running, s);
    g_signal_connect(s->dialog, "response", G_CALLBACK(on_response), s);
    g_signal_connect(s->dialog, "destroy", G_CALLBACK(on_destroy), s);
    gtk_widget_show_all(s->dialog);
}
