/* test_path.c — keys as paths: the codec alone (fixed cases and random
 * bytes), and the tree view of tables with awkward keys, checked against
 * the codec: every key is reachable at exactly the path the codec gives. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstpath.h"
#include "testutil.h"

static char path_buf[SST_PATH_MAX + 1];

static const char *encode(const char *key, size_t len, unsigned flags,
                          int also_dir) {
  size_t n;
  ck_assert_int_eq(sst_path_from_key((const uint8_t *)key, len, flags, also_dir,
                                     path_buf, &n),
                   0);
  ck_assert_uint_eq(n, strlen(path_buf));
  return path_buf;
}

#define ENC(k) encode(k, sizeof(k) - 1, 0, 0)

START_TEST(clean_keys_are_their_paths) {
  ck_assert_str_eq(ENC("users/42/profile.json"), "users/42/profile.json");
  ck_assert_str_eq(ENC("%41"), "%41");
  ck_assert_str_eq(ENC("a%2Fb"), "a%2Fb");
  ck_assert_str_eq(ENC("100%"), "100%");
  ck_assert_str_eq(ENC(".hidden/..x/x.."), ".hidden/..x/x..");
  ck_assert_str_eq(ENC("sp ace/\xc3\xa9t\xc3\xa9"), "sp ace/\xc3\xa9t\xc3\xa9");
  ck_assert_str_eq(ENC("%"), "%");
  ck_assert_str_eq(ENC("%%=x"), "%%=x");
}
END_TEST

START_TEST(escapes) {
  ck_assert_str_eq(ENC("a/./b"), "a/%=./b");
  ck_assert_str_eq(ENC("a/../b"), "a/%=../b");
  ck_assert_str_eq(ENC("a//b"), "a/%=/b");
  ck_assert_str_eq(ENC("/x"), "%=/x");
  ck_assert_str_eq(ENC("x/"), "x/%=");
  ck_assert_str_eq(encode("x\0y", 3, 0, 0), "%=x%00y");
  ck_assert_str_eq(ENC("%=x"), "%=%25=x");
  ck_assert_str_eq(ENC("%+x"), "%=%25+x");
  ck_assert_str_eq(ENC("%!x"), "%=%25!x");
  ck_assert_str_eq(encode("a", 1, 0, 1), "%!a");
  ck_assert_str_eq(encode("d/a b", 5, 0, 1), "d/%!a b");
  ck_assert_str_eq(encode("a/b", 3, SST_PATH_FLAT, 0), "%=a%2Fb");
  ck_assert_str_eq(encode("ab", 2, SST_PATH_FLAT, 0), "ab");
  ck_assert_str_eq(encode("tab\there", 8, 0, 0), "tab\there"); /* valid */
}
END_TEST

START_TEST(long_components) {
  char key[700], want[800];
  memset(key, 'a', 255);
  ck_assert_str_eq(encode(key, 255, 0, 0), (key[255] = '\0', key));
  memset(key, 'a', 300);
  /* 84 bytes in a piece directory, the other 216 in an escaped name */
  snprintf(want, sizeof want, "%%+%.84s/%%=%.216s", key, key);
  ck_assert_str_eq(encode(key, 300, 0, 0), want);
  memset(key, 0, 100); /* 300 escaped bytes: two pieces */
  const char *p = encode(key, 100, 0, 0);
  ck_assert_uint_eq(strlen(p), (2 + 252) + 1 + (2 + 48));
}
END_TEST

static void check_valid_path(const char *p) {
  const char *c = p;
  for (;;) {
    const char *slash = strchr(c, '/');
    size_t n = slash ? (size_t)(slash - c) : strlen(c);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, SST_NAME_MAX);
    ck_assert(!(n == 1 && c[0] == '.'));
    ck_assert(!(n == 2 && c[0] == '.' && c[1] == '.'));
    if (!slash)
      break;
    c = slash + 1;
  }
}

