/* A running VM's console in the manager, interactive: gtk-vnc speaks RFB
 * over a socket that the VM's control socket hands over
 * ("display-connect"), so no TCP port is opened and only the VM's owner
 * gets in.  A second page is a terminal (VTE) on the VM's serial port (its
 * UNIX socket, which serves `burrow console` beside it).
 *
 * A console shows in its own window or in the main window, in place of the
 * VM list, as the user last chose (prefs.c).  Its view (toolbar, pages,
 * full screen's toolbar) moves between the two; the toolbar is the
 * window's header bar there, a bar atop the view here.  Closing it leaves
 * the VM running; opening it again attaches again.  One console per VM. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib-unix.h>
#include <gtk/gtk.h>
#include <vnccairoframebuffer.h>
#include <vncdisplay.h>
#include <vte/vte.h>

#include "gui/manager/manager.h"

struct console {
    struct manager *m;
    char *name, *control, *password_file, *serial_path;
    GtkWidget *view;            /* what moves between the two homes */
    GtkWidget *window;          /* its own window; NULL in the main window */
    GtkWidget *bar;             /* the toolbar: the window's title, or atop the view */
    GtkWidget *bar_slot;        /* where the bar sits in the main window */
    GtkWidget *back, *place;    /* back to the list (main window only); move */
    GtkWidget *stack, *vnc, *status, *grab_hint;
    GtkWidget *reveal;          /* the toolbar that shows at the top in full screen */
    GtkWidget *full, *fit;      /* the full-screen and scale-to-fit toggles */
    guint reveal_timer;
    GtkWidget *term, *serial_status;
    int serial_fd;
    guint serial_watch;
    bool closed, connecting, has_screen, in_main, fullscreen;
    bool exact;                 /* 1:1 at a scale factor > 1: drawn here, pixel for pixel */
};

static void serial_close(struct console *c)
{
    if (c->serial_watch)
        g_source_remove(c->serial_watch);
    c->serial_watch = 0;
    if (c->serial_fd >= 0)
        close(c->serial_fd);
    c->serial_fd = -1;
}

static void console_free(struct console *c)
{
    g_free(c->serial_path);
    g_free(c->name);
    g_free(c->control);
    g_free(c->password_file);
    g_free(c);
}

static void set_status(struct console *c, const char *text)
{
    if (!c->status)
        return;
    gtk_label_set_text(GTK_LABEL(c->status), text);
    gtk_widget_set_visible(c->status, text && *text);
}

static GtkWindow *toplevel(struct console *c)
{
    GtkWidget *t = gtk_widget_get_toplevel(c->view);
    return GTK_IS_WINDOW(t) ? GTK_WINDOW(t) : NULL;
}

/* ---- connecting: the socket comes from the control socket ---- */

static void connect_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    struct console *c = data;
    struct burrow_error err;
    struct burrow_ctl *ctl = burrow_ctl_connect(c->control, 0, &err);
    int fd = ctl ? burrow_ctl_display_connect(ctl, &err) : -1;
    if (ctl)
        burrow_ctl_close(ctl);
    if (fd < 0)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else
        g_task_return_int(task, fd);
}

static void connect_done(GObject *src, GAsyncResult *res, gpointer data)
{
    struct console *c = data;
    GError *gerr = NULL;
    gssize fd = g_task_propagate_int(G_TASK(res), &gerr);
    c->connecting = false;
    if (c->closed) {
        if (fd >= 0)
            close((int)fd);
        console_free(c);
    } else if (fd < 0) {
        char *msg = g_strdup_printf("Cannot show the screen: %s", gerr ? gerr->message : "unknown error");
        set_status(c, msg);
        g_free(msg);
    } else if (!vnc_display_open_fd(VNC_DISPLAY(c->vnc), (int)fd)) {
        close((int)fd);
        set_status(c, "Cannot show the screen: the viewer refused the connection");
    } else {
        set_status(c, "Connecting…");
    }
    g_clear_error(&gerr);
}

static void console_connect(struct console *c)
{
    c->connecting = true;
    GTask *t = g_task_new(NULL, NULL, connect_done, c);
    g_task_set_task_data(t, c, NULL);
    g_task_run_in_thread(t, connect_thread);
    g_object_unref(t);
}

/* ---- scaling, and exact pixels on a HiDPI screen ---- */

/* gtk-vnc works in the widget's logical pixels: at 1:1 on a screen with
 * scale factor 2 it would draw each guest pixel as 2x2 device pixels, from
 * a cache it already scaled up (blurred).  There the widget is made the
 * guest's size in device pixels and gtk-vnc is told to scale (its pointer
 * mapping then multiplies logical coordinates by the factor, exactly), and
 * the screen is painted here, straight from gtk-vnc's framebuffer, one
 * guest pixel to one device pixel. */
