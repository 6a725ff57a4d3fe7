/* test_commit.c — the staging commit (fs/commit.c) driven without a
 * mount: a staging area made by hand (tree/, whiteouts/), a stage state
 * pointing at it, and the table stage_commit writes, compared key by key.
 * Covers a plain tree, a base with changed, new and deleted files, a
 * delta (tombstones), a name that cannot be a key, OUT appearing under
 * the commit (refused unless overwrite; a table the area wrote itself may
 * be replaced), the metadata of staged entries (modes, times, symlinks,
 * hard links, extended attributes), a base's hard links carried, and a
 * delta of metadata (unchanged directories left out, a removed
 * directory's entry a tombstone). Every directory written has its entry
 * ("DIR/", the root's "/"). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "area.h"
#include "stage.h"
#include "testutil.h"

/* A fresh staging area at a new path; s describes it (no base). */
static void make_area(stage *s) {
  memset(s, 0, sizeof *s);
  const char *root = tu_path("commit");
  ck_assert_int_eq(mkdir(root, 0700), 0);
  snprintf(s->dir, sizeof s->dir, "%s/area", root);
  snprintf(s->out, sizeof s->out, "%s/out.sstable", root);
  ck_assert_int_eq(mkdir(s->dir, 0700), 0);
  s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(s->dir_fd, 0);
  const char *subs[] = {"tree", "whiteouts", "tmp"};
  int *fds[] = {&s->tree_fd, &s->wh_fd, &s->tmp_fd};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(mkdirat(s->dir_fd, subs[i], 0700), 0);
    *fds[i] = openat(s->dir_fd, subs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(*fds[i], 0);
  }
  s->writing_fd = s->lock_fd = s->out_lock_fd = -1;
  s->is_root = geteuid() == 0;
}

static void close_area(stage *s) {
  sst_tree_close(s->base_tree);
  for (size_t i = 0; i < s->nbase; i++)
    sst_reader_close(s->base[i]);
  close(s->dir_fd);
  close(s->tree_fd);
  close(s->wh_fd);
  close(s->tmp_fd);
}

/* Writes path (relative to fd, parents made) with text. */
static void put(int fd, const char *path, const char *text) {
  ck_assert_int_eq(ov_make_parents(fd, path), 0);
  int f = openat(fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ck_assert_int_ge(f, 0);
  ck_assert_int_eq(write(f, text, strlen(text)), (ssize_t)strlen(text));
  close(f);
}

/* A table at path from "key=value" pairs in key order ("key=" with no
 * value and a '!' first is a tombstone). */
static void make_table(const char *path, const char *const *kv) {
  sst_writer *w;
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  ck_assert_int_eq(sst_writer_open(path, &o, &w, NULL), 0);
  for (; *kv; kv++) {
    const char *eq = strchr(*kv, '=');
    ck_assert_int_eq(sst_writer_add(w, (const uint8_t *)*kv, (size_t)(eq - *kv),
                                    (const uint8_t *)eq + 1, strlen(eq + 1)),
                     0);
  }
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
}

/* Opens path as the stage's only base. */
static void set_base(stage *s, const char *path) {
  snprintf(s->base_path[0], sizeof s->base_path[0], "%s", path);
  ck_assert_int_eq(sst_reader_open(path, NULL, &s->base[0], NULL), 0);
  s->nbase = 1;
  ck_assert_int_eq(sst_tree_open_stack((const sst_reader *const *)s->base, 1, 0,
                                       &s->base_tree),
                   0);
}

/* The table at path as "key=value;" (tombstones as "key!;"). */
static char *dump(const char *path) {
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(path, NULL, &r, NULL), 0);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  size_t cap = 4096, n = 0;
  char *out = malloc(cap);
  out[0] = '\0';
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    const uint8_t *v = NULL;
    if (!(e->flags & SST_FLAG_TOMBSTONE))
      ck_assert_int_eq(sst_reader_value(r, e, &v), 0);
    n += (size_t)snprintf(
        out + n, cap - n, "%.*s%s%.*s;", (int)e->key_len, (const char *)e->key,
        (e->flags & SST_FLAG_TOMBSTONE) ? "!" : "=",
        (int)((e->flags & SST_FLAG_TOMBSTONE) ? 0 : e->value_len),
        v ? (const char *)v : "");
    ck_assert_uint_lt(n, cap);
  }
  ck_assert_int_eq(sst_iter_status(it), 0);
  sst_iter_free(it);
  sst_reader_close(r);
  return out;
}

