/* The 16550A UART (devices/uart8250.c) at COM1 with a unix-socket serial
 * backend and a host-side client connected to it: the guest programs and
 * writes the UART while the host sends it bytes.
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = ports 0x3f8-0x3ff.
 * TARGET: arg 0-5 the host sends bytes (a length byte, then that many,
 * arriving on the next LOOP op), arg 6 the host reads what the guest sent,
 * arg 7 the client hangs up and a new one connects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/chardev.h"
#include "devices/uart8250.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], path[300];
static struct chardev *cd;
static int client = -1;

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-fuzz-uart-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/s", dir);
    atexit(remove_dir);
    return 0;
}

static void client_connect(struct fz *f)
{
    client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (client < 0)
        abort();
    /* The backend serves a few clients at once (the last one closed
     * first here); more wait in its backlog, and past that are refused. */
    if (connect(client, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(client);
        client = -1;
        return;
    }
    for (int i = 0; i < 100 && !chardev_connected(cd); i++)
        fz_loop(f);
}

static void client_drain(void)
{
    char buf[4096];
    while (client >= 0 && recv(client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

static void target_op(struct fz *f, unsigned arg)
{
    if (arg < 6) {
        uint8_t buf[256];
        size_t n = fz_bytes(f, buf, fz_u8(f));
        if (n && client >= 0)
            send(client, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (arg == 6) {
        client_drain();
    } else {
        if (client >= 0)
            close(client);
        for (int i = 0; i < 4; i++)
            fz_loop(f);
        client_connect(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    char spec[320], err[256];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    cd = chardev_open(spec, f.h->plat.loop, err, sizeof(err));
    struct uart8250 *u = cd ? uart8250_create(&f.h->plat, UART8250_COM1_BASE, UART8250_COM1_GSI, cd) : NULL;
    if (!u)
        abort();
    client_connect(&f);
    if (client < 0)
        abort();
    f.hooks.target = target_op;
    fz_add_pio(&f, "com1", UART8250_COM1_BASE, 8);
    fz_run(&f, data, size);
    uart8250_destroy(u);
    if (client >= 0)
        close(client);      /* so that the close below waits for no reader */
    chardev_close(cd);
    fz_fini(&f);
    return 0;
}
