/* The New VM assistant: name and OS type, memory and processors, a new or
 * existing disk, installation media; the VM is created by the library on
 * a worker thread (the disk image may take a moment). */
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "gui/manager/manager.h"

struct assistant {
    struct manager *m;
    GtkWidget *window;
    GtkWidget *page_name, *page_hw, *page_disk, *page_media, *page_summary;
    GtkWidget *name, *name_msg, *os;
    GtkWidget *memory, *memory_spin, *cpus, *hw_msg, *mem_msg;
    GtkWidget *disk_new, *disk_existing, *disk_none, *disk_size, *disk_path, *disk_browse, *disk_msg;
    GtkWidget *iso, *iso_msg;
    GtkWidget *summary;
    GtkWidget *finish;           /* Finish on the media page (GTK shows its own on the earlier ones) */
    bool creating;
};

/* What the worker needs, copied out of the widgets. */
struct create_job {
    struct assistant *a;
    char *name, *os, *disk, *cdrom;
    long long memory, cpus;
    unsigned long long disk_size;
    bool no_disk;
};

static void create_job_free(gpointer p)
{
    struct create_job *j = p;
    g_free(j->name);
    g_free(j->os);
    g_free(j->disk);
    g_free(j->cdrom);
    g_free(j);
}

static GtkWidget *page_box(void)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    g_object_set(box, "margin", 24, NULL);
    return box;
}

static GtkWidget *field_label(GtkWidget *box, const char *mnemonic, GtkWidget *target)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), target);
    gtk_container_add(GTK_CONTAINER(box), l);
    return l;
}

static GtkWidget *message_label(const char *acc)
{
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
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

static bool readable_file(const char *path)
{
    struct stat st;
    return path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* ---- validation ------------------------------------------------------------------------- */

static void check_name(struct assistant *a)
{
    const char *name = gtk_entry_get_text(GTK_ENTRY(a->name));
    struct burrow_error err;
    bool ok = false;
    if (!name[0]) {
        set_message(a->name_msg, "Give the virtual machine a name.", false);
    } else if (!burrow_name_valid(name, &err)) {
        set_message(a->name_msg, err.msg, true);
    } else if (g_hash_table_contains(a->m->vms, name)) {
        set_message(a->name_msg, "A virtual machine of that name exists already.", true);
    } else {
        set_message(a->name_msg, "Letters (of any language), digits, spaces and . _ + - are allowed.", false);
        ok = true;
    }
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->window), a->page_name, ok);
}

static void check_disk(struct assistant *a)
{
    bool existing = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing));
    bool make = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new));
    gtk_widget_set_sensitive(a->disk_size, make);
    gtk_widget_set_sensitive(a->disk_path, existing);
    gtk_widget_set_sensitive(a->disk_browse, existing);
    bool ok = true;
    if (existing) {
        const char *p = gtk_entry_get_text(GTK_ENTRY(a->disk_path));
        ok = readable_file(p);
        set_message(a->disk_msg, ok ? "The image is attached as it is (raw or qcow2)."
                                    : p[0] ? "That file does not exist or cannot be read."
                                           : "Choose a disk image.", !ok && p[0]);
    } else if (make) {
        set_message(a->disk_msg, "A qcow2 image in the VM's folder; it takes space only as the guest writes.",
                    false);
    } else {
        set_message(a->disk_msg, "The VM boots from its CD/DVD or the network.", false);
    }
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->window), a->page_disk, ok);
}

static void check_iso(struct assistant *a)
{
    const char *p = gtk_entry_get_text(GTK_ENTRY(a->iso));
    bool ok = !p[0] || (p[0] == '/' && readable_file(p));
    set_message(a->iso_msg, ok ? (p[0] ? "Inserted in the CD/DVD drive." : "Optional: the drive stays empty.")
                               : p[0] != '/' ? "Give the image's full path, starting with / (or choose it with Browse)."
                                             : "That file does not exist or cannot be read.", !ok);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->window), a->page_media, ok);
    if (a->finish)
        gtk_widget_set_sensitive(a->finish, ok);
}

static void on_name_changed(GtkEditable *e, gpointer data) { check_name(data); }
static void on_disk_changed(GtkWidget *w, gpointer data) { check_disk(data); }
static void on_iso_changed(GtkEditable *e, gpointer data) { check_iso(data); }

