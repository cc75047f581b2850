/* A private PulseAudio server for tests: started in a temporary folder
 * with a script of its own (no system or user configuration), two null
 * sinks and a UNIX socket there, and the PulseAudio tools run against it.
 *   burrow_out   the VM plays here; parec records its monitor
 *   burrow_mic   tones played here reach the VM's microphone through its
 *                monitor, burrow_mic.monitor
 * The server logs to pa.log in its folder (BURROW_PA_VERBOSE=1: at debug
 * level), which goes with the folder at the end. */
#ifndef BURROW_PA_SERVER_H
#define BURROW_PA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pa_server {
    char dir[64];
    char socket[128];
    char server[144];       /* "unix:SOCKET", for PULSE_SERVER and server= */
    pid_t pid;
};

/* Starts the server and waits until it answers.  Returns -1 with the
 * reason in err (the server's log included) when it cannot. */
int pa_server_start(struct pa_server *s, char *err, size_t errlen);
/* Ends the server; keep: the folder stays, for a start on the same socket. */
void pa_server_stop(struct pa_server *s, bool keep);

/* Runs a PulseAudio tool (parec, pacat, pactl) against the server, its
 * stdin from in_fd (-1: /dev/null) and stdout into *out_fd (a pipe's
 * reading end, non-blocking; NULL: /dev/null).  Returns its pid. */
pid_t pa_server_spawn(const struct pa_server *s, char *const argv[], int in_fd, int *out_fd);
/* Runs a tool and returns its whole output (malloc'd), NULL on failure. */
char *pa_server_output(const struct pa_server *s, char *const argv[]);

#endif
