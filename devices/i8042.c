/* Intel 8042 keyboard controller with a PS/2 keyboard and mouse.
 *
 * Model: the controller has one output buffer (port 0x60 reads) fed, in
 * this order, from its own replies, from the keyboard's queue and from the
 * mouse's queue; a device's queue only drains while the command byte
 * leaves its interface enabled.  Commands and data written by the guest are
 * handled at once, so the input buffer is never seen full.  Bytes from the
 * keyboard pass the set 2 -> set 1 translator while the command byte's
 * XLATE bit is set, exactly as the controller's firmware does on real
 * machines (this is why a translated keyboard identifies as AB 41). */
#include "devices/i8042.h"

#include <stdlib.h>

#include "devices/platform.h"
#include "devices/util.h"

/* Status register (port 0x64, read). */
#define STAT_OBF      0x01   /* output buffer full */
#define STAT_IBF      0x02   /* input buffer full */
#define STAT_SYS      0x04   /* system flag */
#define STAT_CMD      0x08   /* last write went to 0x64 (1) or 0x60 (0) */
#define STAT_UNLOCKED 0x10   /* keyboard not inhibited by the key lock */
#define STAT_AUXB     0x20   /* output buffer holds mouse data */
#define STAT_TIMEOUT  0x40
#define STAT_PARITY   0x80

/* Command byte (controller RAM byte 0). */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40
#define CTR_POWERON (CTR_KBDINT | CTR_AUXDIS | CTR_XLATE)

/* Output port. */
#define OUT_RESET   0x01   /* low: CPU reset asserted */
#define OUT_A20     0x02
#define OUT_KBD_OBF 0x10   /* IRQ1 line */
#define OUT_AUX_OBF 0x20   /* IRQ12 line */
#define OUT_POWERON 0xcf   /* reset and A20 high, clock/data lines idle high */

/* Input port: bit 7 high = keyboard not inhibited. */
#define INPORT_VALUE 0x80

/* Controller commands. */
#define CCMD_READ_RAM    0x20   /* 0x20-0x3f: read RAM byte n (0: command byte) */
#define CCMD_WRITE_RAM   0x60   /* 0x60-0x7f: write RAM byte n */
#define CCMD_PWD_CHECK   0xa4
#define CCMD_AUX_DISABLE 0xa7
#define CCMD_AUX_ENABLE  0xa8
#define CCMD_AUX_TEST    0xa9
#define CCMD_SELF_TEST   0xaa
#define CCMD_KBD_TEST    0xab
#define CCMD_KBD_DISABLE 0xad
#define CCMD_KBD_ENABLE  0xae
#define CCMD_READ_INPORT 0xc0
#define CCMD_POLL_LOW    0xc1
#define CCMD_POLL_HIGH   0xc2
#define CCMD_READ_OUTPORT  0xd0
#define CCMD_WRITE_OUTPORT 0xd1
#define CCMD_WRITE_KBD_OBUF 0xd2
#define CCMD_WRITE_AUX_OBUF 0xd3
#define CCMD_WRITE_AUX     0xd4
#define CCMD_A20_DISABLE   0xdd
#define CCMD_A20_ENABLE    0xdf
#define CCMD_READ_TEST     0xe0
#define CCMD_PULSE_FIRST   0xf0   /* 0xf0-0xff: pulse output bits 0-3 low */

/* Replies shared by keyboard and mouse. */
#define PS2_ACK    0xfa
#define PS2_RESEND 0xfe
#define PS2_BAT_OK 0xaa

/* Keyboard commands. */
#define KBD_CMD_SET_LEDS  0xed
#define KBD_CMD_ECHO      0xee
#define KBD_CMD_SCANSET   0xf0
#define KBD_CMD_IDENTIFY  0xf2
#define KBD_CMD_TYPEMATIC 0xf3
#define KBD_CMD_ENABLE    0xf4
#define KBD_CMD_DISABLE   0xf5
#define KBD_CMD_DEFAULTS  0xf6
#define KBD_CMD_SET3_FIRST 0xf7  /* 0xf7-0xfd: set 3 key attributes */
#define KBD_CMD_SET3_LAST  0xfd
#define KBD_CMD_RESEND    0xfe
#define KBD_CMD_RESET     0xff

/* Mouse commands. */
#define AUX_CMD_SCALE11   0xe6
#define AUX_CMD_SCALE21   0xe7
#define AUX_CMD_SET_RES   0xe8
#define AUX_CMD_STATUS    0xe9
#define AUX_CMD_STREAM    0xea
#define AUX_CMD_READ      0xeb
#define AUX_CMD_RESET_WRAP 0xec
#define AUX_CMD_WRAP      0xee
#define AUX_CMD_REMOTE    0xf0
#define AUX_CMD_GET_ID    0xf2
#define AUX_CMD_SET_RATE  0xf3
#define AUX_CMD_ENABLE    0xf4
#define AUX_CMD_DISABLE   0xf5
#define AUX_CMD_DEFAULTS  0xf6
#define AUX_CMD_RESEND    0xfe
#define AUX_CMD_RESET     0xff

