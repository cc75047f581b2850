/* Long operations (disk creation, start, stop, clone, delete) on a worker
 * thread.  The main loop keeps running; a progress dialog appears when the
 * work takes longer than a moment, showing a fraction when the work
 * reports one and pulsing otherwise. */
#include <stdatomic.h>

#include "gui/manager/manager.h"

#define OP_SHOW_DELAY_MS 300
#define OP_TICK_MS       100

struct op {
    struct manager *m;
    GtkWindow *parent;
    char *title;
    op_work_fn work;
    op_done_fn done;
    void *data;
    GDestroyNotify free_data;
    /* Progress in millionths; -1 while unknown. */
    atomic_int progress;
    int rc;
    struct burrow_error err;
    GtkWidget *dialog, *bar;
    guint tick;
    gint64 started;
};

static void op_progress(void *opaque, double frac)
{
    struct op *op = opaque;
    if (frac < 0)
        frac = 0;
    if (frac > 1)
        frac = 1;
    atomic_store(&op->progress, (int)(frac * 1000000));
}

static void op_show_dialog(struct op *op)
{
    GtkWidget *d = gtk_dialog_new();
    gtk_window_set_title(GTK_WINDOW(d), op->title);
    gtk_window_set_modal(GTK_WINDOW(d), TRUE);
    gtk_window_set_deletable(GTK_WINDOW(d), FALSE);
    gtk_window_set_resizable(GTK_WINDOW(d), FALSE);
    if (op->parent)
        gtk_window_set_transient_for(GTK_WINDOW(d), op->parent);
    GtkWidget *box = gtk_dialog_get_content_area(GTK_DIALOG(d));
    gtk_container_set_border_width(GTK_CONTAINER(box), 18);
    gtk_box_set_spacing(GTK_BOX(box), 12);
    GtkWidget *label = gtk_label_new(op->title);
    gtk_widget_set_halign(label, GTK_ALIGN_START);
    gtk_style_context_add_class(gtk_widget_get_style_context(label), "title");
    gtk_container_add(GTK_CONTAINER(box), label);
    op->bar = gtk_progress_bar_new();
    gtk_widget_set_size_request(op->bar, 320, -1);
    atk_object_set_name(gtk_widget_get_accessible(op->bar), "Progress");
    gtk_container_add(GTK_CONTAINER(box), op->bar);
    gtk_widget_show_all(d);
    op->dialog = d;
}

static gboolean op_tick(gpointer opaque)
{
    struct op *op = opaque;
    if (op->title && !op->dialog && g_get_monotonic_time() - op->started >= OP_SHOW_DELAY_MS * 1000)
        op_show_dialog(op);
    if (op->bar) {
        int p = atomic_load(&op->progress);
        if (p < 0)
            gtk_progress_bar_pulse(GTK_PROGRESS_BAR(op->bar));
        else
            gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(op->bar), p / 1e6);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean op_finish(gpointer opaque)
{
    struct op *op = opaque;
    g_source_remove(op->tick);
    if (op->dialog)
        gtk_widget_destroy(op->dialog);
    if (op->done)
        op->done(op->m, op->data, op->rc, &op->err);
    if (op->free_data)
        op->free_data(op->data);
    if (op->parent)
        g_object_unref(op->parent);
    g_free(op->title);
    g_free(op);
    return G_SOURCE_REMOVE;
}

static gpointer op_thread(gpointer opaque)
{
    struct op *op = opaque;
    op->rc = op->work(op->data, &op->err, op_progress, op);
    g_idle_add(op_finish, op);
    return NULL;
}

void op_run(struct manager *m, GtkWindow *parent, const char *title, op_work_fn work, op_done_fn done,
            void *data, GDestroyNotify free_data)
{
    struct op *op = g_new0(struct op, 1);
    op->m = m;
    op->parent = parent ? g_object_ref(parent) : NULL;
    op->title = g_strdup(title);   /* NULL: no dialog, the list shows the progress */
    op->work = work;
    op->done = done;
    op->data = data;
    op->free_data = free_data;
    atomic_init(&op->progress, -1);
    op->started = g_get_monotonic_time();
    op->tick = g_timeout_add(OP_TICK_MS, op_tick, op);
    GError *gerr = NULL;
    GThread *t = g_thread_try_new("burrow-op", op_thread, op, &gerr);
    if (!t) {
        op->rc = -1;
        burrow_error_set(&op->err, "cannot start a worker thread: %s", gerr->message);
        g_error_free(gerr);
        g_idle_add(op_finish, op);
        return;
    }
    g_thread_unref(t);
}
