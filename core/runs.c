/* runs.c — the sorter's sorted runs (format in runs.h), the sources a
 * merge reads, and the merge: a binary heap of sources ordered by key,
 * and among equal keys newest first, so that the first entry of a key to
 * leave the heap is the one that wins and the others are skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "runs.h"
#include "spill.h"

#define RUN_BUF_SIZE (1u << 20)
#define RUN_READ_SIZE (64u << 10) /* per file run while merging */
/* Table pages already merged are given back every this many bytes. */
#define TABLE_RELEASE_STEP ((uint64_t)4 << 20)

/* ---- writing ------------------------------------------------------------- */

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

size_t sst_run_record_size(size_t key_len, uint64_t value_len) {
  return 1 + varint_size(key_len) + varint_size(value_len) + key_len +
         (size_t)value_len;
}

int sst_run_out_file(sst_run_out *o, const char *temp_dir) {
  *o = (sst_run_out){.fd = -1};
  if ((o->buf = malloc(RUN_BUF_SIZE)) == NULL)
    return ENOMEM;
  o->cap = RUN_BUF_SIZE;
  int fd = sst_temp_fd(temp_dir);
  if (fd < 0) {
    free(o->buf);
    o->buf = NULL;
    return -fd;
  }
  o->fd = fd;
  return 0;
}

void sst_run_out_memory(sst_run_out *o, uint8_t *buf, size_t cap) {
  *o = (sst_run_out){.fd = -1, .buf = buf, .cap = cap};
}

static void run_write(sst_run_out *o, const void *data, size_t len) {
  if (o->err)
    return;
  if (o->cap - o->len < len) {
    if (o->fd < 0) { /* sized beforehand: cannot happen */
      o->err = EOVERFLOW;
      return;
    }
    o->err = sst_write_all(o->fd, o->buf, o->len);
    o->len = 0;
    if (len > o->cap) {
      if (!o->err)
        o->err = sst_write_all(o->fd, data, len);
      return;
    }
  }
  memcpy(o->buf + o->len, data, len);
  o->len += len;
}

void sst_run_put(sst_run_out *o, unsigned flags, const uint8_t *key,
                 size_t key_len, const uint8_t *value, uint64_t value_len) {
  uint8_t head[24], *p = head;
  *p++ = (uint8_t)flags;
  p = sst_put_varint(p, key_len);
  p = sst_put_varint(p, value_len);
  run_write(o, head, (size_t)(p - head));
  run_write(o, key, key_len);
  run_write(o, value, (size_t)value_len);
}

int sst_run_out_end(sst_run_out *o, int *fd) {
  int rc = o->err;
  *fd = -1;
  if (o->fd >= 0) {
    if (rc == 0)
      rc = sst_write_all(o->fd, o->buf, o->len);
    free(o->buf);
    if (rc == 0)
      *fd = o->fd;
    else
      close(o->fd);
  }
  *o = (sst_run_out){.fd = -1};
  return rc;
}

/* ---- sources ------------------------------------------------------------- */

void sst_source_recs(sst_source *src, const sst_rec *recs, size_t count) {
  *src = (sst_source){.kind = SST_SRC_RECS, .recs = recs, .count = count};
}

void sst_source_memory(sst_source *src, const uint8_t *data, size_t len) {
  *src = (sst_source){.kind = SST_SRC_MEM, .p = data, .end = data + len};
}

int sst_source_file(sst_source *src, int fd) {
  *src = (sst_source){.kind = SST_SRC_FILE, .fd = fd};
  src->buf = malloc(RUN_READ_SIZE);
  return src->buf ? 0 : ENOMEM;
}

int sst_source_table(sst_source *src, const sst_reader *r) {
  *src = (sst_source){.kind = SST_SRC_TABLE, .r = r};
  return sst_iter_new(r, &src->it);
}

void sst_source_close(sst_source *src) {
  free(src->buf);
  free(src->rec);
  sst_iter_free(src->it);
  src->buf = src->rec = NULL;
  src->it = NULL;
}

/* Parses the record at [p, end) of a run; NULL if it is cut short or
 * malformed. */
static const uint8_t *parse_record(sst_source *src, const uint8_t *p,
                                   const uint8_t *end) {
  uint64_t key_len, value_len;
  if (p == end)
    return NULL;
  src->flags = *p++ & SST_FLAG_TOMBSTONE;
  if ((p = sst_get_varint(p, end, &key_len)) == NULL ||
      (p = sst_get_varint(p, end, &value_len)) == NULL ||
      key_len > SST_KEY_MAX || key_len > (uint64_t)(end - p) ||
      value_len > (uint64_t)(end - p) - key_len)
    return NULL;
  src->key = p;
  src->key_len = (size_t)key_len;
  src->value = p + key_len;
  src->value_len = value_len;
  return p + key_len + value_len;
}