#define QUEUE_SIZE 256
/* Pending key bytes before the keyboard overruns, and mouse bytes before
 * motion is held back and merged: 16, as in real devices.  Drivers rely on
 * it: Linux's i8042 probe gives up on a controller that still has data
 * after 16 reads. */
#define KBD_KEY_LIMIT 16
#define AUX_MOTION_LIMIT 16
#define CTRL_QUEUE_SIZE 8
#define MOTION_LIMIT 100000  /* accumulated counts kept at most */

struct byteq {
    uint8_t b[QUEUE_SIZE];
    unsigned head, count;
};

struct ps2_kbd {
    struct byteq q;
    uint8_t pending_cmd;   /* command waiting for its argument, or 0 */
    uint8_t last_sent;     /* for the resend command */
    bool scanning;
    bool overrun;          /* overrun code queued; cleared when drained */
    uint8_t set;           /* scan code set 1, 2 or 3 */
    uint8_t leds;
    uint8_t typematic;
};

struct ps2_mouse {
    struct byteq q;
    uint8_t pending_cmd;
    uint8_t last_sent;
    bool reporting, remote, wrap, scale21;
    uint8_t rate, resolution, id;
    uint8_t rate_hist[3];  /* last three sample rates, for IntelliMouse ids */
    int acc_dx, acc_dy, acc_dz;   /* PS/2 directions: y up, z towards user */
    unsigned buttons, sent_buttons;
};

struct i8042 {
    struct platform *p;
    uint8_t ram[32];       /* ram[0] is the command byte */
    uint8_t outport;
    bool sys_flag;
    bool last_was_cmd;
    uint8_t pending_cmd;   /* controller command waiting for a data byte */

    uint8_t obuf;          /* the output buffer */
    bool obf, obuf_aux;

    struct { uint8_t v; bool aux; } cq[CTRL_QUEUE_SIZE];
    unsigned cq_head, cq_count;

    bool xlat_break;       /* translator saw F0 and waits for the code */
    bool aux_turn;         /* fairness between keyboard and mouse */
    bool irq1, irq12;
    bool kbd_taken;        /* the guest took keyboard bytes in this access */
    void (*kbd_drained)(void *opaque);
    void *kbd_drained_opaque;

    uint8_t xlat[256];
    struct ps2_kbd kbd;
    struct ps2_mouse mouse;
};

/* ---- set 2 -> set 1 translation ---- */

