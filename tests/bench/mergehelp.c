/* mergehelp.c — the helper of scripts/bench-merge: writes its inputs,
 * edits its tree and reads random files of it.
 *
 * mergehelp csv N A.csv B.csv
 *   Two sorted files of "key,value" lines: A the even ids 0..2N-2, B 30%
 *   of A's ids (chosen at random, new values) and 70% of the odd ids.
 *   Keys "rec/NNNNNNNNNNNN/v" (20 bytes), values of 70-90 characters.
 *   Prints: A's key+value bytes, B's, and the keys of A and B together.
 * mergehelp tree ROOT FILES DIRS LIST
 *   FILES files of 80-120 bytes in DIRS folders under ROOT; their paths,
 *   relative to ROOT, go to LIST.
 * mergehelp edit ROOT LIST NEWLIST SEED REWRITE ADD DELETE
 *   Of the files named in LIST (under ROOT), rewrites REWRITE with new
 *   content and deletes DELETE (distinct, chosen at random), and adds ADD
 *   new files in the existing folders; writes the resulting list.
 * mergehelp pick LIST N SEED
 *   Prints N distinct lines of LIST in a random order.
 * mergehelp read ROOT LIST
 *   Opens and reads whole every file in LIST; prints files and bytes. */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_rand.h"
#include "benchutil.h"

static const char letters[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";

/* len characters of text into p. */
static void text(uint64_t *s, char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    p[i] = letters[bench_rand(s) % (sizeof letters - 1)];
}

static int csv(unsigned long long n, const char *a_path, const char *b_path) {
  FILE *a = fopen(a_path, "w"), *b = fopen(b_path, "w");
  if (a == NULL || b == NULL)
    err(1, "cannot write %s", a == NULL ? a_path : b_path);
  uint64_t s = 0xc0ffee1234567ull;
  unsigned long long a_bytes = 0, b_bytes = 0, both = 0;
  char v[96];
  for (unsigned long long id = 0; id < 2 * n; id++) {
    int in_a = id % 2 == 0;
    int in_b = (bench_rand(&s) % 10) < (in_a ? 3u : 7u);
    if (!in_a && !in_b)
      continue;
    both++;
    if (in_a) {
      size_t len = 70 + bench_rand(&s) % 21;
      text(&s, v, len);
      fprintf(a, "rec/%012llu/v,%.*s\n", id, (int)len, v);
      a_bytes += 20 + len;
    }
    if (in_b) {
      size_t len = 70 + bench_rand(&s) % 21;
      text(&s, v, len);
      fprintf(b, "rec/%012llu/v,%.*s\n", id, (int)len, v);
      b_bytes += 20 + len;
    }
  }
  if (fclose(a) != 0 || fclose(b) != 0)
    err(1, "cannot write %s", a_path);
  printf("%llu %llu %llu\n", a_bytes, b_bytes, both);
  return 0;
}

/* A file of 80-120 bytes: WHAT, then random text. */
static void put(const char *path, uint64_t *s, const char *what) {
  char buf[160];
  size_t len = 80 + bench_rand(s) % 41;
  size_t head = (size_t)snprintf(buf, sizeof buf, "%s ", what);
  text(s, buf + head, len - head - 1);
  buf[len - 1] = '\n';
  bench_write_file(path, buf, len);
}

static int tree(const char *root, long files, long dirs, const char *list) {
  FILE *l = fopen(list, "w");
  if (l == NULL)
    err(1, "cannot write %s", list);
  uint64_t s = 0xabcdef987654321ull;
  char path[4200], name[64];
  bench_mkdir(root);
  for (long i = 0; i < files; i++) {
    long d = i * dirs / files;
    if (i == 0 || d != (i - 1) * dirs / files) {
      snprintf(path, sizeof path, "%s/dir%04ld", root, d);
      bench_mkdir(path);
    }
    snprintf(name, sizeof name, "dir%04ld/file%07ld", d, i);
    snprintf(path, sizeof path, "%s/%s", root, name);
    put(path, &s, name);
    fprintf(l, "%s\n", name);
  }
  if (fclose(l) != 0)
    err(1, "cannot write %s", list);
  return 0;
}

/* Moves k randomly chosen lines of v to its front. */
static void shuffle_front(char **v, size_t n, size_t k, uint64_t *s) {
  for (size_t i = 0; i < k && i < n; i++) {
    size_t j = i + bench_rand(s) % (n - i);
    char *t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

static int edit(const char *root, const char *list, const char *out,
                unsigned long long seed, size_t rewrite, size_t add,
                size_t del) {
  size_t n;
  char **v = bench_read_lines(list, &n);
  if (rewrite + del > n) {
    errx(1, "only %zu files to edit", n);
  }
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  char path[8192], name[4096];
  shuffle_front(v, n, rewrite + del, &s);
  FILE *o = fopen(out, "w");
  if (o == NULL)
    err(1, "cannot write %s", out);
  for (size_t i = 0; i < rewrite; i++) {
    snprintf(path, sizeof path, "%s/%s", root, v[i]);
    snprintf(name, sizeof name, "%s rewritten by edit %llu", v[i], seed);
    put(path, &s, name);
  }
  for (size_t i = rewrite; i < rewrite + del; i++) {
    snprintf(path, sizeof path, "%s/%s", root, v[i]);
    if (unlink(path) != 0)
      err(1, "cannot delete %s", path);
  }
  for (size_t i = 0; i < n; i++)
    if (i < rewrite || i >= rewrite + del)
      fprintf(o, "%s\n", v[i]);
  /* New files go into the folders of randomly chosen remaining files. */
  for (size_t k = 0; k < add; k++) {
    const char *model = v[rewrite + del + bench_rand(&s) % (n - rewrite - del)];
    const char *slash = strrchr(model, '/');
    int dirlen = slash ? (int)(slash - model) : 0;
    snprintf(name, sizeof name, "%.*s%snew-%llu-%06zu", dirlen, model,
             slash ? "/" : "", seed, k);
    snprintf(path, sizeof path, "%s/%s", root, name);
    put(path, &s, name);
    fprintf(o, "%s\n", name);
  }
  if (fclose(o) != 0)
    err(1, "cannot write %s", out);
  bench_free_lines(v, n);
  return 0;
}

static int pick(const char *list, size_t k, unsigned long long seed) {
  size_t n;
  char **v = bench_read_lines(list, &n);
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
  if (k > n)
    k = n;
  shuffle_front(v, n, k, &s);
  for (size_t i = 0; i < k; i++)
    printf("%s\n", v[i]);
  bench_free_lines(v, n);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "csv") == 0)
    return csv(strtoull(argv[2], NULL, 10), argv[3], argv[4]);
  if (argc == 6 && strcmp(argv[1], "tree") == 0)
    return tree(argv[2], atol(argv[3]), atol(argv[4]), argv[5]);
  if (argc == 9 && strcmp(argv[1], "edit") == 0)
    return edit(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10),
                strtoul(argv[6], NULL, 10), strtoul(argv[7], NULL, 10),
                strtoul(argv[8], NULL, 10));
  if (argc == 5 && strcmp(argv[1], "pick") == 0)
    return pick(argv[2], strtoul(argv[3], NULL, 10),
                strtoull(argv[4], NULL, 10));
  if (argc == 4 && strcmp(argv[1], "read") == 0) {
    bench_read_listed(argv[2], argv[3], 0);
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of "
                  "tests/bench/mergehelp.c\n");
  return 2;
}
