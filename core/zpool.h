/* zpool.h — compresses a writer's pieces (value blocks, chunks) on
 * worker threads and hands them back in the order they were submitted.
 * Not installed.
 *
 * The writer submits a piece, goes on filling the next one, and takes the
 * oldest finished piece when it must write it (to learn its file offset)
 * or when every slot is busy. A piece is compressed alone, with the level
 * and the dictionary given at submission, so the bytes do not depend on
 * the number of threads: a table is the same with one thread or eight.
 *
 * With 0 threads a piece is compressed in the submitting thread, at
 * submission. Not thread-safe: one submitting thread.
 */
#ifndef SST_ZPOOL_H
#define SST_ZPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

typedef struct sst_zpool sst_zpool;

/* A finished piece, as sst_zpool_take gives it. */
typedef struct sst_zpiece {
  const uint8_t *raw; /* the submitted bytes */
  size_t len;
  const uint8_t *out; /* what to store: compressed bytes, or raw */
  size_t out_len;
  int is_raw;          /* compression did not shrink it */
  uint32_t sum;        /* checksum of the raw bytes */
  uint32_t stored_sum; /* checksum of the stored bytes */
  uint64_t tag;        /* the caller's, from submission */
} sst_zpiece;

/* A pool of `threads` workers (0: none) for pieces of at most piece_max
 * bytes, compressed at `level`. 0 or ENOMEM, or an errno from starting a
 * thread. */
int sst_zpool_new(unsigned threads, int level, size_t piece_max,
                  sst_zpool **out);
/* Waits for the workers to stop and frees everything. NULL is allowed. */
void sst_zpool_free(sst_zpool *p);

/* 1 when every slot holds a piece not yet taken: take one first. */
int sst_zpool_full(const sst_zpool *p);
/* Pieces submitted and not yet taken. */
size_t sst_zpool_pending(const sst_zpool *p);
/* Copies raw[0, len) into a free slot and has it compressed with cd
 * (NULL: none; it must outlive the piece). REQUIRES !sst_zpool_full,
 * len <= piece_max. */
void sst_zpool_submit(sst_zpool *p, const void *raw, size_t len,
                      const ZSTD_CDict *cd, uint64_t tag);
/* Waits until no worker is compressing a piece (after an error, before
 * freeing a dictionary that pending pieces name). */
void sst_zpool_quiesce(sst_zpool *p);
/* Waits for the oldest piece not yet taken and fills *piece; its bytes
 * stay valid until the next submit or take. REQUIRES pending > 0.
 * 0, or SST_EINVAL when zstd failed on it (its message in *why). */
int sst_zpool_take(sst_zpool *p, sst_zpiece *piece, const char **why);

#endif
