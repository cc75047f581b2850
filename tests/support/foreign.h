/* Helpers for the tests of the image formats Burrow only reads (VDI,
 * VMDK, VHD, VHDX: tests/unit/test_{vdi,vmdk,vhd,vhdx}.c): images made by
 * qemu-img are read through the block layer and converted by `burrow
 * disk convert`'s code, and both are compared byte for byte with what
 * `qemu-img convert -O raw` makes of them.  Each test works in a temporary
 * folder of its own (never in the source tree); qemu-img is required
 * (Debian's qemu-utils) and its absence fails the tests. */
#ifndef BURROW_TEST_FOREIGN_H
#define BURROW_TEST_FOREIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes and enters the temporary folder; checks for qemu-img. */
void fx_init(const char *name);
/* Leaves and removes it. */
void fx_cleanup(void);
/* fails the current test unless qemu-img and qemu-io are there */
void fx_need_qemu(void);

/* Runs a shell command; its exit status. */
int fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, failing the test on a non-zero status. */
void fx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A sparse raw file of size bytes with runs of random data (seeded) at
 * runs places, each up to max_run bytes, and always one at the very start
 * and one ending at the very end; the rest holes. */
void fx_make_raw(const char *path, uint64_t size, unsigned seed, unsigned runs, uint64_t max_run);

/* The image img (of qemu-img's format qfmt) opens, detected as our_fmt,
 * with qemu-img's virtual size; read through the block layer (small
 * images), converted to raw and to qcow2 by disk_convert(), it equals
 * `qemu-img convert -f qfmt -O raw`, and the raw conversion is no less
 * sparse than qemu-img's. */
void fx_expect_like_qemu(const char *img, const char *qfmt, const char *our_fmt);
/* The same against an expected raw file made by the test itself. */
void fx_expect_like_raw(const char *img, const char *our_fmt, const char *raw);

/* img does not open (format detected, read-only) and its error holds want;
 * `disk convert` fails too, leaving nothing. */
void fx_expect_refused(const char *img, const char *want);
/* img opens, but reading all of it fails with an error. */
void fx_expect_read_fails(const char *img, const char *want);

/* Overwrites bytes of a file. */
void fx_patch(const char *path, uint64_t off, const void *bytes, size_t n);
void fx_patch_le32(const char *path, uint64_t off, uint32_t v);
void fx_patch_le64(const char *path, uint64_t off, uint64_t v);
void fx_patch_be32(const char *path, uint64_t off, uint32_t v);
void fx_patch_be64(const char *path, uint64_t off, uint64_t v);
void fx_read(const char *path, uint64_t off, void *buf, size_t n);
uint64_t fx_file_size(const char *path);

/* Copies of img with random bytes changed in its first meta_len bytes
 * (rounds of them) open or are refused, and read or fail, but never
 * crash, hang or read outside the file; returns how many opened. */
int fx_mutate(const char *img, uint64_t meta_len, int rounds, unsigned seed);

#endif
