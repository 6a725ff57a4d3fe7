/* test_compress.c — tables with compressed values: value blocks, chunks,
 * the dictionary and dedup. Every value read back, whole and in pieces at
 * any offset, through every read call, is the value written. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "format.h"
#include "sstable.h"
#include "testutil.h"
#include "warm_frame.h"

#define MAXV 64

typedef struct value {
  char key[32];
  uint8_t *bytes;
  size_t len;
} value;

static value vals[MAXV];
static int nvals;

/* Adds a value of len bytes: kind 0 text (compresses), 1 random (does
 * not), 2 a copy of value `copy`. */
static void make_value(int kind, size_t len, int copy, tu_rng *rng) {
  value *v = &vals[nvals];
  snprintf(v->key, sizeof v->key, "k%03d", nvals);
  nvals++;
  if (kind == 2) {
    v->len = vals[copy].len;
    v->bytes = malloc(v->len ? v->len : 1);
    memcpy(v->bytes, vals[copy].bytes, v->len);
    return;
  }
  v->len = len;
  v->bytes = malloc(len ? len : 1);
  if (kind == 1) {
    tu_rng_fill(rng, v->bytes, len);
    return;
  }
  for (size_t i = 0; i < len; i++)
    v->bytes[i] = (uint8_t) "the quick brown fox jumps over a lazy dog\n"
        [(i * 31 + (size_t)nvals) % 42];
}

static void free_values(void) {
  for (int i = 0; i < nvals; i++)
    free(vals[i].bytes);
  nvals = 0;
}

/* The set every test writes: empty, small, at the block limits, several
 * chunks, one byte past a chunk, incompressible, and copies of each. */
static void make_values(void) {
  tu_rng rng;
  tu_rng_seed(&rng, 7);
  nvals = 0;
  make_value(0, 0, 0, &rng);          /* 0 empty */
  make_value(0, 1, 0, &rng);          /* 1 one byte */
  make_value(0, 300, 0, &rng);        /* 2 small */
  make_value(1, 300, 0, &rng);        /* 3 small, random */
  make_value(0, 32768, 0, &rng);      /* 4 the largest packed (128K/4) */
  make_value(0, 32769, 0, &rng);      /* 5 the smallest chunked */
  make_value(0, 131072 * 3, 0, &rng); /* 6 three whole chunks */
  make_value(0, 131072 + 1, 0, &rng); /* 7 a chunk and a byte */
  make_value(1, 300000, 0, &rng);     /* 8 chunks that do not shrink */
  make_value(2, 0, 2, &rng);          /* 9 copy of 2 */
  make_value(2, 0, 6, &rng);          /* 10 copy of 6 */
  make_value(2, 0, 8, &rng);          /* 11 copy of 8 */
  for (int i = 0; i < 20; i++)        /* 12.. many small: several blocks */
    make_value(i % 3 == 0, 2000 + (size_t)i * 997, 0, &rng);
}

/* Writes the values; streamed when stream is set (in pieces of 4093
 * bytes). */
static void write_table(const char *p, const sst_writer_options *o, int stream,
                        sst_writer_stats *stats) {
  sst_writer *w;
  sst_error err;
  ck_assert_int_eq(sst_writer_open(p, o, &w, &err), 0);
  for (int i = 0; i < nvals; i++) {
    value *v = &vals[i];
    if (!stream) {
      ck_assert_int_eq(
          sst_writer_add(w, v->key, strlen(v->key), v->bytes, v->len), 0);
      continue;
    }
    ck_assert_int_eq(sst_writer_begin_value(w, v->key, strlen(v->key)), 0);
    for (size_t at = 0; at < v->len; at += 4093) {
      size_t n = v->len - at < 4093 ? v->len - at : 4093;
      ck_assert_int_eq(sst_writer_append_value(w, v->bytes + at, n), 0);
    }
    ck_assert_int_eq(sst_writer_end_value(w), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, &err), 0);
  if (stats)
    sst_writer_stats_get(w, stats);
  sst_writer_free(w);
}

/* sst_reader_read_spans of [off, off + want) of v: the spans hold v's
 * bytes; plain values (SST_ENOSPANS) are read with sst_reader_read. */
static void check_spans(const sst_reader *r, const sst_entry *e, const value *v,
                        uint64_t off, size_t want) {
  sst_spans sp;
  size_t n;
  int rc = sst_reader_read_spans(r, e, off, want, &sp, &n);
  if (!(e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))) {
    ck_assert_int_eq(rc, SST_ENOSPANS);
    return;
  }
  ck_assert_int_eq(rc, 0);
  size_t left = (size_t)(v->len - off);
  ck_assert_uint_eq(n, left < want ? left : want);
  size_t at = 0;
  for (int k = 0; k < sp.count; k++) {
    ck_assert_uint_gt(sp.span[k].len, 0);
    ck_assert_uint_le(at + sp.span[k].len, n);
    ck_assert(memcmp(sp.span[k].data, v->bytes + off + at, sp.span[k].len) ==
              0);
    at += sp.span[k].len;
  }
  ck_assert_uint_eq(at, n);
  sst_reader_release(r, &sp);
}

/* Every value, through get, value, value_pread, value_check and read at
 * offsets around chunk edges, equals what was written. */
static void check_table(const char *p, const sst_reader_options *ro) {
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, ro, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  for (int i = 0; i < nvals; i++) {
    value *v = &vals[i];
    const uint8_t *got;
    uint64_t len;
    ck_assert_int_eq(sst_reader_get(r, v->key, strlen(v->key), &got, &len), 0);
    ck_assert_uint_eq(len, v->len);
    ck_assert(memcmp(got, v->bytes, v->len) == 0);
    sst_entry e;
    ck_assert_int_eq(sst_reader_find(r, v->key, strlen(v->key), &e), 0);
    ck_assert_int_eq(sst_reader_value_check(r, &e), 0);
    uint8_t *buf = malloc(v->len + 1);
    ck_assert_int_eq(sst_reader_value_pread(r, &e, buf), 0);
    ck_assert(memcmp(buf, v->bytes, v->len) == 0);
    uint64_t offs[] = {0,      1,      4095,
                       16383,  131071, 131072,
                       131073, 262143, v->len ? v->len - 1 : 0,
                       v->len};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
      if (offs[k] > v->len)
        continue;
      size_t want = 5000, n;
      ck_assert_int_eq(sst_reader_read(r, &e, offs[k], buf, want, &n), 0);
      size_t left = (size_t)(v->len - offs[k]);
      ck_assert_uint_eq(n, left < want ? left : want);
      ck_assert(memcmp(buf, v->bytes + offs[k], n) == 0);
      check_spans(r, &e, v, offs[k], want);
      check_spans(r, &e, v, offs[k], 300000);
    }
    free(buf);
  }
  sst_reader_close(r);
}