static void apply_scaling(struct console *c)
{
    if (!c->has_screen)
        return;
    VncDisplay *v = VNC_DISPLAY(c->vnc);
    bool fit = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c->fit));
    int scale = gtk_widget_get_scale_factor(c->vnc);
    int w = vnc_display_is_open(v) ? vnc_display_get_width(v) : 0;
    int h = vnc_display_is_open(v) ? vnc_display_get_height(v) : 0;
    c->exact = !fit && scale > 1 && w > 0 && h > 0;
    if (fit) {
        vnc_display_set_force_size(v, TRUE);
        vnc_display_set_scaling(v, TRUE);
        vnc_display_set_keep_aspect_ratio(v, TRUE);
        gtk_widget_set_size_request(c->vnc, 640, 400);
        gtk_widget_set_halign(c->vnc, GTK_ALIGN_FILL);
        gtk_widget_set_valign(c->vnc, GTK_ALIGN_FILL);
    } else if (!c->exact) {
        /* 1:1 in logical pixels, which are device pixels here: gtk-vnc's
         * own drawing, and the window follows the guest's screen size. */
        vnc_display_set_force_size(v, TRUE);
        vnc_display_set_scaling(v, FALSE);
        vnc_display_set_keep_aspect_ratio(v, FALSE);
        gtk_widget_set_size_request(c->vnc, -1, -1);
        gtk_widget_set_halign(c->vnc, GTK_ALIGN_FILL);
        gtk_widget_set_valign(c->vnc, GTK_ALIGN_FILL);
    } else {
        vnc_display_set_force_size(v, FALSE);
        vnc_display_set_scaling(v, TRUE);
        vnc_display_set_keep_aspect_ratio(v, FALSE);
        gtk_widget_set_size_request(c->vnc, (w + scale - 1) / scale, (h + scale - 1) / scale);
        gtk_widget_set_halign(c->vnc, GTK_ALIGN_CENTER);
        gtk_widget_set_valign(c->vnc, GTK_ALIGN_CENTER);
    }
    gtk_widget_queue_resize(c->vnc);
}

