/* test_table.c — the writer and reader together: round trips of random
 * tables, lookups, iteration, ranges, prefixes, tombstones, options. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

typedef struct kv {
  uint8_t *key, *value;
  size_t key_len;
  uint64_t value_len;
  int tombstone;
} kv;

static int kv_cmp(const void *a, const void *b) {
  const kv *x = a, *y = b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* n random unique records, sorted. Keys of 1..max_key bytes over an
 * alphabet of `alpha` byte values (small alphabets share prefixes). */
static kv *make_kvs(tu_rng *rng, size_t n, size_t max_key, size_t max_value,
                    unsigned alpha) {
  kv *a = calloc(n ? n : 1, sizeof *a);
  for (size_t i = 0; i < n; i++) {
    a[i].key_len = 1 + tu_rng_below(rng, max_key);
    a[i].key = malloc(a[i].key_len);
    for (size_t j = 0; j < a[i].key_len; j++)
      a[i].key[j] = (uint8_t)tu_rng_below(rng, alpha);
    a[i].value_len = max_value ? tu_rng_below(rng, max_value + 1) : 0;
    a[i].value = malloc(a[i].value_len + 1);
    tu_rng_fill(rng, a[i].value, a[i].value_len);
  }
  qsort(a, n, sizeof *a, kv_cmp);
  size_t out = 0; /* drop duplicate keys */
  for (size_t i = 0; i < n; i++) {
    if (out > 0 && kv_cmp(&a[out - 1], &a[i]) == 0) {
      free(a[i].key);
      free(a[i].value);
      continue;
    }
    a[out++] = a[i];
  }
  for (size_t i = out; i < n; i++)
    a[i].key = a[i].value = NULL;
  return a;
}

static size_t kvs_unique(const kv *a, size_t n) {
  size_t u = 0;
  while (u < n && a[u].key != NULL)
    u++;
  return u;
}

static void free_kvs(kv *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(a[i].key);
    free(a[i].value);
  }
  free(a);
}

static void write_table(const char *path, const kv *a, size_t n,
                        const sst_writer_options *o) {
  sst_writer *w;
  sst_error err;
  ck_assert_int_eq(sst_writer_open(path, o, &w, &err), 0);
  for (size_t i = 0; i < n; i++) {
    int rc = a[i].tombstone
                 ? sst_writer_add_tombstone(w, a[i].key, a[i].key_len)
                 : sst_writer_add(w, a[i].key, a[i].key_len, a[i].value,
                                  a[i].value_len);
    ck_assert_int_eq(rc, 0);
  }
  ck_assert_msg(sst_writer_finish(w, &err) == 0, "%s", err.msg);
  sst_writer_free(w);
}

/* Everything a reader can say about the table matches a. */
static void check_table_opts(const char *path, const kv *a, size_t n,
                             const sst_reader_options *o) {
  sst_reader *r;
  sst_error err;
  ck_assert_msg(sst_reader_open(path, o, &r, &err) == 0, "%s", err.msg);
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, n);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *v;
    uint64_t vl;
    int rc = sst_reader_get(r, a[i].key, a[i].key_len, &v, &vl);
    if (a[i].tombstone) {
      ck_assert_int_eq(rc, SST_ENOTFOUND);
      sst_entry e;
      ck_assert_int_eq(sst_reader_find(r, a[i].key, a[i].key_len, &e), 0);
      ck_assert(e.flags & SST_FLAG_TOMBSTONE);
      continue;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(vl, a[i].value_len);
    ck_assert(vl == 0 || memcmp(v, a[i].value, (size_t)vl) == 0);
  }
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  size_t i = 0;
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it), i++) {
    const sst_entry *e = sst_iter_entry(it);
    ck_assert_uint_lt(i, n);
    ck_assert_uint_eq(e->key_len, a[i].key_len);
    ck_assert(memcmp(e->key, a[i].key, e->key_len) == 0);
    ck_assert_uint_eq(e->value_len, a[i].tombstone ? 0 : a[i].value_len);
  }
  ck_assert_int_eq(sst_iter_status(it), 0);
  ck_assert_uint_eq(i, n);
  sst_iter_free(it);
  sst_reader_close(r);
}

/* Every check, through the mapping and again with blocks, filters and
 * value checks read by pread (as the mount daemon reads). */
static void check_table(const char *path, const kv *a, size_t n) {
  check_table_opts(path, a, n, NULL);
  sst_reader_options o;
  sst_reader_options_init(&o);
  o.release_pages = 1;
  o.pread_blocks = 1;
  check_table_opts(path, a, n, &o);
}

