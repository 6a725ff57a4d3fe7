/* ro.c — the read-only mount: every key a file, its value the
 * content; keys with '/' form directories (docs/PATHS.md).
 *
 * This file turns library results into errno values and FUSE replies and
 * nothing else: names and inode numbers come from sst_tree (core/path.c),
 * bytes straight from the reader's mapping. Every op replies exactly once.
 */
#include "ro.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "spill.h"

static sstfs *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

/* Attributes. A node without metadata (every node of a table from
 * `sst build`, a directory implied by its keys) is owned by -o uid/gid
 * (default: who mounts), 0444 or 0555, with the table's mtime. A node
 * with metadata shows what was stored: mode (setuid, setgid and sticky
 * included), owner unless -o uid/gid say otherwise, mtime (also as atime
 * and ctime), and a file's link count. -o umask applies to both, except
 * to symlinks, whose mode means nothing. */
static void fill_attr(const sstfs *fs, const sst_node *n, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_uid = fs->conf.uid;
  st->st_gid = fs->conf.gid;
  st->st_atim = st->st_mtim = st->st_ctim = fs->mtime;
  st->st_blksize = 65536;
  st->st_nlink = 1; /* directories: unknown, so tools do not guess
                       subdirectories from it */
  mode_t perm;
  if (n->is_dir) {
    st->st_mode = S_IFDIR;
    perm = 0555;
  } else {
    st->st_mode = n->type == SST_TYPE_SYMLINK ? S_IFLNK : S_IFREG;
    perm = 0444;
    st->st_size = (off_t)n->entry.value_len;
    st->st_blocks = (blkcnt_t)((n->entry.value_len + 511) / 512);
  }
  if (n->entry.flags & SST_FLAG_META) {
    const sst_meta *m = &n->entry.meta;
    perm = m->mode & 07777;
    if (!fs->conf.have_uid)
      st->st_uid = m->uid;
    if (!fs->conf.have_gid)
      st->st_gid = m->gid;
    st->st_mtim.tv_sec = (time_t)m->mtime_sec;
    st->st_mtim.tv_nsec = (long)m->mtime_nsec;
    st->st_atim = st->st_ctim = st->st_mtim;
    if (!n->is_dir && m->nlink > 1)
      st->st_nlink = m->nlink;
  }
  if (n->type != SST_TYPE_SYMLINK)
    perm &= ~fs->conf.umask;
  st->st_mode |= perm;
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
  char shown[PATH_MAX + 256];
  if (sst_tree_describe(fs->tree, ino, shown, sizeof shown) != 0)
    snprintf(shown, sizeof shown, "%s: inode %llu",
             sst_reader_path(fs->readers[0]), (unsigned long long)ino);
  sstfs_log("%s: %s", shown, sst_strerror(rc));
}

static size_t slot_of(uint64_t offset, size_t slots) {
  return (size_t)((offset * 0x9E3779B97F4A7C15ull) >> 40) % slots;
}

/* What the checked and logged slots record of a value: unique in the
 * stack of tables, never 0. */
static uint64_t value_tag(const sstfs *fs, const sst_entry *e) {
  uint64_t where = e->value_offset;
  if (e->flags & SST_FLAG_PACKED) /* offset in its block: add the block */
    where = e->value_block << 24 ^ e->value_offset ^ 1ull << 62;
  return where * fs->n + e->source + 1;
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
  /* Symlink targets never change: the kernel may keep them. */
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
    conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  fs->xattrs = 0;
  for (size_t i = 0; i < fs->n; i++) {
    sst_info info;
    sst_reader_info(fs->readers[i], &info);
    fs->xattrs |= (info.features & SST_FEATURE_XATTRS) != 0;
  }
  conn->max_readahead = 1u << 20;
  /* libfuse sizes requests (max_pages) from max_write: this lets reads
   * be 1 MiB, not 128 KiB, though nothing is ever written. */
  conn->max_write = 1u << 20;
  /* Opens of files then never reach the daemon: the kernel keeps their
   * pages cached (FOPEN_KEEP_CACHE is the no-open default), and reads
   * check values themselves. Nor do opens of directories, where the
   * kernel allows it: see op_opendir. */
  if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
    conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
  fs->no_open = (conn->want & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
    conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
  fs->no_opendir = (conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
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
    fuse_reply_err(req, sstfs_errno(rc));
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
    fuse_reply_err(req, sstfs_errno(rc));
    return;
  }
  struct stat st;
  fill_attr(fs, &n, &st);
  fuse_reply_attr(req, &st, CACHE_SECONDS);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
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
  /* A value stored compressed is checked piece by piece as it is read. */
  if (rc == 0 && !(n.entry.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)))
    rc = check_value(fs, ino, &n.entry);
  if (rc) {
    fuse_reply_err(req, sstfs_errno(rc));
  } else if (fs->no_open) {
    fuse_reply_err(req, ENOSYS); /* success, and no more opens */
  } else {
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
  }
}

