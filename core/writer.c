/* writer.c — streams keys in order into a table file (format version 2).
 *
 * Values go to the file as they arrive. Key blocks, index entries and
 * filter partitions collect in spill buffers and are copied after the
 * last value, so that all keys and metadata lie in one region at the end
 * of the file; memory stays at one block, the metadata dictionary and the
 * spill buffers' limits however large the table grows.
 *
 * The table is written to OUT.tmp.XXXXXXXX (8 hex digits) beside OUT and
 * renamed onto OUT at the end. The writer holds flock(LOCK_EX) on that
 * temporary file from its creation until after the rename, so a lock
 * that can be taken means its writer is gone (killed, or the machine
 * stopped). Opening a writer for OUT first removes such temporaries of
 * OUT; those of live writers stay.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>
/* ZDICT_trainFromBuffer_fastCover: in libzstd's exported symbols since
 * 1.3.6, declared under this macro. */
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

#include "block.h"
#include "filter.h"
#include "format.h"
#include "internal.h"
#include "spill.h"
#include "table.h"
#include "zpool.h"

#define OUT_BUF_SIZE (1u << 20)
#define SPILL_MEM_LIMIT (4u << 20)
#define KEYS_MEM_LIMIT (8u << 20)
#define DICT_SLOTS (2 * SST_DICT_MAX) /* open addressing, half full at most */
/* Compressed tables: small values collect in the first TRAIN_HOLD bytes of
 * value blocks before any is written, to train a dictionary of at most
 * ZDICT_MAX bytes on them. */
#define TRAIN_HOLD (4u << 20)
#define ZDICT_MAX (32u << 10)
/* Key blocks whose index entries may wait for pieces being compressed. */
#define PEND_MIN 64

/* Where a value was stored: what an entry refers to, and what a later
 * identical value (dedup) or hard link refers to again. */
typedef struct vloc {
  uint64_t h_lo, h_hi; /* XXH3-128 of the bytes (dedup table only) */
  uint64_t len;
  uint64_t off;    /* plain, chunked: file offset; packed: in its block */
  uint64_t block;  /* packed */
  uint64_t stored; /* chunked */
  uint32_t checksum;
  unsigned kind; /* 0 plain, SST_FLAG_PACKED or SST_FLAG_CHUNKED */
  /* A chunked value whose chunks are still in the pool: its number (see
   * struct cval); off and stored are set once it is written. 0: known. */
  uint64_t cv;
  int run_start; /* no bytes: at the start of its key block's value run */
} vloc;

struct sst_writer {
  sst_writer_options o;
  char *path, *tmp_path;
  int fd;
  int lock_fd; /* holds the temporary file's flock until after the rename */
  int err;     /* sticky first error */
  sst_error errmsg; /* its message */
  int finished;

  uint8_t *obuf; /* output buffer: bytes at file offset pos - olen.. */
  size_t olen;
  uint64_t pos;    /* file offset of the next byte written */
  uint64_t wb_off; /* bytes before it are on their way to the disk */

  sst_block_builder block;
  /* Where the value run of the oldest key block not yet in the index
   * begins; with nothing pending, the current block's. */
  uint64_t values_off;
  uint64_t *hashes; /* filter hashes of the current block's keys */
  size_t hash_count, hash_cap;
  uint8_t *first_key, *last_key;
  size_t first_len, last_len;
  int have_key; /* last_key holds the last key accepted */
  uint32_t probes;

  sst_spill keys, filter, index_entries, index_restarts;
  uint64_t block_count;
  uint64_t key_count, tombstone_count, key_bytes, value_bytes;

  /* A value being streamed by begin/append/end. */
  int in_value;
  uint64_t stream_off, stream_len;
  XXH3_state_t *stream_hash;

  /* Metadata for the next entry (set_meta), with its own xattr bytes. */
  int has_meta;
  sst_meta meta;
  uint8_t *xattr_buf;
  /* The metadata dictionary: distinct (mode, uid, gid) in order of first
   * use, and a hash table of their indexes + 1. */
  sst_attr *dict;
  uint32_t dict_count;
  uint16_t *dict_slots;
  uint32_t features;
  /* The last value added, for sst_writer_add_shared. */
  int have_last;
  vloc last;

  /* Compression (zstd_level > 0). */
  sst_zpool *zp; /* compresses blocks and chunks, in order */
  ZSTD_DCtx *dctx;
  ZSTD_CCtx *kctx; /* compresses key blocks, on the writer's thread */
  uint8_t *kbuf;   /* a compressed key block */
  size_t kbuf_cap;
  ZSTD_CDict *cdict;
  ZSTD_DDict *ddict;
  uint8_t *zdict;
  size_t zdict_len;
  size_t small_max; /* values up to this go into value blocks */
  uint8_t *vbuf;    /* the value block being filled */
  size_t vlen, vcap;
  /* Closed value blocks: 0..vb_written written, ..vb_submitted being
   * compressed, ..vb_count held while training. */
  sst_vblock *vb;
  size_t vb_count, vb_cap, vb_written, vb_submitted;
  uint64_t measured; /* stored bytes of the pieces compressed to measure */
  uint64_t pieces_in, pieces_out; /* handed to the pool, taken back */
  /* Key blocks flushed while pieces were in the pool: their index entries
   * wait until the pieces before them are written (oldest first). */
  struct pending_index {
    uint64_t mark; /* pieces_in at the flush */
    sst_handle h;  /* all but the value run */
    uint8_t *key;  /* the block's first key */
    size_t key_len;
  } * pend;
  size_t pend_head, pend_count, pend_cap;
  /* Chunked values with chunks in the pool, oldest first: the chunks come
   * back in order, so the oldest is the one the next chunk taken belongs
   * to. Its table is written after its last chunk, once it is closed. */
  struct cval {
    uint64_t id;           /* 1, 2, ... in order of starting */
    uint64_t len;          /* its bytes (once closed) */
    uint64_t nsub, ntaken; /* chunks handed to the pool, written */
    uint64_t start;        /* file offset of its first chunk, once written */
    uint64_t h_lo, h_hi;   /* its hash, when the dedup table names it */
    int closed, in_dd;
  } * cv;
  size_t cv_head, cv_count, cv_cap;
  uint64_t cv_next; /* the id of the next chunked value */
  vloc cv_done;     /* where the last chunked value written went */
  /* Entries waiting, in key order, for a chunked value before them to be
   * written (its entry names its offset): an entry is added once every
   * entry before it is, so the pool keeps compressing while the next
   * values are read. mark: pieces_in when it would have been added, so
   * that key blocks end their value runs where they would have. */
  struct deferred {
    uint8_t *key;
    size_t key_len;
    unsigned flags;
    vloc loc;
    uint64_t mark;
    int has_meta;
    sst_meta meta;
    uint8_t *xattrs;
  } * df;
  size_t df_head, df_count, df_cap;
  int df_adding;  /* add_deferred is running */
  int training;   /* holding closed blocks to train a dictionary */
  uint8_t **held; /* blocks vb_written.. while training */
  size_t held_count;
  uint64_t held_bytes;
  size_t *samples; /* sizes of the values in the held blocks */
  size_t sample_count, sample_cap;
  size_t zcap; /* the most a block or chunk can take compressed */
  /* A streamed value: its current chunk, its chunk table so far. */
  uint8_t *cbuf;
  size_t clen;
  int chunking; /* chunks of it were written */
  uint8_t *ctab;
  size_t ctab_len, ctab_cap;
  XXH3_state_t *h128;
  /* Chunked values written: (offset, stored, length), in file order. */
  uint64_t (*chunked)[3];
  size_t chunked_count, chunked_cap;
  /* Dedup: open addressing on the hash, kept at most half full. */
  vloc *dd;
  size_t dd_cap, dd_count;
  uint8_t *rb, *rb2; /* read-back buffers: a block or chunk each */
  size_t rb_cap;
  uint64_t rb_block; /* the block decompressed in rb, + 1; 0 none */
  int any_values;    /* some entry is PACKED or CHUNKED */
  sst_writer_stats stats;
};

void sst_writer_options_init(sst_writer_options *o) {
  memset(o, 0, sizeof *o);
  o->block_keys = 64;
  o->block_bytes = 4096;
  o->restart_interval = 16;
  o->filter_bits_per_key = 10;
  o->value_block = 128u << 10;
  o->chunk_size = 128u << 10;
  o->dictionary = 1;
}

int sst_parse_compress(const char *arg, int default_level, int *level) {
  if (strcmp(arg, "none") == 0) {
    *level = 0;
    return 0;
  }
  if (strcmp(arg, "zstd") == 0) {
    *level = default_level;
    return 0;
  }
  if (strncmp(arg, "zstd:", 5) != 0 || arg[5] < '0' || arg[5] > '9')
    return SST_EINVAL;
  char *end;
  errno = 0;
  long n = strtol(arg + 5, &end, 10);
  if (errno != 0 || *end != '\0' || n < 1 || n > 19)
    return SST_EINVAL;
  *level = (int)n;
  return 0;
}

static int fail(sst_writer *w, int code, const char *what) {
  if (w->err == 0) {
    w->err = code;
    sst_error_set(&w->errmsg, code, "%s: %s: %s", w->path, what,
                  sst_strerror(code));
  }
  return w->err;
}

/* Every WRITEBACK_STEP bytes written, the kernel is asked to start
 * writing them to the disk (sync_file_range, which does not wait): the
 * disk then works while the table is still being built, and the final
 * fsync finds little left to write. Without it nothing reached the disk
 * before the fsync, which then took most of `sst pack`'s time for a
 * large tree. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

static void start_writeback(sst_writer *w) {
  uint64_t written = w->pos - w->olen;
  if (w->o.no_sync || written - w->wb_off < WRITEBACK_STEP)
    return;
  /* Advice only: an error here shows again at the fsync. */
  (void)sync_file_range(w->fd, (off_t)w->wb_off, (off_t)(written - w->wb_off),
                        SYNC_FILE_RANGE_WRITE);
  w->wb_off = written;
}

