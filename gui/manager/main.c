/* burrow-manager: the point-and-click VM manager (GTK 3). */
#include <unistd.h>

#include "gui/manager/manager.h"

static struct manager *mgr;

unsigned host_memory_mib(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0)
        return 4096;
    unsigned long long mib = (unsigned long long)pages * (unsigned long long)size >> 20;
    return mib > BURROW_MEMORY_MAX ? BURROW_MEMORY_MAX : (unsigned)mib;
}

unsigned host_cpus(void)
{
    unsigned n = g_get_num_processors();
    return n > BURROW_CPUS_MAX ? BURROW_CPUS_MAX : n;
}

static void activate(GtkApplication *app, gpointer data)
{
    if (!mgr)
        mgr = manager_new(app);
    gtk_window_present(GTK_WINDOW(mgr->window));
}

static void quit(GSimpleAction *a, GVariant *p, gpointer data)
{
    g_application_quit(G_APPLICATION(data));
}

/* Installed, the icon is in the icon theme; run from the build tree it is
 * in icons/ next to this program. */
static void find_icon(void)
{
    GtkIconTheme *theme = gtk_icon_theme_get_default();
    if (gtk_icon_theme_has_icon(theme, MANAGER_APP_ID))
        return;
    char *exe = g_file_read_link("/proc/self/exe", NULL);
    if (!exe)
        return;
    char *dir = g_path_get_dirname(exe);
    char *icons = g_build_filename(dir, "icons", NULL);
    if (g_file_test(icons, G_FILE_TEST_IS_DIR))
        gtk_icon_theme_append_search_path(theme, icons);
    g_free(icons);
    g_free(dir);
    g_free(exe);
}

static void startup(GApplication *app, gpointer data)
{
    GSimpleAction *q = g_simple_action_new("quit", NULL);
    g_signal_connect(q, "activate", G_CALLBACK(quit), app);
    g_action_map_add_action(G_ACTION_MAP(app), G_ACTION(q));
    g_object_unref(q);
    const char *accels[] = { "<Primary>q", NULL };
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), "app.quit", accels);
    g_set_application_name("Burrow");
    find_icon();
    gtk_window_set_default_icon_name(MANAGER_APP_ID);
}

int main(int argc, char **argv)
{
    /* Without a session bus (a bare X server) there is nobody to be
     * unique against: run as a plain instance then. */
    GApplicationFlags flags = G_APPLICATION_DEFAULT_FLAGS;
    if (!g_getenv("DBUS_SESSION_BUS_ADDRESS"))
        flags |= G_APPLICATION_NON_UNIQUE;
    GtkApplication *app = gtk_application_new(MANAGER_APP_ID, flags);
    g_signal_connect(app, "startup", G_CALLBACK(startup), NULL);
    g_signal_connect(app, "activate", G_CALLBACK(activate), NULL);
    int rc = g_application_run(G_APPLICATION(app), argc, argv);
    if (mgr)
        manager_free(mgr);
    g_object_unref(app);
    return rc;
}
