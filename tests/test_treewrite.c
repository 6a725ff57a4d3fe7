/* test_treewrite.c — a directory tree made a table (sst_scan_*, in
 * core/treewrite.c): keys and order, duplicate keys, names that need
 * escapes, trees deeper than PATH_MAX with few descriptors, skipped
 * entries, files that change while they are read, and with the metadata
 * option directories, symlinks, hard links, modes, owners, times and
 * extended attributes. No FUSE: trees are built in $SST_TEST_TMP with
 * *at() calls. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sstpath.h"
#include "testutil.h"

/* ---- building and removing trees ---- */

/* A fresh directory under $SST_TEST_TMP; its path goes to `path`. */
static int make_top(char *path, size_t cap) {
  snprintf(path, cap, "%s", tu_path("treewrite"));
  ck_assert_int_eq(mkdir(path, 0755), 0);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  return fd;
}

/* Creates the file rel (short: made with plain *at calls) under top, with
 * its parent directories. */
static void put(int top, const char *rel, const void *data, size_t len) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", rel);
  for (char *p = strchr(buf, '/'); p != NULL; p = strchr(p + 1, '/')) {
    *p = '\0';
    ck_assert(mkdirat(top, buf, 0755) == 0 || errno == EEXIST);
    *p = '/';
  }
  tu_write_file_at(top, rel, data, len);
}

#define PUT(top, rel, text) put(top, rel, text, strlen(text))

/* Removes everything in directory fd (which it closes), to any depth. */
static void empty_dir(int fd) {
  DIR *d = fdopendir(fd);
  ck_assert_ptr_nonnull(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0)
      continue;
    int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    ck_assert_int_ge(sub, 0);
    empty_dir(sub);
    ck_assert_int_eq(unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR), 0);
    rewinddir(d);
  }
  closedir(d);
}

static void remove_top(int top, const char *path) {
  empty_dir(top);
  ck_assert_int_eq(rmdir(path), 0);
}

/* ---- watching the callbacks ---- */

#define MAX_SEEN 16

typedef struct watch {
  /* problems, in the order reported */
  int n;
  int kind[MAX_SEEN], code[MAX_SEEN], can_skip[MAX_SEEN];
  char path[MAX_SEEN][128], other[MAX_SEEN][128], what[MAX_SEEN][32],
      msg[MAX_SEEN][160];
  int answer; /* what on_problem returns: 0 skips */
  /* progress */
  sst_scan_progress last_scan, last_write;
  uint64_t write_calls;
  int stop_at_call; /* when > 0: stop at this progress call */
  uint64_t calls;
  int max_fds;
  int count_fds;
  /* a change made to file `victim` (under top) at the first chunk */
  int top;
  const char *victim;
  void (*change)(struct watch *);
  int changed;
} watch;

static int on_problem(void *ctx, const sst_scan_problem *p) {
  watch *w = ctx;
  if (w->n < MAX_SEEN) {
    w->kind[w->n] = p->kind;
    w->code[w->n] = p->code;
    w->can_skip[w->n] = p->can_skip;
    snprintf(w->path[w->n], sizeof w->path[0], "%s", p->path);
    snprintf(w->other[w->n], sizeof w->other[0], "%s",
             p->other ? p->other : "");
    snprintf(w->what[w->n], sizeof w->what[0], "%s", p->what ? p->what : "");
    snprintf(w->msg[w->n], sizeof w->msg[0], "%s", p->message);
  }
  w->n++;
  return w->answer;
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n - 3; /* ".", ".." and the directory's own */
}

static int on_progress(void *ctx, const sst_scan_progress *p) {
  watch *w = ctx;
  w->calls++;
  if (p->writing) {
    w->last_write = *p;
    w->write_calls++;
    if (w->change != NULL && !w->changed && p->bytes > 0) {
      w->changed = 1;
      w->change(w);
    }
  } else {
    w->last_scan = *p;
  }
  if (w->count_fds) {
    int n = open_fds();
    if (n > w->max_fds)
      w->max_fds = n;
  }
  if (w->stop_at_call > 0 && w->calls == (uint64_t)w->stop_at_call)
    return 4242;
  return 0;
}

static sst_scan_options watched(watch *w, unsigned flags) {
  sst_scan_options o;
  sst_scan_options_init(&o);
  o.path_flags = flags;
  o.on_problem = on_problem;
  o.on_progress = on_progress;
  o.ctx = w;
  return o;
}

/* ---- tables ---- */

static sst_writer *new_writer(const char *path) {
  sst_writer_options o;
  sst_writer_options_init(&o);
  o.no_sync = 1;
  sst_writer *w;
  ck_assert_int_eq(sst_writer_open(path, &o, &w, NULL), 0);
  return w;
}

static void finish(sst_writer *w) {
  ck_assert_int_eq(sst_writer_finish(w, NULL), 0);
  sst_writer_free(w);
}

static int key_order(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : (al > bl) - (al < bl);
}

/* Checks that the table at path holds exactly the scan's files, in the
 * same order, each with the content of its file under top. */