static gboolean draw_exact(GtkWidget *w, cairo_t *cr, gpointer data)
{
    struct console *c = data;
    if (!c->exact)
        return FALSE;   /* gtk-vnc draws */
    VncConnection *conn = vnc_display_get_connection(VNC_DISPLAY(w));
    GObject *fb = NULL;
    if (conn)
        g_object_get(conn, "framebuffer", &fb, NULL);
    if (!fb || !VNC_IS_CAIRO_FRAMEBUFFER(fb)) {
        if (fb)
            g_object_unref(fb);
        return FALSE;
    }
    cairo_surface_t *src = vnc_cairo_framebuffer_get_surface(VNC_CAIRO_FRAMEBUFFER(fb));
    int scale = gtk_widget_get_scale_factor(w);
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    /* User space in device pixels; the guest's pixels land on whole ones. */
    cairo_scale(cr, 1.0 / scale, 1.0 / scale);
    int dx = (gtk_widget_get_allocated_width(w) * scale - cairo_image_surface_get_width(src)) / 2;
    int dy = (gtk_widget_get_allocated_height(w) * scale - cairo_image_surface_get_height(src)) / 2;
    cairo_set_source_surface(cr, src, dx > 0 ? dx : 0, dy > 0 ? dy : 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    g_object_unref(fb);
    return TRUE;
}

static void scale_factor_changed(GObject *w, GParamSpec *ps, gpointer data)
{
    apply_scaling(data);
}

static void toggle_scaling(GtkToggleButton *b, gpointer data)
{
    apply_scaling(data);
}

/* ---- gtk-vnc's signals ---- */

static void apply_scaling(struct console *c);

static void on_initialized(VncDisplay *vnc, gpointer data)
{
    struct console *c = data;
    set_status(c, "");
    apply_scaling(c);
    gtk_widget_grab_focus(c->vnc);
}

static void on_resized(VncDisplay *vnc, int width, int height, gpointer data)
{
    apply_scaling(data);
}

static void on_disconnected(VncDisplay *vnc, gpointer data)
{
    struct console *c = data;
    set_status(c, "The VM's screen is gone (the VM stopped or was reset by force).");
}

/* A VM with a VNC password asks it of every viewer: the password file of
 * its definition belongs to the user who runs the manager. */
static void on_credential(VncDisplay *vnc, GValueArray *creds, gpointer data)
{
    struct console *c = data;
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS
    for (guint i = 0; i < creds->n_values; i++) {
        int which = g_value_get_enum(g_value_array_get_nth(creds, i));
        if (which != VNC_DISPLAY_CREDENTIAL_PASSWORD) {
            vnc_display_close(vnc);
            set_status(c, "The VM's screen asks for a kind of login the manager does not know.");
            return;
        }
    }
    G_GNUC_END_IGNORE_DEPRECATIONS
    char *pw = NULL;
    GError *gerr = NULL;
    if (!c->password_file || !g_file_get_contents(c->password_file, &pw, NULL, &gerr)) {
        char *msg = g_strdup_printf("The VM's screen needs its VNC password: %s",
                                    gerr ? gerr->message : "no password file is set");
        set_status(c, msg);
        g_free(msg);
        g_clear_error(&gerr);
        vnc_display_close(vnc);
        return;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    vnc_display_set_credential(vnc, VNC_DISPLAY_CREDENTIAL_PASSWORD, pw);
    memset(pw, 0, strlen(pw));
    g_free(pw);
}

static void on_auth_failure(VncDisplay *vnc, const char *why, gpointer data)
{
    struct console *c = data;
    char *msg = g_strdup_printf("The VM's screen refused its password: %s", why ? why : "");
    set_status(c, msg);
    g_free(msg);
}

/* The hint shows only while the pointer is held: a relative pointer. */
static void on_grab(VncDisplay *vnc, gpointer data)
{
    gtk_widget_show(((struct console *)data)->grab_hint);
}

static void on_ungrab(VncDisplay *vnc, gpointer data)
{
    gtk_widget_hide(((struct console *)data)->grab_hint);
}

/* ---- the serial port ---- */

static void serial_say(struct console *c, const char *text)
{
    gtk_label_set_text(GTK_LABEL(c->serial_status), text);
    gtk_widget_set_visible(c->serial_status, text && *text);
}

static gboolean serial_readable(gint fd, GIOCondition cond, gpointer data)
{
    struct console *c = data;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
        vte_terminal_feed(VTE_TERMINAL(c->term), buf, n);
        return G_SOURCE_CONTINUE;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    c->serial_watch = 0;
    serial_close(c);
    serial_say(c, "The serial port closed (the VM stopped).");
    return G_SOURCE_REMOVE;
}

/* What the user types goes to the guest as it is. */
static void serial_commit(VteTerminal *t, const char *text, guint size, gpointer data)
{
    struct console *c = data;
    if (c->serial_fd < 0)
        return;
    while (size) {
        ssize_t n = send(c->serial_fd, text, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            serial_say(c, errno == EAGAIN ? "The guest does not take input this fast; some was dropped."
                                          : "The serial port closed (the VM stopped).");
            return;
        }
        text += n;
        size -= (guint)n;
    }
}

static void serial_connect(struct console *c)
{
    if (c->serial_fd >= 0 || !c->serial_path)
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || strlen(c->serial_path) >= sizeof(sa.sun_path)) {
        if (fd >= 0)
            close(fd);
        serial_say(c, "Cannot reach the serial port.");
        return;
    }
    strcpy(sa.sun_path, c->serial_path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        char *msg = g_strdup_printf("Cannot reach the serial port: %s", g_strerror(errno));
        serial_say(c, msg);
        g_free(msg);
        close(fd);
        return;
    }
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    c->serial_fd = fd;
    c->serial_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, serial_readable, c);
    serial_say(c, "");
}

/* Keys go where the user looks: the screen or the terminal. */
static void page_changed(GObject *stack, GParamSpec *ps, gpointer data)
{
    struct console *c = data;
    const char *page = gtk_stack_get_visible_child_name(GTK_STACK(c->stack));
    if (page && !strcmp(page, "serial"))
        gtk_widget_grab_focus(c->term);
    else if (page && !strcmp(page, "screen"))
        gtk_widget_grab_focus(c->vnc);
}

static GtkWidget *serial_page(struct console *c)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    c->term = vte_terminal_new();
    atk_object_set_name(gtk_widget_get_accessible(c->term), "Serial console");
    vte_terminal_set_scrollback_lines(VTE_TERMINAL(c->term), 10000);
    gtk_widget_set_hexpand(c->term, TRUE);
    gtk_widget_set_vexpand(c->term, TRUE);
    g_signal_connect(c->term, "commit", G_CALLBACK(serial_commit), c);
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    GtkWidget *sb = gtk_scrollbar_new(GTK_ORIENTATION_VERTICAL,
                                      gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(c->term)));
    gtk_container_add(GTK_CONTAINER(row), c->term);
    gtk_container_add(GTK_CONTAINER(row), sb);
    c->serial_status = gtk_label_new("");
    gtk_container_add(GTK_CONTAINER(box), row);
    gtk_container_add(GTK_CONTAINER(box), c->serial_status);
    return box;
}

/* ---- header bar ---- */

