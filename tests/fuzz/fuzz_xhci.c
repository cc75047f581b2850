/* The xHCI controller as a guest drives it, with the USB tablet on port 1,
 * the keyboard on port 2, a USB disk (mass storage on a 256 KiB raw image
 * cleared before each run) on port 3 and a SuperSpeed bulk echo device on
 * port 5 whose IN transfers wait (USB_ASYNC) until OUT data comes and
 * finish on a LOOP.
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = BAR 0 (16 KiB:
 * capabilities at 0, operational registers at 0x20 with PORTSC at 0x420,
 * runtime registers at 0x1000 with interrupter 0 at 0x1020, doorbells at
 * 0x2000), 1 = the MSI-X table and PBA.  DCBAA, rings, contexts and data
 * are laid out with RAM ops.  TARGET: 0 a tablet move (x, y, width,
 * height: 2 bytes each), 1 tablet buttons and wheel (a byte each), 2 a key
 * (usage byte, down byte), 3 the tablet unplugged or plugged into the port
 * the next byte names, 4 the same for the keyboard, 5 for the echo
 * device, 6 for the USB disk. */
#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"
#include "devices/usb/hid.h"
#include "devices/usb/msd.h"
#include "devices/usb/usb.h"
#include "devices/usb/xhci.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK_BYTES (256u << 10)

static const char *image;
static int image_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("BURROW_BLOCK_SYNC", "1", 1);    /* the same completions every run */
    image = fz_image("xhci-msd", DISK_BYTES, &image_fd);
    return 0;
}

/* --- the echo device --------------------------------------------------- */

static const uint8_t echo_device_desc[18] = {
    18, USB_DT_DEVICE, 0x00, 0x03, 0xff, 0, 0, 9, 0x09, 0x12, 0x02, 0x00, 0x00, 0x01, 0, 0, 0, 1,
};
static const uint8_t echo_config_desc[32] = {
    9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 10,
    9, USB_DT_INTERFACE, 0, 0, 2, 0xff, 0, 0, 0,
    7, USB_DT_ENDPOINT, 0x01, 0x02, 0x00, 0x02, 0,
    7, USB_DT_ENDPOINT, 0x82, 0x02, 0x00, 0x02, 0,
};
static const struct usb_descriptors echo_descs = { .device = echo_device_desc, .config = echo_config_desc };

struct echo {
    struct usb_device dev;
    struct evloop *loop;
    uint8_t data[1024];
    uint32_t used;
    struct usb_xfer *held;
    int timer;
};

static void echo_fill(struct echo *e, struct usb_xfer *x)
{
    uint32_t n = x->len < e->used ? x->len : e->used;
    memcpy(x->buf, e->data, n);
    memmove(e->data, e->data + n, e->used - n);
    e->used -= n;
    x->actual = n;
}

static void echo_timer(void *opaque)
{
    struct echo *e = opaque;
    e->timer = -1;
    if (!e->held || !e->used)
        return;
    struct usb_xfer *x = e->held;
    e->held = NULL;
    echo_fill(e, x);
    x->status = USB_OK;
    usb_xfer_done(x);
}

static enum usb_status echo_control(struct usb_device *d, struct usb_xfer *x)
{
    return usb_std_control(d, x);
}

static enum usb_status echo_data(struct usb_device *d, struct usb_xfer *x)
{
    struct echo *e = d->opaque;
    if (x->ep == 1 && !x->in) {
        if (x->len > sizeof(e->data) - e->used)
            return USB_STALL;
        memcpy(e->data + e->used, x->buf, x->len);
        e->used += x->len;
        x->actual = x->len;
        if (e->held && e->timer < 0)
            e->timer = evloop_add_timer(e->loop, 0, echo_timer, e);
        return USB_OK;
    }
    if (x->ep == 2 && x->in) {
        if (!e->used) {
            e->held = x;
            return USB_ASYNC;
        }
        echo_fill(e, x);
        return USB_OK;
    }
    return USB_STALL;
}

static void echo_cancel(struct usb_device *d, struct usb_xfer *x)
{
    struct echo *e = d->opaque;
    if (e->held == x)
        e->held = NULL;
}

static const struct usb_device_ops echo_ops = {
    .control = echo_control, .data = echo_data, .cancel = echo_cancel,
};

/* --- the target ---------------------------------------------------------- */

static struct xhci *xhci;
static struct usb_tablet *tablet;
static struct usb_kbd *kbd;
static struct echo echo;
static struct usb_msd *disk;

static void toggle(struct fz *f, struct usb_device *d)
{
    unsigned port = fz_u8(f) % (XHCI_PORTS + 1);
    char err[128];
    if (d->host)
        xhci_detach(xhci, d);
    else
        xhci_attach(xhci, d, (int)port, err, sizeof(err));
}

static void target_op(struct fz *f, unsigned arg)
{
    switch (arg) {
    case 0: {
        int x = (int16_t)fz_le(f, 2), y = (int16_t)fz_le(f, 2);
        int w = (int16_t)fz_le(f, 2), h = (int16_t)fz_le(f, 2);
        usb_tablet_move(tablet, x, y, w, h);
        break;
    }
    case 1:
        usb_tablet_buttons(tablet, fz_u8(f));
        usb_tablet_wheel(tablet, (int8_t)fz_u8(f));
        break;
    case 2: {
        unsigned usage = fz_u8(f);
        usb_kbd_key(kbd, usage, fz_u8(f) & 1);
        break;
    }
    case 3: toggle(f, usb_tablet_device(tablet)); break;
    case 4: toggle(f, usb_kbd_device(kbd)); break;
    case 5: toggle(f, &echo.dev); break;
    case 6: toggle(f, usb_msd_device(disk)); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    char err[256];
    xhci = xhci_create(&f.h->plat, &f.bus, -1, err, sizeof(err));
    tablet = usb_tablet_new();
    kbd = usb_kbd_new();
    fz_image_zero(image_fd, DISK_BYTES);
    disk = usb_msd_new(f.h->plat.loop, image, "raw", false, 0, err, sizeof(err));
    if (!xhci || !tablet || !kbd || !disk)
        abort();
    memset(&echo, 0, sizeof(echo));
    usb_device_init(&echo.dev, "echo", USB_SPEED_SUPER, &echo_ops, &echo_descs, &echo);
    echo.loop = f.h->plat.loop;
    echo.timer = -1;
    if (xhci_attach(xhci, usb_tablet_device(tablet), 1, err, sizeof(err)) < 0 ||
        xhci_attach(xhci, usb_kbd_device(kbd), 2, err, sizeof(err)) < 0 ||
        xhci_attach(xhci, usb_msd_device(disk), 3, err, sizeof(err)) < 0 ||
        xhci_attach(xhci, &echo.dev, 5, err, sizeof(err)) < 0)
        abort();
    f.pci = xhci_pci(xhci);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_bar(&f, "regs", f.pci, 0);
    fz_add_bar(&f, "msix", f.pci, 2);
    fz_run(&f, data, size);
    xhci_destroy(xhci);
    if (echo.timer >= 0)
        evloop_del_timer(f.h->plat.loop, echo.timer);
    usb_tablet_free(tablet);
    usb_kbd_free(kbd);
    usb_msd_free(disk);
    fz_fini(&f);
    return 0;
}
