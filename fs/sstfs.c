/* sstfs — mount an SSTable read-only: every key a file, its value the
 * content; keys with '/' form directories (docs/PATHS.md).
 *
 * This file turns library results into errno values and FUSE replies and
 * nothing else: names and inode numbers come from sst_tree (core/path.c),
 * bytes straight from the reader's mapping. Every op replies exactly once.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "sstable.h"
#include "sstpath.h"
#include "daemon.h"
#include "uring.h"
#include "stage.h"

#define CACHE_SECONDS 86400.0 /* the table never changes under the mount */

#define MAX_TABLES 64

typedef struct config {
  char *args[MAX_TABLES + 1]; /* TABLE... MOUNTPOINT, as given */
  int nargs;
  int flat;
  unsigned uid, gid, umask;
  int have_uid, have_gid, have_umask;
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
  int foreground;
  int no_open; /* opens answered ENOSYS: never sent again */
  uint64_t checked[CHECKED_SLOTS];
  uint64_t listed[LISTED_SLOTS]; /* directories opened before (opendir) */
  uint64_t logged[LOGGED_SLOTS];
} sstfs;

static sstfs *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

static void log_msg(const sstfs *fs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_msg(const sstfs *fs, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (fs->foreground) {
    fprintf(stderr, "sstfs: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  } else {
    vsyslog(LOG_ERR, fmt, ap);
  }
  va_end(ap);
}

/* Library codes to errno values, at this edge only. */
static int to_errno(int rc) {
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

static void fill_attr(const sstfs *fs, const sst_node *n, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_uid = fs->conf.uid;
  st->st_gid = fs->conf.gid;
  st->st_atim = st->st_mtim = st->st_ctim = fs->mtime;
  st->st_blksize = 65536;
  if (n->is_dir) {
    st->st_mode = S_IFDIR | (0555 & ~fs->conf.umask);
    st->st_nlink = 1; /* unknown: tools then do not guess subdirectories */
  } else {
    st->st_mode = S_IFREG | (0444 & ~fs->conf.umask);
    st->st_nlink = 1;
    st->st_size = (off_t)n->entry.value_len;
    st->st_blocks = (blkcnt_t)((n->entry.value_len + 511) / 512);
  }
}

static void fill_entry(const sstfs *fs, const sst_node *n,
                       struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->ino = n->ino;
  e->attr_timeout = CACHE_SECONDS;
  e->entry_timeout = CACHE_SECONDS;
  fill_attr(fs, n, &e->attr);
}

/* Names the key behind a file inode in a log line. */
static void log_bad_value(const sstfs *fs, fuse_ino_t ino, int rc) {
  char shown[200] = "?";
  sst_iter *it;
  const sst_reader *r = fs->readers[(ino >> 1) % fs->n];
  if (sst_iter_new(r, &it) == 0) {
    if (sst_iter_seek_position(it, (ino >> 1) / fs->n) == 0 &&
        sst_iter_valid(it)) {
      const sst_entry *e = sst_iter_entry(it);
      size_t o = 0;
      for (size_t i = 0; i < e->key_len && o + 5 < sizeof shown; i++) {
        unsigned char c = e->key[i];
        o += (size_t)snprintf(shown + o, sizeof shown - o,
                              c >= 0x20 && c < 0x7f && c != '\\' ? "%c"
                                                                 : "\\x%02x",
                              c);
      }
    }
    sst_iter_free(it);
  }
  log_msg(fs, "%s: key '%s': %s", sst_reader_path(r), shown,
          sst_strerror(rc));
}

static size_t slot_of(uint64_t offset, size_t slots) {
  return (size_t)((offset * 0x9E3779B97F4A7C15ull) >> 40) % slots;
}

/* What the checked and logged slots record of a value: unique in the
 * stack of tables, never 0. */
static uint64_t value_tag(const sstfs *fs, const sst_entry *e) {
  return e->value_offset * fs->n + e->source + 1;
}

/* A value that failed its check: one log line per value, whatever the
 * number of reads. Returns rc. */
static int value_failed(sstfs *fs, fuse_ino_t ino, const sst_entry *e, int rc) {
  uint64_t tag = value_tag(fs, e);
  uint64_t *logged = &fs->logged[slot_of(tag, LOGGED_SLOTS)];
  if (__atomic_exchange_n(logged, tag, __ATOMIC_RELAXED) != tag)
    log_bad_value(fs, ino, rc);
  return rc;
}

/* Checks an entry's value, once per value while it stays in the table. */
static int check_value(sstfs *fs, fuse_ino_t ino, const sst_entry *e) {
  uint64_t tag = value_tag(fs, e);
  uint64_t *slot = &fs->checked[slot_of(tag, CHECKED_SLOTS)];
  if (__atomic_load_n(slot, __ATOMIC_RELAXED) == tag)
    return 0;
  int rc = sst_reader_value_check(fs->readers[e->source], e);
  if (rc == 0) {
    __atomic_store_n(slot, tag, __ATOMIC_RELAXED);
    return 0;
  }
  return value_failed(fs, ino, e, rc);
}

/* Memory. Key blocks, filters and value checks read the table with pread
 * (reader option pread_blocks), not through its mapping: on Linux 6.18 a
 * touch of a mapped file maps the whole page-cache folio around it, up to
 * 2 MiB, and a listing of the whole table used to leave the daemon as
 * large as the table. Values go to the kernel by splice from the file. */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
  sstfs *fs = userdata;
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want |= FUSE_CAP_READDIRPLUS;
  /* Plus only when the reader also wants attributes (ls -l, not find). */
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
    conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  /* Value bytes move from the table file to the kernel by splice. */
  if (conn->capable & FUSE_CAP_SPLICE_WRITE)
    conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE)
    conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_ASYNC_READ)
    conn->want |= FUSE_CAP_ASYNC_READ;
  conn->max_readahead = 1u << 20;
  /* libfuse sizes requests (max_pages) from max_write: this lets reads
   * be 1 MiB, not 128 KiB, though nothing is ever written. */
  conn->max_write = 1u << 20;
  /* Opens of files then never reach the daemon: the kernel keeps their
   * pages cached (FOPEN_KEEP_CACHE is the no-open default), and reads
   * check values themselves. Opens of directories do reach it: see
   * op_opendir. */
  if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
    conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
  fs->no_open = (conn->want & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  sstfs *fs = fs_of(req);
  sst_node n;
  struct fuse_entry_param e;
  int rc = sst_tree_lookup(fs->tree, parent, name, &n);
  if (rc == SST_ENOTFOUND) {
    /* A negative entry with a timeout: the kernel caches the absence. */
    memset(&e, 0, sizeof e);
    e.entry_timeout = CACHE_SECONDS;
    fuse_reply_entry(req, &e);
    return;
  }
  if (rc) {
    fuse_reply_err(req, to_errno(rc));
    return;
  }
  fill_entry(fs, &n, &e);
  fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  (void)fi;
  sstfs *fs = fs_of(req);
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc) {
    fuse_reply_err(req, to_errno(rc));
    return;
  }
  struct stat st;
  fill_attr(fs, &n, &st);
  fuse_reply_attr(req, &st, CACHE_SECONDS);
}