static void check_table_is_scan(const char *path, const sst_scan *s, int top) {
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(path, NULL, &r, NULL), 0);
  sst_iter *it;
  ck_assert_int_eq(sst_iter_new(r, &it), 0);
  size_t i = 0;
  for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it), i++) {
    ck_assert_uint_lt(i, sst_scan_count(s));
    const sst_entry *e = sst_iter_entry(it);
    const sst_scan_file *f = sst_scan_get(s, i);
    ck_assert_uint_eq(e->key_len, f->key_len);
    ck_assert(memcmp(e->key, f->key, f->key_len) == 0);
    ck_assert_uint_eq(e->value_len, f->size);
    const uint8_t *v;
    ck_assert_int_eq(sst_reader_value(r, e, &v), 0);
    if (f->path_len < 512) { /* deep paths are checked by their caller */
      int fd = openat(top, f->path, O_RDONLY);
      ck_assert_int_ge(fd, 0);
      uint8_t *want = malloc(f->size + 1);
      ck_assert_int_eq(read(fd, want, f->size + 1), (ssize_t)f->size);
      close(fd);
      ck_assert(f->size == 0 || memcmp(v, want, f->size) == 0);
      free(want);
    }
  }
  ck_assert_int_eq(sst_iter_status(it), 0);
  ck_assert_uint_eq(i, sst_scan_count(s));
  sst_iter_free(it);
  sst_reader_close(r);
}

/* ---- the tests ---- */

START_TEST(keys_in_table_order) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "b", "bee");
  PUT(top, "a/x", "ax");
  PUT(top, "a-b", "dash"); /* sorts between a and a/x */
  PUT(top, "a/y/z", "deep");
  PUT(top, "empty", "");
  PUT(top, "%41", "stays %41");     /* looks like an escape: literal */
  PUT(top, "%=x%00y", "nul");       /* the key x NUL y */
  PUT(top, "%=%25=m", "marker");    /* the key %=m */
  PUT(top, "%!d", "file beside d"); /* the key d, beside d/e */
  PUT(top, "d/e", "e");
  char long_dir[128], long_path[512];
  char ell[301];
  memset(ell, 'L', 300);
  ell[300] = '\0';
  snprintf(long_dir, sizeof long_dir, "%%+%.84s", ell);
  snprintf(long_path, sizeof long_path, "%s/%%=%.216s", long_dir, ell);
  PUT(top, long_path, "long"); /* one 300-byte component */
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 0);
  ck_assert_uint_eq(sst_scan_count(s), 11);
  ck_assert_uint_eq(sst_scan_bytes(s), 3 + 2 + 4 + 4 + 9 + 3 + 6 + 13 + 1 + 4);
  ck_assert_uint_eq(w.last_scan.files, 11);
  ck_assert_uint_eq(w.last_scan.bytes, sst_scan_bytes(s));
  for (size_t i = 1; i < sst_scan_count(s); i++) {
    const sst_scan_file *a = sst_scan_get(s, i - 1), *b = sst_scan_get(s, i);
    ck_assert_int_lt(key_order(a->key, a->key_len, b->key, b->key_len), 0);
  }
  static const struct {
    const char *key;
    size_t len;
    const char *path;
  } want[] = {{"%41", 3, "%41"},     {"%=m", 3, "%=%25=m"},
              {"a-b", 3, "a-b"},     {"a/x", 3, "a/x"},
              {"a/y/z", 5, "a/y/z"}, {"b", 1, "b"},
              {"d", 1, "%!d"},       {"d/e", 3, "d/e"},
              {"empty", 5, "empty"}, {"x\0y", 3, "%=x%00y"}};
  size_t li = 0; /* the L... key comes third: 'L' < 'a' */
  const sst_scan_file *lf = sst_scan_get(s, 2);
  ck_assert_uint_eq(lf->key_len, 300);
  ck_assert(memcmp(lf->key, ell, 300) == 0);
  ck_assert_str_eq(lf->path, long_path);
  ck_assert_uint_eq(lf->path_len, strlen(long_path));
  for (size_t i = 0; i < sst_scan_count(s); i++) {
    if (i == 2)
      continue;
    const sst_scan_file *f = sst_scan_get(s, i);
    ck_assert_uint_eq(f->key_len, want[li].len);
    ck_assert(memcmp(f->key, want[li].key, f->key_len) == 0);
    ck_assert_str_eq(f->path, want[li].path);
    li++;
  }
  const char *table = tu_path("keys.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 0);
  ck_assert_uint_eq(w.last_write.files, 11);
  ck_assert_uint_eq(w.last_write.total_files, 11);
  ck_assert_uint_eq(w.last_write.bytes, sst_scan_bytes(s));
  check_table_is_scan(table, s, top);
  sst_scan_free(s);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

START_TEST(duplicate_keys) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "c", "1");
  PUT(top, "%=c", "2"); /* the escaped spelling of c */
  PUT(top, "sub/d", "3");
  PUT(top, "sub/%!d", "4"); /* a file beside a directory d: the key d */
  PUT(top, "sub/%=d", "5");
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  sst_scan *s = NULL;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), SST_EDUPKEY);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(w.n, 3); /* every pair, in key order, then path order */
  ck_assert_int_eq(w.kind[0], SST_SCAN_DUPLICATE);
  ck_assert_int_eq(w.code[0], SST_EDUPKEY);
  ck_assert_str_eq(w.path[0], "%=c");
  ck_assert_str_eq(w.other[0], "c");
  ck_assert_str_eq(w.msg[0], "gives the same key 'c'");
  ck_assert_str_eq(w.path[1], "sub/%!d");
  ck_assert_str_eq(w.other[1], "sub/%=d");
  ck_assert_str_eq(w.path[2], "sub/%=d");
  ck_assert_str_eq(w.other[2], "sub/d");
  /* A callback that stops: its value, at the first pair. */
  memset(&w, 0, sizeof w);
  w.answer = 99;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 99);
  ck_assert_int_eq(w.n, 1);
  /* No callback: SST_EDUPKEY all the same; sst_pack_tree too. */
  ck_assert_int_eq(sst_scan_tree(top, NULL, &s), SST_EDUPKEY);
  const char *table = tu_path("dup.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_pack_tree(top, NULL, wr), SST_EDUPKEY);
  sst_writer_free(wr);
  ck_assert_int_eq(access(table, F_OK), -1);
  remove_top(top, dir);
}
END_TEST

