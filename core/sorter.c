/* sorter.c — turns records in any order into a sorted, duplicate-free
 * stream for the writer, within a memory budget.
 *
 * Records collect in arena chunks. When they exceed the budget they are
 * sorted (by key, then by arrival) and written as a run to an unlinked
 * temporary file, keeping only the last record of each key. finish merges
 * the runs and what is still in memory with a heap; among equal keys the
 * newest run wins, so the record added last always wins.
 *
 * Run file record: flags u8 | key_len varint | value_len varint | key |
 * value.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "spill.h"

#define CHUNK_SIZE (1u << 20)
#define RUN_BUF_SIZE (1u << 20)
#define RUN_READ_SIZE (64u << 10) /* per run while merging */
/* Runs open at once; beyond this they are merged into one first. */
#define MAX_RUNS 64

typedef struct record {
  uint64_t head; /* first 8 key bytes, big-endian, zero-padded: most
                    comparisons end here without touching the key */
  const uint8_t *key, *value;
  uint64_t value_len;
  uint32_t key_len;
  uint32_t flags;
  uint64_t seq;
} record;

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  uint8_t data[];
} chunk;

struct sst_sorter {
  sst_sorter_options o;
  char *temp_dir;
  chunk *chunks;
  record *recs;
  size_t count, cap;
  uint64_t mem_used, seq, total;
  int *runs;
  size_t run_count;
  uint64_t spills; /* runs written, for statistics */
  int err;
};

void sst_sorter_options_init(sst_sorter_options *o) {
  memset(o, 0, sizeof *o);
  o->memory_budget = 256ull << 20;
}

int sst_sorter_new(const sst_sorter_options *opts, sst_sorter **out,
                   sst_error *err) {
  sst_sorter *s = calloc(1, sizeof *s);
  if (s == NULL)
    return sst_error_set(err, ENOMEM, "sorter: out of memory");
  if (opts)
    s->o = *opts;
  else
    sst_sorter_options_init(&s->o);
  if (s->o.memory_budget == 0)
    s->o.memory_budget = 256ull << 20;
  if (s->o.temp_dir && (s->temp_dir = strdup(s->o.temp_dir)) == NULL) {
    free(s);
    return sst_error_set(err, ENOMEM, "sorter: out of memory");
  }
  *out = s;
  return 0;
}

static uint8_t *arena_alloc(sst_sorter *s, size_t n) {
  chunk *c = s->chunks;
  size_t chunk_size = CHUNK_SIZE;
  while (chunk_size > 4096 && chunk_size > s->o.memory_budget / 8)
    chunk_size /= 2;
  if (c == NULL || c->cap - c->used < n) {
    size_t cap = n > chunk_size / 4 ? n : chunk_size;
    chunk *nc = malloc(sizeof *nc + cap);
    if (nc == NULL)
      return NULL;
    nc->used = 0;
    nc->cap = cap;
    /* A big record gets its own chunk behind the current one, so the
     * current chunk's free space is not wasted. */
    if (c != NULL && cap != chunk_size) {
      nc->next = c->next;
      c->next = nc;
    } else {
      nc->next = c;
      s->chunks = nc;
    }
    s->mem_used += sizeof *nc + cap;
    c = nc;
  }
  uint8_t *p = c->data + c->used;
  c->used += n;
  return p;
}

static void arena_reset(sst_sorter *s) {
  while (s->chunks) {
    chunk *next = s->chunks->next;
    free(s->chunks);
    s->chunks = next;
  }
  s->count = 0;
  s->mem_used = 0;
}

static uint64_t key_head(const uint8_t *key, size_t len) {
  uint64_t h = 0;
  for (size_t i = 0; i < 8; i++)
    h = (h << 8) | (i < len ? key[i] : 0);
  return h;
}

