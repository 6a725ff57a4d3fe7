/* reader.c — opening a table and point lookups. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>
#include <zstd.h>

#include "filter.h"
#include "source.h"
#include "spill.h"
#include "table.h"

void sst_reader_options_init(sst_reader_options *o) {
  memset(o, 0, sizeof *o);
  o->verify_values = 1;
}

/* Checks the footer's positions against the file size: every region lies
 * inside the file, in order, with nothing between them. */
static int check_layout(sst_reader *r, sst_error *err) {
  const sst_footer *f = &r->f;
  uint64_t footer_off = r->size - SST_FOOTER_SIZE;
  if (f->index_off > footer_off || f->index_len < 4 ||
      f->index_len > footer_off - f->index_off ||
      f->index_off + f->index_len + SST_TRAILER_SIZE != footer_off)
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: footer: index position out of range", r->path);
  /* Version 1 has no key region nor properties: they are empty there. */
  uint64_t keys_off = f->version == 1 ? f->filter_off : f->keys_off;
  uint64_t props_off = f->version == 1 ? f->index_off : f->props_off;
  if (keys_off < SST_HEADER_SIZE || keys_off > f->filter_off ||
      f->filter_off > props_off || props_off > f->index_off ||
      f->filter_len != props_off - f->filter_off)
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: footer: filter position out of range", r->path);
  if ((f->filter_bits_per_key == 0) != (f->filter_probes == 0) ||
      f->filter_probes > 30 || f->restart_interval == 0)
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: footer: bad filter or block parameters", r->path);
  return 0;
}

/* The most of a remote table's metadata (properties, index, footer) held
 * in memory: a footer that claims more is refused, not allocated. */
#define META_MAX ((uint64_t)1 << 30)

/* Where the table's metadata starts: the properties block (version 2) or
 * the index (version 1), up to the end of the file. */
static uint64_t meta_off(const sst_reader *r) {
  return r->f.version == 1 ? r->f.index_off : r->f.props_off;
}

/* The bytes at off, which lies in the metadata region: in the mapping, or
 * in the copy a remote reader keeps. */
static const uint8_t *meta_at(const sst_reader *r, uint64_t off) {
  return r->data != NULL ? r->data + off : r->meta + (off - r->meta_off);
}

/* A remote reader reads the metadata region once, into memory. */
static int read_meta(sst_reader *r, sst_error *err) {
  if (r->data != NULL)
    return 0;
  r->meta_off = meta_off(r);
  uint64_t len = r->size - r->meta_off;
  if (len > META_MAX)
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: footer: metadata of %llu bytes is too large",
                         r->path, (unsigned long long)len);
  uint8_t *m = malloc((size_t)len);
  if (m == NULL)
    return sst_error_set(err, ENOMEM, "%s: out of memory", r->path);
  r->meta = m;
  int rc = sst_src_pread(r->src, m, (size_t)len, r->meta_off);
  if (rc != 0)
    return sst_error_set(err, rc, "%s: reading the index: %s", r->path,
                         sst_strerror(rc));
  return 0;
}

/* The metadata dictionary: a count and that many (mode, uid, gid) varint
 * triples, the whole body of its section. */
static int read_attrs(sst_reader *r, const uint8_t *p, const uint8_t *limit) {
  uint64_t count, v[3];
  if (r->dict != NULL || (p = sst_get_varint(p, limit, &count)) == NULL ||
      count == 0 || count > (uint64_t)(limit - p) / 3)
    return SST_ECORRUPT;
  if ((r->dict = malloc((size_t)count * sizeof *r->dict)) == NULL)
    return ENOMEM;
  for (uint64_t i = 0; i < count; i++) {
    for (int k = 0; k < 3; k++)
      if ((p = sst_get_varint(p, limit, &v[k])) == NULL || v[k] > UINT32_MAX)
        return SST_ECORRUPT;
    if (v[0] > 07777)
      return SST_ECORRUPT;
    r->dict[i] = (sst_attr){(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]};
  }
  if (p != limit)
    return SST_ECORRUPT;
  r->dict_count = (uint32_t)count;
  return 0;
}

/* The properties block (version 2): tagged sections and a checksum,
 * filling [props_off, index_off). Unknown sections are skipped. */
