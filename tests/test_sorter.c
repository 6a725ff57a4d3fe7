/* test_sorter.c — unsorted input, duplicates (last wins), tombstones, the
 * spill-and-merge path with a tiny memory budget, sorting threads (the
 * same table whatever their number), keys the radix sort finds hard, and
 * tables added as the oldest run. */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

/* Reference: for key i (0..nkeys), the last value given, or -1 deleted,
 * or -2 never given. */
static void run_sorter_threads(uint64_t budget, size_t nkeys, size_t nrecords,
                               size_t value_max, int expect_spills,
                               uint32_t threads) {
  tu_rng rng;
  tu_rng_seed(&rng, nkeys * 31 + nrecords);
  long *last = malloc(nkeys * sizeof *last);
  for (size_t i = 0; i < nkeys; i++)
    last[i] = -2;
  sst_sorter_options so;
  sst_sorter_options_init(&so);
  so.memory_budget = budget;
  so.temp_dir = getenv("SST_TEST_TMP");
  so.threads = threads;
  sst_sorter *s;
  ck_assert_int_eq(sst_sorter_new(&so, &s, NULL), 0);
  char key[32];
  uint8_t *value = malloc(value_max + 16);
  for (size_t n = 0; n < nrecords; n++) {
    size_t k = tu_rng_below(&rng, nkeys);
    snprintf(key, sizeof key, "key%06zu", k);
    if (tu_rng_below(&rng, 8) == 0) {
      ck_assert_int_eq(sst_sorter_add_tombstone(s, key, strlen(key)), 0);
      last[k] = -1;
    } else {
      /* value: "n:" then filler whose length depends on n */
      int h = snprintf((char *)value, 16, "%zu:", n);
      size_t vl = (size_t)h + (n * 7919) % (value_max + 1);
      memset(value + h, 'a' + (int)(n % 26), vl - (size_t)h);
      ck_assert_int_eq(sst_sorter_add(s, key, strlen(key), value, vl), 0);
      last[k] = (long)n;
    }
  }
  ck_assert_uint_eq(sst_sorter_record_count(s), nrecords);
  const char *p = tu_path("sorted");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  sst_error err;
  ck_assert_msg(sst_sorter_finish(s, w, &err) == 0, "%s", err.msg);
  if (expect_spills)
    ck_assert_uint_gt(sst_sorter_spill_count(s), 1);
  else
    ck_assert_uint_eq(sst_sorter_spill_count(s), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_sorter_free(s);

  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_verify(r, NULL), 0);
  size_t expected_keys = 0;
  for (size_t k = 0; k < nkeys; k++) {
    snprintf(key, sizeof key, "key%06zu", k);
    sst_entry e;
    int rc = sst_reader_find(r, key, strlen(key), &e);
    if (last[k] == -2) {
      ck_assert_int_eq(rc, SST_ENOTFOUND);
      continue;
    }
    expected_keys++;
    ck_assert_int_eq(rc, 0);
    if (last[k] == -1) {
      ck_assert(e.flags & SST_FLAG_TOMBSTONE);
      continue;
    }
    const uint8_t *v;
    ck_assert_int_eq(sst_reader_value(r, &e, &v), 0);
    char want[24];
    int h = snprintf(want, sizeof want, "%ld:", last[k]);
    ck_assert_uint_ge(e.value_len, (uint64_t)h);
    ck_assert_msg(memcmp(v, want, (size_t)h) == 0, "key %zu: wrong winner", k);
    ck_assert_uint_eq(e.value_len, (uint64_t)h + ((uint64_t)last[k] * 7919) %
                                                     (value_max + 1));
  }
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, expected_keys);
  sst_reader_close(r);
  unlink(p);
  free(value);
  free(last);
}

/* With one thread and with two: the same checks. */
static void run_sorter(uint64_t budget, size_t nkeys, size_t nrecords,
                       size_t value_max, int expect_spills) {
  run_sorter_threads(budget, nkeys, nrecords, value_max, expect_spills, 1);
  run_sorter_threads(budget, nkeys, nrecords, value_max, expect_spills, 2);
}

START_TEST(in_memory_sort) { run_sorter(256ull << 20, 2000, 10000, 50, 0); }
END_TEST