static int cmp_records(const void *a, const void *b) {
  const record *x = a, *y = b;
  if (x->head != y->head)
    return x->head < y->head ? -1 : 1;
  int c = sst_key_cmp(x->key, x->key_len, y->key, y->key_len);
  if (c)
    return c;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Buffered run writer. */
typedef struct run_out {
  int fd, err;
  uint8_t *buf;
  size_t len;
} run_out;

static void run_put(run_out *o, const void *data, size_t len) {
  if (o->err)
    return;
  if (o->len + len > RUN_BUF_SIZE) {
    o->err = sst_write_all(o->fd, o->buf, o->len);
    o->len = 0;
    if (len > RUN_BUF_SIZE) {
      if (!o->err)
        o->err = sst_write_all(o->fd, data, len);
      return;
    }
  }
  memcpy(o->buf + o->len, data, len);
  o->len += len;
}

static void run_put_record(run_out *o, unsigned flags, const uint8_t *key,
                           size_t key_len, const uint8_t *value,
                           uint64_t value_len) {
  uint8_t head[24], *p = head;
  *p++ = (uint8_t)flags;
  p = sst_put_varint(p, key_len);
  p = sst_put_varint(p, value_len);
  run_put(o, head, (size_t)(p - head));
  run_put(o, key, key_len);
  run_put(o, value, (size_t)value_len);
}

static int compact_runs(sst_sorter *s);

/* Sorts what is in memory and writes it as a run, newest record of each
 * key only. */
static int spill_run(sst_sorter *s) {
  qsort(s->recs, s->count, sizeof *s->recs, cmp_records);
  int *runs = realloc(s->runs, (s->run_count + 1) * sizeof *runs);
  if (runs == NULL)
    return ENOMEM;
  s->runs = runs;
  int fd = sst_temp_fd(s->temp_dir);
  if (fd < 0)
    return -fd;
  run_out o = {.fd = fd, .buf = malloc(RUN_BUF_SIZE)};
  if (o.buf == NULL) {
    close(fd);
    return ENOMEM;
  }
  for (size_t i = 0; i < s->count; i++) {
    const record *r = &s->recs[i];
    if (i + 1 < s->count && sst_key_cmp(r->key, r->key_len, s->recs[i + 1].key,
                                        s->recs[i + 1].key_len) == 0)
      continue;
    run_put_record(&o, r->flags, r->key, r->key_len, r->value, r->value_len);
  }
  if (!o.err)
    o.err = sst_write_all(fd, o.buf, o.len);
  free(o.buf);
  if (o.err) {
    close(fd);
    return o.err;
  }
  s->runs[s->run_count++] = fd;
  s->spills++;
  arena_reset(s);
  return s->run_count >= MAX_RUNS ? compact_runs(s) : 0;
}

static int add(sst_sorter *s, unsigned flags, const void *key, size_t key_len,
               const void *value, uint64_t value_len) {
  if (s->err)
    return s->err;
  if (key_len == 0 || key_len > SST_KEY_MAX)
    return SST_EKEYSIZE;
  if (value_len > SIZE_MAX - key_len)
    return EFBIG;
  if (s->count > 0 &&
      s->mem_used + s->count * sizeof(record) + key_len + value_len >
          s->o.memory_budget &&
      (s->err = spill_run(s)))
    return s->err;
  if (s->count == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4096;
    record *r = realloc(s->recs, cap * sizeof *r);
    if (r == NULL)
      return s->err = ENOMEM;
    s->recs = r;
    s->cap = cap;
  }
  uint8_t *p = arena_alloc(s, key_len + (size_t)value_len);
  if (p == NULL)
    return s->err = ENOMEM;
  memcpy(p, key, key_len);
  if (value_len)
    memcpy(p + key_len, value, (size_t)value_len);
  s->recs[s->count++] = (record){.head = key_head(p, key_len),
                                 .key = p,
                                 .key_len = (uint32_t)key_len,
                                 .value = p + key_len,
                                 .value_len = value_len,
                                 .flags = flags,
                                 .seq = s->seq++};
  s->total++;
  return 0;
}

int sst_sorter_add(sst_sorter *s, const void *key, size_t key_len,
                   const void *value, uint64_t value_len) {
  return add(s, 0, key, key_len, value, value_len);
}

int sst_sorter_add_tombstone(sst_sorter *s, const void *key, size_t key_len) {
  return add(s, SST_FLAG_TOMBSTONE, key, key_len, "", 0);
}

uint64_t sst_sorter_record_count(const sst_sorter *s) { return s->total; }
uint64_t sst_sorter_spill_count(const sst_sorter *s) { return s->spills; }

/* Where merged records go: the writer, or (merging runs down) a run. */
typedef struct sink {
  sst_writer *w;
  run_out *run;
} sink;

static int emit(sink *k, unsigned flags, const uint8_t *key, size_t key_len,
                const uint8_t *value, uint64_t value_len) {
  if (k->run) {
    run_put_record(k->run, flags, key, key_len, value, value_len);
    return k->run->err;
  }
  if (flags & SST_FLAG_TOMBSTONE)
    return sst_writer_add_tombstone(k->w, key, key_len);
  return sst_writer_add(k->w, key, key_len, value, value_len);
}

/* A run being read back during the merge. */
typedef struct run_in {
  int fd, index;
  uint8_t *buf;
  size_t len, pos;
  off_t file_pos;
  uint8_t *rec; /* the current record, copied out of buf */
  size_t rec_cap;
  unsigned flags;
  uint8_t *key;
  size_t key_len;
  uint64_t value_len;
  int done;
} run_in;

/* Makes sure at least n bytes are buffered; 0, or EIO at a short file. */
static int run_fill(run_in *r, size_t n) {
  if (r->len - r->pos >= n)
    return 0;
  memmove(r->buf, r->buf + r->pos, r->len - r->pos);
  r->len -= r->pos;
  r->pos = 0;
  while (r->len < n) {
    ssize_t got =
        pread(r->fd, r->buf + r->len, RUN_READ_SIZE - r->len, r->file_pos);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return got < 0 ? errno : EIO;
    r->len += (size_t)got;
    r->file_pos += got;
  }
  return 0;
}

/* Reads bytes into dst, whatever their size, through the buffer. */
static int run_read(run_in *r, uint8_t *dst, size_t n) {
  while (n > 0) {
    if (r->pos == r->len) {
      int rc = run_fill(r, 1);
      if (rc)
        return rc;
    }
    size_t take = r->len - r->pos < n ? r->len - r->pos : n;
    memcpy(dst, r->buf + r->pos, take);
    r->pos += take;
    dst += take;
    n -= take;
  }
  return 0;
}

static int run_next(run_in *r) {
  if (r->pos == r->len) {
    int rc = run_fill(r, 1);
    if (rc == EIO && r->len == 0) { /* clean end of the run */
      r->done = 1;
      return 0;
    }
    if (rc)
      return rc;
  }
  uint64_t key_len, value_len;
  int rc = run_fill(r, 1);
  if (rc)
    return rc;
  r->flags = r->buf[r->pos++];
  const uint8_t *p;
  if ((rc = run_fill(r, 20)) && rc != EIO)
    return rc;
  if ((p = sst_get_varint(r->buf + r->pos, r->buf + r->len, &key_len)) ==
          NULL ||
      (p = sst_get_varint(p, r->buf + r->len, &value_len)) == NULL)
    return EIO;
  r->pos = (size_t)(p - r->buf);
  if (key_len + value_len > r->rec_cap) {
    uint8_t *n = realloc(r->rec, (size_t)(key_len + value_len));
    if (n == NULL)
      return ENOMEM;
    r->rec = n;
    r->rec_cap = (size_t)(key_len + value_len);
  }
  if ((rc = run_read(r, r->rec, (size_t)(key_len + value_len))))
    return rc;
  r->key = r->rec;
  r->key_len = (size_t)key_len;
  r->value_len = value_len;
  return 0;
}

/* Heap order: smaller key first; among equal keys the newer run first. */
static int run_before(const run_in *a, const run_in *b) {
  int c = sst_key_cmp(a->key, a->key_len, b->key, b->key_len);
  return c ? c < 0 : a->index > b->index;
}

static void sift_down(run_in **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && run_before(h[l], h[m]))
      m = l;
    if (l + 1 < n && run_before(h[l + 1], h[m]))
      m = l + 1;
    if (m == i)
      return;
    run_in *t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static int merge_runs(sst_sorter *s, sink *out) {
  size_t n = s->run_count;
  run_in *runs = calloc(n, sizeof *runs);
  run_in **heap = calloc(n, sizeof *heap);
  uint8_t *last = malloc(SST_KEY_MAX);
  size_t heap_len = 0, last_len = 0;
  int have_last = 0, rc = 0;
  if (runs == NULL || heap == NULL || last == NULL) {
    rc = ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < n && rc == 0; i++) {
    runs[i].fd = s->runs[i];
    runs[i].index = (int)i;
    if ((runs[i].buf = malloc(RUN_READ_SIZE)) == NULL)
      rc = ENOMEM;
    else if ((rc = run_next(&runs[i])) == 0 && !runs[i].done)
      heap[heap_len++] = &runs[i];
  }
  for (size_t i = heap_len; i-- > 0;)
    sift_down(heap, heap_len, i);
  while (rc == 0 && heap_len > 0) {
    run_in *top = heap[0];
    /* The first of equal keys is the newest; skip the older ones. */
    if (!have_last ||
        sst_key_cmp(top->key, top->key_len, last, last_len) != 0) {
      rc = emit(out, top->flags, top->key, top->key_len,
                top->key + top->key_len, top->value_len);
      memcpy(last, top->key, top->key_len);
      last_len = top->key_len;
      have_last = 1;
    }
    if (rc == 0 && (rc = run_next(top)) == 0 && top->done)
      heap[0] = heap[--heap_len];
    sift_down(heap, heap_len, 0);
  }
done:
  if (runs)
    for (size_t i = 0; i < n; i++) {
      free(runs[i].buf);
      free(runs[i].rec);
    }
  free(runs);
  free(heap);
  free(last);
  return rc;
}

/* Merges every run into one, to bound the files open at once. */
static int compact_runs(sst_sorter *s) {
  int fd = sst_temp_fd(s->temp_dir);
  if (fd < 0)
    return -fd;
  run_out o = {.fd = fd, .buf = malloc(RUN_BUF_SIZE)};
  sink to_run = {.run = &o};
  int rc = o.buf ? merge_runs(s, &to_run) : ENOMEM;
  if (rc == 0)
    rc = sst_write_all(fd, o.buf, o.len);
  free(o.buf);
  if (rc) {
    close(fd);
    return rc;
  }
  for (size_t i = 0; i < s->run_count; i++)
    close(s->runs[i]);
  s->runs[0] = fd;
  s->run_count = 1;
  return 0;
}

int sst_sorter_finish(sst_sorter *s, sst_writer *w, sst_error *err) {
  assert(sst_writer_key_count(w) == 0);
  sink to_writer = {.w = w};
  int rc = s->err;
  if (rc == 0 && s->run_count == 0) {
    if (s->count > 0)
      qsort(s->recs, s->count, sizeof *s->recs, cmp_records);
    for (size_t i = 0; i < s->count && rc == 0; i++) {
      const record *r = &s->recs[i];
      if (i + 1 < s->count &&
          sst_key_cmp(r->key, r->key_len, s->recs[i + 1].key,
                      s->recs[i + 1].key_len) == 0)
        continue;
      rc = emit(&to_writer, r->flags, r->key, r->key_len, r->value,
                r->value_len);
    }
    arena_reset(s);
  } else if (rc == 0) {
    if (s->count > 0)
      rc = spill_run(s);
    if (rc == 0)
      rc = merge_runs(s, &to_writer);
  }
  for (size_t i = 0; i < s->run_count; i++)
    close(s->runs[i]);
  s->run_count = 0;
  if (rc)
    sst_error_set(err, rc, "sorting records: %s", sst_strerror(rc));
  return rc;
}

void sst_sorter_free(sst_sorter *s) {
  if (s == NULL)
    return;
  arena_reset(s);
  for (size_t i = 0; i < s->run_count; i++)
    close(s->runs[i]);
  free(s->runs);
  free(s->recs);
  free(s->temp_dir);
  free(s);
}
