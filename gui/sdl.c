/* SDL2 window on a thread of its own.
 *
 * The display's changes reach a ui_shadow on the I/O thread, which then
 * pushes one SDL user event; the window thread uploads the changed
 * rectangles into a streaming texture and presents it.  The renderer's
 * logical size is the guest's mode, which gives aspect-correct letterboxed
 * scaling and maps mouse coordinates back for us. */
#include "gui/sdl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "devices/util.h"
#include "gui/keymap.h"
#include "gui/ui.h"

#define DEFAULT_W 640
#define DEFAULT_H 480
#define HOST_KEY SDL_SCANCODE_RCTRL
#define HOST_KEY_NAME "Right Ctrl"

/* Codes of the user events the window thread handles. */
enum { UEV_REFRESH, UEV_TITLE, UEV_POINTER_MODE, UEV_QUIT };

struct sdl_window {
    struct display *display;
    struct ui_shadow shadow;
    int listener;
    struct ui_input_queue *input;
    char *name;

    pthread_t thread;
    bool thread_started;
    /* Start-up handshake with the creating thread. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    int start_state;             /* 0 starting, 1 running, -1 failed */
    char start_err[256];

    Uint32 uev;                  /* SDL user event type */
    atomic_bool refresh_pending;
    atomic_bool want_absolute;   /* the machine's word: the guest uses the tablet */
    pthread_mutex_t state_lock;
    char state[32];

    /* Window thread only. */
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    unsigned tw, th;             /* texture (guest mode) size */
    bool grabbed, fullscreen;
    bool absolute;               /* positions to the tablet; no capture */
    bool host_down, host_combo;
    unsigned buttons;
    int last_x, last_y;          /* the pointer in guest pixels (absolute) */
    uint8_t down[(KEY_PAUSE + 1 + 7) / 8];
};

static void push_user(struct sdl_window *w, int code)
{
    SDL_Event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = w->uev;
    ev.user.code = code;
    if (SDL_PushEvent(&ev) < 0)
        log_warn("sdl: cannot queue an event: %s", SDL_GetError());
}

/* I/O thread (shadow listener): one refresh event in flight at a time. */
static void notify(void *opaque)
{
    struct sdl_window *w = opaque;
    if (!atomic_exchange(&w->refresh_pending, true))
        push_user(w, UEV_REFRESH);
}

static void update_title(struct sdl_window *w)
{
    char title[512], state[32];

    pthread_mutex_lock(&w->state_lock);
    snprintf(state, sizeof(state), "%s", w->state);
    pthread_mutex_unlock(&w->state_lock);
    snprintf(title, sizeof(title), "%s - Burrow%s%s%s%s", w->name, state[0] ? " [" : "", state,
             state[0] ? "]" : "",
             w->grabbed ? " - Press " HOST_KEY_NAME " to release the pointer" : "");
    SDL_SetWindowTitle(w->win, title);
}

static void render(struct sdl_window *w)
{
    SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 255);
    SDL_RenderClear(w->ren);
    if (w->tex)
        SDL_RenderCopy(w->ren, w->tex, NULL, NULL);
    SDL_RenderPresent(w->ren);
}