START_TEST(spill_and_merge) { run_sorter(64 << 10, 3000, 30000, 100, 1); }
END_TEST

/* A record larger than the whole budget still goes through. */
START_TEST(record_larger_than_budget) { run_sorter(4096, 50, 400, 20000, 1); }
END_TEST

START_TEST(empty_input) { run_sorter(1 << 20, 10, 0, 10, 0); }
END_TEST

/* ---- against a reference: any keys, tables as the oldest run ---------- */

typedef struct trec {
  uint8_t *key, *value;
  size_t key_len, value_len;
  int tombstone;
  size_t seq; /* arrival: a table's entries come before every record */
} trec;

static int trec_cmp(const void *a, const void *b) {
  const trec *x = *(const trec *const *)a, *y = *(const trec *const *)b;
  int c = sst_key_cmp(x->key, x->key_len, y->key, y->key_len);
  if (c)
    return c;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The table at path holds, in key order, the last of recs[0, n) for each
 * key: its value, or a tombstone. */
static void check_table(const char *path, const trec *recs, size_t n) {
  const trec **order = malloc((n ? n : 1) * sizeof *order);
  for (size_t i = 0; i < n; i++)
    order[i] = &recs[i];
  qsort(order, n, sizeof *order, trec_cmp);
  sst_reader *r;
  sst_error err;
  ck_assert_msg(sst_reader_open(path, NULL, &r, &err) == 0, "%s", err.msg);
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  ck_assert_int_eq(sst_iter_seek_first(it), 0);
  size_t keys = 0;
  for (size_t i = 0; i < n; i++) {
    const trec *want = order[i];
    if (i + 1 < n && sst_key_cmp(want->key, want->key_len, order[i + 1]->key,
                                 order[i + 1]->key_len) == 0)
      continue; /* a later record of the key wins */
    ck_assert_msg(sst_iter_valid(it), "table ends before key %zu", keys);
    const sst_entry *e = sst_iter_entry(it);
    ck_assert_msg(sst_key_cmp(e->key, e->key_len, want->key, want->key_len) ==
                      0,
                  "key %zu differs", keys);
    ck_assert_int_eq(!!(e->flags & SST_FLAG_TOMBSTONE), want->tombstone);
    if (!want->tombstone) {
      const uint8_t *v;
      ck_assert_int_eq(sst_reader_value(r, e, &v), 0);
      ck_assert_uint_eq(e->value_len, want->value_len);
      ck_assert_msg(memcmp(v, want->value, want->value_len) == 0,
                    "key %zu: wrong winner", keys);
    }
    keys++;
    sst_iter_next(it);
  }
  ck_assert_msg(!sst_iter_valid(it), "more keys than expected");
  ck_assert_int_eq(sst_iter_status(it), 0);
  sst_iter_free(it);
  sst_reader_close(r);
  free(order);
}

/* Sorts recs (those with seq < first_record come from `table` instead)
 * into a table at out. Returns the spill count. */
static uint64_t sort_recs(const trec *recs, size_t n, uint64_t budget,
                          uint32_t threads, const char *table,
                          const char *out) {
  sst_sorter_options so;
  sst_sorter_options_init(&so);
  so.memory_budget = budget;
  so.temp_dir = getenv("SST_TEST_TMP");
  so.threads = threads;
  sst_sorter *s;
  sst_error err;
  ck_assert_int_eq(sst_sorter_new(&so, &s, NULL), 0);
  if (table != NULL)
    ck_assert_msg(sst_sorter_add_table(s, table, &err) == 0, "%s", err.msg);
  for (size_t i = 0; i < n; i++) {
    if (recs[i].seq == SIZE_MAX)
      continue; /* the table's */
    int rc = recs[i].tombstone
                 ? sst_sorter_add_tombstone(s, recs[i].key, recs[i].key_len)
                 : sst_sorter_add(s, recs[i].key, recs[i].key_len,
                                  recs[i].value, recs[i].value_len);
    ck_assert_int_eq(rc, 0);
  }
  sst_writer_options wo;
  sst_writer_options_init(&wo);
  wo.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(out, &wo, &w, NULL), 0);
  ck_assert_msg(sst_sorter_finish(s, w, &err) == 0, "%s", err.msg);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  uint64_t spills = sst_sorter_spill_count(s);
  sst_sorter_free(s);
  return spills;
}

