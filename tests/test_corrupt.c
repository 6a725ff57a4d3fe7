/* test_corrupt.c — damaged and foreign files: every truncation and every
 * flipped byte of a small table gives an error or a verify failure, never
 * a crash (the suite also runs under ASan) and never a wrong value. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

#define NKEYS 40
#define MAXKEYS 64

/* What the table under test holds: nkeys keys, each with its value (or a
 * tombstone), and for version 2 tables with metadata, each entry's
 * metadata and encoded attributes. */
static int nkeys;
static char keys[MAXKEYS][32];
static char values[MAXKEYS][9000];
static size_t value_lens[MAXKEYS];
static int tombstone = -1;
static int with_meta;
static sst_meta metas[MAXKEYS];
static uint8_t xattrs[MAXKEYS][64];

/* Table kinds, one per loop test index. */
enum { PLAIN, META, VERSION1, COMPRESSED, KINDS };

/* A table with several blocks, restarts, a tombstone, an empty value;
 * with META also directories, a symlink, a hard link sharing its value,
 * attributes and a few owners; VERSION1 is tests/data/v1.sstable.
 * COMPRESSED is META with zstd, value blocks and chunks of 4 KiB, values
 * of several chunks (one compressible, one not) and duplicate values
 * stored once. */
static const char *make_table(int kind, uint8_t **data, size_t *len) {
  const char *p = tu_path("corrupt-src");
  with_meta = kind == META || kind == COMPRESSED;
  tombstone = -1;
  if (kind == VERSION1) {
    size_t csv_len;
    char *csv = (char *)tu_read_file(SST_TEST_DATA "/v1.csv", &csv_len);
    nkeys = 0;
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
      char *comma = strchr(line, ',');
      *comma = '\0';
      snprintf(keys[nkeys], sizeof keys[nkeys], "%s", line);
      snprintf(values[nkeys], sizeof values[nkeys], "%s", comma + 1);
      value_lens[nkeys] = strlen(values[nkeys]);
      nkeys++;
    }
    free(csv);
    *data = tu_read_file(SST_TEST_DATA "/v1.sstable", len);
    tu_write_file(p, *data, *len);
    return p;
  }
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = 8;
  o.restart_interval = 3;
  o.no_sync = 1;
  if (kind == COMPRESSED) {
    o.zstd_level = 3;
    o.dedup = 1;
    o.value_block = 4096;
    o.chunk_size = 4096;
  }
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  nkeys = NKEYS;
  tombstone = 5;
  uint64_t shared_off = 0, shared_len = 0;
  uint32_t shared_sum = 0;
  for (int i = 0; i < NKEYS; i++) {
    /* With metadata, every tenth key is a directory ("dirN/"). */
    if (with_meta && i % 10 == 0)
      snprintf(keys[i], sizeof keys[i], "dir%d/", i / 10);
    else
      snprintf(keys[i], sizeof keys[i], "dir%d/key%03d", i / 10, i);
    snprintf(values[i], sizeof values[i], "value %d %s", i,
             i % 7 == 0 ? "" : "with some more bytes");
    value_lens[i] = i == 9 ? 0 : strlen(values[i]);
    if (kind == COMPRESSED && (i == 22 || i == 26)) { /* 26 repeats 22 */
      for (size_t k = 0; k < 9000; k++)
        values[i][k] = (char)('a' + (k * 7 / 5) % 26);
      value_lens[i] = 9000;
    }
    if (kind == COMPRESSED && i == 23) { /* does not compress */
      tu_rng rng;
      tu_rng_seed(&rng, 23);
      tu_rng_fill(&rng, (uint8_t *)values[i], 5000);
      value_lens[i] = 5000;
    }
    if (kind == COMPRESSED && i == 24) /* repeats 2 */
      memcpy(values[i], values[2], value_lens[i] = value_lens[2]);
    sst_meta *m = &metas[i];
    memset(m, 0, sizeof *m);
    if (with_meta && i != tombstone) {
      m->type = i % 10 == 0 ? SST_TYPE_DIR
                : i == 13   ? SST_TYPE_SYMLINK
                            : SST_TYPE_FILE;
      m->mode = m->type == SST_TYPE_DIR ? 0755 : i % 2 ? 0644 : 04711;
      m->uid = (uint32_t)(i % 3) * 1000;
      m->gid = 100;
      m->mtime_sec = 1700000000 + i;
      m->mtime_nsec = (uint32_t)(i * 12345);
      m->nlink = 1;
      if (m->type == SST_TYPE_DIR)
        value_lens[i] = 0;
      if (i == 11 || i == 31) { /* hard links: 31 shares 11's value */
        m->link_id = 1;
        m->nlink = 2;
      }
      if (i % 4 == 1) {
        char v[8];
        snprintf(v, sizeof v, "v%d", i);
        sst_xattr x[2] = {{"user.one", 8, (const uint8_t *)v, strlen(v)},
                          {"user.two", 8, (const uint8_t *)"2", 1}};
        m->xattr_len =
            (uint32_t)sst_xattrs_encode(x, 2, xattrs[i], sizeof xattrs[i]);
        m->xattrs = xattrs[i];
      }
      ck_assert_int_eq(sst_writer_set_meta(w, m), 0);
    }
    if (i == tombstone) {
      ck_assert_int_eq(sst_writer_add_tombstone(w, keys[i], strlen(keys[i])),
                       0);
    } else if (with_meta && i == 31) {
      memcpy(values[i], values[11], sizeof values[i]);
      value_lens[i] = value_lens[11];
      ck_assert_int_eq(sst_writer_add_shared(w, keys[i], strlen(keys[i]),
                                             shared_off, shared_len,
                                             shared_sum),
                       0);
    } else {
      ck_assert_int_eq(
          sst_writer_add(w, keys[i], strlen(keys[i]), values[i], value_lens[i]),
          0);
    }
    if (with_meta && i == 11)
      ck_assert_int_eq(
          sst_writer_last_value(w, &shared_off, &shared_len, &shared_sum), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  *data = tu_read_file(p, len);
  return p;
}

/* An entry's metadata is what was written. */
static void check_meta(const sst_reader *r, const sst_entry *e, int i) {
  if (!with_meta || i == tombstone) {
    ck_assert(!(e->flags & SST_FLAG_META));
    return;
  }
  const sst_meta *m = &metas[i];
  ck_assert(e->flags & SST_FLAG_META);
  ck_assert(e->meta.type == m->type && e->meta.mode == m->mode &&
            e->meta.uid == m->uid && e->meta.gid == m->gid &&
            e->meta.mtime_sec == m->mtime_sec &&
            e->meta.mtime_nsec == m->mtime_nsec && e->meta.nlink == m->nlink &&
            e->meta.link_id == m->link_id && e->meta.xattr_len == m->xattr_len);
  uint8_t buf[64];
  if (m->xattr_len && sst_reader_xattrs(r, e, buf) == 0)
    ck_assert(memcmp(buf, xattrs[i], m->xattr_len) == 0);
}

/* The index of an entry's key in keys[], or -1. */
static int key_index(const sst_entry *e) {
  for (int i = 0; i < nkeys; i++)
    if (e->key_len == strlen(keys[i]) &&
        memcmp(e->key, keys[i], e->key_len) == 0)
      return i;
  return -1;
}

/* Opens path with options o; if it opens, no lookup or scan returns bytes
 * that differ from the original. Returns verify's result (or open's
 * error). */
static int probe_opts(const char *path, const sst_reader_options *o) {
  sst_reader *r;
  sst_error err;
  int rc = sst_reader_open(path, o, &r, &err);
  if (rc != 0) {
    ck_assert(strstr(err.msg, path) != NULL);
    return rc;
  }
  for (int i = 0; i < nkeys; i++) {
    const uint8_t *v;
    uint64_t vl;
    if (sst_reader_get(r, keys[i], strlen(keys[i]), &v, &vl) == 0) {
      ck_assert_int_ne(i, tombstone);
      ck_assert_uint_eq(vl, value_lens[i]);
      ck_assert(memcmp(v, values[i], value_lens[i]) == 0);
    }
    sst_entry e;
    if (sst_reader_find(r, keys[i], strlen(keys[i]), &e) == 0)
      check_meta(r, &e, i);
  }
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    const uint8_t *v;
    if (sst_reader_value(r, e, &v) == 0)
      (void)v[e->value_len ? e->value_len - 1 : 0];
    uint8_t buf[64];
    int i = key_index(e);
    if (i >= 0)
      check_meta(r, e, i);
    if (i >= 0 && i != tombstone && e->value_len <= sizeof buf &&
        sst_reader_value_pread(r, e, buf) == 0) {
      ck_assert_uint_eq(e->value_len, value_lens[i]);
      ck_assert(memcmp(buf, values[i], value_lens[i]) == 0);
    }
  }
  sst_iter_prefix(it, "dir2/", 5);
  while (sst_iter_valid(it))
    sst_iter_next(it);
  sst_iter_free(it);
  rc = sst_reader_verify(r, &err);
  if (rc)
    ck_assert(strstr(err.msg, path) != NULL);
  sst_reader_close(r);
  return rc;
}

