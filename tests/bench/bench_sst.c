/* bench_sst.c — one benchmark run of the core library, driven by
 * scripts/bench-core.
 *
 *   bench_sst --dir DIR [--records N] [--gets G] [--zstd LEVEL]
 *       Builds a table of N records (sorted keys fed to sst_writer_add with
 *       default options; the time includes sst_writer_finish, which fsyncs
 *       the file and its directory), opens it, touches every key once
 *       (untimed warm-up), then times G gets of random existing keys.
 *       Prints one RESULT line. With --zstd, the values are compressed at
 *       LEVEL (as `sst build --compress zstd:LEVEL` does: small values in
 *       value blocks of 16 KiB, a dictionary when it helps), the reader has its
 *       default options (4 MiB of decompressed blocks kept), and the line
 *       says engine=sst-zstd; then the gets are timed once more through a
 *       reader with cache_bytes twice the records' bytes (get_cached_ns).
 *       That reader holds every block: once each was read, a get copies
 *       its value from a decompressed block.
 *
 *   bench_sst --dir DIR --open-keys K [--open-runs R]
 *       Builds a table of K small records (16-byte keys, 8-byte values) and
 *       one of K/100, then opens each R times: median open time with the
 *       file in the page cache and after POSIX_FADV_DONTNEED, and what one
 *       open allocates. Prints OPEN lines.
 *
 * The records are the same bytes as tests/bench/bench_rocksdb.cc makes:
 * both programs draw them from bench_rand.h with the same code, and both
 * print data_fnv, a hash of every record, which the script compares.
 *
 * Allocation counting: built with -DBENCH_COUNT_ALLOCS and linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup, every
 * allocation that libsstable.a makes passes through the __wrap_ functions
 * below. The script builds that variant only for --open-keys, so timed
 * gets do not pay for the counting.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_rand.h"
#include "sstable.h"

/* ---- allocation counting ------------------------------------------- */

static uint64_t alloc_calls, alloc_bytes;

#ifdef BENCH_COUNT_ALLOCS
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__real_strdup(const char *str);
char *__wrap_strdup(const char *str);

void *__wrap_malloc(size_t n) {
  alloc_calls++;
  alloc_bytes += n;
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
  alloc_calls++;
  alloc_bytes += n * size;
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
  alloc_calls++;
  alloc_bytes += n;
  return __real_realloc(p, n);
}

char *__wrap_strdup(const char *str) {
  alloc_calls++;
  alloc_bytes += strlen(str) + 1;
  return __real_strdup(str);
}
#endif

/* Bytes the process heap holds (small chunks plus mmapped big ones). */
static uint64_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* A field of /proc/self/status in kB ("RssAnon:", "RssFile:"). */
static long proc_status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0) {
      kb = strtol(line + n, NULL, 10);
      break;
    }
  if (f)
    fclose(f);
  return kb;
}

/* ---- the shared record generator (same code in bench_rocksdb.cc) ----- */

#define BENCH_SEED 0x5eedf00dcafe1234ull
#define BENCH_GET_SEED 0x0ddba11deadbeefull
#define BENCH_KEY_LEN 20 /* "user/%010llu/item" */
#define BENCH_GET_BATCHES 5

static const char bench_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

typedef struct bench_records {
  size_t count;
  uint8_t *blob;     /* key then value, record after record */
  uint64_t *off;     /* record i starts at blob + off[i] */
  uint16_t *val_len; /* keys are BENCH_KEY_LEN bytes */
  uint64_t input_bytes;
} bench_records;

/* Keys "user/NNNNNNNNNN/item" with ids rising by 1 to 4 (so sorted, and
 * with absent ids between them); values of 72 to 88 characters, 80 on
 * average: 100 bytes a record. */
static int bench_records_make(bench_records *rs, size_t n) {
  rs->count = n;
  rs->blob = malloc(n * (BENCH_KEY_LEN + 88));
  rs->off = malloc(n * sizeof *rs->off);
  rs->val_len = malloc(n * sizeof *rs->val_len);
  if (!rs->blob || !rs->off || !rs->val_len)
    return ENOMEM;
  uint64_t s = BENCH_SEED, id = 0, pos = 0;
  for (size_t i = 0; i < n; i++) {
    id += 1 + bench_rand(&s) % 4;
    uint8_t *p = rs->blob + pos;
    char key[32];
    snprintf(key, sizeof key, "user/%010" PRIu64 "/item", id);
    memcpy(p, key, BENCH_KEY_LEN);
    size_t vl = 72 + bench_rand(&s) % 17;
    for (size_t j = 0; j < vl; j += 8) {
      uint64_t r = bench_rand(&s);
      for (size_t b = j; b < j + 8 && b < vl; b++, r >>= 8)
        p[BENCH_KEY_LEN + b] = (uint8_t)bench_alphabet[r & 63];
    }
    rs->off[i] = pos;
    rs->val_len[i] = (uint16_t)vl;
    pos += BENCH_KEY_LEN + vl;
  }
  rs->input_bytes = pos;
  return 0;
}