START_TEST(flat_mode) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "%=users%2F1", "alice");
  PUT(top, "plain", "p");
  PUT(top, "x", "x1");
  PUT(top, "%=x", "x2");
  watch w = {0};
  sst_scan_options o = watched(&w, SST_PATH_FLAT);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), SST_EDUPKEY);
  ck_assert_int_eq(w.n, 1);
  ck_assert_str_eq(w.path[0], "%=x");
  ck_assert_str_eq(w.other[0], "x");
  ck_assert_int_eq(unlinkat(top, "%=x", 0), 0);
  PUT(top, "sub/f", "nested");
  /* A file in a real subdirectory cannot be a flat key. */
  memset(&w, 0, sizeof w);
  w.answer = 7;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 7);
  ck_assert_int_eq(w.n, 1);
  ck_assert_int_eq(w.kind[0], SST_SCAN_BADNAME);
  ck_assert_int_eq(w.code[0], SST_EINVAL);
  ck_assert_int_eq(w.can_skip[0], 1);
  ck_assert_str_eq(w.path[0], "sub/f");
  ck_assert_ptr_nonnull(strstr(w.msg[0], "is in a subdirectory"));
  /* Skipped, the others make the table. */
  memset(&w, 0, sizeof w);
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 1);
  ck_assert_uint_eq(sst_scan_count(s), 3);
  const sst_scan_file *f = sst_scan_get(s, 1);
  ck_assert(f->key_len == 7 && memcmp(f->key, "users/1", 7) == 0);
  const char *table = tu_path("flat.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  check_table_is_scan(table, s, top);
  sst_scan_free(s);
  /* Without a callback, a bad name stops the scan with its code. */
  ck_assert_int_eq(sst_scan_tree(top, NULL, &s), 0); /* not flat: fine */
  sst_scan_free(s);
  o.on_problem = NULL;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), SST_EINVAL);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

/* ---- deeper than PATH_MAX ---- */

#define DEEP_LEVELS 300
#define DEEP_NAME 250

static void deep_name(int level, char *name) {
  memset(name, 'x', DEEP_NAME);
  name[DEEP_NAME] = '\0';
  char num[16];
  int n = snprintf(num, sizeof num, "d%03d", level);
  memcpy(name, num, (size_t)n);
}

/* Whether a file sits at this depth (in the directory of that level). */
static int deep_has_file(int level) {
  return level == 1 || level == 130 || level == 260 || level == 299;
}

/* Builds DEEP_LEVELS nested directories of DEEP_NAME-byte names under
 * top, one openat at a time, with a file "f" at some depths: paths reach
 * 75 KB, a key's limit is 64 KiB. */
static void build_deep(int top) {
  int fd = dup(top);
  char name[DEEP_NAME + 1];
  for (int level = 1; level < DEEP_LEVELS; level++) {
    deep_name(level, name);
    ck_assert_int_eq(mkdirat(fd, name, 0755), 0);
    int sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(sub, 0);
    close(fd);
    fd = sub;
    if (deep_has_file(level)) {
      char content[32];
      int n = snprintf(content, sizeof content, "level %d", level);
      put(fd, "f", content, (size_t)n);
    }
  }
  close(fd);
}

START_TEST(deeper_than_path_max) {
  /* Few descriptors: the scan keeps a quarter of them, 16 directories. */
  struct rlimit rl, saved;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rl = saved;
  rl.rlim_cur = 64;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "top", "at the top");
  build_deep(top);
  watch w = {0};
  w.count_fds = 1;
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  int base_fds = open_fds();
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  /* The file at level 299 gives a key longer than 64 KiB: skipped. */
  ck_assert_int_eq(w.n, 1);
  ck_assert_int_eq(w.kind[0], SST_SCAN_BADNAME);
  ck_assert_int_eq(w.code[0], SST_EKEYSIZE);
  ck_assert_str_eq(w.msg[0], "gives an empty key or one longer than 65536 "
                             "bytes");
  ck_assert_uint_eq(sst_scan_count(s), 4);
  size_t longest = 0;
  for (size_t i = 0; i < sst_scan_count(s); i++) {
    const sst_scan_file *f = sst_scan_get(s, i);
    ck_assert_uint_eq(f->key_len, f->path_len); /* clean names: key = path */
    ck_assert(memcmp(f->key, f->path, f->path_len) == 0);
    if (f->path_len > longest)
      longest = f->path_len;
  }
  ck_assert_uint_gt(longest, PATH_MAX * 15);
  const char *table = tu_path("deep.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 1);
  /* Its top, 16 directories, the file being read, and the writer's. */
  ck_assert_int_le(w.max_fds - base_fds, 1 + 16 + 1 + 2);
  ck_assert_int_ge(w.max_fds - base_fds, 1 + 16); /* and used them */
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  for (size_t i = 0; i < sst_scan_count(s); i++) {
    const sst_scan_file *f = sst_scan_get(s, i);
    const uint8_t *v;
    uint64_t vlen;
    ck_assert_int_eq(sst_reader_get(r, f->key, f->key_len, &v, &vlen), 0);
    ck_assert_uint_eq(vlen, f->size);
    if (f->path_len == 3) {
      ck_assert(memcmp(v, "at the top", vlen) == 0);
    } else {
      int level = (int)(f->path_len - 1) / (DEEP_NAME + 1);
      char content[32];
      int n = snprintf(content, sizeof content, "level %d", level);
      ck_assert_uint_eq(vlen, (uint64_t)n);
      ck_assert(memcmp(v, content, vlen) == 0);
    }
  }
  sst_reader_close(r);
  sst_scan_free(s);
  unlink(table);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0); /* to remove it */
  remove_top(top, dir);
}
END_TEST

