/* ro.h — the read-only mount's state and FUSE operations (fs/ro.c). */
#ifndef SSTFS_RO_H
#define SSTFS_RO_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <time.h>

#include "sstable.h"
#include "sstpath.h"

#define CACHE_SECONDS 86400.0 /* the table never changes under the mount */

#define MAX_TABLES 64

typedef struct config {
  char *args[MAX_TABLES + 1]; /* TABLE... MOUNTPOINT, as given */
  int nargs;
  int flat;
  unsigned uid, gid, umask;
  int have_uid, have_gid, have_umask;
  char *block_cache; /* -o block_cache=SIZE: decompressed pieces kept */
  char *cache_dir;   /* -o cache=DIR: blocks of tables behind URLs */
  char *cache_size;  /* -o cache_size=SIZE: the bound of cache_dir */
  int threads;       /* -o threads: a pool of threads for local tables too */
  int show_help, show_version;
} config;

/* Values whose checksum has been checked, and bad ones already logged:
 * small direct-mapped tables of value offsets (plus one; 0 is empty), so
 * memory stays flat whatever is read. A value that falls out is simply
 * checked again. */
#define CHECKED_SLOTS 4096
/* Values up to this size are read with pread and sent from a buffer on the
 * stack: libfuse would not splice them anyway (it copies replies under two
 * pages through a page-aligned allocation of its own, which scatters the
 * heap), and reading them whole lets each read check the bytes it sends. */
#define SMALL_VALUE 8192
#define LISTED_SLOTS 4096
#define LOGGED_SLOTS 256

typedef struct sstfs {
  sst_reader *readers[MAX_TABLES]; /* the stack: readers[n - 1] on top */
  size_t n;
  sst_tree *tree;
  config conf;
  struct timespec mtime;
  int no_open;    /* opens answered ENOSYS: never sent again */
  int no_opendir; /* the same for opens of directories */
  int xattrs;     /* some table's entries carry xattrs (SST_FEATURE_XATTRS) */
  uint64_t checked[CHECKED_SLOTS];
  uint64_t listed[LISTED_SLOTS]; /* directories opened before (opendir) */
  uint64_t logged[LOGGED_SLOTS];
} sstfs;

/* The low-level operations; the session's userdata is an sstfs. */
extern const struct fuse_lowlevel_ops sstfs_ops;

/* Runs what requests run, without a request: from the root down, the
 * lookups of the first names (at most 64) until it has read a small value
 * and a byte of a compressed large one the way op_read does, then empties
 * the readers' caches. A daemon calls it after it has detached, before it
 * serves any request: a forked process does not inherit the mapping of
 * code pages, so after a drop of the page cache its first lookup and read
 * waited for several pages of code from disk (docs/BENCHMARKS.md). Reads
 * the table: not for tables behind URLs. */
void sstfs_rehearse(sstfs *fs);

#endif
