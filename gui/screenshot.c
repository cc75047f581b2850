/* PNG screenshots with libpng.
 *
 * The surface is XRGB8888 in host order; PNG wants bytes R, G, B, so each
 * row is converted into a small buffer before libpng sees it. */
#include "gui/screenshot.h"

#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/display.h"
#include "devices/util.h"

/* libpng reports errors through this message and a longjmp. */
struct png_errbuf {
    char msg[160];
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
    struct png_errbuf *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof(e->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
}

/* Encodes s to the open file fp; returns 0 or -1 with the message in e. */
static int write_png(FILE *fp, const struct display_surface *s, png_bytep row,
                     struct png_errbuf *e)
{
    png_structp png;
    png_infop info;

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, png_error_cb, png_warning_cb);
    if (!png) {
        snprintf(e->msg, sizeof(e->msg), "out of memory");
        return -1;
    }
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(e->msg, sizeof(e->msg), "out of memory");
        return -1;
    }
    /* Nothing below changes a local that is read after a longjmp. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    /* Screens are mostly flat colour: fast compression is nearly as small. */
    png_set_compression_level(png, 3);
    png_set_IHDR(png, info, s->width, s->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (unsigned y = 0; y < s->height; y++) {
        const uint32_t *src = (const uint32_t *)((const uint8_t *)s->pixels + (size_t)y * s->stride);
        for (unsigned x = 0; x < s->width; x++) {
            uint32_t p = src[x];
            row[3 * x + 0] = (png_byte)(p >> 16);
            row[3 * x + 1] = (png_byte)(p >> 8);
            row[3 * x + 2] = (png_byte)p;
        }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int screenshot_png(const struct display_surface *s, const char *path, char *err, size_t errlen)
{
    struct png_errbuf e = { "" };
    char *tmp = NULL;
    png_bytep row = NULL;
    FILE *fp = NULL;
    int fd = -1, ret = -1;
    bool created = false;

    if (!s || !s->pixels || s->width == 0 || s->height == 0) {
        set_err(err, errlen, "the display has no picture yet");
        return -1;
    }
    if (s->width > DISPLAY_MAX_WIDTH || s->height > DISPLAY_MAX_HEIGHT ||
        s->stride < s->width * 4u) {
        set_err(err, errlen, "the display surface is malformed (%ux%u, stride %u)",
                s->width, s->height, s->stride);
        return -1;
    }
    if (!path || !*path) {
        set_err(err, errlen, "no file name given");
        return -1;
    }
    /* The temporary file sits next to the target so rename() is atomic. */
    tmp = malloc(strlen(path) + sizeof(".XXXXXX"));
    if (!tmp) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    strcpy(tmp, path);
    strcat(tmp, ".XXXXXX");
    row = malloc((size_t)s->width * 3);
    if (!row) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    created = true;
    /* mkstemp makes 0600 files; a screenshot is an ordinary file. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) < 0)
        log_warn("screenshot: cannot set the mode of %s: %s", tmp, strerror(errno));
    fp = fdopen(fd, "wb");
    if (!fp) {
        set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (write_png(fp, s, row, &e) < 0) {
        set_err(err, errlen, "cannot write %s: %s", path, e.msg[0] ? e.msg : "PNG encoder failed");
        goto out;
    }
    if (fflush(fp) != 0 || ferror(fp)) {
        set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fp = NULL;
    if (rename(tmp, path) < 0) {
        set_err(err, errlen, "cannot rename the screenshot to %s: %s", path, strerror(errno));
        goto out;
    }
    created = false;
    ret = 0;
out:
    if (fp)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(row);
    return ret;
}