START_TEST(random_round_trip) {
  tu_rng rng;
  tu_rng_seed(&rng, 17);
  static const uint8_t alpha[] = {'a', 'b', '/', '%',  '.', '=', '+',
                                  '!', 0,   1,   0xff, 'F', '2'};
  uint8_t key[SST_KEY_MAX], back[SST_KEY_MAX];
  for (int trial = 0; trial < 20000; trial++) {
    size_t len = 1 + tu_rng_below(&rng, trial % 10 == 0 ? 1200 : 20);
    for (size_t i = 0; i < len; i++)
      key[i] = trial % 3 == 0 ? (uint8_t)tu_rng_next(&rng)
                              : alpha[tu_rng_below(&rng, sizeof alpha)];
    for (unsigned flags = 0; flags <= SST_PATH_FLAT; flags++)
      for (int also_dir = 0; also_dir <= 1; also_dir++) {
        size_t n, blen;
        ck_assert_int_eq(
            sst_path_from_key(key, len, flags, also_dir, path_buf, &n), 0);
        check_valid_path(path_buf);
        ck_assert_int_eq(sst_path_to_key(path_buf, flags, back, &blen), 0);
        ck_assert_uint_eq(blen, len);
        ck_assert(memcmp(back, key, len) == 0);
      }
  }
}
END_TEST

START_TEST(paths_of_real_trees) {
  uint8_t key[SST_KEY_MAX];
  size_t len;
  ck_assert_int_eq(sst_path_to_key("%41/a%2Fb/100%", 0, key, &len), 0);
  ck_assert_uint_eq(len, 14);
  ck_assert(memcmp(key, "%41/a%2Fb/100%", 14) == 0);
  /* A name that looks like an escape but is not canonical stays as is. */
  ck_assert_int_eq(sst_path_to_key("%=a%2f", 0, key, &len), 0);
  ck_assert(len == 6 && memcmp(key, "%=a%2f", 6) == 0);
  ck_assert_int_eq(sst_path_to_key("%+x", 0, key, &len), 0);
  ck_assert(len == 3 && memcmp(key, "%+x", 3) == 0);
  ck_assert_int_eq(sst_path_to_key("a//b", 0, key, &len), SST_EINVAL);
  ck_assert_int_eq(sst_path_to_key("a/./b", 0, key, &len), SST_EINVAL);
  ck_assert_int_eq(sst_path_to_key("", 0, key, &len), SST_EINVAL);
  ck_assert_int_eq(sst_path_to_key("a/b", SST_PATH_FLAT, key, &len),
                   SST_EINVAL);
}
END_TEST

/* ---- the tree view ---- */

typedef struct keyset {
  uint8_t **k;
  size_t *len, n;
} keyset;

static int key_cmp(const void *a, const void *b, size_t al, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = memcmp(a, b, n);
  return c ? c : (al > bl) - (al < bl);
}

static keyset *sorted_keys;
static int idx_cmp(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return key_cmp(sorted_keys->k[i], sorted_keys->k[j], sorted_keys->len[i],
                 sorted_keys->len[j]);
}