/* Takes the shadow's changes into the texture. */
static void refresh(struct sdl_window *w)
{
    struct ui_shadow *sh = &w->shadow;

    atomic_store(&w->refresh_pending, false);
    pthread_mutex_lock(&sh->lock);
    if (sh->resized) {
        if (w->tex)
            SDL_DestroyTexture(w->tex);
        w->tex = NULL;
        w->tw = sh->width;
        w->th = sh->height;
        if (sh->width && sh->height) {
            w->tex = SDL_CreateTexture(w->ren, SDL_PIXELFORMAT_RGB888, SDL_TEXTUREACCESS_STREAMING,
                                       (int)sh->width, (int)sh->height);
            if (!w->tex)
                log_warn("sdl: cannot create a %ux%u texture: %s", sh->width, sh->height,
                         SDL_GetError());
            else
                SDL_UpdateTexture(w->tex, NULL, sh->pixels, (int)sh->width * 4);
            SDL_RenderSetLogicalSize(w->ren, (int)sh->width, (int)sh->height);
            /* Follow the guest's mode unless the user chose a size by
             * going full screen or maximizing. */
            if (!w->fullscreen && !(SDL_GetWindowFlags(w->win) & SDL_WINDOW_MAXIMIZED))
                SDL_SetWindowSize(w->win, (int)sh->width, (int)sh->height);
        }
    } else if (w->tex) {
        for (unsigned i = 0; i < sh->ndirty; i++) {
            const struct display_rect *r = &sh->dirty[i];
            SDL_Rect rect = { (int)r->x, (int)r->y, (int)r->w, (int)r->h };
            SDL_UpdateTexture(w->tex, &rect, sh->pixels + (size_t)r->y * sh->width + r->x,
                              (int)sh->width * 4);
        }
    }
    sh->resized = false;
    sh->ndirty = 0;
    pthread_mutex_unlock(&sh->lock);
    render(w);
}

static void set_grab(struct sdl_window *w, bool on)
{
    if (on == w->grabbed)
        return;
    w->grabbed = on;
    SDL_SetWindowGrab(w->win, on ? SDL_TRUE : SDL_FALSE);
    SDL_SetRelativeMouseMode(on ? SDL_TRUE : SDL_FALSE);
    if (!on && w->buttons) {
        w->buttons = 0;
        ui_input_pointer(w->input, 0, 0, 0, 0);
    }
    update_title(w);
}

/* The pointer at window position (x, y), which SDL gives in the guest's
 * pixels (the renderer's logical size); the tablet clamps what lies in the
 * black bars to the screen's edge. */
static void send_abs(struct sdl_window *w, int x, int y, int dz)
{
    w->last_x = x;
    w->last_y = y;
    if (w->tw && w->th)
        ui_input_pointer_abs(w->input, x, y, (int)w->tw, (int)w->th, dz, w->buttons);
}

/* The guest started or stopped using the tablet: with it the pointer moves
 * freely in and out of the window, and the guest draws its own. */
static void update_pointer_mode(struct sdl_window *w)
{
    bool on = atomic_load(&w->want_absolute);
    if (on == w->absolute)
        return;
    w->absolute = on;
    if (on) {
        set_grab(w, false);
        if (w->buttons) {
            w->buttons = 0;
            send_abs(w, w->last_x, w->last_y, 0);
        }
    } else if (w->buttons) {
        w->buttons = 0;
        ui_input_pointer(w->input, 0, 0, 0, 0);
    }
    SDL_ShowCursor(on ? SDL_DISABLE : SDL_ENABLE);
    update_title(w);
}

static void toggle_fullscreen(struct sdl_window *w)
{
    w->fullscreen = !w->fullscreen;
    if (SDL_SetWindowFullscreen(w->win, w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0) < 0) {
        log_warn("sdl: full screen: %s", SDL_GetError());
        w->fullscreen = !w->fullscreen;
    }
}

static void send_key(struct sdl_window *w, keymap_key key, bool down)
{
    if (down)
        w->down[key / 8] |= (uint8_t)(1u << (key % 8));
    else
        w->down[key / 8] &= (uint8_t)~(1u << (key % 8));
    ui_input_key(w->input, key, down);
}

/* A combination for keys the host would take itself: pressed in order,
 * released in reverse. */
static void send_combo(struct sdl_window *w, const keymap_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        send_key(w, keys[i], true);
    for (size_t i = n; i-- > 0;)
        send_key(w, keys[i], false);
}

/* Host key shortcuts that type for the guest: Right Ctrl+Del is
 * Ctrl+Alt+Del, Right Ctrl+F1..F12 is Ctrl+Alt+F1..F12 (a Linux guest's
 * virtual consoles), which the host's own desktop would otherwise take.
 * Returns whether sc was one. */