static void op_open(fuse_req_t req, fuse_ino_t ino,
                    struct fuse_file_info *fi) {
  sstfs *fs = fs_of(req);
  if ((fi->flags & O_ACCMODE) != O_RDONLY ||
      (fi->flags & (O_TRUNC | O_APPEND))) {
    fuse_reply_err(req, EROFS);
    return;
  }
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc == 0 && n.is_dir)
    rc = EISDIR;
  if (rc == 0)
    rc = check_value(fs, ino, &n.entry);
  if (rc) {
    fuse_reply_err(req, to_errno(rc));
  } else if (fs->no_open) {
    fuse_reply_err(req, ENOSYS); /* success, and no more opens */
  } else {
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
  }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  (void)fi;
  sstfs *fs = fs_of(req);
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc == 0 && n.is_dir)
    rc = EISDIR;
  if (rc == 0 && n.entry.value_len <= SMALL_VALUE) {
    /* A small value is read whole and checked on the bytes served. */
    uint8_t buf[SMALL_VALUE];
    rc = sst_reader_value_pread(fs->readers[n.entry.source], &n.entry, buf);
    if (rc == SST_ECHECKSUM)
      value_failed(fs, ino, &n.entry, rc);
    if (rc)
      fuse_reply_err(req, to_errno(rc));
    else if (off < 0 || (uint64_t)off >= n.entry.value_len)
      fuse_reply_buf(req, NULL, 0);
    else {
      size_t rest = (size_t)(n.entry.value_len - (uint64_t)off);
      fuse_reply_buf(req, (const char *)buf + off, rest < size ? rest : size);
    }
    return;
  }
  if (rc == 0)
    rc = check_value(fs, ino, &n.entry);
  if (rc) {
    fuse_reply_err(req, to_errno(rc));
    return;
  }
  uint64_t len = n.entry.value_len;
  if (off < 0 || (uint64_t)off >= len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  uint64_t count = len - (uint64_t)off;
  if (count > size)
    count = size;
  /* Straight from the table file (spliced where the kernel can): no copy
   * of the value in the daemon, and its pages never enter the daemon's
   * resident set. */
  struct fuse_bufvec bv = FUSE_BUFVEC_INIT((size_t)count);
  bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  bv.buf[0].fd = sst_reader_fd(fs->readers[n.entry.source]);
  bv.buf[0].pos = (off_t)(n.entry.value_offset + (uint64_t)off);
  fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  sstfs *fs = fs_of(req);
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc == 0 && !n.is_dir)
    rc = ENOTDIR;
  if (rc) {
    fuse_reply_err(req, to_errno(rc));
    return;
  }
  /* The kernel can keep a directory's listing in its page cache, and then
   * lists it again without asking; but filling that cache costs about as
   * much as the listing itself (find over a fresh mount took 40% longer).
   * So a directory is cached from its second opening on: what is listed
   * once goes at full speed, what is listed again is served by the kernel.
   * The record of openings is a fixed, lossy table: a directory whose slot
   * was taken by another one is simply listed uncached once more. */
  uint64_t *slot = &fs->listed[slot_of(ino, LISTED_SLOTS)];
  if (__atomic_exchange_n(slot, (uint64_t)ino, __ATOMIC_RELAXED) == ino) {
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  fuse_reply_open(req, fi);
}