START_TEST(empty_table) {
  const char *p = tu_path("empty");
  write_table(p, NULL, 0, NULL);
  check_table(p, NULL, 0);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  const uint8_t *v;
  uint64_t vl;
  ck_assert_int_eq(sst_reader_get(r, "a", 1, &v, &vl), SST_ENOTFOUND);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  sst_iter_seek(it, "a", 1);
  ck_assert(!sst_iter_valid(it));
  sst_iter_free(it);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

START_TEST(single_key) {
  const char *p = tu_path("single");
  kv one = {.key = (uint8_t *)"k",
            .key_len = 1,
            .value = (uint8_t *)"v",
            .value_len = 1};
  write_table(p, &one, 1, NULL);
  check_table(p, &one, 1);
  unlink(p);
}
END_TEST

/* Random tables over several shapes: many small, binary keys sharing
 * prefixes, few large values, tiny blocks, no filter. */
START_TEST(random_round_trip) {
  static const struct {
    size_t n, max_key, max_value;
    unsigned alpha;
    uint32_t block_keys, block_bytes, restart, bits;
  } shapes[] = {
      {5000, 24, 100, 256, 64, 4096, 16, 10},
      {3000, 40, 30, 3, 64, 4096, 16, 10},
      {2000, 12, 20, 256, 1, 64, 1, 10},
      {2000, 12, 20, 26, 7, 200, 3, 0},
      {50, 100, 200000, 256, 64, 4096, 16, 10},
      {20000, 8, 4, 256, 0, 16384, 32, 4},
  };
  int s = _i;
  tu_rng rng;
  tu_rng_seed(&rng, 1000 + (uint64_t)s);
  size_t n = shapes[s].n;
  kv *a = make_kvs(&rng, n, shapes[s].max_key, shapes[s].max_value,
                   shapes[s].alpha);
  size_t u = kvs_unique(a, n);
  for (size_t i = 0; i < u; i++)
    a[i].tombstone = tu_rng_below(&rng, 10) == 0;
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = shapes[s].block_keys;
  o.block_bytes = shapes[s].block_bytes;
  o.restart_interval = shapes[s].restart;
  o.filter_bits_per_key = shapes[s].bits;
  o.no_sync = 1;
  const char *p = tu_path("random");
  write_table(p, a, u, &o);
  check_table(p, a, u);

  /* Absent keys: never found, and the filter keeps most out. */
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  for (int i = 0; i < 2000; i++) {
    uint8_t k[64];
    size_t kl = 1 + tu_rng_below(&rng, 30);
    tu_rng_fill(&rng, k, kl);
    kv probe = {.key = k, .key_len = kl};
    if (bsearch(&probe, a, u, sizeof *a, kv_cmp) != NULL)
      continue;
    const uint8_t *v;
    uint64_t vl;
    ck_assert_int_eq(sst_reader_get(r, k, kl, &v, &vl), SST_ENOTFOUND);
  }
  sst_reader_close(r);
  unlink(p);
  free_kvs(a, n);
}
END_TEST

START_TEST(key_size_limits) {
  const char *p = tu_path("keysize");
  uint8_t *big = malloc(SST_KEY_MAX + 1);
  memset(big, 'k', SST_KEY_MAX + 1);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "", 0, "x", 1), SST_EKEYSIZE);
  ck_assert_int_eq(sst_writer_add(w, "\x00", 1, "one", 3), 0);
  ck_assert_int_eq(sst_writer_add(w, big, SST_KEY_MAX + 1, "x", 1),
                   SST_EKEYSIZE);
  ck_assert_int_eq(sst_writer_add(w, big, SST_KEY_MAX, "max", 3), 0);
  ck_assert_int_eq(sst_writer_add(w, "\xff", 1, "", 0), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  kv expect[3] = {
      {.key = (uint8_t *)"\x00",
       .key_len = 1,
       .value = (uint8_t *)"one",
       .value_len = 3},
      {.key = big,
       .key_len = SST_KEY_MAX,
       .value = (uint8_t *)"max",
       .value_len = 3},
      {.key = (uint8_t *)"\xff",
       .key_len = 1,
       .value = (uint8_t *)"",
       .value_len = 0},
  };
  check_table(p, expect, 3);
  free(big);
  unlink(p);
}
END_TEST

START_TEST(order_enforced) {
  const char *p = tu_path("order");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, "", 0), 0);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, "", 0), SST_EORDER);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "", 0), SST_EORDER);
  ck_assert_int_eq(sst_writer_add(w, "ba", 2, "", 0), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), SST_ESTATE);
  sst_writer_free(w);
  unlink(p);
}
END_TEST

