#include "filter.h"

#include <assert.h>
#include <string.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>

#include "internal.h"

uint64_t sst_filter_hash(const void *key, size_t len) {
  return XXH3_64bits(key, len);
}

uint32_t sst_filter_probes(uint32_t bits_per_key) {
  uint32_t k = (uint32_t)(bits_per_key * 69u / 100u);
  return k < 1 ? 1 : k > 30 ? 30 : k;
}

static uint64_t filter_bits(uint32_t n, uint32_t bits_per_key) {
  uint64_t m = (uint64_t)n * bits_per_key;
  if (m < 64)
    m = 64;
  return (m + 7) & ~(uint64_t)7;
}

size_t sst_filter_size(uint32_t n, uint32_t bits_per_key) {
  return (size_t)(filter_bits(n, bits_per_key) / 8) + 4;
}

void sst_filter_build(const uint64_t *hashes, uint32_t n, uint32_t bits_per_key,
                      uint32_t probes, uint8_t *out) {
  uint64_t m = filter_bits(n, bits_per_key);
  memset(out, 0, (size_t)(m / 8));
  for (uint32_t i = 0; i < n; i++) {
    uint32_t h1 = (uint32_t)hashes[i], h2 = (uint32_t)(hashes[i] >> 32) | 1;
    for (uint32_t j = 0; j < probes; j++) {
      uint64_t bit = ((uint64_t)h1 + (uint64_t)j * h2) % m;
      out[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
  }
  sst_put_u32(out + m / 8, sst_checksum(out, (size_t)(m / 8)));
}

int sst_filter_may_contain(const uint8_t *part, size_t len, uint32_t probes,
                           uint64_t hash) {
  assert(len >= 5);
  uint64_t m = (uint64_t)(len - 4) * 8;
  uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32) | 1;
  for (uint32_t j = 0; j < probes; j++) {
    uint64_t bit = ((uint64_t)h1 + (uint64_t)j * h2) % m;
    if ((part[bit / 8] & (1u << (bit % 8))) == 0)
      return 0;
  }
  return 1;
}

int sst_filter_check(const uint8_t *part, size_t len) {
  if (len < 5)
    return SST_ECORRUPT;
  return sst_get_u32(part + len - 4) == sst_checksum(part, len - 4)
             ? 0
             : SST_ECHECKSUM;
}
