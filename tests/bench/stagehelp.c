/* stagehelp.c — the helper of scripts/bench-stage: makes its tree and
 * samples a process's memory and CPU time.
 *
 * stagehelp tree ROOT FILES DIRS LARGE MIB
 *   Makes the benchmark tree: FILES text files of 80-120 bytes spread
 *   evenly over DIRS folders dNNNN/, and LARGE files bigNN.bin of MIB MiB
 *   of pseudo-random bytes at the top. Prints the small files' bytes.
 * stagehelp watch PID
 *   Every 20 ms reads /proc/PID/status and /proc/PID/stat until PID is
 *   gone or a SIGTERM comes; prints the last VmHWM (KiB) and the last
 *   user and system CPU times (seconds) seen.
 * stagehelp cpu PID
 *   Prints PID's user and system CPU times in seconds. */
#include <err.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_rand.h"
#include "benchutil.h"

static int tree(const char *root, long files, long dirs, long large, long mib) {
  static const char words[][8] = {"alpha", "beta",  "gamma", "delta",
                                  "omega", "sigma", "kappa", "lambda"};
  uint64_t s = 0x5eed5eed12345ull;
  char path[4096], text[160];
  unsigned long long bytes = 0;
  bench_mkdir(root);
  for (long i = 0; i < files; i++) {
    long d = i * dirs / files;
    if (i == 0 || d != (i - 1) * dirs / files) {
      snprintf(path, sizeof path, "%s/d%04ld", root, d);
      bench_mkdir(path);
    }
    size_t want = 80 + bench_rand(&s) % 41, n;
    n = (size_t)snprintf(text, sizeof text, "record %ld:", i);
    while (n < want - 1) {
      const char *w = words[bench_rand(&s) % 8];
      n += (size_t)snprintf(text + n, sizeof text - n, " %s%u", w,
                            (unsigned)(bench_rand(&s) % 1000));
    }
    n = want - 1;
    text[n++] = '\n';
    snprintf(path, sizeof path, "%s/d%04ld/f%07ld.txt", root, d, i);
    bench_write_file(path, text, n);
    bytes += n;
  }
  size_t chunk = 1u << 20;
  uint64_t *buf = malloc(chunk);
  if (buf == NULL)
    err(1, "out of memory");
  for (long k = 0; k < large; k++) {
    snprintf(path, sizeof path, "%s/big%02ld.bin", root, k);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      err(1, "cannot create %s", path);
    for (long m = 0; m < mib; m++) {
      for (size_t j = 0; j < chunk / 8; j++)
        buf[j] = bench_rand(&s);
      if (write(fd, buf, chunk) != (ssize_t)chunk)
        err(1, "cannot write %s", path);
    }
    if (close(fd) != 0)
      err(1, "cannot write %s", path);
  }
  free(buf);
  printf("%llu\n", bytes);
  return 0;
}

/* PID's user and system CPU time in seconds; -1 if it is gone. */
static int cpu_times(const char *pid, double *user, double *sys) {
  char text[1024];
  if (bench_read_proc(pid, "stat", text, sizeof text) < 0)
    return -1;
  /* After the command name, which ends at the last ')': the state is
   * field 3, utime field 14, stime 15. */
  char *p = strrchr(text, ')');
  unsigned long long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
             &ut, &st) != 2)
    return -1;
  double tick = (double)sysconf(_SC_CLK_TCK);
  *user = (double)ut / tick;
  *sys = (double)st / tick;
  return 0;
}

static int watch(const char *pid) {
  bench_catch_stop();
  long hwm = 0;
  double user = 0, sys = 0;
  char text[4096];
  while (!bench_stop_requested()) {
    double u, s;
    if (bench_read_proc(pid, "status", text, sizeof text) < 0)
      break;
    long h = bench_status_kib(text, "\nVmHWM:");
    if (h < 0 || cpu_times(pid, &u, &s) != 0)
      break;
    hwm = h;
    user = u;
    sys = s;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  printf("%ld %.2f %.2f\n", hwm, user, sys);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "tree") == 0)
    return tree(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]),
                atol(argv[6]));
  if (argc == 3 && strcmp(argv[1], "watch") == 0)
    return watch(argv[2]);
  if (argc == 3 && strcmp(argv[1], "cpu") == 0) {
    double u = 0, s = 0;
    if (cpu_times(argv[2], &u, &s) != 0)
      return 1;
    printf("%.2f %.2f\n", u, s);
    return 0;
  }
  fprintf(stderr, "usage: stagehelp tree ROOT FILES DIRS LARGE MIB\n"
                  "       stagehelp watch PID | cpu PID\n");
  return 2;
}