static void free_recs(trec *recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(recs[i].key);
    free(recs[i].value);
  }
  free(recs);
}

static int same_file(const char *a, const char *b) {
  size_t la, lb;
  uint8_t *da = tu_read_file(a, &la), *db = tu_read_file(b, &lb);
  int same = la == lb && memcmp(da, db, la) == 0;
  free(da);
  free(db);
  return same;
}

/* Keys the radix sort must work for: a 200-byte prefix shared by all,
 * then 0 to 12 bytes from {0x00, 0x01, 'a', 0xff} (so keys are prefixes
 * of others, and differ from them by zero bytes alone), one key 600 times
 * (a group of equal keys larger than any insertion sort), a few tombstones.
 * In memory and spilled, with 1, 2 and 4 threads: the reference's table,
 * byte for byte the same each time. */
START_TEST(hard_keys) {
  static const uint8_t alphabet[] = {0x00, 0x01, 'a', 0xff};
  const size_t n = 20000, prefix = 200;
  tu_rng rng;
  tu_rng_seed(&rng, 17);
  trec *recs = calloc(n, sizeof *recs);
  for (size_t i = 0; i < n; i++) {
    trec *t = &recs[i];
    size_t suffix = i % 33 == 0 ? 5 : tu_rng_below(&rng, 13);
    t->key_len = prefix + suffix;
    t->key = malloc(t->key_len);
    memset(t->key, 'p', prefix);
    for (size_t j = 0; j < suffix; j++)
      t->key[prefix + j] = i % 33 == 0 ? 'a' : alphabet[tu_rng_below(&rng, 4)];
    if (t->key_len == 0)
      t->key[t->key_len++] = 'p';
    t->tombstone = tu_rng_below(&rng, 20) == 0;
    t->value_len = t->tombstone ? 0 : tu_rng_below(&rng, 40);
    t->value = malloc(t->value_len + 16);
    int h = snprintf((char *)t->value, 16, "%zu:", i);
    if (!t->tombstone && t->value_len < (size_t)h)
      t->value_len = (size_t)h;
    memset(t->value + h, 'v', t->value_len > (size_t)h ? t->value_len - h : 0);
    t->seq = i;
  }
  char first[600];
  snprintf(first, sizeof first, "%s", tu_path("hard-first"));
  const uint64_t budgets[] = {256ull << 20, 64 << 10};
  const uint32_t threads[] = {1, 2, 4};
  for (size_t b = 0; b < 2; b++)
    for (size_t t = 0; t < 3; t++) {
      const char *out = b == 0 && t == 0 ? first : tu_path("hard");
      uint64_t spills = sort_recs(recs, n, budgets[b], threads[t], NULL, out);
      if (b == 1)
        ck_assert_uint_gt(spills, 1);
      if (out == first) {
        check_table(first, recs, n);
      } else {
        ck_assert_msg(same_file(first, out),
                      "budget %zu, %u threads: another table", b, threads[t]);
        unlink(out);
      }
    }
  unlink(first);
  free_recs(recs, n);
}
END_TEST

/* A table added to the sorter is older than every record: records added
 * before it or after it win over its entries, its tombstones stay unless
 * a record revives the key, and its other keys come through. */