/* Set 2 code and its set 1 equivalent, key by key. */
static const uint8_t set2_to_set1[][2] = {
    { 0x76, 0x01 }, /* Esc */
    { 0x16, 0x02 }, { 0x1e, 0x03 }, { 0x26, 0x04 }, { 0x25, 0x05 }, /* 1-4 */
    { 0x2e, 0x06 }, { 0x36, 0x07 }, { 0x3d, 0x08 }, { 0x3e, 0x09 }, /* 5-8 */
    { 0x46, 0x0a }, { 0x45, 0x0b }, { 0x4e, 0x0c }, { 0x55, 0x0d }, /* 9 0 - = */
    { 0x66, 0x0e }, { 0x0d, 0x0f },                                 /* BS Tab */
    { 0x15, 0x10 }, { 0x1d, 0x11 }, { 0x24, 0x12 }, { 0x2d, 0x13 }, /* Q W E R */
    { 0x2c, 0x14 }, { 0x35, 0x15 }, { 0x3c, 0x16 }, { 0x43, 0x17 }, /* T Y U I */
    { 0x44, 0x18 }, { 0x4d, 0x19 }, { 0x54, 0x1a }, { 0x5b, 0x1b }, /* O P [ ] */
    { 0x5a, 0x1c }, { 0x14, 0x1d },                                 /* Enter LCtrl */
    { 0x1c, 0x1e }, { 0x1b, 0x1f }, { 0x23, 0x20 }, { 0x2b, 0x21 }, /* A S D F */
    { 0x34, 0x22 }, { 0x33, 0x23 }, { 0x3b, 0x24 }, { 0x42, 0x25 }, /* G H J K */
    { 0x4b, 0x26 }, { 0x4c, 0x27 }, { 0x52, 0x28 }, { 0x0e, 0x29 }, /* L ; ' ` */
    { 0x12, 0x2a }, { 0x5d, 0x2b },                                 /* LShift \ */
    { 0x1a, 0x2c }, { 0x22, 0x2d }, { 0x21, 0x2e }, { 0x2a, 0x2f }, /* Z X C V */
    { 0x32, 0x30 }, { 0x31, 0x31 }, { 0x3a, 0x32 }, { 0x41, 0x33 }, /* B N M , */
    { 0x49, 0x34 }, { 0x4a, 0x35 }, { 0x59, 0x36 }, { 0x7c, 0x37 }, /* . / RShift KP* */
    { 0x11, 0x38 }, { 0x29, 0x39 }, { 0x58, 0x3a },                 /* LAlt Space Caps */
    { 0x05, 0x3b }, { 0x06, 0x3c }, { 0x04, 0x3d }, { 0x0c, 0x3e }, /* F1-F4 */
    { 0x03, 0x3f }, { 0x0b, 0x40 }, { 0x83, 0x41 }, { 0x0a, 0x42 }, /* F5-F8 */
    { 0x01, 0x43 }, { 0x09, 0x44 },                                 /* F9 F10 */
    { 0x77, 0x45 }, { 0x7e, 0x46 },                                 /* NumLock ScrollLock */
    { 0x6c, 0x47 }, { 0x75, 0x48 }, { 0x7d, 0x49 }, { 0x7b, 0x4a }, /* KP7 KP8 KP9 KP- */
    { 0x6b, 0x4b }, { 0x73, 0x4c }, { 0x74, 0x4d }, { 0x79, 0x4e }, /* KP4 KP5 KP6 KP+ */
    { 0x69, 0x4f }, { 0x72, 0x50 }, { 0x7a, 0x51 }, { 0x70, 0x52 }, /* KP1 KP2 KP3 KP0 */
    { 0x71, 0x53 }, { 0x84, 0x54 },                                 /* KP. SysRq */
    { 0x61, 0x56 }, { 0x78, 0x57 }, { 0x07, 0x58 },                 /* ISO key, F11, F12 */
    { 0x0f, 0x59 },                                                 /* KP= */
    { 0x08, 0x64 }, { 0x10, 0x65 }, { 0x18, 0x66 }, { 0x20, 0x67 }, /* F13-F16 */
    { 0x28, 0x68 }, { 0x30, 0x69 }, { 0x38, 0x6a }, { 0x40, 0x6b }, /* F17-F20 */
    { 0x48, 0x6c }, { 0x50, 0x6d }, { 0x57, 0x6e }, { 0x5f, 0x76 }, /* F21-F24 */
    { 0x13, 0x70 }, { 0x51, 0x73 }, { 0x64, 0x79 }, { 0x67, 0x7b }, /* Kana Ro Henkan Muhenkan */
    { 0x6a, 0x7d }, { 0x6d, 0x7e },                                 /* Yen KP, */
    /* Codes used only after E0: Win keys, Menu, power keys. */
    { 0x1f, 0x5b }, { 0x27, 0x5c }, { 0x2f, 0x5d },
    { 0x37, 0x5e }, { 0x3f, 0x5f }, { 0x5e, 0x63 },
    /* Not keys: the keyboard's error code, and the set 2 reply to "get scan
     * code set", which the translator turns into the same byte as F7. */
    { 0x00, 0xff }, { 0x02, 0x41 },
};

static void build_xlat(uint8_t t[256])
{
    /* Codes at 0x80 and up are replies (FA, AA, EE, FE...) and prefixes
     * (E0, E1): they pass unchanged.  Unassigned codes below 0x80 give 0. */
    for (unsigned i = 0; i < 256; i++)
        t[i] = i >= 0x80 ? (uint8_t)i : 0;
    for (size_t i = 0; i < ARRAY_SIZE(set2_to_set1); i++)
        t[set2_to_set1[i][0]] = set2_to_set1[i][1];
}

/* ---- small queues ---- */

static bool q_push(struct byteq *q, uint8_t v)
{
    if (q->count == QUEUE_SIZE)
        return false;
    q->b[(q->head + q->count) % QUEUE_SIZE] = v;
    q->count++;
    return true;
}

static uint8_t q_pop(struct byteq *q)
{
    uint8_t v = q->b[q->head];
    q->head = (q->head + 1) % QUEUE_SIZE;
    q->count--;
    return v;
}

static void q_clear(struct byteq *q)
{
    q->head = q->count = 0;
}

/* ---- output buffer and interrupts ---- */

static uint8_t ctr(const struct i8042 *k)
{
    return k->ram[0];
}

static void update_irq(struct i8042 *k)
{
    /* The IRQ lines follow the output buffer: up while it holds a byte of
     * their kind and the command byte enables them, down once it is read. */
    bool irq1 = k->obf && !k->obuf_aux && (ctr(k) & CTR_KBDINT);
    bool irq12 = k->obf && k->obuf_aux && (ctr(k) & CTR_AUXINT);
    if (irq1 != k->irq1) {
        k->irq1 = irq1;
        platform_set_irq(k->p, I8042_KBD_GSI, irq1);
    }
    if (irq12 != k->irq12) {
        k->irq12 = irq12;
        platform_set_irq(k->p, I8042_AUX_GSI, irq12);
    }
}

/* Takes the next keyboard byte through the translator; false if the queue
 * held nothing to show (empty, or only a break prefix). */
static bool take_kbd_byte(struct i8042 *k, uint8_t *out)
{
    while (k->kbd.q.count) {
        uint8_t b = q_pop(&k->kbd.q);
        k->kbd_taken = true;
        if (k->kbd.q.count == 0)
            k->kbd.overrun = false;
        if (!(ctr(k) & CTR_XLATE)) {
            *out = b;
            return true;
        }
        if (b == 0xf0) {
            k->xlat_break = true;   /* set 1 marks the release in the code */
            continue;
        }
        *out = k->xlat[b] | (k->xlat_break ? 0x80 : 0);
        k->xlat_break = false;
        return true;
    }
    return false;
}