struct key_combo {
    const char *label;
    guint keys[3];
    int n;
};

static const struct key_combo combos[] = {
    { "Ctrl+Alt+Del", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_Delete }, 3 },
    { "Ctrl+Alt+Backspace", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_BackSpace }, 3 },
    { "Ctrl+Alt+F1", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F1 }, 3 },
    { "Ctrl+Alt+F2", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F2 }, 3 },
    { "Ctrl+Alt+F3", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F3 }, 3 },
    { "Ctrl+Alt+F4", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F4 }, 3 },
    { "Ctrl+Alt+F5", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F5 }, 3 },
    { "Ctrl+Alt+F6", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F6 }, 3 },
    { "Ctrl+Alt+F7", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F7 }, 3 },
    { "Ctrl+Alt+F8", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F8 }, 3 },
    { "Ctrl+Alt+F9", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F9 }, 3 },
    { "Ctrl+Alt+F10", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F10 }, 3 },
    { "Ctrl+Alt+F11", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F11 }, 3 },
    { "Ctrl+Alt+F12", { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_F12 }, 3 },
    { "Print Screen", { GDK_KEY_Print }, 1 },
};

static void send_combo(GtkMenuItem *item, gpointer data)
{
    struct console *c = data;
    const struct key_combo *k = g_object_get_data(G_OBJECT(item), "combo");
    vnc_display_send_keys(VNC_DISPLAY(c->vnc), k->keys, k->n);
}

static GtkWidget *send_key_button(struct console *c)
{
    GtkWidget *menu = gtk_menu_new();
    for (size_t i = 0; i < G_N_ELEMENTS(combos); i++) {
        GtkWidget *item = gtk_menu_item_new_with_label(combos[i].label);
        g_object_set_data(G_OBJECT(item), "combo", (gpointer)&combos[i]);
        g_signal_connect(item, "activate", G_CALLBACK(send_combo), c);
        gtk_menu_shell_append(GTK_MENU_SHELL(menu), item);
    }
    gtk_widget_show_all(menu);
    GtkWidget *b = gtk_menu_button_new();
    gtk_button_set_label(GTK_BUTTON(b), "Send key");
    gtk_menu_button_set_popup(GTK_MENU_BUTTON(b), menu);
    gtk_widget_set_tooltip_text(b, "Send a key combination the desktop would keep for itself");
    return b;
}


/* In full screen the header bar is gone: a toolbar slides in while the
 * pointer is at the top edge (polled, since gtk-vnc takes the motion
 * events). */
static gboolean reveal_tick(gpointer data)
{
    struct console *c = data;
    GtkWindow *top = toplevel(c);
    GdkWindow *w = top ? gtk_widget_get_window(GTK_WIDGET(top)) : NULL;
    GdkSeat *seat = gdk_display_get_default_seat(gdk_display_get_default());
    int y = 1000;
    if (w && seat)
        gdk_window_get_device_position(w, gdk_seat_get_pointer(seat), NULL, &y, NULL);
    bool top_edge = y >= 0 && y < 8;
    bool shown = gtk_revealer_get_reveal_child(GTK_REVEALER(c->reveal));
    if (top_edge && !shown)
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), TRUE);
    else if (!top_edge && shown && y > gtk_widget_get_allocated_height(c->reveal) + 8)
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), FALSE);
    return G_SOURCE_CONTINUE;
}

static void set_fullscreen(struct console *c, bool on)
{
    GtkWindow *top = toplevel(c);
    if (on == c->fullscreen || !top)
        return;
    c->fullscreen = on;
    if (on) {
        gtk_window_fullscreen(top);
        /* In the main window its bar goes too: the screen is everything. */
        if (c->in_main)
            gtk_widget_hide(c->bar_slot);
        if (!c->reveal_timer)
            c->reveal_timer = g_timeout_add(150, reveal_tick, c);
    } else {
        gtk_window_unfullscreen(top);
        gtk_widget_show(c->bar_slot);
        if (c->reveal_timer)
            g_source_remove(c->reveal_timer);
        c->reveal_timer = 0;
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), FALSE);
    }
    if (c->full && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(c->full)) != on)
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c->full), on);
}

static void toggle_fullscreen(GtkToggleButton *b, gpointer data)
{
    set_fullscreen(data, gtk_toggle_button_get_active(b));
}

static void leave_fullscreen(GtkButton *b, gpointer data)
{
    set_fullscreen(data, false);
}

/* ---- CD/DVD: the running VM's medium, kept in its definition too ---- */

static int set_cdrom(struct burrow_vmdef *d, void *opaque, struct burrow_error *err)
{
    snprintf(d->cdrom, sizeof(d->cdrom), "%s", (const char *)opaque);
    return 0;
}

