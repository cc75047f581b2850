/* VNC server on libvncserver, on a thread of its own.
 *
 * Pixels: a ui_shadow listener copies what the display reports changed; the
 * server thread copies those rectangles on into the framebuffer libvncserver
 * encodes from ("front"), so encoding and sending happen without any lock
 * the I/O thread could want.  Both copies are 32-bit XRGB, which RFB
 * describes as a true-colour format with red at shift 16.
 *
 * The thread polls the wake-up eventfd, the listening sockets and the
 * viewers' sockets, then lets rfbProcessEvents() (with a zero timeout) do
 * the protocol work: accept, read messages, send the updates viewers asked
 * for. */
#include "gui/vnc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rfb/rfb.h>

#include "devices/util.h"
#include "gui/keymap.h"
#include "gui/ui.h"

/* Before the guest sets a mode the display may be 0x0; viewers get a black
 * picture of this size until it does. */
#define PLACEHOLDER_W 640
#define PLACEHOLDER_H 480

#define VNC_MAX_HANDOFF 8

/* RFB PointerEvent button-mask bits. */
#define RFB_BTN_LEFT       0x01
#define RFB_BTN_MIDDLE     0x02
#define RFB_BTN_RIGHT      0x04
#define RFB_BTN_WHEEL_UP   0x08
#define RFB_BTN_WHEEL_DOWN 0x10

struct vnc_client {
    struct vnc_server *v;
    int last_x, last_y;
    bool have_pos;
    int last_mask;
    /* The viewer's layout and the keys it holds down, released if it
     * goes away. */
    struct keymap_state keys;
};

struct vnc_server {
    struct display *display;
    struct ui_shadow shadow;
    int listener;
    struct ui_input_queue *input;

    rfbScreenInfoPtr screen;
    uint32_t *front;             /* what libvncserver encodes from */
    char *passwords[2];          /* NULL-terminated list for libvncserver */
    char *listen6;

    pthread_t thread;
    bool thread_started;
    int wakefd;
    /* Connected sockets handed over by vnc_server_add_client(), for the
     * server thread to take on. */
    pthread_mutex_t handoff_lock;
    int handoff[VNC_MAX_HANDOFF];
    unsigned nhandoff;
    atomic_bool quit;
    atomic_uint clients;
    /* The guest's keyboard layout; NULL is en-us. */
    _Atomic(const struct keymap_layout *) layout;
};

/* ---- libvncserver's log, into ours ---- */

__attribute__((format(printf, 2, 0)))
static void vnc_log_msg(bool error, const char *fmt, va_list ap)
{
    char buf[256];
    size_t n;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    if (error)
        log_warn("vnc: %s", buf);
    else
        log_debug("vnc: %s", buf);
}

static void vnc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vnc_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnc_log_msg(false, fmt, ap);
    va_end(ap);
}

static void vnc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vnc_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnc_log_msg(true, fmt, ap);
    va_end(ap);
}

/* ---- pixels ---- */

/* libvncserver resets the server format on every new framebuffer; ours is
 * XRGB8888 in host order. */
static void set_pixel_format(rfbScreenInfoPtr screen)
{
    rfbClientIteratorPtr it;
    rfbClientPtr cl;

    screen->serverFormat.redShift = 16;
    screen->serverFormat.greenShift = 8;
    screen->serverFormat.blueShift = 0;
    it = rfbGetClientIterator(screen);
    while ((cl = rfbClientIteratorNext(it)) != NULL)
        screen->setTranslateFunction(cl);
    rfbReleaseClientIterator(it);
}