START_TEST(round_trips) {
  /* _i: bit 0 streamed, bit 1 dedup, bit 2 pread_blocks and a tiny cache,
   * bit 3 uncompressed. */
  make_values();
  const char *p = tu_path("compress");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = _i & 8 ? 0 : 3;
  o.dedup = (_i & 2) != 0;
  sst_writer_stats st;
  write_table(p, &o, _i & 1, &st);
  if (o.dedup) {
    ck_assert_uint_eq(st.dedup_values, 3);
    ck_assert_uint_eq(st.dedup_bytes,
                      vals[9].len + vals[10].len + vals[11].len);
  } else {
    ck_assert_uint_eq(st.dedup_values, 0);
  }
  if (o.zstd_level) {
    ck_assert_uint_gt(st.value_blocks, 1);
    ck_assert_uint_gt(st.chunks, 5);
    ck_assert_uint_gt(st.raw_pieces, 0); /* the random ones */
  }
  sst_reader_options ro;
  sst_reader_options_init(&ro);
  if (_i & 4) {
    ro.pread_blocks = 1;
    ro.release_pages = 1;
    ro.cache_bytes = 1; /* nothing fits: every read decompresses */
  }
  check_table(p, &ro);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_int_eq((info.features & SST_FEATURE_VALUES) != 0,
                   o.zstd_level != 0);
  ck_assert_uint_eq(info.dedup_values, o.dedup ? 3 : 0);
  sst_reader_close(r);
  unlink(p);
  free_values();
}
END_TEST

/* Many small values that share their words: a dictionary is trained and
 * kept, the table is smaller than without it, and reads back. */
START_TEST(dictionary_helps_small_values) {
  const char *p = tu_path("dict"), *q = tu_path("nodict"),
             *t = tu_path("dict3");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  o.value_block = 4096;
  static uint8_t big[300000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)("abcabcabd"[i % 9] + (i / 7000) % 3);
  static const char *words[] = {"alpha", "bravo",   "charlie", "delta",
                                "echo",  "foxtrot", "golf",    "hotel"};
  tu_rng rng;
  /* Pass 2 trains again on 3 threads: the same table as pass 0. */
  for (int pass = 0; pass < 3; pass++) {
    o.dictionary = pass != 1;
    o.threads = pass == 2 ? 3 : 0;
    tu_rng_seed(&rng, 11);
    sst_writer *w;
    const char *out = pass == 0 ? p : pass == 1 ? q : t;
    ck_assert_int_eq(sst_writer_open(out, &o, &w, NULL), 0);
    /* A large value first: its chunks are written while the dictionary
     * is still being gathered, so without it; they must read back with
     * the dictionary in the table. */
    ck_assert_int_eq(sst_writer_add(w, "big", 3, big, sizeof big), 0);
    for (int i = 0; i < 3000; i++) {
      char key[32], v[600];
      size_t n = 0;
      snprintf(key, sizeof key, "rec%05d", i);
      n += (size_t)snprintf(v, sizeof v, "{\"id\": %d, \"tags\": [", i);
      for (int k = 0; k < 12; k++)
        n += (size_t)snprintf(v + n, sizeof v - n, "\"%s-%u\", ",
                              words[tu_rng_below(&rng, 8)],
                              (unsigned)tu_rng_below(&rng, 50));
      n += (size_t)snprintf(v + n, sizeof v - n, "\"end\"]}");
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), v, n), 0);
    }
    ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
    sst_writer_stats st;
    sst_writer_stats_get(w, &st);
    ck_assert(pass == 1 ? st.dict_bytes == 0 : st.dict_bytes > 0);
    sst_writer_free(w);
  }
  size_t with_len, without_len, threaded_len;
  uint8_t *with = tu_read_file(p, &with_len);
  uint8_t *threaded = tu_read_file(t, &threaded_len);
  free(tu_read_file(q, &without_len));
  ck_assert_uint_lt(with_len, without_len);
  ck_assert_uint_eq(threaded_len, with_len);
  ck_assert(memcmp(with, threaded, with_len) == 0);
  free(with);
  free(threaded);
  unlink(t);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert(info.features & SST_FEATURE_DICT);
  ck_assert_uint_gt(info.dict_bytes, 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  const uint8_t *v;
  uint64_t len;
  ck_assert_int_eq(sst_reader_get(r, "rec02999", 8, &v, &len), 0);
  ck_assert(len > 10 && memcmp(v, "{\"id\": 2999,", 12) == 0);
  ck_assert_int_eq(sst_reader_get(r, "big", 3, &v, &len), 0);
  ck_assert_uint_eq(len, sizeof big);
  ck_assert(memcmp(v, big, sizeof big) == 0);
  sst_reader_close(r);
  unlink(p);
  unlink(q);
}
END_TEST

/* Hard links through last_value/add_shared: packed and chunked values
 * are shared, stored once. */
START_TEST(shared_values_of_every_kind) {
  const char *p = tu_path("shared");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  make_values();
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  uint64_t off[3], len[3];
  uint32_t sum[3];
  const int src[3] = {2, 6, 0};
  for (int k = 0; k < 3; k++) {
    char key[8];
    snprintf(key, sizeof key, "a%d", k);
    value *v = &vals[src[k]];
    ck_assert_int_eq(sst_writer_add(w, key, 2, v->bytes, v->len), 0);
    ck_assert_int_eq(sst_writer_last_value(w, &off[k], &len[k], &sum[k]), 0);
  }
  for (int k = 0; k < 3; k++) {
    char key[8];
    snprintf(key, sizeof key, "b%d", k);
    ck_assert_int_eq(sst_writer_add_shared(w, key, 2, off[k], len[k], sum[k]),
                     0);
  }
  ck_assert_int_eq(sst_writer_add_shared(w, "c", 1, off[1], len[1] + 1, 0),
                   SST_EINVAL);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  for (int k = 0; k < 3; k++) {
    char key[8];
    snprintf(key, sizeof key, "b%d", k);
    const uint8_t *v;
    uint64_t n;
    ck_assert_int_eq(sst_reader_get(r, key, 2, &v, &n), 0);
    ck_assert_uint_eq(n, vals[src[k]].len);
    ck_assert(memcmp(v, vals[src[k]].bytes, n) == 0);
    sst_entry e;
    ck_assert_int_eq(sst_reader_find(r, key, 2, &e), 0);
    if (n)
      ck_assert(e.flags & SST_FLAG_SHARED || e.flags & SST_FLAG_PACKED);
  }
  sst_reader_close(r);
  unlink(p);
  free_values();
}
END_TEST

/* sst_writer_add_from copies between compressed and plain tables. */
START_TEST(copies_between_tables) {
  const char *a = tu_path("copy-a"), *b = tu_path("copy-b");
  make_values();
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = _i ? 0 : 5;
  write_table(a, &o, 0, NULL);
  o.zstd_level = _i ? 5 : 0;
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(a, NULL, &r, NULL), 0);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(b, &o, &w, NULL), 0);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    int read_rc;
    ck_assert_int_eq(sst_writer_add_from(w, e->key, e->key_len, r, e, &read_rc),
                     0);
  }
  sst_iter_free(it);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader_close(r);
  check_table(b, NULL);
  unlink(a);
  unlink(b);
  free_values();
}
END_TEST

