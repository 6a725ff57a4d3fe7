/* benchutil.c — what the benchmark helpers share; see benchutil.h. */
#include "benchutil.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

void bench_mkdir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    err(1, "cannot make %s", path);
}

void bench_write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    err(1, "cannot create %s", path);
  for (const char *p = data; len > 0;) {
    ssize_t n = write(fd, p, len);
    if (n < 0)
      err(1, "cannot write %s", path);
    p += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0)
    err(1, "cannot write %s", path);
}

char **bench_read_lines(const char *path, size_t *count) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    err(1, "cannot read %s", path);
  size_t n = 0, cap = 1024, line_cap = 0;
  char **lines = malloc(cap * sizeof *lines), *line = NULL;
  ssize_t len;
  while ((len = getline(&line, &line_cap, f)) > 0) {
    if (line[len - 1] == '\n')
      line[len - 1] = '\0';
    if (lines != NULL && n == cap)
      lines = realloc(lines, (cap *= 2) * sizeof *lines);
    if (lines == NULL || (lines[n++] = strdup(line)) == NULL)
      err(1, "out of memory reading %s", path);
  }
  if (ferror(f))
    err(1, "cannot read %s", path);
  free(line);
  fclose(f);
  *count = n;
  return lines;
}

void bench_free_lines(char **lines, size_t count) {
  for (size_t i = 0; i < count; i++)
    free(lines[i]);
  free(lines);
}

void bench_read_listed(const char *root, const char *list, int sum) {
  static char buf[1 << 20];
  size_t count;
  char **names = bench_read_lines(list, &count);
  int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    err(1, "cannot open %s", root);
  XXH3_state_t *state = XXH3_createState();
  if (state == NULL)
    err(1, "out of memory for %s", list);
  uint64_t total_sum = 0;
  unsigned long long bytes = 0;
  for (size_t i = 0; i < count; i++) {
    int fd = openat(dir, names[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      err(1, "cannot open %s", names[i]);
    if (sum)
      XXH3_64bits_reset(state);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      bytes += (unsigned long long)n;
      if (sum)
        XXH3_64bits_update(state, buf, (size_t)n);
    }
    if (n < 0)
      err(1, "cannot read %s", names[i]);
    close(fd);
    if (sum)
      total_sum = XXH3_64bits_withSeed(&total_sum, sizeof total_sum,
                                       XXH3_64bits_digest(state));
  }
  printf("%zu %llu", count, bytes);
  if (sum)
    printf(" %016" PRIx64, total_sum);
  printf("\n");
  XXH3_freeState(state);
  close(dir);
  bench_free_lines(names, count);
}

ssize_t bench_read_proc(const char *pid, const char *name, char *text,
                        size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/%s", pid, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, text, size - 1);
  close(fd);
  if (n <= 0)
    return -1;
  text[n] = '\0';
  return n;
}

long bench_status_kib(const char *text, const char *field) {
  const char *p = strstr(text, field);
  return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

void bench_catch_stop(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int bench_stop_requested(void) { return stop_requested; }
