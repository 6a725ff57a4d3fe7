/* test_merge.c — a stack of several tables against a reference model:
 * random puts and deletes in phases, each phase written as a table
 * (deletes as tombstones), then the tables read as one stack and compared
 * with the model, tombstones included. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

#define NKEYS 400
#define NTABLES 5

/* state per key: -2 never written, -1 deleted, else the value's seed;
 * in_table: whether any table mentions it. */
typedef struct model {
  long state[NKEYS];
  int mentioned[NKEYS];
} model;

static void key_of(int k, char *buf) {
  sprintf(buf, "k/%03d/%03d%s", k % 37, k, k % 2 ? "x" : "yy");
}

static void value_of(long seed, char *buf, size_t *len) {
  *len = (size_t)(seed % 50);
  for (size_t i = 0; i < *len; i++)
    buf[i] = (char)('a' + (seed + (long)i) % 26);
}

static int cmp_keys(const void *a, const void *b) {
  char ka[32], kb[32];
  key_of(*(const int *)a, ka);
  key_of(*(const int *)b, kb);
  return strcmp(ka, kb);
}

/* Writes one phase: ops on random keys, applied to the model. */
static void write_phase(const char *path, model *m, tu_rng *rng, long phase) {
  long op[NKEYS];
  for (int k = 0; k < NKEYS; k++)
    op[k] = -3; /* untouched in this phase */
  for (int i = 0; i < 150; i++) {
    int k = (int)tu_rng_below(rng, NKEYS);
    op[k] = tu_rng_below(rng, 4) == 0 ? -1 : phase * 1000 + i;
  }
  int order[NKEYS], n = 0;
  for (int k = 0; k < NKEYS; k++)
    if (op[k] != -3)
      order[n++] = k;
  qsort(order, (size_t)n, sizeof *order, cmp_keys);
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = 8;
  o.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(path, &o, &w, NULL), 0);
  for (int i = 0; i < n; i++) {
    int k = order[i];
    char key[32], val[64];
    size_t vl;
    key_of(k, key);
    if (op[k] == -1) {
      ck_assert_int_eq(sst_writer_add_tombstone(w, key, strlen(key)), 0);
    } else {
      value_of(op[k], val, &vl);
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), val, vl), 0);
    }
    m->state[k] = op[k];
    m->mentioned[k] = 1;
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
}

START_TEST(merge_matches_model) {
  tu_rng rng;
  tu_rng_seed(&rng, 1234 + (uint64_t)_i);
  model m;
  for (int k = 0; k < NKEYS; k++) {
    m.state[k] = -2;
    m.mentioned[k] = 0;
  }
  char paths[NTABLES][512];
  sst_reader *readers[NTABLES];
  for (int t = 0; t < NTABLES; t++) {
    snprintf(paths[t], sizeof paths[t], "%s", tu_path("merge"));
    write_phase(paths[t], &m, &rng, t + 1);
    ck_assert_int_eq(sst_reader_open(paths[t], NULL, &readers[t], NULL), 0);
  }
  int order[NKEYS];
  for (int k = 0; k < NKEYS; k++)
    order[k] = k;
  qsort(order, NKEYS, sizeof *order, cmp_keys);

  for (int skip = 0; skip <= 1; skip++) {
    sst_iter *it;
    ck_assert_int_eq(sst_iter_new_stack((const sst_reader *const *)readers,
                                        NTABLES, &it),
                     0);
    sst_iter_set_skip_tombstones(it, skip);
    sst_iter_seek_first(it);
    for (int i = 0; i < NKEYS; i++) {
      int k = order[i];
      if (!m.mentioned[k] || (skip && m.state[k] == -1))
        continue;
      ck_assert(sst_iter_valid(it));
      const sst_entry *e = sst_iter_entry(it);
      char key[32];
      key_of(k, key);
      ck_assert_uint_eq(e->key_len, strlen(key));
      ck_assert(memcmp(e->key, key, e->key_len) == 0);
      if (m.state[k] == -1) {
        ck_assert(e->flags & SST_FLAG_TOMBSTONE);
      } else {
        char want[64];
        size_t wl;
        value_of(m.state[k], want, &wl);
        const uint8_t *v;
        ck_assert_uint_lt(e->source, NTABLES);
        ck_assert_int_eq(sst_reader_value(readers[e->source], e, &v), 0);
        ck_assert_uint_eq(e->value_len, wl);
        ck_assert(wl == 0 || memcmp(v, want, wl) == 0);
      }
      /* the position leads back to this very entry */
      sst_iter *p;
      ck_assert_int_eq(sst_iter_new_stack((const sst_reader *const *)readers,
                                          NTABLES, &p),
                       0);
      sst_iter_set_skip_tombstones(p, skip);
      ck_assert_int_eq(sst_iter_seek_position(p, e->position), 0);
      ck_assert(sst_iter_entry(p)->key_len == e->key_len &&
                memcmp(sst_iter_entry(p)->key, e->key, e->key_len) == 0);
      sst_iter_free(p);
      sst_iter_next(it);
    }
    ck_assert(!sst_iter_valid(it));
    ck_assert_int_eq(sst_iter_status(it), 0);

    /* prefix scans agree with the model too */
    sst_iter_prefix(it, "k/005/", 6);
    int count = 0;
    for (; sst_iter_valid(it); sst_iter_next(it)) {
      ck_assert(memcmp(sst_iter_entry(it)->key, "k/005/", 6) == 0);
      count++;
    }
    int want = 0;
    for (int k = 0; k < NKEYS; k++)
      if (k % 37 == 5 && m.mentioned[k] && !(skip && m.state[k] == -1))
        want++;
    ck_assert_int_eq(count, want);
    sst_iter_free(it);
  }
  /* Point lookups through the stack agree with the model too. */
  for (int k = 0; k < NKEYS; k++) {
    char key[32];
    key_of(k, key);
    sst_entry e;
    int rc = sst_stack_find((const sst_reader *const *)readers, NTABLES,
                            key, strlen(key), &e);
    if (!m.mentioned[k]) {
      ck_assert_int_eq(rc, SST_ENOTFOUND);
      continue;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq((e.flags & SST_FLAG_TOMBSTONE) != 0, m.state[k] == -1);
    if (m.state[k] >= 0) {
      char want[64];
      size_t wl;
      value_of(m.state[k], want, &wl);
      const uint8_t *v;
      ck_assert_int_eq(sst_reader_value(readers[e.source], &e, &v), 0);
      ck_assert(e.value_len == wl && (wl == 0 || memcmp(v, want, wl) == 0));
    }
  }
  for (int t = 0; t < NTABLES; t++) {
    sst_reader_close(readers[t]);
    unlink(paths[t]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("merge");
  TCase *tc = tcase_create("merge");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, merge_matches_model, 0, 8);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
