/* The `burrow` command line: commands are grouped in tables that the
 * dispatcher in app/burrow.c walks. */
#ifndef BURROW_CLI_H
#define BURROW_CLI_H

struct cli_command {
    const char *name;
    const char *summary;        /* one line for the command list */
    /* argv[0] is the command name; returns the process exit status
     * (0 ok, 1 failure, 2 usage error). */
    int (*run)(int argc, char **argv);
};

/* `burrow disk ...` subcommands (app/disk_cli.c); NULL-name terminated. */
extern const struct cli_command cli_disk_commands[];
extern const struct cli_command cli_vm_commands[];    /* `burrow create|start|...` (app/cli_vm.c) */
/* `burrow usb ...` subcommands (app/usb_cli.c). */
extern const struct cli_command cli_usb_commands[];

/* A progress bar on stderr for long work (conversions): pass a struct
 * cli_bar with last = -1 as opaque; end the line when last >= 0. */
#include <stdint.h>
struct cli_bar {
    int last;       /* per mille shown, -1 before the first */
};
void cli_progress(void *opaque, uint64_t done, uint64_t total);

#endif