/* Writes the keys (deduplicated) with value = the key itself. */
static const char *write_keys(keyset *ks) {
  size_t *order = malloc(ks->n * sizeof *order);
  for (size_t i = 0; i < ks->n; i++)
    order[i] = i;
  sorted_keys = ks;
  qsort(order, ks->n, sizeof *order, idx_cmp);
  const char *p = tu_path("tree");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = 4; /* many blocks: exercise positions and seeks */
  o.restart_interval = 2;
  o.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  size_t out = 0;
  for (size_t i = 0; i < ks->n; i++) {
    size_t j = order[i];
    if (i > 0 && key_cmp(ks->k[j], ks->k[order[i - 1]], ks->len[j],
                         ks->len[order[i - 1]]) == 0)
      continue;
    ck_assert_int_eq(
        sst_writer_add(w, ks->k[j], ks->len[j], ks->k[j], ks->len[j]), 0);
    out++;
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  free(order);
  return p;
}

typedef struct walk {
  sst_tree *t;
  char **paths; /* file paths found */
  size_t n, cap;
  char prefix[SST_PATH_MAX + 1];
  int entries_seen;
} walk;

typedef struct listing {
  char names[64][SST_NAME_MAX + 1];
  sst_node nodes[64];
  uint64_t cookies[64];
  size_t n;
  size_t stop_after;
} listing;

static int collect(void *ctx, const char *name, const sst_node *node,
                   uint64_t next) {
  listing *l = ctx;
  if (l->n == l->stop_after)
    return 1;
  ck_assert_uint_lt(l->n, 64);
  snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
  l->nodes[l->n] = *node;
  l->cookies[l->n] = next;
  l->n++;
  return 0;
}

static void walk_dir(walk *wk, uint64_t dir, size_t plen) {
  listing *l = calloc(1, sizeof *l);
  l->stop_after = SIZE_MAX;
  ck_assert_int_eq(sst_tree_list(wk->t, dir, 0, collect, l), 0);
  for (size_t i = 0; i < l->n; i++) {
    /* names are unique and sorted listing resumes from any cookie */
    for (size_t j = 0; j < i; j++)
      ck_assert_str_ne(l->names[i], l->names[j]);
    listing *tail = calloc(1, sizeof *tail);
    tail->stop_after = SIZE_MAX;
    ck_assert_int_eq(sst_tree_list(wk->t, dir, l->cookies[i], collect, tail),
                     0);
    ck_assert_uint_eq(tail->n, l->n - i - 1);
    for (size_t j = 0; j < tail->n; j++)
      ck_assert_str_eq(tail->names[j], l->names[i + 1 + j]);
    free(tail);
    /* lookup agrees with the listing */
    sst_node found;
    ck_assert_int_eq(sst_tree_lookup(wk->t, dir, l->names[i], &found), 0);
    ck_assert_uint_eq(found.ino, l->nodes[i].ino);
    ck_assert_int_eq(found.is_dir, l->nodes[i].is_dir);
    sst_node st;
    ck_assert_int_eq(sst_tree_stat(wk->t, found.ino, &st), 0);
    ck_assert_int_eq(st.is_dir, found.is_dir);
    size_t n = strlen(l->names[i]);
    memcpy(wk->prefix + plen, l->names[i], n);
    wk->prefix[plen + n] = '\0';
    if (l->nodes[i].is_dir) {
      wk->prefix[plen + n] = '/';
      walk_dir(wk, l->nodes[i].ino, plen + n + 1);
    } else {
      ck_assert_uint_eq(st.entry.value_len, found.entry.value_len);
      if (wk->n == wk->cap) {
        wk->cap = wk->cap ? wk->cap * 2 : 64;
        wk->paths = realloc(wk->paths, wk->cap * sizeof *wk->paths);
      }
      wk->paths[wk->n++] = strdup(wk->prefix);
    }
  }
  free(l);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tree shows exactly the codec's paths for the keys. */
static void check_tree(keyset *ks, unsigned flags) {
  const char *p = write_keys(ks);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open(r, flags, &t), 0);
  walk wk = {.t = t};
  walk_dir(&wk, SST_TREE_ROOT, 0);

  /* expected: each distinct key's path */
  char **want = calloc(ks->n, sizeof *want);
  size_t nwant = 0;
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    int also_dir = 0;
    if (!(flags & SST_PATH_FLAT))
      for (size_t i = 0; i < ks->n; i++)
        if (ks->len[i] > e->key_len && ks->k[i][e->key_len] == '/' &&
            memcmp(ks->k[i], e->key, e->key_len) == 0)
          also_dir = 1;
    size_t n;
    ck_assert_int_eq(
        sst_path_from_key(e->key, e->key_len, flags, also_dir, path_buf, &n),
        0);
    want[nwant++] = strdup(path_buf);
    /* and each path leads back to the key through lookups */
    uint64_t dir = SST_TREE_ROOT;
    char *save, *copy = strdup(path_buf);
    sst_node node = {0};
    for (char *c = strtok_r(copy, "/", &save); c;
         c = strtok_r(NULL, "/", &save)) {
      ck_assert_msg(sst_tree_lookup(t, dir, c, &node) == 0, "lookup %s in %s",
                    c, path_buf);
      dir = node.ino;
    }
    ck_assert(!node.is_dir);
    ck_assert_uint_eq(node.entry.position, e->position);
    free(copy);
  }
  sst_iter_free(it);
  qsort(want, nwant, sizeof *want, str_cmp);
  qsort(wk.paths, wk.n, sizeof *wk.paths, str_cmp);
  ck_assert_uint_eq(wk.n, nwant);
  for (size_t i = 0; i < nwant; i++) {
    ck_assert_str_eq(wk.paths[i], want[i]);
    free(wk.paths[i]);
    free(want[i]);
  }
  free(wk.paths);
  free(want);
  sst_tree_close(t);
  sst_reader_close(r);
  unlink(p);
}

