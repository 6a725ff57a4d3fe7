/* common.c — the log and the errno mapping of both daemons (common.h). */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include "sstable.h"

static int log_foreground;

void sstfs_log_init(int foreground) { log_foreground = foreground; }

void sstfs_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (log_foreground) {
    /* One write per line, so that lines of several threads stay whole. */
    char line[4096];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n >= (int)sizeof line)
      n = (int)sizeof line - 1;
    if (n >= 0)
      fprintf(stderr, "sstfs: %.*s\n", n, line);
  } else {
    vsyslog(LOG_ERR, fmt, ap);
  }
  va_end(ap);
}

int sstfs_errno(int rc) {
  switch (rc) {
  case 0:
    return 0;
  case SST_ENOTFOUND:
    return ENOENT;
  case SST_ECORRUPT:
  case SST_ECHECKSUM:
  case SST_ETRUNCATED:
    return EIO;
  case SST_EINVAL:
  case SST_EKEYSIZE:
    return EINVAL;
  default:
    return rc > 0 ? rc : EIO;
  }
}

DIR *sstfs_opendirat(int dirfd, const char *name) {
  int fd = openat(dirfd, *name ? name : ".",
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int err = errno;
    close(fd);
    errno = err;
  }
  return d;
}