/* probe_opts through the mapping, then with blocks, filters and value
 * checks read by pread (as the mount daemon reads): the same result. */
static int probe(const char *path) {
  int rc = probe_opts(path, NULL);
  sst_reader_options o;
  sst_reader_options_init(&o);
  o.release_pages = 1;
  o.pread_blocks = 1;
  ck_assert_int_eq(probe_opts(path, &o), rc);
  return rc;
}

START_TEST(intact_table_verifies) {
  uint8_t *data;
  size_t len;
  const char *p = make_table(_i, &data, &len);
  ck_assert_int_eq(probe(p), 0);
  if (_i == COMPRESSED) { /* what the flips below damage */
    sst_reader *r;
    ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
    sst_info in;
    sst_reader_info(r, &in);
    ck_assert_uint_lt(in.key_blocks_stored, in.key_blocks_raw);
    sst_reader_close(r);
  }
  unlink(p);
  free(data);
}
END_TEST

/* sst_reader_value_pread (the mount's small reads): every value whole and
 * right; a value damaged after writing gives SST_ECHECKSUM for that value
 * alone. */
START_TEST(value_pread_checks_the_bytes_read) {
  uint8_t *data;
  size_t len;
  char src[512];
  snprintf(src, sizeof src, "%s", make_table(PLAIN, &data, &len));
  const char *p = tu_path("value-pread");
  uint64_t victim_off = 0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      data[victim_off] ^= 0x20;
      tu_write_file(p, data, len);
    }
    sst_reader *r;
    ck_assert_int_eq(sst_reader_open(pass ? p : src, NULL, &r, NULL), 0);
    sst_iter *it;
    ck_assert_int_eq(sst_iter_new(r, &it), 0);
    int seen = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
      const sst_entry *e = sst_iter_entry(it);
      int i = key_index(e);
      ck_assert_int_ge(i, 0);
      if (i == tombstone)
        continue; /* the tombstone */
      uint8_t buf[64];
      int rc = sst_reader_value_pread(r, e, buf);
      if (pass == 1 && i == 20) {
        ck_assert_int_eq(rc, SST_ECHECKSUM);
      } else {
        ck_assert_int_eq(rc, 0);
        ck_assert(memcmp(buf, values[i], (size_t)e->value_len) == 0);
      }
      if (i == 20)
        victim_off = e->value_offset + 3;
      seen++;
    }
    ck_assert_int_eq(seen, NKEYS - 1);
    sst_iter_free(it);
    sst_reader_close(r);
  }
  unlink(p);
  unlink(src);
  free(data);
}
END_TEST

