/* A running VM's screen in a window of the manager, interactive: gtk-vnc
 * speaks RFB over a socket that the VM's control socket hands over
 * ("display-connect"), so no TCP port is opened and only the VM's owner
 * gets in.  A second page is a terminal (VTE) on the VM's serial port (its
 * UNIX socket, the one `burrow console` uses; the port takes one client at
 * a time, so the page connects only once it is shown).  Closing the window
 * leaves the VM running; opening it again attaches again. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib-unix.h>
#include <gtk/gtk.h>
#include <vncdisplay.h>
#include <vte/vte.h>

#include "gui/manager/manager.h"

struct console {
    struct manager *m;
    char *name, *control, *password_file, *serial_path;
    GtkWidget *window, *stack, *vnc, *status, *grab_hint;
    GtkWidget *reveal;          /* the toolbar that shows at the top in full screen */
    GtkWidget *full;            /* the header bar's full-screen toggle */
    guint reveal_timer;
    GtkWidget *term, *serial_status;
    int serial_fd;
    guint serial_watch;
    bool closed, connecting, has_screen;
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
    gtk_label_set_text(GTK_LABEL(c->status), text);
    gtk_widget_set_visible(c->status, text && *text);
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

/* ---- gtk-vnc's signals ---- */

static void on_initialized(VncDisplay *vnc, gpointer data)
{
    struct console *c = data;
    set_status(c, "");
    gtk_widget_grab_focus(c->vnc);
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
    gtk_widget_grab_focus(c->term);
}

/* The port takes one client at a time: connect only when the page shows. */
static void page_changed(GObject *stack, GParamSpec *ps, gpointer data)
{
    struct console *c = data;
    const char *page = gtk_stack_get_visible_child_name(GTK_STACK(c->stack));
    if (page && !strcmp(page, "serial"))
        serial_connect(c);
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

static void toggle_scaling(GtkToggleButton *b, gpointer data)
{
    struct console *c = data;
    bool fit = gtk_toggle_button_get_active(b);
    vnc_display_set_scaling(VNC_DISPLAY(c->vnc), fit);
    /* At 1:1 the window follows the guest's screen size. */
    vnc_display_set_keep_aspect_ratio(VNC_DISPLAY(c->vnc), fit);
}

/* In full screen the header bar is gone: a toolbar slides in while the
 * pointer is at the top edge (polled, since gtk-vnc takes the motion
 * events). */
static gboolean reveal_tick(gpointer data)
{
    struct console *c = data;
    GdkWindow *w = gtk_widget_get_window(c->window);
    GdkSeat *seat = gdk_display_get_default_seat(gdk_display_get_default());
    int y = 1000;
    if (w && seat)
        gdk_window_get_device_position(w, gdk_seat_get_pointer(seat), NULL, &y, NULL);
    bool top = y >= 0 && y < 8;
    bool shown = gtk_revealer_get_reveal_child(GTK_REVEALER(c->reveal));
    if (top && !shown)
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), TRUE);
    else if (!top && shown && y > gtk_widget_get_allocated_height(c->reveal) + 8)
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), FALSE);
    return G_SOURCE_CONTINUE;
}