static int open_props(sst_reader *r, sst_error *err) {
  if (r->f.version == 1)
    return 0;
  int rc = SST_ECORRUPT;
  if (r->f.props_off == r->f.index_off) {
    if (r->f.features & (SST_FEATURE_VALUES | SST_FEATURE_DICT))
      goto bad;
    return 0;
  }
  uint64_t len = r->f.index_off - r->f.props_off;
  const uint8_t *p = meta_at(r, r->f.props_off);
  if (len < 5)
    goto bad;
  if (sst_get_u32(p + len - 4) != sst_checksum(p, len - 4)) {
    rc = SST_ECHECKSUM;
    goto bad;
  }
  const uint8_t *limit = p + len - 4;
  while (p < limit) {
    uint64_t tag, n;
    if ((p = sst_get_varint(p, limit, &tag)) == NULL ||
        (p = sst_get_varint(p, limit, &n)) == NULL || n > (uint64_t)(limit - p))
      goto bad;
    if (tag == SST_PROP_ATTRS && (rc = read_attrs(r, p, p + n)) != 0)
      goto bad;
    if (tag == SST_PROP_VALUES && (r->f.features & SST_FEATURE_VALUES) &&
        (rc = sst_vread_section(r, p, p + n)) != 0)
      goto bad;
    if (tag == SST_PROP_STATS) {
      const uint8_t *q = sst_get_varint(p, p + n, &r->dedup_values);
      if (q == NULL || (q = sst_get_varint(q, p + n, &r->dedup_bytes)) == NULL)
        goto bad;
    }
    if (tag == SST_PROP_DICT && (r->f.features & SST_FEATURE_DICT) &&
        (rc = sst_vread_dict(r, p, (size_t)n)) != 0)
      goto bad;
    rc = SST_ECORRUPT;
    p += n;
  }
  /* What the footer announces must be there. */
  if (((r->f.features & SST_FEATURE_VALUES) && r->vblocks == NULL) ||
      ((r->f.features & SST_FEATURE_DICT) && r->ddict == NULL))
    goto bad;
  return 0;
bad:
  if (rc == ENOMEM)
    return sst_error_set(err, ENOMEM, "%s: out of memory", r->path);
  if (rc == SST_EVERSION)
    return sst_error_set(err, rc,
                         "%s: values compressed with a codec this version "
                         "does not know",
                         r->path);
  return sst_error_set(err, rc, "%s: properties block at offset %llu: %s",
                       r->path, (unsigned long long)r->f.props_off,
                       rc == SST_ECHECKSUM ? "checksum mismatch" : "malformed");
}

static int open_index(sst_reader *r, sst_error *err) {
  const uint8_t *p = meta_at(r, r->f.index_off);
  size_t len = (size_t)r->f.index_len;
  if (sst_get_u32(p + len) != sst_checksum(p, len))
    return sst_error_set(err, SST_ECHECKSUM,
                         "%s: index block at offset %llu: checksum mismatch",
                         r->path, (unsigned long long)r->f.index_off);
  if (sst_block_open(&r->index, p, len) ||
      r->index.restart_count != r->f.block_count)
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: index block at offset %llu: malformed", r->path,
                         (unsigned long long)r->f.index_off);
  return 0;
}

static uint64_t key_head(const uint8_t *key, size_t len) {
  uint64_t h = 0;
  for (size_t i = 0; i < 8; i++)
    h = (h << 8) | (i < len ? key[i] : 0);
  return h;
}

static int build_heads(sst_reader *r, sst_error *err) {
  uint64_t n = r->f.block_count;
  r->pos_end = r->f.filter_off;
  if (n == 0)
    return 0;
  const uint8_t *first, *last;
  size_t first_len, last_len;
  sst_handle h;
  if (sst_table_handle(r, 0, &h, &first, &first_len) ||
      sst_table_handle(r, n - 1, &h, &last, &last_len))
    return sst_error_set(err, SST_ECORRUPT, "%s: index block malformed",
                         r->path);
  size_t common = 0;
  while (common < first_len && common < last_len &&
         first[common] == last[common])
    common++;
  r->common = first;
  r->common_len = common;
  int keyz = (r->f.features & SST_FEATURE_KEYZ) != 0;
  if ((r->heads = malloc(n * sizeof *r->heads)) == NULL ||
      (r->refs = malloc(n * sizeof *r->refs)) == NULL ||
      (keyz && (r->kz = malloc(n * sizeof *r->kz)) == NULL))
    return sst_error_set(err, ENOMEM, "%s: out of memory", r->path);
  /* Version 1: values, block, values, block... up to filter_off.
   * Version 2: values up to keys_off, blocks from there to filter_off. */
  int v1 = r->f.version == 1;
  uint64_t values_off = SST_HEADER_SIZE, filter_off = r->f.filter_off;
  uint64_t block_off = r->f.keys_off, pos = r->f.keys_off;
  for (uint64_t i = 0; i < n; i++) {
    const uint8_t *k;
    size_t kl;
    if (sst_table_handle(r, i, &h, &k, &kl) || kl < common ||
        (i > 0 && memcmp(k, first, common) != 0) ||
        h.values_off != values_off || h.block_len > UINT32_MAX ||
        (!v1 && h.block_off != block_off) ||
        (r->f.filter_probes && h.filter_off != filter_off) ||
        h.filter_off - r->f.filter_off > UINT32_MAX ||
        (h.raw_len != 0 && (h.raw_len < 4 || h.raw_len > SST_KEYZ_RAW_MAX)))
      return sst_error_set(err, SST_ECORRUPT, "%s: index entry %llu malformed",
                           r->path, (unsigned long long)i);
    if (keyz) {
      r->kz[i] = (struct sst_block_z){pos, (uint32_t)h.raw_len};
      pos += (h.raw_len ? h.raw_len : h.block_len) + SST_TRAILER_SIZE;
    }
    r->refs[i] =
        (struct sst_block_ref){h.values_off, h.block_off, (uint32_t)h.block_len,
                               (uint32_t)(h.filter_off - r->f.filter_off)};
    r->heads[i] = key_head(k + common, kl - common);
    block_off = h.block_off + h.block_len + SST_TRAILER_SIZE;
    values_off = v1 ? block_off : h.values_off + h.values_len;
    filter_off = h.filter_off + h.filter_len;
  }
  /* Value blocks closed after the last key block lie after its values. */
  for (uint64_t j = 0; j < r->vb_count; j++)
    if (r->vblocks[j].off == values_off)
      values_off += r->vblocks[j].stored;
  r->pos_end = keyz ? pos : r->f.filter_off;
  if (values_off != (v1 ? r->f.filter_off : r->f.keys_off) ||
      (!v1 && block_off != r->f.filter_off) ||
      (r->f.filter_probes && filter_off != r->f.filter_off + r->f.filter_len))
    return sst_error_set(err, SST_ECORRUPT,
                         "%s: key blocks do not tile the data region", r->path);
  return 0;
}