/* Directory offsets: 0 starts, 1 follows ".", 2 follows ".." and starts the
 * children; larger values are sst_tree cookies (positions in the table),
 * END ends. */
#define OFF_END INT64_MAX

typedef struct dirbuf {
  fuse_req_t req;
  sstfs *fs;
  char *buf;
  size_t size, used;
  int plus;
} dirbuf;

static int dir_add(dirbuf *d, const char *name, const sst_node *n,
                   off_t next) {
  size_t room = d->size - d->used, need;
  if (d->plus) {
    struct fuse_entry_param e;
    fill_entry(d->fs, n, &e);
    need = fuse_add_direntry_plus(d->req, d->buf + d->used, room, name, &e,
                                  next);
  } else {
    struct stat st;
    fill_attr(d->fs, n, &st);
    need = fuse_add_direntry(d->req, d->buf + d->used, room, name, &st, next);
  }
  if (need > room)
    return 1;
  d->used += need;
  return 0;
}

static int dir_add_child(void *ctx, const char *name, const sst_node *node,
                         uint64_t next_cookie) {
  off_t next = next_cookie == UINT64_MAX ? OFF_END : (off_t)next_cookie;
  return dir_add(ctx, name, node, next);
}

/* The kernel asks for the first batch of a directory with attributes
 * (readdirplus), and for later batches only if the reader looked at
 * entries of the batch before (ls -l does, find does not). Every entry
 * sent with attributes costs the kernel an inode, so the first batch is
 * kept small: a reader that never stats, like find, gets the rest as
 * plain names, and one that does gets attributes from the second on. */