/* The reply buffer of each worker thread (listings, and reads of
 * compressed values that sst_reader_read_spans does not take: over more
 * than SST_SPAN_MAX chunks, or plain values behind a URL) is kept from
 * one request to the next: the kernel asks for up
 * to max_pages (here 1 MiB), and a buffer that large allocated per
 * request would be mapped and unmapped about once per directory of a
 * find. One larger than SST_TBUF_KEEP is freed once its reply is sent
 * (thread_buf_done): kept, each thread would come to hold the pages of
 * the largest read it ever served. */
static char *thread_buf(size_t size) {
  return sst_thread_buf(SST_TBUF_REPLY, size);
}
static void thread_buf_done(void) { sst_thread_buf_done(SST_TBUF_REPLY); }

/* Replies a failed read: a value found damaged is logged first. */
static void reply_read_error(sstfs *fs, fuse_req_t req, fuse_ino_t ino,
                             const sst_entry *e, int rc) {
  if (rc == SST_ECHECKSUM || rc == SST_ECORRUPT)
    value_failed(fs, ino, e, rc);
  fuse_reply_err(req, sstfs_errno(rc));
}

/* A value stored compressed: the reader decompresses and checks the
 * block or chunks the read touches (each once, then from its cache). */
static void read_apart(sstfs *fs, fuse_req_t req, fuse_ino_t ino,
                       const sst_entry *e, size_t size, off_t off) {
  if (off < 0 || (uint64_t)off >= e->value_len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  if (size > e->value_len - (uint64_t)off)
    size = (size_t)(e->value_len - (uint64_t)off);
  const sst_reader *r = fs->readers[e->source];
  /* Replied from the reader's cache, where the pieces are decompressed
   * anyway: no reply buffer of the thread's, and no copy. */
  sst_spans sp;
  size_t got = 0;
  int rc = sst_reader_read_spans(r, e, (uint64_t)off, size, &sp, &got);
  if (rc == 0) {
    struct iovec iov[SST_SPAN_MAX];
    for (int k = 0; k < sp.count; k++) {
      iov[k].iov_base = (void *)sp.span[k].data;
      iov[k].iov_len = sp.span[k].len;
    }
    fuse_reply_iov(req, iov, sp.count);
    sst_reader_release(r, &sp);
    return;
  }
  if (rc != SST_ENOSPANS) {
    reply_read_error(fs, req, ino, e, rc);
    return;
  }
  char *buf = thread_buf(size ? size : 1);
  rc = buf ? sst_reader_read(r, e, (uint64_t)off, buf, size, &got) : ENOMEM;
  if (rc)
    reply_read_error(fs, req, ino, e, rc);
  else
    fuse_reply_buf(req, buf, got);
  thread_buf_done();
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
      fuse_reply_err(req, sstfs_errno(rc));
    else if (off < 0 || (uint64_t)off >= n.entry.value_len)
      fuse_reply_buf(req, NULL, 0);
    else {
      size_t rest = (size_t)(n.entry.value_len - (uint64_t)off);
      fuse_reply_buf(req, (const char *)buf + off, rest < size ? rest : size);
    }
    return;
  }
  if (rc == 0 && (n.entry.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))) {
    read_apart(fs, req, ino, &n.entry, size, off);
    return;
  }
  if (rc == 0)
    rc = check_value(fs, ino, &n.entry);
  if (rc) {
    fuse_reply_err(req, sstfs_errno(rc));
    return;
  }
  int fd = sst_reader_fd(fs->readers[n.entry.source]);
  if (fd < 0) { /* a table behind a URL: through the reader's cache */
    read_apart(fs, req, ino, &n.entry, size, off);
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
  bv.buf[0].fd = fd;
  bv.buf[0].pos = (off_t)(n.entry.value_offset + (uint64_t)off);
  fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* ---- The rehearsal ---- */

struct next_child {
  char name[NAME_MAX + 1];
  uint64_t cookie; /* where the listing resumes after it */
  int called, found;
};

static int take_next(void *ctx, const char *name, const sst_node *node,
                     uint64_t next_cookie) {
  (void)node;
  struct next_child *nc = ctx;
  nc->called = 1;
  /* No snprintf: its code is not among a request's, and the daemon would
   * keep those pages of libc mapped for nothing. */
  size_t n = strlen(name);
  if (n < sizeof nc->name) {
    memcpy(nc->name, name, n + 1);
    nc->found = 1;
  }
  nc->cookie = next_cookie;
  return 1;
}

#define REHEARSE_DEPTH 16
#define REHEARSE_NAMES 64

void sstfs_rehearse(sstfs *fs) {
  struct {
    uint64_t dir, cookie; /* cookie UINT64_MAX: listed to the end */
  } st[REHEARSE_DEPTH] = {{SST_TREE_ROOT, 0}};
  int depth = 0, small = 0, large = 0;
  for (int names = 0; depth >= 0 && names < REHEARSE_NAMES && !(small && large);
       names++) {
    struct next_child nc = {.called = 0};
    if (st[depth].cookie == UINT64_MAX ||
        sst_tree_list(fs->tree, st[depth].dir, st[depth].cookie, take_next,
                      &nc) != 0 ||
        !nc.called) {
      depth--;
      continue;
    }
    st[depth].cookie = nc.cookie;
    sst_node n;
    struct fuse_entry_param ep;
    if (!nc.found || sst_tree_lookup(fs->tree, st[depth].dir, nc.name, &n) ||
        sst_tree_stat(fs->tree, n.ino, &n))
      continue;
    fill_entry(fs, &n, &ep);
    if (n.is_dir) {
      if (depth + 1 < REHEARSE_DEPTH) {
        depth++;
        st[depth].dir = n.ino;
        st[depth].cookie = 0;
      }
      continue;
    }
    const sst_reader *r = fs->readers[n.entry.source];
    if (n.type != SST_TYPE_FILE || n.entry.value_len == 0) {
      continue;
    } else if (n.entry.value_len <= SMALL_VALUE && !small) {
      uint8_t buf[SMALL_VALUE]; /* as op_read reads it */
      small = 1;
      (void)sst_reader_value_pread(r, &n.entry, buf);
    } else if (n.entry.value_len > SMALL_VALUE && !large &&
               (n.entry.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))) {
      sst_spans sp;
      size_t got;
      large = 1;
      if (sst_reader_read_spans(r, &n.entry, 0, 1, &sp, &got) == 0)
        sst_reader_release(r, &sp);
    }
  }
  /* A first read of those files reads as any other. */
  for (size_t i = 0; i < fs->n; i++)
    sst_reader_drop_cache(fs->readers[i]);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  sstfs *fs = fs_of(req);
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc == 0 && n.type != SST_TYPE_SYMLINK)
    rc = EINVAL;
  if (rc == 0 && n.entry.value_len >= PATH_MAX)
    rc = ENAMETOOLONG; /* no symlink has such a target: a crafted table */
  char target[PATH_MAX];
  if (rc == 0) {
    rc = sst_reader_value_pread(fs->readers[n.entry.source], &n.entry, target);
    if (rc)
      value_failed(fs, ino, &n.entry, rc);
  }
  if (rc) {
    fuse_reply_err(req, sstfs_errno(rc));
    return;
  }
  target[n.entry.value_len] = '\0';
  fuse_reply_readlink(req, target);
}

