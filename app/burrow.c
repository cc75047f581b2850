/* burrow: the command line of the Burrow virtual machine manager. */
#include <stdio.h>
#include <string.h>

#include "app/cli.h"

static void list_commands(FILE *f, const char *group, const struct cli_command *cmds)
{
    for (const struct cli_command *c = cmds; c->name; c++)
    {
        char name[32];
        snprintf(name, sizeof(name), "%s%s%s", group ? group : "", group ? " " : "", c->name);
        fprintf(f, "  %-16s %s\n", name, c->summary);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: burrow COMMAND [ARGS...]\n"
               "Manages Burrow virtual machines and their disks.\n\n"
               "Commands:\n");
    list_commands(f, NULL, cli_vm_commands);
    list_commands(f, "disk", cli_disk_commands);
    list_commands(f, "usb", cli_usb_commands);
    fprintf(f, "\n'burrow COMMAND --help' describes a command.\n");
}

static int run_group(const char *group, const struct cli_command *cmds, int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: burrow %s COMMAND [ARGS...]\n\nCommands:\n", group);
        list_commands(f, NULL, cmds);
        return argc < 1 ? 2 : 0;
    }
    for (const struct cli_command *c = cmds; c->name; c++)
        if (!strcmp(c->name, argv[0]))
            return c->run(argc, argv);
    fprintf(stderr, "burrow: unknown command '%s %s' (see 'burrow %s --help')\n", group, argv[0], group);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("burrow 0.1.0\n");
        return 0;
    }
    if (!strcmp(argv[1], "disk"))
        return run_group("disk", cli_disk_commands, argc - 2, argv + 2);
    if (!strcmp(argv[1], "usb"))
        return run_group("usb", cli_usb_commands, argc - 2, argv + 2);
    for (const struct cli_command *c = cli_vm_commands; c->name; c++)
        if (!strcmp(c->name, argv[1]))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "burrow: unknown command '%s' (see 'burrow --help')\n", argv[1]);
    return 2;
}