#define FIRST_PLUS_BATCH 1024

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, int plus) {
  sstfs *fs = fs_of(req);
  if (plus && off == 0 && size > FIRST_PLUS_BATCH)
    size = FIRST_PLUS_BATCH;
  dirbuf d = {.req = req, .fs = fs, .size = size, .plus = plus};
  if ((d.buf = malloc(size)) == NULL) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  int rc = 0;
  sst_node self = {.ino = ino, .is_dir = 1};
  if (off == 0 && dir_add(&d, ".", &self, 1))
    goto reply;
  if (off <= 1 && dir_add(&d, "..", &self, 2))
    goto reply;
  if (off != OFF_END)
    rc = sst_tree_list(fs->tree, ino, off <= 2 ? 0 : (uint64_t)off,
                       dir_add_child, &d);
reply:
  if (rc && d.used == 0)
    fuse_reply_err(req, to_errno(rc));
  else
    fuse_reply_buf(req, d.buf, d.used);
  free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
                       off_t off, struct fuse_file_info *fi) {
  (void)fi;
  readdir_common(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi) {
  (void)fi;
  readdir_common(req, ino, size, off, 1);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  sstfs *fs = fs_of(req);
  uint64_t size = 0, keys = 0;
  for (size_t i = 0; i < fs->n; i++) {
    sst_info info;
    sst_reader_info(fs->readers[i], &info);
    size += info.file_size;
    keys += info.key_count - info.tombstone_count;
  }
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = (fsblkcnt_t)((size + 4095) / 4096);
  sv.f_files = (fsfilcnt_t)keys;
  sv.f_namemax = SST_NAME_MAX;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

/* Every change answers EROFS (the kernel usually does so first, since the
 * mount is read-only). */
static void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                          int to_set, struct fuse_file_info *fi) {
  (void)ino, (void)attr, (void)to_set, (void)fi;
  fuse_reply_err(req, EROFS);
}
static void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode, dev_t rdev) {
  (void)parent, (void)name, (void)mode, (void)rdev;
  fuse_reply_err(req, EROFS);
}
static void erofs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode) {
  (void)parent, (void)name, (void)mode;
  fuse_reply_err(req, EROFS);
}
static void erofs_unlink(fuse_req_t req, fuse_ino_t parent,
                         const char *name) {
  (void)parent, (void)name;
  fuse_reply_err(req, EROFS);
}
static void erofs_symlink(fuse_req_t req, const char *link,
                          fuse_ino_t parent, const char *name) {
  (void)link, (void)parent, (void)name;
  fuse_reply_err(req, EROFS);
}
static void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                         fuse_ino_t newparent, const char *newname,
                         unsigned int flags) {
  (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
  fuse_reply_err(req, EROFS);
}
static void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                       const char *newname) {
  (void)ino, (void)newparent, (void)newname;
  fuse_reply_err(req, EROFS);
}
static void erofs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                        size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino, (void)buf, (void)size, (void)off, (void)fi;
  fuse_reply_err(req, EROFS);
}
static void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                         mode_t mode, struct fuse_file_info *fi) {
  (void)parent, (void)name, (void)mode, (void)fi;
  fuse_reply_err(req, EROFS);
}
static void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                           const char *value, size_t size, int flags) {
  (void)ino, (void)name, (void)value, (void)size, (void)flags;
  fuse_reply_err(req, EROFS);
}
static void erofs_removexattr(fuse_req_t req, fuse_ino_t ino,
                              const char *name) {
  (void)ino, (void)name;
  fuse_reply_err(req, EROFS);
}
static void erofs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                            off_t offset, off_t length,
                            struct fuse_file_info *fi) {
  (void)ino, (void)mode, (void)offset, (void)length, (void)fi;
  fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops sstfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .open = op_open,
    .read = op_read,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .statfs = op_statfs,
    .setattr = erofs_setattr,
    .mknod = erofs_mknod,
    .mkdir = erofs_mkdir,
    .unlink = erofs_unlink,
    .rmdir = erofs_unlink,
    .symlink = erofs_symlink,
    .rename = erofs_rename,
    .link = erofs_link,
    .write = erofs_write,
    .create = erofs_create,
    .setxattr = erofs_setxattr,
    .removexattr = erofs_removexattr,
    .fallocate = erofs_fallocate,
};