/* A copy (sst_writer_add_from) of a chunked value whose table is damaged
 * is refused before anything is written; one whose chunk is damaged fails
 * the copy and its writer, and no table is made of it. */
START_TEST(copy_of_damaged_chunks) {
  const char *a = tu_path("dmg-a"), *b = tu_path("dmg-b");
  make_values();
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  write_table(a, &o, 0, NULL);
  value *v = &vals[6]; /* three whole chunks */
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(a, NULL, &r, NULL), 0);
  sst_entry e;
  ck_assert_int_eq(sst_reader_find(r, v->key, strlen(v->key), &e), 0);
  ck_assert(e.flags & SST_FLAG_CHUNKED);
  uint64_t in_table = e.value_offset + e.value_stored - 5;
  uint64_t in_chunk = e.value_offset + 100;
  sst_reader_close(r);
  size_t len;
  uint8_t *good = tu_read_file(a, &len);
  for (int k = 0; k < 2; k++) {
    uint8_t *bad = malloc(len);
    memcpy(bad, good, len);
    bad[k == 0 ? in_table : in_chunk] ^= 0x40;
    tu_write_file(a, bad, len);
    free(bad);
    ck_assert_int_eq(sst_reader_open(a, NULL, &r, NULL), 0);
    ck_assert_int_eq(sst_reader_find(r, v->key, strlen(v->key), &e), 0);
    sst_writer *w;
    ck_assert_int_eq(sst_writer_open(b, &o, &w, NULL), 0);
    int read_rc = 0;
    int rc = sst_writer_add_from(w, e.key, e.key_len, r, &e, &read_rc);
    ck_assert_int_ne(read_rc, 0);
    ck_assert_int_ne(rc, 0);
    sst_error err;
    if (k == 0) { /* nothing written: the writer goes on */
      ck_assert_int_eq(sst_writer_add(w, "z", 1, "ok", 2), 0);
      ck_assert_int_eq(sst_writer_finish(w, &err), 0);
      ck_assert_int_eq(access(b, F_OK), 0);
      unlink(b);
    } else {
      ck_assert_int_ne(sst_writer_finish(w, &err), 0);
      ck_assert_int_ne(access(b, F_OK), 0);
    }
    sst_writer_free(w);
    sst_reader_close(r);
  }
  free(good);
  unlink(a);
  free_values();
}
END_TEST

/* While the entries of chunked values wait for their chunks, keys are
 * still checked for order against the last one given. */
START_TEST(order_while_entries_wait) {
  const char *p = tu_path("order");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.threads = 1;
  static uint8_t big[40000];
  memset(big, 'b', sizeof big);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, big, sizeof big), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "x", 1), SST_EORDER);
  ck_assert_int_eq(sst_writer_add(w, "b", 1, "x", 1), SST_EORDER);
  ck_assert_int_eq(sst_writer_add_tombstone(w, "a", 1), SST_EORDER);
  ck_assert_int_eq(sst_writer_add(w, "c", 1, "x", 1), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  const uint8_t *v;
  uint64_t n;
  ck_assert_int_eq(sst_reader_get(r, "b", 1, &v, &n), 0);
  ck_assert(n == sizeof big && memcmp(v, big, n) == 0);
  ck_assert_int_eq(sst_reader_get(r, "c", 1, &v, &n), 0);
  ck_assert_int_eq(sst_reader_get(r, "a", 1, &v, &n), SST_ENOTFOUND);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* More entries wait than the queue holds (tombstones take no piece, so
 * they all wait behind the first chunked value), and the entry that
 * overflows it has a chunked value of its own: every entry is in the
 * table, and a hard link to that value (sst_writer_last_value) is
 * right. */
START_TEST(queue_overflow) {
  const char *p = tu_path("overflow");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.threads = 1;
  static uint8_t big[40000], big2[40000];
  memset(big, 'k', sizeof big);
  memset(big2, 'm', sizeof big2);
  const int tombs = 65535;
  char key[32];
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "k0", 2, big, sizeof big), 0);
  for (int i = 0; i < tombs; i++) {
    snprintf(key, sizeof key, "t%06d", i);
    ck_assert_int_eq(sst_writer_add_tombstone(w, key, strlen(key)), 0);
  }
  ck_assert_int_eq(sst_writer_add(w, "u1", 2, big2, sizeof big2), 0);
  uint64_t off, len;
  uint32_t sum;
  ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
  ck_assert_uint_eq(len, sizeof big2);
  ck_assert_int_eq(sst_writer_add_shared(w, "u2", 2, off, len, sum), 0);
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "v%d", i);
    ck_assert_int_eq(sst_writer_add(w, key, strlen(key), "small", 5), 0);
  }
  ck_assert_uint_eq(sst_writer_key_count(w), (uint64_t)tombs + 13);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, (uint64_t)tombs + 13);
  const uint8_t *v;
  uint64_t n;
  ck_assert_int_eq(sst_reader_get(r, "k0", 2, &v, &n), 0);
  ck_assert(n == sizeof big && memcmp(v, big, n) == 0);
  ck_assert_int_eq(sst_reader_get(r, "u1", 2, &v, &n), 0);
  ck_assert(n == sizeof big2 && memcmp(v, big2, n) == 0);
  ck_assert_int_eq(sst_reader_get(r, "u2", 2, &v, &n), 0);
  ck_assert(n == sizeof big2 && memcmp(v, big2, n) == 0);
  ck_assert_int_eq(sst_reader_get(r, "v9", 2, &v, &n), 0);
  ck_assert(n == 5 && memcmp(v, "small", 5) == 0);
  sst_entry e;
  ck_assert_int_eq(sst_reader_find(r, "t065534", 7, &e), 0);
  ck_assert(e.flags & SST_FLAG_TOMBSTONE);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* Compressed on 1, 2 or 4 threads, the table is byte for byte the one
 * compressed in the caller's thread, whole or streamed, with dedup; and
 * it reads back. */
START_TEST(threads_give_the_same_table) {
  make_values();
  const char *ref = tu_path("threads0"), *p = tu_path("threadsN");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  o.dedup = 1;
  o.threads = 0;
  write_table(ref, &o, _i, NULL);
  size_t ref_len;
  uint8_t *want = tu_read_file(ref, &ref_len);
  static const unsigned counts[] = {1, 2, 4};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    o.threads = counts[k];
    write_table(p, &o, _i, NULL);
    size_t len;
    uint8_t *got = tu_read_file(p, &len);
    ck_assert_uint_eq(len, ref_len);
    ck_assert(memcmp(got, want, len) == 0);
    free(got);
  }
  check_table(p, NULL);
  free(want);
  unlink(ref);
  unlink(p);
  free_values();
}
END_TEST

