/* format.h — the table file's fixed parts: header, footer, block handles.
 *
 *   offset 0      header (16 bytes)
 *   16            data: for each key block, its values, then the block
 *                 and the block's checksum (values precede their block)
 *   filter_off    filter: one Bloom partition per key block
 *   index_off     index block (first key of every key block) + checksum
 *   size - 128    footer (128 bytes)
 *
 * docs/FORMAT.md draws every byte; keep the two in step.
 */
#ifndef SST_FORMAT_H
#define SST_FORMAT_H

#include <stdint.h>

#include "sstable.h"

#define SST_MAGIC "SSTFSTBL"
#define SST_HEADER_SIZE 16u
#define SST_FOOTER_SIZE 128u
#define SST_TRAILER_SIZE 4u /* the checksum after every block */

typedef struct sst_footer {
  uint64_t index_off, index_len;   /* index block, checksum not included */
  uint64_t filter_off, filter_len; /* all partitions, checksums included */
  uint64_t key_count, tombstone_count;
  uint64_t key_bytes, value_bytes;
  uint64_t block_count;
  uint32_t block_keys, block_bytes, restart_interval;
  uint32_t filter_bits_per_key, filter_probes;
  uint32_t version;
} sst_footer;

/* Where a key block and its filter partition lie. */
typedef struct sst_handle {
  uint64_t values_off;             /* the block's values: [values_off, block_off) */
  uint64_t block_off, block_len;   /* block without its checksum */
  uint64_t filter_off, filter_len; /* absolute; partition with checksum */
} sst_handle;

void sst_header_encode(uint8_t out[SST_HEADER_SIZE]);
/* 0, SST_ENOTTABLE or SST_EVERSION. */
int sst_header_check(const uint8_t in[SST_HEADER_SIZE]);

void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE]);
/* Decodes and checks magic, version and checksum (not the positions):
 * 0, SST_ENOTTABLE, SST_EVERSION or SST_ECHECKSUM. */
int sst_footer_decode(const uint8_t in[SST_FOOTER_SIZE], sst_footer *f);

/* An index entry's payload. encode returns the end of what it wrote (at
 * most 50 bytes); decode returns 0 or SST_ECORRUPT. filter_off is stored
 * relative to the filter region.
 * encode REQUIRES values_off <= block_off and filter_base <= filter_off. */
uint8_t *sst_handle_encode(uint8_t *p, const sst_handle *h,
                           uint64_t filter_base);
int sst_handle_decode(const uint8_t *p, const uint8_t *limit, sst_handle *h,
                      uint64_t filter_base);

/* A data entry's payload: flags, value length, the value's offset from
 * the start of its block's values (values_off), value checksum.
 * encode REQUIRES flags within SST_FLAG_TOMBSTONE, and len 0 for a
 * tombstone (what decode accepts). */
typedef struct sst_value_ref {
  unsigned flags;
  uint64_t len, rel;
  uint32_t checksum;
} sst_value_ref;

uint8_t *sst_value_ref_encode(uint8_t *p, const sst_value_ref *v);
int sst_value_ref_decode(const uint8_t *p, const uint8_t *limit,
                         sst_value_ref *v);

#endif