static int memory_next(sst_source *src) {
  if (src->p == src->end) {
    src->done = 1;
    return 0;
  }
  const uint8_t *next = parse_record(src, src->p, src->end);
  if (next == NULL)
    return EIO;
  src->p = next;
  return 0;
}

/* Reads more of a file run after what is unread in the buffer. 0 with
 * nothing more at the end of the file. */
static int file_fill(sst_source *src) {
  memmove(src->buf, src->buf + src->buf_pos, src->buf_len - src->buf_pos);
  src->buf_len -= src->buf_pos;
  src->buf_pos = 0;
  for (;;) {
    ssize_t got = pread(src->fd, src->buf + src->buf_len,
                        RUN_READ_SIZE - src->buf_len, (off_t)src->file_pos);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return errno;
    src->buf_len += (size_t)got;
    src->file_pos += (uint64_t)got;
    return 0;
  }
}

/* The record at the start of a full buffer is larger than the buffer:
 * it is read whole into a buffer of its own. */
static int file_big_record(sst_source *src) {
  uint64_t key_len, value_len;
  const uint8_t *p = src->buf + 1, *end = src->buf + src->buf_len;
  unsigned flags = src->buf[0] & SST_FLAG_TOMBSTONE;
  if ((p = sst_get_varint(p, end, &key_len)) == NULL ||
      (p = sst_get_varint(p, end, &value_len)) == NULL ||
      key_len > SST_KEY_MAX || value_len > SIZE_MAX - key_len)
    return EIO;
  size_t size = (size_t)(key_len + value_len);
  if (size > src->rec_cap) {
    uint8_t *n = realloc(src->rec, size);
    if (n == NULL)
      return ENOMEM;
    src->rec = n;
    src->rec_cap = size;
  }
  size_t have = (size_t)(end - p);
  memcpy(src->rec, p, have);
  int rc = sst_pread_all(src->fd, src->rec + have, size - have, src->file_pos);
  if (rc)
    return rc;
  src->file_pos += size - have;
  src->buf_pos = src->buf_len = 0;
  src->flags = flags;
  src->key = src->rec;
  src->key_len = (size_t)key_len;
  src->value = src->rec + key_len;
  src->value_len = value_len;
  return 0;
}

static int file_next(sst_source *src) {
  for (;;) {
    const uint8_t *next =
        parse_record(src, src->buf + src->buf_pos, src->buf + src->buf_len);
    if (next != NULL) {
      src->buf_pos = (size_t)(next - src->buf);
      return 0;
    }
    size_t had = src->buf_len - src->buf_pos;
    if (had == RUN_READ_SIZE)
      return file_big_record(src);
    int rc = file_fill(src);
    if (rc)
      return rc;
    if (src->buf_len == had) { /* the end of the file */
      if (had == 0) {
        src->done = 1;
        return 0;
      }
      return EIO; /* cut short */
    }
  }
}

/* Gives back the mapped pages of the values merged so far: a table read
 * from start to end would otherwise stay resident whole. Values lie in
 * key order in a table from the writer; where they do not, this only
 * costs page faults. */
static void table_release(sst_source *src, uint64_t upto) {
  if (upto < src->released + TABLE_RELEASE_STEP ||
      sst_reader_data(src->r) == NULL) /* a URL: nothing mapped */
    return;
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = (src->released + page - 1) & ~(page - 1);
  uint64_t end = upto & ~(page - 1);
  if (end > start)
    (void)madvise((void *)(sst_reader_data(src->r) + start),
                  (size_t)(end - start), MADV_DONTNEED);
  src->released = upto;
}

static int table_next(sst_source *src) {
  int rc = src->started ? sst_iter_next(src->it) : sst_iter_seek_first(src->it);
  src->started = 1;
  if (rc == 0 && !sst_iter_valid(src->it))
    rc = sst_iter_status(src->it);
  if (rc)
    return rc;
  if (!sst_iter_valid(src->it)) {
    src->done = 1;
    return 0;
  }
  const sst_entry *e = sst_iter_entry(src->it);
  src->key = e->key;
  src->key_len = e->key_len;
  src->flags = e->flags & SST_FLAG_TOMBSTONE;
  src->value_len = e->value_len;
  src->value = (const uint8_t *)"";
  src->entry = e;
  /* A compressed value is decompressed when it is written (emit): into
   * a buffer another table's next value would reuse, or a chunk at a
   * time. So is every value of a table read from a URL, which has no
   * mapping to point into and is read into that same buffer. */
  src->deferred = ((e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) != 0 ||
                   sst_reader_data(src->r) == NULL) &&
                  !(e->flags & SST_FLAG_TOMBSTONE);
  if (!(e->flags & SST_FLAG_TOMBSTONE) && !src->deferred) {
    /* Checked here, on the mapping; a reader that reads key blocks with
     * pread would check values by pread too. */
    if ((rc = sst_reader_value(src->r, e, &src->value)))
      return rc;
    if (sst_checksum(src->value, (size_t)e->value_len) != e->value_checksum)
      return SST_ECHECKSUM;
    if (!(e->flags & SST_FLAG_SHARED))
      table_release(src, e->value_offset);
  }
  return 0;
}

