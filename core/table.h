/* table.h — the reader's internals, shared by reader.c, cursor.c and
 * verify.c. */
#ifndef SST_TABLE_H
#define SST_TABLE_H

#include <assert.h>

#include "block.h"
#include "format.h"
#include "internal.h"
#include "source.h"

struct sst_reader {
  char *path;
  sst_src *src;        /* every read that is not through the mapping */
  int fd;              /* a local file's descriptor (src->fd), else -1 */
  const uint8_t *data; /* the whole file, mapped read-only; NULL when remote */
  uint64_t size;
  /* A remote table's metadata (properties, index, footer), from meta_off
   * to the end of the file, held in memory since nothing is mapped. */
  uint8_t *meta;
  uint64_t meta_off;
  sst_footer f;
  sst_block index; /* one entry per key block: its first key and handle */
  sst_reader_options o;
  /* One byte per key block, set once its checksums have been found good
   * (CHECKED_BLOCK, CHECKED_FILTER), so hot blocks are hashed once rather
   * than on every lookup. Updated with relaxed atomics: a race only means
   * a block is checked twice. */
  uint8_t *checked;
  /* The index searched in memory: for each key block, 8 bytes of its first
   * key (big-endian, zero-padded) after `common`, the prefix every first
   * key shares. A lookup binary-searches this dense array and touches the
   * mapped index only to break ties. Eight bytes per block, built at open. */
  uint64_t *heads;
  /* Every block's handle, decoded and checked at open, in 24 bytes: the
   * rest follows from the layout, which open checks too (each block's
   * values start where the previous block's end; filter partitions follow
   * one another). */
  struct sst_block_ref {
    uint64_t values_off;
    uint64_t block_off;
    uint32_t block_len;
    uint32_t filter_rel; /* partition offset - filter_off */
  } * refs;
  /* SST_FEATURE_KEYZ: for each key block, where the positions of its
   * entries start and its decompressed length (0: stored as it is). */
  struct sst_block_z {
    uint64_t pos;
    uint32_t raw_len;
  } * kz;
  uint64_t pos_end; /* every entry's position is below it */
  const uint8_t *common;
  size_t common_len;
  sst_attr *dict; /* version 2: the metadata dictionary */
  uint32_t dict_count;
  /* SST_FEATURE_VALUES: the value blocks, the chunk size, the
   * compression dictionary and the cache of decompressed pieces. */
  sst_vblock *vblocks;
  uint64_t vb_count;
  uint32_t chunk_size;
  struct ZSTD_DDict_s *ddict;
  struct sst_vcache *vcache;
  uint32_t zdict_len;
  uint64_t dedup_values, dedup_bytes; /* the statistics section */
};

#define CHECKED_BLOCK 1u
#define CHECKED_FILTER 2u

/* The handle of key block i, checked against the file's layout: values
 * and block lie in the data region, the filter partition in the filter
 * region. Also returns the block's first key (in place). */
int sst_table_handle(const sst_reader *r, uint64_t i, sst_handle *h,
                     const uint8_t **first_key, size_t *first_len);

/* Block i's handle, from what open decoded and checked.
 * REQUIRES i < block_count. */
static inline void sst_table_cached_handle(const sst_reader *r, uint64_t i,
                                           sst_handle *h) {
  assert(i < r->f.block_count);
  const struct sst_block_ref *b = &r->refs[i];
  h->block_off = b->block_off;
  h->block_len = b->block_len;
  h->values_off = b->values_off;
  if (r->f.version == 1)
    h->values_len = b->block_off - b->values_off;
  else
    h->values_len =
        (i + 1 < r->f.block_count ? b[1].values_off : r->f.keys_off) -
        b->values_off;
  h->raw_len = r->kz ? r->kz[i].raw_len : 0;
  h->pos = r->kz ? r->kz[i].pos : b->block_off;
  h->filter_off = r->f.filter_off + b->filter_rel;
  h->filter_len =
      (i + 1 < r->f.block_count ? b[1].filter_rel : r->f.filter_len) -
      b->filter_rel;
}

/* Where the positions of block i's entries start.
 * REQUIRES i < block_count. */
