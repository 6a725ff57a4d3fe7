/* sorter.c — turns records in any order into a sorted, duplicate-free
 * stream for the writer, within a memory budget.
 *
 * Records are copied into batches: arena chunks for their bytes, and an
 * array of 32-byte references (sst_rec) to sort. A full batch is sorted,
 * its duplicates dropped, and its records copied in order into a compact
 * run in memory (runs.h), by a background thread while the caller fills
 * the next batch; with threads = 1, by the caller itself. The copy puts
 * what the merge will read in sequence: merging the batches where they
 * were read from cost a cache miss a record on the caller's thread.
 *
 * When the batches in memory and two more would pass the budget, the
 * oldest sorted batches are merged into a run in an unlinked temporary
 * file. finish sorts the last batch and merges everything, newest first
 * among equal keys:
 *
 *   tables (sst_sorter_add_table) < runs on disk < batches in memory
 *   oldest                                             newest
 *
 * so the record added last always wins. A batch is sorted by MSD radix
 * on 8-byte big-endian key heads taken after the prefix all its keys
 * share (American flag sort: in place, no second array to pay for), then
 * by whole key and arrival for what the heads cannot tell apart.
 *
 * With threads, a batch holds a quarter of the budget at most (and
 * 32 MiB): small enough that the caller seldom waits and that the last
 * batch, sorted after the input ends, is short; large enough that a run
 * spilled from several is long. Alone, a batch holds the whole budget.
 * Below 256 KiB a quarter would hold a few records: a batch then holds
 * 64 KiB, or the whole budget below that, and memory may pass the budget
 * by a batch being filled while another is sorted.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "runs.h"

#define CHUNK_SIZE (4u << 20)
/* Runs on disk at once; beyond this they are merged into one first. */
#define MAX_RUNS 64
#define MAX_THREADS 4
#define THREAD_BATCH_MAX ((uint64_t)32 << 20)
#define THREAD_BATCH_MIN ((uint64_t)64 << 10)
/* Groups this small are sorted by insertion. */
#define SMALL_SORT 24

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  uint8_t data[];
} chunk;

enum batch_state {
  BATCH_QUEUED,  /* full, waiting for a thread */
  BATCH_SORTING, /* being sorted, or its run being made */
  BATCH_SORTED,  /* sorted: as records, or (run != NULL) as a run */
};

typedef struct batch {
  struct batch *next; /* the list runs oldest to newest */
  enum batch_state state;
  chunk *chunks;
  sst_rec *recs;
  size_t count, cap;
  size_t run_size; /* once sorted: the bytes of its run */
  uint8_t *run;    /* the run in memory, once made */
  size_t run_map;  /* its mapping's length */
  uint64_t bytes;  /* all of the above, as counted in the budget */
} batch;

struct sst_sorter {
  sst_sorter_options o;
  char *temp_dir;
  uint64_t batch_limit;
  size_t chunk_size;
  unsigned workers;

  /* The caller's: */
  batch *filling;
  size_t count_hint;   /* records of the last full batch */
  uint64_t total;      /* records added */
  int caller_err;      /* sticky: the first error add returned */
  sst_reader **tables; /* oldest first */
  size_t table_count;

  pthread_mutex_t mu;
  pthread_cond_t work; /* a batch was queued, or stop */
  pthread_cond_t done; /* a batch was sorted, or memory freed */
  pthread_t threads[MAX_THREADS];
  unsigned started;
  /* Under mu: */
  int stop;
  batch *head, *tail; /* queued, sorting and sorted batches, oldest first */
  uint64_t mem;       /* their bytes */
  unsigned busy;      /* threads at work */
  int spilling;       /* one spill at a time keeps runs in order */
  int *runs;          /* fds of runs on disk, oldest first */
  size_t run_count;
  int err; /* sticky first error */
  atomic_uint_least64_t spills;
};

void sst_sorter_options_init(sst_sorter_options *o) {
  memset(o, 0, sizeof *o);
  o->memory_budget = 256ull << 20;
}

static uint32_t resolve_threads(uint32_t threads) {
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n < 2 ? 2 : n > MAX_THREADS ? MAX_THREADS : (uint32_t)n;
  }
  return threads > MAX_THREADS ? MAX_THREADS : threads;
}