static void add_key(keyset *ks, const void *k, size_t len) {
  ks->k = realloc(ks->k, (ks->n + 1) * sizeof *ks->k);
  ks->len = realloc(ks->len, (ks->n + 1) * sizeof *ks->len);
  ks->k[ks->n] = malloc(len);
  memcpy(ks->k[ks->n], k, len);
  ks->len[ks->n++] = len;
}

static void free_keys(keyset *ks) {
  for (size_t i = 0; i < ks->n; i++)
    free(ks->k[i]);
  free(ks->k);
  free(ks->len);
}

START_TEST(tree_of_awkward_keys) {
  keyset ks = {0};
  const char *keys[] = {"a",     "a-b",   "a/x",   "a/y/z",  "ab",     "b/",
                        "/lead", "c//d",  "c/./e", "c/../f", "%41",    "%=x",
                        "100%",  "a%2Fb", "d/e",   "d",      ".hidden"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    add_key(&ks, keys[i], strlen(keys[i]));
  add_key(&ks, "nul\0byte", 8);
  char longk[700];
  memset(longk, 'L', sizeof longk);
  add_key(&ks, longk, 300); /* a long file */
  add_key(&ks, longk, 84);  /* its first piece as a file */
  add_key(&ks, longk, 200); /* a clean name sharing the piece */
  memcpy(longk + 300, "/child", 6);
  add_key(&ks, longk, 306); /* the long name as a directory */
  longk[84] = 'M';
  add_key(&ks, longk, 400); /* same first piece, other name */
  check_tree(&ks, 0);
  check_tree(&ks, SST_PATH_FLAT);
  free_keys(&ks);
}
END_TEST

START_TEST(random_trees) {
  tu_rng rng;
  tu_rng_seed(&rng, 23);
  static const uint8_t alpha[] = {'a', 'b', '/', '/', '%', '.', '=', 0, '-'};
  for (int trial = 0; trial < 40; trial++) {
    keyset ks = {0};
    size_t n = 1 + tu_rng_below(&rng, 40);
    for (size_t i = 0; i < n; i++) {
      uint8_t k[400];
      size_t len = 1 + tu_rng_below(&rng, i % 9 == 0 ? 380 : 8);
      for (size_t j = 0; j < len; j++)
        k[j] = i % 9 == 0 && j < 370 ? 'q'
                                     : alpha[tu_rng_below(&rng, sizeof alpha)];
      add_key(&ks, k, len);
    }
    check_tree(&ks, trial % 4 == 3 ? SST_PATH_FLAT : 0);
    free_keys(&ks);
  }
}
END_TEST

START_TEST(tree_errors) {
  keyset ks = {0};
  add_key(&ks, "f", 1);
  add_key(&ks, "d/g", 3);
  const char *p = write_keys(&ks);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open(r, 0, &t), 0);
  sst_node f, d, x;
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "f", &f), 0);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "d", &d), 0);
  ck_assert(d.is_dir && !f.is_dir);
  ck_assert_int_eq(sst_tree_lookup(t, f.ino, "x", &x), ENOTDIR);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "nope", &x),
                   SST_ENOTFOUND);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "%=f", &x),
                   SST_ENOTFOUND); /* not the canonical name of "f" */
  char big[300];
  memset(big, 'x', 299);
  big[299] = '\0';
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, big, &x), ENAMETOOLONG);
  ck_assert_int_ne(sst_tree_stat(t, f.ino + 2, &x), 0);
  sst_tree_close(t);
  sst_reader_close(r);
  unlink(p);
  free_keys(&ks);
}
END_TEST

static int names_into(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)node, (void)next;
  strcat(ctx, name);
  strcat(ctx, " ");
  return 0;
}