/* Writes the table of entries_after_pieces: records that fill many
 * small value blocks (the dictionary's training ends among them, so that
 * hundreds of blocks go to the pool at once), then empty values, hard
 * links to an empty value, and key blocks of nothing but tombstones,
 * while pieces are still being compressed. */
static void write_mixed(const char *p, unsigned threads) {
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  o.value_block = 4096;
  o.dedup = 1;
  o.threads = threads;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  char key[32], v[700];
  for (int i = 0; i < 8000; i++) {
    snprintf(key, sizeof key, "a%05d", i);
    int n = snprintf(v, sizeof v, "record %d:", i);
    for (int k = 0; k < 40; k++)
      n += snprintf(v + n, sizeof v - (size_t)n, " w%d", (i * 31 + k) % 97);
    ck_assert_int_eq(sst_writer_add(w, key, strlen(key), v, (size_t)n), 0);
  }
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "b%05d", i);
    if (i % 2 == 0) {
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), "", 0), 0);
      continue;
    }
    uint64_t off, len;
    uint32_t sum;
    ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(sst_writer_add_shared(w, key, strlen(key), off, len, sum),
                     0);
  }
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof key, "c%05d", i);
    ck_assert_int_eq(sst_writer_add_tombstone(w, key, strlen(key)), 0);
  }
  ck_assert_int_eq(sst_writer_add(w, "d", 1, "last", 4), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
}

/* Entries without bytes (empty values, links to them, tombstones) added
 * while pieces are in the pool: the same table on 0 and 4 threads, and
 * every entry reads back as what it is. */
START_TEST(entries_after_pieces) {
  const char *p = tu_path("mixed0"), *q = tu_path("mixed4");
  write_mixed(p, 0);
  write_mixed(q, 4);
  size_t plen, qlen;
  uint8_t *a = tu_read_file(p, &plen), *b = tu_read_file(q, &qlen);
  ck_assert_uint_eq(plen, qlen);
  ck_assert(memcmp(a, b, plen) == 0);
  free(a);
  free(b);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(q, NULL, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  char key[32];
  const uint8_t *v;
  uint64_t len;
  sst_entry e;
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "b%05d", i);
    ck_assert_int_eq(sst_reader_get(r, key, strlen(key), &v, &len), 0);
    ck_assert_uint_eq(len, 0);
  }
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof key, "c%05d", i);
    ck_assert_int_eq(sst_reader_get(r, key, strlen(key), &v, &len),
                     SST_ENOTFOUND);
    ck_assert_int_eq(sst_reader_find(r, key, strlen(key), &e), 0);
    ck_assert(e.flags & SST_FLAG_TOMBSTONE);
  }
  ck_assert_int_eq(sst_reader_get(r, "a07999", 6, &v, &len), 0);
  ck_assert(len > 12 && memcmp(v, "record 7999:", 12) == 0);
  ck_assert_int_eq(sst_reader_get(r, "d", 1, &v, &len), 0);
  ck_assert(len == 4 && memcmp(v, "last", 4) == 0);
  sst_reader_close(r);
  unlink(p);
  unlink(q);
}
END_TEST

/* Bytes the values of chunked_values_in_flight are cut from: the
 * largest, 394,413 bytes, from the fifth byte on. */
#define FLIGHT_BIG 400000

/* Writes the table of chunked_values_in_flight: chunked values of one to
 * three chunks among small ones, whole and streamed, each followed at once
 * by what must wait for it or find it: a copy of it (whole and streamed),
 * a hard link to it (sst_writer_last_value), an entry with metadata and
 * xattrs, an empty value, a tombstone; and runs of small keys that fill
 * key blocks while the chunked values are still in the pool. */
static void write_in_flight(const char *p, unsigned threads) {
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  o.dedup = 1;
  o.threads = threads;
  o.block_bytes = 512; /* many key blocks */
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  static uint8_t big[FLIGHT_BIG];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)((i * 7 + i / 1000) % 251);
  char key[32], small[200];
  uint8_t xattrs[64];
  for (int i = 0; i < 60; i++) {
    size_t len = 40000 + (size_t)i * 6007;
    uint8_t *v = big + i % 5; /* a different value each time */
    snprintf(key, sizeof key, "v%03d/a", i);
    if (i % 2) {
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), v, len), 0);
    } else {
      ck_assert_int_eq(sst_writer_begin_value(w, key, strlen(key)), 0);
      for (size_t at = 0; at < len; at += 50000) {
        size_t n = len - at < 50000 ? len - at : 50000;
        ck_assert_int_eq(sst_writer_append_value(w, v + at, n), 0);
      }
      ck_assert_int_eq(sst_writer_end_value(w), 0);
    }
    switch (i % 6) {
    case 0: /* a copy, whole */
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), v, len), 0);
      break;
    case 1: /* a copy, streamed */
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_begin_value(w, key, strlen(key)), 0);
      ck_assert_int_eq(sst_writer_append_value(w, v, len), 0);
      ck_assert_int_eq(sst_writer_end_value(w), 0);
      break;
    case 2: { /* a hard link */
      uint64_t off, n;
      uint32_t sum;
      ck_assert_int_eq(sst_writer_last_value(w, &off, &n, &sum), 0);
      ck_assert_uint_eq(n, len);
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_add_shared(w, key, strlen(key), off, n, sum),
                       0);
      break;
    }
    case 3: { /* metadata and xattrs */
      char val[16];
      int vl = snprintf(val, sizeof val, "%d", i);
      sst_xattr x = {.name = "user.n",
                     .name_len = 6,
                     .value = (const uint8_t *)val,
                     .value_len = (size_t)vl};
      size_t xl = sst_xattrs_encode(&x, 1, xattrs, sizeof xattrs);
      ck_assert(xl > 0 && xl <= sizeof xattrs);
      sst_meta m = {.type = SST_TYPE_FILE,
                    .mode = 0640,
                    .mtime_sec = 1000000 + i,
                    .mtime_nsec = (uint32_t)i,
                    .nlink = 1,
                    .xattrs = xattrs,
                    .xattr_len = (uint32_t)xl};
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), "meta", 4), 0);
      break;
    }
    case 4:
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), "", 0), 0);
      break;
    default:
      snprintf(key, sizeof key, "v%03d/b", i);
      ck_assert_int_eq(sst_writer_add_tombstone(w, key, strlen(key)), 0);
    }
    for (int k = 0; k < 40; k++) {
      snprintf(key, sizeof key, "v%03d/c%02d", i, k);
      int n = snprintf(small, sizeof small, "small %d %d", i, k);
      ck_assert_int_eq(sst_writer_add(w, key, strlen(key), small, (size_t)n),
                       0);
    }
  }
  /* Entries still waiting for their chunks count as added. */
  ck_assert_uint_eq(sst_writer_key_count(w), 60 * 42);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  ck_assert_uint_eq(sst_writer_key_count(w), 60 * 42);
  sst_writer_free(w);
}