static void *worker_main(void *arg);

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
  s->o.threads = resolve_threads(s->o.threads);
  s->workers = s->o.threads - 1;
  s->batch_limit = s->o.memory_budget;
  if (s->workers > 0) {
    s->batch_limit /= 4;
    if (s->batch_limit > THREAD_BATCH_MAX)
      s->batch_limit = THREAD_BATCH_MAX;
    if (s->batch_limit < THREAD_BATCH_MIN)
      s->batch_limit = s->o.memory_budget < THREAD_BATCH_MIN
                           ? s->o.memory_budget
                           : THREAD_BATCH_MIN;
  }
  s->chunk_size = CHUNK_SIZE;
  while (s->chunk_size > 4096 && s->chunk_size > s->batch_limit / 8)
    s->chunk_size /= 2;
  atomic_init(&s->spills, 0);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_cond_init(&s->done, NULL);
  if (s->o.temp_dir && (s->temp_dir = strdup(s->o.temp_dir)) == NULL) {
    sst_sorter_free(s);
    return sst_error_set(err, ENOMEM, "sorter: out of memory");
  }
  for (unsigned i = 0; i < s->workers; i++) {
    int rc = pthread_create(&s->threads[i], NULL, worker_main, s);
    if (rc != 0) {
      sst_sorter_free(s);
      return sst_error_set(err, rc, "sorter: cannot start a thread: %s",
                           sst_strerror(rc));
    }
    s->started++;
  }
  *out = s;
  return 0;
}

/* ---- memory ------------------------------------------------------------- */

/* Batch memory comes straight from mmap, with huge pages where the kernel
 * gives them on request: filling a batch one 4 KiB page fault at a time
 * took longer than copying the records into it. */
static size_t page_round(size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (len + page - 1) & ~(page - 1);
}

static void *big_alloc(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  (void)madvise(p, len, MADV_HUGEPAGE); /* advice only */
  return p;
}

static void *big_grow(void *p, size_t old_len, size_t len) {
  if (p == NULL)
    return big_alloc(len);
  void *q = mremap(p, old_len, len, MREMAP_MAYMOVE);
  if (q == MAP_FAILED)
    return NULL;
  (void)madvise(q, len, MADV_HUGEPAGE);
  return q;
}

static void big_free(void *p, size_t len) {
  if (p != NULL)
    munmap(p, len);
}

/* Frees the arena and record array; returns the bytes freed. */
static uint64_t batch_free_records(batch *b) {
  uint64_t freed = 0;
  while (b->chunks) {
    chunk *next = b->chunks->next;
    size_t len = sizeof *b->chunks + b->chunks->cap;
    big_free(b->chunks, len);
    freed += len;
    b->chunks = next;
  }
  big_free(b->recs, b->cap * sizeof *b->recs);
  freed += b->cap * sizeof *b->recs;
  b->recs = NULL;
  b->count = b->cap = 0;
  return freed;
}

static void batch_free(batch *b) {
  if (b == NULL)
    return;
  batch_free_records(b);
  big_free(b->run, b->run_map);
  free(b);
}

static uint8_t *arena_alloc(sst_sorter *s, batch *b, size_t n) {
  chunk *c = b->chunks;
  if (c == NULL || c->cap - c->used < n) {
    int own = n > s->chunk_size / 4;
    size_t len = page_round(sizeof(chunk) + (own ? n : s->chunk_size));
    chunk *nc = big_alloc(len);
    if (nc == NULL)
      return NULL;
    nc->used = 0;
    nc->cap = len - sizeof *nc;
    /* A big record gets its own chunk behind the current one, so the
     * current chunk's free space is not wasted. */
    if (c != NULL && own) {
      nc->next = c->next;
      c->next = nc;
    } else {
      nc->next = c;
      b->chunks = nc;
    }
    b->bytes += len;
    c = nc;
  }
  uint8_t *p = c->data + c->used;
  c->used += n;
  return p;
}

/* ---- sorting a batch ---------------------------------------------------- */

/* The 8 key bytes from depth on, big-endian, zero-padded. */
static uint64_t key_head(const uint8_t *key, size_t len, size_t depth) {
  if (len >= depth + 8) {
    uint64_t h;
    memcpy(&h, key + depth, 8);
    return __builtin_bswap64(h);
  }
  uint64_t h = 0;
  for (size_t i = depth; i < depth + 8; i++)
    h = (h << 8) | (i < len ? key[i] : 0);
  return h;
}

