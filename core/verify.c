/* verify.c — reads every byte of a table and checks it.
 *
 * Beyond the checksums, verify checks that the regions tile the file with
 * no gap and no overlap (values, then their block, block after block; the
 * filter partitions in block order), that keys strictly increase, that
 * every restart point is an entry with a whole key, and that the footer's
 * counts match what was found. So a flipped byte anywhere in a table is
 * either caught by a checksum or breaks one of these. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "table.h"

typedef struct verify_state {
  const sst_reader *r;
  sst_error *err;
  uint8_t *key, *prev;
  size_t prev_len;
  uint64_t entries, tombstones, key_bytes, value_bytes;
  uint64_t data_pos, filter_pos;
  uint64_t block_pos; /* version 2: where the next key block must start */
  int v1, meta_seen, xattrs_seen, values_seen;
  uint64_t vb_next; /* the next value block the value region reaches */
  uint64_t *hashes;
  size_t hash_count, hash_cap;
} verify_state;

static int bad_block(verify_state *s, uint64_t i, const sst_handle *h, int code,
                     const char *what) {
  return sst_error_set(s->err, code, "%s: key block %llu at offset %llu: %s",
                       s->r->path, (unsigned long long)i,
                       (unsigned long long)h->block_off, what);
}

static int bad_key(verify_state *s, const uint8_t *key, size_t len,
                   uint64_t off, int code, const char *what) {
  char shown[128];
  sst_key_render(key, len, shown, sizeof shown);
  return sst_error_set(s->err, code, "%s: key '%s' at position %llu: %s",
                       s->r->path, shown, (unsigned long long)off, what);
}

/* Value blocks lie between values, where the writer closed them: the
 * region's walk steps over those that start where it stands, until it
 * stands at target. */
static void skip_vblocks(verify_state *s, uint64_t target) {
  const sst_reader *r = s->r;
  while (s->data_pos != target && s->vb_next < r->vb_count &&
         r->vblocks[s->vb_next].off == s->data_pos)
    s->data_pos += r->vblocks[s->vb_next++].stored;
}

/* Restart points must be entry starts, strictly increasing; the caller
 * walks entries in order and advances *next_restart. */
static int check_entry(verify_state *s, uint64_t bi, const sst_handle *h,
                       const sst_block *b, const sst_block_entry *be,
                       uint32_t *next_restart) {
  size_t roff;
  if (*next_restart < b->restart_count &&
      sst_block_restart_off(b, *next_restart, &roff) == 0 && roff == be->off) {
    const uint8_t *k;
    size_t kl;
    if (sst_block_restart_key(b, *next_restart, &k, &kl))
      return bad_block(s, bi, h, SST_ECORRUPT, "bad restart point");
    (*next_restart)++;
  }
  if (s->entries > 0 &&
      sst_key_cmp(s->key, be->key_len, s->prev, s->prev_len) <= 0)
    return bad_key(s, s->key, be->key_len, h->pos + be->off, SST_ECORRUPT,
                   "keys out of order");
  sst_entry e;
  if (sst_table_entry(s->r, h, b, be, &e))
    return bad_key(s, s->key, be->key_len, h->pos + be->off, SST_ECORRUPT,
                   "bad value reference");
  /* A packed value lies in its value block, not in the walk; an empty
   * one takes no bytes (a compressed table places it at its block's
   * range start, before value blocks written later). */
  int shared =
      (e.flags & (SST_FLAG_SHARED | SST_FLAG_PACKED)) != 0 || e.value_len == 0;
  if (e.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))
    s->values_seen = 1;
  if (!shared)
    skip_vblocks(s, e.value_offset);
  if (!shared && e.value_offset != s->data_pos)
    return bad_key(s, s->key, be->key_len, h->pos + be->off, SST_ECORRUPT,
                   "value not where the layout puts it");
  if (e.flags & SST_FLAG_META) {
    s->meta_seen = 1;
    if (e.meta.xattr_len)
      s->xattrs_seen = 1;
  }
  e.key = s->key;
  /* Compressed pieces are read and checked again, not taken from the
   * cache of an earlier read. A packed value without a checksum of its
   * own has nothing to check but its block, which is checked once, after
   * the key blocks (decompressing its block for each of its values made
   * verify of 100,000 small files take 12 s). */
  int sumless = sst_ref_sumless(s->r->f.features, e.flags);
  if (!sumless && ((e.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))
                       ? sst_vread_check(s->r, &e, 1)
                       : sst_reader_value_check(s->r, &e)))
    return bad_key(s, s->key, be->key_len, e.value_offset, SST_ECHECKSUM,
                   "value checksum mismatch");
  if (!shared)
    s->data_pos += (e.flags & SST_FLAG_CHUNKED) ? e.value_stored : e.value_len;
  s->entries++;
  s->tombstones += (e.flags & SST_FLAG_TOMBSTONE) != 0;
  s->key_bytes += be->key_len;
  s->value_bytes += e.value_len;
  memcpy(s->prev, s->key, be->key_len);
  s->prev_len = be->key_len;
  if (s->r->f.filter_probes) {
    if (s->hash_count == s->hash_cap) {
      size_t cap = s->hash_cap ? s->hash_cap * 2 : 256;
      uint64_t *p = realloc(s->hashes, cap * sizeof *p);
      if (p == NULL)
        return sst_error_set(s->err, ENOMEM, "%s: out of memory", s->r->path);
      s->hashes = p;
      s->hash_cap = cap;
    }
    s->hashes[s->hash_count++] = sst_filter_hash(s->key, be->key_len);
  }
  return 0;
}

