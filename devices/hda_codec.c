/* Burrow's HDA codec (Intel High Definition Audio Specification 1.0a,
 * chapter 7): root node, one audio function group, a DAC feeding a line-out
 * pin and a microphone pin feeding an ADC.  Formats: 44.1 and 48 kHz,
 * 16-bit, PCM.  The converters have amps (1 dB steps, 0 dB at the top, mute)
 * that the controller applies to the samples. */
#include "devices/hda_codec.h"

#include <stdlib.h>
#include <string.h>

/* Parameters (7.3.4) */
#define PARAM_VENDOR_ID       0x00
#define PARAM_REVISION_ID     0x02
#define PARAM_NODE_COUNT      0x04
#define PARAM_FG_TYPE         0x05
#define PARAM_AFG_CAPS        0x08
#define PARAM_WIDGET_CAPS     0x09
#define PARAM_PCM             0x0a
#define PARAM_STREAM_FORMATS  0x0b
#define PARAM_PIN_CAPS        0x0c
#define PARAM_IN_AMP_CAPS     0x0d
#define PARAM_CONN_LIST_LEN   0x0e
#define PARAM_POWER_STATES    0x0f
#define PARAM_PROC_CAPS       0x10
#define PARAM_GPIO_COUNT      0x11
#define PARAM_OUT_AMP_CAPS    0x12
#define PARAM_VOLUME_KNOB     0x13

/* Widget capabilities (7.3.4.6) */
#define WCAP_STEREO      (1u << 0)
#define WCAP_IN_AMP      (1u << 1)
#define WCAP_OUT_AMP     (1u << 2)
#define WCAP_AMP_OVRD    (1u << 3)
#define WCAP_FORMAT_OVRD (1u << 4)
#define WCAP_CONN_LIST   (1u << 8)
#define WCAP_POWER       (1u << 10)
#define WCAP_TYPE(t)     ((uint32_t)(t) << 20)
#define WTYPE_OUTPUT 0
#define WTYPE_INPUT  1
#define WTYPE_PIN    4

/* Pin capabilities (7.3.4.9) */
#define PINCAP_PRESENCE (1u << 2)
#define PINCAP_OUT      (1u << 4)
#define PINCAP_IN       (1u << 5)
#define PINCAP_EAPD     (1u << 16)

/* Amps: 64 steps of 1 dB, step 63 = 0 dB, mute capable (7.3.4.10) */
#define AMP_STEPS   63
#define AMP_CAPS    (1u << 31 | 3u << 16 | (uint32_t)AMP_STEPS << 8 | AMP_STEPS)
#define AMP_MUTE    0x80

/* 16-bit samples at 44.1 and 48 kHz; PCM only (7.3.4.7, 7.3.4.8) */
#define PCM_CAPS     (1u << 17 | 1u << 6 | 1u << 5)
#define FORMATS_PCM  1u

/* Configuration defaults (7.3.3.31): a green line out jack at the rear, a
 * pink microphone jack at the rear, or "no connection". */
#define CONFIG_LINE_OUT 0x01014010u
#define CONFIG_MIC_IN   0x01a19020u
#define CONFIG_NONE     0x411111f0u

#define FORMAT_DEFAULT  0x0011      /* 48 kHz, 16-bit, 2 channels */

struct hda_amp {
    uint8_t gain[2];            /* left, right: step | AMP_MUTE */
};

struct hda_converter {
    uint16_t format;
    uint8_t stream_channel;     /* stream tag 7:4, first channel 3:0 */
    struct hda_amp amp;
};

struct hda_pin {
    uint8_t control;            /* pin widget control */
    uint8_t eapd;
    uint32_t config;
};

struct hda_codec {
    bool mic;
    struct hda_converter dac, adc;
    struct hda_pin out, in;
    uint8_t power[6];           /* power state set, per node */
    uint8_t conn_sel[6];
    uint8_t unsol[6];
    uint32_t subsystem;
    uint32_t gain_q16[AMP_STEPS + 1];
};

static void amp_reset(struct hda_amp *a)
{
    /* Unmuted at 0 dB, so a guest that never touches the mixer is heard. */
    a->gain[0] = a->gain[1] = AMP_STEPS;
}

void hda_codec_reset(struct hda_codec *c)
{
    c->dac = (struct hda_converter){ .format = FORMAT_DEFAULT };
    c->adc = (struct hda_converter){ .format = FORMAT_DEFAULT };
    amp_reset(&c->dac.amp);
    amp_reset(&c->adc.amp);
    c->out = (struct hda_pin){ .config = CONFIG_LINE_OUT, .eapd = 0x02 };
    c->in = (struct hda_pin){ .config = c->mic ? CONFIG_MIC_IN : CONFIG_NONE };
    memset(c->power, 0, sizeof(c->power));
    memset(c->conn_sel, 0, sizeof(c->conn_sel));
    memset(c->unsol, 0, sizeof(c->unsol));
    c->subsystem = HDA_CODEC_SUBSYSTEM_ID;
}