static uint64_t bench_fnv(const uint8_t *p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t bench_records_fnv(const bench_records *rs) {
  return bench_fnv(rs->blob, rs->input_bytes, 0xcbf29ce484222325ull);
}

/* The keys to look up, copied in lookup order so the timed loop reads
 * them sequentially. */
static uint8_t *bench_get_keys(const bench_records *rs, size_t gets,
                               uint32_t **index) {
  uint8_t *keys = malloc(gets * BENCH_KEY_LEN);
  *index = malloc(gets * sizeof **index);
  if (!keys || !*index)
    return NULL;
  uint64_t s = BENCH_GET_SEED;
  for (size_t i = 0; i < gets; i++) {
    uint32_t r = (uint32_t)(bench_rand(&s) % rs->count);
    (*index)[i] = r;
    memcpy(keys + i * BENCH_KEY_LEN, rs->blob + rs->off[r], BENCH_KEY_LEN);
  }
  return keys;
}

/* ---- timing ------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int rc, const sst_error *err) {
  fprintf(stderr, "bench_sst: %s: %s\n", what,
          err && err->msg[0] ? err->msg : sst_strerror(rc));
  exit(1);
}

/* Times gets of the keys in BENCH_GET_BATCHES batches and returns the
 * median ns a get; the batch median resists a neighbour's burst of work
 * on a shared machine. Adds to *sink what keeps the reads from being
 * optimised away, and sets *total_s to the time of all batches. */
static double time_gets(const sst_reader *r, const uint8_t *keys, size_t gets,
                        uint64_t *sink, double *total_s) {
  double batch_ns[BENCH_GET_BATCHES];
  const uint8_t *v;
  uint64_t vl;
  *total_s = 0;
  for (size_t b = 0; b < BENCH_GET_BATCHES; b++) {
    size_t from = gets * b / BENCH_GET_BATCHES;
    size_t to = gets * (b + 1) / BENCH_GET_BATCHES;
    double t0 = now_s();
    for (size_t i = from; i < to; i++) {
      int rc =
          sst_reader_get(r, keys + i * BENCH_KEY_LEN, BENCH_KEY_LEN, &v, &vl);
      if (rc)
        die("get", rc, NULL);
      *sink += vl + v[0];
    }
    double t = now_s() - t0;
    *total_s += t;
    batch_ns[b] = to > from ? t * 1e9 / (double)(to - from) : 0;
  }
  return median(batch_ns, BENCH_GET_BATCHES);
}

/* ---- build and get ------------------------------------------------- */

static int bench_build_and_get(const char *dir, size_t n, size_t gets,
                               int zstd_level) {
  bench_records rs;
  if (bench_records_make(&rs, n))
    die("records", ENOMEM, NULL);
  uint32_t *index;
  uint8_t *keys = bench_get_keys(&rs, gets, &index);
  if (keys == NULL)
    die("get keys", ENOMEM, NULL);
  char path[4096];
  snprintf(path, sizeof path, "%s/bench.sst", dir);
  sst_error err = {0};
  int rc;

  sst_writer_options wopts;
  sst_writer_options_init(&wopts);
  wopts.zstd_level = zstd_level;
  wopts.value_block = 16u << 10; /* as sst build --compress zstd writes */

  double t0 = now_s();
  sst_writer *w;
  if ((rc = sst_writer_open(path, &wopts, &w, &err)))
    die("writer open", rc, &err);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = rs.blob + rs.off[i];
    if ((rc = sst_writer_add(w, p, BENCH_KEY_LEN, p + BENCH_KEY_LEN,
                             rs.val_len[i])))
      die("add", rc, NULL);
  }
  if ((rc = sst_writer_finish(w, &err)))
    die("finish", rc, &err);
  sst_writer_free(w);
  double build_s = now_s() - t0;

  t0 = now_s();
  sst_reader *r;
  if ((rc = sst_reader_open(path, NULL, &r, &err)))
    die("reader open", rc, &err);
  double open_s = now_s() - t0;
  sst_info info;
  sst_reader_info(r, &info);

  const uint8_t *v;
  uint64_t vl;
  for (size_t i = 0; i < n; i++)
    if ((rc = sst_reader_get(r, rs.blob + rs.off[i], BENCH_KEY_LEN, &v, &vl)))
      die("warm-up get", rc, NULL);

  uint64_t sink = 0;
  double total_s = 0;
  double get_ns = time_gets(r, keys, gets, &sink, &total_s);

  /* A compressed table again, with a reader whose cache_bytes would hold
   * every decompressed block (the cache's 64 slots may not). */
  double cached_ns = 0;
  if (zstd_level) {
    sst_reader_options ropts;
    sst_reader_options_init(&ropts);
    ropts.cache_bytes = 2 * rs.input_bytes + (64u << 20);
    sst_reader *rc2;
    if ((rc = sst_reader_open(path, &ropts, &rc2, &err)))
      die("reader open", rc, &err);
    for (size_t i = 0; i < n; i++)
      if ((rc = sst_reader_get(rc2, rs.blob + rs.off[i], BENCH_KEY_LEN, &v,
                               &vl)))
        die("warm-up get", rc, NULL);
    double unused_s;
    cached_ns = time_gets(rc2, keys, gets, &sink, &unused_s);
    sst_reader_close(rc2);
  }

  /* Untimed check of whole values, and of keys that are not there. */
  size_t checked = gets < 100000 ? gets : 100000;
  for (size_t i = 0; i < checked; i++) {
    const uint8_t *p = rs.blob + rs.off[index[i]];
    if (sst_reader_get(r, p, BENCH_KEY_LEN, &v, &vl) ||
        vl != rs.val_len[index[i]] || memcmp(v, p + BENCH_KEY_LEN, vl))
      die("value check", SST_ECORRUPT, NULL);
    char absent[BENCH_KEY_LEN + 1];
    memcpy(absent, p, BENCH_KEY_LEN);
    absent[BENCH_KEY_LEN - 1] = 'n'; /* ".../iten" sorts after ".../item" */
    if (sst_reader_get(r, absent, BENCH_KEY_LEN, &v, &vl) != SST_ENOTFOUND)
      die("absent key check", SST_ECORRUPT, NULL);
  }
  sst_reader_close(r);
  unlink(path);

  printf("RESULT engine=%s records=%zu input_bytes=%" PRIu64
         " file_bytes=%" PRIu64 " build_s=%.6f open_ms=%.3f gets=%zu"
         " get_ns=%.1f get_mean_ns=%.1f get_cached_ns=%.1f checked=%zu"
         " data_fnv=%016" PRIx64 " sink=%" PRIu64 "\n",
         zstd_level ? "sst-zstd" : "sst", n, rs.input_bytes, info.file_size,
         build_s, open_s * 1e3, gets, get_ns, total_s * 1e9 / (double)gets,
         cached_ns, checked, bench_records_fnv(&rs), sink);
  free(keys);
  free(index);
  free(rs.blob);
  free(rs.off);
  free(rs.val_len);
  return 0;
}

