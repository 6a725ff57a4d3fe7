/* test_block.c — key blocks: build, decode, seek, and malformed input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "internal.h"
#include "testutil.h"

static uint8_t keybuf[SST_KEY_MAX];

static void build(sst_block_builder *b, int n, uint32_t restart,
                  const uint8_t **data, size_t *len) {
  sst_block_builder_init(b, restart);
  for (int i = 0; i < n; i++) {
    char key[32], payload[16];
    snprintf(key, sizeof key, "prefix/%05d", i * 2);
    snprintf(payload, sizeof payload, "p%d", i);
    ck_assert_int_eq(sst_block_builder_add(b, (const uint8_t *)key,
                                           strlen(key),
                                           (const uint8_t *)payload,
                                           strlen(payload)),
                     0);
  }
  ck_assert_int_eq(sst_block_builder_finish(b, data, len), 0);
}

START_TEST(decode_all_entries) {
  sst_block_builder bb;
  const uint8_t *data;
  size_t len;
  build(&bb, 100, 16, &data, &len);
  ck_assert_uint_eq(len, sst_block_builder_size(&bb));
  sst_block b;
  ck_assert_int_eq(sst_block_open(&b, data, len), 0);
  ck_assert_uint_eq(b.restart_count, 7); /* entries 0,16,...,96 */
  sst_block_entry e = {0};
  size_t prev = 0;
  int i = 0;
  for (e.off = 0; e.off < b.entries_len; e.off = e.next, i++) {
    ck_assert_int_eq(sst_block_decode(&b, keybuf, prev, &e), 0);
    char want[32];
    snprintf(want, sizeof want, "prefix/%05d", i * 2);
    ck_assert_uint_eq(e.key_len, strlen(want));
    ck_assert(memcmp(keybuf, want, e.key_len) == 0);
    prev = e.key_len;
  }
  ck_assert_int_eq(i, 100);
  sst_block_builder_free(&bb);
}
END_TEST

START_TEST(seek_positions) {
  sst_block_builder bb;
  const uint8_t *data;
  size_t len;
  build(&bb, 100, 4, &data, &len);
  sst_block b;
  ck_assert_int_eq(sst_block_open(&b, data, len), 0);
  for (int i = -1; i <= 200; i++) {
    char key[32];
    snprintf(key, sizeof key, i < 0 ? "a" : "prefix/%05d", i);
    sst_block_entry e;
    int found;
    ck_assert_int_eq(sst_block_seek(&b, (const uint8_t *)key, strlen(key),
                                    keybuf, &e, &found),
                     0);
    int want = i < 0 ? 0 : (i + 1) / 2 * 2; /* next even number */
    if (want >= 200) {
      ck_assert_int_eq(found, 0);
      continue;
    }
    ck_assert_int_eq(found, 1);
    char w[32];
    snprintf(w, sizeof w, "prefix/%05d", want);
    ck_assert(e.key_len == strlen(w) && memcmp(keybuf, w, e.key_len) == 0);
  }
  sst_block_builder_free(&bb);
}
END_TEST

START_TEST(restart_keys_are_whole) {
  sst_block_builder bb;
  const uint8_t *data;
  size_t len;
  build(&bb, 40, 8, &data, &len);
  sst_block b;
  ck_assert_int_eq(sst_block_open(&b, data, len), 0);
  for (uint32_t r = 0; r < b.restart_count; r++) {
    const uint8_t *k;
    size_t kl;
    ck_assert_int_eq(sst_block_restart_key(&b, r, &k, &kl), 0);
    char want[32];
    snprintf(want, sizeof want, "prefix/%05u", r * 8 * 2);
    ck_assert(kl == strlen(want) && memcmp(k, want, kl) == 0);
  }
  const uint8_t *k;
  size_t kl;
  ck_assert_int_eq(sst_block_restart_key(&b, b.restart_count, &k, &kl),
                   SST_ECORRUPT);
  sst_block_builder_free(&bb);
}
END_TEST

/* Random bytes framed as a block never read out of bounds (ASan). */
START_TEST(malformed_blocks) {
  tu_rng rng;
  tu_rng_seed(&rng, 11);
  uint8_t buf[256];
  sst_block b;
  ck_assert_int_eq(sst_block_open(&b, buf, 3), SST_ECORRUPT);
  for (int trial = 0; trial < 20000; trial++) {
    size_t len = 4 + tu_rng_below(&rng, sizeof buf - 4);
    uint8_t *p = malloc(len);
    tu_rng_fill(&rng, p, len);
    p[len - 1] = p[len - 2] = 0; /* plausible restart counts */
    p[len - 3] = (uint8_t)tu_rng_below(&rng, 4);
    if (sst_block_open(&b, p, len) == 0) {
      sst_block_entry e = {0};
      size_t prev = 0;
      for (e.off = 0; e.off < b.entries_len; e.off = e.next) {
        if (sst_block_decode(&b, keybuf, prev, &e))
          break;
        prev = e.key_len;
      }
      int found;
      sst_block_seek(&b, (const uint8_t *)"m", 1, keybuf, &e, &found);
    }
    free(p);
  }
}
END_TEST

START_TEST(varints) {
  uint8_t buf[16];
  const uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX,
                           UINT64_MAX};
  for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
    uint8_t *end = sst_put_varint(buf, vals[i]);
    uint64_t v;
    ck_assert_ptr_eq(sst_get_varint(buf, end, &v), end);
    ck_assert(v == vals[i]);
    ck_assert_ptr_null(sst_get_varint(buf, end - 1, &v));
  }
  memset(buf, 0xff, sizeof buf);
  uint64_t v;
  ck_assert_ptr_null(sst_get_varint(buf, buf + sizeof buf, &v));
}
END_TEST

int main(void) {
  Suite *s = suite_create("block");
  TCase *tc = tcase_create("block");
  tcase_add_test(tc, decode_all_entries);
  tcase_add_test(tc, seek_positions);
  tcase_add_test(tc, restart_keys_are_whole);
  tcase_add_test(tc, malformed_blocks);
  tcase_add_test(tc, varints);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