static const char usage_text[] =
    "NAME\n"
    "    sstfs - mount an SSTable as a read-only directory tree\n"
    "\n"
    "SYNOPSIS\n"
    "    sstfs [OPTION]... TABLE... MOUNTPOINT\n"
    "    mount -t fuse.sstfs TABLE MOUNTPOINT [-o OPTION,...]\n"
    "    sstfs --stage OUT.sstable MOUNTPOINT [--base TABLE] (see --stage "
    "--help)\n"
    "    sstfs --unmount MOUNTPOINT\n"
    "    sstfs --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    Shows every key of TABLE as a file whose content is the key's value.\n"
    "    A '/' in a key separates directories. Keys that cannot be a path as\n"
    "    they stand (empty, '.' or '..' components, NUL bytes, components\n"
    "    over 255 bytes, a key that is also a directory) appear under escaped\n"
    "    names that begin with %=, %! or %+ (see docs/PATHS.md); every key is\n"
    "    reachable. The mount is read-only: changes fail with EROFS. A value\n"
    "    whose checksum does not match fails with EIO for that file only, and\n"
    "    is logged with its key.\n"
    "\n"
    "    With several TABLEs, they are stacked, the last on top: a key's\n"
    "    entry in the highest table that holds it wins, and a deletion\n"
    "    (tombstone) there hides it. See sst merge to fold them into one.\n"
    "\n"
    "    The table is opened and checked before the command returns: a\n"
    "    missing or damaged table or a bad mount point fails the command\n"
    "    and nothing is mounted. Unmount with `fusermount3 -u MOUNTPOINT`, or\n"
    "    send the daemon SIGTERM or SIGINT.\n"
    "\n"
    "OPTIONS\n"
    "    -f               stay in the foreground (log to stderr, not syslog)\n"
    "    -d               debug: foreground, and print every FUSE request\n"
    "    -s               serve requests on one thread\n"
    "    -o flat          every key at the top level, '/' escaped as %2F\n"
    "    -o uid=N,gid=N   owner of every file (default: who mounts)\n"
    "    -o umask=M       mode bits to clear (octal; files are 0444, dirs 0555)\n"
    "    -o allow_other   let other users in (see /etc/fuse.conf)\n"
    "    -o OPT           any other FUSE mount option (see mount.fuse3(8))\n"
    "    -h, --help       show this help\n"
    "    -V, --version    show the version\n"
    "\n"
    "EXIT STATUS\n"
    "    0 when mounted (in the foreground: when unmounted cleanly), 1 on\n"
    "    error, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "    sstfs data.sstable /mnt/data && ls /mnt/data && fusermount3 -u "
    "/mnt/data\n"
    "    mount -t fuse.sstfs /srv/data.sstable /mnt/data -o allow_other\n"
    "    fstab: /srv/data.sstable /mnt/data fuse.sstfs ro,allow_other 0 0\n";

enum { KEY_HELP, KEY_VERSION };

#define CONF_OPT(t, p, v)                                                      \
  { t, offsetof(config, p), v }

static const struct fuse_opt conf_opts[] = {
    CONF_OPT("flat", flat, 1),
    CONF_OPT("uid=%u", uid, 0),
    CONF_OPT("uid=", have_uid, 1),
    CONF_OPT("gid=%u", gid, 0),
    CONF_OPT("gid=", have_gid, 1),
    CONF_OPT("umask=%o", umask, 0),
    CONF_OPT("umask=", have_umask, 1),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key,
                    struct fuse_args *outargs) {
  (void)outargs;
  config *c = data;
  switch (key) {
  case KEY_HELP:
    c->show_help = 1;
    return 0;
  case KEY_VERSION:
    c->show_version = 1;
    return 0;
  case FUSE_OPT_KEY_NONOPT:
    /* Tables and the mount point; the last is handed back to
     * fuse_parse_cmdline once all are known. */
    if (c->nargs > MAX_TABLES) {
      fprintf(stderr, "sstfs: at most %d tables can be stacked\n",
              MAX_TABLES);
      return -1;
    }
    c->args[c->nargs++] = strdup(arg);
    return 0;
  default:
    return 1;
  }
}