static int out_flush(sst_writer *w) {
  int rc = sst_write_all(w->fd, w->obuf, w->olen);
  w->olen = 0;
  if (rc)
    return fail(w, rc, "write error");
  start_writeback(w);
  return 0;
}

static int out_write(sst_writer *w, const void *data, size_t len) {
  if (w->err)
    return w->err;
  if (w->olen + len > OUT_BUF_SIZE) {
    if (out_flush(w))
      return w->err;
    if (len >= OUT_BUF_SIZE) {
      int rc = sst_write_all(w->fd, data, len);
      if (rc)
        return fail(w, rc, "write error");
      w->pos += len;
      start_writeback(w);
      return 0;
    }
  }
  memcpy(w->obuf + w->olen, data, len);
  w->olen += len;
  w->pos += len;
  return 0;
}

static int out_sink(void *ctx, const void *data, size_t len) {
  return out_write(ctx, data, len);
}

/* ---- Storing values: plain, in value blocks, in chunks; dedup ---- */

static int compressing(const sst_writer *w) { return w->o.zstd_level > 0; }

/* Drops what was written from file offset off on (a streamed value found
 * to be a copy of an earlier one). REQUIRES off <= pos. */
static int truncate_to(sst_writer *w, uint64_t off) {
  if (off >= w->pos - w->olen) {
    w->olen -= (size_t)(w->pos - off);
    w->pos = off;
    return 0;
  }
  if (out_flush(w))
    return w->err;
  if (ftruncate(w->fd, (off_t)off) != 0 ||
      lseek(w->fd, (off_t)off, SEEK_SET) < 0)
    return fail(w, errno, "truncate");
  w->pos = off;
  if (w->wb_off > off)
    w->wb_off = off;
  return 0;
}

/* Reads back len bytes the writer wrote at off (from the output buffer
 * or the file). */
static int read_written(sst_writer *w, uint64_t off, void *buf, size_t len) {
  uint64_t buffered = w->pos - w->olen;
  if (off >= buffered) {
    memcpy(buf, w->obuf + (off - buffered), len);
    return 0;
  }
  if (off + len > buffered && out_flush(w))
    return w->err;
  int rc = sst_pread_all(w->fd, buf, len, off);
  return rc ? fail(w, rc, "read back") : 0;
}

static int ctab_add(sst_writer *w, uint64_t end, int raw, uint32_t stored_sum,
                    uint32_t sum);
static int index_ready(sst_writer *w);
static int chunks_done(sst_writer *w);

/* Makes room for one more element in a ring of *cap elements of size
 * elem, count of them from *head: the ring doubles, its elements moved
 * to the front in order. 0 or ENOMEM. */
static int ring_room(void **ring, size_t elem, size_t *head, size_t count,
                     size_t *cap, size_t min) {
  if (count < *cap)
    return 0;
  size_t n = *cap ? 2 * *cap : min;
  uint8_t *to = calloc(n, elem);
  if (to == NULL)
    return ENOMEM;
  for (size_t i = 0; i < count; i++)
    memcpy(to + i * elem, (uint8_t *)*ring + ((*head + i) % *cap) * elem, elem);
  free(*ring);
  *ring = to;
  *head = 0;
  *cap = n;
  return 0;
}

/* Pieces handed to the pool carry what they are in their tag. */
#define TAG_CHUNK 1u
#define TAG_MEASURE 2u
#define TAG_BLOCK(i) ((uint64_t)(i) << 2)

/* Takes the oldest piece from the pool and writes it where the file
 * stands (a measured one is only counted). */
static int take_piece(sst_writer *w) {
  sst_zpiece pc;
  const char *why = NULL;
  if (sst_zpool_take(w->zp, &pc, &why))
    return fail(w, SST_EINVAL, why);
  w->pieces_out++;
  if (pc.tag == TAG_MEASURE) {
    w->measured += pc.out_len;
    return 0;
  }
  if (pc.is_raw)
    w->stats.raw_pieces++;
  if (pc.tag == TAG_CHUNK) {
    struct cval *c = &w->cv[w->cv_head]; /* the oldest: chunks are in order */
    if (c->ntaken == 0) {
      c->start = w->pos;
      w->ctab_len = 0;
    }
    if (out_write(w, pc.out, pc.out_len))
      return w->err;
    w->stats.chunks++;
    c->ntaken++;
    if (ctab_add(w, w->pos - c->start, pc.is_raw, pc.stored_sum, pc.sum))
      return w->err;
    return c->closed && c->ntaken == c->nsub ? chunks_done(w) : 0;
  }
  sst_vblock *b = &w->vb[pc.tag >> 2];
  b->off = w->pos;
  b->stored = (uint32_t)pc.out_len;
  b->raw = (uint32_t)pc.is_raw;
  b->stored_sum = pc.stored_sum;
  w->vb_written = (size_t)(pc.tag >> 2) + 1;
  w->stats.value_blocks++;
  if (out_write(w, pc.out, pc.out_len))
    return w->err;
  return index_ready(w);
}

/* Writes every piece submitted so far: after it the file stands where
 * the next value goes. */
static int drain(sst_writer *w) {
  while (w->err == 0 && w->zp != NULL && sst_zpool_pending(w->zp) > 0)
    take_piece(w);
  return w->err ? w->err : index_ready(w);
}

/* Hands a block or chunk to the pool (with the dictionary cd, or none),
 * first writing the oldest pieces if every slot is busy. */
static int submit_piece(sst_writer *w, const uint8_t *raw, size_t len,
                        const ZSTD_CDict *cd, uint64_t tag) {
  while (w->err == 0 && sst_zpool_full(w->zp))
    take_piece(w);
  if (w->err == 0) {
    sst_zpool_submit(w->zp, raw, len, cd, tag);
    w->pieces_in++;
  }
  return w->err;
}

static int write_vblock(sst_writer *w, size_t i, const uint8_t *data) {
  if (submit_piece(w, data, w->vb[i].raw_len, w->cdict, TAG_BLOCK(i)))
    return w->err;
  w->vb_submitted = i + 1;
  return 0;
}

static int end_training(sst_writer *w);

/* Closes the value block being filled: writes it, or holds it while a
 * dictionary is still to be trained. */
static int close_vblock(sst_writer *w) {
  if (w->vlen == 0)
    return 0;
  if (w->vb_count == w->vb_cap) {
    size_t cap = w->vb_cap ? 2 * w->vb_cap : 64;
    sst_vblock *n = realloc(w->vb, cap * sizeof *n);
    if (n == NULL)
      return fail(w, ENOMEM, "out of memory");
    w->vb = n;
    w->vb_cap = cap;
  }
  size_t i = w->vb_count++;
  w->vb[i] = (sst_vblock){.raw_len = (uint32_t)w->vlen,
                          .checksum = sst_checksum(w->vbuf, w->vlen)};
  size_t len = w->vlen;
  w->vlen = 0;
  if (!w->training)
    return write_vblock(w, i, w->vbuf);
  uint8_t **h = realloc(w->held, (w->held_count + 1) * sizeof *h);
  uint8_t *copy = malloc(len);
  if (h == NULL || copy == NULL) {
    free(copy);
    if (h)
      w->held = h;
    return fail(w, ENOMEM, "out of memory");
  }
  w->held = h;
  memcpy(copy, w->vbuf, len);
  w->held[w->held_count++] = copy;
  w->held_bytes += len;
  return w->held_bytes >= TRAIN_HOLD ? end_training(w) : 0;
}

/* The stored size of every MEASURE_EVERY-th held block, with the
 * dictionary or not: enough to compare the two, for a quarter of the
 * compression (every held block is compressed again once the choice is
 * made). REQUIRES nothing pending in the pool. */
#define MEASURE_EVERY 4
static size_t held_size(sst_writer *w, const ZSTD_CDict *cd) {
  w->measured = 0;
  for (size_t i = 0; i < w->held_count; i += MEASURE_EVERY)
    submit_piece(w, w->held[i], w->vb[w->vb_submitted + i].raw_len, cd,
                 TAG_MEASURE);
  drain(w);
  return (size_t)w->measured;
}

/* One fastCover training with fixed parameters. ZDICT_trainFromBuffer
 * tries several segment sizes and keeps the best on held-out samples:
 * on /usr/include that took about twice the CPU, on the one thread
 * while the workers waited, and made a table 0.4% larger than k = 100
 * does (python3's and perl's libraries: 0.3% and 0.1%). A frequency
 * table of 2^18 entries sampled at accel 4, rather than 2^20 at 1, took
 * sst pack of /usr/include (level 10) from 1.25 to 1.14 s for 2 KB more
 * in 12.9 MB (docs/BENCHMARKS.md). */
static size_t train(void *d, size_t cap, const void *all, sst_writer *w) {
  ZDICT_fastCover_params_t fp;
  memset(&fp, 0, sizeof fp);
  fp.k = 100;
  fp.d = 8;
  fp.f = 18;
  fp.accel = 4;
  fp.zParams.compressionLevel = w->o.zstd_level;
  return ZDICT_trainFromBuffer_fastCover(d, cap, all, w->samples,
                                         (unsigned)w->sample_count, fp);
}

/* Trains a dictionary on the held values, of a few sizes, and keeps the
 * one that makes the held blocks smallest (its own bytes counted), if any
 * does better than none; then writes the held blocks. */
