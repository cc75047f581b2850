/* What the host checks (app/hostcheck.h) say, where the manager needs it:
 * an info bar in the New VM assistant, and the reasons why Start cannot
 * work, before burrow-vm is spawned only to die.  The checks create a test
 * VM, which is quick on a desktop's KVM but can take seconds on a slow one,
 * so they run off the main thread. */
#include <string.h>

#include "app/hostcheck.h"
#include "gui/manager/manager.h"

static void show_report(GtkWidget *bar, const struct hostcheck_report *r)
{
    GtkWidget *label = g_object_get_data(G_OBJECT(bar), "label");
    char verdict[160];
    hostcheck_verdict_text(r, verdict, sizeof(verdict));
    char *problems = hostcheck_problems_text(r, HOSTCHECK_WARN, false);
    char *markup = g_markup_printf_escaped("<b>%s</b>%s%s", verdict, problems[0] ? "\n" : "", problems);
    gtk_label_set_markup(GTK_LABEL(label), markup);
    gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), r->verdict == HOSTCHECK_FAIL ? GTK_MESSAGE_ERROR
                                                     : r->verdict == HOSTCHECK_WARN ? GTK_MESSAGE_WARNING
                                                                                    : GTK_MESSAGE_INFO);
    g_free(markup);
    g_free(problems);
}

static void run_checks(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    hostcheck_run(data, NULL);
    g_task_return_boolean(task, TRUE);
}

/* On the main thread.  The task keeps the bar alive, but once the
 * assistant closed, its label is gone. */
static void checks_done(GObject *bar, GAsyncResult *res, gpointer unused)
{
    if (!g_object_get_data(bar, "destroyed"))
        show_report(GTK_WIDGET(bar), g_task_get_task_data(G_TASK(res)));
}

static void on_bar_destroy(GtkWidget *bar, gpointer unused)
{
    g_object_set_data(G_OBJECT(bar), "destroyed", GINT_TO_POINTER(1));
}

GtkWidget *hostinfo_bar(void)
{
    GtkWidget *bar = gtk_info_bar_new();
    gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), GTK_MESSAGE_OTHER);
    GtkWidget *label = gtk_label_new("Checking whether this computer can run virtual machines…");
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
    atk_object_set_name(gtk_widget_get_accessible(label), "Host check");
    gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), label);
    g_object_set_data(G_OBJECT(bar), "label", label);
    g_signal_connect(bar, "destroy", G_CALLBACK(on_bar_destroy), NULL);

    GTask *task = g_task_new(bar, NULL, checks_done, NULL);
    g_task_set_task_data(task, g_new0(struct hostcheck_report, 1), g_free);
    g_task_run_in_thread(task, run_checks);
    g_object_unref(task);
    return bar;
}

char *hostinfo_kvm_problems(void)
{
    struct hostcheck_report *r = g_new0(struct hostcheck_report, 1);
    hostcheck_run(r, NULL);
    char *why = hostcheck_kvm_ok(r) ? NULL : hostcheck_problems_text(r, HOSTCHECK_FAIL, true);
    g_free(r);
    return why;
}

unsigned host_free_memory_mib(void)
{
    char *text = NULL;
    unsigned mib = 0;
    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
        return 0;
    const char *p = strstr(text, "MemAvailable:");
    if (p) {
        unsigned long long kib = g_ascii_strtoull(p + strlen("MemAvailable:"), NULL, 10);
        mib = (unsigned)MIN(kib / 1024, (unsigned long long)BURROW_MEMORY_MAX);
    }
    g_free(text);
    return mib;
}
