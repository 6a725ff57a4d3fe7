#include "block.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *q = realloc(*p, n * elem);
  if (q == NULL)
    return ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

void sst_block_builder_init(sst_block_builder *b, uint32_t restart_interval) {
  memset(b, 0, sizeof *b);
  b->restart_interval = restart_interval ? restart_interval : 16;
}

int sst_block_builder_add(sst_block_builder *b, const uint8_t *key,
                          size_t key_len, const uint8_t *payload,
                          size_t payload_len) {
  assert(b->count == 0 ||
         sst_key_cmp(key, key_len, b->last_key, b->last_len) > 0);
  size_t shared = 0;
  if (b->count == 0 || b->since_restart >= b->restart_interval) {
    if (grow((void **)&b->restarts, &b->restart_cap, b->restart_count + 1,
             sizeof *b->restarts))
      return ENOMEM;
    b->restarts[b->restart_count++] = (uint32_t)b->len;
    b->since_restart = 0;
  } else {
    size_t n = key_len < b->last_len ? key_len : b->last_len;
    while (shared < n && key[shared] == b->last_key[shared])
      shared++;
  }
  size_t unshared = key_len - shared;
  if (grow((void **)&b->buf, &b->cap, b->len + 30 + unshared + payload_len,
           1) ||
      grow((void **)&b->last_key, &b->last_cap, key_len, 1))
    return ENOMEM;
  uint8_t *p = b->buf + b->len;
  p = sst_put_varint(p, shared);
  p = sst_put_varint(p, unshared);
  p = sst_put_varint(p, payload_len);
  memcpy(p, key + shared, unshared);
  p += unshared;
  if (payload_len)
    memcpy(p, payload, payload_len);
  p += payload_len;
  b->len = (size_t)(p - b->buf);
  memcpy(b->last_key + shared, key + shared, unshared);
  b->last_len = key_len;
  b->since_restart++;
  b->count++;
  return 0;
}

size_t sst_block_builder_size(const sst_block_builder *b) {
  return b->len + 4 * b->restart_count + 4;
}

int sst_block_builder_finish(sst_block_builder *b, const uint8_t **data,
                             size_t *len) {
  size_t total = sst_block_builder_size(b);
  if (grow((void **)&b->buf, &b->cap, total, 1))
    return ENOMEM;
  uint8_t *p = b->buf + b->len;
  for (size_t i = 0; i < b->restart_count; i++, p += 4)
    sst_put_u32(p, b->restarts[i]);
  sst_put_u32(p, (uint32_t)b->restart_count);
  *data = b->buf;
  *len = total;
  return 0;
}

void sst_block_builder_reset(sst_block_builder *b) {
  b->len = 0;
  b->restart_count = 0;
  b->since_restart = 0;
  b->last_len = 0;
  b->count = 0;
}

void sst_block_builder_free(sst_block_builder *b) {
  free(b->buf);
  free(b->restarts);
  free(b->last_key);
  memset(b, 0, sizeof *b);
}

int sst_block_open(sst_block *b, const uint8_t *data, size_t len) {
  if (len < 4)
    return SST_ECORRUPT;
  uint32_t n = sst_get_u32(data + len - 4);
  if (n > (len - 4) / 4)
    return SST_ECORRUPT;
  b->data = data;
  b->restart_count = n;
  b->entries_len = len - 4 - 4 * (size_t)n;
  b->restarts = data + b->entries_len;
  if ((n == 0) != (b->entries_len == 0))
    return SST_ECORRUPT;
  if (n > 0 && sst_get_u32(b->restarts) != 0)
    return SST_ECORRUPT;
  return 0;
}

int sst_block_restart_off(const sst_block *b, uint32_t i, size_t *off) {
  if (i >= b->restart_count)
    return SST_ECORRUPT;
  *off = sst_get_u32(b->restarts + 4 * (size_t)i);
  return *off < b->entries_len ? 0 : SST_ECORRUPT;
}

/* Reads the three varints of the entry at off; returns the start of its
 * key bytes or NULL. */
static const uint8_t *decode_head(const sst_block *b, size_t off,
                                  uint64_t *shared, uint64_t *unshared,
                                  uint64_t *payload_len) {
  const uint8_t *limit = b->data + b->entries_len;
  const uint8_t *p = b->data + off;
  if ((p = sst_get_varint(p, limit, shared)) == NULL ||
      (p = sst_get_varint(p, limit, unshared)) == NULL ||
      (p = sst_get_varint(p, limit, payload_len)) == NULL)
    return NULL;
  size_t room = (size_t)(limit - p);
  if (*unshared > room || *payload_len > room - *unshared)
    return NULL;
  return p;
}

int sst_block_decode(const sst_block *b, uint8_t *keybuf, size_t prev_len,
                     sst_block_entry *e) {
  uint64_t shared, unshared, plen;
  if (e->off >= b->entries_len)
    return SST_ECORRUPT;
  const uint8_t *p = decode_head(b, e->off, &shared, &unshared, &plen);
  if (p == NULL || shared > prev_len || unshared > SST_KEY_MAX - shared ||
      shared + unshared == 0)
    return SST_ECORRUPT;
  memcpy(keybuf + shared, p, (size_t)unshared);
  e->key_len = (size_t)(shared + unshared);
  e->payload = p + unshared;
  e->payload_len = (size_t)plen;
  e->next = (size_t)(e->payload + plen - b->data);
  return 0;
}

int sst_block_restart_entry(const sst_block *b, uint32_t i, const uint8_t **key,
                            size_t *key_len, const uint8_t **payload,
                            size_t *payload_len) {
  size_t off;
  uint64_t shared, unshared, plen;
  if (sst_block_restart_off(b, i, &off))
    return SST_ECORRUPT;
  const uint8_t *p = decode_head(b, off, &shared, &unshared, &plen);
  if (p == NULL || shared != 0 || unshared == 0 || unshared > SST_KEY_MAX)
    return SST_ECORRUPT;
  *key = p;
  *key_len = (size_t)unshared;
  if (payload) {
    *payload = p + unshared;
    *payload_len = (size_t)plen;
  }
  return 0;
}

int sst_block_restart_key(const sst_block *b, uint32_t i, const uint8_t **key,
                          size_t *key_len) {
  return sst_block_restart_entry(b, i, key, key_len, NULL, NULL);
}

int sst_block_seek(const sst_block *b, const uint8_t *key, size_t key_len,
                   uint8_t *keybuf, sst_block_entry *e, int *found) {
  *found = 0;
  if (b->restart_count == 0) {
    e->off = e->next = b->entries_len;
    return 0;
  }
  /* Last restart whose key is <= key (restart 0 if none is). */
  uint32_t lo = 0, hi = b->restart_count - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    const uint8_t *k;
    size_t kl;
    if (sst_block_restart_key(b, mid, &k, &kl))
      return SST_ECORRUPT;
    if (sst_key_cmp(k, kl, key, key_len) <= 0)
      lo = mid;
    else
      hi = mid - 1;
  }
  if (sst_block_restart_off(b, lo, &e->off))
    return SST_ECORRUPT;
  size_t prev_len = 0;
  while (e->off < b->entries_len) {
    if (sst_block_decode(b, keybuf, prev_len, e))
      return SST_ECORRUPT;
    if (sst_key_cmp(keybuf, e->key_len, key, key_len) >= 0) {
      *found = 1;
      return 0;
    }
    prev_len = e->key_len;
    e->off = e->next;
  }
  e->next = e->off;
  return 0;
}