/* A new OS type brings its defaults, bounded by the host. */
static void on_os_changed(GtkComboBox *c, gpointer data)
{
    struct assistant *a = data;
    const struct burrow_ostype *t = burrow_ostype_find(gtk_combo_box_get_active_id(c));
    if (!t)
        return;
    gtk_range_set_value(GTK_RANGE(a->memory), MIN(t->memory_mib, host_memory_mib()));
    gtk_range_set_value(GTK_RANGE(a->cpus), MIN(t->cpus, host_cpus()));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->disk_size), t->disk_gib);
}

/* More memory than the host has free now works only if the host swaps
 * or other programs give some back: said under the slider. */
static void check_memory(struct assistant *a)
{
    unsigned mib = (unsigned)gtk_range_get_value(GTK_RANGE(a->memory));
    unsigned free_mib = host_free_memory_mib();
    char *text;
    bool warn = free_mib && mib > free_mib;
    if (warn)
        text = g_strdup_printf("⚠ %u MiB is more than this computer's free memory (%u MiB now): it may swap "
                               "and slow down, or other programs may have to close.", mib, free_mib);
    else if (free_mib)
        text = g_strdup_printf("This computer has %u MiB of free memory now.", free_mib);
    else
        text = g_strdup("");
    char *markup = warn ? g_markup_printf_escaped("<span foreground='#c64600'>%s</span>", text)
                        : g_markup_printf_escaped("<span alpha='70%%'>%s</span>", text);
    gtk_label_set_markup(GTK_LABEL(a->mem_msg), markup);
    g_free(markup);
    g_free(text);
}

static void on_memory_changed(GtkRange *r, gpointer data)
{
    check_memory(data);
}

static void browse(GtkWidget *button, GtkWidget *entry, const char *title, bool iso)
{
    GtkWidget *top = gtk_widget_get_toplevel(button);
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(title, GTK_WINDOW(top), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                           "_Open", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    if (iso) {
        gtk_file_filter_set_name(f, "CD/DVD images (*.iso)");
        gtk_file_filter_add_pattern(f, "*.iso");
        gtk_file_filter_add_pattern(f, "*.ISO");
    } else {
        gtk_file_filter_set_name(f, "Disk images (*.qcow2, *.img, *.raw)");
        gtk_file_filter_add_pattern(f, "*.qcow2");
        gtk_file_filter_add_pattern(f, "*.img");
        gtk_file_filter_add_pattern(f, "*.raw");
    }
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
    if (!iso) {
        GtkFileFilter *all = gtk_file_filter_new();
        gtk_file_filter_set_name(all, "All files");
        gtk_file_filter_add_pattern(all, "*");
        gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), all);
    }
    if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
        char *p = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
        if (p)
            gtk_entry_set_text(GTK_ENTRY(entry), p);
        g_free(p);
    }
    g_object_unref(fc);
}

static void on_browse_disk(GtkWidget *b, gpointer data)
{
    struct assistant *a = data;
    browse(b, a->disk_path, "Choose a disk image", false);
}

static void on_browse_iso(GtkWidget *b, gpointer data)
{
    struct assistant *a = data;
    browse(b, a->iso, "Choose an installation image", true);
}

/* ---- pages ------------------------------------------------------------------------------ */

static GtkWidget *build_name_page(struct assistant *a)
{
    GtkWidget *box = page_box();
    /* Whether this host can run the VM at all, before any work goes in. */
    GtkWidget *bar = hostinfo_bar();
    gtk_widget_set_margin_bottom(bar, 12);
    gtk_container_add(GTK_CONTAINER(box), bar);
    a->name = gtk_entry_new();
    atk_object_set_name(gtk_widget_get_accessible(a->name), "Name");
    gtk_entry_set_activates_default(GTK_ENTRY(a->name), TRUE);
    field_label(box, "_Name", a->name);
    gtk_container_add(GTK_CONTAINER(box), a->name);
    a->name_msg = message_label("Name check");
    gtk_container_add(GTK_CONTAINER(box), a->name_msg);
    a->os = gtk_combo_box_text_new();
    for (const struct burrow_ostype *t = burrow_ostypes(); t->id; t++)
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->os), t->id, t->label);
    atk_object_set_name(gtk_widget_get_accessible(a->os), "Operating system");
    GtkWidget *l = field_label(box, "_Operating system", a->os);
    gtk_widget_set_margin_top(l, 12);
    gtk_container_add(GTK_CONTAINER(box), a->os);
    GtkWidget *hint = message_label("Operating system hint");
    set_message(hint, "The type picks the defaults: memory, processors, disk size and the devices the "
                      "guest has drivers for.", false);
    gtk_container_add(GTK_CONTAINER(box), hint);
    g_signal_connect(a->name, "changed", G_CALLBACK(on_name_changed), a);
    return box;
}

