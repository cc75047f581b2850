/* A window with a running VM's screen, for VMs whose screen has no window
 * of its own (headless, or VNC without a viewer installed): the screen is
 * refreshed from the VM's screenshots. */
#include <string.h>
#include <glib/gstdio.h>

#include "gui/manager/manager.h"

#define CONSOLE_INTERVAL_MS 500

struct console {
    struct manager *m;
    char *name, *control, *path;
    GtkWidget *window, *image, *status;
    guint timer;
    bool busy, closed;
};

static void console_unref(struct console *c)
{
    /* Freed once both the window and any screenshot in flight are done. */
    if (!c->closed || c->busy)
        return;
    g_free(c->name);
    g_free(c->control);
    g_free(c->path);
    g_free(c);
}

static void shot_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
    struct console *c = data;
    struct burrow_error err;
    struct burrow_ctl *ctl = burrow_ctl_connect(c->control, 0, &err);
    if (!ctl) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
        return;
    }
    json_t *args = json_pack("{s:s}", "path", c->path);
    int rc = burrow_ctl_command(ctl, "screenshot", args, NULL, 3000, &err);
    json_decref(args);
    burrow_ctl_close(ctl);
    if (rc < 0)
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", err.msg);
    else
        g_task_return_boolean(task, TRUE);
}

static void shot_done(GObject *src, GAsyncResult *res, gpointer data)
{
    struct console *c = data;
    GError *gerr = NULL;
    bool ok = g_task_propagate_boolean(G_TASK(res), &gerr);
    c->busy = false;
    if (!c->closed) {
        if (ok) {
            GdkPixbuf *pb = gdk_pixbuf_new_from_file(c->path, NULL);
            if (pb) {
                gtk_image_set_from_pixbuf(GTK_IMAGE(c->image), pb);
                g_object_unref(pb);
            }
            gtk_label_set_text(GTK_LABEL(c->status), "");
        } else {
            gtk_label_set_text(GTK_LABEL(c->status), gerr ? gerr->message : "no screen");
        }
    }
    g_clear_error(&gerr);
    g_unlink(c->path);
    console_unref(c);
}

static gboolean console_tick(gpointer data)
{
    struct console *c = data;
    if (c->busy)
        return G_SOURCE_CONTINUE;
    c->busy = true;
    GTask *t = g_task_new(NULL, NULL, shot_done, c);
    g_task_set_task_data(t, c, NULL);
    g_task_run_in_thread(t, shot_thread);
    g_object_unref(t);
    return G_SOURCE_CONTINUE;
}

static void console_destroyed(GtkWidget *w, gpointer data)
{
    struct console *c = data;
    g_source_remove(c->timer);
    c->closed = true;
    console_unref(c);
}

void console_show(struct manager *m, struct vm_entry *e)
{
    if (!e->vm || !m->thumb_dir)
        return;
    struct console *c = g_new0(struct console, 1);
    c->m = m;
    c->name = g_strdup(e->name);
    c->control = g_strdup(burrow_vm_control_path(e->vm));
    c->path = g_strdup_printf("%s/%s-console.png", m->thumb_dir, e->name);
    c->window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    GtkWidget *hb = gtk_header_bar_new();
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(hb), TRUE);
    gtk_header_bar_set_title(GTK_HEADER_BAR(hb), e->name);
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(hb),
                                e->vnc_addr[0] ? e->vnc_addr : "Screen (refreshed twice a second)");
    gtk_window_set_titlebar(GTK_WINDOW(c->window), hb);
    char *title = g_strdup_printf("%s — Console", e->name);
    gtk_window_set_title(GTK_WINDOW(c->window), title);
    atk_object_set_name(gtk_widget_get_accessible(c->window), title);
    g_free(title);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    c->image = gtk_image_new();
    gtk_widget_set_size_request(c->image, 640, 400);
    atk_object_set_name(gtk_widget_get_accessible(c->image), "Screen");
    c->status = gtk_label_new("");
    gtk_container_add(GTK_CONTAINER(box), c->image);
    gtk_container_add(GTK_CONTAINER(box), c->status);
    gtk_container_add(GTK_CONTAINER(c->window), box);
    g_signal_connect(c->window, "destroy", G_CALLBACK(console_destroyed), c);
    c->timer = g_timeout_add(CONSOLE_INTERVAL_MS, console_tick, c);
    console_tick(c);
    gtk_widget_show_all(c->window);
}
