/* test_sorter.c — unsorted input, duplicates (last wins), tombstones, and
 * the spill-and-merge path with a tiny memory budget. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

/* Reference: for key i (0..nkeys), the last value given, or -1 deleted,
 * or -2 never given. */
static void run_sorter(uint64_t budget, size_t nkeys, size_t nrecords,
                       size_t value_max, int expect_spills) {
  tu_rng rng;
  tu_rng_seed(&rng, nkeys * 31 + nrecords);
  long *last = malloc(nkeys * sizeof *last);
  for (size_t i = 0; i < nkeys; i++)
    last[i] = -2;
  sst_sorter_options so;
  sst_sorter_options_init(&so);
  so.memory_budget = budget;
  so.temp_dir = getenv("SST_TEST_TMP");
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
    ck_assert_msg(memcmp(v, want, (size_t)h) == 0, "key %zu: wrong winner",
                  k);
    ck_assert_uint_eq(e.value_len,
                      (uint64_t)h + ((uint64_t)last[k] * 7919) % (value_max + 1));
  }
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, expected_keys);
  sst_reader_close(r);
  unlink(p);
  free(value);
  free(last);
}

START_TEST(in_memory_sort) { run_sorter(256ull << 20, 2000, 10000, 50, 0); }
END_TEST

START_TEST(spill_and_merge) { run_sorter(64 << 10, 3000, 30000, 100, 1); }
END_TEST

/* A record larger than the whole budget still goes through. */
START_TEST(record_larger_than_budget) {
  run_sorter(4096, 50, 400, 20000, 1);
}
END_TEST

START_TEST(empty_input) { run_sorter(1 << 20, 10, 0, 10, 0); }
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
  tcase_add_test(tc, bad_keys);
  tcase_add_test(tc, bad_temp_dir);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
