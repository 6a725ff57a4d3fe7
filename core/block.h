/* block.h — key blocks: prefix-compressed keys with restart points.
 *
 *   entry:    shared varint | unshared varint | payload_len varint
 *             | key[shared..shared+unshared) | payload[payload_len]
 *   ...
 *   restarts: u32 offset of entry 0, of entry R, of entry 2R, ...
 *   count:    u32 number of restarts
 *
 * An entry's key is the first `shared` bytes of the previous key followed
 * by its own bytes; an entry at a restart point has shared == 0, so a
 * lookup can binary-search the restarts and decode at most R entries. The
 * payload is opaque here: a value reference in key blocks, a block handle
 * in the index. In the file, each block is followed by its u32 checksum.
 */
#ifndef SST_BLOCK_H
#define SST_BLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct sst_block_builder {
  uint8_t *buf;
  size_t len, cap;
  uint32_t *restarts;
  size_t restart_count, restart_cap;
  uint32_t restart_interval, since_restart;
  uint8_t *last_key;
  size_t last_len, last_cap;
  uint32_t count;
} sst_block_builder;

void sst_block_builder_init(sst_block_builder *b, uint32_t restart_interval);
/* REQUIRES: key greater than the previous key of this block.
 * Returns 0 or ENOMEM. */
int sst_block_builder_add(sst_block_builder *b, const uint8_t *key,
                          size_t key_len, const uint8_t *payload,
                          size_t payload_len);
/* Bytes the block would take if finished now. */
size_t sst_block_builder_size(const sst_block_builder *b);
/* Appends the restart array; the block stays valid until reset. Returns 0
 * or ENOMEM. */
int sst_block_builder_finish(sst_block_builder *b, const uint8_t **data,
                             size_t *len);
void sst_block_builder_reset(sst_block_builder *b);
void sst_block_builder_free(sst_block_builder *b);

/* A block being read. Nothing in it is trusted: every decode checks its
 * bounds against the block. */
typedef struct sst_block {
  const uint8_t *data;
  size_t entries_len; /* entries occupy [0, entries_len) */
  const uint8_t *restarts;
  uint32_t restart_count;
  /* A copy of the block read from the file, when the reader reads blocks
   * rather than use its mapping (option pread_blocks); the block's owner
   * frees it. Zero-initialise a block to start without one. */
  uint8_t *own;
  size_t own_cap;
} sst_block;

/* Frames a block of `len` bytes. 0 or SST_ECORRUPT. */
int sst_block_open(sst_block *b, const uint8_t *data, size_t len);

/* One decoded entry. key points into `keybuf` (SST_KEY_MAX bytes, owned
 * by the caller) which must hold the previous entry's key on entry. */
typedef struct sst_block_entry {
  size_t off, next; /* this entry's offset and the next one's */
  size_t key_len;
  const uint8_t *payload;
  size_t payload_len;
} sst_block_entry;

/* Decodes the entry at e->off, given that keybuf holds the previous key
 * of length prev_len. 0 or SST_ECORRUPT. */
int sst_block_decode(const sst_block *b, uint8_t *keybuf, size_t prev_len,
                     sst_block_entry *e);

/* The key of restart point i, in place. 0 or SST_ECORRUPT. */
int sst_block_restart_key(const sst_block *b, uint32_t i, const uint8_t **key,
                          size_t *key_len);

/* The same, with the entry's payload (payload may be NULL). */
int sst_block_restart_entry(const sst_block *b, uint32_t i, const uint8_t **key,
                            size_t *key_len, const uint8_t **payload,
                            size_t *payload_len);

/* Positions e at the first entry whose key is >= key; sets *found to 0
 * when every key of the block is smaller (e is then past the end). keybuf
 * receives that entry's key. 0 or SST_ECORRUPT. */
int sst_block_seek(const sst_block *b, const uint8_t *key, size_t key_len,
                   uint8_t *keybuf, sst_block_entry *e, int *found);

/* Offset of restart point i, bounds-checked. 0 or SST_ECORRUPT. */
int sst_block_restart_off(const sst_block *b, uint32_t i, size_t *off);

#endif