/* 1 MiB and 40 MiB values, one streamed in pieces. */
START_TEST(large_values) {
  const char *p = tu_path("large");
  size_t mib = 1 << 20, big = 40 * mib;
  uint8_t *v1 = malloc(mib), *v2 = malloc(big);
  tu_rng rng;
  tu_rng_seed(&rng, 7);
  tu_rng_fill(&rng, v1, mib);
  tu_rng_fill(&rng, v2, big);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, v1, mib), 0);
  ck_assert_int_eq(sst_writer_begin_value(w, "b", 1), 0);
  ck_assert_int_eq(sst_writer_add(w, "c", 1, "", 0), SST_ESTATE);
  for (size_t off = 0; off < big; off += 999999)
    ck_assert_int_eq(sst_writer_append_value(
                         w, v2 + off, big - off < 999999 ? big - off : 999999),
                     0);
  ck_assert_int_eq(sst_writer_end_value(w), 0);
  ck_assert_int_eq(sst_writer_add(w, "c", 1, "small", 5), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  kv expect[3] = {
      {.key = (uint8_t *)"a", .key_len = 1, .value = v1, .value_len = mib},
      {.key = (uint8_t *)"b", .key_len = 1, .value = v2, .value_len = big},
      {.key = (uint8_t *)"c",
       .key_len = 1,
       .value = (uint8_t *)"small",
       .value_len = 5}};
  check_table(p, expect, 3);
  free(v1);
  free(v2);
  unlink(p);
}
END_TEST

static void collect(sst_iter *it, char *out, size_t cap) {
  out[0] = '\0';
  for (; sst_iter_valid(it); sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    strncat(out, (const char *)e->key, e->key_len);
    strncat(out, " ", cap - strlen(out) - 1);
  }
}

START_TEST(seek_range_prefix) {
  const char *keys[] = {"a", "a-b", "a/x", "a/y", "ab", "b", "b/c", "c"};
  size_t n = sizeof keys / sizeof *keys;
  const char *p = tu_path("ranges");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = 2; /* make blocks boundaries matter */
  o.restart_interval = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(sst_writer_add(w, keys[i], strlen(keys[i]), "v", 1), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  char got[256];
  sst_iter_prefix(it, "a/", 2);
  collect(it, got, sizeof got);
  ck_assert_str_eq(got, "a/x a/y ");
  sst_iter_prefix(it, "b", 1);
  collect(it, got, sizeof got);
  ck_assert_str_eq(got, "b b/c ");
  sst_iter_range(it, "a-", 2, "ab", 2);
  collect(it, got, sizeof got);
  ck_assert_str_eq(got, "a-b a/x a/y ");
  sst_iter_range(it, NULL, 0, "a/", 2);
  collect(it, got, sizeof got);
  ck_assert_str_eq(got, "a a-b ");
  sst_iter_seek(it, "a0", 2); /* between a/y and ab */
  collect(it, got, sizeof got);
  ck_assert_str_eq(got, "ab b b/c c ");
  sst_iter_seek(it, "0", 1);
  ck_assert(sst_iter_valid(it));
  ck_assert(memcmp(sst_iter_entry(it)->key, "a", 1) == 0);
  sst_iter_seek(it, "d", 1);
  ck_assert(!sst_iter_valid(it));
  ck_assert_int_eq(sst_iter_status(it), 0);
  sst_iter_prefix(it, "zz", 2);
  ck_assert(!sst_iter_valid(it));
  sst_iter_free(it);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* An aborted writer leaves the old file in place and no temporary. */
START_TEST(abort_keeps_old_file) {
  const char *p = tu_path("abort");
  tu_write_file(p, "old", 3);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "k", 1, "v", 1), 0);
  sst_writer_free(w);
  size_t len;
  uint8_t *data = tu_read_file(p, &len);
  ck_assert_uint_eq(len, 3);
  ck_assert(memcmp(data, "old", 3) == 0);
  free(data);
  unlink(p);
}
END_TEST

/* finish_temp: a complete, readable table in the locked temporary file;
 * the path is untouched, and freeing the writer removes the file. */
