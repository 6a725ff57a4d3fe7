/* testutil.h — shared helpers for the Check suites. */
#ifndef SST_TESTUTIL_H
#define SST_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh path under $SST_TEST_TMP (or /tmp) unique to this process and
 * call; the file does not exist yet. Returned string is static per call
 * slot: copy it if you need more than 8 alive at once. */
const char *tu_path(const char *stem);

/* A small, seedable PRNG (xorshift64*), so failures reproduce. */
typedef struct tu_rng {
  uint64_t s;
} tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
uint64_t tu_rng_below(tu_rng *r, uint64_t n); /* 0 <= x < n, n > 0 */
void tu_rng_fill(tu_rng *r, uint8_t *buf, size_t n);

/* Whole-file helpers; abort the test on failure. tu_read_file adds a
 * NUL after the bytes read (not counted in len). */
uint8_t *tu_read_file(const char *path, size_t *len);
void tu_write_file(const char *path, const void *data, size_t len);
/* The same, path relative to the directory dirfd. */
void tu_write_file_at(int dirfd, const char *path, const void *data,
                      size_t len);

#endif
