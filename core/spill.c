#include "spill.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sstable.h"

int sst_temp_fd(const char *dir) {
  if (dir == NULL || *dir == '\0')
    dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0')
    dir = "/tmp";
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/sst-spill.XXXXXX", dir) >=
      (int)sizeof path)
    return -ENAMETOOLONG;
  fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  unlink(path);
  return fd;
}

int sst_write_all(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

struct thread_bufs {
  struct {
    void *p;
    size_t cap;
  } b[SST_TBUF_KINDS];
};
static pthread_key_t tbuf_key;
static pthread_once_t tbuf_once = PTHREAD_ONCE_INIT;

static void tbuf_free(void *v) {
  struct thread_bufs *t = v;
  for (int i = 0; i < SST_TBUF_KINDS; i++)
    free(t->b[i].p);
  free(t);
}
static void tbuf_init(void) { pthread_key_create(&tbuf_key, tbuf_free); }

void *sst_thread_buf(enum sst_thread_buf_kind kind, size_t size) {
  pthread_once(&tbuf_once, tbuf_init);
  struct thread_bufs *t = pthread_getspecific(tbuf_key);
  if (t == NULL) {
    if ((t = calloc(1, sizeof *t)) == NULL)
      return NULL;
    if (pthread_setspecific(tbuf_key, t) != 0) {
      free(t);
      return NULL;
    }
  }
  if (t->b[kind].cap > SST_TBUF_KEEP && size <= SST_TBUF_KEEP) {
    free(t->b[kind].p);
    t->b[kind].p = NULL;
    t->b[kind].cap = 0;
  }
  if (t->b[kind].cap < size) {
    void *n = realloc(t->b[kind].p, size);
    if (n == NULL)
      return NULL;
    t->b[kind].p = n;
    t->b[kind].cap = size;
  }
  return t->b[kind].p;
}

void sst_thread_buf_done(enum sst_thread_buf_kind kind) {
  pthread_once(&tbuf_once, tbuf_init);
  struct thread_bufs *t = pthread_getspecific(tbuf_key);
  if (t != NULL && t->b[kind].cap > SST_TBUF_KEEP) {
    free(t->b[kind].p);
    t->b[kind].p = NULL;
    t->b[kind].cap = 0;
  }
}

int sst_parse_size(const char *arg, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(arg, &end, 10);
  unsigned shift = 0;
  static const char units[] = "KMGT";
  if (end != arg && *end != '\0' && end[1] == '\0') {
    const char *unit = strchr(units, toupper((unsigned char)*end));
    if (unit != NULL) {
      shift = 10 * (unsigned)(unit - units + 1);
      end++;
    }
  }
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' ||
      n > (UINT64_MAX >> shift))
    return EINVAL;
  *out = (uint64_t)n << shift;
  return 0;
}

int sst_pread_all(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      return SST_ETRUNCATED;
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

int sst_spill_init(sst_spill *s, const char *dir, size_t mem_limit) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->limit = mem_limit;
  if (dir != NULL && (s->dir = strdup(dir)) == NULL)
    return ENOMEM;
  return 0;
}

static int spill_flush(sst_spill *s) {
  if (s->fd < 0) {
    int fd = sst_temp_fd(s->dir);
    if (fd < 0)
      return -fd;
    s->fd = fd;
  }
  int rc = sst_write_all(s->fd, s->mem, s->len);
  s->len = 0;
  return rc;
}

int sst_spill_write(sst_spill *s, const void *data, size_t len) {
  if (s->len + len > s->cap) {
    if (s->len + len > s->limit && s->len > 0) {
      int rc = spill_flush(s);
      if (rc)
        return rc;
    }
    if (len > s->limit) {
      if (s->fd < 0 && (s->fd = sst_temp_fd(s->dir)) < 0) {
        int rc = -s->fd;
        s->fd = -1;
        return rc;
      }
      int rc = sst_write_all(s->fd, data, len);
      if (rc == 0)
        s->size += len;
      return rc;
    }
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + len)
      cap *= 2;
    uint8_t *m = realloc(s->mem, cap);
    if (m == NULL)
      return ENOMEM;
    s->mem = m;
    s->cap = cap;
  }
  memcpy(s->mem + s->len, data, len);
  s->len += len;
  s->size += len;
  return 0;
}

int sst_spill_drain(sst_spill *s,
                    int (*sink)(void *ctx, const void *data, size_t len),
                    void *ctx) {
  if (s->fd >= 0) {
    uint8_t buf[65536];
    off_t pos = 0;
    for (;;) {
      ssize_t n = pread(s->fd, buf, sizeof buf, pos);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return errno;
      }
      if (n == 0)
        break;
      int rc = sink(ctx, buf, (size_t)n);
      if (rc)
        return rc;
      pos += n;
    }
  }
  return s->len ? sink(ctx, s->mem, s->len) : 0;
}

void sst_spill_free(sst_spill *s) {
  free(s->mem);
  free(s->dir);
  if (s->fd >= 0)
    close(s->fd);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}