static void set_fullscreen(struct console *c, bool on)
{
    if (on) {
        gtk_window_fullscreen(GTK_WINDOW(c->window));
        if (!c->reveal_timer)
            c->reveal_timer = g_timeout_add(150, reveal_tick, c);
    } else {
        gtk_window_unfullscreen(GTK_WINDOW(c->window));
        if (c->reveal_timer)
            g_source_remove(c->reveal_timer);
        c->reveal_timer = 0;
        gtk_revealer_set_reveal_child(GTK_REVEALER(c->reveal), FALSE);
        if (c->full)
            gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(c->full), FALSE);
    }
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
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Choose a Disc Image", GTK_WINDOW(c->window),
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
    GtkFileChooserNative *fc = gtk_file_chooser_native_new("Save Screenshot", GTK_WINDOW(c->window),
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

/* ---- the window ---- */

static void console_destroyed(GtkWidget *w, gpointer data)
{
    struct console *c = data;
    if (c->reveal_timer)
        g_source_remove(c->reveal_timer);
    c->reveal_timer = 0;
    /* Only the viewers go: the VM runs on. */
    vnc_display_close(VNC_DISPLAY(c->vnc));
    if (!c->has_screen)
        g_object_unref(c->vnc);
    serial_close(c);
    c->closed = true;
    if (!c->connecting)
        console_free(c);
}

void console_show(struct manager *m, struct vm_entry *e)
{
    if (!e->vm)
        return;
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

    c->window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_default_size(GTK_WINDOW(c->window), 800, 600);
    GtkWidget *hb = gtk_header_bar_new();
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(hb), TRUE);
    gtk_window_set_titlebar(GTK_WINDOW(c->window), hb);
    char *title = g_strdup_printf("%s — Console", e->name);
    gtk_window_set_title(GTK_WINDOW(c->window), title);
    atk_object_set_name(gtk_widget_get_accessible(c->window), title);
    g_free(title);

    c->stack = gtk_stack_new();
    GtkWidget *switcher = gtk_stack_switcher_new();
    gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(switcher), GTK_STACK(c->stack));
    gtk_header_bar_set_custom_title(GTK_HEADER_BAR(hb), switcher);
    gtk_widget_set_tooltip_text(switcher, "Closing this window leaves the VM running");

    /* The screen page, for VMs with a display. */
    c->vnc = vnc_display_new();
    if (c->has_screen) {
        gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), send_key_button(c));
        GtkWidget *shot = gtk_button_new_from_icon_name("camera-photo-symbolic", GTK_ICON_SIZE_BUTTON);
        gtk_widget_set_tooltip_text(shot, "Save a screenshot");
        atk_object_set_name(gtk_widget_get_accessible(shot), "Screenshot");
        g_signal_connect(shot, "clicked", G_CALLBACK(save_screenshot), c);
        gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), shot);
        gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), medium_button(c));
        c->full = icon_toggle("view-fullscreen-symbolic", "Full screen", "Full screen");
        g_signal_connect(c->full, "toggled", G_CALLBACK(toggle_fullscreen), c);
        gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), c->full);
        GtkWidget *fit = icon_toggle("zoom-fit-best-symbolic", "Scale the screen to the window (else 1:1)",
                                     "Scale to window");
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(fit), TRUE);
        g_signal_connect(fit, "toggled", G_CALLBACK(toggle_scaling), c);
        gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), fit);

        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        atk_object_set_name(gtk_widget_get_accessible(c->vnc), "Screen");
        vnc_display_set_scaling(VNC_DISPLAY(c->vnc), TRUE);
        vnc_display_set_keep_aspect_ratio(VNC_DISPLAY(c->vnc), TRUE);
        vnc_display_set_pointer_local(VNC_DISPLAY(c->vnc), TRUE);
        gtk_widget_set_size_request(c->vnc, 640, 400);
        gtk_widget_set_hexpand(c->vnc, TRUE);
        gtk_widget_set_vexpand(c->vnc, TRUE);
        g_signal_connect(c->vnc, "vnc-initialized", G_CALLBACK(on_initialized), c);
        g_signal_connect(c->vnc, "vnc-disconnected", G_CALLBACK(on_disconnected), c);
        g_signal_connect(c->vnc, "vnc-auth-credential", G_CALLBACK(on_credential), c);
        g_signal_connect(c->vnc, "vnc-auth-failure", G_CALLBACK(on_auth_failure), c);
        g_signal_connect(c->vnc, "vnc-pointer-grab", G_CALLBACK(on_grab), c);
        g_signal_connect(c->vnc, "vnc-pointer-ungrab", G_CALLBACK(on_ungrab), c);
        c->grab_hint = gtk_label_new("The pointer is held by the VM: Ctrl+Alt releases it.");
        c->status = gtk_label_new("");
        gtk_label_set_line_wrap(GTK_LABEL(c->status), TRUE);
        gtk_container_add(GTK_CONTAINER(box), c->vnc);
        gtk_container_add(GTK_CONTAINER(box), c->grab_hint);
        gtk_container_add(GTK_CONTAINER(box), c->status);
        gtk_stack_add_titled(GTK_STACK(c->stack), box, "screen", "Screen");
    } else {
        g_object_ref_sink(c->vnc);   /* unused, closed with the window */
    }
    gtk_stack_add_titled(GTK_STACK(c->stack), serial_page(c), "serial", "Serial console");
    g_signal_connect(c->stack, "notify::visible-child", G_CALLBACK(page_changed), c);

    /* Full screen's toolbar, over the pages. */
    GtkWidget *overlay = gtk_overlay_new();
    gtk_container_add(GTK_CONTAINER(overlay), c->stack);
    c->reveal = gtk_revealer_new();
    gtk_widget_set_halign(c->reveal, GTK_ALIGN_CENTER);
    gtk_widget_set_valign(c->reveal, GTK_ALIGN_START);
    GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_style_context_add_class(gtk_widget_get_style_context(bar), "osd");
    gtk_container_add(GTK_CONTAINER(bar), gtk_label_new(e->name));
    if (c->has_screen)
        gtk_container_add(GTK_CONTAINER(bar), send_key_button(c));
    GtkWidget *leave = gtk_button_new_with_label("Leave full screen");
    g_signal_connect(leave, "clicked", G_CALLBACK(leave_fullscreen), c);
    gtk_container_add(GTK_CONTAINER(bar), leave);
    gtk_container_add(GTK_CONTAINER(c->reveal), bar);
    gtk_overlay_add_overlay(GTK_OVERLAY(overlay), c->reveal);
    gtk_container_add(GTK_CONTAINER(c->window), overlay);
    g_signal_connect(c->window, "destroy", G_CALLBACK(console_destroyed), c);
    gtk_widget_show_all(c->window);
    if (c->has_screen) {
        gtk_widget_hide(c->grab_hint);
        set_status(c, "Connecting…");
        console_connect(c);
    } else {
        serial_connect(c);
    }
}
