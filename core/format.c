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

int sst_header_check(const uint8_t in[SST_HEADER_SIZE], uint32_t *version) {
  if (memcmp(in, SST_MAGIC, 8) != 0)
    return SST_ENOTTABLE;
  if (sst_get_u32(in + 12) != sst_checksum(in, 12))
    return SST_ECHECKSUM;
  *version = sst_get_u32(in + 8);
  if (*version != 1 && *version != 2)
    return SST_EVERSION;
  return 0;
}

/* Footer layout (little-endian):
 *    0 index_off u64     8 index_len u64    16 filter_off u64
 *   24 filter_len u64   32 key_count u64    40 tombstone_count u64
 *   48 key_bytes u64    56 value_bytes u64  64 block_count u64
 *   72 block_keys u32   76 block_bytes u32  80 restart_interval u32
 *   84 filter_bits_per_key u32              88 filter_probes u32
 *   92 version 1: reserved, zero (20 bytes); version 2:
 *      features u32, 96 keys_off u64, 104 props_off u64
 *  112 version u32     116 checksum of bytes 0..115 u32
 *  120 magic[8]
 */
void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE]) {
  memset(out, 0, SST_FOOTER_SIZE);
  const uint64_t u64s[9] = {f->index_off,  f->index_len,   f->filter_off,
                            f->filter_len, f->key_count,   f->tombstone_count,
                            f->key_bytes,  f->value_bytes, f->block_count};
  for (int i = 0; i < 9; i++)
    sst_put_u64(out + 8 * i, u64s[i]);
  sst_put_u32(out + 72, f->block_keys);
  sst_put_u32(out + 76, f->block_bytes);
  sst_put_u32(out + 80, f->restart_interval);
  sst_put_u32(out + 84, f->filter_bits_per_key);
  sst_put_u32(out + 88, f->filter_probes);
  sst_put_u32(out + 92, f->features);
  sst_put_u64(out + 96, f->keys_off);
  sst_put_u64(out + 104, f->props_off);
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
  if (f->version != 1 && f->version != 2)
    return SST_EVERSION;
  uint64_t *u64s[9] = {&f->index_off,  &f->index_len,   &f->filter_off,
                       &f->filter_len, &f->key_count,   &f->tombstone_count,
                       &f->key_bytes,  &f->value_bytes, &f->block_count};
  for (int i = 0; i < 9; i++)
    *u64s[i] = sst_get_u64(in + 8 * i);
  f->block_keys = sst_get_u32(in + 72);
  f->block_bytes = sst_get_u32(in + 76);
  f->restart_interval = sst_get_u32(in + 80);
  f->filter_bits_per_key = sst_get_u32(in + 84);
  f->filter_probes = sst_get_u32(in + 88);
  f->features = 0;
  f->keys_off = f->props_off = 0;
  if (f->version == 1) {
    for (int i = 92; i < 112; i++)
      if (in[i] != 0)
        return SST_ECORRUPT;
    return 0;
  }
  f->features = sst_get_u32(in + 92);
  f->keys_off = sst_get_u64(in + 96);
  f->props_off = sst_get_u64(in + 104);
  /* A feature this reader does not know (such as a codec) is a table
   * from a newer writer, not damage: the footer's checksum was good. */
  if ((f->features &
       ~(SST_FEATURE_META | SST_FEATURE_XATTRS | SST_FEATURE_VALUES |
         SST_FEATURE_DICT | SST_FEATURE_KEYZ | SST_FEATURE_BLOCKSUM)) != 0)
    return SST_EVERSION;
  if ((f->features & (SST_FEATURE_META | SST_FEATURE_XATTRS)) ==
      SST_FEATURE_XATTRS)
    return SST_ECORRUPT; /* attributes without metadata */
  if ((f->features & (SST_FEATURE_VALUES | SST_FEATURE_DICT)) ==
      SST_FEATURE_DICT)
    return SST_ECORRUPT; /* a dictionary for no compressed value */
  return 0;
}

