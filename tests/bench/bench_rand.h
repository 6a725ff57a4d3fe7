/* bench_rand.h — the seeded generator the programs of tests/bench/ share,
 * C and C++ alike, so that programs given the same seed make the same
 * bytes (bench_sst.c and bench_rocksdb.cc compare theirs).
 *
 * xorshift64*: fast, and its output does not compress. */
#ifndef BENCH_RAND_H
#define BENCH_RAND_H

#include <stdint.h>

/* The next number of the sequence whose state is *state (never 0). */
static inline uint64_t bench_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

#endif