static int check_filter(verify_state *s, uint64_t bi, const sst_handle *h) {
  const sst_reader *r = s->r;
  if (r->f.filter_probes == 0)
    return h->filter_len == 0
               ? 0
               : bad_block(s, bi, h, SST_ECORRUPT, "filter without a filter");
  if (h->filter_off != s->filter_pos)
    return bad_block(s, bi, h, SST_ECORRUPT, "filter partition misplaced");
  const uint8_t *part;
  uint8_t *own = NULL;
  if (r->data != NULL) {
    part = r->data + h->filter_off;
  } else { /* a remote table: read it */
    int rc;
    if ((own = malloc((size_t)h->filter_len)) == NULL)
      return bad_block(s, bi, h, ENOMEM, "out of memory");
    if ((rc = sst_src_pread(r->src, own, (size_t)h->filter_len,
                            h->filter_off)) != 0) {
      free(own);
      return bad_block(s, bi, h, rc, sst_strerror(rc));
    }
    part = own;
  }
  int rc = 0;
  if (sst_filter_check(part, (size_t)h->filter_len))
    rc = bad_block(s, bi, h, SST_ECHECKSUM,
                   "filter partition checksum mismatch");
  for (size_t i = 0; rc == 0 && i < s->hash_count; i++)
    if (!sst_filter_may_contain(part, (size_t)h->filter_len, r->f.filter_probes,
                                s->hashes[i]))
      rc = bad_block(s, bi, h, SST_ECORRUPT, "filter partition misses a key");
  free(own);
  if (rc == 0)
    s->filter_pos += h->filter_len;
  return rc;
}

/* check_block, with the block framed in b (whose buffer the caller
 * frees: a remote table's blocks are read into it). */
static int check_block_in(verify_state *s, uint64_t bi, sst_block *b) {
  const sst_reader *r = s->r;
  sst_handle h;
  const uint8_t *first;
  size_t first_len;
  if (sst_table_handle(r, bi, &h, &first, &first_len))
    return sst_error_set(s->err, SST_ECORRUPT,
                         "%s: index entry %llu: malformed block handle",
                         r->path, (unsigned long long)bi);
  h.pos = sst_table_block_pos(r, bi); /* not in the index: from open */
  if (h.values_off != s->data_pos)
    return bad_block(s, bi, &h, SST_ECORRUPT, "values misplaced");
  int rc = sst_table_block(r, bi, &h, b, 1);
  if (rc)
    return bad_block(s, bi, &h, rc,
                     rc == SST_ECHECKSUM ? "checksum mismatch" : "malformed");
  if (b->entries_len == 0)
    return bad_block(s, bi, &h, SST_ECORRUPT, "empty block");
  s->hash_count = 0;
  uint32_t next_restart = 0;
  sst_block_entry be = {0};
  size_t prev_len = 0;
  for (be.off = 0; be.off < b->entries_len; be.off = be.next) {
    if (sst_block_decode(b, s->key, prev_len, &be))
      return bad_block(s, bi, &h, SST_ECORRUPT, "malformed entry");
    if (be.off == 0 &&
        (be.key_len != first_len || memcmp(s->key, first, first_len) != 0))
      return bad_block(s, bi, &h, SST_ECORRUPT,
                       "first key differs from the index");
    if ((rc = check_entry(s, bi, &h, b, &be, &next_restart)))
      return rc;
    prev_len = be.key_len;
  }
  if (next_restart != b->restart_count)
    return bad_block(s, bi, &h, SST_ECORRUPT, "restart points malformed");
  if (s->v1) {
    if (s->data_pos != h.block_off)
      return bad_block(s, bi, &h, SST_ECORRUPT, "gap before the block");
    s->data_pos = h.block_off + h.block_len + SST_TRAILER_SIZE;
  } else {
    skip_vblocks(s, h.values_off + h.values_len);
    if (s->data_pos != h.values_off + h.values_len)
      return bad_block(s, bi, &h, SST_ECORRUPT,
                       "values do not fill the block's value range");
    if (s->block_pos != h.block_off)
      return bad_block(s, bi, &h, SST_ECORRUPT, "key block misplaced");
    s->block_pos = h.block_off + h.block_len + SST_TRAILER_SIZE;
  }
  return check_filter(s, bi, &h);
}