static GtkWidget *build_hw_page(struct assistant *a)
{
    GtkWidget *box = page_box();
    unsigned mem_max = MAX(host_memory_mib(), BURROW_MEMORY_MIN + 16);
    /* One adjustment for the slider and the number beside it. */
    GtkAdjustment *adj = gtk_adjustment_new(BURROW_MEMORY_MIN, BURROW_MEMORY_MIN, mem_max, 16, 256, 0);
    a->memory = gtk_scale_new(GTK_ORIENTATION_HORIZONTAL, adj);
    gtk_scale_set_digits(GTK_SCALE(a->memory), 0);
    gtk_scale_set_draw_value(GTK_SCALE(a->memory), FALSE);
    gtk_widget_set_hexpand(a->memory, TRUE);
    gtk_scale_add_mark(GTK_SCALE(a->memory), mem_max, GTK_POS_BOTTOM, "host");
    /* The trough fills up to the host's free memory: beyond it is the
     * zone the warning below is about. */
    unsigned free_mib = host_free_memory_mib();
    if (free_mib && free_mib < mem_max) {
        gtk_range_set_show_fill_level(GTK_RANGE(a->memory), TRUE);
        gtk_range_set_restrict_to_fill_level(GTK_RANGE(a->memory), FALSE);
        gtk_range_set_fill_level(GTK_RANGE(a->memory), free_mib);
        /* Labelled unless it would run into the "host" label. */
        gtk_scale_add_mark(GTK_SCALE(a->memory), free_mib, GTK_POS_BOTTOM,
                           free_mib < mem_max / 100 * 85 ? "free" : NULL);
    }
    atk_object_set_name(gtk_widget_get_accessible(a->memory), "Memory");
    a->memory_spin = gtk_spin_button_new(adj, 16, 0);
    gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(a->memory_spin), TRUE);
    gtk_widget_set_valign(a->memory_spin, GTK_ALIGN_START);
    atk_object_set_name(gtk_widget_get_accessible(a->memory_spin), "Memory in MiB");
    field_label(box, "_Memory", a->memory_spin);
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_container_add(GTK_CONTAINER(row), a->memory);
    gtk_container_add(GTK_CONTAINER(row), a->memory_spin);
    GtkWidget *unit = gtk_label_new("MiB");
    gtk_widget_set_valign(unit, GTK_ALIGN_START);
    gtk_widget_set_margin_top(unit, 8);
    gtk_container_add(GTK_CONTAINER(row), unit);
    gtk_container_add(GTK_CONTAINER(box), row);
    a->mem_msg = message_label("Memory check");
    gtk_container_add(GTK_CONTAINER(box), a->mem_msg);
    g_signal_connect(a->memory, "value-changed", G_CALLBACK(on_memory_changed), a);

    unsigned cpu_max = MAX(host_cpus(), 2u);
    a->cpus = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 1, cpu_max, 1);
    gtk_scale_set_digits(GTK_SCALE(a->cpus), 0);
    gtk_scale_set_value_pos(GTK_SCALE(a->cpus), GTK_POS_RIGHT);
    for (unsigned i = 1; i <= cpu_max; i++)
        gtk_scale_add_mark(GTK_SCALE(a->cpus), i, GTK_POS_BOTTOM, NULL);
    atk_object_set_name(gtk_widget_get_accessible(a->cpus), "Processors");
    GtkWidget *l = field_label(box, "_Processors", a->cpus);
    gtk_widget_set_margin_top(l, 12);
    gtk_container_add(GTK_CONTAINER(box), a->cpus);
    a->hw_msg = message_label("Hardware hint");
    char *hint = g_strdup_printf("This computer has %u MiB of memory and %u processors.", host_memory_mib(),
                                 host_cpus());
    set_message(a->hw_msg, hint, false);
    g_free(hint);
    gtk_container_add(GTK_CONTAINER(box), a->hw_msg);
    return box;
}

