/* The VMs in the list: their definitions, their live state from the
 * control socket's events, their row widgets and screen thumbnails. */
#include <math.h>
#include <string.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "gui/manager/manager.h"

#define THUMB_INTERVAL_MS 2000
#define SETTLE_INTERVAL_MS 250
#define ROW_THUMB_W 96
#define ROW_THUMB_H 72
#define ICON_SIZE 40

/* ---- OS badges ----------------------------------------------------------------------- */

/* A round badge with the OS type's initials in its family's colour, like a
 * contact's avatar: recognisable without shipping third-party logos. */
static GdkPixbuf *os_badge(const char *os_id)
{
    const struct burrow_ostype *t = os_id ? burrow_ostype_find(os_id) : NULL;
    const char *text = "?";
    double r = 0.47, g = 0.47, b = 0.47;
    char buf[4] = "";
    if (t) {
        if (!strcmp(t->family, "windows")) {
            r = 0.11, g = 0.44, b = 0.85;
            snprintf(buf, sizeof(buf), "W%s", t->id + 3);
        } else if (!strcmp(t->family, "linux")) {
            static const struct { const char *id; double r, g, b; } tint[] = {
                { "debian", 0.78, 0.10, 0.32 }, { "ubuntu", 0.91, 0.33, 0.13 },
                { "fedora", 0.16, 0.33, 0.62 }, { "arch", 0.09, 0.58, 0.82 },
            };
            r = 0.20, g = 0.20, b = 0.20;
            for (size_t i = 0; i < G_N_ELEMENTS(tint); i++)
                if (!strcmp(tint[i].id, t->id))
                    r = tint[i].r, g = tint[i].g, b = tint[i].b;
            buf[0] = (char)g_ascii_toupper(t->id[0]);
            buf[1] = t->id[1];
            if (!strcmp(t->id, "linux64"))
                buf[1] = 'x';
        } else {
            snprintf(buf, sizeof(buf), "?");
        }
        text = buf;
    }
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, ICON_SIZE, ICON_SIZE);
    cairo_t *cr = cairo_create(s);
    cairo_arc(cr, ICON_SIZE / 2.0, ICON_SIZE / 2.0, ICON_SIZE / 2.0 - 1, 0, 2 * M_PI);
    cairo_set_source_rgb(cr, r, g, b);
    cairo_fill(cr);
    cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, strlen(text) > 2 ? 13 : 16);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    cairo_move_to(cr, ICON_SIZE / 2.0 - ext.width / 2 - ext.x_bearing,
                  ICON_SIZE / 2.0 - ext.height / 2 - ext.y_bearing);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_show_text(cr, text);
    cairo_destroy(cr);
    GdkPixbuf *pb = gdk_pixbuf_get_from_surface(s, 0, 0, ICON_SIZE, ICON_SIZE);
    cairo_surface_destroy(s);
    return pb;
}

/* ---- state ---------------------------------------------------------------------------- */

bool vm_entry_is_running(const struct vm_entry *e)
{
    return e->state == BURROW_VM_RUNNING || e->state == BURROW_VM_PAUSED ||
           e->state == BURROW_VM_GUEST_ERROR || e->state == BURROW_VM_STARTING ||
           e->state == BURROW_VM_STOPPING;
}

const char *vm_entry_state_label(const struct vm_entry *e)
{
    if (!e->vm)
        return "Invalid definition";
    switch (e->state) {
    case BURROW_VM_STOPPED: return "Powered off";
    case BURROW_VM_STARTING: return "Starting";
    case BURROW_VM_RUNNING: return "Running";
    case BURROW_VM_PAUSED: return "Paused";
    case BURROW_VM_GUEST_ERROR: return "Guest error";
    case BURROW_VM_STOPPING: return "Shutting down";
    case BURROW_VM_CRASHED: return "Crashed";
    }
    return "Unknown";
}

const char *vm_entry_icon_name(const struct vm_entry *e)
{
    switch (e->state) {
    case BURROW_VM_RUNNING: return "media-playback-start-symbolic";
    case BURROW_VM_PAUSED: return "media-playback-pause-symbolic";
    case BURROW_VM_GUEST_ERROR:
    case BURROW_VM_CRASHED: return "dialog-warning-symbolic";
    default: return "system-shutdown-symbolic";
    }
}

