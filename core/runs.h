/* runs.h — the sorter's sorted runs: their format, in memory or in a
 * temporary file; reading them back, along with sorted record arrays and
 * tables; and the merge of several into one stream. Not installed.
 *
 * A run is a sequence of records in strictly increasing key order:
 *
 *   flags u8 | key_len varint | value_len varint | key | value
 *
 * flags is 0 or SST_FLAG_TOMBSTONE.
 */
#ifndef SST_RUNS_H
#define SST_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "sstable.h"

/* A record of a batch being sorted: 32 bytes, the key and value in the
 * batch's arena. */
typedef struct sst_rec {
  uint64_t head;      /* 8 key bytes from the sort's depth, big-endian */
  const uint8_t *key; /* the value follows the key */
  uint64_t value_len;
  uint32_t key_len; /* | SST_REC_TOMBSTONE */
  uint32_t seq;     /* arrival within the batch */
} sst_rec;

#define SST_REC_LEN_MASK 0x7fffffffu
#define SST_REC_TOMBSTONE 0x80000000u

static inline size_t sst_rec_key_len(const sst_rec *r) {
  return r->key_len & SST_REC_LEN_MASK;
}

/* The bytes a record takes in a run. */
size_t sst_run_record_size(size_t key_len, uint64_t value_len);

/* Where a run is written: a temporary file through a buffer, or a buffer
 * of memory sized beforehand (sst_run_record_size of every record). */
typedef struct sst_run_out {
  int fd; /* -1 for memory */
  int err;
  uint8_t *buf;
  size_t len, cap;
} sst_run_out;

/* A run to an unlinked temporary file in temp_dir (NULL: $TMPDIR, else
 * /tmp). 0 or an errno value. */
int sst_run_out_file(sst_run_out *o, const char *temp_dir);
/* A run into buf[0, cap), which the caller owns. */
void sst_run_out_memory(sst_run_out *o, uint8_t *buf, size_t cap);
void sst_run_put(sst_run_out *o, unsigned flags, const uint8_t *key,
                 size_t key_len, const uint8_t *value, uint64_t value_len);
/* Writes what is buffered. For a file, *fd then owns the run (the caller
 * closes it); for memory, *fd is -1. Either way the run_out is released.
 * 0 or the first error. */
int sst_run_out_end(sst_run_out *o, int *fd);

/* One sorted, duplicate-free input of a merge. */
typedef enum {
  SST_SRC_RECS,  /* a sorted array of sst_rec */
  SST_SRC_MEM,   /* a run in memory */
  SST_SRC_FILE,  /* a run in a file */
  SST_SRC_TABLE, /* a table: keys, values, tombstones */
} sst_source_kind;

typedef struct sst_source {
  sst_source_kind kind;
  size_t rank; /* set by the merge: newer sources rank higher */
  int done;
  unsigned flags;
  const uint8_t *key, *value;
  size_t key_len;
  uint64_t value_len;
  /* SST_SRC_RECS */
  const sst_rec *recs;
  size_t count, pos;
  /* SST_SRC_MEM, and SST_SRC_FILE's buffer */
  const uint8_t *p, *end;
  /* SST_SRC_FILE */
  int fd;
  uint8_t *buf, *rec;
  size_t buf_len, buf_pos, rec_cap;
  uint64_t file_pos;
  /* SST_SRC_TABLE */
  const sst_reader *r;
  sst_iter *it;
  const sst_entry *entry; /* the iterator's, until it moves */
  int deferred;           /* its value is compressed: read when written */
  int started;
  uint64_t released; /* value bytes before this were given back */
} sst_source;

void sst_source_recs(sst_source *src, const sst_rec *recs, size_t count);
void sst_source_memory(sst_source *src, const uint8_t *data, size_t len);
/* The run in fd, which stays the caller's. 0 or ENOMEM. */
int sst_source_file(sst_source *src, int fd);
/* The table r, read through an iterator of its own. 0 or ENOMEM. */
int sst_source_table(sst_source *src, const sst_reader *r);
void sst_source_close(sst_source *src);

/* Merges srcs[0, n), oldest first: of equal keys only the entry of the
 * newest source goes on, to the writer w or (w NULL, and no table among
 * the sources) the run o. 0, or the first error of a source or of the
 * output. */
int sst_merge_sources(sst_source *srcs, size_t n, sst_writer *w,
                      sst_run_out *o);

#endif