static GtkWidget *build_disk_page(struct assistant *a)
{
    GtkWidget *box = page_box();
    a->disk_new = gtk_radio_button_new_with_mnemonic(NULL, "Create a _new disk");
    atk_object_set_name(gtk_widget_get_accessible(a->disk_new), "Create a new disk");
    gtk_container_add(GTK_CONTAINER(box), a->disk_new);
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_margin_start(row, 28);
    a->disk_size = gtk_spin_button_new_with_range(1, 64 * 1024, 1);
    atk_object_set_name(gtk_widget_get_accessible(a->disk_size), "Disk size in GiB");
    GtkWidget *sl = gtk_label_new_with_mnemonic("_Size");
    gtk_label_set_mnemonic_widget(GTK_LABEL(sl), a->disk_size);
    gtk_container_add(GTK_CONTAINER(row), sl);
    gtk_container_add(GTK_CONTAINER(row), a->disk_size);
    gtk_container_add(GTK_CONTAINER(row), gtk_label_new("GiB (qcow2)"));
    gtk_container_add(GTK_CONTAINER(box), row);

    a->disk_existing = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(a->disk_new),
                                                                      "Use an _existing disk image");
    atk_object_set_name(gtk_widget_get_accessible(a->disk_existing), "Use an existing disk image");
    gtk_widget_set_margin_top(a->disk_existing, 8);
    gtk_container_add(GTK_CONTAINER(box), a->disk_existing);
    row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_margin_start(row, 28);
    a->disk_path = gtk_entry_new();
    gtk_widget_set_hexpand(a->disk_path, TRUE);
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->disk_path), "/path/to/disk.qcow2");
    atk_object_set_name(gtk_widget_get_accessible(a->disk_path), "Existing disk image");
    a->disk_browse = gtk_button_new_with_mnemonic("_Browse…");
    atk_object_set_name(gtk_widget_get_accessible(a->disk_browse), "Browse for a disk image");
    gtk_container_add(GTK_CONTAINER(row), a->disk_path);
    gtk_container_add(GTK_CONTAINER(row), a->disk_browse);
    gtk_container_add(GTK_CONTAINER(box), row);

    a->disk_none = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(a->disk_new), "N_o disk");
    atk_object_set_name(gtk_widget_get_accessible(a->disk_none), "No disk");
    gtk_widget_set_margin_top(a->disk_none, 8);
    gtk_container_add(GTK_CONTAINER(box), a->disk_none);
    a->disk_msg = message_label("Disk check");
    gtk_widget_set_margin_top(a->disk_msg, 8);
    gtk_container_add(GTK_CONTAINER(box), a->disk_msg);

    g_signal_connect(a->disk_new, "toggled", G_CALLBACK(on_disk_changed), a);
    g_signal_connect(a->disk_existing, "toggled", G_CALLBACK(on_disk_changed), a);
    g_signal_connect(a->disk_none, "toggled", G_CALLBACK(on_disk_changed), a);
    g_signal_connect(a->disk_path, "changed", G_CALLBACK(on_disk_changed), a);
    g_signal_connect(a->disk_browse, "clicked", G_CALLBACK(on_browse_disk), a);
    return box;
}

static GtkWidget *build_media_page(struct assistant *a)
{
    GtkWidget *box = page_box();
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    a->iso = gtk_entry_new();
    gtk_widget_set_hexpand(a->iso, TRUE);
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->iso), "/path/to/installer.iso");
    atk_object_set_name(gtk_widget_get_accessible(a->iso), "Installation ISO");
    field_label(box, "_Installation image (ISO)", a->iso);
    GtkWidget *b = gtk_button_new_with_mnemonic("_Browse…");
    atk_object_set_name(gtk_widget_get_accessible(b), "Browse for an ISO image");
    gtk_container_add(GTK_CONTAINER(row), a->iso);
    gtk_container_add(GTK_CONTAINER(row), b);
    gtk_container_add(GTK_CONTAINER(box), row);
    a->iso_msg = message_label("ISO check");
    gtk_container_add(GTK_CONTAINER(box), a->iso_msg);
    g_signal_connect(a->iso, "changed", G_CALLBACK(on_iso_changed), a);
    g_signal_connect(b, "clicked", G_CALLBACK(on_browse_iso), a);
    return box;
}