static int end_training(sst_writer *w) {
  w->training = 0;
  if (drain(w))
    return w->err;
  uint8_t *all = NULL;
  if (w->sample_count >= 32 && w->held_bytes >= (64u << 10) &&
      (all = malloc((size_t)w->held_bytes)) != NULL) {
    size_t at = 0;
    for (size_t i = 0; i < w->held_count; i++) {
      uint32_t n = w->vb[w->vb_submitted + i].raw_len;
      memcpy(all + at, w->held[i], n);
      at += n;
    }
    size_t best = held_size(w, NULL);
    static const unsigned shares[] = {16, 48, 128};
    size_t last_cap = 0;
    for (size_t k = 0; k < sizeof shares / sizeof shares[0]; k++) {
      size_t cap = (size_t)w->held_bytes / shares[k];
      if (cap > ZDICT_MAX)
        cap = ZDICT_MAX;
      if (cap < 1024)
        break;
      if (cap == last_cap) /* the same training again: the same dictionary */
        continue;
      last_cap = cap;
      uint8_t *d = malloc(cap);
      if (d == NULL)
        break;
      size_t dl = train(d, cap, all, w);
      ZSTD_CDict *cd =
          ZDICT_isError(dl) ? NULL : ZSTD_createCDict(d, dl, w->o.zstd_level);
      size_t total = cd ? held_size(w, cd) + dl / MEASURE_EVERY : best;
      if (w->err) /* pieces may still be compressing with cd */
        sst_zpool_quiesce(w->zp);
      if (total < best) {
        best = total;
        ZSTD_freeCDict(w->cdict);
        free(w->zdict);
        w->cdict = cd;
        w->zdict = d;
        w->zdict_len = dl;
      } else {
        ZSTD_freeCDict(cd);
        free(d);
      }
    }
    free(all);
    if (w->zdict != NULL) {
      if ((w->ddict = ZSTD_createDDict(w->zdict, w->zdict_len)) == NULL)
        return fail(w, ENOMEM, "out of memory");
      w->stats.dict_bytes = (uint32_t)w->zdict_len;
    }
  }
  for (size_t i = 0; i < w->held_count; i++) {
    if (w->err == 0)
      write_vblock(w, w->vb_submitted, w->held[i]);
    free(w->held[i]);
  }
  free(w->held);
  w->held = NULL;
  w->held_count = 0;
  free(w->samples);
  w->samples = NULL;
  return w->err;
}

/* Adds a small value to the value block being filled. */
static int pack_value(sst_writer *w, const uint8_t *data, size_t len,
                      vloc *loc) {
  if (w->vlen > 0 && w->vlen + len > w->o.value_block && close_vblock(w))
    return w->err;
  loc->kind = SST_FLAG_PACKED;
  loc->block = w->vb_count;
  loc->off = w->vlen;
  memcpy(w->vbuf + w->vlen, data, len);
  w->vlen += len;
  if (w->training) {
    if (w->sample_count == w->sample_cap) {
      size_t cap = w->sample_cap ? 2 * w->sample_cap : 1024;
      size_t *n = realloc(w->samples, cap * sizeof *n);
      if (n == NULL)
        return fail(w, ENOMEM, "out of memory");
      w->samples = n;
      w->sample_cap = cap;
    }
    w->samples[w->sample_count++] = len;
  }
  return w->vlen >= w->o.value_block ? close_vblock(w) : 0;
}

/* Appends a chunk's entry to the chunk table being built. */
static int ctab_add(sst_writer *w, uint64_t end, int raw, uint32_t stored_sum,
                    uint32_t sum) {
  if (w->ctab_len + SST_CHUNK_ENTRY > w->ctab_cap) {
    size_t cap = w->ctab_cap ? 2 * w->ctab_cap : 64 * SST_CHUNK_ENTRY;
    uint8_t *n = realloc(w->ctab, cap);
    if (n == NULL)
      return fail(w, ENOMEM, "out of memory");
    w->ctab = n;
    w->ctab_cap = cap;
  }
  sst_put_u64(w->ctab + w->ctab_len, end | (raw ? SST_CHUNK_RAW : 0));
  sst_put_u32(w->ctab + w->ctab_len + 8, stored_sum);
  sst_put_u32(w->ctab + w->ctab_len + 12, sum);
  w->ctab_len += SST_CHUNK_ENTRY;
  return 0;
}

static struct cval *newest_cval(sst_writer *w) {
  return &w->cv[(w->cv_head + w->cv_count - 1) % w->cv_cap];
}

static int write_chunk(sst_writer *w, const uint8_t *data, size_t len) {
  if (submit_piece(w, data, len, w->cdict, TAG_CHUNK))
    return w->err;
  newest_cval(w)->nsub++;
  return 0;
}

/* Starts a chunked value: it begins where the file stands once every
 * piece before it is written, which take_piece learns. */
static int begin_chunks(sst_writer *w) {
  if (ring_room((void **)&w->cv, sizeof *w->cv, &w->cv_head, w->cv_count,
                &w->cv_cap, 16))
    return fail(w, ENOMEM, "out of memory");
  w->cv_count++;
  *newest_cval(w) = (struct cval){.id = ++w->cv_next};
  return 0;
}

/* Ends the chunked value being written, of len bytes. *loc is where it
 * went if every chunk of it is written; else it names the value (cv), and
 * chunks_done fills in the place once its last chunk is written. */
static int end_chunks(sst_writer *w, uint64_t len, vloc *loc) {
  struct cval *c = newest_cval(w);
  c->closed = 1;
  c->len = len;
  if (c->ntaken == c->nsub) { /* then it is also the oldest */
    if (chunks_done(w))
      return w->err;
    *loc = w->cv_done;
    return 0;
  }
  *loc = (vloc){.kind = SST_FLAG_CHUNKED, .len = len, .cv = c->id};
  return 0;
}

static vloc *dd_find(sst_writer *w, uint64_t lo, uint64_t hi);
static int add_deferred(sst_writer *w);

/* The oldest chunked value has every chunk written: writes its chunk
 * table, tells the dedup table and the entry waiting for it where it is,
 * and adds the entries that no longer wait. */
static int chunks_done(sst_writer *w) {
  struct cval *c = &w->cv[w->cv_head];
  uint32_t sum = sst_checksum(w->ctab, w->ctab_len);
  if (out_write(w, w->ctab, w->ctab_len))
    return w->err;
  vloc loc = {.kind = SST_FLAG_CHUNKED,
              .off = c->start,
              .stored = w->pos - c->start,
              .len = c->len,
              .checksum = sum};
  w->cv_done = loc;
  if (c->in_dd) {
    vloc *v = dd_find(w, c->h_lo, c->h_hi);
    if (v != NULL && v->cv == c->id) {
      v->off = loc.off;
      v->stored = loc.stored;
      v->checksum = loc.checksum;
      v->cv = 0;
    }
  }
  for (size_t i = 0; i < w->df_count; i++) {
    struct deferred *d = &w->df[(w->df_head + i) % w->df_cap];
    if (d->loc.cv == c->id) {
      vloc keep = d->loc; /* a copy of an earlier value keeps its flags */
      d->loc = loc;
      d->loc.run_start = keep.run_start;
      break;
    }
  }
  w->cv_head = (w->cv_head + 1) % w->cv_cap;
  w->cv_count--;
  if (w->chunked_count == w->chunked_cap) {
    size_t cap = w->chunked_cap ? 2 * w->chunked_cap : 64;
    uint64_t(*n)[3] = realloc(w->chunked, cap * sizeof *n);
    if (n == NULL)
      return fail(w, ENOMEM, "out of memory");
    w->chunked = n;
    w->chunked_cap = cap;
  }
  w->chunked[w->chunked_count][0] = loc.off;
  w->chunked[w->chunked_count][1] = loc.stored;
  w->chunked[w->chunked_count][2] = loc.len;
  w->chunked_count++;
  if (index_ready(w))
    return w->err;
  return add_deferred(w);
}

static int chunk_value(sst_writer *w, const uint8_t *data, uint64_t len,
                       vloc *loc) {
  if (begin_chunks(w))
    return w->err;
  for (uint64_t at = 0; at < len; at += w->o.chunk_size) {
    size_t n = len - at < w->o.chunk_size ? (size_t)(len - at)
                                          : (size_t)w->o.chunk_size;
    if (write_chunk(w, data + at, n))
      return w->err;
  }
  return end_chunks(w, len, loc);
}

/* Decompresses the len stored bytes in w->rb2 into w->rb, with the
 * dictionary when the frame names one (pieces written before it was
 * trained do not). */
static size_t decompress_back(sst_writer *w, size_t len) {
  if (w->ddict != NULL && ZSTD_getDictID_fromFrame(w->rb2, len) != 0)
    return ZSTD_decompress_usingDDict(w->dctx, w->rb, w->rb_cap, w->rb2, len,
                                      w->ddict);
  return ZSTD_decompressDCtx(w->dctx, w->rb, w->rb_cap, w->rb2, len);
}

/* Decompresses value block i into w->rb (kept for the next call). */
static int load_block_back(sst_writer *w, uint64_t i, const uint8_t **out) {
  if (i == w->vb_count) { /* the one being filled */
    *out = w->vbuf;
    return 0;
  }
  if (i >= w->vb_submitted) { /* held for training */
    *out = w->held[i - w->vb_submitted];
    return 0;
  }
  if (i >= w->vb_written && drain(w)) /* still being compressed */
    return w->err;
  if (w->rb_block != i + 1) {
    const sst_vblock *b = &w->vb[i];
    if (b->raw) {
      if (read_written(w, b->off, w->rb, b->raw_len))
        return w->err;
    } else {
      if (read_written(w, b->off, w->rb2, b->stored))
        return w->err;
      size_t n = decompress_back(w, b->stored);
      if (ZSTD_isError(n) || n != b->raw_len)
        return fail(w, SST_ECORRUPT, "read back of a value block");
    }
    w->rb_block = i + 1;
  }
  *out = w->rb;
  return 0;
}

