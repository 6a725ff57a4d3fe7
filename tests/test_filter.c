/* test_filter.c — Bloom partitions: no false negatives, ~1% false
 * positives at 10 bits per key, checksums. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "internal.h"

START_TEST(no_false_negatives_and_low_fp_rate) {
  enum { N = 64, PARTS = 500 };
  uint32_t bits = 10, k = sst_filter_probes(bits);
  ck_assert_uint_eq(k, 6);
  size_t fp = 0, probes = 0;
  for (int part = 0; part < PARTS; part++) {
    uint64_t hashes[N];
    char key[32];
    for (int i = 0; i < N; i++) {
      snprintf(key, sizeof key, "p%d-key%d", part, i);
      hashes[i] = sst_filter_hash(key, strlen(key));
    }
    size_t len = sst_filter_size(N, bits);
    ck_assert_uint_eq(len, N * bits / 8 + 4);
    uint8_t *f = malloc(len);
    sst_filter_build(hashes, N, bits, k, f);
    ck_assert_int_eq(sst_filter_check(f, len), 0);
    for (int i = 0; i < N; i++)
      ck_assert(sst_filter_may_contain(f, len, k, hashes[i]));
    for (int i = 0; i < 200; i++) {
      snprintf(key, sizeof key, "absent-%d-%d", part, i);
      fp += (size_t)sst_filter_may_contain(f, len, k,
                                           sst_filter_hash(key, strlen(key)));
      probes++;
    }
    f[0] ^= 1;
    ck_assert_int_eq(sst_filter_check(f, len), SST_ECHECKSUM);
    free(f);
  }
  double rate = (double)fp / (double)probes;
  ck_assert_msg(rate < 0.02, "false positive rate %.4f", rate);
}
END_TEST

START_TEST(tiny_partitions) {
  uint64_t h = sst_filter_hash("only", 4);
  size_t len = sst_filter_size(1, 10);
  ck_assert_uint_eq(len, 64 / 8 + 4);
  uint8_t f[64];
  sst_filter_build(&h, 1, 10, 6, f);
  ck_assert(sst_filter_may_contain(f, len, 6, h));
  ck_assert_int_eq(sst_filter_check(f, 4), SST_ECORRUPT);
}
END_TEST

int main(void) {
  Suite *s = suite_create("filter");
  TCase *tc = tcase_create("filter");
  tcase_add_test(tc, no_false_negatives_and_low_fp_rate);
  tcase_add_test(tc, tiny_partitions);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
