/* fsbench.c — the helper of scripts/bench: writes its tree, reads lists
 * of files, and samples a daemon's memory.
 *
 * fsbench gen ROOT FILES DIRS LIST: writes FILES small files in DIRS
 *   folders under ROOT, 80-120 bytes of deterministic text each, all
 *   different, and their paths (relative to ROOT, in key order) to LIST.
 * fsbench read [-s] ROOT LIST: opens and reads every file named in LIST,
 *   in order, read() into a 1 MiB buffer until EOF; prints the number of
 *   files and bytes, and with -s an XXH3 checksum of all of them.
 * fsbench peak PID: samples RssAnon and VmRSS of PID every 10 ms until
 *   SIGTERM or until PID is gone, then prints the largest of each (KiB). */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int gen(const char *root, unsigned long files, unsigned long dirs,
               const char *list) {
  static const char alpha[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,;-";
  unsigned long per = (files + dirs - 1) / dirs;
  char path[4096], name[64], buf[160];
  uint64_t seed = 20240601;
  FILE *lf = fopen(list, "w");
  if (lf == NULL)
    err(1, "cannot write %s", list);
  bench_mkdir(root);
  for (unsigned long d = 0; d < dirs; d++) {
    snprintf(path, sizeof path, "%s/d%03lu", root, d);
    bench_mkdir(path);
  }
  for (unsigned long i = 0; i < files; i++) {
    snprintf(name, sizeof name, "d%03lu/f%06lu.txt", i / per, i);
    snprintf(path, sizeof path, "%s/%s", root, name);
    size_t len = 80 + splitmix64(&seed) % 41;
    size_t o = (size_t)snprintf(buf, sizeof buf, "%06lu ", i);
    for (; o < len - 1; o++)
      buf[o] = alpha[splitmix64(&seed) % (sizeof alpha - 1)];
    buf[len - 1] = '\n';
    bench_write_file(path, buf, len);
    fprintf(lf, "%s\n", name);
  }
  if (fclose(lf) != 0)
    err(1, "cannot write %s", list);
  return 0;
}

static int peak(const char *pid) {
  char text[4096];
  long anon = 0, rss = 0;
  bench_catch_stop();
  while (!bench_stop_requested() &&
         bench_read_proc(pid, "status", text, sizeof text) > 0) {
    long a = bench_status_kib(text, "\nRssAnon:");
    long r = bench_status_kib(text, "\nVmRSS:");
    if (a > anon)
      anon = a;
    if (r > rss)
      rss = r;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  printf("%ld %ld\n", anon, rss);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "peak") == 0)
    return peak(argv[2]);
  if (argc == 6 && strcmp(argv[1], "gen") == 0)
    return gen(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
               argv[5]);
  if (argc == 4 && strcmp(argv[1], "read") == 0) {
    bench_read_listed(argv[2], argv[3], 0);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "read") == 0 && strcmp(argv[2], "-s") == 0) {
    bench_read_listed(argv[3], argv[4], 1);
    return 0;
  }
  fprintf(stderr, "usage: fsbench gen ROOT FILES DIRS LIST\n"
                  "       fsbench read [-s] ROOT LIST\n"
                  "       fsbench peak PID\n");
  return 2;
}
