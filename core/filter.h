/* filter.h — Bloom filter partitions, one per key block.
 *
 *   partition: bits[m / 8] | checksum u32
 *
 * m = max(64, n * bits_per_key) rounded up to a multiple of 8, for the
 * block's n keys. A key's bits are h1 + i*h2 mod m for i < probes, where
 * h1 and h2 are the low and high halves of XXH3-64 of the key (double
 * hashing, as in Kirsch and Mitzenmacher).
 */
#ifndef SST_FILTER_H
#define SST_FILTER_H

#include <stddef.h>
#include <stdint.h>

uint64_t sst_filter_hash(const void *key, size_t len);

/* Probes for a given bits-per-key: bits_per_key * ln 2, within [1, 30]. */
uint32_t sst_filter_probes(uint32_t bits_per_key);

/* Bytes of a partition for n keys, checksum included. */
size_t sst_filter_size(uint32_t n, uint32_t bits_per_key);

/* Writes the partition for `n` hashes into out (sst_filter_size bytes). */
void sst_filter_build(const uint64_t *hashes, uint32_t n, uint32_t bits_per_key,
                      uint32_t probes, uint8_t *out);

/* 1 if the key may be in the partition, 0 if it is certainly not.
 * REQUIRES: len >= 5 (a partition checked with sst_filter_check). */
int sst_filter_may_contain(const uint8_t *part, size_t len, uint32_t probes,
                           uint64_t hash);

/* 0 if the partition's checksum matches, else SST_ECHECKSUM. */
int sst_filter_check(const uint8_t *part, size_t len);

#endif
