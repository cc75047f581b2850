/* The VM definition parser (app/vmdef.c: vm.ini, GKeyFile syntax with
 * Burrow's own checks, errors naming file and line).
 *
 * Input: the text of a vm.ini.  When it parses, the definition must pass
 * burrow_vmdef_validate(); formatting it must give a text that parses
 * again and formats to the same text; and the burrow-vm command line built
 * from it must carry --net options that burrow-vm's own parser takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "app/supervise.h"
#include "app/vmdef.h"
#include "devices/net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct burrow_vmdef def, again;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, detail);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct burrow_error err;
    if (vmdef_parse((const char *)data, size, "vm.ini", NULL, &def, &err) != 0)
        return 0;
    if (burrow_vmdef_validate(&def, &err) != 0)
        fail("a parsed definition does not validate", err.msg);
    size_t len;
    char *text = vmdef_format(&def, &len);
    if (!text)
        abort();
    if (vmdef_parse(text, len, "vm.ini", def.name, &again, &err) != 0)
        fail("the formatted definition does not parse", err.msg);
    char *text2 = vmdef_format(&again, NULL);
    if (strcmp(text, text2))
        fail("formatting twice gives two texts", text2);
    g_free(text2);
    g_free(text);

    struct vm_paths p;
    memset(&p, 0, sizeof(p));
    snprintf(p.dir, sizeof(p.dir), "/vms/%s", def.name);
    snprintf(p.control, sizeof(p.control), "/run/%s.sock", def.name);
    snprintf(p.console, sizeof(p.console), "/run/%s.console", def.name);
    char **argv = supervise_build_argv("burrow-vm", &def, &p, NULL, &err);
    for (char **a = argv; a && *a; a++) {
        if (!strcmp(a[0], "--net") && a[1]) {
            struct net_user_opts opts;
            char msg[256];
            if (net_parse_opts(a[1], &opts, msg, sizeof(msg)) < 0)
                fail(a[1], msg);
        }
    }
    g_strfreev(argv);
    return 0;
}