int sst_reader_open(const char *path, const sst_reader_options *opts,
                    sst_reader **out, sst_error *err) {
  *out = NULL;
  sst_reader *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    return sst_error_set(err, ENOMEM, "%s: out of memory", path);
  }
  r->fd = -1;
  if (opts)
    r->o = *opts;
  else
    sst_reader_options_init(&r->o);
  int rc = sst_src_open(path, r->o.cache_dir, r->o.cache_max, &r->src, err);
  if (rc != 0)
    goto fail;
  r->fd = r->src->fd;
  r->size = r->src->size;
  if (r->size < SST_HEADER_SIZE) {
    rc = sst_error_set(err, r->size ? SST_ENOTTABLE : SST_ETRUNCATED,
                       "%s: file of %llu bytes is too small for a table", path,
                       (unsigned long long)r->size);
    goto fail;
  }
  uint8_t header[SST_HEADER_SIZE], footer[SST_FOOTER_SIZE];
  const uint8_t *hp = header, *fp = footer;
  if (r->fd >= 0) {
    void *m = mmap(NULL, (size_t)r->size, PROT_READ, MAP_SHARED, r->fd, 0);
    if (m == MAP_FAILED) {
      rc = sst_error_set(err, errno, "%s: mmap: %s", path, strerror(errno));
      goto fail;
    }
    r->data = m;
    /* A page-cache folio of 2 MiB would be mapped whole by one touch. */
    if (r->o.release_pages)
      madvise(m, (size_t)r->size, MADV_NOHUGEPAGE);
    hp = r->data;
    fp = r->data + r->size - SST_FOOTER_SIZE;
  } else {
    /* Remote: no mapping; everything is read through the source. */
    r->o.pread_blocks = 1;
    r->o.release_pages = 0;
    if ((rc = sst_src_pread(r->src, header, sizeof header, 0)) != 0) {
      rc = sst_error_set(err, rc, "%s: reading the header: %s", path,
                         sst_strerror(rc));
      goto fail;
    }
  }
  uint32_t header_version = 0;
  if ((rc = sst_header_check(hp, &header_version)) != 0) {
    rc = sst_error_set(err, rc, "%s: header: %s", path,
                       rc == SST_ECHECKSUM ? "checksum mismatch"
                       : rc == SST_EVERSION
                           ? "unsupported format version"
                           : "not an sstable file (bad magic number)");
    goto fail;
  }
  if (r->size < SST_HEADER_SIZE + SST_FOOTER_SIZE) {
    rc = sst_error_set(err, SST_ETRUNCATED,
                       "%s: truncated: %llu bytes, no room for a footer", path,
                       (unsigned long long)r->size);
    goto fail;
  }
  if (r->data == NULL && (rc = sst_src_pread(r->src, footer, sizeof footer,
                                             r->size - SST_FOOTER_SIZE)) != 0) {
    rc = sst_error_set(err, rc, "%s: reading the footer: %s", path,
                       sst_strerror(rc));
    goto fail;
  }
  if ((rc = sst_footer_decode(fp, &r->f))) {
    if (rc == SST_ENOTTABLE)
      rc = sst_error_set(err, SST_ETRUNCATED,
                         "%s: no footer at the end of the file (truncated?)",
                         path);
    else
      rc = sst_error_set(err, rc, "%s: footer: %s", path, sst_strerror(rc));
    goto fail;
  }
  if (r->f.version != header_version) {
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: header and footer disagree on the format version",
                       path);
    goto fail;
  }
  if ((rc = check_layout(r, err)) != 0)
    goto fail;
  /* A remote table: its key region (key blocks, filters, metadata) is
   * what listings and lookups read, in large pieces at once. */
  if (r->data == NULL && r->f.version >= 2)
    sst_src_hint(r->src, r->f.keys_off, r->size - r->f.keys_off);
  if ((rc = read_meta(r, err)) || (rc = open_index(r, err)) ||
      (rc = open_props(r, err)))
    goto fail;
  if ((rc = build_heads(r, err)) != 0)
    goto fail;
  if ((r->vblocks != NULL || r->kz != NULL) &&
      (rc = sst_vcache_new(r, r->o.cache_bytes ? r->o.cache_bytes
                                               : (uint64_t)4 << 20)) != 0) {
    rc = sst_error_set(err, rc, "%s: out of memory", path);
    goto fail;
  }
  sst_table_release(r, r->f.version == 1 ? r->f.index_off : r->f.props_off,
                    r->size -
                        (r->f.version == 1 ? r->f.index_off : r->f.props_off));
  sst_table_release(r, 0, SST_HEADER_SIZE);
  /* Untouched pages of a large calloc cost nothing until used. */
  if ((r->checked = calloc(r->f.block_count ? r->f.block_count : 1, 1)) ==
      NULL) {
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  *out = r;
  return 0;
fail:
  sst_reader_close(r);
  return rc;
}

