/* The input queue between front-end threads and the I/O thread (gui/ui.c):
 * events arrive in order, motion and positions queued back to back are
 * merged, and the first position is never merged away, since PS/2 motion
 * made from positions is measured from it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"
#include "gui/ui.h"

struct seen {
    char log[16][48];
    unsigned n;
};

/* The next line of the log, for the callbacks to fill. */
static char *next(struct seen *s)
{
    assert_true(s->n < 16);
    return s->log[s->n++];
}

static void on_key(void *opaque, keymap_key key, bool down)
{
    snprintf(next(opaque), 48, "key %d %d", (int)key, down);
}

static void on_pointer(void *opaque, int dx, int dy, int dz, unsigned buttons)
{
    snprintf(next(opaque), 48, "rel %d,%d %u", dx, dy, buttons);
}

static void on_pointer_abs(void *opaque, int x, int y, int width, int height, int dz,
                           unsigned buttons)
{
    snprintf(next(opaque), 48, "abs %d,%d %u", x, y, buttons);
}

static const struct ui_input_ops ops = {
    .key = on_key, .pointer = on_pointer, .pointer_abs = on_pointer_abs,
};

struct fixture {
    struct evloop *loop;
    struct ui_input_queue *q;
    struct seen seen;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->loop = evloop_new(NULL);
    assert_non_null(f->loop);
    f->q = ui_input_queue_new(f->loop, &ops, &f->seen);
    assert_non_null(f->q);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ui_input_queue_free(f->q);
    evloop_free(f->loop);
    free(f);
    return 0;
}

/* Runs the loop until it has nothing more to hand over. */
static void drain(struct fixture *f)
{
    while (evloop_run_once(f->loop, 0) > 0) {
    }
}

static void test_first_position_kept(void **state)
{
    struct fixture *f = *state;
    /* A viewer's first two moves before the I/O thread looks. */
    ui_input_pointer_abs(f->q, 10, 10, 640, 480, 0, 0);
    ui_input_pointer_abs(f->q, 200, 150, 640, 480, 0, 0);
    ui_input_pointer_abs(f->q, 300, 200, 640, 480, 0, 0);
    drain(f);
    assert_int_equal(f->seen.n, 2);
    assert_string_equal(f->seen.log[0], "abs 10,10 0");
    assert_string_equal(f->seen.log[1], "abs 300,200 0");

    /* Later positions merge as before. */
    ui_input_pointer_abs(f->q, 1, 2, 640, 480, 0, 0);
    ui_input_pointer_abs(f->q, 3, 4, 640, 480, 0, 0);
    drain(f);
    assert_int_equal(f->seen.n, 3);
    assert_string_equal(f->seen.log[2], "abs 3,4 0");
}

static void test_merging_keeps_order(void **state)
{
    struct fixture *f = *state;
    ui_input_pointer(f->q, 1, 1, 0, 0);
    ui_input_pointer(f->q, 2, 3, 0, 0);
    ui_input_key(f->q, 5, true);
    ui_input_pointer(f->q, 4, 4, 0, UI_BTN_LEFT);
    ui_input_pointer(f->q, 1, 0, 0, UI_BTN_LEFT);
    ui_input_pointer(f->q, 1, 0, 0, 0);
    drain(f);
    assert_int_equal(f->seen.n, 4);
    assert_string_equal(f->seen.log[0], "rel 3,4 0");
    assert_string_equal(f->seen.log[1], "key 5 1");
    assert_string_equal(f->seen.log[2], "rel 5,4 1");
    assert_string_equal(f->seen.log[3], "rel 1,0 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_position_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merging_keeps_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