static void table_as_oldest_run(uint64_t budget, uint32_t threads) {
  const size_t table_keys = 3000, n = table_keys + 9000;
  tu_rng rng;
  tu_rng_seed(&rng, 5);
  trec *recs = calloc(n, sizeof *recs);
  const char *table = tu_path("oldest");
  char table_path[600];
  snprintf(table_path, sizeof table_path, "%s", table);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(table_path, NULL, &w, NULL), 0);
  for (size_t i = 0; i < n; i++) {
    trec *t = &recs[i];
    char key[32];
    /* The table: every other key of 0..5999, in order. Then records of
     * any key of 0..6999 in any order. */
    size_t k = i < table_keys ? 2 * i : tu_rng_below(&rng, 7000);
    t->key_len = (size_t)snprintf(key, sizeof key, "key%06zu", k);
    t->key = (uint8_t *)strdup(key);
    t->tombstone = tu_rng_below(&rng, 10) == 0;
    t->value = malloc(32);
    t->value_len =
        t->tombstone ? 0 : (size_t)snprintf((char *)t->value, 32, "v%zu", i);
    t->seq = i < table_keys ? SIZE_MAX : i;
    if (i < table_keys) {
      int rc = t->tombstone ? sst_writer_add_tombstone(w, t->key, t->key_len)
                            : sst_writer_add(w, t->key, t->key_len, t->value,
                                             t->value_len);
      ck_assert_int_eq(rc, 0);
    }
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  const char *out = tu_path("over-oldest");
  sort_recs(recs, n, budget, threads, table_path, out);
  for (size_t i = 0; i < table_keys; i++)
    recs[i].seq = i; /* before every record */
  check_table(out, recs, n);
  unlink(out);
  unlink(table_path);
  free_recs(recs, n);
}

START_TEST(table_oldest_in_memory) { table_as_oldest_run(256ull << 20, 2); }
END_TEST

START_TEST(table_oldest_spilled) {
  table_as_oldest_run(64 << 10, 1);
  table_as_oldest_run(64 << 10, 2);
}
END_TEST

/* A table with compressed values: small ones in value blocks, large ones
 * in chunks, repeated ones stored once (dedup); each reaches the output
 * whole, unless a record of its key wins. */
START_TEST(table_compressed) {
  const size_t table_keys = 200, n = table_keys + 300;
  tu_rng rng;
  tu_rng_seed(&rng, 9);
  trec *recs = calloc(n, sizeof *recs);
  char table_path[600];
  snprintf(table_path, sizeof table_path, "%s", tu_path("compressed"));
  sst_writer_options wo;
  sst_writer_options_init(&wo);
  wo.zstd_level = 3;
  wo.dedup = 1;
  wo.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(table_path, &wo, &w, NULL), 0);
  for (size_t i = 0; i < n; i++) {
    trec *t = &recs[i];
    char key[32];
    size_t k = i < table_keys ? i : tu_rng_below(&rng, 2 * table_keys);
    t->key_len = (size_t)snprintf(key, sizeof key, "key%06zu", k);
    t->key = (uint8_t *)strdup(key);
    /* Every 10th value 300 KiB (chunks), every 7th the same 50 bytes. */
    t->value_len = i % 10 == 0 ? 300u << 10 : 10 + tu_rng_below(&rng, 200);
    t->value = malloc(t->value_len < 50 ? 50 : t->value_len);
    if (i % 7 == 0 && i % 10 != 0) {
      t->value_len = 50;
      memset(t->value, 's', 50);
    } else {
      for (size_t j = 0; j < t->value_len; j++) /* compressible, not flat */
        t->value[j] = (uint8_t)('a' + (j * 7 + i) % 13);
    }
    t->seq = i < table_keys ? SIZE_MAX : i;
    if (i < table_keys)
      ck_assert_int_eq(
          sst_writer_add(w, t->key, t->key_len, t->value, t->value_len), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_info info;
  ck_assert_int_eq(sst_reader_open(table_path, NULL, &r, NULL), 0);
  sst_reader_info(r, &info);
  ck_assert(info.features & SST_FEATURE_VALUES);
  ck_assert_uint_gt(info.dedup_values, 0);
  sst_reader_close(r);
  const char *out = tu_path("over-compressed");
  sort_recs(recs, n, 64 << 10, 2, table_path, out);
  for (size_t i = 0; i < table_keys; i++)
    recs[i].seq = i;
  check_table(out, recs, n);
  unlink(out);
  unlink(table_path);
  free_recs(recs, n);
}
END_TEST

/* A record added before the table still wins over it. */
START_TEST(table_added_after_records) {
  const char *table = tu_path("late-table");
  char table_path[600];
  snprintf(table_path, sizeof table_path, "%s", table);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(table_path, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "table", 5), 0);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, "table", 5), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_sorter *s;
  ck_assert_int_eq(sst_sorter_new(NULL, &s, NULL), 0);
  ck_assert_int_eq(sst_sorter_add(s, "a", 1, "record", 6), 0);
  ck_assert_int_eq(sst_sorter_add_table(s, table_path, NULL), 0);
  const char *out = tu_path("late-out");
  ck_assert_int_eq(sst_writer_open(out, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_sorter_finish(s, w, NULL), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_sorter_free(s);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(out, NULL, &r, NULL), 0);
  const uint8_t *v;
  uint64_t vl;
  ck_assert_int_eq(sst_reader_get(r, "a", 1, &v, &vl), 0);
  ck_assert(vl == 6 && memcmp(v, "record", 6) == 0);
  ck_assert_int_eq(sst_reader_get(r, "b", 1, &v, &vl), 0);
  ck_assert(vl == 5 && memcmp(v, "table", 5) == 0);
  sst_reader_close(r);
  unlink(out);
  unlink(table_path);
}
END_TEST