void sst_reader_close(sst_reader *r) {
  if (r == NULL)
    return;
  if (r->data)
    munmap((void *)r->data, (size_t)r->size);
  sst_src_close(r->src);
  free(r->meta);
  free(r->checked);
  free(r->heads);
  free(r->refs);
  free(r->kz);
  free(r->dict);
  free(r->vblocks);
  ZSTD_freeDDict(r->ddict);
  sst_vcache_free(r->vcache);
  free(r->path);
  free(r);
}

const char *sst_reader_path(const sst_reader *r) { return r->path; }
const uint8_t *sst_reader_data(const sst_reader *r) { return r->data; }

void sst_reader_info(const sst_reader *r, sst_info *out) {
  memset(out, 0, sizeof *out);
  out->format_version = r->f.version;
  out->file_size = r->size;
  out->position_end = r->pos_end;
  uint64_t kstart = r->f.version == 1 ? 0 : r->f.keys_off;
  out->key_blocks_stored = r->f.version == 1 ? 0 : r->f.filter_off - kstart;
  out->key_blocks_raw = r->f.version == 1 ? 0 : r->pos_end - kstart;
  out->key_count = r->f.key_count;
  out->tombstone_count = r->f.tombstone_count;
  out->key_bytes = r->f.key_bytes;
  out->value_bytes = r->f.value_bytes;
  out->block_count = r->f.block_count;
  out->index_bytes = r->f.index_len + SST_TRAILER_SIZE;
  out->filter_bytes = r->f.filter_len;
  out->block_keys = r->f.block_keys;
  out->block_bytes = r->f.block_bytes;
  out->restart_interval = r->f.restart_interval;
  out->filter_bits_per_key = r->f.filter_bits_per_key;
  out->features = r->f.features;
  uint64_t keys_off = sst_table_values_end(r);
  out->value_region = r->f.version == 1 ? 0 : keys_off - SST_HEADER_SIZE;
  out->key_region = r->f.version == 1 ? 0 : r->size - keys_off;
  out->value_blocks = r->vb_count;
  out->chunk_size = r->chunk_size;
  out->dict_bytes = r->zdict_len;
  out->dedup_values = r->dedup_values;
  out->dedup_bytes = r->dedup_bytes;
}

int sst_table_handle(const sst_reader *r, uint64_t i, sst_handle *h,
                     const uint8_t **first_key, size_t *first_len) {
  const uint8_t *key, *payload;
  size_t key_len, payload_len;
  if (i >= r->index.restart_count ||
      sst_block_restart_entry(&r->index, (uint32_t)i, &key, &key_len, &payload,
                              &payload_len) ||
      sst_handle_decode(payload, payload + payload_len, r->f.version,
                        r->f.features, h, r->f.keys_off, r->f.filter_off))
    return SST_ECORRUPT;
  uint64_t data_end = r->f.filter_off, values_end = sst_table_values_end(r);
  uint64_t filter_end = r->f.filter_off + r->f.filter_len;
  if (h->values_off < SST_HEADER_SIZE || h->values_off > values_end ||
      h->values_len > values_end - h->values_off ||
      h->block_off < (r->f.version == 1 ? SST_HEADER_SIZE : r->f.keys_off) ||
      h->block_off > data_end || h->block_len > data_end - h->block_off ||
      SST_TRAILER_SIZE > data_end - h->block_off - h->block_len ||
      h->block_len < 4)
    return SST_ECORRUPT;
  if (r->f.filter_probes &&
      (h->filter_off > filter_end ||
       h->filter_len > filter_end - h->filter_off || h->filter_len < 5))
    return SST_ECORRUPT;
  *first_key = key;
  *first_len = key_len;
  return 0;
}

