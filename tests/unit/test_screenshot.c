/* PNG screenshots: a surface written, then read back with libpng's own
 * decoder, must give the same size and pixels; failures say why and leave
 * no files behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <png.h>

#include "devices/display.h"
#include "gui/screenshot.h"

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *t = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/shot.XXXXXX", t && strlen(t) < 40 ? t : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/screen.png", f->dir);
    *state = f;
    return 0;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[400];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A w x h surface with `pad` spare bytes per row, filled with a pattern
 * that differs in every channel of every pixel. */
static struct display_surface make_surface(unsigned w, unsigned h, unsigned pad)
{
    struct display_surface s = { w, h, w * 4 + pad, NULL };
    s.pixels = malloc((size_t)s.stride * h);
    assert_non_null(s.pixels);
    memset(s.pixels, 0xee, (size_t)s.stride * h);
    for (unsigned y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)((uint8_t *)s.pixels + (size_t)y * s.stride);
        for (unsigned x = 0; x < w; x++)
            row[x] = ((x * 37 + y * 11) & 0xff) << 16 | ((x * 5 + y * 91) & 0xff) << 8 |
                     ((x ^ y) * 13 & 0xff) | (x == 0 ? 0xff000000u : 0);
    }
    return s;
}

static void check_png(const char *path, const struct display_surface *s)
{
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    assert_int_equal(img.width, s->width);
    assert_int_equal(img.height, s->height);
    img.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(buf);
    assert_true(png_image_finish_read(&img, NULL, buf, 0, NULL));
    for (unsigned y = 0; y < s->height; y++) {
        const uint32_t *row = (const uint32_t *)((const uint8_t *)s->pixels + (size_t)y * s->stride);
        for (unsigned x = 0; x < s->width; x++) {
            const uint8_t *p = buf + ((size_t)y * s->width + x) * 3;
            uint32_t got = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
            if (got != (row[x] & 0xffffff))
                fail_msg("pixel (%u,%u): 0x%06x, expected 0x%06x", x, y, got, row[x] & 0xffffff);
        }
    }
    free(buf);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    struct display_surface s = make_surface(67, 23, 0);

    assert_int_equal(screenshot_png(&s, f->path, err, sizeof(err)), 0);
    check_png(f->path, &s);
    /* Only the PNG is left: the temporary file was renamed. */
    assert_int_equal(count_files(f->dir), 1);
    free(s.pixels);
}

static void test_stride_and_replace(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    struct display_surface a = make_surface(640, 400, 0);
    struct display_surface b = make_surface(9, 700, 28);   /* rows padded */

    assert_int_equal(screenshot_png(&a, f->path, err, sizeof(err)), 0);
    check_png(f->path, &a);
    /* A second shot to the same name replaces the first whole. */
    assert_int_equal(screenshot_png(&b, f->path, err, sizeof(err)), 0);
    check_png(f->path, &b);
    assert_int_equal(count_files(f->dir), 1);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(st.st_mode & S_IRUSR);
    free(a.pixels);
    free(b.pixels);
}

static void test_unwritable(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    char path[300];
    struct display_surface s = make_surface(8, 8, 0);

    snprintf(path, sizeof(path), "%s/no-such-dir/screen.png", f->dir);
    assert_int_equal(screenshot_png(&s, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));

    /* A directory component that is a file. */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/x.png", f->path);
    err[0] = 0;
    assert_int_equal(screenshot_png(&s, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Not a directory"));

    /* The target is a directory: rename fails, the temp file goes away. */
    unlink(f->path);
    assert_int_equal(mkdir(f->path, 0755), 0);
    err[0] = 0;
    assert_int_equal(screenshot_png(&s, f->path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, f->path));
    assert_int_equal(count_files(f->dir), 1);
    rmdir(f->path);

    /* No error buffer is fine too. */
    assert_int_equal(screenshot_png(&s, "", NULL, 0), -1);
    free(s.pixels);
}

static void test_no_picture(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    struct display_surface empty = { 0, 0, 0, NULL };
    assert_int_equal(screenshot_png(&empty, f->path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no picture"));
    assert_int_equal(screenshot_png(NULL, f->path, err, sizeof(err)), -1);
    uint32_t px[4] = { 0 };
    struct display_surface bad = { 4, 1, 8, px };   /* stride < width * 4 */
    err[0] = 0;
    assert_int_equal(screenshot_png(&bad, f->path, err, sizeof(err)), -1);
    assert_true(err[0] != 0);
    assert_int_equal(count_files(f->dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stride_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_picture, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