static void change_medium(struct console *c, const char *path)
{
    struct burrow_error err = { 0 };
    struct burrow_ctl *ctl = burrow_ctl_connect(c->control, 0, &err);
    int rc = -1;
    if (ctl) {
        json_t *args = path[0] ? json_pack("{s:s,s:s}", "device", "cdrom", "path", path)
                               : json_pack("{s:s,s:b}", "device", "cdrom", "force", 1);
        rc = burrow_ctl_command(ctl, path[0] ? "change-media" : "eject", args, NULL, 0, &err);
        json_decref(args);
        burrow_ctl_close(ctl);
    }
    if (rc == 0)
        rc = burrow_vm_modify(c->name, set_cdrom, (void *)path, &err);
    char *msg = rc == 0 ? g_strdup("") : g_strdup_printf("CD/DVD: %s", err.msg);
    set_status(c, msg);
    g_free(msg);
}

static void choose_medium(GtkMenuItem *item, gpointer data)
{
    struct console *c = data;
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Choose a Disc Image", toplevel(c),
                                                           GTK_FILE_CHOOSER_ACTION_OPEN, "_Insert", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "Disc images (*.iso)");
    gtk_file_filter_add_pattern(f, "*.iso");
    gtk_file_filter_add_pattern(f, "*.ISO");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
    if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
        char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
        if (path)
            change_medium(c, path);
        g_free(path);
    }
    g_object_unref(fc);
}

static void eject_medium(GtkMenuItem *item, gpointer data)
{
    change_medium(data, "");
}

static GtkWidget *medium_button(struct console *c)
{
    GtkWidget *menu = gtk_menu_new();
    GtkWidget *choose = gtk_menu_item_new_with_label("Choose a disc image…");
    g_signal_connect(choose, "activate", G_CALLBACK(choose_medium), c);
    GtkWidget *eject = gtk_menu_item_new_with_label("Eject");
    g_signal_connect(eject, "activate", G_CALLBACK(eject_medium), c);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), choose);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), eject);
    gtk_widget_show_all(menu);
    GtkWidget *b = gtk_menu_button_new();
    gtk_button_set_image(GTK_BUTTON(b), gtk_image_new_from_icon_name("media-optical-symbolic", GTK_ICON_SIZE_BUTTON));
    gtk_menu_button_set_popup(GTK_MENU_BUTTON(b), menu);
    gtk_widget_set_tooltip_text(b, "Change or eject the CD/DVD");
    atk_object_set_name(gtk_widget_get_accessible(b), "CD/DVD");
    return b;
}

static void save_screenshot(GtkButton *b, gpointer data)
{
    struct console *c = data;
    GdkPixbuf *pb = vnc_display_get_pixbuf(VNC_DISPLAY(c->vnc));
    if (!pb) {
        set_status(c, "No screen to save yet.");
        return;
    }
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Save Screenshot", toplevel(c),
                                                           GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
    GtkFileChooser *ch = GTK_FILE_CHOOSER(fc);
    gtk_file_chooser_set_do_overwrite_confirmation(ch, TRUE);
    char *suggested = g_strdup_printf("%s.png", c->name);
    gtk_file_chooser_set_current_name(ch, suggested);
    g_free(suggested);
    if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
        char *path = gtk_file_chooser_get_filename(ch);
        GError *gerr = NULL;
        if (path && !gdk_pixbuf_save(pb, path, "png", &gerr, NULL)) {
            char *msg = g_strdup_printf("Cannot save the screenshot: %s", gerr->message);
            set_status(c, msg);
            g_free(msg);
            g_clear_error(&gerr);
        }
        g_free(path);
    }
    g_object_unref(fc);
    g_object_unref(pb);
}

static GtkWidget *icon_toggle(const char *icon, const char *tip, const char *a11y)
{
    GtkWidget *b = gtk_toggle_button_new();
    gtk_button_set_image(GTK_BUTTON(b), gtk_image_new_from_icon_name(icon, GTK_ICON_SIZE_BUTTON));
    gtk_widget_set_tooltip_text(b, tip);
    atk_object_set_name(gtk_widget_get_accessible(b), a11y);
    return b;
}


/* ---- the two homes: its own window, or the main window ---- */

static void view_destroyed(GtkWidget *w, gpointer data);

static void update_place_button(struct console *c)
{
    const char *name = c->in_main ? "Show in its own window" : "Show in the main window";
    gtk_button_set_image(GTK_BUTTON(c->place),
                         gtk_image_new_from_icon_name(c->in_main ? "window-new-symbolic" : "view-dual-symbolic",
                                                      GTK_ICON_SIZE_BUTTON));
    gtk_widget_set_tooltip_text(c->place, c->in_main ? "Show the console in a window of its own (remembered)"
                                                     : "Show the console in the main window (remembered)");
    atk_object_set_name(gtk_widget_get_accessible(c->place), name);
    gtk_widget_set_visible(c->back, c->in_main);
}