/* ---- open of a large table ----------------------------------------- */

/* K records "k%015llu" -> the id as 8 little-endian bytes. */
static double bench_build_small(const char *path, uint64_t k) {
  sst_error err = {0};
  sst_writer *w;
  int rc;
  double t0 = now_s();
  if ((rc = sst_writer_open(path, NULL, &w, &err)))
    die("writer open", rc, &err);
  for (uint64_t i = 0; i < k; i++) {
    char key[32];
    uint8_t val[8];
    snprintf(key, sizeof key, "k%015" PRIu64, i);
    for (int b = 0; b < 8; b++)
      val[b] = (uint8_t)(i >> (8 * b));
    if ((rc = sst_writer_add(w, key, 16, val, 8)))
      die("add", rc, NULL);
  }
  if ((rc = sst_writer_finish(w, &err)))
    die("finish", rc, &err);
  sst_writer_free(w);
  return now_s() - t0;
}

static void drop_cache(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

static void bench_open_table(const char *path, uint64_t k, int runs,
                             double build_s) {
  double *warm = calloc((size_t)runs, sizeof *warm);
  double *cold = calloc((size_t)runs, sizeof *cold);
  if (!warm || !cold)
    die("open runs", ENOMEM, NULL);
  uint64_t calls = 0, bytes = 0, held = 0, file_size = 0;
  long anon_kb = 0, file_kb = 0;
  sst_error err = {0};
  for (int i = 0; i < 2 * runs; i++) {
    int is_cold = i % 2;
    if (is_cold)
      drop_cache(path);
    uint64_t calls0 = alloc_calls, bytes0 = alloc_bytes;
    uint64_t held0 = heap_in_use();
    long anon0 = proc_status_kb("RssAnon:");
    long file0 = proc_status_kb("RssFile:");
    sst_reader *r;
    double t0 = now_s();
    int rc = sst_reader_open(path, NULL, &r, &err);
    double t = now_s() - t0;
    if (rc)
      die("reader open", rc, &err);
    long anon1 = proc_status_kb("RssAnon:");
    long file1 = proc_status_kb("RssFile:");
    calls = alloc_calls - calls0;
    bytes = alloc_bytes - bytes0;
    held = heap_in_use() - held0;
    anon_kb = anon1 - anon0;
    file_kb = file1 - file0;
    (is_cold ? cold : warm)[i / 2] = t * 1e3;

    /* The table must work: the last key has the last id. */
    char key[32];
    const uint8_t *v;
    uint64_t vl;
    snprintf(key, sizeof key, "k%015" PRIu64, k - 1);
    if (sst_reader_get(r, key, 16, &v, &vl) || vl != 8 ||
        v[0] != (uint8_t)(k - 1))
      die("get after open", SST_ECORRUPT, NULL);
    sst_info info;
    sst_reader_info(r, &info);
    file_size = info.file_size;
    sst_reader_close(r);
  }
  printf("OPEN keys=%" PRIu64 " file_bytes=%" PRIu64 " build_s=%.3f"
         " runs=%d warm_ms=%.3f cold_ms=%.3f alloc_calls=%" PRIu64
         " alloc_bytes=%" PRIu64 " heap_held_bytes=%" PRIu64
         " rss_anon_kb=%ld rss_file_kb=%ld\n",
         k, file_size, build_s, runs, median(warm, (size_t)runs),
         median(cold, (size_t)runs), calls, bytes, held, anon_kb, file_kb);
  free(warm);
  free(cold);
}

static int bench_open(const char *dir, uint64_t k, int runs) {
  char path[4096];
  uint64_t sizes[2] = {k / 100 ? k / 100 : 1, k};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/open-%" PRIu64 ".sst", dir, sizes[i]);
    double build_s = bench_build_small(path, sizes[i]);
    bench_open_table(path, sizes[i], runs, build_s);
    unlink(path);
  }
  return 0;
}