START_TEST(finish_temp_leaves_path) {
  const char *p = tu_path("finish-temp");
  tu_write_file(p, "old", 3);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "1", 1), 0);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, "22", 2), 0);
  const char *tmp = NULL;
  ck_assert_int_eq(sst_writer_finish_temp(w, &tmp, NULL), 0);
  ck_assert_ptr_nonnull(tmp);
  ck_assert_int_eq(sst_writer_add(w, "c", 1, "3", 1), SST_ESTATE);
  ck_assert_int_eq(sst_writer_finish(w, NULL), SST_ESTATE);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(tmp, NULL, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_verify(r, NULL), 0);
  const uint8_t *v;
  uint64_t vl;
  ck_assert_int_eq(sst_reader_get(r, "b", 1, &v, &vl), 0);
  ck_assert_uint_eq(vl, 2);
  ck_assert(memcmp(v, "22", 2) == 0);
  sst_reader_close(r);
  /* Another writer of the same path leaves the locked temporary alone. */
  sst_writer *w2;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w2, NULL), 0);
  ck_assert_int_eq(access(tmp, R_OK), 0);
  sst_writer_free(w2);
  char *kept = strdup(tmp);
  sst_writer_free(w);
  ck_assert_int_eq(access(kept, F_OK), -1);
  free(kept);
  size_t len;
  uint8_t *data = tu_read_file(p, &len);
  ck_assert_uint_eq(len, 3);
  ck_assert(memcmp(data, "old", 3) == 0);
  free(data);
  unlink(p);
}
END_TEST

START_TEST(writer_open_errors) {
  sst_writer *w;
  sst_error err;
  ck_assert_int_eq(
      sst_writer_open("/nonexistent-dir/x.sstable", NULL, &w, &err), ENOENT);
  ck_assert_ptr_null(w);
  ck_assert(strstr(err.msg, "/nonexistent-dir/x.sstable") != NULL);
}
END_TEST

/* A FIFO with no writer, a directory: refused at once, not waited on. */
START_TEST(reader_refuses_non_regular) {
  alarm(5); /* an open that blocks on the FIFO fails the test by SIGALRM */
  const char *fifo = tu_path("fifo");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(fifo, NULL, &r, &err), SST_ENOTTABLE);
  ck_assert_ptr_null(r);
  char want[600];
  snprintf(want, sizeof want, "%s: not a regular file", fifo);
  ck_assert_str_eq(err.msg, want);
  unlink(fifo);
  const char *dir = tu_path("dir");
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  ck_assert_int_eq(sst_reader_open(dir, NULL, &r, &err), EISDIR);
  snprintf(want, sizeof want, "%s: not a regular file", dir);
  ck_assert_str_eq(err.msg, want);
  rmdir(dir);
  alarm(0);
}
END_TEST

/* The descriptor of an open table blocks as usual: O_NONBLOCK, used to
 * open it, is cleared. */
START_TEST(reader_fd_is_blocking) {
  const char *p = tu_path("blocking");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "k", 1, "v", 1), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  int fl = fcntl(sst_reader_fd(r), F_GETFL);
  ck_assert_int_ge(fl, 0);
  ck_assert_int_eq(fl & O_NONBLOCK, 0);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

/* A writer killed by SIGKILL leaves its temporary file; the next writer
 * of the same table removes it, but never the temporary of a live one. */
START_TEST(killed_writer_temp_removed) {
  char dir[512], table[600];
  snprintf(dir, sizeof dir, "%s", tu_path("killed"));
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  snprintf(table, sizeof table, "%s/t.sstable", dir);
  const char *temps = "t.sstable.tmp.";
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) { /* the writer to kill, stopped in the middle of a table */
    sst_writer *w;
    if (sst_writer_open(table, NULL, &w, NULL) != 0 ||
        sst_writer_add(w, "k", 1, "v", 1) != 0 || write(ready[1], "", 1) != 1)
      _exit(1);
    for (;;)
      pause();
  }
  char c;
  ck_assert_int_eq(read(ready[0], &c, 1), 1);
  ck_assert_int_eq(count_prefixed(dir, temps), 1);

  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(table, NULL, &w, NULL), 0);
  ck_assert_int_eq(count_prefixed(dir, temps), 2); /* the live one stays */
  sst_writer_free(w);
  ck_assert_int_eq(count_prefixed(dir, temps), 1);

  kill(pid, SIGKILL);
  ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
  ck_assert_int_eq(count_prefixed(dir, temps), 1); /* left behind */

  ck_assert_int_eq(sst_writer_open(table, NULL, &w, NULL), 0);
  ck_assert_int_eq(count_prefixed(dir, temps), 1); /* only w's own */
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "b", 1), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  ck_assert_int_eq(count_prefixed(dir, temps), 0);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  sst_reader_close(r);
  close(ready[0]);
  close(ready[1]);
  unlink(table);
  rmdir(dir);
}
END_TEST

struct reader_job {
  const sst_reader *r;
  const kv *a;
  size_t n;
  int seed, failures;
};