/* Takes a widget out of its parent, keeping it alive for its next one. */
static GtkWidget *unparent(GtkWidget *w)
{
    g_object_ref(w);
    GtkWidget *parent = gtk_widget_get_parent(w);
    if (parent)
        gtk_container_remove(GTK_CONTAINER(parent), w);
    return w;
}

/* The window's close button: the view goes, and takes the window with it
 * (view_destroyed), so the window is not destroyed twice. */
static gboolean window_deleted(GtkWidget *w, GdkEvent *ev, gpointer data)
{
    struct console *c = data;
    /* Only the viewers go: the VM runs on. */
    gtk_widget_destroy(c->view);
    return TRUE;
}

static void into_window(struct console *c)
{
    c->in_main = false;
    c->window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_default_size(GTK_WINDOW(c->window), 800, 600);
    GtkWidget *hb = gtk_header_bar_new();
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(hb), TRUE);
    gtk_window_set_titlebar(GTK_WINDOW(c->window), hb);
    char *title = g_strdup_printf("%s — Console", c->name);
    gtk_window_set_title(GTK_WINDOW(c->window), title);
    atk_object_set_name(gtk_widget_get_accessible(c->window), title);
    g_free(title);
    gtk_header_bar_set_custom_title(GTK_HEADER_BAR(hb), c->bar);
    g_object_unref(c->bar);
    gtk_container_add(GTK_CONTAINER(c->window), c->view);
    g_object_unref(c->view);
    g_signal_connect(c->window, "delete-event", G_CALLBACK(window_deleted), c);
    update_place_button(c);
    gtk_widget_show_all(c->window);
}

static void into_main(struct console *c)
{
    struct manager *m = c->m;
    /* One console at a time in the main window: another one goes back
     * to a window of its own. */
    if (m->embedded && m->embedded != c)
        console_detach(m->embedded);
    c->in_main = true;
    c->window = NULL;
    gtk_container_add(GTK_CONTAINER(c->bar_slot), c->bar);
    g_object_unref(c->bar);
    gtk_container_add(GTK_CONTAINER(m->console_page), c->view);
    g_object_unref(c->view);
    m->embedded = c;
    update_place_button(c);
    gtk_widget_show_all(c->view);
    char *sub = g_strdup_printf("%s — Console", c->name);
    manager_show_console_page(m, sub);
    g_free(sub);
    gtk_window_present(GTK_WINDOW(m->window));
}

/* Out of wherever it is, alive, ready for into_window() or into_main(). */
static void take_out(struct console *c)
{
    set_fullscreen(c, false);
    unparent(c->bar);
    unparent(c->view);
    if (c->window) {
        GtkWidget *w = c->window;
        c->window = NULL;
        gtk_widget_destroy(w);
    } else if (c->m->embedded == c) {
        c->m->embedded = NULL;
        manager_show_console_page(c->m, NULL);
    }
}

void console_detach(struct console *c)
{
    if (!c->in_main)
        return;
    take_out(c);
    into_window(c);
}

static void move_console(GtkButton *b, gpointer data)
{
    struct console *c = data;
    bool to_main = !c->in_main;
    char *err = NULL;
    if (prefs_set_console_in_main(to_main, &err) < 0) {
        char *msg = g_strdup_printf("Cannot remember where consoles open: %s", err);
        set_status(c, msg);
        g_free(msg);
        g_free(err);
    }
    take_out(c);
    if (to_main)
        into_main(c);
    else
        into_window(c);
    if (c->has_screen)
        gtk_widget_grab_focus(c->vnc);
}

static void go_back(GtkButton *b, gpointer data)
{
    struct console *c = data;
    /* Only the viewers go: the VM runs on. */
    gtk_widget_destroy(c->view);
}

static void view_destroyed(GtkWidget *w, gpointer data)
{
    struct console *c = data;
    if (c->reveal_timer)
        g_source_remove(c->reveal_timer);
    c->reveal_timer = 0;
    if (c->fullscreen && toplevel(c))
        gtk_window_unfullscreen(toplevel(c));
    vnc_display_close(VNC_DISPLAY(c->vnc));
    if (!c->has_screen)
        g_object_unref(c->vnc);
    serial_close(c);
    g_hash_table_remove(c->m->consoles, c->name);
    if (c->m->embedded == c) {
        c->m->embedded = NULL;
        /* Not while the main window itself goes (the program ends). */
        if (!gtk_widget_in_destruction(c->m->window))
            manager_show_console_page(c->m, NULL);
    }
    if (!gtk_widget_get_parent(c->bar))
        gtk_widget_destroy(c->bar);
    if (c->window) {
        GtkWidget *win = c->window;
        c->window = NULL;
        gtk_widget_destroy(win);
    }
    c->closed = true;
    if (!c->connecting)
        console_free(c);
}