int sst_table_find_block(const sst_reader *r, const uint8_t *key,
                         size_t key_len, int64_t *block) {
  int64_t n = (int64_t)r->f.block_count;
  *block = -1;
  if (n == 0)
    return 0;
  /* Keys outside the common prefix lie before or after every block. */
  size_t cl = r->common_len, m = key_len < cl ? key_len : cl;
  int c = m ? memcmp(key, r->common, m) : 0;
  if (c < 0 || (c == 0 && key_len < cl))
    return 0;
  if (c > 0) {
    *block = n - 1;
    return 0;
  }
  /* Last block whose head is <= the key's head. */
  uint64_t kh = key_head(key + cl, key_len - cl);
  int64_t lo = 0, hi = n; /* heads[lo..hi) unsearched */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r->heads[mid] <= kh)
      lo = mid + 1;
    else
      hi = mid;
  }
  int64_t last = lo - 1;
  if (last < 0 || r->heads[last] < kh) {
    *block = last;
    return 0;
  }
  /* Equal heads: the full keys decide, among the blocks with this head. */
  int64_t first = last;
  while (first > 0 && r->heads[first - 1] == kh)
    first--;
  int64_t found = first - 1;
  lo = first;
  hi = last;
  while (lo <= hi) {
    int64_t mid = lo + (hi - lo) / 2;
    const uint8_t *k;
    size_t kl;
    if (sst_block_restart_key(&r->index, (uint32_t)mid, &k, &kl))
      return SST_ECORRUPT;
    if (sst_key_cmp(k, kl, key, key_len) <= 0) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  *block = found;
  return 0;
}

static int is_checked(const sst_reader *r, uint64_t i, unsigned what) {
  return (__atomic_load_n(&r->checked[i], __ATOMIC_RELAXED) & what) != 0;
}

static void set_checked(const sst_reader *r, uint64_t i, unsigned what) {
  __atomic_fetch_or(&r->checked[i], (uint8_t)what, __ATOMIC_RELAXED);
}

/* How far ahead of a key-region read that missed the page cache the
 * kernel is asked to read. */
#define KEYS_AHEAD ((uint64_t)8 << 20)

/* Reads len bytes at off from the key region (version 2: key blocks,
 * filters, metadata, index, in one contiguous stretch at the end of the
 * file). A read the page cache cannot serve at once means the table is
 * cold: the kernel is then asked to read the region ahead of it in one
 * large request (POSIX_FADV_WILLNEED), so that a cold listing, which
 * walks the region nearly in order, waits for a few large reads rather
 * than one small one per key block. */
static int read_keys(const sst_reader *r, void *buf, size_t len, uint64_t off) {
#ifdef RWF_NOWAIT
  if (r->fd >= 0 && r->f.version >= 2 && off >= r->f.keys_off) {
    struct iovec v = {buf, len};
    ssize_t n = preadv2(r->fd, &v, 1, (off_t)off, RWF_NOWAIT);
    if (n == (ssize_t)len)
      return 0;
    if (n < 0 && errno == EAGAIN) {
      uint64_t ahead = r->size - off < KEYS_AHEAD ? r->size - off : KEYS_AHEAD;
      posix_fadvise(r->fd, (off_t)off, (off_t)ahead, POSIX_FADV_WILLNEED);
    }
  }
#endif
  return sst_src_pread(r->src, buf, len, off);
}

int64_t sst_table_block_at(const sst_reader *r, uint64_t pos) {
  uint64_t lo = 0, hi = r->f.block_count;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (sst_table_block_pos(r, mid) <= pos)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (int64_t)lo - 1;
}

/* Makes b->own hold at least need bytes. */
static int own_room(sst_block *b, size_t need) {
  if (b->own_cap >= need)
    return 0;
  size_t cap = need < 8192 ? 8192 : need;
  uint8_t *n = realloc(b->own, cap);
  if (n == NULL)
    return ENOMEM;
  b->own = n;
  b->own_cap = cap;
  return 0;
}

int sst_table_block(const sst_reader *r, uint64_t i, const sst_handle *h,
                    sst_block *b, int always) {
  assert(i < r->f.block_count);
  /* A compressed block is decompressed to the start of b->own; read with
   * pread, its stored bytes go after that room. */
  size_t raw = (size_t)h->raw_len, len = (size_t)h->block_len;
  const uint8_t *p;
  int rc;
  /* Checked when it was decoded; `always` (verify) reads it again. */
  if (raw && !always) {
    if ((rc = own_room(b, raw)))
      return rc;
    if (sst_vcache_get_keys(r, i, h, b->own))
      return sst_block_open(b, b->own, raw);
  }
  if (r->o.pread_blocks && (!always || r->data == NULL)) {
    if ((rc = own_room(b, raw + len + 4))) /* and its checksum */
      return rc;
    if ((rc = read_keys(r, b->own + raw, len + 4, h->block_off)))
      return rc;
    p = b->own + raw;
  } else {
    if (raw && (rc = own_room(b, raw)))
      return rc;
    p = r->data + h->block_off;
  }
  if (always || !is_checked(r, i, CHECKED_BLOCK)) {
    if (sst_get_u32(p + len) != sst_checksum(p, len))
      return SST_ECHECKSUM;
    set_checked(r, i, CHECKED_BLOCK);
  }
  if (raw) {
    if ((rc = sst_vread_unzip(b->own, raw, p, len)))
      return rc;
    p = b->own;
    len = raw;
    sst_vcache_put_keys(r, i, h, p);
  }
  return sst_block_open(b, p, len);
}