static void *reader_thread(void *arg) {
  struct reader_job *j = arg;
  tu_rng rng;
  tu_rng_seed(&rng, (uint64_t)j->seed);
  for (int i = 0; i < 20000; i++) {
    const kv *k = &j->a[tu_rng_below(&rng, j->n)];
    const uint8_t *v;
    uint64_t vl;
    if (sst_reader_get(j->r, k->key, k->key_len, &v, &vl) != 0 ||
        vl != k->value_len || memcmp(v, k->value, (size_t)vl) != 0)
      j->failures++;
  }
  return NULL;
}

START_TEST(concurrent_readers) {
  tu_rng rng;
  tu_rng_seed(&rng, 99);
  size_t n = 10000;
  kv *a = make_kvs(&rng, n, 20, 50, 256);
  size_t u = kvs_unique(a, n);
  const char *p = tu_path("threads");
  write_table(p, a, u, NULL);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  pthread_t t[8];
  struct reader_job jobs[8];
  for (int i = 0; i < 8; i++) {
    jobs[i] = (struct reader_job){r, a, u, i + 1, 0};
    pthread_create(&t[i], NULL, reader_thread, &jobs[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(jobs[i].failures, 0);
  }
  sst_reader_close(r);
  unlink(p);
  free_kvs(a, n);
}
END_TEST

/* sst_reader_info reports what was written. */
START_TEST(info_fields) {
  tu_rng rng;
  tu_rng_seed(&rng, 5);
  size_t n = 1000;
  kv *a = make_kvs(&rng, n, 16, 10, 256);
  size_t u = kvs_unique(a, n);
  const char *p = tu_path("info");
  write_table(p, a, u, NULL);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_info info;
  sst_reader_info(r, &info);
  uint64_t kb = 0, vb = 0;
  for (size_t i = 0; i < u; i++) {
    kb += a[i].key_len;
    vb += a[i].value_len;
  }
  struct stat st;
  stat(p, &st);
  ck_assert_uint_eq(info.format_version, SST_FORMAT_VERSION);
  ck_assert_uint_eq(info.key_bytes, kb);
  ck_assert_uint_eq(info.value_bytes, vb);
  ck_assert_uint_eq(info.file_size, (uint64_t)st.st_size);
  ck_assert_uint_eq(info.block_keys, 64);
  ck_assert_uint_eq(info.block_count, (u + 63) / 64);
  ck_assert_uint_eq(info.filter_bits_per_key, 10);
  ck_assert_str_eq(sst_reader_path(r), p);
  sst_reader_close(r);
  unlink(p);
  free_kvs(a, n);
}
END_TEST

/* sst_key_render keeps its contract: printable text, \xHH escapes, cut
 * with "..." after about 80 characters, never more than
 * SST_KEY_RENDER_SIZE bytes, and cut to fit a smaller buffer. */
START_TEST(key_render_contract) {
  char out[2 * SST_KEY_RENDER_SIZE];
  sst_key_render((const uint8_t *)"a\\b\x01", 4, out, sizeof out);
  ck_assert_str_eq(out, "a\\x5cb\\x01");
  sst_key_render((const uint8_t *)"", 0, out, sizeof out);
  ck_assert_str_eq(out, "");
  uint8_t key[200];
  for (int fill = 0; fill < 2; fill++) {
    memset(key, fill ? 0xff : 'k', sizeof key);
    for (size_t len = 1; len <= sizeof key; len++) {
      memset(out, 'Z', sizeof out);
      sst_key_render(key, len, out, SST_KEY_RENDER_SIZE);
      size_t n = strlen(out);
      ck_assert_uint_lt(n, SST_KEY_RENDER_SIZE);
      char whole[2 * SST_KEY_RENDER_SIZE];
      sst_key_render(key, len, whole, sizeof whole);
      ck_assert_str_eq(out, whole); /* the buffer never cut it */
      int cut = n >= 3 && strcmp(out + n - 3, "...") == 0;
      ck_assert_int_eq(cut, len * (fill ? 4 : 1) > 80);
      for (size_t cap = 1; cap < SST_KEY_RENDER_SIZE; cap++) {
        memset(out, 'Z', sizeof out);
        sst_key_render(key, len, out, cap);
        ck_assert_uint_lt(strlen(out), cap);
        ck_assert_int_eq(out[cap], 'Z'); /* nothing written past cap */
      }
    }
  }
}
END_TEST

/* ---- format version 2: file metadata ---------------------------------- */

static sst_meta meta_of(unsigned type, uint32_t mode, uint32_t uid,
                        uint32_t gid, int64_t sec, uint32_t nsec) {
  sst_meta m = {.type = type,
                .mode = mode,
                .uid = uid,
                .gid = gid,
                .mtime_sec = sec,
                .mtime_nsec = nsec,
                .nlink = 1};
  return m;
}

static void meta_eq(const sst_entry *e, const sst_meta *m) {
  ck_assert(e->flags & SST_FLAG_META);
  ck_assert_uint_eq(e->meta.type, m->type);
  ck_assert_uint_eq(e->meta.mode, m->mode);
  ck_assert_uint_eq(e->meta.uid, m->uid);
  ck_assert_uint_eq(e->meta.gid, m->gid);
  ck_assert_int_eq(e->meta.mtime_sec, m->mtime_sec);
  ck_assert_uint_eq(e->meta.mtime_nsec, m->mtime_nsec);
  ck_assert_uint_eq(e->meta.nlink, m->nlink);
  ck_assert_uint_eq(e->meta.link_id, m->link_id);
  ck_assert_uint_eq(e->meta.xattr_len, m->xattr_len);
}

#define MANY_ATTRS 5000 /* more distinct (mode, uid, gid) than the dictionary  \
                         */

/* A tree with every kind of entry: the root and a directory, a symlink, a
 * file with attributes, two hard links sharing one value, a plain entry,
 * a tombstone, and files whose owners overflow the dictionary. */
static void write_meta_table(const char *path, uint8_t *xattrs,
                             size_t *xattr_len) {
  sst_writer *w;
  sst_error err;
  ck_assert_int_eq(sst_writer_open(path, NULL, &w, &err), 0);
  sst_meta m = meta_of(SST_TYPE_DIR, 0755, 0, 0, 1700000000, 5);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "/", 1, "", 0), 0);
  m = meta_of(SST_TYPE_DIR, 01777, 1000, 1000, -86400, 999999999);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "a/", 2, "", 0), 0);
  m = meta_of(SST_TYPE_SYMLINK, 0777, 1000, 1000, 1, 0);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "a/link", 6, "../h1", 5), 0);
  sst_xattr x[2] = {
      {"user.a", 6, (const uint8_t *)"1", 1},
      {"user.bb", 7, (const uint8_t *)"", 0},
  };
  *xattr_len = sst_xattrs_encode(x, 2, xattrs, 256);
  ck_assert_uint_gt(*xattr_len, 0);
  ck_assert_uint_le(*xattr_len, 256);
  m = meta_of(SST_TYPE_FILE, 04755, 0, 0, 1700000000, 123456789);
  m.xattrs = xattrs;
  m.xattr_len = (uint32_t)*xattr_len;
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "a/x", 3, "#!/bin/sh\n", 10), 0);
  m = meta_of(SST_TYPE_FILE, 0600, 7, 8, 1700000001, 0);
  m.link_id = 1;
  m.nlink = 2;
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "h1", 2, "hello", 5), 0);
  uint64_t off, len;
  uint32_t sum;
  ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
  ck_assert_uint_eq(len, 5);
  for (int i = 0; i < MANY_ATTRS; i++) {
    char k[32];
    int kl = snprintf(k, sizeof k, "m/%05d", i);
    sst_meta mi = meta_of(SST_TYPE_FILE, 0644, (uint32_t)i, 100, i, 0);
    ck_assert_int_eq(sst_writer_set_meta(w, &mi), 0);
    ck_assert_int_eq(sst_writer_add(w, k, (size_t)kl, k, (uint64_t)kl), 0);
  }
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add_shared(w, "n/h2", 4, off, len, sum), 0);
  ck_assert_int_eq(sst_writer_add(w, "plain", 5, "v", 1), 0);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add_tombstone(w, "t", 1), 0);
  ck_assert_msg(sst_writer_finish(w, &err) == 0, "%s", err.msg);
  sst_writer_free(w);
}