void console_close(struct console *c)
{
    gtk_widget_destroy(c->view);
}

bool console_takes_keys(GtkWidget *focus)
{
    return focus && (VNC_IS_DISPLAY(focus) || VTE_IS_TERMINAL(focus));
}

/* ---- building it ---- */

static GtkWidget *build_bar(struct console *c)
{
    GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_widget_set_hexpand(bar, TRUE);
    GtkWidget *start = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *end = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);

    c->back = gtk_button_new_from_icon_name("go-previous-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_widget_set_tooltip_text(c->back, "Back to the list (the VM runs on)");
    atk_object_set_name(gtk_widget_get_accessible(c->back), "Back to the list");
    gtk_widget_set_no_show_all(c->back, TRUE);
    g_signal_connect(c->back, "clicked", G_CALLBACK(go_back), c);
    gtk_container_add(GTK_CONTAINER(start), c->back);
    if (c->has_screen) {
        gtk_container_add(GTK_CONTAINER(start), send_key_button(c));
        GtkWidget *shot = gtk_button_new_from_icon_name("camera-photo-symbolic", GTK_ICON_SIZE_BUTTON);
        gtk_widget_set_tooltip_text(shot, "Save a screenshot");
        atk_object_set_name(gtk_widget_get_accessible(shot), "Screenshot");
        g_signal_connect(shot, "clicked", G_CALLBACK(save_screenshot), c);
        gtk_container_add(GTK_CONTAINER(start), shot);
        gtk_container_add(GTK_CONTAINER(start), medium_button(c));
    }

    GtkWidget *switcher = gtk_stack_switcher_new();
    gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(switcher), GTK_STACK(c->stack));
    gtk_widget_set_tooltip_text(switcher, "Closing the console leaves the VM running");
    gtk_widget_set_hexpand(switcher, TRUE);
    gtk_widget_set_halign(switcher, GTK_ALIGN_CENTER);

    c->place = gtk_button_new();
    g_signal_connect(c->place, "clicked", G_CALLBACK(move_console), c);
    if (c->has_screen) {
        c->fit = icon_toggle("zoom-fit-best-symbolic", "Scale the screen to the window (else 1:1)",
                             "Scale to window");
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c->fit), TRUE);
        g_signal_connect(c->fit, "toggled", G_CALLBACK(toggle_scaling), c);
        gtk_container_add(GTK_CONTAINER(end), c->fit);
        c->full = icon_toggle("view-fullscreen-symbolic", "Full screen", "Full screen");
        g_signal_connect(c->full, "toggled", G_CALLBACK(toggle_fullscreen), c);
        gtk_container_add(GTK_CONTAINER(end), c->full);
    }
    gtk_container_add(GTK_CONTAINER(end), c->place);

    gtk_container_add(GTK_CONTAINER(bar), start);
    gtk_container_add(GTK_CONTAINER(bar), switcher);
    gtk_container_add(GTK_CONTAINER(bar), end);
    return bar;
}

static GtkWidget *screen_page(struct console *c)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    atk_object_set_name(gtk_widget_get_accessible(c->vnc), "Screen");
    vnc_display_set_pointer_local(VNC_DISPLAY(c->vnc), TRUE);
    gtk_widget_set_hexpand(c->vnc, TRUE);
    gtk_widget_set_vexpand(c->vnc, TRUE);
    g_signal_connect(c->vnc, "vnc-initialized", G_CALLBACK(on_initialized), c);
    g_signal_connect(c->vnc, "vnc-desktop-resize", G_CALLBACK(on_resized), c);
    g_signal_connect(c->vnc, "vnc-disconnected", G_CALLBACK(on_disconnected), c);
    g_signal_connect(c->vnc, "vnc-auth-credential", G_CALLBACK(on_credential), c);
    g_signal_connect(c->vnc, "vnc-auth-failure", G_CALLBACK(on_auth_failure), c);
    g_signal_connect(c->vnc, "vnc-pointer-grab", G_CALLBACK(on_grab), c);
    g_signal_connect(c->vnc, "vnc-pointer-ungrab", G_CALLBACK(on_ungrab), c);
    g_signal_connect(c->vnc, "draw", G_CALLBACK(draw_exact), c);
    g_signal_connect(c->vnc, "notify::scale-factor", G_CALLBACK(scale_factor_changed), c);
    c->grab_hint = gtk_label_new("The pointer is held by the VM: Ctrl+Alt releases it.");
    gtk_widget_set_no_show_all(c->grab_hint, TRUE);
    c->status = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(c->status), TRUE);
    atk_object_set_name(gtk_widget_get_accessible(c->status), "Console status");
    gtk_widget_set_no_show_all(c->status, TRUE);
    gtk_container_add(GTK_CONTAINER(box), c->vnc);
    gtk_container_add(GTK_CONTAINER(box), c->grab_hint);
    gtk_container_add(GTK_CONTAINER(box), c->status);
    return box;
}