int sst_table_filter(const sst_reader *r, uint64_t i, const sst_handle *h,
                     const uint8_t *part) {
  assert(i < r->f.block_count);
  if (is_checked(r, i, CHECKED_FILTER))
    return 0;
  int rc = sst_filter_check(part, (size_t)h->filter_len);
  if (rc == 0)
    set_checked(r, i, CHECKED_FILTER);
  return rc;
}

int sst_table_entry(const sst_reader *r, const sst_handle *h,
                    const sst_block *b, const sst_block_entry *be,
                    sst_entry *e) {
  sst_value_ref v;
  if (sst_value_ref_decode(be->payload, be->payload + be->payload_len,
                           r->f.version, r->f.features, &v))
    return SST_ECORRUPT;
  /* The bytes the entry occupies in the file. */
  uint64_t stored = v.len;
  e->value_block = 0;
  e->value_stored = 0;
  if (v.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) {
    if (r->vblocks == NULL)
      return SST_ECORRUPT;
    if (v.flags & SST_FLAG_CHUNKED) {
      uint64_t n = sst_chunk_count(v.len, r->chunk_size);
      if (v.stored / SST_CHUNK_ENTRY < n)
        return SST_ECORRUPT;
      stored = e->value_stored = v.stored;
    }
  }
  if (v.flags & SST_FLAG_PACKED) {
    if (v.block >= r->vb_count || v.rel > r->vblocks[v.block].raw_len ||
        v.len > r->vblocks[v.block].raw_len - v.rel)
      return SST_ECORRUPT;
    e->value_offset = v.rel;
    e->value_block = v.block;
  } else if (v.flags & SST_FLAG_SHARED) {
    /* Anywhere in the value region. */
    uint64_t end = sst_table_values_end(r);
    if (v.rel < SST_HEADER_SIZE || v.rel > end || stored > end - v.rel)
      return SST_ECORRUPT;
    e->value_offset = v.rel;
  } else {
    if (v.rel > h->values_len || stored > h->values_len - v.rel)
      return SST_ECORRUPT;
    e->value_offset = h->values_off + v.rel;
  }
  e->flags = v.flags;
  e->source = 0;
  e->value_len = v.len;
  e->value_checksum = v.checksum;
  e->position = h->pos + be->off;
  if (v.flags & SST_FLAG_META) {
    sst_meta *m = &e->meta;
    m->type = v.type;
    if (v.attr) {
      if (v.attr > r->dict_count)
        return SST_ECORRUPT;
      const sst_attr *a = &r->dict[v.attr - 1];
      m->mode = a->mode;
      m->uid = a->uid;
      m->gid = a->gid;
    } else {
      m->mode = v.mode;
      m->uid = v.uid;
      m->gid = v.gid;
    }
    m->mtime_sec = v.mtime_sec;
    m->mtime_nsec = v.mtime_nsec;
    m->nlink = v.nlink;
    m->link_id = v.link_id;
    m->xattr_len = v.xattr_len;
    m->xattr_off =
        v.xattr_len ? h->pos + (uint64_t)(be->payload - b->data) + v.xattr_pos
                    : 0;
    m->xattrs = NULL;
  }
  return 0;
}

/* Gives b the thread's block buffer (SST_TBUF_BLOCK), not one allocated
 * per call: large enough for block h decompressed and, read with pread,
 * its stored bytes and checksum after that, or (with filter, in a table
 * that has filters) the filter partition read through it. The caller
 * ends the use with sst_thread_buf_done. */
static int block_buf(const sst_reader *r, const sst_handle *h, int filter,
                     sst_block *b) {
  if (!r->o.pread_blocks && !h->raw_len)
    return 0; /* read in place */
  uint64_t need = h->raw_len;
  if (r->o.pread_blocks) {
    need += h->block_len + 4;
    /* filter_len means nothing in a table without filters. */
    if (filter && r->f.filter_probes && need < h->filter_len)
      need = h->filter_len;
  }
  if (need > SIZE_MAX ||
      (b->own = sst_thread_buf(SST_TBUF_BLOCK, (size_t)need)) == NULL)
    return ENOMEM;
  b->own_cap = (size_t)need;
  return 0;
}