/* ---- skipped entries ---- */

START_TEST(special_files_skipped) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "d/file", "real");
  ck_assert_int_eq(symlinkat("file", top, "d/link"), 0);
  ck_assert_int_eq(symlinkat("/etc", top, "etc"), 0);
  ck_assert_int_eq(mkfifoat(top, "fifo", 0644), 0);
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 3);
  int links = 0, fifos = 0;
  for (int i = 0; i < w.n; i++) {
    ck_assert_int_eq(w.kind[i], SST_SCAN_SPECIAL);
    ck_assert_int_eq(w.can_skip[i], 1);
    if (strcmp(w.what[i], "symlink") == 0) {
      links++;
      ck_assert(strcmp(w.path[i], "d/link") == 0 ||
                strcmp(w.path[i], "etc") == 0);
      ck_assert_str_eq(w.msg[i], "is a symlink, not a regular file");
    } else {
      fifos++;
      ck_assert_str_eq(w.what[i], "FIFO");
      ck_assert_str_eq(w.path[i], "fifo");
    }
  }
  ck_assert_int_eq(links, 2);
  ck_assert_int_eq(fifos, 1);
  ck_assert_uint_eq(sst_scan_count(s), 1);
  ck_assert_str_eq(sst_scan_get(s, 0)->path, "d/file");
  sst_scan_free(s);
  /* Without a callback they are left out quietly. */
  ck_assert_int_eq(sst_scan_tree(top, NULL, &s), 0);
  ck_assert_uint_eq(sst_scan_count(s), 1);
  sst_scan_free(s);
  /* A callback that refuses them (pack --strict) stops the scan. */
  memset(&w, 0, sizeof w);
  w.answer = 5;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 5);
  ck_assert_int_eq(w.n, 1);
  remove_top(top, dir);
}
END_TEST

START_TEST(excluded_file) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "a", "a");
  PUT(top, "self.sstable", "the table being replaced");
  struct stat st;
  ck_assert_int_eq(fstatat(top, "self.sstable", &st, 0), 0);
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  o.exclude = 1;
  o.exclude_dev = st.st_dev;
  o.exclude_ino = st.st_ino;
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 0);
  ck_assert_uint_eq(sst_scan_count(s), 1);
  ck_assert_str_eq(sst_scan_get(s, 0)->path, "a");
  sst_scan_free(s);
  remove_top(top, dir);
}
END_TEST

START_TEST(progress_stops) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%d", i);
    PUT(top, name, "0123456789");
  }
  watch w = {0};
  w.stop_at_call = 4;
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 4242);
  ck_assert_uint_eq(w.last_scan.files, 4);
  ck_assert_uint_eq(w.last_scan.bytes, 40);
  /* Writing stops the same way, between files. */
  memset(&w, 0, sizeof w);
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  w.stop_at_call = (int)w.calls + 2 * 3; /* a chunk and an end per file */
  const char *table = tu_path("stop.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 4242);
  ck_assert_uint_eq(w.last_write.files, 3);
  ck_assert_uint_eq(w.last_write.bytes, 30);
  ck_assert_uint_eq(w.last_write.total_files, 10);
  ck_assert_uint_eq(w.last_write.total_bytes, 100);
  ck_assert_uint_eq(sst_writer_key_count(wr), 3);
  sst_writer_free(wr);
  sst_scan_free(s);
  remove_top(top, dir);
}
END_TEST

/* ---- streaming ---- */

START_TEST(large_file_streamed) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  size_t len = 5 * 1024 * 1024 + 123;
  uint8_t *data = malloc(len);
  tu_rng rng;
  tu_rng_seed(&rng, 3);
  tu_rng_fill(&rng, data, len);
  put(top, "big/blob", data, len);
  PUT(top, "small", "s");
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  const char *table = tu_path("big.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_pack_tree(top, &o, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 0);
  ck_assert_uint_ge(w.write_calls, 6 + 2); /* a call per MiB at least */
  ck_assert_uint_eq(w.last_write.bytes, len + 1);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  const uint8_t *v;
  uint64_t vlen;
  ck_assert_int_eq(sst_reader_get(r, "big/blob", 8, &v, &vlen), 0);
  ck_assert_uint_eq(vlen, len);
  ck_assert(memcmp(v, data, len) == 0);
  sst_reader_close(r);
  free(data);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

static void grow(watch *w) {
  int fd = openat(w->top, w->victim, O_WRONLY | O_APPEND);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "more", 4), 4);
  close(fd);
}