static void mouse_flush_motion(struct i8042 *k);

/* Fills an empty output buffer from the queues. */
static void refill(struct i8042 *k)
{
    if (k->obf)
        return;
    if (k->cq_count) {
        k->obuf = k->cq[k->cq_head].v;
        k->obuf_aux = k->cq[k->cq_head].aux;
        k->cq_head = (k->cq_head + 1) % CTRL_QUEUE_SIZE;
        k->cq_count--;
        k->obf = true;
        return;
    }
    bool kbd_ok = !(ctr(k) & CTR_KBDDIS) && k->kbd.q.count;
    bool aux_ok = !(ctr(k) & CTR_AUXDIS) && k->mouse.q.count;
    /* Alternate when both have data, so neither starves the other. */
    if (kbd_ok && !(aux_ok && k->aux_turn)) {
        uint8_t b;
        if (take_kbd_byte(k, &b)) {
            k->obuf = b;
            k->obuf_aux = false;
            k->obf = true;
            k->aux_turn = true;
            return;
        }
    }
    if (aux_ok) {
        k->obuf = q_pop(&k->mouse.q);
        k->obuf_aux = true;
        k->obf = true;
        k->aux_turn = false;
        mouse_flush_motion(k);   /* room may have opened for more motion */
    }
}

static void sync_output(struct i8042 *k)
{
    refill(k);
    update_irq(k);
}

/* A byte the controller itself answers with (or D2/D3 injections). */
static void ctrl_reply(struct i8042 *k, uint8_t v, bool aux)
{
    if (k->cq_count == CTRL_QUEUE_SIZE) {
        log_guest_error("i8042: controller replies not read, dropping 0x%02x", v);
        return;
    }
    unsigned i = (k->cq_head + k->cq_count) % CTRL_QUEUE_SIZE;
    k->cq[i].v = v;
    k->cq[i].aux = aux;
    k->cq_count++;
}

/* ---- keyboard ---- */

static void kbd_send(struct i8042 *k, uint8_t v)
{
    if (q_push(&k->kbd.q, v))
        k->kbd.last_sent = v;
}

static void kbd_defaults(struct ps2_kbd *kb)
{
    kb->set = 2;
    kb->typematic = 0x2b;   /* 10.9 characters/s after 500 ms */
}

static void kbd_power_on(struct ps2_kbd *kb)
{
    q_clear(&kb->q);
    kb->pending_cmd = 0;
    kb->last_sent = 0;
    kb->overrun = false;
    kb->scanning = true;
    kb->leds = 0;
    kbd_defaults(kb);
}

/* Handles the argument of a two-byte command; false when the byte is no
 * valid argument but a new command, as keyboards treat it. */
static bool kbd_argument(struct i8042 *k, uint8_t cmd, uint8_t v)
{
    struct ps2_kbd *kb = &k->kbd;
    switch (cmd) {
    case KBD_CMD_SET_LEDS:
        if (v & 0x80)
            return false;
        kb->leds = v & 7;
        kbd_send(k, PS2_ACK);
        return true;
    case KBD_CMD_TYPEMATIC:
        if (v & 0x80)
            return false;
        kb->typematic = v;
        kbd_send(k, PS2_ACK);
        return true;
    case KBD_CMD_SCANSET:
        if (v == 0) {
            kbd_send(k, PS2_ACK);
            kbd_send(k, kb->set);
        } else if (v <= 3) {
            kb->set = v;
            if (v == 3)
                log_debug("i8042: scan code set 3 requested; keys stay in set 2");
            kbd_send(k, PS2_ACK);
        } else if (v >= KBD_CMD_SET_LEDS) {
            return false;
        } else {
            kbd_send(k, PS2_RESEND);
        }
        return true;
    }
    return false;
}