static void stop_thumbs(struct vm_entry *e)
{
    if (e->thumb_timer) {
        g_source_remove(e->thumb_timer);
        e->thumb_timer = 0;
    }
    g_clear_object(&e->thumb);
}

static void disconnect_ctl(struct vm_entry *e)
{
    if (e->ctl_watch) {
        g_source_remove(e->ctl_watch);
        e->ctl_watch = 0;
    }
    if (e->ctl) {
        burrow_ctl_close(e->ctl);
        e->ctl = NULL;
    }
}

static void apply_event_state(struct vm_entry *e, const char *state)
{
    if (!state)
        return;
    if (!strcmp(state, "running"))
        e->state = BURROW_VM_RUNNING;
    else if (!strcmp(state, "paused"))
        e->state = BURROW_VM_PAUSED;
    else if (!strcmp(state, "guest-error"))
        e->state = BURROW_VM_GUEST_ERROR;
    else if (!strcmp(state, "shutdown"))
        e->state = BURROW_VM_STOPPING;
}

/* The control socket is readable: events, or the end of the process. */
static gboolean ctl_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    struct vm_entry *e = opaque;
    bool closed = false;
    for (;;) {
        json_t *ev = NULL;
        struct burrow_error err;
        int r = burrow_ctl_read_event(e->ctl, &ev, 0, &err);
        if (r < 0) {
            closed = true;
            break;
        }
        if (r == 0)
            break;
        const char *name = json_string_value(json_object_get(ev, "event"));
        json_t *data = json_object_get(ev, "data");
        if (name && !strcmp(name, "state-changed"))
            apply_event_state(e, json_string_value(json_object_get(data, "state")));
        else if (name && !strcmp(name, "shutdown"))
            e->state = BURROW_VM_STOPPING;
        else if (name && !strcmp(name, "audio-recording"))
            e->recording = json_is_true(json_object_get(data, "recording"));
        json_decref(ev);
    }
    if (closed || (cond & (G_IO_HUP | G_IO_ERR))) {
        e->ctl_watch = 0;
        burrow_ctl_close(e->ctl);
        e->ctl = NULL;
        vm_entry_update_state(e);
        return G_SOURCE_REMOVE;
    }
    vm_entry_update_row(e);
    manager_entry_changed(e->mgr, e);
    return G_SOURCE_CONTINUE;
}

static void connect_ctl(struct vm_entry *e)
{
    if (e->ctl || !e->vm)
        return;
    struct burrow_error err;
    e->ctl = burrow_ctl_connect(burrow_vm_control_path(e->vm), 0, &err);
    if (!e->ctl)
        return;   /* not listening (yet): the runtime directory's monitor brings us back */
    e->ctl_watch = g_unix_fd_add(burrow_ctl_fd(e->ctl), G_IO_IN | G_IO_HUP | G_IO_ERR, ctl_ready, e);
}

/* ---- thumbnails --------------------------------------------------------------------------- */

struct thumb_job {
    struct manager *m;
    char *name, *control, *path;
    bool no_display;
    char why[512];
};

static void thumb_job_free(gpointer p)
{
    struct thumb_job *j = p;
    g_free(j->name);
    g_free(j->control);
    g_free(j->path);
    g_free(j);
}

static void thumb_thread(GTask *task, gpointer src, gpointer data, GCancellable *c)
{
    struct thumb_job *j = data;
    struct burrow_error err;
    struct burrow_ctl *ctl = burrow_ctl_connect(j->control, 0, &err);
    int rc = -1;
    if (ctl) {
        json_t *args = json_pack("{s:s}", "path", j->path);
        rc = burrow_ctl_command(ctl, "screenshot", args, NULL, 3000, &err);
        json_decref(args);
        burrow_ctl_close(ctl);
        /* A VM without graphics answers so: stop asking it. */
        if (rc < 0 && strstr(err.msg, "no display"))
            j->no_display = true;
    }
    if (rc < 0)
        snprintf(j->why, sizeof(j->why), "%s", err.msg);
    g_task_return_boolean(task, rc == 0);
}