/* Server thread: brings the front framebuffer up to date with the shadow. */
static void apply_shadow(struct vnc_server *v)
{
    struct ui_shadow *sh = &v->shadow;

    pthread_mutex_lock(&sh->lock);
    if (sh->resized && sh->width && sh->height) {
        uint32_t *front = malloc((size_t)sh->width * sh->height * 4);
        if (front) {
            memcpy(front, sh->pixels, (size_t)sh->width * sh->height * 4);
            /* Marks everything modified and queues the size change for
             * viewers that understand it. */
            rfbNewFramebuffer(v->screen, (char *)front, (int)sh->width, (int)sh->height, 8, 3, 4);
            set_pixel_format(v->screen);
            free(v->front);
            v->front = front;
        } else {
            log_error("vnc: no memory for a %ux%u framebuffer", sh->width, sh->height);
        }
    } else if (!sh->resized && sh->width == (unsigned)v->screen->width &&
               sh->height == (unsigned)v->screen->height) {
        for (unsigned i = 0; i < sh->ndirty; i++) {
            const struct display_rect *r = &sh->dirty[i];
            for (unsigned y = r->y; y < r->y + r->h; y++)
                memcpy(v->front + (size_t)y * sh->width + r->x,
                       sh->pixels + (size_t)y * sh->width + r->x, (size_t)r->w * 4);
            rfbMarkRectAsModified(v->screen, (int)r->x, (int)r->y, (int)(r->x + r->w),
                                  (int)(r->y + r->h));
        }
    }
    sh->resized = false;
    sh->ndirty = 0;
    pthread_mutex_unlock(&sh->lock);
}