uint8_t *sst_handle_encode(uint8_t *p, uint32_t version, unsigned features,
                           const sst_handle *h, uint64_t keys_base,
                           uint64_t filter_base) {
  assert(keys_base <= h->block_off && filter_base <= h->filter_off);
  p = sst_put_varint(p, h->values_off);
  p = sst_put_varint(p, h->values_len);
  if (version >= 2)
    p = sst_put_varint(p, h->block_off - keys_base);
  p = sst_put_varint(p, h->block_len);
  if (version >= 2 && (features & SST_FEATURE_KEYZ))
    p = sst_put_varint(p, h->raw_len);
  p = sst_put_varint(p, h->filter_off - filter_base);
  return sst_put_varint(p, h->filter_len);
}

int sst_handle_decode(const uint8_t *p, const uint8_t *limit, uint32_t version,
                      unsigned features, sst_handle *h, uint64_t keys_base,
                      uint64_t filter_base) {
  uint64_t rel, block_rel = 0;
  h->raw_len = 0;
  if ((p = sst_get_varint(p, limit, &h->values_off)) == NULL ||
      (p = sst_get_varint(p, limit, &h->values_len)) == NULL ||
      (version >= 2 && (p = sst_get_varint(p, limit, &block_rel)) == NULL) ||
      (p = sst_get_varint(p, limit, &h->block_len)) == NULL ||
      (version >= 2 && (features & SST_FEATURE_KEYZ) &&
       (p = sst_get_varint(p, limit, &h->raw_len)) == NULL) ||
      (p = sst_get_varint(p, limit, &rel)) == NULL ||
      (p = sst_get_varint(p, limit, &h->filter_len)) == NULL || p != limit)
    return SST_ECORRUPT;
  if (rel > UINT64_MAX - filter_base ||
      h->values_len > UINT64_MAX - h->values_off ||
      block_rel > UINT64_MAX - keys_base)
    return SST_ECORRUPT;
  h->block_off =
      version >= 2 ? keys_base + block_rel : h->values_off + h->values_len;
  h->pos = h->block_off; /* the reader sets it for compressed key blocks */
  h->filter_off = filter_base + rel;
  return 0;
}