/* A chunked value's entry waits for its chunks while the next values go
 * to the pool: the table is the same on 0, 1, 2 and 4 threads, verifies,
 * and every entry reads back as what was added. */
START_TEST(chunked_values_in_flight) {
  const char *ref = tu_path("flight0"), *p = tu_path("flightN");
  write_in_flight(ref, 0);
  size_t ref_len;
  uint8_t *want = tu_read_file(ref, &ref_len);
  static const unsigned counts[] = {1, 2, 4};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    write_in_flight(p, counts[k]);
    size_t len;
    uint8_t *got = tu_read_file(p, &len);
    ck_assert_uint_eq(len, ref_len);
    ck_assert(memcmp(got, want, len) == 0);
    free(got);
  }
  free(want);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  static uint8_t big[FLIGHT_BIG];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)((i * 7 + i / 1000) % 251);
  char key[32], small[200];
  const uint8_t *v;
  uint64_t n;
  sst_entry e;
  for (int i = 0; i < 60; i++) {
    size_t len = 40000 + (size_t)i * 6007;
    snprintf(key, sizeof key, "v%03d/a", i);
    ck_assert_int_eq(sst_reader_get(r, key, strlen(key), &v, &n), 0);
    ck_assert_uint_eq(n, len);
    ck_assert(memcmp(v, big + i % 5, len) == 0);
    snprintf(key, sizeof key, "v%03d/b", i);
    int rc = sst_reader_get(r, key, strlen(key), &v, &n);
    switch (i % 6) {
    case 0:
    case 1:
    case 2:
      ck_assert_int_eq(rc, 0);
      ck_assert_uint_eq(n, len);
      ck_assert(memcmp(v, big + i % 5, len) == 0);
      ck_assert_int_eq(sst_reader_find(r, key, strlen(key), &e), 0);
      ck_assert(e.flags & SST_FLAG_SHARED); /* stored once */
      break;
    case 3:
      ck_assert_int_eq(rc, 0);
      ck_assert(n == 4 && memcmp(v, "meta", 4) == 0);
      ck_assert_int_eq(sst_reader_find(r, key, strlen(key), &e), 0);
      ck_assert(e.flags & SST_FLAG_META);
      ck_assert_uint_eq(e.meta.mode, 0640);
      ck_assert_int_eq(e.meta.mtime_sec, 1000000 + i);
      ck_assert_uint_eq(e.meta.mtime_nsec, (uint32_t)i);
      {
        uint8_t xb[64];
        char xv[16];
        int wl = snprintf(xv, sizeof xv, "%d", i);
        ck_assert_uint_le(e.meta.xattr_len, sizeof xb);
        ck_assert_int_eq(sst_reader_xattrs(r, &e, xb), 0);
        size_t pos = 0;
        sst_xattr x;
        ck_assert_int_eq(sst_xattrs_next(xb, e.meta.xattr_len, &pos, &x), 1);
        ck_assert(x.name_len == 6 && memcmp(x.name, "user.n", 6) == 0);
        ck_assert(x.value_len == (size_t)wl &&
                  memcmp(x.value, xv, x.value_len) == 0);
      }
      break;
    case 4:
      ck_assert_int_eq(rc, 0);
      ck_assert_uint_eq(n, 0);
      break;
    default:
      ck_assert_int_eq(rc, SST_ENOTFOUND);
    }
    for (int k = 0; k < 40; k++) {
      snprintf(key, sizeof key, "v%03d/c%02d", i, k);
      int m = snprintf(small, sizeof small, "small %d %d", i, k);
      ck_assert_int_eq(sst_reader_get(r, key, strlen(key), &v, &n), 0);
      ck_assert(n == (uint64_t)m && memcmp(v, small, n) == 0);
    }
  }
  sst_reader_close(r);
  unlink(ref);
  unlink(p);
}
END_TEST

/* Many small value blocks read in a shuffled order, again and again,
 * through caches that evict by bytes, by slots, or not at all: every
 * read returns its value. */
