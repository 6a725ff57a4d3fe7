/* getbench.c — random gets of a table's own keys, for scripts/bench-blocks.
 *
 *   getbench TABLE GETS
 *
 * Opens TABLE with the reader's default options (so a compressed table
 * keeps its default cache of decompressed blocks), reads every key with an
 * iterator, gets each key once in order (untimed: the file's pages are
 * then in the page cache), and times GETS gets of keys drawn at random
 * (a fixed seed) in BATCHES batches. Prints one line:
 *
 *   GET keys=N gets=G ns=MEDIAN min_ns=MIN max_ns=MAX
 *
 * MEDIAN, MIN and MAX are over the batches' ns a get: the median resists a
 * neighbour's burst of work on a shared machine. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sstable.h"

#define BATCHES 11

static void die(const char *what, int rc, const sst_error *err) {
  fprintf(stderr, "getbench: %s: %s\n", what,
          err != NULL && err->msg[0] ? err->msg : sst_strerror(rc));
  exit(1);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The keys, one after another in one arena. */
typedef struct keys {
  uint8_t *bytes;
  size_t len, cap;
  uint64_t *off; /* n + 1 offsets */
  size_t n, n_cap;
} keys;

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return p;
  size_t n = *cap ? *cap : 1024;
  while (n < need)
    n *= 2;
  void *q = realloc(p, n * size);
  if (q == NULL)
    die("keys", ENOMEM, NULL);
  *cap = n;
  return q;
}

static void read_keys(const sst_reader *r, keys *k) {
  sst_iter *it;
  int rc = sst_iter_new(r, &it);
  if (rc)
    die("iterator", rc, NULL);
  k->off = grow(k->off, &k->n_cap, 1, sizeof *k->off);
  k->off[0] = 0;
  for (rc = sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
       rc = sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    k->bytes = grow(k->bytes, &k->cap, k->len + e->key_len, 1);
    memcpy(k->bytes + k->len, e->key, e->key_len);
    k->len += e->key_len;
    k->off = grow(k->off, &k->n_cap, k->n + 2, sizeof *k->off);
    k->off[++k->n] = k->len;
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  if (rc)
    die("reading the keys", rc, NULL);
  sst_iter_free(it);
  if (k->n == 0) {
    fprintf(stderr, "getbench: the table holds no keys\n");
    exit(1);
  }
}

static uint64_t get(const sst_reader *r, const keys *k, size_t i) {
  const uint8_t *v;
  uint64_t vl;
  int rc = sst_reader_get(r, k->bytes + k->off[i],
                          (size_t)(k->off[i + 1] - k->off[i]), &v, &vl);
  if (rc)
    die("get", rc, NULL);
  return vl + (vl ? v[0] : 0);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: getbench TABLE GETS\n");
    return 2;
  }
  char *end;
  errno = 0;
  unsigned long long gets = strtoull(argv[2], &end, 10);
  if (argv[2][0] < '0' || argv[2][0] > '9' || *end != '\0' || errno != 0 ||
      gets < BATCHES || gets > SIZE_MAX / sizeof(size_t)) {
    fprintf(stderr, "getbench: GETS: a count of at least %d\n", BATCHES);
    return 2;
  }
  sst_reader *r;
  sst_error err = {0};
  int rc = sst_reader_open(argv[1], NULL, &r, &err);
  if (rc)
    die("open", rc, &err);
  keys k = {0};
  read_keys(r, &k);
  uint64_t sink = 0;
  for (size_t i = 0; i < k.n; i++)
    sink += get(r, &k, i);

  size_t *pick = malloc((size_t)gets * sizeof *pick);
  if (pick == NULL)
    die("gets", ENOMEM, NULL);
  uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64, a fixed seed */
  for (size_t i = 0; i < gets; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pick[i] = (size_t)(x % k.n);
  }
  double ns[BATCHES];
  for (size_t b = 0; b < BATCHES; b++) {
    size_t from = (size_t)gets * b / BATCHES,
           to = (size_t)gets * (b + 1) / BATCHES;
    double t0 = now_ns();
    for (size_t i = from; i < to; i++)
      sink += get(r, &k, pick[i]);
    ns[b] = (now_ns() - t0) / (double)(to - from);
  }
  qsort(ns, BATCHES, sizeof *ns, cmp_double);
  printf("GET keys=%zu gets=%llu ns=%.1f min_ns=%.1f max_ns=%.1f sink=%" PRIu64
         "\n",
         k.n, gets, ns[BATCHES / 2], ns[0], ns[BATCHES - 1], sink);
  free(pick);
  free(k.bytes);
  free(k.off);
  sst_reader_close(r);
  return 0;
}