/* 1 when the value stored at loc has exactly the bytes data[0..len). */
static int same_value(sst_writer *w, const vloc *loc, const uint8_t *data,
                      uint64_t len) {
  if (loc->len != len)
    return 0;
  if (loc->kind == SST_FLAG_PACKED) {
    const uint8_t *b = NULL;
    if (load_block_back(w, loc->block, &b) || b == NULL)
      return 0;
    return memcmp(b + loc->off, data, (size_t)len) == 0;
  }
  if (loc->kind == 0) {
    for (uint64_t at = 0; at < len; at += w->rb_cap) {
      size_t n = len - at < w->rb_cap ? (size_t)(len - at) : w->rb_cap;
      if (read_written(w, loc->off + at, w->rb, n) ||
          memcmp(w->rb, data + at, n) != 0)
        return 0;
    }
    return 1;
  }
  /* Chunked: chunk by chunk, through its table. */
  uint64_t n_chunks = (len + w->o.chunk_size - 1) / w->o.chunk_size;
  uint64_t tab = loc->off + loc->stored - n_chunks * SST_CHUNK_ENTRY;
  uint64_t start = 0;
  w->rb_block = 0;
  for (uint64_t c = 0; c < n_chunks; c++) {
    uint8_t e[SST_CHUNK_ENTRY];
    if (read_written(w, tab + c * SST_CHUNK_ENTRY, e, sizeof e))
      return 0;
    uint64_t end = sst_get_u64(e) & ~SST_CHUNK_RAW;
    int raw = (sst_get_u64(e) & SST_CHUNK_RAW) != 0;
    uint64_t at = c * w->o.chunk_size;
    size_t want = len - at < w->o.chunk_size ? (size_t)(len - at)
                                             : (size_t)w->o.chunk_size;
    if (end < start || end - start > w->zcap)
      return 0;
    size_t stored = (size_t)(end - start);
    if (raw) {
      if (stored != want || read_written(w, loc->off + start, w->rb, want))
        return 0;
    } else {
      if (stored > w->rb_cap ||
          read_written(w, loc->off + start, w->rb2, stored))
        return 0;
      size_t n = decompress_back(w, stored);
      if (ZSTD_isError(n) || n != want)
        return 0;
    }
    if (memcmp(w->rb, data + at, want) != 0)
      return 0;
    start = end;
  }
  return 1;
}

/* 1 when the file bytes [a, a + len) and [b, b + len) are equal.
 * REQUIRES ensure_rb. */
static int same_bytes(sst_writer *w, uint64_t a, uint64_t b, uint64_t len) {
  size_t step = w->rb_cap;
  int same = 1;
  w->rb_block = 0;
  for (uint64_t at = 0; same && at < len; at += step) {
    size_t n = len - at < step ? (size_t)(len - at) : step;
    same = read_written(w, a + at, w->rb, n) == 0 &&
           read_written(w, b + at, w->rb2, n) == 0 &&
           memcmp(w->rb, w->rb2, n) == 0;
  }
  return same;
}

static vloc *dd_slot(sst_writer *w, uint64_t lo, uint64_t hi) {
  size_t mask = w->dd_cap - 1;
  for (size_t i = (size_t)lo & mask;; i = (i + 1) & mask) {
    vloc *v = &w->dd[i];
    if ((v->h_lo == 0 && v->h_hi == 0) || (v->h_lo == lo && v->h_hi == hi))
      return v;
  }
}

/* The stored value whose hash is (lo, hi), or NULL. */
static vloc *dd_find(sst_writer *w, uint64_t lo, uint64_t hi) {
  if (w->dd_cap == 0)
    return NULL;
  vloc *v = dd_slot(w, lo | 1, hi);
  return v->h_lo ? v : NULL;
}

static int dd_add(sst_writer *w, const vloc *loc, uint64_t lo, uint64_t hi) {
  if (2 * (w->dd_count + 1) > w->dd_cap) {
    size_t cap = w->dd_cap ? 2 * w->dd_cap : 1024;
    vloc *old = w->dd;
    size_t old_cap = w->dd_cap;
    if ((w->dd = calloc(cap, sizeof *w->dd)) == NULL) {
      w->dd = old;
      return fail(w, ENOMEM, "out of memory");
    }
    w->dd_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].h_lo)
        *dd_slot(w, old[i].h_lo, old[i].h_hi) = old[i];
    free(old);
  }
  vloc *v = dd_slot(w, lo | 1, hi);
  if (v->h_lo)
    return 0; /* the same hash, different bytes: keep the first */
  *v = *loc;
  v->h_lo = lo | 1;
  v->h_hi = hi;
  w->dd_count++;
  if (loc->cv != 0) { /* still in the pool: the newest chunked value */
    struct cval *c = newest_cval(w);
    c->in_dd = 1;
    c->h_lo = lo;
    c->h_hi = hi;
  }
  return 0;
}

static int ensure_rb(sst_writer *w) {
  if (w->rb != NULL)
    return 0;
  if (w->rb_cap == 0)
    w->rb_cap = 64u << 10;
  if ((w->rb = malloc(w->rb_cap)) == NULL ||
      (w->rb2 = malloc(w->zcap > w->rb_cap ? w->zcap : w->rb_cap)) == NULL)
    return fail(w, ENOMEM, "out of memory");
  return 0;
}

/* Stores a whole value held in memory; *loc says where (an earlier copy
 * of the same bytes, with dedup). Returns 1 in *dup for such a copy. */
static int store_value(sst_writer *w, const uint8_t *data, uint64_t len,
                       vloc *loc, int *dup) {
  *dup = 0;
  XXH128_hash_t h = {0, 0};
  if (w->o.dedup && len > 0) {
    if (ensure_rb(w))
      return w->err;
    h = XXH3_128bits(data, (size_t)len);
    vloc *found = dd_find(w, h.low64, h.high64);
    if (found != NULL && found->cv != 0 && drain(w)) /* still in the pool */
      return w->err;
    if (found != NULL && same_value(w, found, data, len)) {
      *loc = *found;
      *dup = 1;
      w->stats.dedup_values++;
      w->stats.dedup_bytes += len;
      return w->err;
    }
  }
  uint32_t sum = sst_checksum(data, (size_t)len);
  if (compressing(w) && len == 0) {
    /* Takes no bytes: placed at the start of its key block's range, not
     * where the file stands while pieces are still being compressed. */
    *loc = (vloc){.len = 0, .checksum = sum, .run_start = 1};
  } else if (!compressing(w)) {
    *loc = (vloc){.off = w->pos, .len = len, .checksum = sum};
    if (out_write(w, data, (size_t)len))
      return w->err;
  } else if (len <= w->small_max) {
    *loc = (vloc){.len = len, .checksum = sum};
    if (pack_value(w, data, (size_t)len, loc))
      return w->err;
  } else if (chunk_value(w, data, len, loc)) {
    return w->err;
  }
  if (w->o.dedup && len > 0)
    dd_add(w, loc, h.low64, h.high64);
  return w->err;
}

#define TEMP_INFIX ".tmp."
#define TEMP_DIGITS 8

