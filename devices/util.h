/* Small helpers shared by the VMM and device models. */
#ifndef BURROW_UTIL_H
#define BURROW_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define KiB (1024ULL)
#define MiB (1024ULL * 1024)
#define GiB (1024ULL * 1024 * 1024)

/* Logging: messages go to stderr prefixed with "burrow-vm: ". */
void log_set_prefix(const char *prefix);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_debug(bool on);
/* A guest did something odd: reported, rate-limited, never fatal. */
void log_guest_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes a message into a caller's (err, errlen) buffer; either may be 0. */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline uint16_t ld16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ld64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void st16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void st32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void st64(void *p, uint64_t v) { memcpy(p, &v, 8); }

/* Little-endian load/store of `size` (1, 2, 4 or 8) bytes. */
uint64_t ld_le(const void *p, unsigned size);
void st_le(void *p, unsigned size, uint64_t v);
/* Big-endian, as SCSI CDBs and parameter data are. */
uint64_t ld_be(const void *p, unsigned size);
void st_be(void *p, unsigned size, uint64_t v);

#endif
