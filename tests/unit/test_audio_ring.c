/* The byte ring between a sound device and a sound server's thread
 * (devices/audio/ring.c): wrapping, partial writes when full, reads of
 * what is there, skips and truncation by position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/audio/ring.h"

static void test_wrap(void **state)
{
    struct audio_ring r;
    assert_int_equal(audio_ring_init(&r, 10), 0);
    /* Bytes numbered as they are written, over and over across the end:
     * every one comes out once, in order. */
    unsigned written = 0, got = 0;
    for (unsigned round = 0; round < 200; round++) {
        uint8_t in[8], out[8];
        unsigned want = 3 + round % 6;
        for (unsigned i = 0; i < want; i++)
            in[i] = (uint8_t)(written + i);
        size_t w = audio_ring_write(&r, in, want);
        assert_int_equal(w, want < 10 - (written - got) ? want : 10 - (written - got));
        written += (unsigned)w;
        size_t n = audio_ring_read(&r, out, 2 + round % 7);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], (uint8_t)(got + i));
        got += (unsigned)n;
        assert_int_equal(audio_ring_fill(&r), written - got);
    }
    assert_true(written > 100);
    audio_ring_free(&r);
}

static void test_full_and_empty(void **state)
{
    struct audio_ring r;
    assert_int_equal(audio_ring_init(&r, 8), 0);
    uint8_t buf[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    assert_int_equal(audio_ring_write(&r, buf, 10), 8);      /* only what fits */
    assert_int_equal(audio_ring_space(&r), 0);
    assert_int_equal(audio_ring_write(&r, buf, 1), 0);
    uint8_t out[16];
    assert_int_equal(audio_ring_read(&r, out, 16), 8);
    assert_memory_equal(out, buf, 8);
    assert_int_equal(audio_ring_read(&r, out, 16), 0);
    assert_int_equal(r.rpos, 8);
    assert_int_equal(r.wpos, 8);
    audio_ring_free(&r);
}

static void test_skip_truncate(void **state)
{
    struct audio_ring r;
    assert_int_equal(audio_ring_init(&r, 8), 0);
    uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];
    audio_ring_write(&r, buf, 6);
    audio_ring_skip(&r, 2);                  /* the oldest go */
    assert_int_equal(audio_ring_read(&r, out, 1), 1);
    assert_int_equal(out[0], 3);
    audio_ring_truncate(&r, r.rpos + 2);     /* keeps 4, 5 */
    assert_int_equal(audio_ring_fill(&r), 2);
    audio_ring_truncate(&r, r.wpos + 5);     /* beyond the end: nothing */
    audio_ring_truncate(&r, r.rpos - 1);     /* before the start: nothing */
    assert_int_equal(audio_ring_fill(&r), 2);
    audio_ring_skip(&r, 100);                /* more than there is */
    assert_int_equal(audio_ring_fill(&r), 0);
    assert_int_equal(audio_ring_write(&r, buf, 8), 8);
    assert_int_equal(audio_ring_read(&r, out, 8), 8);
    assert_memory_equal(out, buf, 8);
    audio_ring_free(&r);
}

static void test_zero_capacity(void **state)
{
    struct audio_ring r;
    assert_int_equal(audio_ring_init(&r, 0), 0);
    uint8_t b = 1;
    assert_int_equal(audio_ring_write(&r, &b, 1), 0);
    assert_int_equal(audio_ring_read(&r, &b, 1), 0);
    audio_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_full_and_empty),
        cmocka_unit_test(test_skip_truncate),
        cmocka_unit_test(test_zero_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