static void shrink(watch *w) {
  int fd = openat(w->top, w->victim, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, 1536 * 1024), 0);
  close(fd);
}

static void touch(watch *w) {
  struct timespec t[2] = {{1, 0}, {1, 0}};
  ck_assert_int_eq(utimensat(w->top, w->victim, t, 0), 0);
}

/* Writes file `victim` (of `size` bytes) while `change` changes it after
 * its first chunk; returns the result, with the problem in *w. */
static int write_changing(size_t size, void (*change)(watch *), watch *w) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  uint8_t *data = calloc(1, size);
  put(top, "log", data, size);
  free(data);
  memset(w, 0, sizeof *w);
  w->top = top;
  w->victim = "log";
  w->change = change;
  sst_scan_options o = watched(w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  const char *table = tu_path("changing.sst");
  sst_writer *wr = new_writer(table);
  int rc = sst_scan_write_file(s, 0, wr);
  ck_assert(w->changed);
  sst_writer_free(wr); /* inside a value: not finished */
  ck_assert_int_eq(access(table, F_OK), -1);
  sst_scan_free(s);
  remove_top(top, dir);
  return rc;
}

START_TEST(file_grows_while_read) {
  watch w;
  ck_assert_int_eq(write_changing(3 << 20, grow, &w), SST_ECHANGED);
  ck_assert_int_eq(w.n, 1);
  ck_assert_int_eq(w.kind[0], SST_SCAN_CHANGED);
  ck_assert_int_eq(w.code[0], SST_ECHANGED);
  ck_assert_int_eq(w.can_skip[0], 0);
  ck_assert_str_eq(w.path[0], "log");
  ck_assert_str_eq(w.msg[0], "grew while it was read (from 3145728 bytes)");
}
END_TEST

START_TEST(file_shrinks_while_read) {
  watch w;
  ck_assert_int_eq(write_changing(3 << 20, shrink, &w), SST_ECHANGED);
  ck_assert_int_eq(w.n, 1);
  ck_assert_str_eq(w.msg[0], "shrank while it was read (from 3145728 bytes "
                             "to 1572864)");
}
END_TEST

START_TEST(file_rewritten_while_read) {
  watch w;
  ck_assert_int_eq(write_changing(10, touch, &w), SST_ECHANGED);
  ck_assert_int_eq(w.n, 1);
  ck_assert_str_eq(w.msg[0], "changed while it was read");
  /* The callback's value wins over the problem's code. */
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "log", "0123456789");
  memset(&w, 0, sizeof w);
  w.top = top;
  w.victim = "log";
  w.change = touch;
  w.answer = 31;
  sst_scan_options o = watched(&w, 0);
  const char *table = tu_path("changing.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_pack_tree(top, &o, wr), 31);
  sst_writer_free(wr);
  remove_top(top, dir);
}
END_TEST

START_TEST(file_changed_since_scan) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "a", "0123456789");
  PUT(top, "b", "gone soon");
  PUT(top, "c", "stays");
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  PUT(top, "a", "012");
  ck_assert_int_eq(unlinkat(top, "b", 0), 0);
  const char *table = tu_path("since.sst");
  sst_writer *wr = new_writer(table);
  /* Both found before the key is added: skippable, and skipped. */
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 2);
  ck_assert_int_eq(w.kind[0], SST_SCAN_CHANGED);
  ck_assert_int_eq(w.can_skip[0], 1);
  ck_assert_str_eq(w.path[0], "a");
  ck_assert_str_eq(w.msg[0],
                   "changed since it was scanned (from 10 bytes to 3)");
  ck_assert_int_eq(w.kind[1], SST_SCAN_ESYS);
  ck_assert_int_eq(w.code[1], ENOENT);
  ck_assert_str_eq(w.path[1], "b");
  ck_assert_str_eq(w.msg[1], strerror(ENOENT));
  ck_assert_uint_eq(w.last_write.files, 3);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, 1);
  sst_reader_close(r);
  sst_scan_free(s);
  /* Without a callback, the first stops the writing. */
  ck_assert_int_eq(sst_scan_tree(top, NULL, &s), 0);
  PUT(top, "a", "0");
  wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), SST_ECHANGED);
  ck_assert_uint_eq(sst_writer_key_count(wr), 0);
  sst_writer_free(wr);
  sst_scan_free(s);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

/* The staging commit's use: scanned files merged with keys of another
 * source, one file at a time. */