static void check_meta_table(const char *path, const uint8_t *xattrs,
                             size_t xattr_len, const sst_reader_options *o) {
  sst_reader *r;
  sst_error err;
  ck_assert_msg(sst_reader_open(path, o, &r, &err) == 0, "%s", err.msg);
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.format_version, 2);
  ck_assert_uint_eq(info.features, SST_FEATURE_META | SST_FEATURE_XATTRS);
  ck_assert_uint_eq(info.key_count, MANY_ATTRS + 8);
  ck_assert_uint_eq(info.value_region + info.key_region + 16, info.file_size);

  sst_entry e;
  sst_meta m = meta_of(SST_TYPE_DIR, 0755, 0, 0, 1700000000, 5);
  ck_assert_int_eq(sst_reader_find(r, "/", 1, &e), 0);
  meta_eq(&e, &m);
  m = meta_of(SST_TYPE_DIR, 01777, 1000, 1000, -86400, 999999999);
  ck_assert_int_eq(sst_reader_find(r, "a/", 2, &e), 0);
  meta_eq(&e, &m);
  ck_assert_uint_eq(e.value_len, 0);
  m = meta_of(SST_TYPE_SYMLINK, 0777, 1000, 1000, 1, 0);
  const uint8_t *v;
  uint64_t vl;
  ck_assert_int_eq(sst_reader_find(r, "a/link", 6, &e), 0);
  meta_eq(&e, &m);
  ck_assert_int_eq(sst_reader_value(r, &e, &v), 0);
  ck_assert(e.value_len == 5 && memcmp(v, "../h1", 5) == 0);

  m = meta_of(SST_TYPE_FILE, 04755, 0, 0, 1700000000, 123456789);
  m.xattr_len = (uint32_t)xattr_len;
  ck_assert_int_eq(sst_reader_find(r, "a/x", 3, &e), 0);
  meta_eq(&e, &m);
  uint8_t buf[256];
  ck_assert_int_eq(sst_reader_xattrs(r, &e, buf), 0);
  ck_assert(memcmp(buf, xattrs, xattr_len) == 0);
  size_t pos = 0;
  sst_xattr x;
  ck_assert_int_eq(sst_xattrs_next(buf, xattr_len, &pos, &x), 1);
  ck_assert(x.name_len == 6 && memcmp(x.name, "user.a", 6) == 0);
  ck_assert(x.value_len == 1 && x.value[0] == '1');
  ck_assert_int_eq(sst_xattrs_next(buf, xattr_len, &pos, &x), 1);
  ck_assert(x.name_len == 7 && x.value_len == 0);
  ck_assert_int_eq(sst_xattrs_next(buf, xattr_len, &pos, &x), 0);

  /* Hard links: one copy of the value, both names see it. */
  sst_entry h1, h2;
  ck_assert_int_eq(sst_reader_find(r, "h1", 2, &h1), 0);
  ck_assert_int_eq(sst_reader_find(r, "n/h2", 4, &h2), 0);
  m = meta_of(SST_TYPE_FILE, 0600, 7, 8, 1700000001, 0);
  m.link_id = 1;
  m.nlink = 2;
  meta_eq(&h1, &m);
  meta_eq(&h2, &m);
  ck_assert(!(h1.flags & SST_FLAG_SHARED));
  ck_assert(h2.flags & SST_FLAG_SHARED);
  ck_assert_uint_eq(h1.value_offset, h2.value_offset);
  ck_assert_int_eq(sst_reader_get(r, "n/h2", 4, &v, &vl), 0);
  ck_assert(vl == 5 && memcmp(v, "hello", 5) == 0);

  ck_assert_int_eq(sst_reader_find(r, "plain", 5, &e), 0);
  ck_assert_uint_eq(e.flags, 0);
  ck_assert_int_eq(sst_reader_find(r, "t", 1, &e), 0);
  ck_assert_uint_eq(e.flags, SST_FLAG_TOMBSTONE);

  /* Owners past the dictionary's 4096 are stored inline, as well. */
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  int i = 0;
  for (sst_iter_prefix(it, "m/", 2); sst_iter_valid(it); sst_iter_next(it)) {
    m = meta_of(SST_TYPE_FILE, 0644, (uint32_t)i, 100, i, 0);
    meta_eq(sst_iter_entry(it), &m);
    i++;
  }
  ck_assert_int_eq(sst_iter_status(it), 0);
  ck_assert_int_eq(i, MANY_ATTRS);
  sst_iter_free(it);
  sst_reader_close(r);
}