START_TEST(every_truncation_fails) {
  uint8_t *data;
  size_t len;
  char src[512];
  snprintf(src, sizeof src, "%s", make_table(_i, &data, &len));
  const char *p = tu_path("truncated");
  for (size_t cut = 0; cut < len; cut++) {
    tu_write_file(p, data, cut);
    ck_assert_msg(probe(p) != 0, "truncation at %zu not detected", cut);
  }
  unlink(p);
  unlink(src);
  free(data);
}
END_TEST

START_TEST(every_flipped_byte_fails) {
  uint8_t *data;
  size_t len;
  char src[512];
  snprintf(src, sizeof src, "%s", make_table(_i, &data, &len));
  const char *p = tu_path("flipped");
  static const uint8_t masks[] = {0x01, 0x80, 0xff};
  for (size_t m = 0; m < sizeof masks; m++)
    for (size_t i = 0; i < len; i++) {
      data[i] ^= masks[m];
      tu_write_file(p, data, len);
      data[i] ^= masks[m];
      ck_assert_msg(probe(p) != 0,
                    "flip 0x%02x at byte %zu of %zu not detected", masks[m], i,
                    len);
    }
  unlink(p);
  unlink(src);
  free(data);
}
END_TEST

START_TEST(foreign_files_refused) {
  const char *p = tu_path("foreign");
  sst_reader *r;
  sst_error err;
  tu_write_file(p, "", 0);
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), SST_ETRUNCATED);
  char text[4096];
  memset(text, 'x', sizeof text);
  tu_write_file(p, text, sizeof text);
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), SST_ENOTTABLE);
  ck_assert(strstr(err.msg, "not an sstable") != NULL);
  ck_assert_int_eq(sst_reader_open("/nonexistent", NULL, &r, &err), ENOENT);
  ck_assert_int_eq(sst_reader_open("/tmp", NULL, &r, &err), EISDIR);
  /* Random bytes behind a valid header. */
  uint8_t *data;
  size_t len;
  char src[512];
  snprintf(src, sizeof src, "%s", make_table(META, &data, &len));
  tu_rng rng;
  tu_rng_seed(&rng, 3);
  for (int trial = 0; trial < 300; trial++) {
    size_t n = 16 + tu_rng_below(&rng, 2000);
    uint8_t *junk = malloc(n);
    tu_rng_fill(&rng, junk, n);
    memcpy(junk, data, 16);
    if (trial % 2) /* keep a real footer too */
      memcpy(junk + n - 128 > junk + 16 ? junk + n - 128 : junk + 16,
             data + len - 128, n >= 144 ? 128 : n - 16);
    tu_write_file(p, junk, n);
    probe(p);
    free(junk);
  }
  free(data);
  unlink(src);
  unlink(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("corrupt");
  TCase *tc = tcase_create("corrupt");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, intact_table_verifies, 0, KINDS);
  tcase_add_test(tc, value_pread_checks_the_bytes_read);
  tcase_add_loop_test(tc, every_truncation_fails, 0, KINDS);
  tcase_add_loop_test(tc, every_flipped_byte_fails, 0, KINDS);
  tcase_add_test(tc, foreign_files_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