START_TEST(merged_with_other_keys) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "b", "file b");
  PUT(top, "d/x", "file d/x");
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, NULL, &s), 0);
  const char *table = tu_path("merged.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_writer_add(wr, "a", 1, "base a", 6), 0);
  ck_assert_int_eq(sst_scan_write_file(s, 0, wr), 0);
  ck_assert_int_eq(sst_writer_add(wr, "c", 1, "base c", 6), 0);
  ck_assert_int_eq(sst_scan_write_file(s, 1, wr), 0);
  ck_assert_int_eq(sst_writer_add(wr, "e", 1, "base e", 6), 0);
  finish(wr);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  const uint8_t *v;
  uint64_t vlen;
  ck_assert_int_eq(sst_reader_get(r, "d/x", 3, &v, &vlen), 0);
  ck_assert(vlen == 8 && memcmp(v, "file d/x", 8) == 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, 5);
  sst_reader_close(r);
  sst_scan_free(s);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

/* ---- metadata ---- */

static void set_mtime(int top, const char *rel, time_t sec, long nsec) {
  struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec},
                           {.tv_sec = sec, .tv_nsec = nsec}};
  ck_assert_int_eq(utimensat(top, rel, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Whether the file system of top takes user.* attributes (tmpfs before
 * Linux 6.6 does not). */
static int user_xattrs_work(int top) {
  PUT(top, "probe", "");
  int fd = openat(top, "probe", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  int ok = fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
  close(fd);
  ck_assert_int_eq(unlinkat(top, "probe", 0), 0);
  return ok;
}

static void set_xattr(int top, const char *rel, const char *name,
                      const char *value) {
  int fd = openat(top, rel, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fsetxattr(fd, name, value, strlen(value), 0), 0);
  close(fd);
}

static const sst_scan_file *find_entry(const sst_scan *s, const char *key) {
  for (size_t i = 0; i < sst_scan_count(s); i++) {
    const sst_scan_file *f = sst_scan_get(s, i);
    if (f->key_len == strlen(key) && memcmp(f->key, key, f->key_len) == 0)
      return f;
  }
  ck_abort_msg("no entry '%s' in the scan", key);
  return NULL;
}

static void find_in_table(const sst_reader *r, const char *key, sst_entry *e) {
  ck_assert_msg(sst_reader_find(r, key, strlen(key), e) == 0, "no key '%s'",
                key);
  ck_assert_msg(e->flags & SST_FLAG_META, "key '%s' has no metadata", key);
}

START_TEST(metadata_tree) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  int xattrs = user_xattrs_work(top);
  PUT(top, "a/f", "shared content");
  ck_assert_int_eq(fchmodat(top, "a/f", 04750, 0), 0);
  ck_assert_int_eq(linkat(top, "a/f", top, "a/x", 0), 0);
  ck_assert_int_eq(linkat(top, "a/f", top, "z", 0), 0);
  PUT(top, "c2", "second group");
  ck_assert_int_eq(linkat(top, "c2", top, "c1", 0), 0);
  PUT(top, "outside", "one name in the tree");
  char elsewhere[600];
  snprintf(elsewhere, sizeof elsewhere, "%s.other", dir);
  ck_assert_int_eq(linkat(top, "outside", AT_FDCWD, elsewhere, 0), 0);
  ck_assert_int_eq(mkdirat(top, "empty", 0700), 0);
  ck_assert_int_eq(symlinkat("a/f", top, "s"), 0);
  ck_assert_int_eq(symlinkat("nowhere", top, "dang"), 0);
  ck_assert_int_eq(mkfifoat(top, "fifo", 0644), 0);
  if (xattrs) {
    set_xattr(top, "c2", "user.b", "2");
    set_xattr(top, "c2", "user.a", "one");
    set_xattr(top, "empty", "user.d", "dir");
  }
  set_mtime(top, "a/f", 1600000000, 123456789);
  set_mtime(top, "s", 1500000000, 5);
  set_mtime(top, "empty", 1400000000, 999999999);
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  o.metadata = 1;
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 1); /* the FIFO, and only it */
  ck_assert_int_eq(w.kind[0], SST_SCAN_SPECIAL);
  ck_assert_str_eq(w.what[0], "FIFO");
  ck_assert_str_eq(w.msg[0], "is a FIFO: a table holds only regular files, "
                             "directories and symlinks");
  static const char *const keys[] = {"/",       "a/", "a/f",  "a/x",
                                     "c1",      "c2", "dang", "empty/",
                                     "outside", "s",  "z"};
  ck_assert_uint_eq(sst_scan_count(s), 11);
  for (size_t i = 0; i < 11; i++) {
    const sst_scan_file *f = sst_scan_get(s, i);
    ck_assert_uint_eq(f->key_len, strlen(keys[i]));
    ck_assert(memcmp(f->key, keys[i], f->key_len) == 0);
  }
  ck_assert_str_eq(find_entry(s, "/")->path, "");
  ck_assert_str_eq(find_entry(s, "empty/")->path, "empty");
  ck_assert_uint_eq(find_entry(s, "a/")->type, SST_TYPE_DIR);
  ck_assert_uint_eq(find_entry(s, "s")->type, SST_TYPE_SYMLINK);
  ck_assert_uint_eq(find_entry(s, "z")->type, SST_TYPE_FILE);
  /* Groups numbered in key order of their first names; a file whose
   * other name is outside the tree is not in a group. */
  ck_assert_uint_eq(find_entry(s, "a/f")->link_id, 1);
  ck_assert_uint_eq(find_entry(s, "a/x")->link_id, 1);
  ck_assert_uint_eq(find_entry(s, "z")->link_id, 1);
  ck_assert_uint_eq(find_entry(s, "z")->nlink, 3);
  ck_assert_uint_eq(find_entry(s, "c1")->link_id, 2);
  ck_assert_uint_eq(find_entry(s, "c2")->nlink, 2);
  ck_assert_uint_eq(find_entry(s, "outside")->link_id, 0);
  ck_assert_uint_eq(find_entry(s, "outside")->nlink, 1);
  /* Each group's content counts once; symlinks count their targets. */
  ck_assert_uint_eq(sst_scan_bytes(s), 14 + 12 + 20 + 3 + 7);

  const char *table = tu_path("meta.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 1);
  ck_assert_uint_eq(w.last_write.bytes, sst_scan_bytes(s));
  sst_scan_free(s);

  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  ck_assert_int_eq(sst_reader_verify(r, NULL), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert_uint_eq(info.key_count, 11);
  ck_assert(info.features & SST_FEATURE_META);
  struct stat st;
  sst_entry e, e2;
  /* The top directory and an empty one. */
  find_in_table(r, "/", &e);
  ck_assert_uint_eq(e.meta.type, SST_TYPE_DIR);
  ck_assert_uint_eq(e.value_len, 0);
  ck_assert_int_eq(fstat(top, &st), 0);
  ck_assert_uint_eq(e.meta.mode, st.st_mode & 07777);
  find_in_table(r, "empty/", &e);
  ck_assert_uint_eq(e.meta.type, SST_TYPE_DIR);
  ck_assert_uint_eq(e.meta.mode, 0700);
  ck_assert_int_eq(e.meta.mtime_sec, 1400000000);
  ck_assert_uint_eq(e.meta.mtime_nsec, 999999999);
  /* A file: mode with setuid, owner, time to the nanosecond. */
  find_in_table(r, "a/f", &e);
  ck_assert_uint_eq(e.meta.type, SST_TYPE_FILE);
  ck_assert_uint_eq(e.meta.mode, 04750);
  ck_assert_uint_eq(e.meta.uid, getuid());
  ck_assert_uint_eq(e.meta.gid, getgid());
  ck_assert_int_eq(e.meta.mtime_sec, 1600000000);
  ck_assert_uint_eq(e.meta.mtime_nsec, 123456789);
  ck_assert_uint_eq(e.meta.nlink, 3);
  ck_assert_uint_eq(e.meta.link_id, 1);
  /* Its other names share its value. */
  find_in_table(r, "z", &e2);
  ck_assert_uint_eq(e2.meta.link_id, 1);
  ck_assert_uint_eq(e2.meta.nlink, 3);
  ck_assert_uint_eq(e2.meta.mode, 04750);
  ck_assert_uint_eq(e2.value_offset, e.value_offset);
  ck_assert_uint_eq(e2.value_len, 14);
  const uint8_t *v;
  ck_assert_int_eq(sst_reader_value(r, &e2, &v), 0);
  ck_assert(memcmp(v, "shared content", 14) == 0);
  find_in_table(r, "c1", &e);
  find_in_table(r, "c2", &e2);
  ck_assert_uint_eq(e.meta.link_id, 2);
  ck_assert_uint_eq(e2.value_offset, e.value_offset);
  ck_assert_uint_eq(info.value_region >= 14 + 12 + 20 + 3 + 7, 1);
  find_in_table(r, "outside", &e);
  ck_assert_uint_eq(e.meta.link_id, 0);
  ck_assert_uint_eq(e.meta.nlink, 1);
  /* Symlinks: the target as the value, never followed. */
  find_in_table(r, "s", &e);
  ck_assert_uint_eq(e.meta.type, SST_TYPE_SYMLINK);
  ck_assert_int_eq(sst_reader_value(r, &e, &v), 0);
  ck_assert(e.value_len == 3 && memcmp(v, "a/f", 3) == 0);
  ck_assert_int_eq(e.meta.mtime_sec, 1500000000);
  ck_assert_uint_eq(e.meta.mtime_nsec, 5);
  ck_assert_uint_eq(e.meta.xattr_len, 0);
  find_in_table(r, "dang", &e);
  ck_assert_int_eq(sst_reader_value(r, &e, &v), 0);
  ck_assert(e.value_len == 7 && memcmp(v, "nowhere", 7) == 0);
  /* Extended attributes, sorted by name, on a file and a directory. */
  if (xattrs) {
    uint8_t buf[256];
    sst_xattr x;
    size_t pos = 0;
    find_in_table(r, "c1", &e); /* a link: the group's attributes */
    ck_assert_uint_gt(e.meta.xattr_len, 0);
    ck_assert_uint_le(e.meta.xattr_len, sizeof buf);
    ck_assert_int_eq(sst_reader_xattrs(r, &e, buf), 0);
    ck_assert_int_eq(sst_xattrs_next(buf, e.meta.xattr_len, &pos, &x), 1);
    ck_assert(x.name_len == 6 && memcmp(x.name, "user.a", 6) == 0);
    ck_assert(x.value_len == 3 && memcmp(x.value, "one", 3) == 0);
    ck_assert_int_eq(sst_xattrs_next(buf, e.meta.xattr_len, &pos, &x), 1);
    ck_assert(x.name_len == 6 && memcmp(x.name, "user.b", 6) == 0);
    ck_assert_int_eq(sst_xattrs_next(buf, e.meta.xattr_len, &pos, &x), 0);
    find_in_table(r, "empty/", &e);
    pos = 0;
    ck_assert_int_eq(sst_reader_xattrs(r, &e, buf), 0);
    ck_assert_int_eq(sst_xattrs_next(buf, e.meta.xattr_len, &pos, &x), 1);
    ck_assert(x.name_len == 6 && memcmp(x.name, "user.d", 6) == 0);
  } else {
    fprintf(stderr,
            "metadata_tree: no user.* xattrs on %s: that part "
            "SKIPPED\n",
            dir);
  }
  sst_reader_close(r);
  unlink(table);
  unlink(elsewhere);
  remove_top(top, dir);
}
END_TEST

/* Without the option the same tree gives the plain table of version 1. */
START_TEST(metadata_off_is_plain) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "a/f", "x");
  ck_assert_int_eq(linkat(top, "a/f", top, "b", 0), 0);
  ck_assert_int_eq(mkdirat(top, "empty", 0755), 0);
  ck_assert_int_eq(symlinkat("a/f", top, "s"), 0);
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_int_eq(w.n, 1);
  ck_assert_str_eq(w.what[0], "symlink");
  ck_assert_uint_eq(sst_scan_count(s), 2);
  ck_assert_uint_eq(sst_scan_get(s, 1)->type, SST_TYPE_FILE);
  ck_assert_uint_eq(sst_scan_get(s, 1)->link_id, 0);
  const char *table = tu_path("plain.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  check_table_is_scan(table, s, top);
  sst_reader *r;
  ck_assert_int_eq(sst_reader_open(table, NULL, &r, NULL), 0);
  sst_info info;
  sst_reader_info(r, &info);
  ck_assert(!(info.features & SST_FEATURE_META));
  sst_entry e;
  ck_assert_int_eq(sst_reader_find(r, "b", 1, &e), 0);
  ck_assert_uint_eq(e.flags, 0);
  sst_reader_close(r);
  sst_scan_free(s);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

/* A directory's entry and a file can give one key: a and a/%= are both
 * "a/". */
START_TEST(metadata_dir_key_duplicate) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "a/%=", "a file whose key is a/");
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  o.metadata = 1;
  sst_scan *s = NULL;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), SST_EDUPKEY);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(w.n, 1);
  ck_assert_int_eq(w.kind[0], SST_SCAN_DUPLICATE);
  ck_assert_str_eq(w.path[0], "a");
  ck_assert_str_eq(w.other[0], "a/%=");
  ck_assert_str_eq(w.msg[0], "gives the same key 'a/'");
  remove_top(top, dir);
}
END_TEST

