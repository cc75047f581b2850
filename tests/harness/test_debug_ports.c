/* Firmware debug console (port 0x402) and debug-exit port (0xf4). */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/debug_exit.h"
#include "devices/debugcon.h"
#include "support/harness_platform.h"

static char tmpdir[PATH_MAX];

static void tmp_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static size_t slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, len);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

static void test_debugcon_log(void **state)
{
    (void)state;
    struct harness *h = harness_new(1 << 20);
    assert_non_null(h);
    char path[PATH_MAX], err[256];
    tmp_path(path, sizeof(path), "firmware.log");
    /* An old log is truncated. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("previous boot\n", f);
    fclose(f);

    struct debugcon *dc = debugcon_create(&h->plat, DEBUGCON_PORT, path, err, sizeof(err));
    assert_non_null(dc);
    /* SeaBIOS's detection: the port reads back 0xe9. */
    assert_int_equal(harness_pio_read(h, DEBUGCON_PORT, 1), 0xe9);

    const char *msg = "SeaBIOS (version test)\nBooting from Hard Disk...\n";
    for (const char *p = msg; *p; p++)
        harness_pio_write(h, DEBUGCON_PORT, 1, (uint8_t)*p);
    /* All byte values pass, and a wider write counts as its low byte. */
    harness_pio_write(h, DEBUGCON_PORT, 1, 0x00);
    harness_pio_write(h, DEBUGCON_PORT, 1, 0xff);
    harness_pio_write(h, DEBUGCON_PORT, 2, 0x4142);

    char buf[256];
    size_t n = slurp(path, buf, sizeof(buf));
    size_t len = strlen(msg);
    assert_int_equal(n, len + 3);
    assert_memory_equal(buf, msg, len);
    assert_int_equal((uint8_t)buf[len], 0x00);
    assert_int_equal((uint8_t)buf[len + 1], 0xff);
    assert_int_equal(buf[len + 2], 0x42);

    /* The port is taken: a second console on it fails cleanly. */
    char path2[PATH_MAX];
    tmp_path(path2, sizeof(path2), "second.log");
    assert_null(debugcon_create(&h->plat, DEBUGCON_PORT, path2, err, sizeof(err)));
    assert_non_null(strstr(err, "taken"));
    struct stat st;
    assert_int_equal(stat(path2, &st), -1);   /* and created no file */

    debugcon_destroy(dc);
    /* Unregistered: the port floats again. */
    assert_int_equal(harness_pio_read(h, DEBUGCON_PORT, 1), 0xff);
    harness_free(h);
    unlink(path);
    unlink(path2);
}

static void test_debugcon_errors(void **state)
{
    (void)state;
    struct harness *h = harness_new(1 << 20);
    char err[256] = "";
    assert_null(debugcon_create(&h->plat, DEBUGCON_PORT, "", err, sizeof(err)));
    assert_true(err[0] != '\0');
    err[0] = '\0';
    /* A directory cannot be the log file. */
    assert_null(debugcon_create(&h->plat, DEBUGCON_PORT, tmpdir, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    /* Nothing stayed registered after the failure. */
    char path[PATH_MAX];
    tmp_path(path, sizeof(path), "ok.log");
    struct debugcon *dc = debugcon_create(&h->plat, DEBUGCON_PORT, path, err, sizeof(err));
    assert_non_null(dc);
    debugcon_destroy(dc);
    harness_free(h);
    unlink(path);
}

static void test_debug_exit(void **state)
{
    (void)state;
    struct harness *h = harness_new(1 << 20);
    struct debug_exit *de = debug_exit_create(&h->plat, DEBUG_EXIT_PORT);
    assert_non_null(de);
    assert_int_equal(h->debug_exit, -1);
    harness_pio_write(h, DEBUG_EXIT_PORT, 1, 0x00);
    assert_int_equal(h->debug_exit, 1);
    harness_pio_write(h, DEBUG_EXIT_PORT, 1, 0x10);
    assert_int_equal(h->debug_exit, 0x21);
    harness_pio_write(h, DEBUG_EXIT_PORT, 1, 0xff);
    assert_int_equal(h->debug_exit, 0x1ff);
    /* A 32-bit write passes its low byte. */
    harness_pio_write(h, DEBUG_EXIT_PORT, 4, 0x12345603);
    assert_int_equal(h->debug_exit, 7);
    /* Nothing else happens on that port: no reset, no power-off. */
    assert_int_equal(h->resets, 0);
    assert_int_equal(h->poweroffs, 0);
    /* The port cannot be registered twice. */
    assert_null(debug_exit_create(&h->plat, DEBUG_EXIT_PORT));
    debug_exit_destroy(de);
    h->debug_exit = -1;
    harness_pio_write(h, DEBUG_EXIT_PORT, 1, 0x01);
    assert_int_equal(h->debug_exit, -1);
    harness_free(h);
}

int main(void)
{
    const char *base = getenv("BURROW_BUILD_DIR");
    if (!base)
        base = P_tmpdir;
    int n = snprintf(tmpdir, sizeof(tmpdir), "%s/debugports-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a scratch directory\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debugcon_log),
        cmocka_unit_test(test_debugcon_errors),
        cmocka_unit_test(test_debug_exit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