START_TEST(cache_under_pressure) {
  const char *p = tu_path("cachep");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.value_block = 4096;
  enum { N = 3000 };
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  for (int i = 0; i < N; i++) {
    char key[16], v[700];
    snprintf(key, sizeof key, "k%05d", i);
    int n = snprintf(v, sizeof v, "value %d:", i);
    for (int k = 0; k < 20; k++)
      n += snprintf(v + n, sizeof v - (size_t)n, " %d", (i * 7919 + k) % 1000);
    ck_assert_int_eq(sst_writer_add(w, key, strlen(key), v, (size_t)n), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  /* 8 KiB: two blocks at most; 256 KiB: 64 slots, filled before the
   * bytes run out; 64 MiB: every block stays. */
  static const uint64_t caches[] = {8u << 10, 256u << 10, 64u << 20};
  for (size_t c = 0; c < sizeof caches / sizeof caches[0]; c++) {
    sst_reader_options ro;
    sst_reader_options_init(&ro);
    ro.cache_bytes = caches[c];
    sst_reader *r;
    ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
    tu_rng rng;
    tu_rng_seed(&rng, 5);
    for (int round = 0; round < 3 * N; round++) {
      int i = (int)tu_rng_below(&rng, N);
      char key[16], want[16];
      snprintf(key, sizeof key, "k%05d", i);
      int wn = snprintf(want, sizeof want, "value %d:", i);
      const uint8_t *v;
      uint64_t len;
      ck_assert_int_eq(sst_reader_get(r, key, strlen(key), &v, &len), 0);
      ck_assert(len > (uint64_t)wn && memcmp(v, want, (size_t)wn) == 0);
    }
    sst_reader_close(r);
  }
  unlink(p);
}
END_TEST

/* Key blocks of a compressed table are compressed when that pays, and
 * stored as they are when not (random keys): entries, their positions
 * (increasing, each found again by position and by key), values (packed,
 * without checksums of their own), metadata and attributes read back the
 * same through the mapping and through pread, and the table verifies. */
START_TEST(compressed_key_blocks) {
  const char *p = tu_path("keyz");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 3;
  enum { N = 3000 };
  static char keys[N][40];
  tu_rng rng;
  tu_rng_seed(&rng, 11);
  for (int i = 0; i < N; i++) {
    if (i < N / 2) { /* alike names: their blocks compress */
      snprintf(keys[i], sizeof keys[i], "a/dir%03d/file%05d.txt", i / 50, i);
    } else { /* random names: blocks that do not shrink stay raw */
      int n = snprintf(keys[i], sizeof keys[i], "b/%05d-", i);
      for (int k = 0; k < 24; k++)
        keys[i][n + k] = (char)(1 + tu_rng_below(&rng, 255));
      keys[i][n + 24] = '\0';
    }
  }
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  for (int i = 0; i < N; i++) {
    char v[40], xv[16];
    int n = snprintf(v, sizeof v, "value of %d", i);
    int xn = snprintf(xv, sizeof xv, "x%d", i);
    uint8_t xbuf[64];
    sst_xattr x = {"user.n", 6, (const uint8_t *)xv, (size_t)xn};
    sst_meta m = {.type = SST_TYPE_FILE,
                  .mode = 0644,
                  .mtime_sec = 1700000000 + i,
                  .mtime_nsec = (uint32_t)i * 1000,
                  .nlink = 1};
    if (i % 3 == 0) {
      m.xattr_len = (uint32_t)sst_xattrs_encode(&x, 1, xbuf, sizeof xbuf);
      m.xattrs = xbuf;
    }
    ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
    ck_assert_int_eq(sst_writer_add(w, keys[i], strlen(keys[i]), v, (size_t)n),
                     0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  for (int mode = 0; mode < 2; mode++) {
    sst_reader_options ro;
    sst_reader_options_init(&ro);
    ro.pread_blocks = mode;
    sst_reader *r;
    ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
    sst_info in;
    sst_reader_info(r, &in);
    ck_assert(in.features & SST_FEATURE_KEYZ);
    ck_assert(in.features & SST_FEATURE_BLOCKSUM);
    ck_assert_uint_lt(in.key_blocks_stored, in.key_blocks_raw * 3 / 4);
    static uint64_t pos[N];
    sst_iter *it;
    ck_assert_int_eq(sst_iter_new(r, &it), 0);
    int i = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it), i++) {
      const sst_entry *e = sst_iter_entry(it);
      ck_assert_int_lt(i, N);
      ck_assert(e->key_len == strlen(keys[i]) &&
                memcmp(e->key, keys[i], e->key_len) == 0);
      pos[i] = e->position;
      ck_assert(i == 0 || pos[i] > pos[i - 1]);
      ck_assert_uint_lt(pos[i], in.position_end);
      ck_assert_int_eq(e->meta.mtime_nsec, i * 1000);
      /* Packed: checked by its block, no checksum of its own. */
      ck_assert(e->flags & SST_FLAG_PACKED);
      ck_assert_uint_eq(e->value_checksum, 0);
      const uint8_t *v;
      uint64_t vlen;
      char want[40];
      int wn = snprintf(want, sizeof want, "value of %d", i);
      ck_assert_int_eq(sst_reader_get(r, e->key, e->key_len, &v, &vlen), 0);
      ck_assert(vlen == (uint64_t)wn && memcmp(v, want, (size_t)wn) == 0);
      ck_assert_uint_eq(e->meta.xattr_len > 0, i % 3 == 0);
      if (e->meta.xattr_len) {
        uint8_t buf[64];
        char xv[16];
        int xn = snprintf(xv, sizeof xv, "x%d", i);
        ck_assert_int_eq(sst_reader_xattrs(r, e, buf), 0);
        ck_assert(memmem(buf, e->meta.xattr_len, xv, (size_t)xn) != NULL);
      }
    }
    ck_assert_int_eq(sst_iter_status(it), 0);
    ck_assert_int_eq(i, N);
    for (i = N - 1; i >= 0; i -= 7) {
      ck_assert_int_eq(sst_iter_seek_position(it, pos[i]), 0);
      ck_assert(memcmp(sst_iter_entry(it)->key, keys[i], strlen(keys[i])) == 0);
      /* Between two entries, and past the last: nothing. */
      ck_assert_int_ne(sst_iter_seek_position(it, pos[i] + 1), 0);
      sst_entry e;
      ck_assert_int_eq(sst_reader_find(r, keys[i], strlen(keys[i]), &e), 0);
      ck_assert_uint_eq(e.position, pos[i]);
    }
    ck_assert_int_ne(sst_iter_seek_position(it, in.position_end), 0);
    sst_iter_free(it);
    sst_error err;
    ck_assert_int_eq(sst_reader_verify(r, &err), 0);
    sst_reader_close(r);
  }
  unlink(p);
}
END_TEST

/* "key-NUMBER-" and 100 bytes that differ from the next key's. */
static int make_long_key(char *key, int i) {
  int n = sprintf(key, "key-%08d-", i);
  for (int k = 0; k < 100; k++)
    key[n++] = (char)('a' + (i * 31 + k * 7) % 26);
  key[n] = '\0';
  return n;
}

/* A key block decoded larger than a reader accepts (4 MiB) is stored as
 * it is, so the table opens; the reader's cache keeps no block that
 * large. */
START_TEST(huge_key_block_stays_raw) {
  const char *p = tu_path("keyhuge");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.block_keys = 0;         /* by size only */
  o.block_bytes = 6u << 20; /* the first block: about 6 MiB */
  enum { N = 200000 };
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  for (int i = 0; i < N; i++) {
    char key[128];
    int n = make_long_key(key, i);
    ck_assert_int_eq(sst_writer_add(w, key, (size_t)n, key, 6), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  sst_error err;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, &err), 0);
  sst_info in;
  sst_reader_info(r, &in);
  ck_assert_uint_ge(in.block_count, 2);
  ck_assert_uint_gt(in.key_blocks_stored, 4u << 20); /* the first, raw */
  for (int i = 0; i < N; i += 997) {
    char key[128];
    int n = make_long_key(key, i);
    const uint8_t *v;
    uint64_t len;
    ck_assert_int_eq(sst_reader_get(r, key, (size_t)n, &v, &len), 0);
    ck_assert(len == 6 && memcmp(v, key, 6) == 0);
  }
  ck_assert_int_eq(sst_reader_verify(r, &err), 0);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* The built-in frame sst_reader_warm decodes is a valid frame of
 * WARM_RAW bytes (else the warm-up would silently do nothing), and
 * warming a table, with or without compression, leaves its reads right. */
START_TEST(warm_decoder) {
  static unsigned char out[WARM_RAW + 1];
  size_t got = ZSTD_decompress(out, sizeof out, warm_frame, sizeof warm_frame);
  ck_assert(!ZSTD_isError(got));
  ck_assert_uint_eq(got, WARM_RAW);
  for (int level = 0; level <= 3; level += 3) {
    const char *p = tu_path("warm");
    sst_writer_options o;
    sst_writer_options_init(&o);
    o.no_sync = 1;
    o.zstd_level = level;
    sst_writer *w;
    ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
    ck_assert_int_eq(sst_writer_add(w, "k", 1, "value", 5), 0);
    ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
    sst_writer_free(w);
    sst_reader *r;
    ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
    sst_reader_warm(r);
    sst_reader_warm(r);
    const uint8_t *v;
    uint64_t len;
    ck_assert_int_eq(sst_reader_get(r, "k", 1, &v, &len), 0);
    ck_assert(len == 5 && memcmp(v, "value", 5) == 0);
    sst_reader_close(r);
    unlink(p);
  }
}
END_TEST

/* The reader's cache keeps two of the table's largest pieces whatever
 * its bound: with a block of 256 KiB and a bound of 64 KiB, the block that
 * served one small value serves the others from memory. Seen here by
 * damaging the value region between the reads: the same reader fails
 * once its cache is dropped (sst_reader_drop_cache), and so does a fresh
 * reader of the damaged file. */
START_TEST(cache_holds_large_blocks) {
  const char *p = tu_path("bigblocks");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.value_block = 1u << 20;
  enum { N = 64, LEN = 4000 };
  static char bv[N][LEN];
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    for (int j = 0; j < LEN; j++)
      bv[i][j] = (char)('a' + (i * 7 + j / 5) % 26);
    ck_assert_int_eq(sst_writer_add(w, key, 4, bv[i], LEN), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);

  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.pread_blocks = 1;
  ro.cache_bytes = 64u << 10;
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  sst_info in;
  sst_reader_info(r, &in);
  ck_assert_uint_eq(in.value_blocks, 1);
  const uint8_t *v;
  uint64_t len;
  ck_assert_int_eq(sst_reader_get(r, "k000", 4, &v, &len), 0);
  ck_assert(len == LEN && memcmp(v, bv[0], LEN) == 0);

  int fd = open(p, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  static uint8_t junk[1u << 20];
  memset(junk, 0xAA, sizeof junk);
  ck_assert_uint_le(in.value_region, sizeof junk);
  ck_assert_int_eq(pwrite(fd, junk, (size_t)in.value_region, SST_HEADER_SIZE),
                   (ssize_t)in.value_region);
  close(fd);

  for (int i = 1; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    ck_assert_int_eq(sst_reader_get(r, key, 4, &v, &len), 0);
    ck_assert(len == LEN && memcmp(v, bv[i], LEN) == 0);
  }
  /* Once the cache is dropped, the block is read again: damaged now. */
  sst_reader_drop_cache(r);
  ck_assert_int_eq(sst_reader_get(r, "k002", 4, &v, &len), SST_ECHECKSUM);
  sst_reader_close(r);
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_get(r, "k001", 4, &v, &len), SST_ECHECKSUM);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* Spans stay readable while the cache evicts around them, also when
 * more are held than the cache has slots (then in buffers of their own),
 * and are given back; a read over more chunks than SST_SPAN_MAX and a
 * plain table's value are SST_ENOSPANS (for sst_reader_read), and a read
 * that fails at its second chunk holds nothing. */
START_TEST(spans_outlive_eviction) {
  const char *p = tu_path("spans");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.value_block = 4096;
  enum { N = 400, LEN = 1500, HELD = 80, BIG = 12 * 131072 + 5 };
  static char bv[N][LEN];
  static uint8_t big[BIG];
  for (size_t j = 0; j < BIG; j++)
    big[j] = (uint8_t)('a' + (j * 13 + j / 7) % 26);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "big", 3, big, BIG), 0);
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    for (int j = 0; j < LEN; j++)
      bv[i][j] = (char)('a' + (i * 7 + j / 5) % 26);
    ck_assert_int_eq(sst_writer_add(w, key, 4, bv[i], LEN), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);

  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.pread_blocks = 1;
  ro.cache_bytes = 8u << 10; /* the floor: two chunks, 64 slots */
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  static sst_spans held[HELD];
  sst_entry e;
  size_t n;
  for (int i = 0; i < HELD; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i * (N / HELD));
    ck_assert_int_eq(sst_reader_find(r, key, 4, &e), 0);
    ck_assert_int_eq(sst_reader_read_spans(r, &e, 10, LEN, &held[i], &n), 0);
    ck_assert_uint_eq(n, LEN - 10);
    ck_assert_int_eq(held[i].count, 1);
  }
  /* Other blocks and chunks come and go meanwhile. */
  ck_assert_int_eq(sst_reader_find(r, "big", 3, &e), 0);
  uint8_t *buf = malloc(BIG);
  for (uint64_t off = 0; off < BIG; off += 100000) {
    ck_assert_int_eq(sst_reader_read(r, &e, off, buf, 100000, &n), 0);
    ck_assert(memcmp(buf, big + off, n) == 0);
  }
  for (int i = 0; i < N; i++) {
    const uint8_t *v;
    uint64_t len;
    char key[16];
    snprintf(key, sizeof key, "k%03d", N - 1 - i);
    ck_assert_int_eq(sst_reader_get(r, key, 4, &v, &len), 0);
    ck_assert(len == LEN && memcmp(v, bv[N - 1 - i], LEN) == 0);
  }
  /* More spans than the cache has slots: the last ones own their
   * buffers. */
  int owned = 0;
  for (int i = 0; i < HELD; i++)
    owned += held[i].slot[0] < 0;
  ck_assert_int_gt(owned, 0);
  for (int i = 0; i < HELD; i++) {
    ck_assert(memcmp(held[i].span[0].data, bv[i * (N / HELD)] + 10, LEN - 10) ==
              0);
    sst_reader_release(r, &held[i]);
    ck_assert_int_eq(held[i].count, 0);
  }
  /* At most SST_SPAN_MAX chunks at once. */
  sst_spans sp;
  uint64_t most = (uint64_t)SST_SPAN_MAX * 131072;
  ck_assert_int_eq(sst_reader_read_spans(r, &e, 0, most, &sp, &n), 0);
  ck_assert_int_eq(sp.count, SST_SPAN_MAX);
  ck_assert_uint_eq(n, most);
  sst_reader_release(r, &sp);
  ck_assert_int_eq(sst_reader_read_spans(r, &e, 1, most, &sp, &n),
                   SST_ENOSPANS);
  ck_assert_int_eq(sst_reader_read(r, &e, 1, buf, most, &n), 0);
  ck_assert(n == most && memcmp(buf, big + 1, n) == 0);
  /* Past the end: nothing. */
  ck_assert_int_eq(sst_reader_read_spans(r, &e, BIG, 10, &sp, &n), 0);
  ck_assert(n == 0 && sp.count == 0);
  sst_reader_close(r);

  /* A damaged chunk (the second): a read that reaches it fails after
   * the first was held, and holds nothing; the first still reads. */
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_find(r, "big", 3, &e), 0);
  int fd = open(p, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint64_t chunks = (BIG + 131071) / 131072;
  uint8_t ent[SST_CHUNK_ENTRY]; /* chunk 0's: where chunk 1 starts */
  ck_assert_int_eq(pread(fd, ent, sizeof ent,
                         (off_t)(e.value_offset + e.value_stored -
                                 chunks * SST_CHUNK_ENTRY)),
                   (ssize_t)sizeof ent);
  uint64_t chunk1 = 0; /* little-endian */
  for (int k = 7; k >= 0; k--)
    chunk1 = chunk1 << 8 | ent[k];
  chunk1 &= ~SST_CHUNK_RAW;
  uint8_t junk[8]; /* past chunk 1's frame header */
  memset(junk, 0x55, sizeof junk);
  ck_assert_int_eq(
      pwrite(fd, junk, sizeof junk, (off_t)(e.value_offset + chunk1 + 8)),
      (ssize_t)sizeof junk);
  close(fd);
  ck_assert_int_eq(sst_reader_read_spans(r, &e, 0, 3 * 131072, &sp, &n),
                   SST_ECHECKSUM);
  ck_assert(n == 0 && sp.count == 0);
  ck_assert_int_eq(sst_reader_read_spans(r, &e, 0, 1000, &sp, &n), 0);
  ck_assert(n == 1000 && memcmp(sp.span[0].data, big, 1000) == 0);
  sst_reader_release(r, &sp);
  sst_reader_close(r);

  /* A plain table: read in place, not through spans. */
  o.zstd_level = 0;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, bv[0], LEN), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_find(r, "a", 1, &e), 0);
  ck_assert_int_eq(sst_reader_read_spans(r, &e, 0, 10, &sp, &n), SST_ENOSPANS);
  sst_reader_close(r);
  free(buf);
  unlink(p);
}
END_TEST