/* Deleted keys are not in the tree, and do not make directories. */
START_TEST(tombstones_hidden) {
  const char *p = tu_path("tomb");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, NULL, &w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "a", 1, "A", 1), 0);
  ck_assert_int_eq(sst_writer_add_tombstone(w, "a/b", 3), 0);
  ck_assert_int_eq(sst_writer_add_tombstone(w, "c", 1), 0);
  ck_assert_int_eq(sst_writer_add(w, "d", 1, "D", 1), 0);
  ck_assert_int_eq(sst_writer_add_tombstone(w, "e/x", 3), 0);
  ck_assert_int_eq(sst_writer_add(w, "e/y", 3, "Y", 1), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open(r, 0, &t), 0);
  char names[256] = "";
  ck_assert_int_eq(sst_tree_list(t, SST_TREE_ROOT, 0, names_into, names), 0);
  ck_assert_str_eq(names, "a d e ");
  sst_node n;
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "a", &n), 0);
  ck_assert(!n.is_dir);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "c", &n), SST_ENOTFOUND);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "%!a", &n), SST_ENOTFOUND);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "e", &n), 0);
  names[0] = '\0';
  ck_assert_int_eq(sst_tree_list(t, n.ino, 0, names_into, names), 0);
  ck_assert_str_eq(names, "y ");
  sst_tree_close(t);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

static int count_into(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)name, (void)node, (void)next;
  (*(size_t *)ctx)++;
  return 0;
}

/* Listing the root of 100,000 keys in 100 folders reads about 100 keys,
 * not 100,000: each folder is skipped with a seek. */
START_TEST(listing_skips_subtrees) {
  const char *p = tu_path("wide");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  char key[32];
  for (int d = 0; d < 100; d++)
    for (int f = 0; f < 1000; f++) {
      int n = snprintf(key, sizeof key, "d%03d/f%04d", d, f);
      ck_assert_int_eq(sst_writer_add(w, key, (size_t)n, "v", 1), 0);
    }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open(r, 0, &t), 0);
  size_t children = 0;
  ck_assert_int_eq(sst_tree_list(t, SST_TREE_ROOT, 0, count_into, &children),
                   0);
  ck_assert_uint_eq(children, 100);
  ck_assert_uint_le(sst_tree_keys_listed(t), 100);
  sst_node d;
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "d042", &d), 0);
  children = 0;
  ck_assert_int_eq(sst_tree_list(t, d.ino, 0, count_into, &children), 0);
  ck_assert_uint_eq(children, 1000);
  ck_assert_uint_le(sst_tree_keys_listed(t), 1100);
  sst_tree_close(t);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* ---- tables with file metadata (format version 2) ---- */

/* Adds key with metadata of the given type and mode (mtime: the mode, so
 * that each entry's is its own). */
static void add_meta(sst_writer *w, const char *key, unsigned type,
                     uint32_t mode, const char *value) {
  sst_meta m = {.type = type,
                .mode = mode,
                .uid = 1000 + mode,
                .gid = 2000,
                .mtime_sec = 1700000000 + mode,
                .mtime_nsec = 123456789,
                .nlink = 1};
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, key, strlen(key), value, strlen(value)),
                   0);
}

/* The tree of a packed directory: root "/", a/ with a file, an empty
 * directory e/, a symlink, two hard links in different directories, and
 * one plain key without metadata. */
static const char *write_meta_tree(void) {
  const char *p = tu_path("meta");
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.block_keys = 2; /* entries of one directory in several blocks */
  o.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(p, &o, &w, NULL), 0);
  /* Keys in order: "/" < "a/" < "a/f" < "a/h1" < "b/" < "b/h2" < ... */
  add_meta(w, "/", SST_TYPE_DIR, 0700, "");
  add_meta(w, "a/", SST_TYPE_DIR, 0751, "");
  add_meta(w, "a/f", SST_TYPE_FILE, 04755, "F");
  sst_meta m = {.type = SST_TYPE_FILE,
                .mode = 0640,
                .nlink = 2,
                .link_id = 1,
                .mtime_sec = 1};
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add(w, "a/h1", 4, "shared", 6), 0);
  uint64_t off, len;
  uint32_t sum;
  ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
  add_meta(w, "b/", SST_TYPE_DIR, 0755, "");
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  ck_assert_int_eq(sst_writer_add_shared(w, "b/h2", 4, off, len, sum), 0);
  add_meta(w, "e/", SST_TYPE_DIR, 0700, "");
  add_meta(w, "l", SST_TYPE_SYMLINK, 0777, "a/f");
  ck_assert_int_eq(sst_writer_set_meta(w, NULL), 0);
  ck_assert_int_eq(sst_writer_add(w, "p", 1, "plain", 5), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  return p;
}

static void names_of(sst_tree *t, uint64_t dir, char *out) {
  out[0] = '\0';
  ck_assert_int_eq(sst_tree_list(t, dir, 0, names_into, out), 0);
}