static void commit_ok(stage *s) {
  char err[8192] = "";
  int rc = stage_commit(s, err, sizeof err);
  ck_assert_msg(rc == 0, "commit failed: %s", err);
}

START_TEST(plain_tree) {
  stage s;
  make_area(&s);
  put(s.tree_fd, "b/c", "two");
  put(s.tree_fd, "a", "one");
  put(s.tree_fd, "b/d/e", "three");
  put(s.tree_fd, "empty", "");
  ck_assert_int_eq(mkdirat(s.tree_fd, "lonely", 0755), 0);
  commit_ok(&s);
  char *d = dump(s.out);
  ck_assert_str_eq(d,
                   "/=;a=one;b/=;b/c=two;b/d/=;b/d/e=three;empty=;lonely/=;");
  free(d);
  close_area(&s);
}
END_TEST

START_TEST(over_a_base) {
  stage s;
  make_area(&s);
  char base[PATH_MAX + 8];
  snprintf(base, sizeof base, "%s.base", s.out);
  const char *kv[] = {"keep=k", "old/gone=g", "old/kept=o", "w=1", NULL};
  make_table(base, kv);
  set_base(&s, base);
  put(s.tree_fd, "w", "changed");
  put(s.tree_fd, "new", "n");
  put(s.wh_fd, "old/gone", ""); /* a whiteout */
  commit_ok(&s);
  char *d = dump(s.out);
  ck_assert_str_eq(d, "/=;keep=k;new=n;old/kept=o;w=changed;");
  free(d);

  /* The same as a delta: changes and a tombstone only. */
  s.conf.delta = 1;
  s.conf.overwrite = 1;
  commit_ok(&s);
  d = dump(s.out);
  ck_assert_str_eq(d, "/=;new=n;old/gone!;w=changed;");
  free(d);
  close_area(&s);
}
END_TEST

START_TEST(whiteout_of_a_directory) {
  stage s;
  make_area(&s);
  char base[PATH_MAX + 8];
  snprintf(base, sizeof base, "%s.base", s.out);
  const char *kv[] = {"d/a=1", "d/b/c=2", "e=3", NULL};
  make_table(base, kv);
  set_base(&s, base);
  put(s.wh_fd, "d", "");
  put(s.tree_fd, "d/b/c", "again"); /* made again after the delete */
  commit_ok(&s);
  char *d = dump(s.out);
  ck_assert_str_eq(d, "/=;d/=;d/b/=;d/b/c=again;e=3;");
  free(d);
  close_area(&s);
}
END_TEST

START_TEST(name_that_is_no_key) {
  stage s;
  make_area(&s);
  put(s.tree_fd, "fine", "x");
  put(s.tree_fd, "%=", "bad");
  char err[8192] = "";
  ck_assert_int_ne(stage_commit(&s, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "%=: cannot be a key"));
  ck_assert_int_ne(access(s.out, F_OK), 0);
  close_area(&s);
}
END_TEST

START_TEST(out_appears) {
  stage s;
  make_area(&s);
  put(s.tree_fd, "mine", "m");
  const char *kv[] = {"theirs=t", NULL};
  make_table(s.out, kv);
  char err[8192] = "";
  ck_assert_int_eq(stage_commit(&s, err, sizeof err), EEXIST);
  ck_assert_ptr_nonnull(strstr(err, "appeared"));
  char *d = dump(s.out);
  ck_assert_str_eq(d, "theirs=t;");
  free(d);

  s.conf.overwrite = 1; /* -o overwrite: replaced */
  commit_ok(&s);
  s.conf.overwrite = 0;
  /* What the area wrote itself it may replace (a sync, then the end). */
  put(s.tree_fd, "more", "x");
  commit_ok(&s);
  d = dump(s.out);
  ck_assert_str_eq(d, "/=;mine=m;more=x;");
  free(d);
  /* Not once someone else has replaced it. */
  make_table(s.out, kv);
  ck_assert_int_eq(stage_commit(&s, err, sizeof err), EEXIST);
  close_area(&s);
}
END_TEST

/* The entry of key in the table r. */
static sst_entry entry(const sst_reader *r, const char *key) {
  sst_entry e;
  ck_assert_msg(sst_reader_find(r, key, strlen(key), &e) == 0, "no key %s",
                key);
  return e;
}