static void kbd_command(struct i8042 *k, uint8_t v)
{
    struct ps2_kbd *kb = &k->kbd;
    if (kb->pending_cmd) {
        uint8_t cmd = kb->pending_cmd;
        kb->pending_cmd = 0;
        if (kbd_argument(k, cmd, v))
            return;
    }
    switch (v) {
    case KBD_CMD_SET_LEDS:
    case KBD_CMD_TYPEMATIC:
    case KBD_CMD_SCANSET:
        kbd_send(k, PS2_ACK);
        kb->pending_cmd = v;
        break;
    case KBD_CMD_ECHO:
        kbd_send(k, KBD_CMD_ECHO);
        break;
    case KBD_CMD_IDENTIFY:
        kbd_send(k, PS2_ACK);
        kbd_send(k, 0xab);   /* MF2 keyboard */
        kbd_send(k, 0x83);
        break;
    case KBD_CMD_ENABLE:
        q_clear(&kb->q);
        kbd_send(k, PS2_ACK);
        kb->scanning = true;
        break;
    case KBD_CMD_DISABLE:
        q_clear(&kb->q);
        kbd_send(k, PS2_ACK);
        kbd_defaults(kb);
        kb->scanning = false;
        break;
    case KBD_CMD_DEFAULTS:
        q_clear(&kb->q);
        kbd_send(k, PS2_ACK);
        kbd_defaults(kb);
        break;
    case KBD_CMD_RESEND:
        kbd_send(k, kb->last_sent);
        break;
    case KBD_CMD_RESET:
        kbd_power_on(kb);
        kbd_send(k, PS2_ACK);
        kbd_send(k, PS2_BAT_OK);
        break;
    default:
        if (v >= KBD_CMD_SET3_FIRST && v <= KBD_CMD_SET3_LAST) {
            kbd_send(k, PS2_ACK);   /* set 3 key types: nothing to change in set 2 */
            break;
        }
        log_guest_error("i8042: unknown keyboard command 0x%02x", v);
        kbd_send(k, PS2_RESEND);
        break;
    }
}

void i8042_kbd_put(struct i8042 *k, const uint8_t *scancodes, size_t n)
{
    struct ps2_kbd *kb = &k->kbd;
    if (!kb->scanning || n == 0)
        return;
    if (kb->q.count + n > KBD_KEY_LIMIT) {
        /* A whole event or nothing: never half a sequence. */
        if (!kb->overrun && kb->q.count < QUEUE_SIZE) {
            kbd_send(k, kb->set == 1 ? 0xff : 0x00);
            kb->overrun = true;
        }
        sync_output(k);
        return;
    }
    bool brk = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = scancodes[i];
        if (kb->set != 1) {
            kbd_send(k, b);
        } else if (b == 0xf0) {
            brk = true;
        } else {
            kbd_send(k, k->xlat[b] | (brk ? 0x80 : 0));
            brk = false;
        }
    }
    sync_output(k);
}

bool i8042_kbd_has_room(const struct i8042 *k, size_t n)
{
    return !k->kbd.scanning || k->kbd.q.count + n <= KBD_KEY_LIMIT;
}

void i8042_set_kbd_drained(struct i8042 *k, void (*drained)(void *opaque), void *opaque)
{
    k->kbd_drained = drained;
    k->kbd_drained_opaque = opaque;
}

/* At the end of a guest's port access: tells whoever holds keys back that
 * the guest took some (never from inside i8042_kbd_put). */
static void notify_drained(struct i8042 *k)
{
    if (!k->kbd_taken)
        return;
    k->kbd_taken = false;
    if (k->kbd_drained)
        k->kbd_drained(k->kbd_drained_opaque);
}

unsigned i8042_kbd_leds(const struct i8042 *k)
{
    return k->kbd.leds;
}

/* ---- mouse ---- */

static void aux_send(struct i8042 *k, uint8_t v)
{
    if (q_push(&k->mouse.q, v))
        k->mouse.last_sent = v;
}

static void mouse_defaults(struct ps2_mouse *m)
{
    m->reporting = false;
    m->remote = false;
    m->scale21 = false;
    m->rate = 100;
    m->resolution = 2;   /* 4 counts/mm */
    m->acc_dx = m->acc_dy = m->acc_dz = 0;
}

static void mouse_power_on(struct ps2_mouse *m)
{
    q_clear(&m->q);
    mouse_defaults(m);
    m->pending_cmd = 0;
    m->last_sent = 0;
    m->wrap = false;
    m->id = 0;
    memset(m->rate_hist, 0, sizeof(m->rate_hist));
    m->sent_buttons = m->buttons;
}

