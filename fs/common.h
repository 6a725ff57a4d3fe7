/* common.h — what the read-only and the staging daemons share: the log,
 * library codes as errno values (at this edge only), and the option keys
 * both command lines know. */
#ifndef SSTFS_COMMON_H
#define SSTFS_COMMON_H

#include <dirent.h>

/* Where sstfs_log writes: stderr with "sstfs: " in front (foreground), or
 * syslog at LOG_ERR. Set once at start-up, before any thread. */
void sstfs_log_init(int foreground);

/* One log line (no newline needed). Safe from any thread. */
void sstfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A library result (0, an errno value, or an SST_E* code) as an errno
 * value: SST_ENOTFOUND is ENOENT, damage is EIO, SST_EINVAL and
 * SST_EKEYSIZE are EINVAL, any other code EIO. */
int sstfs_errno(int rc);

/* opendir of name, relative to dirfd ("" or "." for dirfd itself),
 * never through a symbolic link. NULL with errno set on failure. */
DIR *sstfs_opendirat(int dirfd, const char *name);

/* The keys of the options that both command lines take (fuse_opt). */
enum { SSTFS_KEY_HELP = 100, SSTFS_KEY_VERSION, SSTFS_KEY_STAGE };

#define SSTFS_HELP_OPTS                                                        \
  FUSE_OPT_KEY("-h", SSTFS_KEY_HELP), FUSE_OPT_KEY("--help", SSTFS_KEY_HELP)

#endif