START_TEST(metadata_kept) {
  stage s;
  make_area(&s);
  put(s.tree_fd, "bin/run", "#!/bin/sh\n");
  ck_assert_int_eq(fchmodat(s.tree_fd, "bin/run", 04751, 0), 0);
  struct timespec t[2] = {{.tv_sec = 5, .tv_nsec = 123456789},
                          {.tv_sec = 1000000000, .tv_nsec = 987654321}};
  ck_assert_int_eq(utimensat(s.tree_fd, "bin/run", t, 0), 0);
  ck_assert_int_eq(symlinkat("../bin/run", s.tree_fd, "bin/link"), 0);
  put(s.tree_fd, "h1", "shared");
  ck_assert_int_eq(linkat(s.tree_fd, "h1", s.tree_fd, "h2", 0), 0);
  ck_assert_int_eq(mkdirat(s.tree_fd, "private", 0700), 0);
  int fd = openat(s.tree_fd, "h1", O_RDONLY | O_CLOEXEC);
  int have_xattrs = fsetxattr(fd, "user.note", "v\0x", 3, 0) == 0;
  close(fd);
  commit_ok(&s);
  char *d = dump(s.out);
  ck_assert_str_eq(d, "/=;bin/=;bin/link=../bin/run;bin/run=#!/bin/sh\n;"
                      "h1=shared;h2=shared;private/=;");
  free(d);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(s.out, NULL, &r, NULL), 0);
  sst_entry e = entry(r, "bin/run");
  ck_assert(e.flags & SST_FLAG_META);
  ck_assert_uint_eq(e.meta.type, SST_TYPE_FILE);
  ck_assert_uint_eq(e.meta.mode, s.is_root ? 04751 : 04751 | 0600);
  ck_assert_int_eq(e.meta.mtime_sec, 1000000000);
  ck_assert_uint_eq(e.meta.mtime_nsec, 987654321);
  ck_assert_uint_eq(entry(r, "bin/link").meta.type, SST_TYPE_SYMLINK);
  sst_entry p = entry(r, "private/");
  ck_assert_uint_eq(p.meta.type, SST_TYPE_DIR);
  ck_assert_uint_eq(p.meta.mode, 0700);
  sst_entry h1 = entry(r, "h1"), h2 = entry(r, "h2");
  ck_assert_uint_eq(h1.meta.link_id, 1);
  ck_assert_uint_eq(h2.meta.link_id, 1);
  ck_assert_uint_eq(h1.meta.nlink, 2);
  ck_assert_uint_eq(h1.value_offset, h2.value_offset); /* one copy */
  if (have_xattrs) {
    uint8_t buf[256];
    ck_assert_uint_lt(h1.meta.xattr_len, sizeof buf);
    ck_assert_int_eq(sst_reader_xattrs(r, &h1, buf), 0);
    size_t pos = 0;
    sst_xattr x;
    ck_assert_int_eq(sst_xattrs_next(buf, h1.meta.xattr_len, &pos, &x), 1);
    ck_assert_int_eq((int)x.name_len, 9);
    ck_assert(memcmp(x.name, "user.note", 9) == 0);
    ck_assert(x.value_len == 3 && memcmp(x.value, "v\0x", 3) == 0);
  }
  sst_reader_close(r);
  close_area(&s);
}
END_TEST

/* Adds key to w with metadata of type, mode 0644 and, for link_id, nlink
 * names (the first one written with value, the others shared). */
static void add_meta(sst_writer *w, const char *key, unsigned type,
                     uint64_t link_id, uint32_t nlink, const char *value,
                     int shared_with_last) {
  sst_meta m = {.type = type,
                .mode = type == SST_TYPE_DIR ? 0755 : 0644,
                .mtime_sec = 7,
                .nlink = nlink ? nlink : 1,
                .link_id = link_id};
  ck_assert_int_eq(sst_writer_set_meta(w, &m), 0);
  if (shared_with_last) {
    uint64_t off, len;
    uint32_t sum;
    ck_assert_int_eq(sst_writer_last_value(w, &off, &len, &sum), 0);
    ck_assert_int_eq(sst_writer_add_shared(w, key, strlen(key), off, len, sum),
                     0);
  } else {
    ck_assert_int_eq(sst_writer_add(w, key, strlen(key), value, strlen(value)),
                     0);
  }
}