/* ---- main ----------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: bench_sst --dir DIR [--records N] [--gets G] "
                  "[--zstd LEVEL]\n"
                  "       bench_sst --dir DIR --open-keys K "
                  "[--open-runs R]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  unsigned long long records = 1000000, gets = 1000000, open_keys = 0;
  int open_runs = 9, zstd_level = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (strcmp(a, "--dir") == 0)
      dir = v;
    else if (strcmp(a, "--records") == 0)
      records = strtoull(v, NULL, 10);
    else if (strcmp(a, "--gets") == 0)
      gets = strtoull(v, NULL, 10);
    else if (strcmp(a, "--open-keys") == 0)
      open_keys = strtoull(v, NULL, 10);
    else if (strcmp(a, "--open-runs") == 0)
      open_runs = atoi(v);
    else if (strcmp(a, "--zstd") == 0)
      zstd_level = atoi(v);
    else
      usage();
  }
  /* Ids grow by up to 4 a record and must fit the key's 10 digits. */
  if (dir == NULL || records == 0 || records > 1000000000 || gets == 0 ||
      open_runs < 1 || open_keys >= 1000000000000000ull || zstd_level < 0 ||
      zstd_level > 19)
    usage();
  if (open_keys) {
#ifndef BENCH_COUNT_ALLOCS
    fprintf(stderr, "bench_sst: --open-keys needs a build with "
                    "-DBENCH_COUNT_ALLOCS and --wrap (see the top comment)\n");
    return 2;
#endif
    return bench_open(dir, open_keys, open_runs);
  }
  return bench_build_and_get(dir, (size_t)records, (size_t)gets, zstd_level);
}