static void update_summary(struct assistant *a)
{
    GString *s = g_string_new(NULL);
    const struct burrow_ostype *t = burrow_ostype_find(gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->os)));
    g_string_append_printf(s, "Name:\t\t%s\nOS type:\t\t%s\nMemory:\t\t%.0f MiB\nProcessors:\t%.0f\n",
                           gtk_entry_get_text(GTK_ENTRY(a->name)), t ? t->label : "?",
                           gtk_range_get_value(GTK_RANGE(a->memory)), gtk_range_get_value(GTK_RANGE(a->cpus)));
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new)))
        g_string_append_printf(s, "Disk:\t\tnew, %d GiB (qcow2)\n",
                               gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->disk_size)));
    else if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing)))
        g_string_append_printf(s, "Disk:\t\t%s\n", gtk_entry_get_text(GTK_ENTRY(a->disk_path)));
    else
        g_string_append(s, "Disk:\t\tnone\n");
    const char *iso = gtk_entry_get_text(GTK_ENTRY(a->iso));
    g_string_append_printf(s, "CD/DVD:\t\t%s\nNetwork:\t\tNAT (user mode)", iso[0] ? iso : "empty");
    gtk_label_set_text(GTK_LABEL(a->summary), s->str);
    g_string_free(s, TRUE);
}

static void on_prepare(GtkAssistant *as, GtkWidget *page, gpointer data)
{
    struct assistant *a = data;
    if (page == a->page_summary)
        update_summary(a);
    else if (page == a->page_disk)
        check_disk(a);
    else if (page == a->page_media)
        check_iso(a);
    else if (page == a->page_hw)
        check_memory(a);
    gtk_widget_set_visible(a->finish, page == a->page_media);
}

/* Finish on the last page before the summary, as on the pages before it. */
static void on_finish(GtkWidget *b, gpointer data)
{
    struct assistant *a = data;
    int n = gtk_assistant_get_n_pages(GTK_ASSISTANT(a->window));
    for (int i = 0; i < n; i++)
        if (gtk_assistant_get_nth_page(GTK_ASSISTANT(a->window), i) == a->page_summary)
            gtk_assistant_set_current_page(GTK_ASSISTANT(a->window), i);
}

/* ---- creating ------------------------------------------------------------------------- */

static int work_create(void *data, struct burrow_error *err, void (*progress)(void *, double), void *op)
{
    struct create_job *j = data;
    struct burrow_vm_config cfg = {
        .name = j->name, .os = j->os, .memory_mib = j->memory, .cpus = j->cpus,
        .disk = j->disk, .disk_size = j->disk_size, .no_disk = j->no_disk, .cdrom = j->cdrom,
    };
    struct burrow_vm *vm = burrow_vm_create(&cfg, err);
    if (!vm)
        return -1;
    burrow_vm_free(vm);
    return 0;
}

static void done_create(struct manager *m, void *data, int rc, const struct burrow_error *err)
{
    struct create_job *j = data;
    struct assistant *a = j->a;
    a->creating = false;
    if (rc < 0) {
        /* Back to the assistant, to change what the library refused. */
        gtk_widget_show(a->window);
        manager_error(m, GTK_WINDOW(a->window), "Cannot create the virtual machine", err->msg);
        return;
    }
    gtk_widget_destroy(a->window);
    manager_rescan(m);
    manager_select_name(m, j->name);
}

static void on_apply(GtkAssistant *as, gpointer data)
{
    struct assistant *a = data;
    struct create_job *j = g_new0(struct create_job, 1);
    j->a = a;
    j->name = g_strdup(gtk_entry_get_text(GTK_ENTRY(a->name)));
    j->os = g_strdup(gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->os)));
    j->memory = (long long)gtk_range_get_value(GTK_RANGE(a->memory));
    j->cpus = (long long)gtk_range_get_value(GTK_RANGE(a->cpus));
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new)))
        j->disk_size = (unsigned long long)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->disk_size)) << 30;
    else if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing)))
        j->disk = g_strdup(gtk_entry_get_text(GTK_ENTRY(a->disk_path)));
    else
        j->no_disk = true;
    const char *iso = gtk_entry_get_text(GTK_ENTRY(a->iso));
    j->cdrom = iso[0] ? g_strdup(iso) : NULL;
    a->creating = true;
    gtk_widget_hide(a->window);
    char *title = g_strdup_printf("Creating “%s”", j->name);
    op_run(a->m, GTK_WINDOW(a->m->window), title, work_create, done_create, j, create_job_free);
    g_free(title);
}