int sst_reader_xattrs(const sst_reader *r, const sst_entry *e, uint8_t *buf) {
  if (!(e->flags & SST_FLAG_META) || e->meta.xattr_len == 0)
    return 0;
  uint64_t off = e->meta.xattr_off, len = e->meta.xattr_len;
  if (len > SST_XATTRS_MAX || off < sst_table_values_end(r) ||
      off > r->pos_end || len > r->pos_end - off)
    return SST_ECORRUPT;
  if (r->kz != NULL) {
    /* Positions in decompressed blocks: read the block. */
    int64_t bi = sst_table_block_at(r, off);
    if (bi < 0)
      return SST_ECORRUPT;
    sst_handle h;
    sst_table_cached_handle(r, (uint64_t)bi, &h);
    sst_block b = {0};
    int rc = block_buf(r, &h, 0, &b);
    if (rc == 0)
      rc = sst_table_block(r, (uint64_t)bi, &h, &b, 0);
    if (rc == 0 &&
        (off - h.pos > b.entries_len || len > b.entries_len - (off - h.pos)))
      rc = SST_ECORRUPT;
    if (rc == 0)
      memcpy(buf, b.data + (off - h.pos), (size_t)len);
    sst_thread_buf_done(SST_TBUF_BLOCK);
    return rc;
  }
  if (r->o.pread_blocks)
    return read_keys(r, buf, (size_t)len, off);
  memcpy(buf, r->data + off, (size_t)len);
  return 0;
}

/* A key buffer of SST_KEY_MAX bytes for each thread, kept off the stack
 * (FUSE worker threads have small stacks) and not allocated per lookup. */
static pthread_key_t keybuf_key;
static pthread_once_t keybuf_once = PTHREAD_ONCE_INIT;

static void keybuf_init(void) { pthread_key_create(&keybuf_key, free); }

static uint8_t *thread_keybuf(void) {
  pthread_once(&keybuf_once, keybuf_init);
  uint8_t *b = pthread_getspecific(keybuf_key);
  if (b == NULL && (b = malloc(SST_KEY_MAX)) != NULL &&
      pthread_setspecific(keybuf_key, b) != 0) {
    free(b);
    b = NULL;
  }
  return b;
}

int sst_reader_find(const sst_reader *r, const void *key, size_t key_len,
                    sst_entry *e) {
  int64_t bi;
  int rc;
  if (key_len == 0 || key_len > SST_KEY_MAX)
    return SST_ENOTFOUND;
  if ((rc = sst_table_find_block(r, key, key_len, &bi)))
    return rc;
  if (bi < 0)
    return SST_ENOTFOUND;
  sst_handle h;
  sst_table_cached_handle(r, (uint64_t)bi, &h);
  /* Start the loads this lookup is about to wait for, all at once: the
   * filter bits, and both ends of the key block (entries and restarts). */
  if (!r->o.pread_blocks) {
    __builtin_prefetch(r->data + h.filter_off);
    __builtin_prefetch(r->data + h.block_off);
    __builtin_prefetch(r->data + h.block_off + h.block_len - 4);
  }
  sst_block b = {0};
  if ((rc = block_buf(r, &h, 1, &b)))
    return rc;
  if (r->f.filter_probes) {
    const uint8_t *part;
    if (r->o.pread_blocks) {
      /* The partition goes through the block's buffer, read next. */
      if ((rc = read_keys(r, b.own, (size_t)h.filter_len, h.filter_off)))
        goto out;
      part = b.own;
    } else {
      part = r->data + h.filter_off;
    }
    if ((rc = sst_table_filter(r, (uint64_t)bi, &h, part)))
      goto out;
    if (!sst_filter_may_contain(part, (size_t)h.filter_len, r->f.filter_probes,
                                sst_filter_hash(key, key_len))) {
      rc = SST_ENOTFOUND;
      goto out;
    }
  }
  if ((rc = sst_table_block(r, (uint64_t)bi, &h, &b, 0)))
    goto out;
  uint8_t *keybuf = thread_keybuf();
  if (keybuf == NULL) {
    rc = ENOMEM;
    goto out;
  }
  sst_block_entry be;
  int found;
  rc = sst_block_seek(&b, key, key_len, keybuf, &be, &found);
  if (rc == 0 &&
      (!found || be.key_len != key_len || memcmp(keybuf, key, key_len) != 0))
    rc = SST_ENOTFOUND;
  if (rc == 0)
    rc = sst_table_entry(r, &h, &b, &be, e);
  if (rc == 0) {
    e->key = key;
    e->key_len = key_len;
  }
out:
  sst_thread_buf_done(SST_TBUF_BLOCK);
  return rc;
}

/* Gives the pages of [p, p + len) back to the kernel: they stay in the
 * page cache, but leave this process's resident set. */