/* A table that is no table is refused; a value of an added table that no
 * longer matches its checksum fails the merge. */
START_TEST(table_errors) {
  const char *junk = tu_path("junk");
  char junk_path[600];
  snprintf(junk_path, sizeof junk_path, "%s", junk);
  tu_write_file(junk_path, "not a table at all", 18);
  sst_sorter *s;
  sst_error err;
  ck_assert_int_eq(sst_sorter_new(NULL, &s, NULL), 0);
  ck_assert_int_ne(sst_sorter_add_table(s, junk_path, &err), 0);
  ck_assert(strstr(err.msg, junk_path) != NULL);
  unlink(junk_path);

  const char *table = tu_path("damaged");
  char table_path[600];
  snprintf(table_path, sizeof table_path, "%s", table);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(table_path, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "k", 1, "value bytes", 11), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_entry e;
  ck_assert_int_eq(sst_reader_open(table_path, NULL, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_find(r, "k", 1, &e), 0);
  sst_reader_close(r);
  ck_assert_int_eq(sst_sorter_add_table(s, table_path, NULL), 0);
  int fd = open(table_path, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pwrite(fd, "X", 1, (off_t)e.value_offset), 1);
  close(fd);
  const char *out = tu_path("damaged-out");
  ck_assert_int_eq(sst_writer_open(out, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_sorter_finish(s, w, &err), SST_ECHECKSUM);
  sst_writer_free(w);
  sst_sorter_free(s);
  ck_assert_int_eq(access(out, F_OK), -1);
  unlink(table_path);
}
END_TEST

START_TEST(bad_keys) {
  sst_sorter *s;
  ck_assert_int_eq(sst_sorter_new(NULL, &s, NULL), 0);
  ck_assert_int_eq(sst_sorter_add(s, "", 0, "v", 1), SST_EKEYSIZE);
  uint8_t *big = calloc(1, SST_KEY_MAX + 1);
  ck_assert_int_eq(sst_sorter_add(s, big, SST_KEY_MAX + 1, "v", 1),
                   SST_EKEYSIZE);
  free(big);
  sst_sorter_free(s);
}
END_TEST

START_TEST(bad_temp_dir) {
  sst_sorter_options so;
  sst_sorter_options_init(&so);
  so.memory_budget = 1024;
  so.temp_dir = "/nonexistent-dir";
  sst_sorter *s;
  ck_assert_int_eq(sst_sorter_new(&so, &s, NULL), 0);
  int rc = 0;
  for (int i = 0; i < 1000 && rc == 0; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    rc = sst_sorter_add(s, key, strlen(key), "some value bytes", 16);
  }
  ck_assert_int_ne(rc, 0);
  sst_sorter_free(s);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sorter");
  TCase *tc = tcase_create("sorter");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, in_memory_sort);
  tcase_add_test(tc, spill_and_merge);
  tcase_add_test(tc, record_larger_than_budget);
  tcase_add_test(tc, empty_input);
  tcase_add_test(tc, hard_keys);
  tcase_add_test(tc, table_oldest_in_memory);
  tcase_add_test(tc, table_oldest_spilled);
  tcase_add_test(tc, table_compressed);
  tcase_add_test(tc, table_added_after_records);
  tcase_add_test(tc, table_errors);
  tcase_add_test(tc, bad_keys);
  tcase_add_test(tc, bad_temp_dir);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
