/* source.c — local files as sources, and the choice between a file and a
 * URL (source.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "source.h"

int sst_src_is_url(const char *name) {
  return strncasecmp(name, "http://", 7) == 0 ||
         strncasecmp(name, "https://", 8) == 0;
}

static int open_local(const char *path, sst_src **out, sst_error *err) {
  /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, and a
   * device could wait for its carrier, before the check below refuses
   * them. It is cleared again for the regular file, whose descriptor
   * callers read through (io_uring answers EAGAIN on a non-blocking one). */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  int rc;
  if (fd < 0 || fstat(fd, &st) != 0) {
    rc = sst_error_set(err, errno, "%s: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = sst_error_set(err, S_ISDIR(st.st_mode) ? EISDIR : SST_ENOTTABLE,
                       "%s: not a regular file", path);
    goto fail;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    rc = sst_error_set(err, errno, "%s: fcntl: %s", path, strerror(errno));
    goto fail;
  }
  sst_src *s = calloc(1, sizeof *s);
  if (s == NULL || (s->name = strdup(path)) == NULL) {
    free(s);
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  s->fd = fd;
  s->size = (uint64_t)st.st_size;
  s->mtime_sec = (int64_t)st.st_mtim.tv_sec;
  snprintf(s->identity, sizeof s->identity, "%llx:%llx:%llx:%lld.%09ld",
           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
           (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
           (long)st.st_mtim.tv_nsec);
  *out = s;
  return 0;
fail:
  if (fd >= 0)
    close(fd);
  return rc;
}

int sst_src_open(const char *name, const char *cache_dir, uint64_t cache_max,
                 sst_src **out, sst_error *err) {
  *out = NULL;
  if (sst_src_is_url(name) || sst_src_is_s3(name))
    return sst_http_open(name, cache_dir, cache_max, out, err);
  return open_local(name, out, err);
}

void sst_src_close(sst_src *s) {
  if (s == NULL)
    return;
  if (s->ops != NULL) {
    s->ops->close(s); /* frees what it added, then s's fields below */
  } else if (s->fd >= 0) {
    close(s->fd);
  }
  free(s->name);
  free(s);
}