START_TEST(meta_round_trip) {
  const char *p = tu_path("meta");
  uint8_t xattrs[256];
  size_t xattr_len;
  write_meta_table(p, xattrs, &xattr_len);
  check_meta_table(p, xattrs, xattr_len, NULL);
  sst_reader_options o;
  sst_reader_options_init(&o);
  o.pread_blocks = 1;
  o.release_pages = 1;
  check_meta_table(p, xattrs, xattr_len, &o);
  unlink(p);
}
END_TEST

/* What a reader would refuse, the writer refuses up front. */
START_TEST(meta_refused) {
  const char *p = tu_path("metabad");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  sst_meta m = meta_of(SST_TYPE_FILE, 010000, 0, 0, 0, 0);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  m = meta_of(3, 0644, 0, 0, 0, 0);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  m = meta_of(SST_TYPE_FILE, 0644, 0, 0, 0, 1000000000);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  m = meta_of(SST_TYPE_FILE, 0644, 0, 0, 0, 0);
  m.nlink = 2; /* without a link group */
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  m = meta_of(SST_TYPE_DIR, 0755, 0, 0, 0, 0);
  m.link_id = 3;
  m.nlink = 2; /* a directory is never hard-linked */
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  /* Attributes out of order, or a duplicate name. */
  sst_xattr x[2] = {{"user.b", 6, (const uint8_t *)"", 0},
                    {"user.a", 6, (const uint8_t *)"", 0}};
  uint8_t buf[64];
  m = meta_of(SST_TYPE_FILE, 0644, 0, 0, 0, 0);
  m.xattrs = buf;
  m.xattr_len = (uint32_t)sst_xattrs_encode(x, 2, buf, sizeof buf);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  x[0] = x[1];
  m.xattr_len = (uint32_t)sst_xattrs_encode(x, 2, buf, sizeof buf);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), SST_EINVAL);
  /* A directory has no bytes. */
  m = meta_of(SST_TYPE_DIR, 0755, 0, 0, 0, 0);
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "d/", 2, "x", 1), SST_EINVAL);
  ck_assert_int_eq(sst_writer_set_meta(w, NULL), 0);
  /* Nothing to share yet; then a range past what was written. */
  uint64_t off, len;
  uint32_t sum;
  ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), SST_ESTATE);
  ck_assert_int_eq(sst_writer_add(w, "e", 1, "abc", 3), 0);
  ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
  ck_assert_int_eq(sst_writer_add_shared(w, "f", 1, off, len + 1, sum),
                   SST_EINVAL);
  ck_assert_int_eq(sst_writer_add_shared(w, "f", 1, off, len, sum), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.features, 0); /* nothing carried metadata */
  const uint8_t *v;
  uint64_t vl;
  ck_assert_int_eq(sst_reader_get(r, "f", 1, &v, &vl), 0);
  ck_assert(vl == 3 && memcmp(v, "abc", 3) == 0);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* A version 1 table (tests/data/v1.sstable, written by the version 1
 * writer from tests/data/v1.csv with 4 keys a block) stays readable:
 * lookups, scans and verify. */
