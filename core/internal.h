/* internal.h — helpers shared by the library's modules; not installed.
 *
 * A REQUIRES in an internal comment is a promise of the caller, checked
 * with assert() where that is cheap: on in Debug builds, off (NDEBUG) in
 * the default RelWithDebInfo build and in Release. An assert never checks
 * what a file says; the file's bytes are checked by code that returns an
 * error. */
#ifndef SST_INTERNAL_H
#define SST_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "sstable.h"

/* Sets err (if not NULL) to code and a printf-style message; returns code
 * so that callers can write `return sst_error_set(err, SST_ECORRUPT, ...)`. */
int sst_error_set(sst_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line to the log set with sst_set_log. */
void sst_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checksums: XXH3-64 of the bytes, truncated to the low 32 bits. */
uint32_t sst_checksum(const void *data, size_t len);

static inline void sst_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void sst_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t sst_get_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* little-endian hosts only; checked in format.c */
  return v;
}
static inline uint64_t sst_get_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Varints: 7 bits a byte, low first, as in LevelDB. put returns the end of
 * what it wrote (at most 10 bytes). get reads from [p, limit), never past
 * limit, and returns the byte after the varint, or NULL if it is truncated
 * or longer than a uint64 allows. */
static inline uint8_t *sst_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}
static inline const uint8_t *sst_get_varint(const uint8_t *p,
                                            const uint8_t *limit, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift <= 63 && p < limit; shift += 7) {
    uint64_t b = *p++;
    if (shift == 63 && b > 1)
      return NULL;
    r |= (b & 0x7f) << shift;
    if (b < 0x80) {
      *v = r;
      return p;
    }
  }
  return NULL;
}

#endif