struct hda_codec *hda_codec_new(bool mic)
{
    struct hda_codec *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->mic = mic;
    /* gain_q16[s]: 65536 * 10^((s - 63) / 20), step 63 exactly unity. */
    double g = 65536.0;
    for (int s = AMP_STEPS; s >= 0; s--) {
        c->gain_q16[s] = (uint32_t)(g + 0.5);
        g *= 0.89125093813374556;   /* -1 dB */
    }
    hda_codec_reset(c);
    return c;
}

void hda_codec_free(struct hda_codec *c)
{
    free(c);
}

static uint32_t widget_caps(unsigned nid)
{
    switch (nid) {
    case HDA_NID_DAC:
        return WCAP_TYPE(WTYPE_OUTPUT) | WCAP_STEREO | WCAP_OUT_AMP | WCAP_AMP_OVRD |
               WCAP_FORMAT_OVRD | WCAP_POWER;
    case HDA_NID_ADC:
        return WCAP_TYPE(WTYPE_INPUT) | WCAP_STEREO | WCAP_IN_AMP | WCAP_AMP_OVRD |
               WCAP_FORMAT_OVRD | WCAP_CONN_LIST | WCAP_POWER;
    case HDA_NID_PIN_OUT:
        return WCAP_TYPE(WTYPE_PIN) | WCAP_STEREO | WCAP_CONN_LIST;
    case HDA_NID_PIN_MIC:
        return WCAP_TYPE(WTYPE_PIN) | WCAP_STEREO;
    default:
        return 0;
    }
}

/* Each connection list has one entry. */
static unsigned connection(unsigned nid)
{
    switch (nid) {
    case HDA_NID_ADC: return HDA_NID_PIN_MIC;
    case HDA_NID_PIN_OUT: return HDA_NID_DAC;
    default: return 0;
    }
}

static uint32_t get_parameter(const struct hda_codec *c, unsigned nid, unsigned param)
{
    if (nid == HDA_NID_ROOT) {
        switch (param) {
        case PARAM_VENDOR_ID: return HDA_CODEC_VENDOR_ID;
        case PARAM_REVISION_ID: return 0x00100100;      /* HDA 1.0, revision 1 */
        case PARAM_NODE_COUNT: return HDA_NID_AFG << 16 | 1;
        default: return 0;
        }
    }
    if (nid == HDA_NID_AFG) {
        switch (param) {
        case PARAM_NODE_COUNT: return HDA_NID_DAC << 16 | 4;
        case PARAM_FG_TYPE: return 0x01;                /* audio */
        case PARAM_PCM: return PCM_CAPS;
        case PARAM_STREAM_FORMATS: return FORMATS_PCM;
        case PARAM_POWER_STATES: return 0x0f;           /* D0-D3 */
        default: return 0;
        }
    }
    uint32_t caps = widget_caps(nid);
    if (!caps)
        return 0;
    switch (param) {
    case PARAM_WIDGET_CAPS: return caps;
    case PARAM_PCM: return nid == HDA_NID_DAC || nid == HDA_NID_ADC ? PCM_CAPS : 0;
    case PARAM_STREAM_FORMATS: return nid == HDA_NID_DAC || nid == HDA_NID_ADC ? FORMATS_PCM : 0;
    case PARAM_PIN_CAPS:
        if (nid == HDA_NID_PIN_OUT)
            return PINCAP_PRESENCE | PINCAP_OUT | PINCAP_EAPD;
        return nid == HDA_NID_PIN_MIC ? PINCAP_PRESENCE | PINCAP_IN : 0;
    case PARAM_IN_AMP_CAPS: return caps & WCAP_IN_AMP ? AMP_CAPS : 0;
    case PARAM_OUT_AMP_CAPS: return caps & WCAP_OUT_AMP ? AMP_CAPS : 0;
    case PARAM_CONN_LIST_LEN: return connection(nid) ? 1 : 0;
    case PARAM_POWER_STATES: return caps & WCAP_POWER ? 0x0f : 0;
    default: return 0;
    }
}

static struct hda_converter *converter(struct hda_codec *c, unsigned nid)
{
    return nid == HDA_NID_DAC ? &c->dac : nid == HDA_NID_ADC ? &c->adc : NULL;
}

static struct hda_pin *pin(struct hda_codec *c, unsigned nid)
{
    return nid == HDA_NID_PIN_OUT ? &c->out : nid == HDA_NID_PIN_MIC ? &c->in : NULL;
}

/* The amp a SET/GET_AMP_GAIN_MUTE names: the DAC's output amp or the ADC's
 * input amp (index 0); the others do not exist. */
static struct hda_amp *amp(struct hda_codec *c, unsigned nid, bool output, unsigned index)
{
    if (index != 0)
        return NULL;
    if (nid == HDA_NID_DAC && output)
        return &c->dac.amp;
    if (nid == HDA_NID_ADC && !output)
        return &c->adc.amp;
    return NULL;
}