/* The "%+" directories of a long name are not directories of the table;
 * in flat mode no directory is. */
START_TEST(metadata_pieces_and_flat) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  char ell[301], long_path[512];
  memset(ell, 'L', 300);
  ell[300] = '\0';
  snprintf(long_path, sizeof long_path, "%%+%.84s/%%=%.216s", ell, ell);
  PUT(top, long_path, "long");
  ck_assert_int_eq(symlinkat("target", top, "s"), 0);
  sst_scan_options o;
  sst_scan_options_init(&o);
  o.metadata = 1;
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_uint_eq(sst_scan_count(s), 3); /* "/", the long name, "s" */
  ck_assert_str_eq((const char *)sst_scan_get(s, 0)->path, "");
  ck_assert_uint_eq(sst_scan_get(s, 1)->key_len, 300);
  ck_assert_uint_eq(sst_scan_get(s, 1)->type, SST_TYPE_FILE);
  sst_scan_free(s);
  o.path_flags = SST_PATH_FLAT;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_uint_eq(sst_scan_count(s), 2); /* no "/" */
  ck_assert_uint_eq(sst_scan_get(s, 1)->type, SST_TYPE_SYMLINK);
  sst_scan_free(s);
  remove_top(top, dir);
}
END_TEST

/* A name of a hard-link group replaced by another file between the scan
 * and the write is reported, skippable; the group's value stays. */