/* Extended attributes. The encoded list of a node is read only here,
 * never by lookup, getattr or a listing. A mount of tables none of whose
 * entries has any answers ENOSYS, as it did before tables could hold
 * them: the kernel then answers EOPNOTSUPP itself and stops asking, and
 * `ls -l`, which asks for two attributes of every file, makes no round
 * trip for them. */

/* The node's encoded attributes in *buf (malloc'ed; NULL and *len 0 when
 * it has none): 0 or an errno value. */
static int read_xattrs(sstfs *fs, fuse_ino_t ino, uint8_t **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc)
    return sstfs_errno(rc);
  if (!(n.entry.flags & SST_FLAG_META) || n.entry.meta.xattr_len == 0)
    return 0;
  if (n.entry.meta.xattr_len > SST_XATTRS_MAX)
    return EIO;
  if ((*buf = malloc(n.entry.meta.xattr_len)) == NULL)
    return ENOMEM;
  rc = sst_reader_xattrs(fs->readers[n.entry.source], &n.entry, *buf);
  if (rc) {
    value_failed(fs, ino, &n.entry, rc);
    free(*buf);
    *buf = NULL;
    return sstfs_errno(rc);
  }
  *len = n.entry.meta.xattr_len;
  return 0;
}

/* Replies with data (len bytes) to a request for size bytes: its size
 * when size is 0, ERANGE when it does not fit. */