/* Directory entries make directories (an empty one too) and give them
 * their metadata without being listed; symlinks are nodes of their own
 * kind; hard links share an inode; a plain key stays a plain file. */
START_TEST(tree_with_metadata) {
  const char *p = write_meta_tree();
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(p, NULL, &r, NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open(r, 0, &t), 0);
  char names[256];
  names_of(t, SST_TREE_ROOT, names);
  ck_assert_str_eq(names, "a b e l p "); /* no "%=" for the root's "/" */

  sst_node n, m;
  ck_assert_int_eq(sst_tree_stat(t, SST_TREE_ROOT, &n), 0);
  ck_assert(n.is_dir && n.type == SST_TYPE_DIR);
  ck_assert(n.entry.flags & SST_FLAG_META);
  ck_assert_uint_eq(n.entry.meta.mode, 0700);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "%=", &n), SST_ENOTFOUND);

  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "a", &n), 0);
  ck_assert(n.is_dir && n.type == SST_TYPE_DIR);
  ck_assert(n.entry.flags & SST_FLAG_META);
  ck_assert_uint_eq(n.entry.meta.mode, 0751);
  ck_assert_int_eq(sst_tree_stat(t, n.ino, &m), 0);
  ck_assert(m.is_dir && (m.entry.flags & SST_FLAG_META));
  ck_assert_uint_eq(m.entry.meta.mode, 0751);
  ck_assert_int_eq(m.entry.meta.mtime_sec, 1700000000 + 0751);
  names_of(t, n.ino, names);
  ck_assert_str_eq(names, "f h1 "); /* its own entry is not "%=" */
  ck_assert_int_eq(sst_tree_lookup(t, n.ino, "%=", &m), SST_ENOTFOUND);
  uint64_t a = n.ino;

  ck_assert_int_eq(sst_tree_lookup(t, a, "f", &n), 0);
  ck_assert(!n.is_dir && n.type == SST_TYPE_FILE);
  ck_assert_uint_eq(n.entry.meta.mode, 04755);

  /* The empty directory exists, lists nothing, has its metadata. */
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "e", &n), 0);
  ck_assert(n.is_dir && (n.entry.flags & SST_FLAG_META));
  ck_assert_uint_eq(n.entry.meta.mode, 0700);
  names_of(t, n.ino, names);
  ck_assert_str_eq(names, "");
  ck_assert_int_eq(sst_tree_stat(t, n.ino, &m), 0);
  ck_assert(m.is_dir && m.entry.meta.mode == 0700);

  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "l", &n), 0);
  ck_assert(!n.is_dir && n.type == SST_TYPE_SYMLINK);
  ck_assert_uint_eq(n.entry.value_len, 3);
  ck_assert_int_eq(sst_tree_stat(t, n.ino, &m), 0);
  ck_assert(m.type == SST_TYPE_SYMLINK);

  /* Hard links: one inode, found again by stat, listed the same. */
  sst_node h1, h2, b;
  ck_assert_int_eq(sst_tree_lookup(t, a, "h1", &h1), 0);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "b", &b), 0);
  ck_assert_int_eq(sst_tree_lookup(t, b.ino, "h2", &h2), 0);
  ck_assert_uint_eq(h1.ino, h2.ino);
  ck_assert_uint_eq(h1.entry.meta.nlink, 2);
  ck_assert_uint_eq(h1.entry.value_offset, h2.entry.value_offset);
  ck_assert_int_eq(sst_tree_stat(t, h1.ino, &m), 0);
  ck_assert(m.type == SST_TYPE_FILE && m.entry.value_len == 6);
  char what[256];
  ck_assert_int_eq(sst_tree_describe(t, h1.ino, what, sizeof what), 0);
  ck_assert_ptr_nonnull(strstr(what, "key 'a/h1'"));
  ck_assert_int_eq(sst_tree_stat(t, h1.ino ^ 2, &m), SST_ENOTFOUND);

  /* The plain key looks as in version 1. */
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "p", &n), 0);
  ck_assert(!n.is_dir && n.type == SST_TYPE_FILE);
  ck_assert(!(n.entry.flags & SST_FLAG_META));
  ck_assert_uint_eq(n.ino % 2, 0);
  ck_assert_uint_lt(n.ino, 1ull << 62);

  /* The whole walk agrees with itself (listings, cookies, lookups). */
  walk wk = {.t = t};
  walk_dir(&wk, SST_TREE_ROOT, 0);
  ck_assert_uint_eq(wk.n, 5); /* a/f a/h1 b/h2 l p */
  for (size_t i = 0; i < wk.n; i++)
    free(wk.paths[i]);
  free(wk.paths);
  sst_tree_close(t);

  /* Flat mode: every key a file, directory entries included. */
  ck_assert_int_eq(sst_tree_open(r, SST_PATH_FLAT, &t), 0);
  ck_assert_int_eq(sst_tree_stat(t, SST_TREE_ROOT, &n), 0);
  ck_assert(!(n.entry.flags & SST_FLAG_META));
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "%=a%2F", &n), 0);
  ck_assert(!n.is_dir && n.type == SST_TYPE_FILE);
  sst_tree_close(t);
  sst_reader_close(r);
  unlink(p);
}
END_TEST