/* Order of records whose heads were taken at the same depth. */
static int rec_cmp(const sst_rec *x, const sst_rec *y) {
  if (x->head != y->head)
    return x->head < y->head ? -1 : 1;
  int c = sst_key_cmp(x->key, sst_rec_key_len(x), y->key, sst_rec_key_len(y));
  if (c)
    return c;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static int rec_cmp_qsort(const void *a, const void *b) { return rec_cmp(a, b); }

static void insertion_sort(sst_rec *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    sst_rec t = a[i];
    size_t j = i;
    while (j > 0 && rec_cmp(&t, &a[j - 1]) < 0) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = t;
  }
}

/* MSD radix sort of a[0, n): all heads hold the key bytes from `depth`,
 * and agree on their first `byte` bytes. Byte positions where every
 * record agrees cost one counting pass and no moves. The largest bucket
 * is sorted by the loop, the others by recursion, so the stack holds at
 * most log2(n) frames. */
static void radix_sort(sst_rec *a, size_t n, size_t depth, unsigned byte) {
  for (;;) {
    if (n <= SMALL_SORT) {
      insertion_sort(a, n);
      return;
    }
    if (byte == 8) {
      /* The heads are equal: take the next 8 bytes, unless every key has
       * ended, when only length and arrival are left to order by. */
      depth += 8;
      int longer = 0;
      for (size_t i = 0; i < n; i++) {
        size_t len = sst_rec_key_len(&a[i]);
        longer |= len > depth;
        a[i].head = key_head(a[i].key, len, depth);
      }
      if (!longer) {
        qsort(a, n, sizeof *a, rec_cmp_qsort);
        return;
      }
      byte = 0;
      continue;
    }
    unsigned shift = 56 - 8 * byte;
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
      count[(a[i].head >> shift) & 0xff]++;
    if (count[(a[0].head >> shift) & 0xff] == n) {
      byte++;
      continue;
    }
    size_t start[256], next[256], pos = 0, largest = 0;
    for (unsigned d = 0; d < 256; d++) {
      start[d] = next[d] = pos;
      pos += count[d];
      if (count[d] > count[largest])
        largest = d;
    }
    /* American flag sort: each record goes straight to its bucket. */
    for (unsigned d = 0; d < 256; d++) {
      size_t end = start[d] + count[d];
      while (next[d] < end) {
        sst_rec r = a[next[d]];
        unsigned rd = (unsigned)(r.head >> shift) & 0xff;
        while (rd != d) {
          sst_rec t = a[next[rd]];
          a[next[rd]++] = r;
          r = t;
          rd = (unsigned)(r.head >> shift) & 0xff;
        }
        a[next[d]++] = r;
      }
    }
    for (unsigned d = 0; d < 256; d++)
      if (d != largest && count[d] > 1)
        radix_sort(a + start[d], count[d], depth, byte + 1);
    a += start[largest];
    n = count[largest];
    byte++;
  }
}

/* Sorts a batch by key, then arrival; keeps the last record of each key
 * only, and sets run_size. */
static void batch_sort(batch *b) {
  size_t n = b->count;
  sst_rec *a = b->recs;
  b->run_size = 0;
  if (n == 0)
    return;
  /* The prefix every key shares tells nothing apart: the heads start
   * after it. */
  size_t depth = sst_rec_key_len(&a[0]);
  for (size_t i = 1; i < n && depth > 0; i++) {
    size_t len = sst_rec_key_len(&a[i]);
    size_t m = len < depth ? len : depth, j = 0;
    while (j < m && a[i].key[j] == a[0].key[j])
      j++;
    depth = j;
  }
  for (size_t i = 0; i < n; i++)
    a[i].head = key_head(a[i].key, sst_rec_key_len(&a[i]), depth);
  radix_sort(a, n, depth, 0);
  size_t out = 0, size = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = sst_rec_key_len(&a[i]);
    if (i + 1 < n && len == sst_rec_key_len(&a[i + 1]) &&
        memcmp(a[i].key, a[i + 1].key, len) == 0)
      continue;
    size += sst_run_record_size(len, a[i].value_len);
    a[out++] = a[i];
  }
  b->count = out;
  b->run_size = size;
}

