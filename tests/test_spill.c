/* test_spill.c — spill buffers: bytes come back in order whether they
 * stayed in memory or went to a temporary file. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "spill.h"
#include "testutil.h"

typedef struct collected {
  uint8_t *data;
  size_t len;
} collected;

static int collect(void *ctx, const void *data, size_t len) {
  collected *c = ctx;
  c->data = realloc(c->data, c->len + len);
  memcpy(c->data + c->len, data, len);
  c->len += len;
  return 0;
}

static void round_trip(size_t limit, size_t total) {
  tu_rng rng;
  tu_rng_seed(&rng, limit + total);
  uint8_t *src = malloc(total);
  tu_rng_fill(&rng, src, total);
  sst_spill s;
  ck_assert_int_eq(sst_spill_init(&s, getenv("SST_TEST_TMP"), limit), 0);
  size_t off = 0;
  while (off < total) {
    size_t n = 1 + tu_rng_below(&rng, limit * 2 + 10);
    if (n > total - off)
      n = total - off;
    ck_assert_int_eq(sst_spill_write(&s, src + off, n), 0);
    off += n;
  }
  ck_assert_uint_eq(s.size, total);
  collected c = {0};
  ck_assert_int_eq(sst_spill_drain(&s, collect, &c), 0);
  ck_assert_uint_eq(c.len, total);
  ck_assert(total == 0 || memcmp(c.data, src, total) == 0);
  if (total > limit * 2)
    ck_assert_int_ge(s.fd, 0);
  sst_spill_free(&s);
  free(c.data);
  free(src);
}

START_TEST(in_memory) { round_trip(1 << 20, 5000); }
END_TEST

START_TEST(spilled) { round_trip(1000, 300000); }
END_TEST

START_TEST(empty) { round_trip(100, 0); }
END_TEST

START_TEST(temp_fd_errors) {
  ck_assert_int_lt(sst_temp_fd("/nonexistent-dir"), 0);
}
END_TEST

/* A thread's buffer keeps its bytes from one call to the next while it
 * is small; a large one is given up (by _done, or by the next small
 * call) and the buffers that follow are whole and writable. */
START_TEST(thread_bufs) {
  char *a = sst_thread_buf(SST_TBUF_REPLY, 4096);
  ck_assert_ptr_nonnull(a);
  memcpy(a, "kept", 5);
  char *b = sst_thread_buf(SST_TBUF_REPLY, 100);
  ck_assert_ptr_eq(a, b);
  ck_assert_str_eq(b, "kept");
  sst_thread_buf_done(SST_TBUF_REPLY); /* small: still kept */
  ck_assert_str_eq(sst_thread_buf(SST_TBUF_REPLY, 10), "kept");
  size_t big = SST_TBUF_KEEP + 1;
  for (int round = 0; round < 2; round++) {
    char *l = sst_thread_buf(SST_TBUF_REPLY, big);
    ck_assert_ptr_nonnull(l);
    memset(l, 'x', big);
    if (round == 0)
      sst_thread_buf_done(SST_TBUF_REPLY);
    char *s = sst_thread_buf(SST_TBUF_REPLY, SST_TBUF_KEEP);
    ck_assert_ptr_nonnull(s);
    memset(s, 'y', SST_TBUF_KEEP);
  }
  /* The kinds are apart. */
  char *v = sst_thread_buf(SST_TBUF_VALUE, 8);
  memcpy(v, "value", 6);
  memset(sst_thread_buf(SST_TBUF_REPLY, 64), 'z', 64);
  ck_assert_str_eq(sst_thread_buf(SST_TBUF_VALUE, 8), "value");
}
END_TEST

int main(void) {
  Suite *s = suite_create("spill");
  TCase *tc = tcase_create("spill");
  tcase_add_test(tc, in_memory);
  tcase_add_test(tc, spilled);
  tcase_add_test(tc, empty);
  tcase_add_test(tc, temp_fd_errors);
  tcase_add_test(tc, thread_bufs);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