static bool host_shortcut(struct sdl_window *w, SDL_Scancode sc)
{
    keymap_key k;
    if (sc == SDL_SCANCODE_DELETE || (sc >= SDL_SCANCODE_F1 && sc <= SDL_SCANCODE_F12))
        k = keymap_hid_to_key((unsigned)sc);
    else
        return false;
    const keymap_key combo[3] = { keymap_key_by_name("ctrl"), keymap_key_by_name("alt"), k };
    send_combo(w, combo, 3);
    return true;
}

/* Keys held when the window loses focus would stay down in the guest. */
static void release_all_keys(struct sdl_window *w)
{
    for (unsigned key = 1; key <= KEY_PAUSE; key++)
        if (w->down[key / 8] & (1u << (key % 8)))
            send_key(w, (keymap_key)key, false);
}

static void on_key(struct sdl_window *w, const SDL_KeyboardEvent *k)
{
    bool down = k->type == SDL_KEYDOWN;
    SDL_Scancode sc = k->keysym.scancode;
    keymap_key key;

    if (sc == HOST_KEY) {
        /* The host key alone toggles the capture on release; with another
         * key it is a modifier for window commands. */
        if (down && !k->repeat) {
            w->host_down = true;
            w->host_combo = false;
        } else if (!down) {
            /* With the tablet there is no capture to toggle. */
            if (w->host_down && !w->host_combo && !w->absolute)
                set_grab(w, !w->grabbed);
            w->host_down = false;
        }
        return;
    }
    if (w->host_down) {
        if (down && sc == SDL_SCANCODE_F)
            toggle_fullscreen(w);
        else if (down && !k->repeat)
            host_shortcut(w, sc);
        w->host_combo = true;
        return;
    }
    if (sc == SDL_SCANCODE_F11) {
        if (down && !k->repeat)
            toggle_fullscreen(w);
        return;
    }
    key = keymap_hid_to_key((unsigned)sc);
    if (!key) {
        log_debug("sdl: scancode %d has no PC key", (int)sc);
        return;
    }
    if (!down && !(w->down[key / 8] & (1u << (key % 8))))
        return;                 /* pressed before the window had focus */
    /* Auto-repeat repeats the make code, as a PS/2 keyboard's typematic. */
    send_key(w, key, down);
}

static unsigned sdl_button(Uint8 b)
{
    switch (b) {
    case SDL_BUTTON_LEFT: return UI_BTN_LEFT;
    case SDL_BUTTON_MIDDLE: return UI_BTN_MIDDLE;
    case SDL_BUTTON_RIGHT: return UI_BTN_RIGHT;
    case SDL_BUTTON_X1: return UI_BTN_SIDE;
    case SDL_BUTTON_X2: return UI_BTN_EXTRA;
    default: return 0;
    }
}