START_TEST(base_links_carried) {
  stage s;
  make_area(&s);
  char base[PATH_MAX + 8];
  snprintf(base, sizeof base, "%s.base", s.out);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(base, NULL, &w, NULL), 0);
  add_meta(w, "/", SST_TYPE_DIR, 0, 1, "", 0);
  add_meta(w, "a", SST_TYPE_FILE, 1, 2, "group one", 0);
  add_meta(w, "b", SST_TYPE_FILE, 1, 2, "", 1);
  add_meta(w, "c", SST_TYPE_FILE, 2, 2, "group two", 0);
  add_meta(w, "d", SST_TYPE_FILE, 2, 2, "", 1);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  set_base(&s, base);
  put(s.tree_fd, "x", "staged");
  ck_assert_int_eq(linkat(s.tree_fd, "x", s.tree_fd, "y", 0), 0);
  put(s.wh_fd, "d", ""); /* group two keeps one name */
  commit_ok(&s);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(s.out, NULL, &r, NULL), 0);
  sst_entry a = entry(r, "a"), b = entry(r, "b"), c = entry(r, "c");
  sst_entry x = entry(r, "x"), y = entry(r, "y");
  ck_assert_uint_eq(x.meta.link_id, 1); /* the staged group first */
  ck_assert_uint_eq(y.meta.link_id, 1);
  ck_assert_uint_eq(a.meta.link_id, 2); /* then the base's, numbered on */
  ck_assert_uint_eq(b.meta.link_id, 2);
  ck_assert_uint_eq(a.meta.nlink, 2);
  ck_assert_uint_eq(a.value_offset, b.value_offset); /* still one copy */
  ck_assert_uint_eq(c.meta.link_id, 0); /* alone now: a plain file */
  ck_assert_uint_eq(c.meta.nlink, 1);
  ck_assert_int_ne(sst_reader_find(r, "d", 1, &c), 0);
  sst_error err;
  ck_assert_msg(sst_reader_verify(r, &err) == 0, "%s", err.msg);
  sst_reader_close(r);
  close_area(&s);
}
END_TEST

START_TEST(delta_of_metadata) {
  stage s;
  make_area(&s);
  char base[PATH_MAX + 8];
  snprintf(base, sizeof base, "%s.base", s.out);
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(base, NULL, &w, NULL), 0);
  add_meta(w, "/", SST_TYPE_DIR, 0, 1, "", 0);
  add_meta(w, "d/", SST_TYPE_DIR, 0, 1, "", 0);
  add_meta(w, "d/f", SST_TYPE_FILE, 0, 1, "f", 0);
  add_meta(w, "e/", SST_TYPE_DIR, 0, 1, "", 0);
  add_meta(w, "e/g", SST_TYPE_FILE, 0, 1, "g", 0);
  add_meta(w, "k/", SST_TYPE_DIR, 0, 1, "", 0);
  add_meta(w, "k/l", SST_TYPE_FILE, 0, 1, "l", 0);
  add_meta(w, "link", SST_TYPE_SYMLINK, 0, 1, "d/f", 0);
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
  set_base(&s, base);
  s.conf.delta = 1;
  ck_assert_int_eq(ov_init_root(&s), 0);
  /* A new file in d (d changes); k staged as it was in the base. */
  ck_assert_int_eq(ov_stage_parents(&s, "d/new"), 0);
  put(s.tree_fd, "d/new", "n");
  ck_assert_int_eq(ov_stage_parents(&s, "k/l"), 0);
  put(s.wh_fd, "e", "");    /* rm -r e */
  put(s.wh_fd, "link", ""); /* rm link */
  commit_ok(&s);
  char *d = dump(s.out);
  ck_assert_str_eq(d, "d/=;d/new=n;e/!;e/g!;link!;");
  free(d);
  close_area(&s);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("commit");
  TCase *tc = tcase_create("commit");
  tcase_add_test(tc, plain_tree);
  tcase_add_test(tc, over_a_base);
  tcase_add_test(tc, whiteout_of_a_directory);
  tcase_add_test(tc, name_that_is_no_key);
  tcase_add_test(tc, out_appears);
  tcase_add_test(tc, metadata_kept);
  tcase_add_test(tc, base_links_carried);
  tcase_add_test(tc, delta_of_metadata);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