static unsigned packet_size(const struct ps2_mouse *m)
{
    return m->id >= 3 ? 4 : 3;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* 2:1 scaling of the PS/2 spec, applied to stream reports only. */
static int scale21(int v)
{
    static const int small[6] = { 0, 1, 1, 3, 6, 9 };
    int a = v < 0 ? -v : v;
    int s = a < 6 ? small[a] : 2 * a;
    return v < 0 ? -s : s;
}

static void mouse_packet(struct i8042 *k, bool stream)
{
    struct ps2_mouse *m = &k->mouse;
    int dx = clamp(m->acc_dx, -256, 255);
    int dy = clamp(m->acc_dy, -256, 255);
    int dz = m->id == 4 ? clamp(m->acc_dz, -8, 7) : clamp(m->acc_dz, -127, 127);
    m->acc_dx -= dx;
    m->acc_dy -= dy;
    m->acc_dz -= m->id >= 3 ? dz : m->acc_dz;   /* no wheel: motion lost */
    uint8_t b0 = 0x08;
    if (stream && m->scale21) {
        dx = scale21(dx);
        dy = scale21(dy);
        if (dx < -256 || dx > 255)
            b0 |= 0x40;
        if (dy < -256 || dy > 255)
            b0 |= 0x80;
        dx = clamp(dx, -256, 255);
        dy = clamp(dy, -256, 255);
    }
    b0 |= (m->buttons & I8042_BTN_LEFT) ? 0x01 : 0;
    b0 |= (m->buttons & I8042_BTN_RIGHT) ? 0x02 : 0;
    b0 |= (m->buttons & I8042_BTN_MIDDLE) ? 0x04 : 0;
    b0 |= dx < 0 ? 0x10 : 0;
    b0 |= dy < 0 ? 0x20 : 0;
    aux_send(k, b0);
    aux_send(k, (uint8_t)dx);
    aux_send(k, (uint8_t)dy);
    if (m->id == 3) {
        aux_send(k, (uint8_t)dz);
    } else if (m->id == 4) {
        aux_send(k, (uint8_t)((dz & 0x0f) | ((m->buttons & I8042_BTN_SIDE) ? 0x10 : 0) |
                              ((m->buttons & I8042_BTN_EXTRA) ? 0x20 : 0)));
    }
    m->sent_buttons = m->buttons;
}

/* Sends what motion and button changes have accumulated, as room allows. */
static void mouse_flush_motion(struct i8042 *k)
{
    struct ps2_mouse *m = &k->mouse;
    if (!m->reporting || m->remote || m->wrap)
        return;
    while ((m->acc_dx || m->acc_dy || m->acc_dz || m->buttons != m->sent_buttons) &&
           m->q.count + packet_size(m) <= AUX_MOTION_LIMIT)
        mouse_packet(k, true);
}

void i8042_mouse_move(struct i8042 *k, int dx, int dy, int dz, unsigned buttons)
{
    struct ps2_mouse *m = &k->mouse;
    m->buttons = buttons;
    if (m->wrap || (!m->remote && !m->reporting)) {
        m->sent_buttons = buttons;   /* not reporting: nothing accumulates */
        return;
    }
    m->acc_dx = clamp(m->acc_dx + clamp(dx, -MOTION_LIMIT, MOTION_LIMIT), -MOTION_LIMIT, MOTION_LIMIT);
    m->acc_dy = clamp(m->acc_dy - clamp(dy, -MOTION_LIMIT, MOTION_LIMIT), -MOTION_LIMIT, MOTION_LIMIT);
    m->acc_dz = clamp(m->acc_dz + clamp(dz, -MOTION_LIMIT, MOTION_LIMIT), -MOTION_LIMIT, MOTION_LIMIT);
    mouse_flush_motion(k);
    sync_output(k);
}

static bool valid_rate(uint8_t r)
{
    static const uint8_t rates[] = { 10, 20, 40, 60, 80, 100, 200 };
    for (size_t i = 0; i < ARRAY_SIZE(rates); i++)
        if (rates[i] == r)
            return true;
    return false;
}

static void mouse_set_rate(struct ps2_mouse *m, uint8_t r)
{
    m->rate = r;
    m->rate_hist[0] = m->rate_hist[1];
    m->rate_hist[1] = m->rate_hist[2];
    m->rate_hist[2] = r;
    /* IntelliMouse knocks: 200,100,80 turns on the wheel (id 3); then
     * 200,200,80 the two extra buttons (id 4). */
    if (m->rate_hist[0] == 200 && m->rate_hist[1] == 100 && m->rate_hist[2] == 80 && m->id == 0)
        m->id = 3;
    else if (m->rate_hist[0] == 200 && m->rate_hist[1] == 200 && m->rate_hist[2] == 80 && m->id == 3)
        m->id = 4;
}

static void mouse_command(struct i8042 *k, uint8_t v)
{
    struct ps2_mouse *m = &k->mouse;
    if (m->wrap && v != AUX_CMD_RESET_WRAP && v != AUX_CMD_RESET) {
        aux_send(k, v);   /* wrap mode echoes everything else */
        return;
    }
    if (m->pending_cmd) {
        uint8_t cmd = m->pending_cmd;
        m->pending_cmd = 0;
        if (cmd == AUX_CMD_SET_RATE && valid_rate(v)) {
            mouse_set_rate(m, v);
            aux_send(k, PS2_ACK);
            return;
        }
        if (cmd == AUX_CMD_SET_RES && v <= 3) {
            m->resolution = v;
            aux_send(k, PS2_ACK);
            return;
        }
        if (v < AUX_CMD_SCALE11) {
            log_guest_error("i8042: bad mouse argument 0x%02x for 0x%02x", v, cmd);
            aux_send(k, PS2_RESEND);
            return;
        }
        /* Looks like a command: take it as one. */
    }
    switch (v) {
    case AUX_CMD_SCALE11:
        m->scale21 = false;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_SCALE21:
        m->scale21 = true;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_SET_RES:
    case AUX_CMD_SET_RATE:
        aux_send(k, PS2_ACK);
        m->pending_cmd = v;
        break;
    case AUX_CMD_STATUS:
        aux_send(k, PS2_ACK);
        aux_send(k, (uint8_t)((m->remote ? 0x40 : 0) | (m->reporting ? 0x20 : 0) |
                              (m->scale21 ? 0x10 : 0) |
                              ((m->buttons & I8042_BTN_LEFT) ? 0x04 : 0) |
                              ((m->buttons & I8042_BTN_MIDDLE) ? 0x02 : 0) |
                              ((m->buttons & I8042_BTN_RIGHT) ? 0x01 : 0)));
        aux_send(k, m->resolution);
        aux_send(k, m->rate);
        break;
    case AUX_CMD_STREAM:
        m->remote = false;
        m->acc_dx = m->acc_dy = m->acc_dz = 0;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_READ:
        aux_send(k, PS2_ACK);
        if (QUEUE_SIZE - m->q.count >= packet_size(m))
            mouse_packet(k, false);
        break;
    case AUX_CMD_RESET_WRAP:
        m->wrap = false;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_WRAP:
        m->wrap = true;
        m->acc_dx = m->acc_dy = m->acc_dz = 0;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_REMOTE:
        m->remote = true;
        m->acc_dx = m->acc_dy = m->acc_dz = 0;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_GET_ID:
        aux_send(k, PS2_ACK);
        aux_send(k, m->id);
        break;
    case AUX_CMD_ENABLE:
        m->reporting = true;
        m->acc_dx = m->acc_dy = m->acc_dz = 0;
        m->sent_buttons = m->buttons;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_DISABLE:
        m->reporting = false;
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_DEFAULTS:
        mouse_defaults(m);
        aux_send(k, PS2_ACK);
        break;
    case AUX_CMD_RESEND:
        aux_send(k, m->last_sent);
        break;
    case AUX_CMD_RESET:
        mouse_power_on(m);
        aux_send(k, PS2_ACK);
        aux_send(k, PS2_BAT_OK);
        aux_send(k, 0x00);   /* device id: standard PS/2 mouse */
        break;
    default:
        log_guest_error("i8042: unknown mouse command 0x%02x", v);
        aux_send(k, PS2_RESEND);
        break;
    }
}

/* ---- controller ---- */

static uint8_t outport_value(const struct i8042 *k)
{
    uint8_t v = k->outport & (uint8_t)~(OUT_KBD_OBF | OUT_AUX_OBF);
    if (k->obf)
        v |= k->obuf_aux ? OUT_AUX_OBF : OUT_KBD_OBF;
    return v;
}

static void write_outport(struct i8042 *k, uint8_t v)
{
    if ((v ^ k->outport) & OUT_A20)
        log_debug("i8042: A20 gate %s", (v & OUT_A20) ? "enabled" : "disabled");
    k->outport = v | OUT_RESET;
    if (!(v & OUT_RESET))
        platform_request(k->p, PLATFORM_RESET, 0);
}

static void controller_command(struct i8042 *k, uint8_t cmd)
{
    k->pending_cmd = 0;   /* a new command abandons an unfinished one */
    if (cmd >= CCMD_READ_RAM && cmd < CCMD_READ_RAM + 32) {
        ctrl_reply(k, k->ram[cmd - CCMD_READ_RAM], false);
        return;
    }
    if (cmd >= CCMD_WRITE_RAM && cmd < CCMD_WRITE_RAM + 32) {
        k->pending_cmd = cmd;
        return;
    }
    if (cmd >= CCMD_PULSE_FIRST) {
        /* Bits 0-3 low pulse the matching output port lines; line 0 is the
         * CPU reset (0xfe is the classic "reboot" command). */
        if (!(cmd & OUT_RESET))
            platform_request(k->p, PLATFORM_RESET, 0);
        return;
    }
    switch (cmd) {
    case CCMD_PWD_CHECK:
        ctrl_reply(k, 0xf1, false);   /* no password installed */
        break;
    case CCMD_AUX_DISABLE:
        k->ram[0] |= CTR_AUXDIS;
        break;
    case CCMD_AUX_ENABLE:
        k->ram[0] &= (uint8_t)~CTR_AUXDIS;
        break;
    case CCMD_AUX_TEST:
        ctrl_reply(k, 0x00, false);   /* no clock/data line faults */
        break;
    case CCMD_SELF_TEST:
        k->sys_flag = true;
        ctrl_reply(k, 0x55, false);
        break;
    case CCMD_KBD_TEST:
        ctrl_reply(k, 0x00, false);
        break;
    case CCMD_KBD_DISABLE:
        k->ram[0] |= CTR_KBDDIS;
        break;
    case CCMD_KBD_ENABLE:
        k->ram[0] &= (uint8_t)~CTR_KBDDIS;
        break;
    case CCMD_READ_INPORT:
        ctrl_reply(k, INPORT_VALUE, false);
        break;
    case CCMD_POLL_LOW:
    case CCMD_POLL_HIGH:
        /* Copy input port nibbles into status bits 4-7: ours are constant. */
        break;
    case CCMD_READ_OUTPORT:
        ctrl_reply(k, outport_value(k), false);
        break;
    case CCMD_WRITE_OUTPORT:
    case CCMD_WRITE_KBD_OBUF:
    case CCMD_WRITE_AUX_OBUF:
    case CCMD_WRITE_AUX:
        k->pending_cmd = cmd;
        break;
    case CCMD_A20_DISABLE:
        write_outport(k, k->outport & (uint8_t)~OUT_A20);
        break;
    case CCMD_A20_ENABLE:
        write_outport(k, k->outport | OUT_A20);
        break;
    case CCMD_READ_TEST:
        ctrl_reply(k, 0x00, false);
        break;
    default:
        log_guest_error("i8042: unknown controller command 0x%02x", cmd);
        break;
    }
}

static void data_write(struct i8042 *k, uint8_t v)
{
    uint8_t cmd = k->pending_cmd;
    k->pending_cmd = 0;
    if (cmd >= CCMD_WRITE_RAM && cmd < CCMD_WRITE_RAM + 32) {
        k->ram[cmd - CCMD_WRITE_RAM] = v;
        if (cmd == CCMD_WRITE_RAM) {
            k->sys_flag = v & CTR_SYS;
            if (!(v & CTR_XLATE))
                k->xlat_break = false;
        }
        return;
    }
    switch (cmd) {
    case CCMD_WRITE_OUTPORT:
        write_outport(k, v);
        return;
    case CCMD_WRITE_KBD_OBUF:
        ctrl_reply(k, v, false);
        return;
    case CCMD_WRITE_AUX_OBUF:
        ctrl_reply(k, v, true);
        return;
    case CCMD_WRITE_AUX:
        mouse_command(k, v);
        return;
    }
    kbd_command(k, v);
}

static uint8_t status_value(const struct i8042 *k)
{
    uint8_t v = STAT_UNLOCKED;
    if (k->obf)
        v |= STAT_OBF | (k->obuf_aux ? STAT_AUXB : 0);
    if (k->sys_flag)
        v |= STAT_SYS;
    if (k->last_was_cmd)
        v |= STAT_CMD;
    return v;
}

/* 8-bit device: the upper bytes of a wider access float high. */
static uint64_t widen(uint8_t v, unsigned size)
{
    if (size <= 1)
        return v;
    uint64_t mask = size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
    return (mask & ~0xffULL) | v;
}

static uint64_t i8042_data_read(void *opaque, uint64_t offset, unsigned size)
{
    struct i8042 *k = opaque;
    /* An empty buffer reads as the byte last in it, as on hardware. */
    uint8_t v = k->obuf;
    if (k->obf) {
        k->obf = false;
        update_irq(k);   /* the line drops before the next byte raises it */
        sync_output(k);
    }
    notify_drained(k);
    return widen(v, size);
}

static void i8042_data_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct i8042 *k = opaque;
    k->last_was_cmd = false;
    data_write(k, (uint8_t)value);
    sync_output(k);
    notify_drained(k);
}