/* I/O thread, from the shadow listener: wake the server thread. */
static void wake(void *opaque)
{
    struct vnc_server *v = opaque;
    uint64_t one = 1;

    if (write(v->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("vnc: eventfd write: %s", strerror(errno));
}

/* ---- input ---- */

static void send_key(struct vnc_server *v, keymap_key key, bool down)
{
    ui_input_key(v->input, key, down);
}

static void kbd_event(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    struct keymap_step steps[KEYMAP_MAX_STEPS];
    size_t n;

    if (!c)
        return;
    keymap_state_set_layout(&c->keys, atomic_load(&c->v->layout));
    n = keymap_state_key(&c->keys, (uint32_t)keysym, down, steps);
    if (!n && down)
        log_debug("vnc: keysym 0x%x has no key on the %s layout", (unsigned)keysym,
                  keymap_layout_name(c->keys.layout));
    for (size_t i = 0; i < n; i++)
        send_key(c->v, steps[i].key, steps[i].down);
}

/* Viewers send where the pointer is on the screen they show, which is the
 * guest's: it goes to the machine as that, an absolute position the USB
 * tablet reports exactly, or which becomes relative motion of the PS/2
 * mouse while the guest has no tablet in use (gui/input_route.h). */
static void ptr_event(int mask, int x, int y, rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;
    int dz = 0;
    unsigned buttons = 0;

    if (!c)
        return;
    bool moved = !c->have_pos || x != c->last_x || y != c->last_y;
    c->last_x = x;
    c->last_y = y;
    c->have_pos = true;
    /* Wheel notches come as presses of buttons 4 (up) and 5 (down). */
    if ((mask & RFB_BTN_WHEEL_UP) && !(c->last_mask & RFB_BTN_WHEEL_UP))
        dz--;
    if ((mask & RFB_BTN_WHEEL_DOWN) && !(c->last_mask & RFB_BTN_WHEEL_DOWN))
        dz++;
    if (mask & RFB_BTN_LEFT)
        buttons |= UI_BTN_LEFT;
    if (mask & RFB_BTN_MIDDLE)
        buttons |= UI_BTN_MIDDLE;
    if (mask & RFB_BTN_RIGHT)
        buttons |= UI_BTN_RIGHT;
    bool buttons_changed = (mask & 7) != (c->last_mask & 7);
    c->last_mask = mask;
    if (moved || dz || buttons_changed)
        ui_input_pointer_abs(c->v->input, x, y, cl->screen->width, cl->screen->height, dz, buttons);
}

static void client_gone(rfbClientPtr cl)
{
    struct vnc_client *c = cl->clientData;

    if (!c)
        return;
    /* A viewer that vanishes with keys or buttons held must not leave them
     * stuck in the guest. */
    struct keymap_step steps[KEYMAP_MAX_HELD];
    size_t n = keymap_state_release_all(&c->keys, steps, ARRAY_SIZE(steps));
    for (size_t i = 0; i < n; i++)
        send_key(c->v, steps[i].key, false);
    if (c->last_mask & (RFB_BTN_LEFT | RFB_BTN_MIDDLE | RFB_BTN_RIGHT))
        ui_input_pointer_abs(c->v->input, c->last_x, c->last_y, cl->screen->width,
                             cl->screen->height, 0, 0);
    atomic_fetch_sub(&c->v->clients, 1);
    log_info("vnc: viewer %s disconnected", cl->host ? cl->host : "?");
    cl->clientData = NULL;
    free(c);
}

static enum rfbNewClientAction new_client(rfbClientPtr cl)
{
    struct vnc_server *v = cl->screen->screenData;
    struct vnc_client *c = calloc(1, sizeof(*c));

    if (!c)
        return RFB_CLIENT_REFUSE;
    c->v = v;
    keymap_state_init(&c->keys, atomic_load(&v->layout));
    cl->clientData = c;
    cl->clientGoneHook = client_gone;
    atomic_fetch_add(&v->clients, 1);
    log_info("vnc: viewer connected from %s", cl->host ? cl->host : "?");
    return RFB_CLIENT_ACCEPT;
}

/* ---- server thread ---- */

/* Viewers whose socket came from elsewhere (the control socket): clients
 * like any other, with the same authentication. */
static void take_handoffs(struct vnc_server *v)
{
    int fds[VNC_MAX_HANDOFF];
    pthread_mutex_lock(&v->handoff_lock);
    unsigned n = v->nhandoff;
    memcpy(fds, v->handoff, n * sizeof(int));
    v->nhandoff = 0;
    pthread_mutex_unlock(&v->handoff_lock);
    for (unsigned i = 0; i < n; i++) {
        if (!rfbNewClient(v->screen, fds[i]))
            log_warn("vnc: a viewer handed over could not be taken on");
    }
}

static void *vnc_thread(void *opaque)
{
    struct vnc_server *v = opaque;
    struct pollfd *fds = NULL;
    unsigned cap = 0;

    while (!atomic_load(&v->quit)) {
        unsigned n = 0, want = 3 + atomic_load(&v->clients);
        rfbClientIteratorPtr it;
        rfbClientPtr cl;

        if (want > cap) {
            struct pollfd *p = realloc(fds, want * 2 * sizeof(*p));
            if (!p) {
                log_error("vnc: out of memory; the server stops");
                break;
            }
            fds = p;
            cap = want * 2;
        }
        fds[n++] = (struct pollfd){ .fd = v->wakefd, .events = POLLIN };
        if (v->screen->listenSock != RFB_INVALID_SOCKET)
            fds[n++] = (struct pollfd){ .fd = v->screen->listenSock, .events = POLLIN };
        if (v->screen->listen6Sock != RFB_INVALID_SOCKET)
            fds[n++] = (struct pollfd){ .fd = v->screen->listen6Sock, .events = POLLIN };
        it = rfbGetClientIterator(v->screen);
        while ((cl = rfbClientIteratorNext(it)) != NULL && n < cap)
            if (cl->sock != RFB_INVALID_SOCKET)
                fds[n++] = (struct pollfd){ .fd = cl->sock, .events = POLLIN };
        rfbReleaseClientIterator(it);

        if (poll(fds, n, -1) < 0 && errno != EINTR) {
            log_error("vnc: poll: %s; the server stops", strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            if (read(v->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN)
                log_warn("vnc: eventfd read: %s", strerror(errno));
        }
        if (atomic_load(&v->quit))
            break;
        take_handoffs(v);
        apply_shadow(v);
        rfbProcessEvents(v->screen, 0);
    }
    free(fds);
    return NULL;
}

/* ---- set-up ---- */

static char *read_password(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n;

    if (!f) {
        set_err(err, errlen, "cannot read the VNC password file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = 0;
    if (n == 0) {
        set_err(err, errlen, "the VNC password file %s has an empty first line", path);
        return NULL;
    }
    if (n > 8)
        log_warn("vnc: VNC authentication uses only the first 8 characters of the password");
    char *p = strdup(line);
    explicit_bzero(line, sizeof(line));
    if (!p)
        set_err(err, errlen, "out of memory");
    return p;
}

/* Resolves host into the screen's listening address: IPv4 on port, or IPv6
 * on ipv6port, never both, so nothing listens where it was not asked to. */
static int set_listen_address(struct vnc_server *v, const char *host, int port,
                              char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char name[256];
    size_t len;
    int rc;

    if (!host || !*host)
        host = "127.0.0.1";
    len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof(name)) {
        set_err(err, errlen, "VNC host name too long");
        return -1;
    }
    memcpy(name, host, len);
    name[len] = 0;
    rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0 || !res) {
        set_err(err, errlen, "VNC address %s: %s", name, gai_strerror(rc));
        return -1;
    }
    if (res->ai_family == AF_INET) {
        v->screen->listenInterface = ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr;
        v->screen->port = port;
        v->screen->ipv6port = 0;
    } else if (res->ai_family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, text, sizeof(text));
        v->listen6 = strdup(text);
        v->screen->listen6Interface = v->listen6;
        v->screen->port = 0;
        v->screen->ipv6port = port;
    } else {
        freeaddrinfo(res);
        set_err(err, errlen, "VNC address %s is neither IPv4 nor IPv6", name);
        return -1;
    }
    freeaddrinfo(res);
    return 0;
}

static void destroy(struct vnc_server *v)
{
    if (v->thread_started) {
        atomic_store(&v->quit, true);
        wake(v);
        pthread_join(v->thread, NULL);
    }
    if (v->screen) {
        rfbShutdownServer(v->screen, TRUE);
        rfbScreenCleanup(v->screen);
    }
    while (v->nhandoff)
        close(v->handoff[--v->nhandoff]);
    pthread_mutex_destroy(&v->handoff_lock);
    if (v->listener >= 0)
        ui_shadow_detach(&v->shadow, v->display, v->listener);
    ui_input_queue_free(v->input);
    if (v->wakefd >= 0)
        close(v->wakefd);
    if (v->passwords[0]) {
        explicit_bzero(v->passwords[0], strlen(v->passwords[0]));
        free(v->passwords[0]);
    }
    free(v->listen6);
    free(v->front);
    free(v);
}

struct vnc_server *vnc_server_new(struct display *d, struct evloop *loop, const char *host,
                                  int port, const char *password_file,
                                  const struct ui_input_ops *input, void *opaque,
                                  char *err, size_t errlen)
{
    struct vnc_server *v;
    unsigned w, h;
    sigset_t all, old;

    bool local = !host && port == 0;
    if (!local && (port < 1 || port > 65535)) {
        set_err(err, errlen, "VNC port %d out of range (1-65535)", port);
        return NULL;
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&v->handoff_lock, NULL);
    v->display = d;
    v->listener = -1;
    v->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->wakefd < 0) {
        set_err(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (password_file && !(v->passwords[0] = read_password(password_file, err, errlen)))
        goto fail;
    v->input = ui_input_queue_new(loop, input, opaque);
    if (!v->input) {
        set_err(err, errlen, "cannot set up the VNC input queue");
        goto fail;
    }
    v->listener = ui_shadow_attach(&v->shadow, d, wake, v);
    if (v->listener < 0) {
        set_err(err, errlen, "cannot listen to the display");
        goto fail;
    }

    rfbLog = vnc_log;
    rfbErr = vnc_err;
    /* The listener's first resize has filled the shadow already. */
    pthread_mutex_lock(&v->shadow.lock);
    w = v->shadow.width ? v->shadow.width : PLACEHOLDER_W;
    h = v->shadow.height ? v->shadow.height : PLACEHOLDER_H;
    v->front = calloc((size_t)w * h, 4);
    if (v->front && v->shadow.width)
        memcpy(v->front, v->shadow.pixels, (size_t)w * h * 4);
    v->shadow.resized = false;
    v->shadow.ndirty = 0;
    pthread_mutex_unlock(&v->shadow.lock);
    if (!v->front) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    v->screen = rfbGetScreen(NULL, NULL, (int)w, (int)h, 8, 3, 4);
    if (!v->screen) {
        set_err(err, errlen, "cannot create the VNC server");
        goto fail;
    }
    v->screen->frameBuffer = (char *)v->front;
    v->screen->screenData = v;
    v->screen->desktopName = "Burrow";
    v->screen->alwaysShared = TRUE;          /* several viewers at once */
    v->screen->cursor = NULL;                /* the guest draws its own */
    v->screen->deferUpdateTime = 0;          /* our refresh timer paces updates */
    v->screen->deferPtrUpdateTime = 0;
    v->screen->kbdAddEvent = kbd_event;
    v->screen->ptrAddEvent = ptr_event;
    v->screen->newClientHook = new_client;
    if (v->passwords[0]) {
        v->screen->authPasswdData = (void *)v->passwords;
        v->screen->passwordCheck = rfbCheckPasswordByList;
    }
    set_pixel_format(v->screen);
    if (local) {
        /* No listening socket at all: viewers come only through
         * vnc_server_add_client(). */
        v->screen->port = 0;
        v->screen->ipv6port = 0;
        v->screen->autoPort = FALSE;
    } else if (set_listen_address(v, host, port, err, errlen) < 0) {
        goto fail;
    }
    errno = 0;
    rfbInitServer(v->screen);
    if (!local && v->screen->listenSock == RFB_INVALID_SOCKET &&
        v->screen->listen6Sock == RFB_INVALID_SOCKET) {
        int e = errno;
        set_err(err, errlen, "cannot listen for VNC viewers on %s port %d%s%s",
                host && *host ? host : "127.0.0.1", port, e ? ": " : "", e ? strerror(e) : "");
        goto fail;
    }

    /* Signals stay with the machine's threads, but for SIGSYS: the
     * sandbox's report of a forbidden call must reach its handler on the
     * thread that made it (blocked, the kernel kills without a word). */
    sigfillset(&all);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&v->thread, NULL, vnc_thread, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        set_err(err, errlen, "cannot start the VNC thread: %s", strerror(rc));
        goto fail;
    }
    v->thread_started = true;
    if (local)
        log_info("vnc: serving viewers handed over the control socket only");
    else
        log_info("vnc: listening on %s port %d%s", host && *host ? host : "127.0.0.1", port,
                 v->passwords[0] ? " (password required)" : "");
    return v;

fail:
    destroy(v);
    return NULL;
}

void vnc_server_free(struct vnc_server *v)
{
    if (v)
        destroy(v);
}

int vnc_server_add_client(struct vnc_server *v, int fd, char *err, size_t errlen)
{
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
        set_err(err, errlen, "a VNC viewer needs a connected stream socket");
        return -1;
    }
    pthread_mutex_lock(&v->handoff_lock);
    bool full = v->nhandoff == VNC_MAX_HANDOFF;
    if (!full)
        v->handoff[v->nhandoff++] = fd;
    pthread_mutex_unlock(&v->handoff_lock);
    if (full) {
        set_err(err, errlen, "too many viewers waiting to be taken on; try again");
        return -1;
    }
    wake(v);
    return 0;
}

unsigned vnc_server_clients(const struct vnc_server *v)
{
    return atomic_load(&((struct vnc_server *)v)->clients);
}

int vnc_server_set_layout(struct vnc_server *v, const char *name, char *err, size_t errlen)
{
    const struct keymap_layout *l = keymap_layout_find(name, err, errlen);

    if (!l)
        return -1;
    atomic_store(&v->layout, l);
    log_info("vnc: keyboard layout %s", keymap_layout_name(l));
    return 0;
}
