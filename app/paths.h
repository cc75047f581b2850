/* Where Burrow keeps things (XDG base directories), name checks, locks and
 * atomic file writes: the file-system layer under libburrow. */
#ifndef BURROW_APP_PATHS_H
#define BURROW_APP_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "app/burrow.h"

#define VM_DEF_FILE "vm.ini"

/* Every file of one VM, absolute. */
struct vm_paths {
    char dir[BURROW_PATH_MAX];      /* $XDG_DATA_HOME/burrow/vms/NAME */
    char def[BURROW_PATH_MAX];      /* .../NAME/vm.ini */
    char lock[BURROW_PATH_MAX];     /* $XDG_RUNTIME_DIR/burrow/NAME.lock: edits */
    char run[BURROW_PATH_MAX];      /* .../NAME.run: held while burrow-vm lives */
    char pid[BURROW_PATH_MAX];      /* .../NAME.pid */
    char control[BURROW_PATH_MAX];  /* .../NAME.sock */
    char console[BURROW_PATH_MAX];  /* .../NAME.console: the serial port */
    char log[BURROW_PATH_MAX];      /* $XDG_STATE_HOME/burrow/NAME.log */
};

/* $XDG_DATA_HOME/burrow/vms (not created). */
int paths_vms_dir(char *buf, size_t len, struct burrow_error *err);
/* $XDG_RUNTIME_DIR/burrow, created with mode 0700.  Without XDG_RUNTIME_DIR:
 * a private directory under $TMPDIR (or /tmp) owned by this user. */
int paths_runtime_dir(char *buf, size_t len, struct burrow_error *err);
/* $XDG_STATE_HOME/burrow, created. */
int paths_state_dir(char *buf, size_t len, struct burrow_error *err);

/* Fills p for a valid name; creates the runtime and state directories. */
int vm_paths_get(const char *name, struct vm_paths *p, struct burrow_error *err);

/* mkdir -p with mode for the directories it creates. */
int mkdir_p(const char *path, mode_t mode, struct burrow_error *err);

/* Opens (creating) path and takes an exclusive flock, waiting up to
 * timeout_ms (< 0: forever).  Returns the fd (close it to unlock). */
int lock_file(const char *path, int timeout_ms, struct burrow_error *err);
/* Takes the run lock on path (created): an open-file-description lock that
 * whoever inherits the fd keeps, dropped by the kernel when the last copy
 * closes.  Returns the fd, or -1 when another process holds it. */
int run_lock_take(const char *path, struct burrow_error *err);
/* True when some process holds the run lock on path.  Only tests it: it
 * takes nothing, so it can never make run_lock_take fail. */
bool lock_is_held(const char *path);

/* Writes data to path atomically: temporary file in the same directory,
 * fsync, rename, fsync of the directory. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct burrow_error *err);
/* Reads a whole file (NUL-terminated; free()).  NULL with errno set. */
char *read_file(const char *path, size_t *len);

/* snprintf into buf; -1 with err when it does not fit. */
int path_join(char *buf, size_t len, struct burrow_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
