/* The manager's own settings: what the user chose in the manager itself,
 * as opposed to a VM's settings, which live in its definition.  A GKeyFile
 * in $XDG_CONFIG_HOME/burrow/manager.ini, read when needed (so two
 * managers see each other's choices) and written atomically. */
#include <errno.h>
#include <string.h>

#include "app/paths.h"
#include "gui/manager/manager.h"

#define PREFS_GROUP_CONSOLE "console"
#define PREFS_KEY_PLACEMENT "placement"

static char *prefs_path(void)
{
    return g_build_filename(g_get_user_config_dir(), "burrow", "manager.ini", NULL);
}

/* The file's settings; an empty set when it does not exist.  NULL with
 * *err when it exists but cannot be read or parsed: then it is neither
 * trusted nor overwritten. */
static GKeyFile *prefs_load(char **err)
{
    char *path = prefs_path();
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, &gerr) &&
        !g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
        *err = g_strdup_printf("%s: %s", path, gerr->message);
        g_key_file_free(kf);
        kf = NULL;
    }
    g_clear_error(&gerr);
    g_free(path);
    return kf;
}

bool prefs_console_in_main(void)
{
    char *err = NULL;
    GKeyFile *kf = prefs_load(&err);
    if (!kf) {
        g_warning("ignoring the manager's settings: %s", err);
        g_free(err);
        return false;
    }
    char *v = g_key_file_get_string(kf, PREFS_GROUP_CONSOLE, PREFS_KEY_PLACEMENT, NULL);
    bool main = v && !strcmp(v, "main");
    if (v && !main && strcmp(v, "window"))
        g_warning("manager.ini: [%s] %s=%s is neither \"window\" nor \"main\"; using \"window\"",
                  PREFS_GROUP_CONSOLE, PREFS_KEY_PLACEMENT, v);
    g_free(v);
    g_key_file_free(kf);
    return main;
}

int prefs_set_console_in_main(bool on, char **err)
{
    GKeyFile *kf = prefs_load(err);
    if (!kf)
        return -1;
    g_key_file_set_string(kf, PREFS_GROUP_CONSOLE, PREFS_KEY_PLACEMENT, on ? "main" : "window");
    gsize len = 0;
    char *data = g_key_file_to_data(kf, &len, NULL);
    g_key_file_free(kf);
    char *path = prefs_path();
    char *dir = g_path_get_dirname(path);
    struct burrow_error berr;
    int rc = mkdir_p(dir, 0700, &berr);
    if (rc == 0)
        rc = write_file_atomic(path, data, len, 0600, &berr);
    if (rc < 0)
        *err = g_strdup(berr.msg);
    g_free(dir);
    g_free(path);
    g_free(data);
    return rc;
}