/* Adds "-o fsname=TABLE,subtype=sstfs,ro,default_permissions": the table
 * shows in mount(8) as the source, the mount as type fuse.sstfs. */
static int add_mount_opts(struct fuse_args *args, const char *table) {
  char *opts = NULL, *fsname = malloc(strlen(table) + 8);
  if (fsname == NULL)
    return -1;
  sprintf(fsname, "fsname=%s", table);
  int rc = fuse_opt_add_opt_escaped(&opts, fsname) ||
           fuse_opt_add_opt(&opts, "subtype=sstfs") ||
           fuse_opt_add_opt(&opts, "ro") ||
           fuse_opt_add_opt(&opts, "default_permissions") ||
           fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts);
  free(fsname);
  free(opts);
  return rc ? -1 : 0;
}

static void *idle_thread(void *arg) { return arg; }

/* libc binds the dynamic linker's TLS set-up (for a new stack, then for a
 * reused one) on the first thread it starts. Done in the daemon, after the
 * fork, that symbol lookup walks every loaded object's symbol tables and
 * maps their pages into it for good (docs/BENCHMARKS.md has the figure);
 * done once before the fork, the daemon inherits the bound address. */
static void bind_thread_start(void) {
  for (int round = 0; round < 2; round++) {
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
      return;
    pthread_join(t, NULL);
  }
}