/* Copies a sorted batch's records in order into a run in memory. */
static int batch_make_run(batch *b) {
  size_t map = page_round(b->run_size ? b->run_size : 1);
  uint8_t *run = big_alloc(map);
  if (run == NULL)
    return ENOMEM;
  sst_run_out o;
  sst_run_out_memory(&o, run, b->run_size);
  for (size_t i = 0; i < b->count; i++) {
    const sst_rec *r = &b->recs[i];
    /* The records lie all over the arena: ask for the next ones early. */
    if (i + 8 < b->count)
      __builtin_prefetch(b->recs[i + 8].key);
    size_t len = sst_rec_key_len(r);
    sst_run_put(&o, r->key_len & SST_REC_TOMBSTONE ? SST_FLAG_TOMBSTONE : 0,
                r->key, len, r->key + len, r->value_len);
  }
  int fd, rc = sst_run_out_end(&o, &fd);
  if (rc) {
    big_free(run, map);
    return rc;
  }
  b->run = run;
  b->run_map = map;
  return 0;
}

static void batch_source(sst_source *src, const batch *b) {
  if (b->run)
    sst_source_memory(src, b->run, b->run_size);
  else
    sst_source_recs(src, b->recs, b->count);
}

/* ---- runs on disk ------------------------------------------------------- */

/* Merges the sources into a new run on disk; its fd in *fd. */
static int merge_to_file(sst_sorter *s, sst_source *srcs, size_t n, int *fd) {
  sst_run_out o;
  int rc = sst_run_out_file(&o, s->temp_dir);
  if (rc)
    return rc;
  rc = sst_merge_sources(srcs, n, NULL, &o);
  int end_rc = sst_run_out_end(&o, fd);
  return rc ? rc : end_rc;
}

/* Merges every run on disk into one, to bound the files open at once.
 * REQUIRES: mu held, s->spilling set by the caller. Drops mu meanwhile. */
static int compact_runs_locked(sst_sorter *s) {
  size_t n = s->run_count;
  sst_source *srcs = calloc(n, sizeof *srcs);
  if (srcs == NULL)
    return ENOMEM;
  int rc = 0, fd = -1;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = sst_source_file(&srcs[i], s->runs[i]);
  pthread_mutex_unlock(&s->mu);
  if (rc == 0)
    rc = merge_to_file(s, srcs, n, &fd);
  for (size_t i = 0; i < n; i++)
    sst_source_close(&srcs[i]);
  free(srcs);
  pthread_mutex_lock(&s->mu);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++)
    close(s->runs[i]);
  s->runs[0] = fd; /* only the spiller adds runs: none came meanwhile */
  s->run_count = 1;
  return 0;
}

/* Merges the oldest sorted batches into a run on disk. REQUIRES: mu
 * held, no spill running. Drops mu while writing. */
static int spill_locked(sst_sorter *s) {
  size_t n = 0;
  for (batch *b = s->head; b && b->state == BATCH_SORTED; b = b->next)
    n++;
  if (n == 0)
    return 0;
  int *runs = realloc(s->runs, (s->run_count + 1) * sizeof *runs);
  if (runs == NULL)
    return ENOMEM;
  s->runs = runs;
  sst_source *srcs = calloc(n, sizeof *srcs);
  if (srcs == NULL)
    return ENOMEM;
  batch *b = s->head;
  for (size_t i = 0; i < n; i++, b = b->next)
    batch_source(&srcs[i], b);
  s->spilling = 1;
  pthread_mutex_unlock(&s->mu);
  int fd = -1;
  int rc = merge_to_file(s, srcs, n, &fd);
  free(srcs);
  pthread_mutex_lock(&s->mu);
  if (rc == 0) {
    /* Only a spill removes batches, and only from the head. */
    for (size_t i = 0; i < n; i++) {
      b = s->head;
      s->head = b->next;
      s->mem -= b->bytes;
      batch_free(b);
    }
    if (s->head == NULL)
      s->tail = NULL;
    s->runs[s->run_count++] = fd;
    atomic_fetch_add(&s->spills, 1);
    if (s->run_count >= MAX_RUNS)
      rc = compact_runs_locked(s);
  }
  s->spilling = 0;
  return rc;
}

/* ---- the work on full batches ------------------------------------------- */

/* Whether sorted batches should go to disk now: when the batches in
 * memory, the one being filled and the next one would pass the budget. */
static int spill_due(const sst_sorter *s) {
  return s->head && s->head->state == BATCH_SORTED && !s->spilling &&
         s->mem + 2 * s->batch_limit > s->o.memory_budget;
}

static void set_err_locked(sst_sorter *s, int rc) {
  if (rc && s->err == 0)
    s->err = rc;
}