/* Signed integers as varints: 0, -1, 1, -2, ... as 0, 1, 2, 3, ... */
static uint64_t zigzag(int64_t v) {
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static int64_t unzigzag(uint64_t u) {
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

uint8_t *sst_value_ref_encode(uint8_t *p, uint32_t version, unsigned features,
                              const sst_value_ref *v) {
  (void)version; /* read by the assert only: unused under NDEBUG */
  assert(!(v->flags & SST_FLAG_TOMBSTONE) ||
         (v->len == 0 && v->flags == SST_FLAG_TOMBSTONE));
  assert(version >= 2 || v->flags == (v->flags & SST_FLAG_TOMBSTONE));
  *p++ = (uint8_t)v->flags;
  p = sst_put_varint(p, v->len);
  p = sst_put_varint(p, v->rel);
  if (v->flags & SST_FLAG_PACKED)
    p = sst_put_varint(p, v->block);
  if (v->flags & SST_FLAG_CHUNKED)
    p = sst_put_varint(p, v->stored);
  if (!sst_ref_sumless(features, v->flags)) {
    sst_put_u32(p, v->checksum);
    p += 4;
  }
  if (!(v->flags & SST_FLAG_META))
    return p;
  unsigned mb = v->type;
  if (v->mtime_nsec)
    mb |= SST_MB_NSEC;
  if (v->link_id)
    mb |= SST_MB_LINK;
  if (v->xattr_len)
    mb |= SST_MB_XATTR;
  if (v->attr == 0)
    mb |= SST_MB_INLINE;
  *p++ = (uint8_t)mb;
  if (v->attr == 0) {
    p = sst_put_varint(p, v->mode);
    p = sst_put_varint(p, v->uid);
    p = sst_put_varint(p, v->gid);
  } else {
    p = sst_put_varint(p, v->attr - 1);
  }
  p = sst_put_varint(p, zigzag(v->mtime_sec));
  if (v->mtime_nsec)
    p = sst_put_varint(p, v->mtime_nsec);
  if (v->link_id) {
    p = sst_put_varint(p, v->link_id);
    p = sst_put_varint(p, v->nlink);
  }
  if (v->xattr_len) {
    p = sst_put_varint(p, v->xattr_len);
    memcpy(p, v->xattrs, v->xattr_len);
    p += v->xattr_len;
  }
  return p;
}

static const uint8_t *get_u32v(const uint8_t *p, const uint8_t *limit,
                               uint32_t *out) {
  uint64_t v;
  if ((p = sst_get_varint(p, limit, &v)) == NULL || v > UINT32_MAX)
    return NULL;
  *out = (uint32_t)v;
  return p;
}

/* Encoded attributes: a count, then exactly that many well-formed
 * attributes, names strictly increasing. */
static int xattrs_valid(const uint8_t *buf, size_t len) {
  uint64_t count;
  const uint8_t *p = sst_get_varint(buf, buf + len, &count);
  if (p == NULL || count == 0)
    return 0;
  size_t pos = 0;
  sst_xattr x, prev = {0};
  uint64_t seen = 0;
  int rc;
  while ((rc = sst_xattrs_next(buf, len, &pos, &x)) == 1) {
    if (seen > 0) {
      size_t n = prev.name_len < x.name_len ? prev.name_len : x.name_len;
      int c = memcmp(prev.name, x.name, n);
      if (c > 0 || (c == 0 && prev.name_len >= x.name_len))
        return 0;
    }
    prev = x;
    seen++;
  }
  return rc == 0 && seen == count;
}

int sst_value_ref_decode(const uint8_t *p, const uint8_t *limit,
                         uint32_t version, unsigned features,
                         sst_value_ref *v) {
  const uint8_t *start = p;
  if (p >= limit)
    return SST_ECORRUPT;
  v->flags = *p++;
  unsigned allowed = version >= 2 ? SST_FLAG_TOMBSTONE | SST_FLAG_META |
                                        SST_FLAG_SHARED | SST_FLAG_PACKED |
                                        SST_FLAG_CHUNKED
                                  : SST_FLAG_TOMBSTONE;
  if ((v->flags & ~allowed) != 0)
    return SST_ECORRUPT;
  /* A value is packed or chunked, not both. */
  if ((v->flags & SST_FLAG_PACKED) && (v->flags & SST_FLAG_CHUNKED))
    return SST_ECORRUPT;
  v->block = v->stored = 0;
  if ((p = sst_get_varint(p, limit, &v->len)) == NULL ||
      (p = sst_get_varint(p, limit, &v->rel)) == NULL)
    return SST_ECORRUPT;
  if ((v->flags & SST_FLAG_PACKED) &&
      (p = sst_get_varint(p, limit, &v->block)) == NULL)
    return SST_ECORRUPT;
  if ((v->flags & SST_FLAG_CHUNKED) &&
      (p = sst_get_varint(p, limit, &v->stored)) == NULL)
    return SST_ECORRUPT;
  v->checksum = 0;
  if (!sst_ref_sumless(features, v->flags)) {
    if (limit - p < 4)
      return SST_ECORRUPT;
    v->checksum = sst_get_u32(p);
    p += 4;
  }
  if ((v->flags & SST_FLAG_TOMBSTONE) &&
      (v->len != 0 || v->flags != SST_FLAG_TOMBSTONE))
    return SST_ECORRUPT;
  /* An empty value is stored plain. */
  if ((v->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) && v->len == 0)
    return SST_ECORRUPT;
  v->type = SST_TYPE_FILE;
  v->mode = v->uid = v->gid = 0;
  v->attr = 0;
  v->mtime_sec = 0;
  v->mtime_nsec = 0;
  v->link_id = 0;
  v->nlink = 1;
  v->xattr_len = 0;
  v->xattr_pos = 0;
  v->xattrs = NULL;
  if (!(v->flags & SST_FLAG_META))
    return p == limit ? 0 : SST_ECORRUPT;
  if (p >= limit)
    return SST_ECORRUPT;
  unsigned mb = *p++;
  uint64_t u;
  v->type = mb & SST_MB_TYPE;
  if ((mb & ~0x3fu) != 0 || v->type > SST_TYPE_SYMLINK)
    return SST_ECORRUPT;
  if (mb & SST_MB_INLINE) {
    if ((p = get_u32v(p, limit, &v->mode)) == NULL ||
        (p = get_u32v(p, limit, &v->uid)) == NULL ||
        (p = get_u32v(p, limit, &v->gid)) == NULL || v->mode > 07777)
      return SST_ECORRUPT;
  } else {
    if ((p = sst_get_varint(p, limit, &u)) == NULL || u >= UINT32_MAX)
      return SST_ECORRUPT;
    v->attr = u + 1;
  }
  if ((p = sst_get_varint(p, limit, &u)) == NULL)
    return SST_ECORRUPT;
  v->mtime_sec = unzigzag(u);
  if ((mb & SST_MB_NSEC) && ((p = get_u32v(p, limit, &v->mtime_nsec)) == NULL ||
                             v->mtime_nsec == 0 || v->mtime_nsec > 999999999))
    return SST_ECORRUPT;
  if ((mb & SST_MB_LINK) &&
      ((p = sst_get_varint(p, limit, &v->link_id)) == NULL || v->link_id == 0 ||
       (p = get_u32v(p, limit, &v->nlink)) == NULL || v->nlink < 2))
    return SST_ECORRUPT;
  if (mb & SST_MB_XATTR) {
    if ((p = get_u32v(p, limit, &v->xattr_len)) == NULL || v->xattr_len == 0 ||
        v->xattr_len > SST_XATTRS_MAX || (size_t)(limit - p) < v->xattr_len)
      return SST_ECORRUPT;
    v->xattr_pos = (size_t)(p - start);
    if (!xattrs_valid(p, v->xattr_len))
      return SST_ECORRUPT;
    p += v->xattr_len;
  }
  /* A directory has no bytes and is never shared; a hard link is a file. */
  if (p != limit ||
      (v->type == SST_TYPE_DIR &&
       (v->len != 0 || (v->flags & SST_FLAG_SHARED))) ||
      (v->link_id && v->type != SST_TYPE_FILE))
    return SST_ECORRUPT;
  return 0;
}

size_t sst_xattrs_encode(const sst_xattr *x, size_t n, uint8_t *buf,
                         size_t cap) {
  if (n == 0)
    return 0;
  uint8_t tmp[10];
  size_t need = (size_t)(sst_put_varint(tmp, n) - tmp);
  for (size_t i = 0; i < n; i++)
    need += (size_t)(sst_put_varint(tmp, x[i].name_len) - tmp) + x[i].name_len +
            (size_t)(sst_put_varint(tmp, x[i].value_len) - tmp) +
            x[i].value_len;
  if (need > cap)
    return need;
  uint8_t *p = sst_put_varint(buf, n);
  for (size_t i = 0; i < n; i++) {
    p = sst_put_varint(p, x[i].name_len);
    memcpy(p, x[i].name, x[i].name_len);
    p += x[i].name_len;
    p = sst_put_varint(p, x[i].value_len);
    if (x[i].value_len)
      memcpy(p, x[i].value, x[i].value_len);
    p += x[i].value_len;
  }
  return need;
}

/* *pos 0 means "before the count"; afterwards it is the offset of the
 * next attribute. */
int sst_xattrs_next(const uint8_t *buf, size_t len, size_t *pos, sst_xattr *x) {
  const uint8_t *limit = buf + len;
  uint64_t count, nl, vl;
  const uint8_t *p = sst_get_varint(buf, limit, &count);
  if (len == 0)
    return 0;
  if (p == NULL || count == 0)
    return SST_ECORRUPT;
  if (*pos == 0)
    *pos = (size_t)(p - buf);
  if (*pos > len)
    return SST_ECORRUPT;
  if (*pos == len)
    return 0;
  p = buf + *pos;
  if ((p = sst_get_varint(p, limit, &nl)) == NULL || nl == 0 || nl > 255 ||
      (uint64_t)(limit - p) < nl)
    return SST_ECORRUPT;
  x->name = (const char *)p;
  x->name_len = (size_t)nl;
  p += nl;
  if ((p = sst_get_varint(p, limit, &vl)) == NULL || vl > 65536 ||
      (uint64_t)(limit - p) < vl)
    return SST_ECORRUPT;
  x->value = p;
  x->value_len = (size_t)vl;
  p += vl;
  *pos = (size_t)(p - buf);
  return 1;
}
