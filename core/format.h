/* format.h — the table file's fixed parts: header, footer, block handles.
 *
 * Version 2 (written):
 *   offset 0      header (16 bytes)
 *   16            values, in key order (a shared value once)
 *   keys_off      key blocks, each followed by its checksum
 *   filter_off    filter: one Bloom partition per key block
 *   props_off     properties block: tagged sections + checksum (if any)
 *   index_off     index block (first key of every key block) + checksum
 *   size - 128    footer (128 bytes)
 * Version 1 (read): for each key block its values, then the block and its
 * checksum, from 16 to filter_off; no dictionary.
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
  /* Version 2: */
  uint32_t features;  /* SST_FEATURE_* */
  uint64_t keys_off;  /* first key block (= end of the values) */
  uint64_t props_off; /* properties block (= index_off when none) */
} sst_footer;

/* Largest decompressed key block a reader accepts; the writer stores a
 * larger one as it is. */
#define SST_KEYZ_RAW_MAX ((uint64_t)4 << 20)

/* Where a key block and its filter partition lie. */
typedef struct sst_handle {
  uint64_t values_off, values_len; /* the block's values */
  uint64_t block_off, block_len;   /* block without its checksum */
  /* SST_FEATURE_KEYZ: 0 when the block is stored as it is, else its
   * length once decompressed (block_len is then the stored length). */
  uint64_t raw_len;
  /* Where the positions of its entries start: block_off, or in a table
   * with SST_FEATURE_KEYZ, the block's offset in the key region as if
   * every block were stored decompressed. Not stored in the index. */
  uint64_t pos;
  uint64_t filter_off, filter_len; /* absolute; partition with checksum */
} sst_handle;

void sst_header_encode(uint8_t out[SST_HEADER_SIZE]);
/* 0, SST_ENOTTABLE, SST_ECHECKSUM or SST_EVERSION; *version is 1 or 2. */
int sst_header_check(const uint8_t in[SST_HEADER_SIZE], uint32_t *version);

void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE]);
/* Decodes and checks magic, version and checksum (not the positions):
 * 0, SST_ENOTTABLE, SST_EVERSION or SST_ECHECKSUM. */
int sst_footer_decode(const uint8_t in[SST_FOOTER_SIZE], sst_footer *f);

/* An index entry's payload. encode returns the end of what it wrote (at
 * most 70 bytes); decode returns 0 or SST_ECORRUPT. filter_off is stored
 * relative to the filter region; in version 2, block_off relative to
 * keys_off (keys_base; 0 for version 1, where the block follows its
 * values).
 * encode REQUIRES keys_base <= block_off and filter_base <= filter_off. */
uint8_t *sst_handle_encode(uint8_t *p, uint32_t version, unsigned features,
                           const sst_handle *h, uint64_t keys_base,
                           uint64_t filter_base);
int sst_handle_decode(const uint8_t *p, const uint8_t *limit, uint32_t version,
                      unsigned features, sst_handle *h, uint64_t keys_base,
                      uint64_t filter_base);

/* A data entry's payload: flags, value length, the value's offset from
 * the start of its block's values (values_off; with SST_FLAG_SHARED the
 * absolute offset), value checksum; in version 2 then the metadata when
 * SST_FLAG_META is set. Tombstones have len 0 and no other flag. */
typedef struct sst_value_ref {
  unsigned flags;
  uint64_t len, rel;
  uint64_t block;  /* SST_FLAG_PACKED: value block; rel is in its bytes */
  uint64_t stored; /* SST_FLAG_CHUNKED: stored bytes, chunk table included */
  uint32_t checksum;
  /* Version 2, SST_FLAG_META: */
  unsigned type;
  uint32_t mode, uid, gid; /* when attr == 0 */
  uint64_t attr;           /* dictionary entry + 1; 0: mode/uid/gid inline */
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint64_t link_id;
  uint32_t nlink;
  uint32_t xattr_len;
  size_t xattr_pos;      /* decode: offset of the xattr bytes in the payload */
  const uint8_t *xattrs; /* encode */
} sst_value_ref;

/* Longest encoded value reference, attributes not included. */
#define SST_VALUE_REF_MAX 96

/* encode REQUIRES a valid ref for the version (what decode accepts) and
 * room for SST_VALUE_REF_MAX + xattr_len bytes. */
uint8_t *sst_value_ref_encode(uint8_t *p, uint32_t version, unsigned features,
                              const sst_value_ref *v);
int sst_value_ref_decode(const uint8_t *p, const uint8_t *limit,
                         uint32_t version, unsigned features, sst_value_ref *v);

/* Whether an entry with these flags stores no checksum of its own: a
 * packed value in a table with SST_FEATURE_BLOCKSUM. */
static inline int sst_ref_sumless(unsigned features, unsigned flags) {
  return (features & SST_FEATURE_BLOCKSUM) && (flags & SST_FLAG_PACKED);
}

/* Metadata bits (the byte after the checksum of a META entry). */
#define SST_MB_TYPE 0x03u
#define SST_MB_NSEC 0x04u
#define SST_MB_LINK 0x08u
#define SST_MB_XATTR 0x10u
#define SST_MB_INLINE 0x20u

/* Sections of the properties block (tag varint, length varint, body). A
 * reader skips a tag it does not know: what it must understand is
 * announced by a footer feature bit. */
#define SST_PROP_ATTRS 1u  /* the metadata dictionary */
#define SST_PROP_VALUES 2u /* codec, chunk size, the value blocks */
#define SST_PROP_DICT 3u   /* the compression dictionary */
#define SST_PROP_STATS 4u  /* values stored once for several keys */

/* Codecs of value blocks and chunks. */
#define SST_CODEC_NONE 0u
#define SST_CODEC_ZSTD 1u

/* A chunked value ends with its chunk table: for each chunk, u64 end
 * (offset from the value's first stored byte to the end of the chunk's
 * stored bytes; bit 63 set when the chunk is stored raw), u32 checksum of
 * its stored bytes (checked before they are decompressed) and u32
 * checksum of its bytes as served. */
#define SST_CHUNK_ENTRY 16u
#define SST_CHUNK_RAW (1ull << 63)
/* Bounds a reader accepts. */
#define SST_CHUNK_MIN (4u << 10)
#define SST_CHUNK_MAX (4u << 20)
#define SST_VBLOCK_MAX (4u << 20) /* decompressed bytes of a value block */

/* A value block as the properties block lists it. */
typedef struct sst_vblock {
  uint64_t off;        /* file offset */
  uint32_t stored;     /* bytes in the file */
  uint32_t raw_len;    /* decompressed bytes */
  uint32_t checksum;   /* of the decompressed bytes */
  uint32_t stored_sum; /* of the stored bytes */
  uint32_t raw;        /* 1: stored uncompressed */
} sst_vblock;

/* The metadata dictionary: (mode, uid, gid) triples entries refer to. */
typedef struct sst_attr {
  uint32_t mode, uid, gid;
} sst_attr;

/* The most dictionary entries a writer makes; later triples go inline. */
#define SST_DICT_MAX 4096u

#endif