static void thumb_done(GObject *src, GAsyncResult *res, gpointer data)
{
    struct thumb_job *j = g_task_get_task_data(G_TASK(res));
    gboolean ok = g_task_propagate_boolean(G_TASK(res), NULL);
    struct vm_entry *e = g_hash_table_lookup(j->m->vms, j->name);
    if (!e)
        return;
    e->thumb_busy = false;
    if (!ok)
        g_debug("%s: no screenshot: %s", j->name, j->why);

    if (j->no_display) {
        snprintf(e->display, sizeof(e->display), "none");
        stop_thumbs(e);
    } else if (ok && vm_entry_is_running(e)) {
        GdkPixbuf *pb = gdk_pixbuf_new_from_file_at_scale(j->path, 320, 240, TRUE, NULL);
        if (pb) {
            g_clear_object(&e->thumb);
            e->thumb = pb;
        }
    }
    g_unlink(j->path);
    vm_entry_update_row(e);
    manager_entry_changed(e->mgr, e);
}

static gboolean thumb_tick(gpointer opaque)
{
    struct vm_entry *e = opaque;
    if (e->thumb_busy || !e->vm || !e->mgr->thumb_dir)
        return G_SOURCE_CONTINUE;
    struct thumb_job *j = g_new0(struct thumb_job, 1);
    j->m = e->mgr;
    j->name = g_strdup(e->name);
    j->control = g_strdup(burrow_vm_control_path(e->vm));
    j->path = g_strdup_printf("%s/%s.png", e->mgr->thumb_dir, e->name);
    e->thumb_busy = true;
    GTask *t = g_task_new(NULL, NULL, thumb_done, NULL);
    g_task_set_task_data(t, j, thumb_job_free);
    g_task_run_in_thread(t, thumb_thread);
    g_object_unref(t);
    return G_SOURCE_CONTINUE;
}

static void start_thumbs(struct vm_entry *e)
{
    if (e->thumb_timer || !strcmp(e->display, "none"))
        return;
    e->thumb_timer = g_timeout_add(THUMB_INTERVAL_MS, thumb_tick, e);
    thumb_tick(e);
}

/* ---- live state ------------------------------------------------------------------------------ */

static gboolean settle(gpointer opaque)
{
    struct vm_entry *e = opaque;
    e->settle_timer = 0;
    vm_entry_update_state(e);
    return G_SOURCE_REMOVE;
}

void vm_entry_update_state(struct vm_entry *e)
{
    if (!e->vm) {
        e->state = BURROW_VM_STOPPED;
        e->pid = 0;
        disconnect_ctl(e);
        stop_thumbs(e);
    } else {
        struct burrow_vm_status st;
        e->state = burrow_vm_state(e->vm, &st);
        e->pid = st.pid;
        /* The VM says how it was started (a window, VNC, headless), however
         * it was: from here or from the command line. */
        if (st.display[0]) {
            snprintf(e->display, sizeof(e->display), "%s", st.display);
            snprintf(e->vnc_addr, sizeof(e->vnc_addr), "%s", st.vnc_listen);
        }
        /* Events keep it current from here on (audio-recording). */
        e->recording = st.recording;
        if (e->state == BURROW_VM_STOPPED || e->state == BURROW_VM_CRASHED) {
            disconnect_ctl(e);
            stop_thumbs(e);
            e->display[0] = '\0';
            e->vnc_addr[0] = '\0';
            e->recording = false;
        } else {
            connect_ctl(e);
            if (e->state == BURROW_VM_RUNNING || e->state == BURROW_VM_PAUSED ||
                e->state == BURROW_VM_GUEST_ERROR)
                start_thumbs(e);
        }
        /* A process on its way in or out changes state without an event
         * we could see (its socket is not up yet, or gone already): look
         * again shortly. */
        if ((e->state == BURROW_VM_STOPPING || e->state == BURROW_VM_STARTING ||
             (e->state != BURROW_VM_STOPPED && e->state != BURROW_VM_CRASHED && !e->ctl)) &&
            !e->settle_timer)
            e->settle_timer = g_timeout_add(SETTLE_INTERVAL_MS, settle, e);
    }
    vm_entry_update_row(e);
    manager_entry_changed(e->mgr, e);
}

