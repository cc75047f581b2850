/* PNG screenshots of the display surface. */
#ifndef BURROW_GUI_SCREENSHOT_H
#define BURROW_GUI_SCREENSHOT_H

#include <stddef.h>

struct display_surface;

/* Writes the surface as an 8-bit RGB PNG to path.  The file appears whole or
 * not at all: it is written to a temporary file in the same directory, then
 * renamed over path.  Returns 0, or -1 with a message in err (errlen bytes,
 * may be 0) when there is no picture yet or the file cannot be written.
 * Call it with the device lock held (the surface belongs to the display). */
int screenshot_png(const struct display_surface *s, const char *path, char *err, size_t errlen);

#endif