/* Returns false when the thread should end. */
static bool handle(struct sdl_window *w, const SDL_Event *ev)
{
    if (ev->type == w->uev) {
        switch (ev->user.code) {
        case UEV_REFRESH: refresh(w); break;
        case UEV_TITLE: update_title(w); break;
        case UEV_POINTER_MODE: update_pointer_mode(w); break;
        case UEV_QUIT: return false;
        }
        return true;
    }
    switch (ev->type) {
    case SDL_WINDOWEVENT:
        switch (ev->window.event) {
        case SDL_WINDOWEVENT_CLOSE:
            /* The close button (SDL_QUIT follows; it is not counted twice). */
            ui_input_close(w->input);
            break;
        case SDL_WINDOWEVENT_FOCUS_LOST:
            release_all_keys(w);
            w->host_down = false;
            set_grab(w, false);
            if (w->absolute && w->buttons) {
                w->buttons = 0;
                send_abs(w, w->last_x, w->last_y, 0);
            }
            break;
        case SDL_WINDOWEVENT_EXPOSED:
        case SDL_WINDOWEVENT_SIZE_CHANGED:
            render(w);
            break;
        }
        break;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        on_key(w, &ev->key);
        break;
    case SDL_MOUSEMOTION:
        if (w->absolute)
            send_abs(w, ev->motion.x, ev->motion.y, 0);
        else if (w->grabbed && (ev->motion.xrel || ev->motion.yrel))
            ui_input_pointer(w->input, ev->motion.xrel, ev->motion.yrel, 0, w->buttons);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        if (w->absolute) {
            unsigned before = w->buttons;
            if (ev->type == SDL_MOUSEBUTTONDOWN)
                w->buttons |= sdl_button(ev->button.button);
            else
                w->buttons &= ~sdl_button(ev->button.button);
            if (w->buttons != before)
                send_abs(w, ev->button.x, ev->button.y, 0);
            break;
        }
        if (!w->grabbed) {
            /* The click that captures the pointer is not the guest's. */
            if (ev->type == SDL_MOUSEBUTTONDOWN && ev->button.button == SDL_BUTTON_LEFT)
                set_grab(w, true);
            break;
        }
        {
            unsigned before = w->buttons;
            if (ev->type == SDL_MOUSEBUTTONDOWN)
                w->buttons |= sdl_button(ev->button.button);
            else
                w->buttons &= ~sdl_button(ev->button.button);
            /* The release of the capturing click changes nothing. */
            if (w->buttons != before)
                ui_input_pointer(w->input, 0, 0, 0, w->buttons);
        }
        break;
    case SDL_MOUSEWHEEL:
        if ((w->grabbed || w->absolute) && ev->wheel.y) {
            int notches = ev->wheel.direction == SDL_MOUSEWHEEL_FLIPPED ? -ev->wheel.y : ev->wheel.y;
            /* SDL: positive is away from the user; ours: towards. */
            if (w->absolute)
                send_abs(w, w->last_x, w->last_y, -notches);
            else
                ui_input_pointer(w->input, 0, 0, -notches, w->buttons);
        }
        break;
    }
    return true;
}

static void start_result(struct sdl_window *w, int state, const char *msg)
{
    pthread_mutex_lock(&w->start_lock);
    w->start_state = state;
    if (msg)
        snprintf(w->start_err, sizeof(w->start_err), "%s", msg);
    pthread_cond_signal(&w->start_cond);
    pthread_mutex_unlock(&w->start_lock);
}

static void *window_thread(void *opaque)
{
    struct sdl_window *w = opaque;
    char msg[256];
    SDL_Event ev;

    /* The machine handles SIGINT/SIGTERM; SDL must not turn them into
     * SDL_QUIT (which would press the power button). */
    SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
    SDL_SetHint(SDL_HINT_GRAB_KEYBOARD, "1");
    SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
    SDL_SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
    /* SDL's own renderer, drawing through the window system: an OpenGL
     * one loads the GL driver into this process, and with no GPU that is
     * Mesa's llvmpipe, whose JIT code crashed the VM on a CPU that
     * emulates AVX2 gathers wrongly (QEMU's TCG).  A guest screen needs
     * no 3D; SDL_RENDER_DRIVER in the environment still picks another. */
    SDL_SetHint(SDL_HINT_RENDER_DRIVER, "software");
    SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
    if (SDL_Init(SDL_INIT_VIDEO) < 0) {
        snprintf(msg, sizeof(msg), "cannot open a window: %s", SDL_GetError());
        start_result(w, -1, msg);
        return NULL;
    }
    w->uev = SDL_RegisterEvents(1);
    w->win = SDL_CreateWindow("Burrow", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
                              DEFAULT_W, DEFAULT_H, SDL_WINDOW_RESIZABLE);
    if (w->uev == (Uint32)-1 || !w->win) {
        snprintf(msg, sizeof(msg), "cannot open a window: %s", SDL_GetError());
        goto fail;
    }
    w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_PRESENTVSYNC);
    if (!w->ren)
        w->ren = SDL_CreateRenderer(w->win, -1, 0);
    if (!w->ren) {
        snprintf(msg, sizeof(msg), "cannot draw in the window: %s", SDL_GetError());
        goto fail;
    }
    update_title(w);
    render(w);
    start_result(w, 1, NULL);

    while (SDL_WaitEvent(&ev))
        if (!handle(w, &ev))
            break;

    if (w->tex)
        SDL_DestroyTexture(w->tex);
    SDL_DestroyRenderer(w->ren);
    SDL_DestroyWindow(w->win);
    SDL_Quit();
    return NULL;