int main(int argc, char *argv[]) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--stage") == 0)
      return sstfs_stage_main(argc, argv);
    if (strcmp(argv[i], "--unmount") == 0) {
      if (i + 1 >= argc || argc != 3) {
        fprintf(stderr, "usage: sstfs --unmount MOUNTPOINT\n");
        return 2;
      }
      return sstfs_unmount_main(argv[i + 1]);
    }
  }
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts opts = {0};
  struct fuse_session *se = NULL;
  /* Static: its slot tables are zero pages until used, instead of 64 KiB
   * of stack written at start-up that the daemon would inherit. */
  static sstfs fs;
  /* Buffers of 32 KiB and more (the scratch space of lookups, listing
   * buffers) get their own mappings, given back when freed. The heap grows
   * by no more than it needs (no top pad), so that such a buffer is never
   * carved from spare room at its top and left resident there. One arena
   * serves all worker threads: their small allocations go through each
   * thread's cache without the lock anyway, and every extra arena would
   * keep pages of its own resident. */
  mallopt(M_MMAP_THRESHOLD, 32 << 10);
  mallopt(M_TOP_PAD, 0);
  mallopt(M_ARENA_MAX, 1);
  int status = 1, rc;

  if (fuse_opt_parse(&args, &fs.conf, conf_opts, opt_proc) != 0) {
    status = 2;
    goto out_args;
  }
  if (fs.conf.show_help) {
    fputs(usage_text, stdout);
    status = 0;
    goto out_args;
  }
  if (fs.conf.show_version) {
    printf("sstfs " SST_VERSION_STRING
           " (table format %d, FUSE %s, staging over io_uring: %s)\n",
           SST_FORMAT_VERSION, fuse_pkgversion(),
           sstfs_uring_built() ? "yes" : "no");
    status = 0;
    goto out_args;
  }
  if (fs.conf.nargs < 2) {
    fprintf(stderr, "usage: sstfs [OPTION]... TABLE... MOUNTPOINT\n"
                    "Try 'sstfs --help' for more information.\n");
    status = 2;
    goto out_args;
  }
  /* A bad mount point is an error (1), not a usage error. */
  if (sstfs_check_mountpoint(fs.conf.args[fs.conf.nargs - 1]) != 0)
    goto out_args;
  if (fuse_opt_add_arg(&args, fs.conf.args[fs.conf.nargs - 1]) != 0 ||
      fuse_parse_cmdline(&args, &opts) != 0 || opts.mountpoint == NULL) {
    status = 2;
    goto out_opts;
  }
  if (!fs.conf.have_uid)
    fs.conf.uid = getuid();
  if (!fs.conf.have_gid)
    fs.conf.gid = getgid();
  fs.foreground = opts.foreground;

  /* Open and check every table before anything is mounted. */
  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.release_pages = 1; /* keep the daemon small whatever is read */
  ro.pread_blocks = 1;
  char table[PATH_MAX], first[PATH_MAX];
  for (int i = 0; i < fs.conf.nargs - 1; i++) {
    const char *arg = fs.conf.args[i];
    sst_error err;
    if (realpath(arg, table) == NULL) {
      fprintf(stderr, "sstfs: %s: %s\n", arg, strerror(errno));
      goto out_reader;
    }
    if ((rc = sst_reader_open(table, &ro, &fs.readers[fs.n], &err)) != 0) {
      fprintf(stderr, "sstfs: %s\n", err.msg);
      goto out_reader;
    }
    fs.n++;
    /* Times: the newest table's. */
    struct stat st;
    if (stat(table, &st) == 0 &&
        (st.st_mtim.tv_sec > fs.mtime.tv_sec ||
         (st.st_mtim.tv_sec == fs.mtime.tv_sec &&
          st.st_mtim.tv_nsec > fs.mtime.tv_nsec)))
      fs.mtime = st.st_mtim;
    if (i == 0)
      snprintf(first, sizeof first, "%s", table);
  }
  if ((rc = sst_tree_open_stack((const sst_reader *const *)fs.readers, fs.n,
                                fs.conf.flat ? SST_PATH_FLAT : 0,
                                &fs.tree)) != 0) {
    fprintf(stderr, "sstfs: %s: %s\n", first, sst_strerror(rc));
    goto out_reader;
  }
  if (add_mount_opts(&args, first) != 0) {
    fprintf(stderr, "sstfs: out of memory\n");
    goto out_tree;
  }

  se = fuse_session_new(&args, &sstfs_ops, sizeof sstfs_ops, &fs);
  if (se == NULL)
    goto out_tree;
  if (fuse_set_signal_handlers(se) != 0)
    goto out_session;
  if (fuse_session_mount(se, opts.mountpoint) != 0)
    goto out_signals;
  if (!opts.foreground)
    openlog("sstfs", LOG_PID, LOG_DAEMON);
  if (!opts.singlethread && !opts.foreground)
    bind_thread_start();
  if (sstfs_daemonize(opts.foreground) != 0)
    goto out_unmount;

  if (opts.singlethread) {
    rc = fuse_session_loop(se);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (lc == NULL) {
      rc = -1;
    } else {
      fuse_loop_cfg_set_clone_fd(lc, opts.clone_fd);
      fuse_loop_cfg_set_max_threads(lc, opts.max_threads);
      if (opts.max_idle_threads != UINT_MAX) /* UINT_MAX: not given */
        fuse_loop_cfg_set_idle_threads(lc, opts.max_idle_threads);
      rc = fuse_session_loop_mt(se, lc);
      fuse_loop_cfg_destroy(lc);
    }
  }
  /* A loop ended by SIGTERM, SIGINT or SIGHUP returns the signal number:
   * that is a clean unmount too. */
  status = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
out_unmount:
  fuse_session_unmount(se);
out_signals:
  fuse_remove_signal_handlers(se);
out_session:
  fuse_session_destroy(se);
out_tree:
  sst_tree_close(fs.tree);
out_reader:
  for (size_t i = 0; i < fs.n; i++)
    sst_reader_close(fs.readers[i]);
out_opts:
  free(opts.mountpoint);
out_args:
  for (int i = 0; i < fs.conf.nargs; i++)
    free(fs.conf.args[i]);
  fuse_opt_free_args(&args);
  return status;
}