void vm_entry_reload(struct vm_entry *e)
{
    struct burrow_error err;
    struct burrow_vm *vm = burrow_vm_load(e->name, &err);
    g_clear_pointer(&e->load_error, g_free);
    if (!vm)
        e->load_error = g_strdup(err.msg);
    if (e->vm)
        burrow_vm_free(e->vm);
    e->vm = vm;
    if (e->icon) {
        GdkPixbuf *pb = os_badge(vm ? burrow_vm_def(vm)->os : NULL);
        gtk_image_set_from_pixbuf(GTK_IMAGE(e->icon), pb);
        g_object_unref(pb);
        const struct burrow_ostype *t = vm ? burrow_ostype_find(burrow_vm_def(vm)->os) : NULL;
        atk_object_set_name(gtk_widget_get_accessible(e->icon), t ? t->label : "Unknown OS");
    }
}

/* ---- the row ------------------------------------------------------------------------------ */

GtkWidget *vm_entry_row(struct vm_entry *e)
{
    if (e->row)
        return e->row;
    e->row = gtk_list_box_row_new();
    g_object_set_data(G_OBJECT(e->row), "vm-name", e->name);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    g_object_set(box, "margin-start", 12, "margin-end", 12, "margin-top", 8, "margin-bottom", 8, NULL);
    /* The OS badge, with a pause sign on it while the VM is paused. */
    GtkWidget *overlay = gtk_overlay_new();
    gtk_widget_set_valign(overlay, GTK_ALIGN_CENTER);
    e->icon = gtk_image_new();
    gtk_container_add(GTK_CONTAINER(overlay), e->icon);
    e->pause_badge = gtk_image_new_from_icon_name("media-playback-pause-symbolic", GTK_ICON_SIZE_MENU);
    gtk_widget_set_halign(e->pause_badge, GTK_ALIGN_END);
    gtk_widget_set_valign(e->pause_badge, GTK_ALIGN_END);
    gtk_style_context_add_class(gtk_widget_get_style_context(e->pause_badge), "pause-badge");
    gtk_widget_set_no_show_all(e->pause_badge, TRUE);
    atk_object_set_name(gtk_widget_get_accessible(e->pause_badge), "Paused");
    gtk_overlay_add_overlay(GTK_OVERLAY(overlay), e->pause_badge);
    gtk_container_add(GTK_CONTAINER(box), overlay);
    GtkWidget *text = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_widget_set_valign(text, GTK_ALIGN_CENTER);
    gtk_widget_set_hexpand(text, TRUE);
    e->name_label = gtk_label_new(e->name);
    gtk_label_set_xalign(GTK_LABEL(e->name_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(e->name_label), PANGO_ELLIPSIZE_END);
    gtk_widget_set_tooltip_text(e->name_label, e->name);
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes(GTK_LABEL(e->name_label), attrs);
    pango_attr_list_unref(attrs);
    e->state_label = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(e->state_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(e->state_label), PANGO_ELLIPSIZE_END);
    gtk_style_context_add_class(gtk_widget_get_style_context(e->state_label), "dim-label");
    gtk_container_add(GTK_CONTAINER(text), e->name_label);
    gtk_container_add(GTK_CONTAINER(text), e->state_label);
    gtk_container_add(GTK_CONTAINER(box), text);
    /* A microphone while the guest records from the host's: nobody should
     * be recorded without seeing it. */
    e->mic_badge = gtk_image_new_from_icon_name("audio-input-microphone-symbolic", GTK_ICON_SIZE_LARGE_TOOLBAR);
    gtk_widget_set_valign(e->mic_badge, GTK_ALIGN_CENTER);
    gtk_widget_set_tooltip_text(e->mic_badge, "The guest is recording from the microphone");
    static GtkCssProvider *red;
    if (!red) {
        red = gtk_css_provider_new();
        gtk_css_provider_load_from_data(red, "image { color: #c01c28; }", -1, NULL);
    }
    gtk_style_context_add_provider(gtk_widget_get_style_context(e->mic_badge), GTK_STYLE_PROVIDER(red),
                                   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    gtk_widget_set_no_show_all(e->mic_badge, TRUE);
    atk_object_set_name(gtk_widget_get_accessible(e->mic_badge), "Recording");
    gtk_container_add(GTK_CONTAINER(box), e->mic_badge);
    /* The same room for the thumbnail in every row, with a screen or not,
     * so rows are of one height. */
    e->row_thumb = gtk_image_new();
    gtk_widget_set_size_request(e->row_thumb, ROW_THUMB_W, ROW_THUMB_H);
    gtk_widget_set_valign(e->row_thumb, GTK_ALIGN_CENTER);
    gtk_style_context_add_class(gtk_widget_get_style_context(e->row_thumb), "row-thumb");
    gtk_container_add(GTK_CONTAINER(box), e->row_thumb);
    gtk_container_add(GTK_CONTAINER(e->row), box);
    /* The tests (and screen readers) find a VM's row by its name. */
    atk_object_set_name(gtk_widget_get_accessible(e->row), e->name);
    atk_object_set_name(gtk_widget_get_accessible(e->row_thumb), "Screen thumbnail");
    gtk_widget_show_all(e->row);
    vm_entry_reload(e);   /* sets the badge */
    return e->row;
}

void vm_entry_update_row(struct vm_entry *e)
{
    if (!e->row)
        return;
    gtk_label_set_text(GTK_LABEL(e->state_label), e->busy && e->busy_text ? e->busy_text : vm_entry_state_label(e));
    atk_object_set_description(gtk_widget_get_accessible(e->row), vm_entry_state_label(e));
    /* Paused shows apart from running: the badge, the state in the accent
     * colour, and a grey screen. */
    bool paused = e->state == BURROW_VM_PAUSED;
    gtk_widget_set_visible(e->pause_badge, paused);
    gtk_widget_set_visible(e->mic_badge, e->recording && vm_entry_is_running(e));
    GtkStyleContext *sc = gtk_widget_get_style_context(e->state_label);
    if (paused)
        gtk_style_context_add_class(sc, "paused");
    else
        gtk_style_context_remove_class(sc, "paused");
    if (e->thumb) {
        int w = gdk_pixbuf_get_width(e->thumb), h = gdk_pixbuf_get_height(e->thumb);
        /* Within the thumbnail's room, keeping the screen's shape. */
        int tw = ROW_THUMB_W, th = MAX(1, ROW_THUMB_W * h / w);
        if (th > ROW_THUMB_H) {
            th = ROW_THUMB_H;
            tw = MAX(1, ROW_THUMB_H * w / h);
        }
        GdkPixbuf *small = gdk_pixbuf_scale_simple(e->thumb, tw, th, GDK_INTERP_BILINEAR);
        if (paused)
            gdk_pixbuf_saturate_and_pixelate(small, small, 0.0f, FALSE);
        gtk_image_set_from_pixbuf(GTK_IMAGE(e->row_thumb), small);
        g_object_unref(small);
        atk_object_set_description(gtk_widget_get_accessible(e->row_thumb), "The VM's screen");
    } else {
        gtk_image_clear(GTK_IMAGE(e->row_thumb));
        atk_object_set_description(gtk_widget_get_accessible(e->row_thumb), "No screen");
    }
}

struct vm_entry *vm_entry_new(struct manager *m, const char *name)
{
    struct vm_entry *e = g_new0(struct vm_entry, 1);
    e->mgr = m;
    e->name = g_strdup(name);
    vm_entry_row(e);
    return e;
}

void vm_entry_free(struct vm_entry *e)
{
    disconnect_ctl(e);
    stop_thumbs(e);
    if (e->settle_timer)
        g_source_remove(e->settle_timer);
    if (e->row)
        gtk_widget_destroy(e->row);
    if (e->vm)
        burrow_vm_free(e->vm);
    g_free(e->load_error);
    g_free(e->name);
    g_free(e);
}