START_TEST(version1_fixture) {
  sst_reader *r;
  sst_error err;
  ck_assert_msg(sst_reader_open(SST_TEST_DATA "/v1.sstable", NULL, &r, &err) ==
                    0,
                "%s", err.msg);
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.format_version, 1);
  ck_assert_uint_eq(info.key_count, 14);
  ck_assert_uint_eq(info.block_count, 4);
  ck_assert_uint_eq(info.features, 0);
  size_t csv_len;
  char *csv = (char *)tu_read_file(SST_TEST_DATA "/v1.csv", &csv_len);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  sst_iter_seek_first(it);
  for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
    char *comma = strchr(line, ',');
    ck_assert_ptr_nonnull(comma);
    size_t kl = (size_t)(comma - line), vlen = strlen(comma + 1);
    ck_assert(sst_iter_valid(it));
    const sst_entry *e = sst_iter_entry(it);
    ck_assert(e->key_len == kl && memcmp(e->key, line, kl) == 0);
    ck_assert_uint_eq(e->flags, 0);
    const uint8_t *v;
    uint64_t vl;
    ck_assert_int_eq(sst_reader_get(r, line, kl, &v, &vl), 0);
    ck_assert(vl == vlen && memcmp(v, comma + 1, vlen) == 0);
    sst_iter_next(it);
  }
  ck_assert(!sst_iter_valid(it));
  ck_assert_int_eq(sst_iter_status(it), 0);
  sst_iter_free(it);
  free(csv);
  sst_reader_close(r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("table");
  TCase *tc = tcase_create("table");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, empty_table);
  tcase_add_test(tc, single_key);
  tcase_add_loop_test(tc, random_round_trip, 0, 6);
  tcase_add_test(tc, key_size_limits);
  tcase_add_test(tc, order_enforced);
  tcase_add_test(tc, large_values);
  tcase_add_test(tc, seek_range_prefix);
  tcase_add_test(tc, abort_keeps_old_file);
  tcase_add_test(tc, finish_temp_leaves_path);
  tcase_add_test(tc, writer_open_errors);
  tcase_add_test(tc, reader_refuses_non_regular);
  tcase_add_test(tc, reader_fd_is_blocking);
  tcase_add_test(tc, killed_writer_temp_removed);
  tcase_add_test(tc, concurrent_readers);
  tcase_add_test(tc, info_fields);
  tcase_add_test(tc, key_render_contract);
  tcase_add_test(tc, meta_round_trip);
  tcase_add_test(tc, meta_refused);
  tcase_add_test(tc, version1_fixture);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
