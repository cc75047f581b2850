/* Supervision of burrow-vm processes: the command line derived from a
 * definition, spawning detached, live state, stop, stale runtime files.
 *
 * Liveness comes from three witnesses, so a crash cannot fool it: the run
 * lock (NAME.run, an open-file-description lock taken by `start` and
 * inherited by burrow-vm, released by the kernel when the process dies
 * however it dies, and only ever tested by the probes, never taken), the
 * pid file with /proc/PID/cmdline naming our control socket, and the
 * control socket answering.  A dead process that left its control socket file behind
 * (burrow-vm removes it when it exits normally) crashed. */
#ifndef BURROW_APP_SUPERVISE_H
#define BURROW_APP_SUPERVISE_H

#include "app/burrow.h"
#include "app/paths.h"

/* burrow-vm's argv (NULL-terminated; g_strfreev()) for def.  binary is
 * argv[0]. */
char **supervise_build_argv(const char *binary, const struct burrow_vmdef *def,
                            const struct vm_paths *p, const struct burrow_start_opts *opts,
                            struct burrow_error *err);

/* The burrow-vm to run: $BURROW_VM, else next to this program, else PATH. */
int supervise_find_vm_binary(char *buf, size_t len, struct burrow_error *err);

/* State of vm (only vm->paths and the name are used). */
enum burrow_vm_state supervise_state(struct burrow_vm *vm, struct burrow_vm_status *st);

/* Removes the runtime files of a VM whose process is gone. */
void supervise_cleanup(struct burrow_vm *vm);

#endif