static uint64_t i8042_status_read(void *opaque, uint64_t offset, unsigned size)
{
    uint64_t v = widen(status_value(opaque), size);
    notify_drained(opaque);
    return v;
}

static void i8042_cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct i8042 *k = opaque;
    k->last_was_cmd = true;
    controller_command(k, (uint8_t)value);
    sync_output(k);
    notify_drained(k);
}

static const struct io_ops i8042_data_ops = {
    .read = i8042_data_read,
    .write = i8042_data_write,
};

static const struct io_ops i8042_cmd_ops = {
    .read = i8042_status_read,
    .write = i8042_cmd_write,
};

bool i8042_a20(const struct i8042 *k)
{
    return k->outport & OUT_A20;
}

void i8042_reset(struct i8042 *k)
{
    memset(k->ram, 0, sizeof(k->ram));
    k->ram[0] = CTR_POWERON;
    k->outport = OUT_POWERON;
    k->sys_flag = false;
    k->last_was_cmd = false;
    k->pending_cmd = 0;
    k->obuf = 0;
    k->obf = false;
    k->obuf_aux = false;
    k->cq_head = k->cq_count = 0;
    k->xlat_break = false;
    k->aux_turn = false;
    kbd_power_on(&k->kbd);
    mouse_power_on(&k->mouse);
    update_irq(k);
}

struct i8042 *i8042_create(struct platform *p)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->p = p;
    build_xlat(k->xlat);
    /* Two single ports: 0x61 (port B) and 0x62-0x63 belong to others. */
    if (io_bus_register(p->pio, I8042_DATA_PORT, 1, &i8042_data_ops, k, "i8042 data") < 0) {
        log_error("i8042: port 0x%x is already taken", I8042_DATA_PORT);
        free(k);
        return NULL;
    }
    if (io_bus_register(p->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k, "i8042 command") < 0) {
        log_error("i8042: port 0x%x is already taken", I8042_CMD_PORT);
        io_bus_unregister(p->pio, I8042_DATA_PORT, k);
        free(k);
        return NULL;
    }
    i8042_reset(k);
    return k;
}

void i8042_destroy(struct i8042 *k)
{
    if (!k)
        return;
    io_bus_unregister(k->p->pio, I8042_DATA_PORT, k);
    io_bus_unregister(k->p->pio, I8042_CMD_PORT, k);
    free(k);
}
