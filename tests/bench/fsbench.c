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
 *   SIGTERM or until PID is gone, then prints the largest of each (KiB).
 * fsbench text FILE MIB SEED: writes MIB MiB of seeded text to FILE:
 *   words of 2 to 9 letters drawn from a vocabulary of 4,096 (itself drawn
 *   from SEED), in lines of 4 to 15 words, with a number now and then.
 *   It compresses (zstd, about 2.5 to 3 times) but not to nothing, and no
 *   stretch of it repeats another, so every 128 KiB block or chunk of it
 *   costs a compressor as much as the next.
 * fsbench pread FILE COUNT SEED: COUNT reads of 4 KiB with pread() at
 *   offsets that are multiples of 4 KiB, drawn from SEED, in one process;
 *   prints "COUNT BYTES XXH3 MICROSECONDS": the bytes read, a checksum of
 *   them in order, and the time of the reads alone (the open excluded). */
#include <err.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

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

static int text(const char *file, unsigned long mib, uint64_t seed) {
  enum { WORDS = 4096, BUF = 1 << 20 };
  static char vocab[WORDS][10];
  static char buf[BUF + 64];
  for (int w = 0; w < WORDS; w++) {
    int len = 2 + (int)(splitmix64(&seed) % 8);
    for (int c = 0; c < len; c++)
      vocab[w][c] = (char)('a' + splitmix64(&seed) % 26);
    vocab[w][len] = '\0';
  }
  FILE *f = fopen(file, "w");
  if (f == NULL)
    err(1, "cannot write %s", file);
  uint64_t left = (uint64_t)mib << 20;
  size_t used = 0;
  int in_line = 0, line_len = 4;
  while (left > 0) {
    uint64_t r = splitmix64(&seed);
    if (r % 23 == 0)
      used += (size_t)sprintf(buf + used, "%" PRIu64, (r >> 20) % 100000);
    else
      used += (size_t)sprintf(buf + used, "%s", vocab[(r >> 8) % WORDS]);
    if (++in_line == line_len) {
      buf[used++] = '\n';
      in_line = 0;
      line_len = 4 + (int)((r >> 40) % 12);
    } else {
      buf[used++] = ' ';
    }
    if (used >= BUF || used >= left) {
      size_t n = used < left ? used : (size_t)left;
      if (fwrite(buf, 1, n, f) != n)
        err(1, "cannot write %s", file);
      left -= n;
      used = 0;
    }
  }
  if (fclose(f) != 0)
    err(1, "cannot write %s", file);
  return 0;
}

static int random_reads(const char *file, unsigned long count, uint64_t seed) {
  enum { SIZE = 4096 };
  static char buf[SIZE];
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    err(1, "cannot open %s", file);
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < SIZE)
    errx(1, "%s: smaller than one read", file);
  uint64_t slots = (uint64_t)end / SIZE, bytes = 0;
  XXH3_state_t *state = XXH3_createState();
  if (state == NULL)
    errx(1, "out of memory");
  XXH3_64bits_reset(state);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned long i = 0; i < count; i++) {
    off_t off = (off_t)(splitmix64(&seed) % slots) * SIZE;
    ssize_t n = pread(fd, buf, SIZE, off);
    if (n != SIZE)
      err(1, "%s: read at %lld", file, (long long)off);
    XXH3_64bits_update(state, buf, SIZE);
    bytes += SIZE;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
                 (t1.tv_nsec - t0.tv_nsec) / 1000;
  printf("%lu %" PRIu64 " %016llx %lld\n", count, bytes,
         (unsigned long long)XXH3_64bits_digest(state), us);
  XXH3_freeState(state);
  close(fd);
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
  if (argc == 5 && strcmp(argv[1], "text") == 0)
    return text(argv[2], strtoul(argv[3], NULL, 10),
                strtoull(argv[4], NULL, 10));
  if (argc == 5 && strcmp(argv[1], "pread") == 0)
    return random_reads(argv[2], strtoul(argv[3], NULL, 10),
                        strtoull(argv[4], NULL, 10));
  fprintf(stderr, "usage: fsbench gen ROOT FILES DIRS LIST\n"
                  "       fsbench read [-s] ROOT LIST\n"
                  "       fsbench peak PID\n"
                  "       fsbench text FILE MIB SEED\n"
                  "       fsbench pread FILE COUNT SEED\n");
  return 2;
}