static int flock_retry(int fd, int op) {
  int rc;
  while ((rc = flock(fd, op)) != 0 && errno == EINTR)
    ;
  return rc;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether `name` is `base` + ".tmp." + 8 hex digits. */
static int is_temp_of(const char *name, const char *base, size_t base_len) {
  size_t infix = sizeof TEMP_INFIX - 1;
  if (strlen(name) != base_len + infix + TEMP_DIGITS ||
      memcmp(name, base, base_len) != 0 ||
      memcmp(name + base_len, TEMP_INFIX, infix) != 0)
    return 0;
  for (const char *d = name + base_len + infix; *d != '\0'; d++)
    if (!isxdigit((unsigned char)*d))
      return 0;
  return 1;
}

/* Removes the temporaries that writers of `path` killed before their
 * rename left behind: each one whose flock can be taken at once. After
 * locking, the name must still be the file that was locked, or another
 * file now bears it and is left alone. Best effort: whatever cannot be
 * read, opened or locked is kept. */
static void remove_stale_temps(const char *path) {
  char dir_buf[PATH_MAX], base_buf[PATH_MAX];
  if (snprintf(dir_buf, sizeof dir_buf, "%s", path) >= (int)sizeof dir_buf)
    return;
  memcpy(base_buf, dir_buf, sizeof base_buf);
  const char *base = basename(base_buf);
  size_t base_len = strlen(base);
  DIR *d = opendir(dirname(dir_buf));
  if (d == NULL)
    return;
  int dfd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!is_temp_of(e->d_name, base, base_len) ||
        (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
      continue;
    int fd = openat(dfd, e->d_name,
                    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
      continue;
    struct stat locked, named;
    if (flock_retry(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &locked) == 0 &&
        S_ISREG(locked.st_mode) &&
        fstatat(dfd, e->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        same_file(&locked, &named))
      unlinkat(dfd, e->d_name, 0);
    close(fd); /* drops the lock */
  }
  closedir(d);
}

/* Creates `path.tmp.XXXXXXXX` exclusively, so the process umask applies,
 * and locks it. A scan of another writer may have taken the lock between
 * the create and our flock and removed the file as stale: then the name
 * no longer leads to the locked file, and another name is tried. */
static int create_temp(sst_writer *w) {
  size_t n = strlen(w->path) + 40;
  if ((w->tmp_path = malloc(n)) == NULL)
    return ENOMEM;
  unsigned seed =
      (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(uintptr_t)w;
  for (int attempt = 0; attempt < 100; attempt++) {
    seed = seed * 1103515245u + 12345u;
    snprintf(w->tmp_path, n, "%s" TEMP_INFIX "%0*x", w->path, TEMP_DIGITS,
             seed);
    w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
      if (errno == EEXIST)
        continue;
      return errno;
    }
    struct stat locked, named;
    if (flock_retry(w->fd, LOCK_EX) != 0 || fstat(w->fd, &locked) != 0 ||
        (w->lock_fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
      int rc = errno;
      unlink(w->tmp_path);
      close(w->fd);
      w->fd = -1;
      return rc;
    }
    if (stat(w->tmp_path, &named) == 0 && same_file(&locked, &named))
      return 0;
    close(w->lock_fd);
    close(w->fd);
    w->lock_fd = w->fd = -1;
  }
  return EEXIST;
}

int sst_writer_open(const char *path, const sst_writer_options *opts,
                    sst_writer **out, sst_error *err) {
  *out = NULL;
  sst_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return sst_error_set(err, ENOMEM, "%s: out of memory", path);
  w->fd = w->lock_fd = -1;
  if (opts)
    w->o = *opts;
  else
    sst_writer_options_init(&w->o);
  if (w->o.block_bytes == 0)
    w->o.block_bytes = 4096;
  if (w->o.restart_interval == 0)
    w->o.restart_interval = 16;
  w->probes = w->o.filter_bits_per_key
                  ? sst_filter_probes(w->o.filter_bits_per_key)
                  : 0;
  int rc = 0;
  if (w->o.zstd_level < 0 || w->o.zstd_level > ZSTD_maxCLevel() ||
      (w->o.zstd_level > 0 &&
       ((w->o.value_block && (w->o.value_block < SST_CHUNK_MIN ||
                              w->o.value_block > SST_VBLOCK_MAX)) ||
        (w->o.chunk_size && (w->o.chunk_size < SST_CHUNK_MIN ||
                             w->o.chunk_size > SST_CHUNK_MAX))))) {
    sst_error_set(err, SST_EINVAL,
                  "%s: compression level, value block or chunk size out of "
                  "range",
                  path);
    free(w);
    return SST_EINVAL;
  }
  if (w->o.value_block == 0)
    w->o.value_block = 128u << 10;
  if (w->o.chunk_size == 0)
    w->o.chunk_size = 128u << 10;
  w->small_max = w->o.value_block / 4;
  if (w->o.zstd_level > 0) {
    w->training = w->o.dictionary != 0;
    w->vcap = w->o.value_block + w->small_max;
    w->rb_cap = w->vcap > w->o.chunk_size ? w->vcap : w->o.chunk_size;
    w->zcap = ZSTD_compressBound(w->rb_cap);
    w->features |= SST_FEATURE_KEYZ | SST_FEATURE_BLOCKSUM;
    if ((w->dctx = ZSTD_createDCtx()) == NULL ||
        (w->kctx = ZSTD_createCCtx()) == NULL ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->kctx, ZSTD_c_compressionLevel,
                                            w->o.zstd_level)) ||
        ZSTD_isError(
            ZSTD_CCtx_setParameter(w->kctx, ZSTD_c_contentSizeFlag, 0)) ||
        (w->vbuf = malloc(w->vcap)) == NULL ||
        (w->cbuf = malloc(w->o.chunk_size)) == NULL) {
      rc = ENOMEM;
      goto fail;
    }
    unsigned threads =
        w->o.threads > SST_THREADS_MAX ? SST_THREADS_MAX : w->o.threads;
    if ((rc = sst_zpool_new(threads, w->o.zstd_level, w->rb_cap, &w->zp)))
      goto fail;
  }
  if (w->o.dedup && (w->h128 = XXH3_createState()) == NULL) {
    rc = ENOMEM;
    goto fail;
  }
  if ((w->path = strdup(path)) == NULL ||
      (w->obuf = malloc(OUT_BUF_SIZE)) == NULL ||
      (w->first_key = malloc(SST_KEY_MAX)) == NULL ||
      (w->last_key = malloc(SST_KEY_MAX)) == NULL ||
      (w->stream_hash = XXH3_createState()) == NULL) {
    rc = ENOMEM;
    goto fail;
  }
  /* Spill files go beside the output, on the same filesystem. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  const char *d = dirname(dir);
  sst_block_builder_init(&w->block, w->o.restart_interval);
  if ((rc = sst_spill_init(&w->keys, d, KEYS_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->filter, d, SPILL_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->index_entries, d, SPILL_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->index_restarts, d, SPILL_MEM_LIMIT)))
    goto fail;
  remove_stale_temps(path);
  if ((rc = create_temp(w)) != 0) {
    sst_error_set(err, rc, "%s: cannot create temporary file: %s", path,
                  sst_strerror(rc));
    sst_writer_free(w);
    return rc;
  }
  uint8_t header[SST_HEADER_SIZE];
  sst_header_encode(header);
  out_write(w, header, sizeof header);
  w->values_off = w->pos;
  *out = w;
  return 0;
fail:
  sst_error_set(err, rc, "%s: %s", path, sst_strerror(rc));
  sst_writer_free(w);
  return rc;
}

/* Checks the key against the previous one and records it as the last. */
static int accept_key(sst_writer *w, const uint8_t *key, size_t len) {
  if (w->err)
    return w->err;
  if (w->in_value || w->finished)
    return SST_ESTATE;
  if (len == 0 || len > SST_KEY_MAX)
    return SST_EKEYSIZE;
  /* Not key_count: entries waiting for their chunks are not counted
   * there yet, and the key after them must still come after them. */
  if (w->have_key && sst_key_cmp(key, len, w->last_key, w->last_len) <= 0)
    return SST_EORDER;
  memcpy(w->last_key, key, len);
  w->last_len = len;
  w->have_key = 1;
  return 0;
}

/* Appends an index entry: a whole key (restart interval 1), payload a
 * handle. */
static int write_index_entry(sst_writer *w, const uint8_t *key, size_t key_len,
                             const sst_handle *h) {
  uint8_t head[80], rst[4];
  uint8_t payload[70];
  size_t plen = (size_t)(sst_handle_encode(payload, SST_FORMAT_VERSION,
                                           w->features, h, 0, 0) -
                         payload);
  uint8_t *p = sst_put_varint(head, 0);
  p = sst_put_varint(p, key_len);
  p = sst_put_varint(p, plen);
  if (w->index_entries.size > UINT32_MAX - 100 - key_len)
    return fail(w, EFBIG, "index larger than 4 GiB");
  sst_put_u32(rst, (uint32_t)w->index_entries.size);
  int rc;
  if ((rc = sst_spill_write(&w->index_entries, head, (size_t)(p - head))) ||
      (rc = sst_spill_write(&w->index_entries, key, key_len)) ||
      (rc = sst_spill_write(&w->index_entries, payload, plen)) ||
      (rc = sst_spill_write(&w->index_restarts, rst, sizeof rst)))
    return fail(w, rc, "index spill");
  return 0;
}

/* Writes the index entries of the pending key blocks whose value runs
 * are complete: every piece handed out before their flush is written, so
 * a run ends where the file now stands, whatever thread compressed what. */
static int index_ready(sst_writer *w) {
  while (w->err == 0 && w->pend_count > 0) {
    struct pending_index *e = &w->pend[w->pend_head];
    if (e->mark > w->pieces_out)
      break;
    e->h.values_off = w->values_off;
    e->h.values_len = w->pos - w->values_off;
    w->values_off = w->pos;
    if (write_index_entry(w, e->key, e->key_len, &e->h))
      return w->err;
    free(e->key);
    e->key = NULL;
    w->pend_head = (w->pend_head + 1) % w->pend_cap;
    w->pend_count--;
  }
  return w->err;
}

/* Queues the index entry of the block just flushed (h without its value
 * run), whose last entry came when mark pieces had been handed to the
 * pool; written at once when those are written. Takes no piece: see
 * add_deferred. */
static int index_add(sst_writer *w, const sst_handle *h, uint64_t mark) {
  if (ring_room((void **)&w->pend, sizeof *w->pend, &w->pend_head,
                w->pend_count, &w->pend_cap, PEND_MIN))
    return fail(w, ENOMEM, "out of memory");
  struct pending_index *e =
      &w->pend[(w->pend_head + w->pend_count) % w->pend_cap];
  if ((e->key = malloc(w->first_len ? w->first_len : 1)) == NULL)
    return fail(w, ENOMEM, "out of memory");
  memcpy(e->key, w->first_key, w->first_len);
  e->key_len = w->first_len;
  e->h = *h;
  e->mark = mark;
  w->pend_count++;
  return index_ready(w);
}

/* A key block of a compressed table, compressed when that saves at least
 * an eighth of it (decompressing costs every lookup that reads it): the
 * bytes to store, and h's block_len and raw_len set; NULL on failure. */
static const uint8_t *compress_key_block(sst_writer *w, const uint8_t *data,
                                         size_t len, sst_handle *h) {
  h->raw_len = 0;
  if (len > SST_KEYZ_RAW_MAX)
    return data;
  size_t bound = ZSTD_compressBound(len);
  if (w->kbuf_cap < bound) {
    uint8_t *n = realloc(w->kbuf, bound);
    if (n == NULL) {
      fail(w, ENOMEM, "out of memory");
      return NULL;
    }
    w->kbuf = n;
    w->kbuf_cap = bound;
  }
  size_t n = ZSTD_compress2(w->kctx, w->kbuf, w->kbuf_cap, data, len);
  if (ZSTD_isError(n)) {
    fail(w, EIO, "key block compression");
    return NULL;
  }
  if (n > len - len / 8)
    return data;
  h->block_len = n;
  h->raw_len = len;
  return w->kbuf;
}

static int flush_block(sst_writer *w, uint64_t mark) {
  const uint8_t *data;
  size_t len;
  if (sst_block_builder_finish(&w->block, &data, &len))
    return fail(w, ENOMEM, "out of memory");
  /* block_off relative to the key region, which starts after the values;
   * the value run is filled in by index_ready. */
  sst_handle h = {.block_off = w->keys.size, .block_len = len};
  if (w->kctx != NULL && (data = compress_key_block(w, data, len, &h)) == NULL)
    return w->err;
  len = (size_t)h.block_len;
  uint8_t trailer[SST_TRAILER_SIZE];
  sst_put_u32(trailer, sst_checksum(data, len));
  int wrc;
  if ((wrc = sst_spill_write(&w->keys, data, len)) ||
      (wrc = sst_spill_write(&w->keys, trailer, sizeof trailer)))
    return fail(w, wrc, "key block spill");

  h.filter_off = w->filter.size;
  if (w->probes) {
    uint8_t part[4096];
    size_t plen =
        sst_filter_size((uint32_t)w->hash_count, w->o.filter_bits_per_key);
    uint8_t *buf = plen <= sizeof part ? part : malloc(plen);
    if (buf == NULL)
      return fail(w, ENOMEM, "out of memory");
    sst_filter_build(w->hashes, (uint32_t)w->hash_count,
                     w->o.filter_bits_per_key, w->probes, buf);
    int rc = sst_spill_write(&w->filter, buf, plen);
    if (buf != part)
      free(buf);
    if (rc)
      return fail(w, rc, "filter spill");
    h.filter_len = plen;
  }
  if (index_add(w, &h, mark))
    return w->err;
  w->block_count++;
  sst_block_builder_reset(&w->block);
  w->hash_count = 0;
  return 0;
}

/* The dictionary index of (mode, uid, gid), adding it if there is room;
 * 0 when it is not in the dictionary (the entry then stores it inline). */
static uint64_t dict_attr(sst_writer *w, const sst_meta *m) {
  if (w->dict_slots == NULL) {
    if ((w->dict_slots = calloc(DICT_SLOTS, sizeof *w->dict_slots)) == NULL ||
        (w->dict = malloc(SST_DICT_MAX * sizeof *w->dict)) == NULL)
      return 0;
  }
  uint32_t key[3] = {m->mode, m->uid, m->gid};
  size_t i = (size_t)XXH3_64bits(key, sizeof key) & (DICT_SLOTS - 1);
  for (;; i = (i + 1) & (DICT_SLOTS - 1)) {
    uint16_t slot = w->dict_slots[i];
    if (slot == 0)
      break;
    const sst_attr *a = &w->dict[slot - 1];
    if (a->mode == m->mode && a->uid == m->uid && a->gid == m->gid)
      return slot;
  }
  if (w->dict_count == SST_DICT_MAX)
    return 0;
  w->dict[w->dict_count] = (sst_attr){m->mode, m->uid, m->gid};
  w->dict_slots[i] = (uint16_t)++w->dict_count;
  return w->dict_count;
}

/* Adds the entry of key, its value stored at *at (flags: TOMBSTONE, or
 * SHARED for a value stored before this entry), with metadata m (NULL:
 * none) and its xattr bytes; mark: pieces_in when it came (see
 * index_add). */
static int add_entry(sst_writer *w, const uint8_t *key, size_t key_len,
                     unsigned flags, const vloc *at, const sst_meta *m,
                     const uint8_t *xattrs, uint64_t mark) {
  vloc placed = *at;
  const vloc *loc = &placed;
  if (placed.run_start)
    placed.off = w->values_off;
  uint64_t value_len = loc->len;
  if (w->block.count == 0) {
    memcpy(w->first_key, key, key_len);
    w->first_len = key_len;
  }
  flags |= loc->kind;
  if (loc->kind)
    w->any_values = 1;
  sst_value_ref v = {.flags = flags,
                     .len = value_len,
                     .rel = (flags & (SST_FLAG_SHARED | SST_FLAG_PACKED))
                                ? loc->off
                                : loc->off - w->values_off,
                     .block = loc->block,
                     .stored = loc->stored,
                     .checksum = loc->checksum};
  if (m != NULL && !(flags & SST_FLAG_TOMBSTONE)) {
    if (m->type == SST_TYPE_DIR && value_len != 0)
      return SST_EINVAL;
    v.flags |= SST_FLAG_META;
    v.type = m->type;
    v.mode = m->mode;
    v.uid = m->uid;
    v.gid = m->gid;
    v.attr = dict_attr(w, m);
    v.mtime_sec = m->mtime_sec;
    v.mtime_nsec = m->mtime_nsec;
    v.link_id = m->link_id;
    v.nlink = m->link_id ? m->nlink : 1;
    v.xattr_len = m->xattr_len;
    v.xattrs = xattrs;
    w->features |= SST_FEATURE_META;
    if (m->xattr_len)
      w->features |= SST_FEATURE_XATTRS;
  }
  uint8_t small[SST_VALUE_REF_MAX + 256];
  uint8_t *payload = small;
  if (v.xattr_len > sizeof small - SST_VALUE_REF_MAX &&
      (payload = malloc(SST_VALUE_REF_MAX + v.xattr_len)) == NULL)
    return fail(w, ENOMEM, "out of memory");
  size_t plen = (size_t)(sst_value_ref_encode(payload, SST_FORMAT_VERSION,
                                              w->features, &v) -
                         payload);
  int rc = sst_block_builder_add(&w->block, key, key_len, payload, plen);
  if (payload != small)
    free(payload);
  if (rc)
    return fail(w, ENOMEM, "out of memory");
  if (!(flags & SST_FLAG_TOMBSTONE)) {
    w->have_last = 1;
    w->last = *loc;
  }
  if (w->probes) {
    if (w->hash_count == w->hash_cap) {
      size_t cap = w->hash_cap ? 2 * w->hash_cap : 64;
      uint64_t *h = realloc(w->hashes, cap * sizeof *h);
      if (h == NULL)
        return fail(w, ENOMEM, "out of memory");
      w->hashes = h;
      w->hash_cap = cap;
    }
    w->hashes[w->hash_count++] = sst_filter_hash(key, key_len);
  }
  w->key_count++;
  w->key_bytes += key_len;
  w->value_bytes += value_len;
  if (flags & SST_FLAG_TOMBSTONE)
    w->tombstone_count++;
  if ((w->o.block_keys && w->block.count >= w->o.block_keys) ||
      sst_block_builder_size(&w->block) >= w->o.block_bytes)
    return flush_block(w, mark);
  return 0;
}

/* Entries waiting beyond this many: wait for the pool instead. */
#define DEFER_MAX 65536

/* Adds the entries at the head of the queue whose values are placed.
 * Runs just after the piece that placed the oldest is written (from
 * take_piece), so that the file then stands at the mark of that entry:
 * adding an entry takes no piece, so it never runs inside itself. */
static int add_deferred(sst_writer *w) {
  if (w->df_adding)
    return w->err;
  w->df_adding = 1;
  while (w->err == 0 && w->df_count > 0) {
    struct deferred *d = &w->df[w->df_head];
    if (d->loc.cv != 0)
      break;
    add_entry(w, d->key, d->key_len, d->flags, &d->loc,
              d->has_meta ? &d->meta : NULL, d->xattrs, d->mark);
    free(d->key);
    free(d->xattrs);
    d->key = d->xattrs = NULL;
    w->df_head = (w->df_head + 1) % w->df_cap;
    w->df_count--;
  }
  w->df_adding = 0;
  return w->err;
}

/* Adds the entry of the last key accepted, with the metadata set for it:
 * now, or after the entries before it once its value is placed. */
static int emit(sst_writer *w, unsigned flags, const vloc *loc) {
  const sst_meta *m =
      w->has_meta && !(flags & SST_FLAG_TOMBSTONE) ? &w->meta : NULL;
  w->has_meta = 0;
  if (m != NULL && m->type == SST_TYPE_DIR && loc->len != 0)
    return SST_EINVAL;
  if (w->df_count == 0 && loc->cv == 0)
    return add_entry(w, w->last_key, w->last_len, flags, loc, m, w->xattr_buf,
                     w->pieces_in);
  if (ring_room((void **)&w->df, sizeof *w->df, &w->df_head, w->df_count,
                &w->df_cap, 64))
    return fail(w, ENOMEM, "out of memory");
  struct deferred *d = &w->df[(w->df_head + w->df_count) % w->df_cap];
  *d = (struct deferred){.key_len = w->last_len,
                         .flags = flags,
                         .loc = *loc,
                         .mark = w->pieces_in,
                         .has_meta = m != NULL};
  if (m != NULL)
    d->meta = *m;
  if ((d->key = malloc(w->last_len)) == NULL ||
      (m != NULL && m->xattr_len &&
       (d->xattrs = malloc(m->xattr_len)) == NULL)) {
    free(d->key);
    d->key = NULL;
    return fail(w, ENOMEM, "out of memory");
  }
  memcpy(d->key, w->last_key, w->last_len);
  if (d->xattrs != NULL)
    memcpy(d->xattrs, w->xattr_buf, m->xattr_len);
  w->df_count++;
  /* Queued first, so that the drain places its value and adds it. */
  return w->df_count > DEFER_MAX ? drain(w) : 0;
}

int sst_writer_set_meta(sst_writer *w, const sst_meta *m) {
  if (w->in_value)
    return SST_ESTATE;
  if (m == NULL) {
    w->has_meta = 0;
    return 0;
  }
  if (m->type > SST_TYPE_SYMLINK || m->mode > 07777 ||
      m->mtime_nsec > 999999999 || m->xattr_len > SST_XATTRS_MAX ||
      (m->xattr_len && m->xattrs == NULL) ||
      (m->link_id && (m->nlink < 2 || m->type != SST_TYPE_FILE)) ||
      (!m->link_id && m->nlink > 1))
    return SST_EINVAL;
  if (m->xattr_len) {
    uint8_t *b = realloc(w->xattr_buf, m->xattr_len);
    if (b == NULL)
      return ENOMEM;
    w->xattr_buf = b;
    memcpy(b, m->xattrs, m->xattr_len);
    /* What the reader would refuse is refused here. */
    sst_value_ref probe = {.flags = SST_FLAG_META,
                           .xattr_len = m->xattr_len,
                           .xattrs = b,
                           .attr = 0,
                           .nlink = 1};
    uint8_t *tmp = malloc(SST_VALUE_REF_MAX + m->xattr_len);
    if (tmp == NULL)
      return ENOMEM;
    uint8_t *end = sst_value_ref_encode(tmp, SST_FORMAT_VERSION, 0, &probe);
    sst_value_ref back;
    int bad = sst_value_ref_decode(tmp, end, SST_FORMAT_VERSION, 0, &back);
    free(tmp);
    if (bad)
      return SST_EINVAL;
  }
  w->meta = *m;
  w->meta.xattrs = NULL;
  w->has_meta = 1;
  return 0;
}

/* A packed value's place, as sst_writer_last_value gives it: bit 63 set,
 * the block number above bit 24, the offset in the block below. */
#define PACKED_TOKEN (1ull << 63)
#define PACKED_OFF_BITS 24

int sst_writer_last_value(sst_writer *w, uint64_t *offset, uint64_t *len,
                          uint32_t *checksum) {
  if (w->df_count > 0 && drain(w)) /* the last entry is not added yet */
    return w->err;
  if (!w->have_last)
    return SST_ESTATE;
  *offset = w->last.kind == SST_FLAG_PACKED
                ? PACKED_TOKEN | w->last.block << PACKED_OFF_BITS | w->last.off
                : w->last.off;
  *len = w->last.len;
  *checksum = w->last.checksum;
  return 0;
}

/* The stored length of the chunked value of len bytes written at off, or
 * 0. */
static uint64_t chunked_at(const sst_writer *w, uint64_t off, uint64_t len) {
  size_t lo = 0, hi = w->chunked_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (w->chunked[mid][0] < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < w->chunked_count && w->chunked[lo][0] == off &&
                 w->chunked[lo][2] == len
             ? w->chunked[lo][1]
             : 0;
}

int sst_writer_add_shared(sst_writer *w, const void *key, size_t key_len,
                          uint64_t offset, uint64_t len, uint32_t checksum) {
  vloc loc = {.off = offset, .len = len, .checksum = checksum};
  if (offset & PACKED_TOKEN) {
    loc.kind = SST_FLAG_PACKED;
    loc.block = (offset & ~PACKED_TOKEN) >> PACKED_OFF_BITS;
    loc.off = offset & ((1ull << PACKED_OFF_BITS) - 1);
    uint64_t size = loc.block < w->vb_count    ? w->vb[loc.block].raw_len
                    : loc.block == w->vb_count ? w->vlen
                                               : 0;
    if (len == 0 || loc.off > size || len > size - loc.off)
      return SST_EINVAL;
  } else if ((loc.stored = chunked_at(w, offset, len)) != 0) {
    loc.kind = SST_FLAG_CHUNKED;
  } else if (offset < SST_HEADER_SIZE || offset > w->pos ||
             len > w->pos - offset) {
    return SST_EINVAL;
  }
  if (w->has_meta && w->meta.type == SST_TYPE_DIR)
    return SST_EINVAL;
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  if (len == 0 && compressing(w)) {
    /* Nothing is shared: an empty value of its own at its block's run
     * start, as store_value places one (its recorded offset may be a run
     * start that is no longer the current one). */
    loc = (vloc){.checksum = checksum, .run_start = 1};
    return emit(w, 0, &loc);
  }
  return emit(w, SST_FLAG_SHARED, &loc);
}

int sst_writer_add(sst_writer *w, const void *key, size_t key_len,
                   const void *value, uint64_t value_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  if (w->has_meta && w->meta.type == SST_TYPE_DIR && value_len != 0)
    return SST_EINVAL;
  if (value_len > SIZE_MAX)
    return fail(w, EFBIG, "value too large");
  vloc loc;
  int dup;
  if (store_value(w, value, value_len, &loc, &dup))
    return w->err;
  return emit(w, dup ? SST_FLAG_SHARED : 0, &loc);
}

int sst_writer_add_tombstone(sst_writer *w, const void *key, size_t key_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  w->has_meta = 0; /* a tombstone carries none */
  /* Compressed, the file may not yet stand where this block's run ends
   * (pieces in the pool): no bytes, so the run's start (relative 0). */
  vloc loc = {.off = w->pos,
              .checksum = sst_checksum("", 0),
              .run_start = compressing(w)};
  return emit(w, SST_FLAG_TOMBSTONE, &loc);
}

int sst_writer_begin_value(sst_writer *w, const void *key, size_t key_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  XXH3_64bits_reset(w->stream_hash);
  if (w->h128)
    XXH3_128bits_reset(w->h128);
  w->stream_off = w->pos;
  w->stream_len = 0;
  w->clen = 0;
  w->chunking = 0;
  w->in_value = 1;
  return 0;
}

int sst_writer_append_value(sst_writer *w, const void *data, size_t len) {
  if (w->err)
    return w->err;
  if (!w->in_value)
    return SST_ESTATE;
  XXH3_64bits_update(w->stream_hash, data, len);
  if (w->h128)
    XXH3_128bits_update(w->h128, data, len);
  w->stream_len += len;
  if (!compressing(w))
    return out_write(w, data, len);
  /* Compressed: a chunk is held until it is full; a value that ends
   * within its first chunk is then stored like any value in memory. */
  const uint8_t *p = data;
  while (len > 0) {
    size_t n = w->o.chunk_size - w->clen;
    if (n > len)
      n = len;
    memcpy(w->cbuf + w->clen, p, n);
    w->clen += n;
    p += n;
    len -= n;
    if (w->clen == w->o.chunk_size && len > 0) {
      if (!w->chunking) {
        w->chunking = 1;
        if (begin_chunks(w))
          return w->err;
      }
      if (write_chunk(w, w->cbuf, w->clen))
        return w->err;
      w->clen = 0;
    }
  }
  return 0;
}

int sst_writer_end_value(sst_writer *w) {
  if (w->err)
    return w->err;
  if (!w->in_value)
    return SST_ESTATE;
  w->in_value = 0;
  vloc loc;
  int dup = 0;
  if (compressing(w) && !w->chunking) {
    if (store_value(w, w->cbuf, w->clen, &loc, &dup))
      return w->err;
    return emit(w, dup ? SST_FLAG_SHARED : 0, &loc);
  }
  if (compressing(w)) {
    if (w->clen > 0 && write_chunk(w, w->cbuf, w->clen))
      return w->err;
    if (end_chunks(w, w->stream_len, &loc))
      return w->err;
  } else {
    loc = (vloc){.off = w->stream_off,
                 .len = w->stream_len,
                 .checksum = (uint32_t)XXH3_64bits_digest(w->stream_hash)};
  }
  if (w->h128 && loc.len > 0) {
    /* A copy of an earlier value is taken back out of the file. Equal
     * stored bytes mean equal values; a compressor that is deterministic
     * (one level, one dictionary) makes equal values store alike. */
    XXH128_hash_t h = XXH3_128bits_digest(w->h128);
    vloc *found = dd_find(w, h.low64, h.high64);
    if (found != NULL && (found->cv != 0 || loc.cv != 0)) {
      /* Both must be in the file to be compared. */
      if (drain(w))
        return w->err;
      if (loc.cv != 0)
        loc = w->cv_done; /* this value was the last one written */
    }
    if (found != NULL && ensure_rb(w) == 0 && found->kind == loc.kind &&
        found->len == loc.len && found->stored == loc.stored &&
        same_bytes(w, found->off, loc.off, loc.kind ? loc.stored : loc.len)) {
      if (loc.kind == SST_FLAG_CHUNKED)
        w->chunked_count--;
      if (truncate_to(w, loc.off))
        return w->err;
      w->stats.dedup_values++;
      w->stats.dedup_bytes += loc.len;
      return emit(w, SST_FLAG_SHARED, found);
    }
    if (w->err == 0)
      dd_add(w, &loc, h.low64, h.high64);
  }
  if (w->err)
    return w->err;
  return emit(w, 0, &loc);
}

int sst_writer_add_from(sst_writer *w, const void *key, size_t key_len,
                        const sst_reader *r, const sst_entry *e, int *read_rc) {
  *read_rc = 0;
  if (!(e->flags & SST_FLAG_CHUNKED)) {
    const uint8_t *v;
    if ((*read_rc = sst_reader_value(r, e, &v)) != 0)
      return *read_rc;
    return sst_writer_add(w, key, key_len, v, e->value_len);
  }
  /* A value stored in chunks may be large: a chunk at a time, each
   * checked as it is read (after its table), so that it is decompressed
   * once, not once to check it whole and again to copy it. A bad chunk
   * fails the writer: no table is made of a damaged copy. */
  if ((*read_rc = sst_vread_check_table(r, e)) != 0)
    return *read_rc;
  size_t cap = 1u << 20;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    return ENOMEM;
  int rc = sst_writer_begin_value(w, key, key_len);
  for (uint64_t off = 0; rc == 0 && off < e->value_len;) {
    size_t got;
    if ((*read_rc = sst_reader_read(r, e, off, buf, cap, &got)) != 0) {
      rc = *read_rc;
      fail(w, rc, "reading a value to copy");
      break;
    }
    rc = sst_writer_append_value(w, buf, got);
    off += got;
  }
  free(buf);
  return rc ? rc : sst_writer_end_value(w);
}

void sst_writer_stats_get(const sst_writer *w, sst_writer_stats *out) {
  *out = w->stats;
}

/* Entries still waiting in the queue count as added: they are. */
uint64_t sst_writer_key_count(const sst_writer *w) {
  return w->key_count + w->df_count;
}
uint64_t sst_writer_value_bytes(const sst_writer *w) {
  uint64_t n = w->value_bytes;
  for (size_t i = 0; i < w->df_count; i++)
    n += w->df[(w->df_head + i) % w->df_cap].loc.len;
  return n;
}

/* Hashes what passes through on its way to the output. */
struct hashing_sink {
  sst_writer *w;
  XXH3_state_t *h;
};

static int hashing_sink(void *ctx, const void *data, size_t len) {
  struct hashing_sink *s = ctx;
  XXH3_64bits_update(s->h, data, len);
  return out_write(s->w, data, len);
}

/* One section of the properties block: tag, length, body. */
static int write_section(sst_writer *w, struct hashing_sink *hs, unsigned tag,
                         const uint8_t *body, size_t len) {
  uint8_t head[20];
  uint8_t *h = sst_put_varint(head, tag);
  h = sst_put_varint(h, len);
  if (hashing_sink(hs, head, (size_t)(h - head)) || hashing_sink(hs, body, len))
    return w->err;
  return 0;
}

/* The properties block: tagged sections, then a checksum of them all:
 * the metadata dictionary, the value blocks, the compression dictionary. */
static int write_props(sst_writer *w) {
  if (w->dict_count == 0 && !w->any_values && w->stats.dedup_values == 0)
    return 0;
  struct hashing_sink hs = {w, w->stream_hash};
  XXH3_64bits_reset(hs.h);
  if (w->dict_count) {
    size_t cap = 10 + (size_t)w->dict_count * 15;
    uint8_t *body = malloc(cap);
    if (body == NULL)
      return fail(w, ENOMEM, "out of memory");
    uint8_t *p = sst_put_varint(body, w->dict_count);
    for (uint32_t i = 0; i < w->dict_count; i++) {
      p = sst_put_varint(p, w->dict[i].mode);
      p = sst_put_varint(p, w->dict[i].uid);
      p = sst_put_varint(p, w->dict[i].gid);
    }
    int rc = write_section(w, &hs, SST_PROP_ATTRS, body, (size_t)(p - body));
    free(body);
    if (rc)
      return w->err;
  }
  if (w->any_values) {
    size_t cap = 40 + w->vb_count * 38;
    uint8_t *body = malloc(cap);
    if (body == NULL)
      return fail(w, ENOMEM, "out of memory");
    uint8_t *p = sst_put_varint(body, SST_CODEC_ZSTD);
    p = sst_put_varint(p, w->o.chunk_size);
    p = sst_put_varint(p, w->vb_count);
    uint64_t prev_end = SST_HEADER_SIZE;
    for (size_t i = 0; i < w->vb_count; i++) {
      const sst_vblock *b = &w->vb[i];
      p = sst_put_varint(p, b->off - prev_end);
      p = sst_put_varint(p, (uint64_t)b->stored << 1 | b->raw);
      p = sst_put_varint(p, b->raw_len);
      sst_put_u32(p, b->checksum);
      sst_put_u32(p + 4, b->stored_sum);
      p += 8;
      prev_end = b->off + b->stored;
    }
    int rc = write_section(w, &hs, SST_PROP_VALUES, body, (size_t)(p - body));
    free(body);
    if (rc)
      return w->err;
    w->features |= SST_FEATURE_VALUES;
    if (w->zdict_len) {
      if (write_section(w, &hs, SST_PROP_DICT, w->zdict, w->zdict_len))
        return w->err;
      w->features |= SST_FEATURE_DICT;
    }
  }
  if (w->stats.dedup_values) {
    uint8_t body[20];
    uint8_t *p = sst_put_varint(body, w->stats.dedup_values);
    p = sst_put_varint(p, w->stats.dedup_bytes);
    if (write_section(w, &hs, SST_PROP_STATS, body, (size_t)(p - body)))
      return w->err;
  }
  uint8_t trailer[4];
  sst_put_u32(trailer, (uint32_t)XXH3_64bits_digest(hs.h));
  return out_write(w, trailer, sizeof trailer);
}

static int write_tail(sst_writer *w) {
  sst_footer f = {0};
  f.keys_off = w->pos;
  if (sst_spill_drain(&w->keys, out_sink, w))
    return fail(w, w->err ? w->err : EIO, "key block copy");
  f.filter_off = w->pos;
  if (sst_spill_drain(&w->filter, out_sink, w))
    return fail(w, w->err ? w->err : EIO, "filter copy");
  f.filter_len = w->pos - f.filter_off;
  f.props_off = w->pos;
  if (write_props(w))
    return w->err;

  f.index_off = w->pos;
  struct hashing_sink hs = {w, w->stream_hash};
  XXH3_64bits_reset(hs.h);
  uint8_t count[4], trailer[4];
  sst_put_u32(count, (uint32_t)w->block_count);
  int rc;
  if ((rc = sst_spill_drain(&w->index_entries, hashing_sink, &hs)) ||
      (rc = sst_spill_drain(&w->index_restarts, hashing_sink, &hs)) ||
      (rc = hashing_sink(&hs, count, sizeof count)))
    return fail(w, rc, "index copy");
  f.index_len = w->pos - f.index_off;
  sst_put_u32(trailer, (uint32_t)XXH3_64bits_digest(hs.h));
  if (out_write(w, trailer, sizeof trailer))
    return w->err;

  f.key_count = w->key_count;
  f.tombstone_count = w->tombstone_count;
  f.key_bytes = w->key_bytes;
  f.value_bytes = w->value_bytes;
  f.block_count = w->block_count;
  f.block_keys = w->o.block_keys;
  f.block_bytes = w->o.block_bytes;
  f.restart_interval = w->o.restart_interval;
  f.filter_bits_per_key = w->o.filter_bits_per_key;
  f.filter_probes = w->probes;
  f.features = w->features;
  uint8_t footer[SST_FOOTER_SIZE];
  sst_footer_encode(&f, footer);
  if (out_write(w, footer, sizeof footer) || out_flush(w))
    return w->err;
  return 0;
}

static int sync_dir(const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) ? errno : 0;
  close(fd);
  return rc;
}

/* Writes what remains of the table after the last key: its last key
 * block, then the tail. */
static int complete_table(sst_writer *w) {
  if (w->in_value)
    fail(w, SST_ESTATE, "a streamed value was not ended");
  if (w->err == 0 && compressing(w))
    close_vblock(w);
  if (w->err == 0 && w->training)
    end_training(w);
  if (w->err == 0)
    drain(w);
  if (w->err == 0 && (w->df_count > 0 || w->cv_count > 0))
    fail(w, SST_EINVAL, "entries still waiting for their values");
  if (w->err == 0 && w->block.count > 0)
    flush_block(w, w->pieces_in);
  if (w->block_count > UINT32_MAX)
    fail(w, EFBIG, "more than 2^32 key blocks");
  if (w->err == 0)
    write_tail(w);
  return w->err;
}

static int finish_result(sst_writer *w, sst_error *err) {
  w->finished = 1;
  if (w->err) {
    if (err)
      *err = w->errmsg;
    return w->err;
  }
  return 0;
}

int sst_writer_finish_temp(sst_writer *w, const char **tmp_path,
                           sst_error *err) {
  if (w->finished)
    return sst_error_set(err, SST_ESTATE, "%s: writer already finished",
                         w->path);
  /* The lock stays with lock_fd, which shares the open file. */
  if (complete_table(w) == 0 && close(w->fd) != 0)
    fail(w, errno, "close");
  w->fd = -1;
  *tmp_path = w->err == 0 ? w->tmp_path : NULL;
  return finish_result(w, err);
}

int sst_writer_finish(sst_writer *w, sst_error *err) {
  if (w->finished)
    return sst_error_set(err, SST_ESTATE, "%s: writer already finished",
                         w->path);
  complete_table(w);
  if (w->err == 0 && !w->o.no_sync && fsync(w->fd) != 0)
    fail(w, errno, "fsync");
  if (w->err == 0 && close(w->fd) != 0)
    fail(w, errno, "close");
  else if (w->err == 0)
    w->fd = -1;
  if (w->err == 0 && rename(w->tmp_path, w->path) != 0)
    fail(w, errno, "rename into place");
  if (w->err == 0) {
    free(w->tmp_path);
    w->tmp_path = NULL;
    close(w->lock_fd); /* the lock is no longer needed once renamed */
    w->lock_fd = -1;
    if (!w->o.no_sync) {
      int rc = sync_dir(w->path);
      if (rc)
        fail(w, rc, "fsync of directory");
    }
  }
  return finish_result(w, err);
}

void sst_writer_free(sst_writer *w) {
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close(w->fd);
  if (w->tmp_path != NULL)
    unlink(w->tmp_path);
  if (w->lock_fd >= 0) /* after the unlink: no scan finds it unlocked */
    close(w->lock_fd);
  free(w->tmp_path);
  free(w->path);
  free(w->obuf);
  free(w->first_key);
  free(w->last_key);
  free(w->hashes);
  if (w->stream_hash)
    XXH3_freeState(w->stream_hash);
  sst_block_builder_free(&w->block);
  sst_spill_free(&w->keys);
  sst_spill_free(&w->filter);
  free(w->xattr_buf);
  free(w->dict);
  free(w->dict_slots);
  sst_spill_free(&w->index_entries);
  sst_spill_free(&w->index_restarts);
  sst_zpool_free(w->zp);
  ZSTD_freeDCtx(w->dctx);
  ZSTD_freeCCtx(w->kctx);
  free(w->kbuf);
  ZSTD_freeCDict(w->cdict);
  ZSTD_freeDDict(w->ddict);
  free(w->zdict);
  free(w->vbuf);
  free(w->vb);
  for (size_t i = 0; i < w->held_count; i++)
    free(w->held[i]);
  free(w->held);
  free(w->samples);
  free(w->cbuf);
  free(w->ctab);
  if (w->h128)
    XXH3_freeState(w->h128);
  free(w->chunked);
  free(w->dd);
  for (size_t i = 0; w->pend != NULL && i < w->pend_cap; i++)
    free(w->pend[i].key);
  free(w->pend);
  for (size_t i = 0; w->df != NULL && i < w->df_cap; i++) {
    free(w->df[i].key);
    free(w->df[i].xattrs);
  }
  free(w->df);
  free(w->cv);
  free(w->rb);
  free(w->rb2);
  free(w);
}