/* In a stack the top table's directory entry wins, and its tombstone
 * hides a lower one: an empty directory whose entry is deleted is gone. */
START_TEST(stack_of_directory_entries) {
  const char *lower = write_meta_tree();
  char lower_path[4096];
  snprintf(lower_path, sizeof lower_path, "%s", lower);
  const char *upper = tu_path("upper");
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(upper, NULL, &w, NULL), 0);
  add_meta(w, "/", SST_TYPE_DIR, 0711, "");
  add_meta(w, "a/", SST_TYPE_DIR, 0700, "");
  ck_assert_int_eq(sst_writer_add_tombstone(w, "e/", 2), 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  sst_reader *r[2];
  ck_assert_int_eq(sst_reader_open(lower_path, NULL, &r[0], NULL), 0);
  ck_assert_int_eq(sst_reader_open(upper, NULL, &r[1], NULL), 0);
  sst_tree *t;
  ck_assert_int_eq(sst_tree_open_stack((const sst_reader *const *)r, 2, 0, &t),
                   0);
  char names[256];
  names_of(t, SST_TREE_ROOT, names);
  ck_assert_str_eq(names, "a b l p ");
  sst_node n, m;
  ck_assert_int_eq(sst_tree_stat(t, SST_TREE_ROOT, &n), 0);
  ck_assert_uint_eq(n.entry.meta.mode, 0711);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "e", &n), SST_ENOTFOUND);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "a", &n), 0);
  ck_assert_uint_eq(n.entry.meta.mode, 0700);
  ck_assert_uint_eq(n.entry.source, 1);
  ck_assert_int_eq(sst_tree_stat(t, n.ino, &m), 0);
  ck_assert_uint_eq(m.entry.meta.mode, 0700);
  names_of(t, n.ino, names);
  ck_assert_str_eq(names, "f h1 ");
  /* Hard links of the lower table still share an inode. */
  sst_node h1, h2, b;
  ck_assert_int_eq(sst_tree_lookup(t, n.ino, "h1", &h1), 0);
  ck_assert_int_eq(sst_tree_lookup(t, SST_TREE_ROOT, "b", &b), 0);
  ck_assert_int_eq(sst_tree_lookup(t, b.ino, "h2", &h2), 0);
  ck_assert_uint_eq(h1.ino, h2.ino);
  ck_assert_int_eq(sst_tree_stat(t, h2.ino, &m), 0);
  ck_assert_uint_eq(m.entry.value_len, 6);
  sst_tree_close(t);
  sst_reader_close(r[0]);
  sst_reader_close(r[1]);
  unlink(lower_path);
  unlink(upper);
}
END_TEST

int main(void) {
  Suite *s = suite_create("path");
  TCase *tc = tcase_create("path");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, clean_keys_are_their_paths);
  tcase_add_test(tc, escapes);
  tcase_add_test(tc, long_components);
  tcase_add_test(tc, random_round_trip);
  tcase_add_test(tc, paths_of_real_trees);
  tcase_add_test(tc, tree_of_awkward_keys);
  tcase_add_test(tc, random_trees);
  tcase_add_test(tc, tree_errors);
  tcase_add_test(tc, tombstones_hidden);
  tcase_add_test(tc, listing_skips_subtrees);
  tcase_add_test(tc, tree_with_metadata);
  tcase_add_test(tc, stack_of_directory_entries);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
