/* The HDA codec behind Burrow's HDA controller (Intel High Definition Audio
 * Specification 1.0a, chapter 7): one audio function group with a line out
 * (DAC -> pin) and a microphone (pin -> ADC).  The controller passes it
 * verbs from the CORB or the immediate command registers and asks it where
 * a stream's samples go and how loud. */
#ifndef BURROW_HDA_CODEC_H
#define BURROW_HDA_CODEC_H

#include <stdbool.h>
#include <stdint.h>

/* Node ids, for tests and the controller. */
enum {
    HDA_NID_ROOT = 0x00,
    HDA_NID_AFG = 0x01,
    HDA_NID_DAC = 0x02,
    HDA_NID_ADC = 0x03,
    HDA_NID_PIN_OUT = 0x04,
    HDA_NID_PIN_MIC = 0x05,
};

#define HDA_CODEC_VENDOR_ID    0x42550001u   /* "BU": Burrow, codec 1 */
#define HDA_CODEC_SUBSYSTEM_ID 0x42550001u

struct hda_codec;

/* mic: the microphone pin is connected (else its configuration says "no
 * connection" and drivers leave capture out). */
struct hda_codec *hda_codec_new(bool mic);
void hda_codec_free(struct hda_codec *c);
/* Link reset: every widget to its power-on state. */
void hda_codec_reset(struct hda_codec *c);

/* One command: bits 27:20 the node, 19:0 the verb and payload (the codec
 * address is the controller's business).  Returns the response; verbs the
 * codec does not know are answered with 0. */
uint32_t hda_codec_command(struct hda_codec *c, uint32_t verb);

/* Whether the DAC (out) or ADC (in) takes the stream with this tag (1-15). */
bool hda_codec_takes_stream(const struct hda_codec *c, bool out, unsigned tag);
/* The converter amp as per-channel multipliers, 65536 = unity, 0 = muted. */
void hda_codec_gain(const struct hda_codec *c, bool out, uint32_t q16[2]);

#endif