static void release_pages(const uint8_t *p, uint64_t len) {
  static long page_size; /* threads may race to set it, to the same value */
  long page = __atomic_load_n(&page_size, __ATOMIC_RELAXED);
  if (page == 0) {
    page = sysconf(_SC_PAGESIZE);
    __atomic_store_n(&page_size, page, __ATOMIC_RELAXED);
  }
  uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
  uintptr_t end =
      ((uintptr_t)p + len + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
  madvise((void *)start, end - start, MADV_DONTNEED);
}

/* A fault maps the pages around it too (the kernel's fault-around, 64 KiB
 * by default), so what a block or filter read leaves resident is the
 * aligned window around it. */
#define FAULT_WINDOW ((uint64_t)64 << 10)

void sst_table_release(const sst_reader *r, uint64_t off, uint64_t len) {
  if (!r->o.release_pages || len == 0)
    return;
  uint64_t start = off & ~(FAULT_WINDOW - 1);
  uint64_t end = (off + len + FAULT_WINDOW - 1) & ~(FAULT_WINDOW - 1);
  if (end > r->size)
    end = r->size;
  release_pages(r->data + start, end - start);
}

/* With release_pages, what one value check can leave mapped at most (so
 * that many checks at once stay small). */
#define CHECK_STEP ((size_t)256 << 10)

/* A value's checksum from the file itself (pread_blocks), step by step. */
static int check_by_pread(const sst_reader *r, const sst_entry *e,
                          uint32_t *sum) {
  uint64_t len = e->value_len;
  size_t cap = len < CHECK_STEP ? (size_t)len : CHECK_STEP;
  uint8_t *buf = malloc(cap ? cap : 1);
  XXH3_state_t *state = XXH3_createState();
  int rc = buf && state ? 0 : ENOMEM;
  if (rc == 0)
    XXH3_64bits_reset(state);
  for (uint64_t off = 0; rc == 0 && off < len; off += cap) {
    size_t n = len - off < cap ? (size_t)(len - off) : cap;
    if ((rc = sst_src_pread(r->src, buf, n, e->value_offset + off)) == 0)
      XXH3_64bits_update(state, buf, n);
  }
  if (rc == 0)
    *sum = (uint32_t)XXH3_64bits_digest(state);
  XXH3_freeState(state);
  free(buf);
  return rc;
}

int sst_reader_value_pread(const sst_reader *r, const sst_entry *e, void *buf) {
  if (e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))
    return sst_vread_whole(r, e, buf);
  int rc = sst_src_pread(r->src, buf, (size_t)e->value_len, e->value_offset);
  if (rc)
    return rc;
  return sst_checksum(buf, (size_t)e->value_len) == e->value_checksum
             ? 0
             : SST_ECHECKSUM;
}

int sst_reader_value_check(const sst_reader *r, const sst_entry *e) {
  if (e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))
    return sst_vread_check(r, e, 0);
  uint64_t len = e->value_len;
  uint32_t sum;
  if (r->o.pread_blocks) {
    int rc = check_by_pread(r, e, &sum);
    if (rc)
      return rc;
  } else if (!r->o.release_pages || len <= CHECK_STEP) {
    sum = sst_checksum(r->data + e->value_offset, (size_t)len);
  } else {
    /* In steps, so a large value is never resident all at once. */
    XXH3_state_t *state = XXH3_createState();
    if (state == NULL)
      return ENOMEM;
    XXH3_64bits_reset(state);
    /* Steps end on aligned addresses: each release then covers only pages
     * read whole (releasing the page the next step starts in made the
     * kernel map far more again: 27 MiB instead of 3 for 64 MiB). */
    const uint8_t *q = r->data + e->value_offset, *end = q + len;
    while (q < end) {
      const uint8_t *next =
          (const uint8_t *)(((uintptr_t)q + CHECK_STEP) & ~(CHECK_STEP - 1));
      if (next > end)
        next = end;
      XXH3_64bits_update(state, q, (size_t)(next - q));
      release_pages(q, (uint64_t)(next - q));
      q = next;
    }
    sum = (uint32_t)XXH3_64bits_digest(state);
    XXH3_freeState(state);
  }
  sst_table_release(r, e->value_offset, len);
  return sum == e->value_checksum ? 0 : SST_ECHECKSUM;
}

int sst_reader_fd(const sst_reader *r) { return r->fd; }

int64_t sst_reader_mtime(const sst_reader *r) { return r->src->mtime_sec; }

int sst_name_is_url(const char *name) {
  return sst_src_is_url(name) || sst_src_is_s3(name);
}

int sst_reader_value(const sst_reader *r, const sst_entry *e,
                     const uint8_t **value) {
  if (e->flags & SST_FLAG_TOMBSTONE)
    return SST_ENOTFOUND;
  /* Values stored apart, and every value of a remote table, are read
   * into a buffer of the thread and checked there. */
  if ((e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) || r->data == NULL)
    return sst_vread_value(r, e, value); /* always checked */
  if (r->o.verify_values) {
    int rc = sst_reader_value_check(r, e);
    if (rc)
      return rc;
  }
  *value = r->data + e->value_offset;
  return 0;
}

int sst_reader_get(const sst_reader *r, const void *key, size_t key_len,
                   const uint8_t **value, uint64_t *value_len) {
  sst_entry e;
  int rc = sst_reader_find(r, key, key_len, &e);
  if (rc == 0)
    rc = sst_reader_value(r, &e, value);
  if (rc == 0)
    *value_len = e.value_len;
  return rc;
}