/* Threads that read spans of the same few blocks and chunks at once, in
 * a cache that holds two chunks: each gets its own bytes. */
enum { TS_N = 300, TS_LEN = 1800, TS_BIG = 6 * 131072 + 77 };
static char ts_small[TS_N][TS_LEN];
static uint8_t ts_big[TS_BIG];
static const sst_reader *ts_r;

static void *spans_thread(void *arg) {
  tu_rng rng;
  tu_rng_seed(&rng, (uint64_t)(uintptr_t)arg);
  sst_entry big;
  if (sst_reader_find(ts_r, "big", 3, &big) != 0)
    return "find big";
  for (int round = 0; round < 3000; round++) {
    sst_entry e = big;
    const uint8_t *want;
    uint64_t off, len;
    if (round % 2) {
      int i = (int)tu_rng_below(&rng, TS_N);
      char key[16];
      snprintf(key, sizeof key, "k%03d", i);
      if (sst_reader_find(ts_r, key, 4, &e) != 0)
        return "find";
      off = tu_rng_below(&rng, TS_LEN);
      len = TS_LEN;
      want = (const uint8_t *)ts_small[i];
    } else {
      off = tu_rng_below(&rng, TS_BIG);
      len = TS_BIG;
      want = ts_big;
    }
    size_t size = 1 + (size_t)tu_rng_below(&rng, 300000), n;
    sst_spans sp;
    if (sst_reader_read_spans(ts_r, &e, off, size, &sp, &n) != 0)
      return "read_spans";
    if (n != (len - off < size ? len - off : size))
      return "length";
    size_t at = 0;
    for (int k = 0; k < sp.count; k++) {
      if (memcmp(sp.span[k].data, want + off + at, sp.span[k].len) != 0)
        return "bytes";
      at += sp.span[k].len;
    }
    sst_reader_release(ts_r, &sp);
    if (at != n)
      return "spans' length";
  }
  return NULL;
}