static struct console *console_new(struct manager *m, struct vm_entry *e)
{
    struct console *c = g_new0(struct console, 1);
    c->m = m;
    c->serial_fd = -1;
    c->name = g_strdup(e->name);
    c->control = g_strdup(burrow_vm_control_path(e->vm));
    c->serial_path = g_strdup(burrow_vm_console_path(e->vm));
    c->has_screen = strcmp(e->display, "none") != 0;
    const struct burrow_vmdef *d = burrow_vm_def(e->vm);
    if (d && d->vnc_password_file[0])
        c->password_file = g_strdup(d->vnc_password_file);

    c->stack = gtk_stack_new();
    c->vnc = vnc_display_new();
    if (c->has_screen)
        gtk_stack_add_titled(GTK_STACK(c->stack), screen_page(c), "screen", "Screen");
    else
        g_object_ref_sink(c->vnc);   /* unused, closed with the console */
    gtk_stack_add_titled(GTK_STACK(c->stack), serial_page(c), "serial", "Serial console");
    g_signal_connect(c->stack, "notify::visible-child", G_CALLBACK(page_changed), c);
    c->bar = g_object_ref_sink(build_bar(c));

    /* The view: the bar's place in the main window, and the pages under
     * full screen's toolbar. */
    c->view = g_object_ref_sink(gtk_box_new(GTK_ORIENTATION_VERTICAL, 0));
    c->bar_slot = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(c->bar_slot), "toolbar");
    gtk_style_context_add_class(gtk_widget_get_style_context(c->bar_slot), "console-bar");
    gtk_container_add(GTK_CONTAINER(c->view), c->bar_slot);
    GtkWidget *overlay = gtk_overlay_new();
    gtk_widget_set_vexpand(overlay, TRUE);
    gtk_container_add(GTK_CONTAINER(overlay), c->stack);
    c->reveal = gtk_revealer_new();
    gtk_widget_set_halign(c->reveal, GTK_ALIGN_CENTER);
    gtk_widget_set_valign(c->reveal, GTK_ALIGN_START);
    GtkWidget *osd = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_style_context_add_class(gtk_widget_get_style_context(osd), "osd");
    gtk_container_add(GTK_CONTAINER(osd), gtk_label_new(e->name));
    if (c->has_screen)
        gtk_container_add(GTK_CONTAINER(osd), send_key_button(c));
    GtkWidget *leave = gtk_button_new_with_label("Leave full screen");
    g_signal_connect(leave, "clicked", G_CALLBACK(leave_fullscreen), c);
    gtk_container_add(GTK_CONTAINER(osd), leave);
    gtk_container_add(GTK_CONTAINER(c->reveal), osd);
    gtk_overlay_add_overlay(GTK_OVERLAY(overlay), c->reveal);
    gtk_container_add(GTK_CONTAINER(c->view), overlay);
    g_signal_connect(c->view, "destroy", G_CALLBACK(view_destroyed), c);
    if (c->has_screen)
        apply_scaling(c);
    return c;
}

void console_show(struct manager *m, struct vm_entry *e)
{
    if (!e->vm)
        return;
    struct console *c = g_hash_table_lookup(m->consoles, e->name);
    if (c) {
        /* Open already: shown where it is. */
        if (c->in_main) {
            char *sub = g_strdup_printf("%s — Console", c->name);
            manager_show_console_page(m, sub);
            g_free(sub);
            gtk_window_present(GTK_WINDOW(m->window));
        } else {
            gtk_window_present(GTK_WINDOW(c->window));
        }
        return;
    }
    c = console_new(m, e);
    g_hash_table_insert(m->consoles, c->name, c);
    if (prefs_console_in_main())
        into_main(c);
    else
        into_window(c);
    /* The port serves several clients: attached now, so what the guest
     * prints from here on is in the terminal. */
    serial_connect(c);
    if (c->has_screen) {
        set_status(c, "Connecting…");
        console_connect(c);
    } else {
        gtk_stack_set_visible_child_name(GTK_STACK(c->stack), "serial");
        gtk_widget_grab_focus(c->term);
    }
}

void console_close_all(struct manager *m)
{
    GList *all = g_hash_table_get_values(m->consoles);
    for (GList *l = all; l; l = l->next)
        console_close(l->data);
    g_list_free(all);
}