static int recs_next(sst_source *src) {
  if (src->pos == src->count) {
    src->done = 1;
    return 0;
  }
  const sst_rec *r = &src->recs[src->pos++];
  /* The keys lie all over their arena: ask for the next ones early. */
  if (src->pos + 8 < src->count)
    __builtin_prefetch(src->recs[src->pos + 8].key);
  src->key = r->key;
  src->key_len = sst_rec_key_len(r);
  src->value = r->key + src->key_len;
  src->value_len = r->value_len;
  src->flags = r->key_len & SST_REC_TOMBSTONE ? SST_FLAG_TOMBSTONE : 0;
  return 0;
}

static int source_next(sst_source *src) {
  switch (src->kind) {
  case SST_SRC_RECS:
    return recs_next(src);
  case SST_SRC_MEM:
    return memory_next(src);
  case SST_SRC_FILE:
    return file_next(src);
  case SST_SRC_TABLE:
    return table_next(src);
  }
  return EINVAL;
}

/* ---- the merge ----------------------------------------------------------- */

static int emit(sst_writer *w, sst_run_out *o, const sst_source *src) {
  if (src->deferred) {
    int read_rc;
    if (w == NULL) /* tables are merged into the writer only */
      return EINVAL;
    return sst_writer_add_from(w, src->key, src->key_len, src->r, src->entry,
                               &read_rc);
  }
  if (w == NULL) {
    sst_run_put(o, src->flags, src->key, src->key_len, src->value,
                src->value_len);
    return o->err;
  }
  if (src->flags & SST_FLAG_TOMBSTONE)
    return sst_writer_add_tombstone(w, src->key, src->key_len);
  return sst_writer_add(w, src->key, src->key_len, src->value, src->value_len);
}

/* Heap order: smaller key first; among equal keys the newer source. */
static int source_before(const sst_source *a, const sst_source *b) {
  int c = sst_key_cmp(a->key, a->key_len, b->key, b->key_len);
  return c ? c < 0 : a->rank > b->rank;
}

static void sift_down(sst_source **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && source_before(h[l], h[m]))
      m = l;
    if (l + 1 < n && source_before(h[l + 1], h[m]))
      m = l + 1;
    if (m == i)
      return;
    sst_source *t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* One source: nothing to compare. */
static int copy_source(sst_source *src, sst_writer *w, sst_run_out *o) {
  int rc;
  while ((rc = source_next(src)) == 0 && !src->done)
    if ((rc = emit(w, o, src)) != 0)
      break;
  return rc;
}

int sst_merge_sources(sst_source *srcs, size_t n, sst_writer *w,
                      sst_run_out *o) {
  for (size_t i = 0; i < n; i++)
    srcs[i].rank = i;
  if (n == 1)
    return copy_source(&srcs[0], w, o);
  sst_source **heap = calloc(n ? n : 1, sizeof *heap);
  uint8_t *last = malloc(SST_KEY_MAX);
  size_t heap_len = 0, last_len = 0;
  int have_last = 0, rc = 0;
  if (heap == NULL || last == NULL)
    rc = ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++)
    if ((rc = source_next(&srcs[i])) == 0 && !srcs[i].done)
      heap[heap_len++] = &srcs[i];
  for (size_t i = heap_len; i-- > 0;)
    sift_down(heap, heap_len, i);
  while (rc == 0 && heap_len > 0) {
    sst_source *top = heap[0];
    /* The first of equal keys is the newest; skip the older ones. */
    if (!have_last ||
        sst_key_cmp(top->key, top->key_len, last, last_len) != 0) {
      rc = emit(w, o, top);
      memcpy(last, top->key, top->key_len);
      last_len = top->key_len;
      have_last = 1;
    }
    if (rc == 0 && (rc = source_next(top)) == 0 && top->done)
      heap[0] = heap[--heap_len];
    sift_down(heap, heap_len, 0);
  }
  free(heap);
  free(last);
  return rc;
}