fail:
    if (w->ren)
        SDL_DestroyRenderer(w->ren);
    if (w->win)
        SDL_DestroyWindow(w->win);
    SDL_Quit();
    start_result(w, -1, msg);
    return NULL;
}

static void destroy(struct sdl_window *w)
{
    if (w->thread_started) {
        if (w->start_state == 1)
            push_user(w, UEV_QUIT);
        pthread_join(w->thread, NULL);
    }
    if (w->listener >= 0)
        ui_shadow_detach(&w->shadow, w->display, w->listener);
    ui_input_queue_free(w->input);
    pthread_mutex_destroy(&w->start_lock);
    pthread_cond_destroy(&w->start_cond);
    pthread_mutex_destroy(&w->state_lock);
    free(w->name);
    free(w);
}

struct sdl_window *sdl_window_new(struct display *d, struct evloop *loop, const char *name,
                                  const struct ui_input_ops *input, void *opaque,
                                  char *err, size_t errlen)
{
    struct sdl_window *w = calloc(1, sizeof(*w));
    sigset_t all, old;
    int rc;

    if (!w) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    w->display = d;
    w->listener = -1;
    pthread_mutex_init(&w->start_lock, NULL);
    pthread_cond_init(&w->start_cond, NULL);
    pthread_mutex_init(&w->state_lock, NULL);
    w->name = strdup(name && *name ? name : "VM");
    if (!w->name) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    w->input = ui_input_queue_new(loop, input, opaque);
    if (!w->input) {
        set_err(err, errlen, "cannot set up the window's input queue");
        goto fail;
    }

    /* Signals stay with the machine's threads, but for SIGSYS: the
     * sandbox's report of a forbidden call must reach its handler on the
     * thread that made it (blocked, the kernel kills without a word). */
    sigfillset(&all);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&w->thread, NULL, window_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        set_err(err, errlen, "cannot start the window thread: %s", strerror(rc));
        goto fail;
    }
    w->thread_started = true;
    pthread_mutex_lock(&w->start_lock);
    while (w->start_state == 0)
        pthread_cond_wait(&w->start_cond, &w->start_lock);
    pthread_mutex_unlock(&w->start_lock);
    if (w->start_state < 0) {
        set_err(err, errlen, "%s", w->start_err);
        goto fail;
    }
    /* Now that the thread takes events: the first resize comes at once. */
    w->listener = ui_shadow_attach(&w->shadow, d, notify, w);
    if (w->listener < 0) {
        set_err(err, errlen, "cannot listen to the display");
        goto fail;
    }
    return w;

fail:
    destroy(w);
    return NULL;
}

void sdl_window_set_state(struct sdl_window *w, const char *state)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->state_lock);
    snprintf(w->state, sizeof(w->state), "%s", state ? state : "");
    pthread_mutex_unlock(&w->state_lock);
    push_user(w, UEV_TITLE);
}

void sdl_window_set_absolute(struct sdl_window *w, bool on)
{
    if (!w || atomic_exchange(&w->want_absolute, on) == on)
        return;
    push_user(w, UEV_POINTER_MODE);
}

void sdl_window_free(struct sdl_window *w)
{
    if (w)
        destroy(w);
}
