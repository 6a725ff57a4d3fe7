#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tu_path(const char *stem) {
  static char slots[8][512];
  static unsigned next, counter;
  char *p = slots[next++ % 8];
  const char *dir = getenv("SST_TEST_TMP");
  if (dir == NULL || *dir == '\0')
    dir = "/tmp";
  snprintf(p, sizeof slots[0], "%s/%s.%ld.%u", dir, stem, (long)getpid(),
           counter++);
  unlink(p);
  return p;
}

void tu_rng_seed(tu_rng *r, uint64_t seed) {
  r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t tu_rng_next(tu_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

uint64_t tu_rng_below(tu_rng *r, uint64_t n) { return tu_rng_next(r) % n; }

void tu_rng_fill(tu_rng *r, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)tu_rng_next(r);
}

uint8_t *tu_read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  ck_assert_msg(fd >= 0, "open %s", path);
  struct stat st;
  ck_assert_int_eq(fstat(fd, &st), 0);
  uint8_t *buf = malloc((size_t)st.st_size + 1);
  ck_assert_ptr_nonnull(buf);
  size_t done = 0;
  while (done < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
    ck_assert_int_gt(n, 0);
    done += (size_t)n;
  }
  close(fd);
  buf[done] = '\0'; /* so that text files can be read as strings */
  *len = done;
  return buf;
}

void tu_write_file(const char *path, const void *data, size_t len) {
  tu_write_file_at(AT_FDCWD, path, data, len);
}

void tu_write_file_at(int dirfd, const char *path, const void *data,
                      size_t len) {
  int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_msg(fd >= 0, "create %s", path);
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    ck_assert_int_gt(n, 0);
    p += n;
    len -= (size_t)n;
  }
  close(fd);
}