START_TEST(spans_from_threads) {
  const char *p = tu_path("tspans");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  o.zstd_level = 1;
  o.value_block = 8192;
  for (size_t j = 0; j < TS_BIG; j++)
    ts_big[j] = (uint8_t)('a' + (j * 11 + j / 9) % 26);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "big", 3, ts_big, TS_BIG), 0);
  for (int i = 0; i < TS_N; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    for (int j = 0; j < TS_LEN; j++)
      ts_small[i][j] = (char)('a' + (i * 5 + j / 3) % 26);
    ck_assert_int_eq(sst_writer_add(w, key, 4, ts_small[i], TS_LEN), 0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.pread_blocks = 1;
  ro.cache_bytes = 1; /* the floor */
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, &ro, &r, NULL), 0);
  ts_r = r;
  enum { T = 4 };
  pthread_t t[T];
  for (uintptr_t i = 0; i < T; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, spans_thread, (void *)(i + 1)),
                     0);
  for (int i = 0; i < T; i++) {
    void *res;
    pthread_join(t[i], &res);
    ck_assert_msg(res == NULL, "thread %d: %s", i, (const char *)res);
  }
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* Options out of range are refused at open. */
START_TEST(bad_options_refused) {
  const char *p = tu_path("badopt");
  sst_writer_options o;
  sst_writer_options_init(&o);
  sst_writer *w;
  sst_error err;
  o.zstd_level = 99;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, &err), SST_EINVAL);
  ck_assert(strstr(err.msg, p) != NULL);
  o.zstd_level = 3;
  o.chunk_size = 100;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, &err), SST_EINVAL);
  ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

/* The compression settings the tools take, and the ones they refuse. */
START_TEST(compress_settings) {
  int level = -1;
  ck_assert_int_eq(sst_parse_compress("none", 7, &level), 0);
  ck_assert_int_eq(level, 0);
  ck_assert_int_eq(sst_parse_compress("zstd", 7, &level), 0);
  ck_assert_int_eq(level, 7);
  ck_assert_int_eq(sst_parse_compress("zstd:1", 7, &level), 0);
  ck_assert_int_eq(level, 1);
  ck_assert_int_eq(sst_parse_compress("zstd:19", 7, &level), 0);
  ck_assert_int_eq(level, 19);
  static const char *const bad[] = {"",         "zstd:",
                                    "zstd:0",   "zstd:20",
                                    "zstd:3x",  "zstd: 3",
                                    "zstd:+3",  "zstd:-1",
                                    "zstd:03x", "zstd3",
                                    "lz4",      "ZSTD",
                                    "none:1",   "zstd:99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    level = -1;
    ck_assert_msg(sst_parse_compress(bad[i], 7, &level) == SST_EINVAL,
                  "accepted '%s'", bad[i]);
    ck_assert_int_eq(level, -1);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("compress");
  TCase *tc = tcase_create("compress");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, round_trips, 0, 16);
  tcase_add_test(tc, dictionary_helps_small_values);
  tcase_add_test(tc, shared_values_of_every_kind);
  tcase_add_loop_test(tc, copies_between_tables, 0, 2);
  tcase_add_test(tc, bad_options_refused);
  tcase_add_test(tc, compress_settings);
  tcase_add_loop_test(tc, threads_give_the_same_table, 0, 2);
  tcase_add_test(tc, cache_under_pressure);
  tcase_add_test(tc, entries_after_pieces);
  tcase_add_test(tc, chunked_values_in_flight);
  tcase_add_test(tc, copy_of_damaged_chunks);
  tcase_add_test(tc, order_while_entries_wait);
  tcase_add_test(tc, queue_overflow);
  tcase_add_test(tc, compressed_key_blocks);
  tcase_add_test(tc, huge_key_block_stays_raw);
  tcase_add_test(tc, warm_decoder);
  tcase_add_test(tc, cache_holds_large_blocks);
  tcase_add_test(tc, spans_outlive_eviction);
  tcase_add_test(tc, spans_from_threads);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