static void reply_sized(fuse_req_t req, const void *data, size_t len,
                        size_t size) {
  if (size == 0)
    fuse_reply_xattr(req, len);
  else if (size < len)
    fuse_reply_err(req, ERANGE);
  else
    fuse_reply_buf(req, data, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size) {
  sstfs *fs = fs_of(req);
  if (!fs->xattrs) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  uint8_t *buf;
  size_t len, pos = 0, name_len = strlen(name);
  int rc = read_xattrs(fs, ino, &buf, &len);
  if (rc == 0 && len == 0)
    rc = ENODATA;
  sst_xattr x;
  while (rc == 0) {
    int more = sst_xattrs_next(buf, len, &pos, &x);
    if (more < 0) {
      rc = EIO;
      sstfs_log("%s: inode %llu: damaged extended attributes",
                sst_reader_path(fs->readers[0]), (unsigned long long)ino);
    } else if (more == 0) {
      rc = ENODATA;
    } else if (x.name_len == name_len && memcmp(x.name, name, name_len) == 0) {
      reply_sized(req, x.value, x.value_len, size);
      free(buf);
      return;
    }
  }
  free(buf);
  fuse_reply_err(req, rc);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  sstfs *fs = fs_of(req);
  if (!fs->xattrs) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  uint8_t *buf;
  size_t len;
  int rc = read_xattrs(fs, ino, &buf, &len);
  if (rc) {
    fuse_reply_err(req, rc);
    return;
  }
  /* The names, each followed by a NUL: fewer bytes than their encoding
   * (which has a length before each name and a value after it). */
  char *names = len ? malloc(len) : NULL;
  size_t pos = 0, used = 0;
  sst_xattr x;
  int more = 0;
  if (len && names == NULL) {
    free(buf);
    fuse_reply_err(req, ENOMEM);
    return;
  }
  while (len && (more = sst_xattrs_next(buf, len, &pos, &x)) > 0) {
    if (used + x.name_len + 1 > len) {
      more = -1;
      break;
    }
    memcpy(names + used, x.name, x.name_len);
    used += x.name_len;
    names[used++] = '\0';
  }
  if (more < 0) {
    sstfs_log("%s: inode %llu: damaged extended attributes",
              sst_reader_path(fs->readers[0]), (unsigned long long)ino);
    fuse_reply_err(req, EIO);
  } else {
    reply_sized(req, names, used, size);
  }
  free(names);
  free(buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi) {
  sstfs *fs = fs_of(req);
  /* The first opening of a directory answers ENOSYS, and the kernel then
   * opens directories without asking and keeps their listings cached
   * (FOPEN_CACHE_DIR is its no-opendir default). A cold find makes 45%
   * fewer requests (no OPENDIR and RELEASEDIR a directory): on
   * /usr/include 123 ms against 152, warm 41 against 139; filling the
   * cache costs a little on directories of a thousand names (137 ms
   * against 133 cold over 100 of them, 73 against 130 warm). */
  if (fs->no_opendir) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  sst_node n;
  int rc = sst_tree_stat(fs->tree, ino, &n);
  if (rc == 0 && !n.is_dir)
    rc = ENOTDIR;
  if (rc) {
    fuse_reply_err(req, sstfs_errno(rc));
    return;
  }
  /* Kernels without that (before Linux 5.1): a directory is cached from
   * its second opening on; caching every listing from the first opening
   * on made a find over a fresh mount take 40% longer when it was
   * measured with an OPENDIR for every directory. The record of openings is a
   * fixed, lossy table: a directory whose slot was taken by another one is
   * simply listed uncached once more. */
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

static int dir_add(dirbuf *d, const char *name, const sst_node *n, off_t next) {
  size_t room = d->size - d->used, need;
  if (d->plus) {
    struct fuse_entry_param e;
    fill_entry(d->fs, n, &e);
    need =
        fuse_add_direntry_plus(d->req, d->buf + d->used, room, name, &e, next);
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
  if ((d.buf = thread_buf(size ? size : 1)) == NULL) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  int rc = 0;
  sst_node self = {.ino = ino, .is_dir = 1, .type = SST_TYPE_DIR};
  if (off == 0 && dir_add(&d, ".", &self, 1))
    goto reply;
  if (off <= 1 && dir_add(&d, "..", &self, 2))
    goto reply;
  if (off != OFF_END)
    rc = sst_tree_list(fs->tree, ino, off <= 2 ? 0 : (uint64_t)off,
                       dir_add_child, &d);
reply:
  if (rc && d.used == 0)
    fuse_reply_err(req, sstfs_errno(rc));
  else
    fuse_reply_buf(req, d.buf, d.used);
  thread_buf_done();
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
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
static void erofs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  (void)parent, (void)name;
  fuse_reply_err(req, EROFS);
}
static void erofs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                          const char *name) {
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

const struct fuse_lowlevel_ops sstfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .open = op_open,
    .read = op_read,
    .readlink = op_readlink,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
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