static void set_amp(struct hda_codec *c, unsigned nid, uint16_t p)
{
    uint8_t v = (uint8_t)(p & 0xff);
    if ((v & 0x7f) > AMP_STEPS)
        v = (uint8_t)((v & AMP_MUTE) | AMP_STEPS);
    /* Bit 15 output, 14 input, 13 left, 12 right, 11:8 index. */
    for (int dir = 0; dir < 2; dir++) {
        if (!(p & (dir ? 0x8000 : 0x4000)))
            continue;
        struct hda_amp *a = amp(c, nid, dir, p >> 8 & 0xf);
        if (!a)
            continue;
        if (p & 0x2000)
            a->gain[0] = v;
        if (p & 0x1000)
            a->gain[1] = v;
    }
}

static uint32_t get_amp(struct hda_codec *c, unsigned nid, uint16_t p)
{
    struct hda_amp *a = amp(c, nid, p & 0x8000, p & 0xf);
    return a ? a->gain[p & 0x2000 ? 0 : 1] : 0;
}

static uint32_t verb12(struct hda_codec *c, unsigned nid, unsigned verb, uint8_t p)
{
    struct hda_converter *cv = converter(c, nid);
    struct hda_pin *pn = pin(c, nid);
    bool widget = nid <= HDA_NID_PIN_MIC;
    switch (verb) {
    case 0xf00: return get_parameter(c, nid, p);
    case 0xf01: return widget ? c->conn_sel[nid] : 0;
    case 0x701:
        if (connection(nid) && p == 0)
            c->conn_sel[nid] = p;
        return 0;
    case 0xf02:
        /* Four 8-bit entries from offset p; ours are one long. */
        return p == 0 ? connection(nid) : 0;
    case 0xf05:
        if (!widget || nid == HDA_NID_ROOT)
            return 0;
        return (uint32_t)c->power[nid] << 4 | c->power[nid];   /* actual = set */
    case 0x705:
        if (widget && nid != HDA_NID_ROOT)
            c->power[nid] = p & 0x3;
        return 0;
    case 0xf06: return cv ? cv->stream_channel : 0;
    case 0x706:
        if (cv)
            cv->stream_channel = p;
        return 0;
    case 0xf07: return pn ? pn->control : 0;
    case 0x707:
        if (pn)
            pn->control = p & (nid == HDA_NID_PIN_OUT ? 0xc0 : 0x27);
        return 0;
    case 0xf08: return widget ? c->unsol[nid] : 0;
    case 0x708:
        if (widget)
            c->unsol[nid] = p & 0xbf;
        return 0;
    case 0xf09:
        /* Both jacks always report something plugged in. */
        return pn && (nid == HDA_NID_PIN_OUT || c->mic) ? 1u << 31 : 0;
    case 0xf0c: return nid == HDA_NID_PIN_OUT ? c->out.eapd : 0;
    case 0x70c:
        if (nid == HDA_NID_PIN_OUT)
            c->out.eapd = p & 0x07;
        return 0;
    case 0xf1c: return pn ? pn->config : 0;
    case 0x71c: case 0x71d: case 0x71e: case 0x71f:
        if (pn) {
            unsigned sh = 8 * (verb - 0x71c);
            pn->config = (pn->config & ~(0xffu << sh)) | (uint32_t)p << sh;
        }
        return 0;
    case 0xf20: return nid == HDA_NID_AFG ? c->subsystem : 0;
    case 0x720: case 0x721: case 0x722: case 0x723:
        if (nid == HDA_NID_AFG) {
            unsigned sh = 8 * (verb - 0x720);
            c->subsystem = (c->subsystem & ~(0xffu << sh)) | (uint32_t)p << sh;
        }
        return 0;
    case 0x7ff:
        if (nid == HDA_NID_AFG)
            hda_codec_reset(c);
        return 0;
    default:
        return 0;
    }
}

uint32_t hda_codec_command(struct hda_codec *c, uint32_t verb)
{
    unsigned nid = verb >> 20 & 0xff;
    uint32_t v = verb & 0xfffff;
    struct hda_converter *cv = converter(c, nid);
    /* 4-bit verbs with 16-bit payloads (7.3.3.8, 7.3.3.7) */
    switch (v >> 16) {
    case 0x2:
        if (cv)
            cv->format = (uint16_t)v;
        return 0;
    case 0xa: return cv ? cv->format : 0;
    case 0x3: set_amp(c, nid, (uint16_t)v); return 0;
    case 0xb: return get_amp(c, nid, (uint16_t)v);
    default: return verb12(c, nid, v >> 8, (uint8_t)v);
    }
}

bool hda_codec_takes_stream(const struct hda_codec *c, bool out, unsigned tag)
{
    if (!out && !c->mic)
        return false;
    const struct hda_converter *cv = out ? &c->dac : &c->adc;
    return tag != 0 && (cv->stream_channel >> 4) == tag;
}

void hda_codec_gain(const struct hda_codec *c, bool out, uint32_t q16[2])
{
    const struct hda_amp *a = out ? &c->dac.amp : &c->adc.amp;
    for (int i = 0; i < 2; i++)
        q16[i] = a->gain[i] & AMP_MUTE ? 0 : c->gain_q16[a->gain[i] & 0x7f];
}