static int check_block(verify_state *s, uint64_t bi) {
  sst_block b = {0};
  int rc = check_block_in(s, bi, &b);
  free(b.own);
  return rc;
}

/* Index entries must tile the index block, one per restart point. */
static int check_index(verify_state *s) {
  const sst_block *ix = &s->r->index;
  sst_block_entry be;
  for (uint32_t i = 0; i < ix->restart_count; i++) {
    size_t off, next = ix->entries_len;
    if (sst_block_restart_off(ix, i, &off) ||
        (i + 1 < ix->restart_count && sst_block_restart_off(ix, i + 1, &next)))
      return SST_ECORRUPT;
    be.off = off;
    if (sst_block_decode(ix, s->key, 0, &be) || be.next != next)
      return SST_ECORRUPT;
  }
  return 0;
}

int sst_reader_verify(const sst_reader *r, sst_error *err) {
  verify_state s = {.r = r,
                    .err = err,
                    .data_pos = SST_HEADER_SIZE,
                    .filter_pos = r->f.filter_off,
                    .block_pos = r->f.keys_off,
                    .v1 = r->f.version == 1};
  int rc = 0;
  if ((s.key = malloc(SST_KEY_MAX)) == NULL ||
      (s.prev = malloc(SST_KEY_MAX)) == NULL) {
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", r->path);
    goto done;
  }
  if (check_index(&s)) {
    rc = sst_error_set(err, SST_ECORRUPT, "%s: index block malformed", r->path);
    goto done;
  }
  for (uint64_t i = 0; i < r->f.block_count && rc == 0; i++)
    rc = check_block(&s, i);
  if (rc)
    goto done;
  for (uint64_t i = 0; i < r->vb_count && rc == 0; i++)
    if ((rc = sst_vread_check_block(r, i)) != 0)
      rc = sst_error_set(err, rc, "%s: value block %llu at offset %llu: %s",
                         r->path, (unsigned long long)i,
                         (unsigned long long)r->vblocks[i].off,
                         sst_strerror(rc));
  if (rc)
    goto done;
  skip_vblocks(&s, sst_table_values_end(r));
  uint64_t values_end = sst_table_values_end(r);
  if (s.data_pos != values_end)
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: %llu unaccounted bytes before the %s", r->path,
                       (unsigned long long)(values_end - s.data_pos),
                       s.v1 ? "filter" : "key blocks");
  else if (!s.v1 && s.block_pos != r->f.filter_off)
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: key blocks do not fill the key region", r->path);
  else if (s.filter_pos != r->f.filter_off + r->f.filter_len)
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: filter region does not match its partitions",
                       r->path);
  else if (s.entries != r->f.key_count ||
           s.tombstones != r->f.tombstone_count ||
           s.key_bytes != r->f.key_bytes || s.value_bytes != r->f.value_bytes)
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: footer counts do not match the table", r->path);
  else if (s.meta_seen != ((r->f.features & SST_FEATURE_META) != 0))
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: footer's metadata flag does not match the table",
                       r->path);
  else if (s.vb_next != r->vb_count)
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: value block %llu is not where the layout puts it",
                       r->path, (unsigned long long)s.vb_next);
  else if (s.values_seen != ((r->f.features & SST_FEATURE_VALUES) != 0))
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: footer's value-block flag does not match the table",
                       r->path);
  else if (s.xattrs_seen != ((r->f.features & SST_FEATURE_XATTRS) != 0))
    rc = sst_error_set(err, SST_ECORRUPT,
                       "%s: footer's xattrs flag does not match the table",
                       r->path);
done:
  free(s.key);
  free(s.prev);
  free(s.hashes);
  return rc;
}