static void on_close(GtkAssistant *as, gpointer data)
{
    struct assistant *a = data;
    if (!a->creating)
        gtk_widget_destroy(a->window);
}

static void on_destroy(GtkWidget *w, gpointer data)
{
    g_free(data);
}

static void add_page(struct assistant *a, GtkWidget *page, const char *title, GtkAssistantPageType type,
                     bool complete)
{
    gtk_assistant_append_page(GTK_ASSISTANT(a->window), page);
    gtk_assistant_set_page_title(GTK_ASSISTANT(a->window), page, title);
    gtk_assistant_set_page_type(GTK_ASSISTANT(a->window), page, type);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->window), page, complete);
}

void assistant_show(struct manager *m)
{
    struct assistant *a = g_new0(struct assistant, 1);
    a->m = m;
    a->window = g_object_new(GTK_TYPE_ASSISTANT, "use-header-bar", TRUE, NULL);
    gtk_window_set_title(GTK_WINDOW(a->window), "New Virtual Machine");
    atk_object_set_name(gtk_widget_get_accessible(a->window), "New Virtual Machine");
    gtk_window_set_transient_for(GTK_WINDOW(a->window), GTK_WINDOW(m->window));
    gtk_window_set_modal(GTK_WINDOW(a->window), TRUE);
    gtk_window_set_default_size(GTK_WINDOW(a->window), 640, 460);

    a->page_name = build_name_page(a);
    a->page_hw = build_hw_page(a);
    a->page_disk = build_disk_page(a);
    a->page_media = build_media_page(a);
    a->page_summary = page_box();
    a->summary = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(a->summary), 0);
    atk_object_set_name(gtk_widget_get_accessible(a->summary), "Summary");
    GtkWidget *intro = gtk_label_new("The virtual machine will be created with these settings. "
                                     "Everything can be changed later in Settings.");
    gtk_label_set_xalign(GTK_LABEL(intro), 0);
    gtk_label_set_line_wrap(GTK_LABEL(intro), TRUE);
    gtk_container_add(GTK_CONTAINER(a->page_summary), intro);
    gtk_container_add(GTK_CONTAINER(a->page_summary), a->summary);

    add_page(a, a->page_name, "Name and OS", GTK_ASSISTANT_PAGE_CONTENT, false);
    add_page(a, a->page_hw, "Memory and processors", GTK_ASSISTANT_PAGE_CONTENT, true);
    add_page(a, a->page_disk, "Hard disk", GTK_ASSISTANT_PAGE_CONTENT, true);
    add_page(a, a->page_media, "Installation media", GTK_ASSISTANT_PAGE_CONTENT, true);
    add_page(a, a->page_summary, "Summary", GTK_ASSISTANT_PAGE_CONFIRM, true);
    /* The summary's button says what it does. */
    GObject *apply = gtk_widget_get_template_child(a->window, GTK_TYPE_ASSISTANT, "apply");
    if (GTK_IS_BUTTON(apply)) {
        gtk_button_set_label(GTK_BUTTON(apply), "C_reate");
        atk_object_set_name(gtk_widget_get_accessible(GTK_WIDGET(apply)), "Create");
    }
    a->finish = gtk_button_new_with_mnemonic("_Finish");
    atk_object_set_name(gtk_widget_get_accessible(a->finish), "Finish");
    gtk_widget_set_no_show_all(a->finish, TRUE);
    g_signal_connect(a->finish, "clicked", G_CALLBACK(on_finish), a);
    gtk_assistant_add_action_widget(GTK_ASSISTANT(a->window), a->finish);

    g_signal_connect(a->os, "changed", G_CALLBACK(on_os_changed), a);
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->os), burrow_ostype_default()->id);
    check_name(a);
    check_disk(a);
    check_iso(a);
    g_signal_connect(a->window, "prepare", G_CALLBACK(on_prepare), a);
    g_signal_connect(a->window, "apply", G_CALLBACK(on_apply), a);
    g_signal_connect(a->window, "close", G_CALLBACK(on_close), a);
    g_signal_connect(a->window, "cancel", G_CALLBACK(gtk_widget_destroy), NULL);
    g_signal_connect(a->window, "destroy", G_CALLBACK(on_destroy), a);
    gtk_widget_show_all(a->window);
}
