#include "format.h"

#include <assert.h>
#include <string.h>

#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sst_get_u32/u64 assume a little-endian host"
#endif

/* Header: magic[8] version u32 checksum-of-first-12 u32. */
void sst_header_encode(uint8_t out[SST_HEADER_SIZE]) {
  memcpy(out, SST_MAGIC, 8);
  sst_put_u32(out + 8, SST_FORMAT_VERSION);
  sst_put_u32(out + 12, sst_checksum(out, 12));
}

int sst_header_check(const uint8_t in[SST_HEADER_SIZE]) {
  if (memcmp(in, SST_MAGIC, 8) != 0)
    return SST_ENOTTABLE;
  if (sst_get_u32(in + 12) != sst_checksum(in, 12))
    return SST_ECHECKSUM;
  if (sst_get_u32(in + 8) != SST_FORMAT_VERSION)
    return SST_EVERSION;
  return 0;
}

/* Footer layout (little-endian):
 *    0 index_off u64     8 index_len u64    16 filter_off u64
 *   24 filter_len u64   32 key_count u64    40 tombstone_count u64
 *   48 key_bytes u64    56 value_bytes u64  64 block_count u64
 *   72 block_keys u32   76 block_bytes u32  80 restart_interval u32
 *   84 filter_bits_per_key u32              88 filter_probes u32
 *   92 reserved, zero (20 bytes)
 *  112 version u32     116 checksum of bytes 0..115 u32
 *  120 magic[8]
 */
void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE]) {
  memset(out, 0, SST_FOOTER_SIZE);
  const uint64_t u64s[9] = {f->index_off,   f->index_len,  f->filter_off,
                            f->filter_len,  f->key_count,  f->tombstone_count,
                            f->key_bytes,   f->value_bytes, f->block_count};
  for (int i = 0; i < 9; i++)
    sst_put_u64(out + 8 * i, u64s[i]);
  sst_put_u32(out + 72, f->block_keys);
  sst_put_u32(out + 76, f->block_bytes);
  sst_put_u32(out + 80, f->restart_interval);
  sst_put_u32(out + 84, f->filter_bits_per_key);
  sst_put_u32(out + 88, f->filter_probes);
  sst_put_u32(out + 112, SST_FORMAT_VERSION);
  sst_put_u32(out + 116, sst_checksum(out, 116));
  memcpy(out + 120, SST_MAGIC, 8);
}

int sst_footer_decode(const uint8_t in[SST_FOOTER_SIZE], sst_footer *f) {
  if (memcmp(in + 120, SST_MAGIC, 8) != 0)
    return SST_ENOTTABLE;
  if (sst_get_u32(in + 116) != sst_checksum(in, 116))
    return SST_ECHECKSUM;
  f->version = sst_get_u32(in + 112);
  if (f->version != SST_FORMAT_VERSION)
    return SST_EVERSION;
  uint64_t *u64s[9] = {&f->index_off,  &f->index_len,  &f->filter_off,
                       &f->filter_len, &f->key_count,  &f->tombstone_count,
                       &f->key_bytes,  &f->value_bytes, &f->block_count};
  for (int i = 0; i < 9; i++)
    *u64s[i] = sst_get_u64(in + 8 * i);
  f->block_keys = sst_get_u32(in + 72);
  f->block_bytes = sst_get_u32(in + 76);
  f->restart_interval = sst_get_u32(in + 80);
  f->filter_bits_per_key = sst_get_u32(in + 84);
  f->filter_probes = sst_get_u32(in + 88);
  for (int i = 92; i < 112; i++)
    if (in[i] != 0)
      return SST_ECORRUPT;
  return 0;
}

uint8_t *sst_handle_encode(uint8_t *p, const sst_handle *h,
                           uint64_t filter_base) {
  assert(h->values_off <= h->block_off && filter_base <= h->filter_off);
  p = sst_put_varint(p, h->values_off);
  p = sst_put_varint(p, h->block_off - h->values_off);
  p = sst_put_varint(p, h->block_len);
  p = sst_put_varint(p, h->filter_off - filter_base);
  return sst_put_varint(p, h->filter_len);
}

int sst_handle_decode(const uint8_t *p, const uint8_t *limit, sst_handle *h,
                      uint64_t filter_base) {
  uint64_t rel, values_len;
  if ((p = sst_get_varint(p, limit, &h->values_off)) == NULL ||
      (p = sst_get_varint(p, limit, &values_len)) == NULL ||
      (p = sst_get_varint(p, limit, &h->block_len)) == NULL ||
      (p = sst_get_varint(p, limit, &rel)) == NULL ||
      (p = sst_get_varint(p, limit, &h->filter_len)) == NULL || p != limit)
    return SST_ECORRUPT;
  if (rel > UINT64_MAX - filter_base ||
      values_len > UINT64_MAX - h->values_off)
    return SST_ECORRUPT;
  h->block_off = h->values_off + values_len;
  h->filter_off = filter_base + rel;
  return 0;
}

uint8_t *sst_value_ref_encode(uint8_t *p, const sst_value_ref *v) {
  assert((v->flags & ~SST_FLAG_TOMBSTONE) == 0 &&
         (!(v->flags & SST_FLAG_TOMBSTONE) || v->len == 0));
  *p++ = (uint8_t)v->flags;
  p = sst_put_varint(p, v->len);
  p = sst_put_varint(p, v->rel);
  sst_put_u32(p, v->checksum);
  return p + 4;
}

int sst_value_ref_decode(const uint8_t *p, const uint8_t *limit,
                         sst_value_ref *v) {
  if (p >= limit)
    return SST_ECORRUPT;
  v->flags = *p++;
  if ((v->flags & ~SST_FLAG_TOMBSTONE) != 0)
    return SST_ECORRUPT;
  if ((p = sst_get_varint(p, limit, &v->len)) == NULL ||
      (p = sst_get_varint(p, limit, &v->rel)) == NULL || limit - p != 4)
    return SST_ECORRUPT;
  v->checksum = sst_get_u32(p);
  if ((v->flags & SST_FLAG_TOMBSTONE) && v->len != 0)
    return SST_ECORRUPT;
  return 0;
}