static inline uint64_t sst_table_block_pos(const sst_reader *r, uint64_t i) {
  assert(i < r->f.block_count);
  return r->kz ? r->kz[i].pos : r->refs[i].block_off;
}

/* The last block whose positions start at or before pos (blocks lie in
 * order), or -1 when pos is before them. */
int64_t sst_table_block_at(const sst_reader *r, uint64_t pos);

/* Index of the last block whose first key is <= key, or -1 if key is
 * before the first block. Returns 0 or SST_ECORRUPT. */
int sst_table_find_block(const sst_reader *r, const uint8_t *key,
                         size_t key_len, int64_t *block);

/* Frames key block i, whose handle is h, after checking its checksum
 * (once per reader, or every time when `always` is set) and, when it is
 * stored compressed, decompressing it into b->own.
 * REQUIRES i < block_count. */
int sst_table_block(const sst_reader *r, uint64_t i, const sst_handle *h,
                    sst_block *b, int always);

/* With the release_pages option, gives the pages around [off, off + len)
 * back to the kernel (they stay in the page cache). */
void sst_table_release(const sst_reader *r, uint64_t off, uint64_t len);

/* Checks the filter partition of block i (once per reader).
 * REQUIRES i < block_count. */
int sst_table_filter(const sst_reader *r, uint64_t i, const sst_handle *h,
                     const uint8_t *part);

/* Decodes an entry's value reference into e (flags, length, offset,
 * checksum, position, metadata), checking it against the block's handle
 * and the table. be comes from block b. */
int sst_table_entry(const sst_reader *r, const sst_handle *h,
                    const sst_block *b, const sst_block_entry *be,
                    sst_entry *e);

/* vread.c: the properties sections of value blocks and of the
 * dictionary (0, SST_ECORRUPT, SST_EVERSION for an unknown codec,
 * ENOMEM); the cache; whole values stored apart (PACKED or CHUNKED):
 * read and checked into buf, checked only, or read into a buffer of the
 * calling thread. */
int sst_vread_section(sst_reader *r, const uint8_t *p, const uint8_t *limit);
int sst_vread_dict(sst_reader *r, const uint8_t *p, size_t len);
/* The reader's cache of decompressed pieces, bounded by cap bytes but
 * with room for at least two of the table's largest value blocks or
 * chunks (a piece larger than the bound is never kept, and reads of the
 * small values of one block would each decompress it again). */
int sst_vcache_new(sst_reader *r, uint64_t cap);
void sst_vcache_free(struct sst_vcache *c);
int sst_vread_whole(const sst_reader *r, const sst_entry *e, void *buf);
/* fresh: every piece read from the file again, not from the cache. */
int sst_vread_check(const sst_reader *r, const sst_entry *e, int fresh);
int sst_vread_check_block(const sst_reader *r, uint64_t i);
/* A chunked value's chunk table against the entry's checksum: what a
 * read of its chunks then trusts (each chunk is checked as it is read). */
int sst_vread_check_table(const sst_reader *r, const sst_entry *e);
int sst_vread_value(const sst_reader *r, const sst_entry *e,
                    const uint8_t **value);
/* Decoded key block i (handle h, raw_len bytes) in the cache: copied
 * into dst on a hit (1), or 0; put keeps a copy of it. */
int sst_vcache_get_keys(const sst_reader *r, uint64_t i, const sst_handle *h,
                        uint8_t *dst);
void sst_vcache_put_keys(const sst_reader *r, uint64_t i, const sst_handle *h,
                         const uint8_t *src);
/* Decompresses src (zstd, no dictionary) into exactly dst_len bytes:
 * 0, SST_ECORRUPT or ENOMEM. */
int sst_vread_unzip(void *dst, size_t dst_len, const void *src, size_t src_len);
/* Chunks of a value of len bytes. */
uint64_t sst_chunk_count(uint64_t len, uint32_t chunk);

/* End of the value region: keys_off (version 2) or filter_off. */
static inline uint64_t sst_table_values_end(const sst_reader *r) {
  return r->f.version == 1 ? r->f.filter_off : r->f.keys_off;
}

#endif