/* Sorts the oldest queued batch, then spills or makes its run. REQUIRES:
 * mu held, a batch queued. */
static void work_locked(sst_sorter *s) {
  batch *b = s->head;
  while (b->state != BATCH_QUEUED)
    b = b->next;
  b->state = BATCH_SORTING;
  s->busy++;
  pthread_mutex_unlock(&s->mu);
  batch_sort(b);
  pthread_mutex_lock(&s->mu);
  b->state = BATCH_SORTED;
  if (s->mem + 2 * s->batch_limit > s->o.memory_budget) {
    /* To disk, b with them if everything before it is sorted (b may be
     * freed then). While another thread spills, b waits for the next. */
    while (s->err == 0 && spill_due(s))
      set_err_locked(s, spill_locked(s));
  } else if (s->err == 0) {
    /* It stays in memory: as a run, read in order by the merge. Only a
     * spill frees batches, and none takes b while it is SORTING. */
    size_t map = page_round(b->run_size ? b->run_size : 1);
    b->state = BATCH_SORTING;
    s->mem += map;
    pthread_mutex_unlock(&s->mu);
    int rc = batch_make_run(b);
    uint64_t freed = rc == 0 ? batch_free_records(b) : map;
    pthread_mutex_lock(&s->mu);
    b->bytes = b->bytes - freed + map;
    s->mem -= freed;
    b->state = BATCH_SORTED;
    set_err_locked(s, rc);
  }
  s->busy--;
  pthread_cond_broadcast(&s->done);
}

static int queued_locked(const sst_sorter *s) {
  for (const batch *b = s->head; b; b = b->next)
    if (b->state == BATCH_QUEUED)
      return 1;
  return 0;
}

static void *worker_main(void *arg) {
  sst_sorter *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && !queued_locked(s))
      pthread_cond_wait(&s->work, &s->mu);
    if (!queued_locked(s))
      break;
    work_locked(s);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Hands the filled batch over to be sorted, and waits while memory for
 * the next one is short and the threads can still free some. */