START_TEST(metadata_link_replaced) {
  char dir[512];
  int top = make_top(dir, sizeof dir);
  PUT(top, "a", "linked");
  ck_assert_int_eq(linkat(top, "a", top, "b", 0), 0);
  watch w = {0};
  sst_scan_options o = watched(&w, 0);
  o.metadata = 1;
  sst_scan *s;
  ck_assert_int_eq(sst_scan_tree(top, &o, &s), 0);
  ck_assert_uint_eq(sst_scan_count(s), 3);
  ck_assert_int_eq(unlinkat(top, "b", 0), 0);
  PUT(top, "b", "linked"); /* same size, another inode */
  const char *table = tu_path("replaced.sst");
  sst_writer *wr = new_writer(table);
  ck_assert_int_eq(sst_scan_write_all(s, wr), 0);
  finish(wr);
  ck_assert_int_eq(w.n, 1);
  ck_assert_int_eq(w.kind[0], SST_SCAN_CHANGED);
  ck_assert_int_eq(w.can_skip[0], 1);
  ck_assert_str_eq(w.path[0], "b");
  ck_assert_str_eq(w.msg[0],
                   "is no longer a hard link of a, as it was when scanned");
  sst_scan_free(s);
  unlink(table);
  remove_top(top, dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("treewrite");
  TCase *tc = tcase_create("treewrite");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, keys_in_table_order);
  tcase_add_test(tc, duplicate_keys);
  tcase_add_test(tc, flat_mode);
  tcase_add_test(tc, deeper_than_path_max);
  tcase_add_test(tc, special_files_skipped);
  tcase_add_test(tc, excluded_file);
  tcase_add_test(tc, progress_stops);
  tcase_add_test(tc, large_file_streamed);
  tcase_add_test(tc, file_grows_while_read);
  tcase_add_test(tc, file_shrinks_while_read);
  tcase_add_test(tc, file_rewritten_while_read);
  tcase_add_test(tc, file_changed_since_scan);
  tcase_add_test(tc, merged_with_other_keys);
  tcase_add_test(tc, metadata_tree);
  tcase_add_test(tc, metadata_off_is_plain);
  tcase_add_test(tc, metadata_dir_key_duplicate);
  tcase_add_test(tc, metadata_pieces_and_flat);
  tcase_add_test(tc, metadata_link_replaced);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