static int submit(sst_sorter *s) {
  batch *b = s->filling;
  s->filling = NULL;
  s->count_hint = b->count;
  pthread_mutex_lock(&s->mu);
  b->state = BATCH_QUEUED;
  if (s->tail)
    s->tail->next = b;
  else
    s->head = b;
  s->tail = b;
  s->mem += b->bytes;
  if (s->workers == 0) {
    work_locked(s);
  } else {
    pthread_cond_signal(&s->work);
    while (s->err == 0 && s->mem + s->batch_limit > s->o.memory_budget &&
           (s->busy > 0 || queued_locked(s)))
      pthread_cond_wait(&s->done, &s->mu);
  }
  int rc = s->err;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- adding -------------------------------------------------------------- */

/* The record array's next capacity, in whole pages of records: double,
 * or for a new batch the size of the last one and a little more, or to
 * begin with half the batch's bytes (4096 records at most). */
static size_t next_cap(const sst_sorter *s, const batch *b) {
  size_t cap;
  if (b->cap > 0)
    cap = b->cap * 2;
  else if (s->count_hint > 0)
    cap = s->count_hint + s->count_hint / 8;
  else if ((cap = (size_t)(s->batch_limit / 2 / sizeof(sst_rec))) > 4096)
    cap = 4096;
  return (cap + 127) & ~(size_t)127; /* 128 records: 4 KiB */
}

/* The bytes a batch would grow by to take a record of `size` bytes. */
static uint64_t growth(const sst_sorter *s, const batch *b, size_t size) {
  uint64_t g = 0;
  if (b->count == b->cap)
    g += (next_cap(s, b) - b->cap) * sizeof(sst_rec);
  const chunk *c = b->chunks;
  if (c == NULL || c->cap - c->used < size)
    g += page_round(sizeof *c +
                    (size > s->chunk_size / 4 ? size : s->chunk_size));
  return g;
}

static int add(sst_sorter *s, unsigned flags, const void *key, size_t key_len,
               const void *value, uint64_t value_len) {
  if (key_len == 0 || key_len > SST_KEY_MAX)
    return SST_EKEYSIZE;
  if (value_len > SIZE_MAX - key_len - 64)
    return EFBIG;
  if (s->caller_err)
    return s->caller_err;
  size_t size = key_len + (size_t)value_len;
  batch *b = s->filling;
  if (b != NULL && b->count > 0 &&
      (b->bytes + growth(s, b, size) > s->batch_limit ||
       b->count == UINT32_MAX)) {
    if ((s->caller_err = submit(s)))
      return s->caller_err;
    b = NULL;
  }
  if (b == NULL) {
    if ((b = calloc(1, sizeof *b)) == NULL)
      return s->caller_err = ENOMEM;
    s->filling = b;
  }
  if (b->count == b->cap) {
    size_t cap = next_cap(s, b);
    sst_rec *r = big_grow(b->recs, b->cap * sizeof *r, cap * sizeof *r);
    if (r == NULL)
      return s->caller_err = ENOMEM;
    b->bytes += (cap - b->cap) * sizeof *r;
    b->recs = r;
    b->cap = cap;
  }
  uint8_t *p = arena_alloc(s, b, size);
  if (p == NULL)
    return s->caller_err = ENOMEM;
  memcpy(p, key, key_len);
  if (value_len)
    memcpy(p + key_len, value, (size_t)value_len);
  b->recs[b->count] =
      (sst_rec){.key = p,
                .key_len = (uint32_t)key_len | (flags ? SST_REC_TOMBSTONE : 0),
                .value_len = value_len,
                .seq = (uint32_t)b->count};
  b->count++;
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

int sst_sorter_add_table(sst_sorter *s, const char *path, sst_error *err) {
  sst_reader **t = realloc(s->tables, (s->table_count + 1) * sizeof *t);
  if (t == NULL)
    return sst_error_set(err, ENOMEM, "sorter: out of memory");
  s->tables = t;
  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.pread_blocks = 1;  /* key blocks stay out of the resident set */
  ro.verify_values = 0; /* the merge checks them (runs.c) */
  int rc = sst_reader_open(path, &ro, &s->tables[s->table_count], err);
  if (rc == 0)
    s->table_count++;
  return rc;
}

uint64_t sst_sorter_record_count(const sst_sorter *s) { return s->total; }

uint64_t sst_sorter_spill_count(const sst_sorter *s) {
  return atomic_load(&((sst_sorter *)s)->spills);
}

/* ---- finishing ----------------------------------------------------------- */

static void stop_threads(sst_sorter *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->work);
  pthread_mutex_unlock(&s->mu);
  for (unsigned i = 0; i < s->started; i++)
    pthread_join(s->threads[i], NULL);
  s->started = 0;
}

static void free_batches(sst_sorter *s) {
  while (s->head) {
    batch *b = s->head;
    s->head = b->next;
    batch_free(b);
  }
  s->tail = NULL;
  s->mem = 0;
}

int sst_sorter_finish(sst_sorter *s, sst_writer *w, sst_error *err) {
  assert(sst_writer_key_count(w) == 0);
  /* The caller sorts the last batch while the threads finish theirs; it
   * is merged from where its records lie, as making its run would take
   * as long. */
  batch *last = s->filling;
  s->filling = NULL;
  if (last)
    batch_sort(last);
  stop_threads(s);
  int rc = s->caller_err ? s->caller_err : s->err;
  size_t n = s->table_count + s->run_count + (last != NULL);
  for (batch *b = s->head; b; b = b->next)
    n++;
  sst_source *srcs = calloc(n ? n : 1, sizeof *srcs);
  if (rc == 0 && srcs == NULL)
    rc = ENOMEM;
  size_t k = 0;
  for (size_t i = 0; rc == 0 && i < s->table_count; i++)
    rc = sst_source_table(&srcs[k++], s->tables[i]);
  for (size_t i = 0; rc == 0 && i < s->run_count; i++)
    rc = sst_source_file(&srcs[k++], s->runs[i]);
  for (batch *b = s->head; rc == 0 && b; b = b->next)
    batch_source(&srcs[k++], b);
  if (rc == 0 && last)
    batch_source(&srcs[k++], last);
  if (rc == 0 && n > 0)
    rc = sst_merge_sources(srcs, n, w, NULL);
  for (size_t i = 0; i < k; i++)
    sst_source_close(&srcs[i]);
  free(srcs);
  batch_free(last);
  free_batches(s);
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
  stop_threads(s);
  batch_free(s->filling);
  free_batches(s);
  for (size_t i = 0; i < s->run_count; i++)
    close(s->runs[i]);
  for (size_t i = 0; i < s->table_count; i++)
    sst_reader_close(s->tables[i]);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->done);
  free(s->tables);
  free(s->runs);
  free(s->temp_dir);
  free(s);
}
