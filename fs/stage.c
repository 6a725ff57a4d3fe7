/* stage.c — the staging mount: a writable tree that becomes a table.
 *
 * `sstfs --stage OUT MOUNTPOINT` keeps what is written in a staging area
 * beside OUT (OUT.stage/, or -o stagedir=DIR):
 *
 *   target      what the stage is for: OUT and the base table, if any
 *   tree/       the files written, as ordinary files under their names,
 *               with the modes and owners the mount shows
 *   whiteouts/  with --base: a regular file at P hides the base's P and
 *               everything under it
 *   tmp/        copies of base files in progress
 *   writing/    a marker per file open for writing (fs/area.h); on
 *               resume such files go to incomplete/ (incomplete.list)
 *   lock        flock'ed by the daemon;  pid  the daemon's pid
 *   error       why the last mount ended without writing OUT
 *   written     OUT as this area last wrote it (a commit replaces no
 *               other OUT without -o overwrite)
 *   mountpoint  where it was last mounted (for sstfs --unmount)
 *
 * OUT.lock beside OUT is flock'ed too, so that two areas never stage one
 * OUT.
 *
 * With --base TABLE the mount shows the base table's tree with the staged
 * changes over it (as overlayfs does): untouched base files are read from
 * the base table; a base file is copied into tree/ only when it is opened
 * for writing, truncated or renamed.
 *
 * When the mount is unmounted, the union of tree/ and the base becomes OUT
 * through the library's writer (temporary file, fsync, rename), and the
 * staging area is removed. If the commit fails, or a signal stopped the
 * daemon (which then commits nothing), the area stays, with the reason in
 * `error`, and `sstfs --stage ... -o resume` picks it up again. An fsync
 * of the mount's root (`sync MOUNTPOINT`) writes OUT the same way while
 * the mount goes on. Names map to keys through the same codec as
 * the read-only mount (docs/PATHS.md).
 *
 * The daemon uses libfuse's path-based API: staging is dominated by writes,
 * and paths map directly onto the staging tree.
 */
#define FUSE_USE_VERSION 312

#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sstable.h"
#include "sstpath.h"
#include "area.h"
#include "daemon.h"
#include "uring.h"

#define MAX_BASES 64

typedef struct stage_conf {
  char *out, *stagedir;
  char *bases[MAX_BASES];
  int nbases;
  char *mnt_arg; /* MOUNTPOINT as given */
  int overwrite, resume, delta, nouring, keep_incomplete;
  int show_help;
} stage_conf;

typedef struct stage {
  stage_conf conf;
  char out[PATH_MAX], dir[PATH_MAX], mnt[PATH_MAX];
  int dir_fd, tree_fd, wh_fd, tmp_fd, writing_fd;
  int lock_fd;     /* flock'ed while a daemon uses the area (see lock_area) */
  int out_lock_fd; /* OUT.lock, flock'ed likewise (area_lock_out) */
  int created;     /* this run made the area: a failed start removes it */
  int is_root;     /* the daemon can give what it stages to its users */
  /* The base: tables stacked, the last on top (one --base each). */
  sst_reader *base[MAX_BASES];
  char base_path[MAX_BASES][PATH_MAX];
  size_t nbase;
  sst_tree *base_tree;
  int foreground;
} stage;

/* One staging mount per process (zeroed, so it takes no room in the
 * binary). */
static stage S;

/* Taken shared by every operation that changes the staging area, and
 * exclusively by a commit while mounted (st_fsyncdir), so that such a
 * commit sees no change half done. A commit waits for the changes under
 * way, not for every later one: the lock prefers writers. */
static pthread_rwlock_t stage_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (S.foreground) {
    fputs("sstfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  } else {
    vsyslog(LOG_ERR, fmt, ap);
  }
  va_end(ap);
}

/* "/a/b" -> "a/b"; "/" -> "." (for the *at calls). */
static const char *rel(const char *path) {
  return path[1] ? path + 1 : ".";
}

/* libfuse renames a file that is unlinked while open to
 * DIR/.fuse_hiddenNNNN, and unlinks that at the last close. Such files are
 * kept in tmp/, out of the tree: never listed, never committed, never in
 * the way of an rmdir. at() says where a path lives: its directory fd and
 * the name relative to it. */
#define HIDDEN_PREFIX ".fuse_hidden"

static int is_hidden_path(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strncmp(base, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) == 0;
}

static int at(const char *path, const char **name) {
  if (is_hidden_path(path)) {
    *name = strrchr(path, '/') + 1;
    return S.tmp_fd;
  }
  *name = rel(path);
  return S.tree_fd;
}

static int to_errno(int rc) {
  if (rc == SST_ENOTFOUND)
    return ENOENT;
  if (rc < 0)
    return EIO;
  return rc;
}

/* Creates the parent directories of relpath under fd. */
static int make_parents(int fd, const char *relpath) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", relpath) >= (int)sizeof buf)
    return ENAMETOOLONG;
  for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdirat(fd, buf, 0755) != 0 && errno != EEXIST)
      return errno;
    *p = '/';
  }
  return 0;
}

/* Whether the base's entry at relpath is hidden: a whiteout at it or at
 * one of its ancestors. */
static int hidden(const char *relpath) {
  if (S.nbase == 0)
    return 1;
  if (strcmp(relpath, ".") == 0)
    return 0;
  char buf[PATH_MAX];
  size_t n = strlen(relpath);
  if (n >= sizeof buf)
    return 0; /* no whiteout can have a name this long */
  memcpy(buf, relpath, n + 1);
  for (char *p = buf;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      struct stat st;
      if (fstatat(S.wh_fd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode))
        return 1;
      if (c == '\0')
        return 0;
      *p = c;
    }
  }
}

/* The base's node at path, if visible. 0 or an errno value. */
static int base_node(const char *path, sst_node *n) {
  const char *r = rel(path);
  if (S.nbase == 0 || hidden(r))
    return ENOENT;
  memset(n, 0, sizeof *n);
  n->ino = SST_TREE_ROOT;
  n->is_dir = 1;
  if (strcmp(r, ".") == 0)
    return 0;
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", r);
  char *save;
  for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (!n->is_dir)
      return ENOTDIR;
    int rc = sst_tree_lookup(S.base_tree, n->ino, c, n);
    if (rc)
      return to_errno(rc);
  }
  return 0;
}

/* Records that the base's entry at relpath is gone. */
static int whiteout(const char *relpath) {
  int rc = make_parents(S.wh_fd, relpath);
  if (rc)
    return rc;
  struct stat st;
  if (fstatat(S.wh_fd, relpath, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode)) {
    /* Whiteouts below it are subsumed: replace the directory by a file. */
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s/whiteouts/%s", S.dir, relpath);
    pid_t pid = fork();
    if (pid == 0) {
      execlp("rm", "rm", "-rf", "--", cmd, (char *)NULL);
      _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0)
      return EIO;
  }
  int fd = openat(S.wh_fd, relpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  close(fd);
  return 0;
}

static int write_all(int fd, const uint8_t *p, uint64_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += w;
    n -= (uint64_t)w;
  }
  return 0;
}

/* Copies the base file at path into the tree (before a change to it). */
static int copy_up(const char *path, const sst_node *n) {
  const char *r = rel(path);
  const sst_reader *b = S.base[n->entry.source];
  int rc = sst_reader_value_check(b, &n->entry);
  if (rc) {
    log_msg("%s: base value of %s: %s", sst_reader_path(b), r,
            sst_strerror(rc));
    return EIO;
  }
  if ((rc = make_parents(S.tree_fd, r)) != 0)
    return rc;
  static unsigned long counter;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "copy.%ld.%lu", (long)getpid(),
           __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  int fd = openat(S.tmp_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0644);
  if (fd < 0)
    return errno;
  rc = write_all(fd, sst_reader_data(b) + n->entry.value_offset,
                 n->entry.value_len);
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc == 0 && renameat(S.tmp_fd, tmp, S.tree_fd, r) != 0)
    rc = errno;
  if (rc)
    unlinkat(S.tmp_fd, tmp, 0);
  return rc;
}

static void fill_base_stat(const sst_node *n, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_uid = getuid();
  st->st_gid = getgid();
  struct stat bst;
  if (fstat(S.dir_fd, &bst) == 0)
    st->st_atim = st->st_mtim = st->st_ctim = bst.st_mtim;
  if (n->is_dir) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_size = (off_t)n->entry.value_len;
    st->st_blocks = (blkcnt_t)((n->entry.value_len + 511) / 512);
  }
}

static int st_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = at(path, &name);
  if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (dfd != S.tree_fd)
    return -errno;
  if (errno != ENOENT)
    return -errno;
  sst_node n;
  int rc = base_node(path, &n);
  if (rc)
    return -rc;
  fill_base_stat(&n, st);
  return 0;
}

typedef struct list_ctx {
  const char *path;
  void *buf;
  fuse_fill_dir_t filler;
  int count;  /* entries seen (for emptiness checks) */
  int fill;   /* hand them to filler */
} list_ctx;

static int base_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)node, (void)next;
  list_ctx *l = ctx;
  char p[PATH_MAX];
  const char *r = rel(l->path);
  snprintf(p, sizeof p, "%s/%s", strcmp(r, ".") ? r : "", name);
  const char *child = p[0] == '/' ? p + 1 : p;
  struct stat st;
  if (fstatat(S.tree_fd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
      hidden(child))
    return 0; /* shadowed by a staged entry, or deleted */
  l->count++;
  if (l->fill)
    l->filler(l->buf, name, NULL, 0, 0);
  return 0;
}

/* Lists the union at path: staged entries, then visible base entries. */
static int list_union(list_ctx *l) {
  int fd = openat(S.tree_fd, rel(l->path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    DIR *d = fdopendir(fd);
    if (d == NULL) {
      close(fd);
      return errno;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      l->count++;
      if (l->fill)
        l->filler(l->buf, e->d_name, NULL, 0, 0);
    }
    closedir(d);
  } else if (errno != ENOENT) {
    return errno;
  }
  sst_node n;
  if (base_node(l->path, &n) == 0 && n.is_dir) {
    int rc = sst_tree_list(S.base_tree, n.ino, 0, base_child, l);
    if (rc)
      return to_errno(rc);
  }
  return 0;
}

static int st_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  filler(buf, ".", NULL, 0, 0);
  filler(buf, "..", NULL, 0, 0);
  list_ctx l = {.path = path, .buf = buf, .filler = filler, .fill = 1};
  return -list_union(&l);
}

static int is_empty_dir(const char *path) {
  list_ctx l = {.path = path};
  return list_union(&l) == 0 && l.count == 0;
}

/* The mode bits the staging area keeps of a requested mode: all of them
 * when the daemon runs as root (it can read what it stages whatever the
 * mode), else the owner's access on top, so that the commit can read. */
static mode_t kept_mode(mode_t mode, int is_dir) {
  mode &= 07777;
  return S.is_root ? mode : mode | (is_dir ? 0700 : 0600);
}

/* A new entry belongs to whoever asked for it: the request's uid, and its
 * gid unless the parent directory is setgid, where it takes the parent's
 * group as on any Linux file system. The mode is set again after the
 * chown, which clears setuid and setgid bits. Only a daemon running as
 * root can give entries away; any other owns what it stages. fd is a new
 * file's descriptor, or -1 for a new directory, found by dfd and name. */
static int take_owner(int dfd, const char *name, int fd, mode_t mode) {
  if (!S.is_root)
    return 0;
  struct fuse_context *ctx = fuse_get_context();
  gid_t gid = ctx->gid;
  const char *slash = strrchr(name, '/');
  struct stat parent;
  int prc;
  if (slash == NULL) {
    prc = fstatat(dfd, ".", &parent, 0);
  } else {
    char *dir = strndup(name, (size_t)(slash - name));
    if (dir == NULL)
      return ENOMEM;
    prc = fstatat(dfd, dir, &parent, AT_SYMLINK_NOFOLLOW);
    free(dir);
  }
  if (prc != 0)
    return errno;
  if (parent.st_mode & S_ISGID) {
    gid = parent.st_gid;
    if (fd < 0) /* a new directory inherits the bit */
      mode |= S_ISGID;
  }
  int rc = fd >= 0 ? fchown(fd, ctx->uid, gid)
                   : fchownat(dfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc == 0)
    rc = fd >= 0 ? fchmod(fd, mode & 07777)
                 : fchmodat(dfd, name, mode & 07777, 0);
  return rc == 0 ? 0 : errno;
}

static int st_mkdir(const char *path, mode_t mode) {
  const char *r = rel(path);
  int rc = make_parents(S.tree_fd, r);
  if (rc)
    return -rc;
  if (mkdirat(S.tree_fd, r, kept_mode(mode, 1)) != 0)
    return -errno;
  if ((rc = take_owner(S.tree_fd, r, -1, mode)) != 0) {
    unlinkat(S.tree_fd, r, AT_REMOVEDIR);
    return -rc;
  }
  return 0;
}

/* An open file: a staged file's descriptor, or a base value. A staged
 * file open for writing has a marker in writing/ (area_mark) from its
 * opening to its close or fsync, and again from its next write. */
typedef struct handle {
  int fd; /* -1 for a base value */
  int marked;
  const sst_reader *base;
  uint64_t offset, len;
  char mark[48];
} handle;

static pthread_mutex_t mark_lock = PTHREAD_MUTEX_INITIALIZER;

/* Marks h as being written (again), unless it is. 0 or an errno value. */
static int mark(handle *h) {
  if (__atomic_load_n(&h->marked, __ATOMIC_ACQUIRE))
    return 0;
  pthread_mutex_lock(&mark_lock);
  int rc = 0;
  struct stat st;
  if (!h->marked) {
    if (fstat(h->fd, &st) != 0)
      rc = errno;
    else if ((rc = area_mark(S.writing_fd, st.st_ino, h->mark)) == 0)
      __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&mark_lock);
  if (rc)
    log_msg("%s/writing: %s", S.dir, strerror(rc));
  return rc;
}

/* h's contents are closed or durable: no longer incomplete. */
static void unmark(handle *h) {
  if (!__atomic_load_n(&h->marked, __ATOMIC_ACQUIRE))
    return;
  pthread_mutex_lock(&mark_lock);
  if (h->marked) {
    area_unmark(S.writing_fd, h->mark);
    __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&mark_lock);
}

/* openat, telling whether O_CREAT made the file (*created). */
static int open_created(int dfd, const char *name, int flags, mode_t mode,
                        int *created) {
  *created = 0;
  if (!(flags & O_CREAT))
    return openat(dfd, name, flags, mode);
  int fd = openat(dfd, name, flags | O_EXCL, mode);
  if (fd >= 0)
    *created = 1;
  else if (errno == EEXIST && !(flags & O_EXCL))
    fd = openat(dfd, name, flags & ~O_CREAT, mode);
  return fd;
}

static int open_staged(const char *path, int flags, mode_t mode,
                       struct fuse_file_info *fi) {
  const char *r;
  int dfd = at(path, &r), created, rc;
  flags = (flags & ~O_NOFOLLOW) | O_NOFOLLOW | O_CLOEXEC;
  int fd = open_created(dfd, r, flags, kept_mode(mode, 0), &created);
  /* The parent is missing from tree/ only where it is a base directory
   * with nothing staged under it yet. */
  if (fd < 0 && errno == ENOENT && (flags & O_CREAT) && dfd == S.tree_fd &&
      strchr(r, '/')) {
    if ((rc = make_parents(S.tree_fd, r)) != 0)
      return -rc;
    fd = open_created(dfd, r, flags, kept_mode(mode, 0), &created);
  }
  if (fd < 0)
    return -errno;
  handle *h = malloc(sizeof *h);
  if (h == NULL) {
    rc = ENOMEM;
    goto fail;
  }
  h->fd = fd;
  h->marked = 0;
  if (created && (rc = take_owner(dfd, r, fd, mode)) != 0)
    goto fail;
  if ((flags & O_ACCMODE) != O_RDONLY && (rc = mark(h)) != 0)
    goto fail;
  fi->fh = (uint64_t)(uintptr_t)h;
  return 0;
fail:
  if (created)
    unlinkat(dfd, r, 0);
  close(fd);
  free(h);
  return -rc;
}

static int st_create(const char *path, mode_t mode,
                     struct fuse_file_info *fi) {
  return open_staged(path, fi->flags | O_CREAT, mode, fi);
}

static int st_open(const char *path, struct fuse_file_info *fi) {
  struct stat st;
  const char *name;
  int dfd = at(path, &name);
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return open_staged(path, fi->flags & ~O_CREAT, 0, fi);
  sst_node n;
  int rc = base_node(path, &n);
  if (rc)
    return -rc;
  if (n.is_dir)
    return -EISDIR;
  int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (writing) {
    if ((rc = copy_up(path, &n)) != 0)
      return -rc;
    return open_staged(path, fi->flags & ~O_CREAT, 0, fi);
  }
  const sst_reader *b = S.base[n.entry.source];
  if ((rc = sst_reader_value_check(b, &n.entry)) != 0) {
    log_msg("%s: base value of %s: %s", sst_reader_path(b), rel(path),
            sst_strerror(rc));
    return -EIO;
  }
  handle *h = malloc(sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  h->fd = -1;
  h->marked = 0;
  h->base = b;
  h->offset = n.entry.value_offset;
  h->len = n.entry.value_len;
  fi->fh = (uint64_t)(uintptr_t)h;
  fi->keep_cache = 1;
  return 0;
}

static int st_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi) {
  (void)path;
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd >= 0) {
    ssize_t n = pread(h->fd, buf, size, off);
    return n < 0 ? -errno : (int)n;
  }
  if (off < 0 || (uint64_t)off >= h->len)
    return 0;
  uint64_t n = h->len - (uint64_t)off;
  if (n > size)
    n = size;
  memcpy(buf, sst_reader_data(h->base) + h->offset + (uint64_t)off, (size_t)n);
  return (int)n;
}

static int st_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  (void)path;
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd < 0)
    return -EBADF;
  int rc = mark(h);
  if (rc)
    return -rc;
  ssize_t n = pwrite(h->fd, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

/* Makes the parent directories of relpath durable, up to the stage. */
static int sync_parents(const char *relpath) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", relpath);
  for (;;) {
    char *slash = strrchr(buf, '/');
    const char *dir = slash ? buf : ".";
    if (slash)
      *slash = '\0';
    int fd = openat(S.tree_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    if (rc || !slash)
      return rc;
  }
}

static int st_fsync(const char *path, int datasync,
                    struct fuse_file_info *fi) {
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd < 0)
    return 0;
  if ((datasync ? fdatasync(h->fd) : fsync(h->fd)) != 0)
    return -errno;
  int rc = is_hidden_path(path) ? 0 : sync_parents(rel(path));
  if (rc == 0)
    unmark(h);
  return -rc;
}

/* close() waits for this, not for the release that follows: once a
 * program's close has returned, its file is no longer incomplete (a write
 * through another descriptor of the same open file marks it again). */
static int st_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd >= 0)
    unmark(h);
  return 0;
}

static int st_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd >= 0) {
    unmark(h);
    close(h->fd);
  }
  free(h);
  return 0;
}

static int st_truncate(const char *path, off_t size,
                       struct fuse_file_info *fi) {
  if (fi != NULL) {
    handle *h = (handle *)(uintptr_t)fi->fh;
    if (h->fd < 0)
      return -EBADF;
    int rc = mark(h);
    if (rc)
      return -rc;
    return ftruncate(h->fd, size) == 0 ? 0 : -errno;
  }
  struct stat st;
  const char *name;
  int dfd = at(path, &name);
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (dfd != S.tree_fd)
      return -errno;
    sst_node n;
    int rc = base_node(path, &n);
    if (rc)
      return -rc;
    if (n.is_dir)
      return -EISDIR;
    if ((rc = copy_up(path, &n)) != 0)
      return -rc;
  }
  int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = ftruncate(fd, size) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

static int st_unlink(const char *path) {
  const char *r;
  int dfd = at(path, &r);
  int staged = unlinkat(dfd, r, 0) == 0;
  if (!staged && errno != ENOENT)
    return -errno;
  if (dfd != S.tree_fd)
    return staged ? 0 : -ENOENT;
  sst_node n;
  if (base_node(path, &n) == 0) {
    if (n.is_dir)
      return staged ? 0 : -EISDIR;
    int rc = whiteout(r);
    if (rc)
      return -rc;
    return 0;
  }
  return staged ? 0 : -ENOENT;
}

static int st_rmdir(const char *path) {
  if (!is_empty_dir(path))
    return -ENOTEMPTY;
  const char *r = rel(path);
  int staged = unlinkat(S.tree_fd, r, AT_REMOVEDIR) == 0;
  if (!staged && errno != ENOENT)
    return -errno;
  sst_node n;
  if (base_node(path, &n) == 0 && n.is_dir) {
    int rc = whiteout(r);
    return rc ? -rc : 0;
  }
  return staged ? 0 : -ENOENT;
}

/* Copies every visible base file under the directory at path into the
 * tree, so that the directory can move as a whole. */
typedef struct copy_ctx {
  char path[PATH_MAX];
  int rc;
} copy_ctx;

static int copy_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next);

static int copy_up_dir(const char *path, const sst_node *dir) {
  copy_ctx c;
  snprintf(c.path, sizeof c.path, "%s", path);
  c.rc = 0;
  int rc = make_parents(S.tree_fd, rel(path));
  if (rc == 0 && mkdirat(S.tree_fd, rel(path), 0755) != 0 && errno != EEXIST)
    rc = errno;
  if (rc == 0)
    rc = to_errno(sst_tree_list(S.base_tree, dir->ino, 0, copy_child, &c));
  return rc ? rc : c.rc;
}

static int copy_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)next;
  copy_ctx *c = ctx;
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s/%s", strcmp(c->path, "/") ? c->path : "",
               name) >= (int)sizeof p) {
    c->rc = ENAMETOOLONG;
    return 1;
  }
  const char *r = rel(p);
  struct stat st;
  int staged = fstatat(S.tree_fd, r, &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (hidden(r) || (staged && !S_ISDIR(st.st_mode)))
    return 0;
  c->rc = node->is_dir ? copy_up_dir(p, node) : copy_up(p, node);
  return c->rc != 0;
}

static int st_rename(const char *from, const char *to, unsigned int flags) {
  if (flags & ~(unsigned)RENAME_NOREPLACE)
    return -EINVAL;
  struct stat sst, dst;
  int rc = st_getattr(from, &sst, NULL);
  if (rc)
    return rc;
  int dst_exists = st_getattr(to, &dst, NULL) == 0;
  if (dst_exists) {
    if (flags & RENAME_NOREPLACE)
      return -EEXIST;
    if (S_ISDIR(dst.st_mode) && !S_ISDIR(sst.st_mode))
      return -EISDIR;
    if (!S_ISDIR(dst.st_mode) && S_ISDIR(sst.st_mode))
      return -ENOTDIR;
    if (S_ISDIR(dst.st_mode) && !is_empty_dir(to))
      return -ENOTEMPTY;
  }
  size_t fl = strlen(from);
  if (strncmp(to, from, fl) == 0 && to[fl] == '/')
    return -EINVAL; /* a directory into itself */
  /* Everything that moves must be staged first. */
  sst_node n;
  int from_in_base = base_node(from, &n) == 0;
  if (from_in_base) {
    struct stat st;
    const char *fname;
    int ffd = at(from, &fname);
    int staged = fstatat(ffd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (n.is_dir)
      rc = copy_up_dir(from, &n);
    else if (!staged)
      rc = copy_up(from, &n);
    if (rc)
      return -rc;
  }
  if (dst_exists) {
    sst_node dn;
    if (base_node(to, &dn) == 0 && (rc = whiteout(rel(to))) != 0)
      return -rc;
    if (S_ISDIR(dst.st_mode) &&
        unlinkat(S.tree_fd, rel(to), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return -errno;
  }
  const char *from_name, *to_name;
  int from_fd = at(from, &from_name), to_fd = at(to, &to_name);
  if (to_fd == S.tree_fd && (rc = make_parents(S.tree_fd, to_name)) != 0)
    return -rc;
  if (renameat(from_fd, from_name, to_fd, to_name) != 0)
    return -errno;
  if (from_in_base && (rc = whiteout(rel(from))) != 0)
    return -rc;
  return 0;
}

/* Modes and owners are kept in the staging area, so that the mount
 * enforces them (default_permissions); a table does not keep them yet.
 * Base entries take them without keeping them. */
static int st_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = at(path, &name);
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? 0 : -errno;
  if (fchmodat(dfd, name, kept_mode(mode, S_ISDIR(st.st_mode)), 0) != 0)
    return -errno;
  return 0;
}

static int st_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = at(path, &name);
  if (!S.is_root)
    return 0; /* accepted: the daemon owns all it stages */
  /* The kernel checked that the caller may; chown clears setuid and
   * setgid bits as it does on any Linux file system. */
  if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  return errno == ENOENT ? 0 : -errno;
}

static int st_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = at(path, &name);
  if (utimensat(dfd, name, tv, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  return errno == ENOENT ? 0 : -errno;
}

static int st_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  return fstatvfs(S.tree_fd, sv) == 0 ? 0 : -errno;
}

/* What a table cannot hold is refused with a log line; the first refusal
 * of each kind is logged, not every one (cp -a tries xattrs on each file). */
static int refuse(const char *what, const char *path, int err) {
  static int logged[3];
  int kind = err == ENOTSUP ? 0 : strcmp(what, "hard link") == 0 ? 1 : 2;
  if (!__atomic_exchange_n(&logged[kind], 1, __ATOMIC_RELAXED))
    log_msg("%s: %s refused: a table holds only regular files and "
            "directories (%s)",
            path, what, strerror(err));
  return -err;
}

static int st_mknod(const char *path, mode_t mode, dev_t rdev) {
  (void)rdev;
  if (S_ISREG(mode)) {
    struct fuse_file_info fi = {.flags = O_WRONLY | O_CREAT | O_EXCL};
    int rc = open_staged(path, fi.flags, mode, &fi);
    if (rc == 0)
      st_release(path, &fi);
    return rc;
  }
  return refuse("special file", path, EPERM);
}

static int st_symlink(const char *target, const char *path) {
  (void)target;
  return refuse("symbolic link", path, EPERM);
}

static int st_link(const char *from, const char *to) {
  (void)from;
  return refuse("hard link", to, EPERM);
}

static int st_setxattr(const char *path, const char *name, const char *value,
                       size_t size, int flags) {
  (void)name, (void)value, (void)size, (void)flags;
  refuse("extended attribute", path, ENOTSUP);
  return -ENOSYS; /* the kernel then refuses xattrs without asking again */
}

static void *st_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  conn->max_write = 1u << 20; /* large files arrive in 1 MiB writes */
  cfg->use_ino = 0;
  cfg->hard_remove = 0; /* open files unlinked move to tmp/ (see at()) */
  /* Only this mount changes the tree, and the kernel updates its caches
   * on every change made through it: cache names and attributes. */
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 60.0;
  return NULL;
}

static int commit(char *err, size_t errlen);

/* fsync of a directory. On the mount's root it writes OUT from what is
 * staged now, as the end of the mount would, and the mount goes on
 * (`sync MOUNTPOINT`); the staging area stays, and the end of the mount
 * writes OUT again. Elsewhere it makes the staging area durable. */
static int st_fsyncdir(const char *path, int datasync,
                       struct fuse_file_info *fi) {
  (void)datasync, (void)fi;
  if (strcmp(path, "/") != 0)
    return syncfs(S.tree_fd) == 0 ? 0 : -errno;
  char err[PATH_MAX + 512] = "";
  pthread_rwlock_wrlock(&stage_lock);
  int rc = commit(err, sizeof err);
  pthread_rwlock_unlock(&stage_lock);
  if (rc == 0)
    return 0;
  log_msg("commit of %s on sync of the mount failed: %s; the mount goes on",
          S.out, err);
  return rc == ENOSPC || rc == EDQUOT ? -rc : -EIO;
}

/* The operations that change the staging area, under stage_lock. */
#define SHARED(name, params, args)                                             \
  static int shared_##name params {                                            \
    pthread_rwlock_rdlock(&stage_lock);                                        \
    int rc = name args;                                                        \
    pthread_rwlock_unlock(&stage_lock);                                        \
    return rc;                                                                 \
  }
SHARED(st_mkdir, (const char *p, mode_t m), (p, m))
SHARED(st_create, (const char *p, mode_t m, struct fuse_file_info *fi),
       (p, m, fi))
SHARED(st_open, (const char *p, struct fuse_file_info *fi), (p, fi))
SHARED(st_write,
       (const char *p, const char *b, size_t n, off_t o,
        struct fuse_file_info *fi),
       (p, b, n, o, fi))
SHARED(st_truncate, (const char *p, off_t n, struct fuse_file_info *fi),
       (p, n, fi))
SHARED(st_unlink, (const char *p), (p))
SHARED(st_rmdir, (const char *p), (p))
SHARED(st_rename, (const char *f, const char *t, unsigned int fl), (f, t, fl))
SHARED(st_chmod, (const char *p, mode_t m, struct fuse_file_info *fi),
       (p, m, fi))
SHARED(st_chown, (const char *p, uid_t u, gid_t g, struct fuse_file_info *fi),
       (p, u, g, fi))
SHARED(st_utimens,
       (const char *p, const struct timespec tv[2], struct fuse_file_info *fi),
       (p, tv, fi))

static const struct fuse_operations stage_ops = {
    .init = st_init,
    .getattr = st_getattr,
    .readdir = st_readdir,
    .mkdir = shared_st_mkdir,
    .create = shared_st_create,
    .open = shared_st_open,
    .read = st_read,
    .write = shared_st_write,
    .fsync = st_fsync,
    .fsyncdir = st_fsyncdir,
    .flush = st_flush,
    .release = st_release,
    .truncate = shared_st_truncate,
    .unlink = shared_st_unlink,
    .rmdir = shared_st_rmdir,
    .rename = shared_st_rename,
    .chmod = shared_st_chmod,
    .chown = shared_st_chown,
    .utimens = shared_st_utimens,
    .statfs = st_statfs,
    .mknod = st_mknod,
    .symlink = st_symlink,
    .link = st_link,
    .setxattr = st_setxattr,
};

/* ------------------------------------------------------------------ */
/* Commit: the union becomes the table.                                */

typedef struct staged_file {
  uint8_t *key;
  size_t key_len;
  char *path; /* relative to tree/ */
} staged_file;

typedef struct file_list {
  staged_file *v;
  size_t n, cap;
} file_list;

static int add_file(file_list *l, const char *relpath, char *err,
                    size_t errlen) {
  static uint8_t key[SST_KEY_MAX];
  size_t len;
  int rc = sst_path_to_key(relpath, 0, key, &len);
  if (rc) {
    snprintf(err, errlen, "%s: cannot be a key: %s", relpath,
             sst_strerror(rc));
    return rc;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 256;
    staged_file *v = realloc(l->v, cap * sizeof *v);
    if (v == NULL)
      return ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  staged_file *f = &l->v[l->n];
  if ((f->key = malloc(len)) == NULL || (f->path = strdup(relpath)) == NULL) {
    free(f->key);
    return ENOMEM;
  }
  memcpy(f->key, key, len);
  f->key_len = len;
  l->n++;
  return 0;
}

/* Collects every regular file under tree/ (an explicit stack of paths:
 * nesting can be as deep as a key is long). */
static int collect(file_list *l, char *err, size_t errlen) {
  size_t cap = 64, n = 0;
  char **stack = malloc(cap * sizeof *stack);
  if (stack == NULL || (stack[n++] = strdup("")) == NULL) {
    free(stack);
    return ENOMEM;
  }
  int rc = 0;
  while (n > 0 && rc == 0) {
    char *dir = stack[--n];
    int fd = openat(S.tree_fd, *dir ? dir : ".",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
      rc = errno;
      snprintf(err, errlen, "staged directory %s: %s", *dir ? dir : ".",
               strerror(rc));
      if (fd >= 0)
        close(fd);
      free(dir);
      break;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char *p = malloc(strlen(dir) + strlen(e->d_name) + 2);
      if (p == NULL) {
        rc = ENOMEM;
        break;
      }
      sprintf(p, "%s%s%s", dir, *dir ? "/" : "", e->d_name);
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = errno;
        free(p);
        break;
      }
      if (S_ISDIR(st.st_mode)) {
        if (n == cap) {
          char **s2 = realloc(stack, 2 * cap * sizeof *stack);
          if (s2 == NULL) {
            rc = ENOMEM;
            free(p);
            break;
          }
          stack = s2;
          cap *= 2;
        }
        stack[n++] = p;
        continue;
      }
      if (S_ISREG(st.st_mode))
        rc = add_file(l, p, err, errlen);
      free(p);
    }
    closedir(d);
    free(dir);
  }
  while (n > 0)
    free(stack[--n]);
  free(stack);
  return rc;
}

static int cmp_key(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  size_t m = al < bl ? al : bl;
  int c = m ? memcmp(a, b, m) : 0;
  return c ? c : (al > bl) - (al < bl);
}

static int cmp_files(const void *a, const void *b) {
  const staged_file *x = a, *y = b;
  return cmp_key(x->key, x->key_len, y->key, y->key_len);
}

static int add_staged(sst_writer *w, const staged_file *f, char *err,
                      size_t errlen) {
  int fd = openat(S.tree_fd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int rc = errno;
    snprintf(err, errlen, "staged file %s: %s", f->path, strerror(rc));
    return rc;
  }
  static uint8_t buf[1 << 20];
  int rc = sst_writer_begin_value(w, f->key, f->key_len);
  while (rc == 0) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      rc = errno;
      snprintf(err, errlen, "staged file %s: %s", f->path, strerror(rc));
      break;
    }
    if (got == 0)
      break;
    rc = sst_writer_append_value(w, buf, (size_t)got);
  }
  close(fd);
  if (rc == 0)
    rc = sst_writer_end_value(w);
  return rc;
}

/* Whether a base key is under a whiteout. */
static int base_key_hidden(const sst_entry *e, int also_dir) {
  static char path[SST_PATH_MAX + 1];
  size_t n;
  if (sst_path_from_key(e->key, e->key_len, 0, also_dir, path, &n) != 0)
    return 1;
  return hidden(path);
}

static int dir_is_empty(int fd) {
  int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
  if (d == NULL) {
    if (dup_fd >= 0)
      close(dup_fd);
    return 0;
  }
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

/* Writes OUT from tree/ and the base. On failure, err says why. */
static int commit(char *err, size_t errlen) {
  file_list l = {0};
  sst_writer *w = NULL;
  sst_iter *it = NULL, *probe = NULL;
  uint8_t *key = NULL;
  int rc = collect(&l, err, errlen);
  if (rc)
    goto done;
  if (l.n)
    qsort(l.v, l.n, sizeof *l.v, cmp_files);
  for (size_t i = 1; i < l.n; i++)
    if (cmp_files(&l.v[i - 1], &l.v[i]) == 0) {
      snprintf(err, errlen, "staged files %s and %s are the same key",
               l.v[i - 1].path, l.v[i].path);
      rc = EEXIST;
      goto done;
    }
  sst_error serr;
  if ((rc = sst_writer_open(S.out, NULL, &w, &serr)) != 0) {
    snprintf(err, errlen, "%s", serr.msg);
    goto done;
  }
  /* Merge the sorted staged files with the base's keys. A staged file
   * replaces the base key it names; a base key under a whiteout is gone
   * (a tombstone in a delta); the others are copied, or in a delta left
   * out as unchanged. */
  size_t i = 0;
  if (S.nbase > 0) {
    const sst_reader *const *bases = (const sst_reader *const *)S.base;
    if ((rc = sst_iter_new_merged(bases, S.nbase, &it)) ||
        (rc = sst_iter_new_merged(bases, S.nbase, &probe)))
      goto done;
    sst_iter_set_skip_tombstones(it, 1);
    sst_iter_set_skip_tombstones(probe, 1);
    if ((key = malloc(SST_KEY_MAX + 1)) == NULL) {
      rc = ENOMEM;
      goto done;
    }
    int any_whiteouts = !dir_is_empty(S.wh_fd);
    for (sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
         sst_iter_next(it)) {
      sst_entry e = *sst_iter_entry(it);
      memcpy(key, e.key, e.key_len);
      e.key = key;
      for (; rc == 0 && i < l.n &&
             cmp_key(l.v[i].key, l.v[i].key_len, e.key, e.key_len) < 0;
           i++)
        rc = add_staged(w, &l.v[i], err, errlen);
      if (rc)
        break;
      if (i < l.n && cmp_key(l.v[i].key, l.v[i].key_len, e.key, e.key_len) == 0)
        continue; /* the staged file wins */
      if (any_whiteouts) {
        key[e.key_len] = '/';
        sst_iter_prefix(probe, key, e.key_len + 1);
        if (base_key_hidden(&e, sst_iter_valid(probe))) {
          if (S.conf.delta)
            rc = sst_writer_add_tombstone(w, e.key, e.key_len);
          continue;
        }
      }
      if (S.conf.delta)
        continue;
      const uint8_t *v;
      if ((rc = sst_reader_value(S.base[e.source], &e, &v)) != 0) {
        snprintf(err, errlen, "%s: a base value: %s",
                 sst_reader_path(S.base[e.source]), sst_strerror(rc));
        break;
      }
      rc = sst_writer_add(w, e.key, e.key_len, v, e.value_len);
    }
    if (rc == 0 && (rc = sst_iter_status(it)) != 0)
      snprintf(err, errlen, "base tables: %s", sst_strerror(rc));
  }
  for (; rc == 0 && i < l.n; i++)
    rc = add_staged(w, &l.v[i], err, errlen);
  /* Last, just before the rename: is OUT still what it was? */
  if (rc == 0 && !S.conf.overwrite &&
      (rc = area_out_unchanged(S.dir_fd, S.out)) != 0) {
    if (rc == EEXIST)
      snprintf(err, errlen,
               "%s appeared (or was replaced) after the staging mount "
               "started, and is not overwritten; to replace it, resume "
               "with -o resume,overwrite",
               S.out);
    else
      snprintf(err, errlen, "%s: %s", S.out, strerror(rc));
  }
  if (rc == 0 && (rc = sst_writer_finish(w, &serr)) != 0)
    snprintf(err, errlen, "%s", serr.msg);
  else if (rc && err[0] == '\0')
    snprintf(err, errlen, "%s: %s", S.out, sst_strerror(rc));
  /* What this area wrote: a later commit may replace it (after a sync). */
  int wrc = rc == 0 ? area_out_record(S.dir_fd, S.out) : 0;
  if (wrc)
    log_msg("%s/written: %s; a later commit of %s needs -o overwrite", S.dir,
            strerror(wrc), S.out);
done:
  if (rc && err[0] == '\0')
    snprintf(err, errlen, "%s", sst_strerror(rc));
  sst_writer_free(w);
  sst_iter_free(it);
  sst_iter_free(probe);
  free(key);
  for (size_t k = 0; k < l.n; k++) {
    free(l.v[k].key);
    free(l.v[k].path);
  }
  free(l.v);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Setting up: the staging area and its target.                        */

static int run(const char *cmd, const char *arg1, const char *arg2,
               const char *arg3) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp(cmd, cmd, arg1, arg2, arg3, (char *)NULL);
    _exit(127);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) < 0)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void target_text(char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "out %s\n", S.out);
  for (size_t i = 0; i < S.nbase && n < len; i++) {
    struct stat st;
    stat(S.base_path[i], &st);
    n += (size_t)snprintf(buf + n, len - n, "base %s %lld %lld.%09ld\n",
                          S.base_path[i], (long long)st.st_size,
                          (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  if (S.conf.delta && n < len)
    snprintf(buf + n, len - n, "delta\n");
}

/* Takes the staging area's lock, held for the daemon's whole life (the
 * descriptor survives sstfs_daemonize's fork): a second daemon cannot take
 * over a live area, and sstfs --unmount knows the daemon has finished when
 * it can take the lock itself. EBUSY when another daemon holds it. */
static int lock_area(void) {
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/lock", S.dir);
  S.lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (S.lock_fd < 0)
    return errno;
  if (flock(S.lock_fd, LOCK_EX | LOCK_NB) != 0)
    return errno == EWOULDBLOCK ? EBUSY : errno;
  return 0;
}

static int open_area(int fresh) {
  if (fresh) {
    if (mkdir(S.dir, 0700) != 0)
      return errno;
    S.created = 1;
    static char text[(MAX_BASES + 1) * (PATH_MAX + 64)];
    target_text(text, sizeof text);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/target", S.dir);
    FILE *f = fopen(p, "w");
    if (f == NULL)
      return errno;
    fputs(text, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
      fclose(f);
      return errno;
    }
    fclose(f);
  }
  if ((S.dir_fd = open(S.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return errno;
  const char *subs[] = {"tree", "whiteouts", "tmp", "writing"};
  int *fds[] = {&S.tree_fd, &S.wh_fd, &S.tmp_fd, &S.writing_fd};
  for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
    if (mkdirat(S.dir_fd, subs[i], 0700) != 0 && errno != EEXIST)
      return errno;
    if ((*fds[i] = openat(S.dir_fd, subs[i],
                          O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
      return errno;
  }
  /* The mount's root: the mounting user's, 0755 (the area stays 0700). */
  if (fresh && fchmod(S.tree_fd, 0755) != 0)
    return errno;
  return 0;
}

/* Why the last mount of an existing area ended without a table, if it
 * did: said before it is resumed. */
static void say_last_error(void) {
  char msg[PATH_MAX + 512];
  int fd = open(S.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (area_read_file(fd, "error", msg, sizeof msg) > 0)
    fprintf(stderr, "sstfs: the last staging mount of %s ended without "
                    "writing it: %s%s",
            S.out, msg, msg[strlen(msg) - 1] == '\n' ? "" : "\n");
  close(fd);
}

/* An existing staging area: is it ours? */
static int check_target(void) {
  static char have[(MAX_BASES + 1) * (PATH_MAX + 64)], want[sizeof have];
  char p[PATH_MAX + 16];
  have[0] = '\0';
  snprintf(p, sizeof p, "%s/target", S.dir);
  FILE *f = fopen(p, "r");
  if (f) {
    size_t n = fread(have, 1, sizeof have - 1, f);
    have[n] = '\0';
    fclose(f);
  }
  target_text(want, sizeof want);
  if (strcmp(have, want) != 0) {
    fprintf(stderr,
            "sstfs: %s is a staging area for something else:\n%s"
            "sstfs: it is kept; move it away or use -o stagedir=DIR\n",
            S.dir, have[0] ? have : "(no target file)\n");
    return 1;
  }
  return 0;
}

/* May we resume it? (Asked with the area locked.) */
static int check_resume(void) {
  if (!S.conf.resume) {
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
      fprintf(stderr, "sstfs: a staging area for %s exists in %s.\n"
                      "Resume it? [y/N] ", S.out, S.dir);
      char answer[16] = "";
      if (fgets(answer, sizeof answer, stdin) == NULL ||
          (answer[0] != 'y' && answer[0] != 'Y')) {
        fprintf(stderr, "sstfs: not resumed; the staging area is kept\n");
        return 1;
      }
    } else {
      fprintf(stderr,
              "sstfs: a staging area for %s exists in %s; resume it with "
              "-o resume (it is never discarded on its own)\n",
              S.out, S.dir);
      return 1;
    }
  }
  return 0;
}

static int sstfs_stage_run(int argc, char *argv[]);

static const char stage_usage[] =
    "NAME\n"
    "    sstfs --stage - a writable tree that becomes a table when unmounted\n"
    "\n"
    "SYNOPSIS\n"
    "    sstfs --stage OUT.sstable MOUNTPOINT [--base TABLE] [-o OPTION,...]\n"
    "    sstfs --unmount MOUNTPOINT\n"
    "\n"
    "DESCRIPTION\n"
    "    Mounts an empty writable tree (or, with --base, the tree of TABLE)\n"
    "    at MOUNTPOINT. Whatever is created, written, renamed or deleted\n"
    "    there becomes the new table OUT.sstable when the mount ends: OUT is\n"
    "    then either its old self or the complete new table, never partial.\n"
    "    Paths become keys by the same rules as the read-only mount\n"
    "    (docs/PATHS.md). Only regular files and directories can be staged;\n"
    "    symlinks, hard links, devices and xattrs fail with EPERM/ENOTSUP.\n"
    "    Modes and owners are kept while staging, but the table keeps only\n"
    "    keys and values: no modes, owners, times or empty directories.\n"
    "\n"
    "    File contents live in a staging area on disk (OUT.stage/ beside\n"
    "    OUT), not in memory.\n"
    "\n"
    "WHEN THE TABLE IS WRITTEN\n"
    "    Only when the mount ends by an unmount (sstfs --unmount MOUNTPOINT,\n"
    "    fusermount3 -u, umount), or on sync MOUNTPOINT. SIGTERM, SIGINT or\n"
    "    SIGHUP stop the daemon without writing anything: the mount goes,\n"
    "    the staging area is kept for -o resume, and the log says so.\n"
    "\n"
    "    sstfs --unmount MOUNTPOINT unmounts, waits until the table is\n"
    "    written, and exits 0 only if it was; otherwise it prints why, and\n"
    "    the staging area is kept for a later resume. It also says what\n"
    "    became of a staging mount that is no longer mounted. In the\n"
    "    foreground (-f), sstfs --stage exits with the status of the commit.\n"
    "\n"
    "    sync MOUNTPOINT (an fsync of the mount's root directory) writes OUT\n"
    "    from what is staged at that moment and leaves the mount as it is:\n"
    "    changes under way finish first, later ones wait until OUT is\n"
    "    written. sync exits 0 only if OUT was written. The end of the\n"
    "    mount writes OUT again. An fsync of any other directory makes the\n"
    "    staging area durable and writes no table.\n"
    "\n"
    "    A commit replaces only an OUT that this staging area wrote (by a\n"
    "    sync): if a table appeared at OUT after the mount started, the\n"
    "    commit fails and OUT is left as it is, unless -o overwrite. While\n"
    "    a daemon stages OUT it holds OUT.lock, so that no second staging\n"
    "    area (-o stagedir=) can write OUT at the same time.\n"
    "\n"
    "RESUMING\n"
    "    Files closed before the daemon dies (even by SIGKILL) are in the\n"
    "    staging area when it restarts; files fsynced before the machine\n"
    "    stops likewise. Starting the same command again finds the area,\n"
    "    says why its last mount ended without a table, and offers to\n"
    "    resume it (-o resume does so without asking). A staging area is\n"
    "    never discarded on its own.\n"
    "\n"
    "    A file that was open for writing when the daemon died, and was not\n"
    "    closed or fsynced since, may be incomplete. The resume names each\n"
    "    such file with its size and moves it to OUT.stage/incomplete/, out\n"
    "    of the mount and of the table: copy it again, or resume with\n"
    "    -o keep_incomplete to keep it as it is. sstfs --unmount names the\n"
    "    files that were left out.\n"
    "\n"
    "OTHER USERS\n"
    "    With -o allow_other, the mount enforces the modes and owners it\n"
    "    shows, as a kernel file system does. What a user creates belongs\n"
    "    to that user (and to the parent's group where the parent is\n"
    "    setgid); a write or a chown by a user other than root clears\n"
    "    setuid and setgid bits. The mount's root is 0755, owned by the\n"
    "    user who mounted. A daemon not running as root owns all it stages.\n"
    "\n"
    "OPTIONS\n"
    "    --base TABLE      start from TABLE's contents (read from TABLE\n"
    "                      until changed); several --base stack, the last\n"
    "                      on top, as in a read-only mount of them\n"
    "    -o delta          with --base: write only what changed: new and\n"
    "                      changed files, and a tombstone for each deleted\n"
    "                      key, so that OUT stacks over the base\n"
    "    -o overwrite      allow OUT to exist already, or to appear during\n"
    "                      the mount (it is replaced)\n"
    "    -o resume         resume an existing staging area\n"
    "    -o keep_incomplete\n"
    "                      on resume, keep files that were open for writing\n"
    "                      when the last daemon died as they are (see\n"
    "                      RESUMING)\n"
    "    -o stagedir=DIR   the staging area (default OUT.stage)\n"
    "    -o allow_other    let other users in (see OTHER USERS and\n"
    "                      /etc/fuse.conf)\n"
    "    -o nouring        never take requests through io_uring (see\n"
    "                      PERFORMANCE)\n"
    "    -f, -d, -s        foreground, debug, single-threaded\n"
    "\n"
    "FILES\n"
    "    OUT.stage/        the staging area: tree/ (the staged files),\n"
    "                      error (why the last mount ended without a\n"
    "                      table), incomplete/ (files left out on resume)\n"
    "    OUT.lock          held while a daemon stages OUT; a daemon killed\n"
    "                      by SIGKILL leaves it, and the next one takes it\n"
    "    /run/sstfs/       (root; else $XDG_RUNTIME_DIR/sstfs/) which\n"
    "                      staging area each mount point uses\n"
    "\n"
    "PERFORMANCE\n"
    "    Each file copied in costs several FUSE requests. On Linux 6.14 and\n"
    "    later, FUSE can pass them through io_uring, one queue per CPU,\n"
    "    which on most machines makes copying small files much faster.\n"
    "    The kernel offers it only when the fuse module allows it; as root:\n"
    "        echo Y > /sys/module/fuse/parameters/enable_uring\n"
    "    (or fuse.enable_uring=1 on the kernel command line). sstfs uses\n"
    "    it whenever it is offered, and /dev/fuse otherwise.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on success; 1 on failure, including a bad mount point, and a\n"
    "    daemon in the foreground stopped by a signal (nothing is lost:\n"
    "    the staging area is kept); 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "    sstfs --stage new.sstable /mnt/new && cp -a data/. /mnt/new/ &&\n"
    "        sstfs --unmount /mnt/new\n"
    "    sstfs --stage v2.sstable /mnt/v2 --base v1.sstable\n"
    "    sync /mnt/v2     # v2.sstable now holds the tree as it is\n"
    "    sstfs --stage new.sstable /mnt/new -o resume   # after a crash\n";

enum { KEY_STAGE, KEY_HELP };

#define STAGE_OPT(t, p, v)                                                     \
  { t, offsetof(stage_conf, p), v }

static const struct fuse_opt stage_opts[] = {
    STAGE_OPT("overwrite", overwrite, 1),
    STAGE_OPT("delta", delta, 1),
    STAGE_OPT("resume", resume, 1),
    STAGE_OPT("keep_incomplete", keep_incomplete, 1),
    STAGE_OPT("stagedir=%s", stagedir, 0),
    STAGE_OPT("nouring", nouring, 1),
    FUSE_OPT_KEY("--stage", KEY_STAGE),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_END,
};

static int stage_opt_proc(void *data, const char *arg, int key,
                          struct fuse_args *outargs) {
  (void)outargs;
  stage_conf *c = data;
  if (key == KEY_STAGE)
    return 0;
  if (key == KEY_HELP) {
    c->show_help = 1;
    return 0;
  }
  if (key == FUSE_OPT_KEY_NONOPT && c->out == NULL) {
    c->out = strdup(arg);
    return 0;
  }
  if (key == FUSE_OPT_KEY_NONOPT && c->mnt_arg == NULL)
    c->mnt_arg = strdup(arg); /* and kept for fuse_parse_cmdline */
  return 1;
}

/* OUT's absolute path, whether or not it exists yet. */
static int absolute_out(const char *out) {
  char dir[PATH_MAX], *slash;
  snprintf(dir, sizeof dir, "%s", out);
  const char *name = out;
  if ((slash = strrchr(dir, '/')) != NULL) {
    *slash = '\0';
    name = slash + 1;
    if (dir[0] == '\0')
      strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  char real[PATH_MAX];
  if (realpath(dir, real) == NULL || *name == '\0')
    return -1;
  if (snprintf(S.out, sizeof S.out, "%s/%s", strcmp(real, "/") ? real : "",
               name) >= (int)sizeof S.out)
    return -1;
  return 0;
}

int sstfs_stage_main(int argc, char *argv[]) {
  /* --base may come several times: take those out before fuse_opt. */
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  int nrest = 0;
  if (rest == NULL)
    return 1;
  for (int i = 0; i < argc; i++) {
    const char *base = NULL;
    if (strcmp(argv[i], "--base") == 0 && i + 1 < argc)
      base = argv[++i];
    else if (strncmp(argv[i], "--base=", 7) == 0)
      base = argv[i] + 7;
    else
      rest[nrest++] = argv[i];
    if (base != NULL) {
      if (S.conf.nbases == MAX_BASES) {
        fprintf(stderr, "sstfs: at most %d --base tables\n", MAX_BASES);
        free(rest);
        return 2;
      }
      S.conf.bases[S.conf.nbases++] = (char *)base;
    }
  }
  int status = sstfs_stage_run(nrest, rest);
  free(rest);
  return status;
}

/* The signal that stopped the daemon, if one did: then nothing is
 * committed (only an unmount or a sync commits), and the staging area is
 * kept for -o resume. */
static volatile sig_atomic_t stop_signal;
static struct fuse_session *stop_session;

static void on_stop_signal(int sig) {
  stop_signal = sig;
  if (stop_session != NULL)
    fuse_session_exit(stop_session);
}

static int catch_stop_signals(struct fuse_session *se) {
  stop_session = se;
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old;
    /* A signal ignored by whoever started sstfs stays ignored. */
    if (sigaction(sigs[i], NULL, &old) != 0)
      return -1;
    if (old.sa_handler != SIG_IGN && sigaction(sigs[i], &sa, NULL) != 0)
      return -1;
  }
  struct sigaction ign = {.sa_handler = SIG_IGN};
  return sigaction(SIGPIPE, &ign, NULL);
}

static void release_stop_signals(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) == 0 &&
        old.sa_handler == on_stop_signal)
      sigaction(sigs[i], &dfl, NULL);
  }
  stop_session = NULL;
}

/* Records why the mount ended without a table, for the next start, sstfs
 * --unmount and sst info; and says it in the log. */
static void record_error(const char *err) {
  log_msg("%s", err);
  size_t n = strlen(err);
  char *text = malloc(n + 2);
  if (text == NULL)
    return;
  memcpy(text, err, n);
  memcpy(text + n, "\n", 2);
  int rc = area_write_file(S.dir_fd, "error", text);
  free(text);
  if (rc)
    log_msg("%s/error: %s", S.dir, strerror(rc));
}

/* The end of a mount that committed: what sstfs --unmount should say goes
 * into the area's lock file, which it holds open; then the area goes. */
static void finish_committed(void) {
  char report[4096];
  ssize_t n;
  if (ftruncate(S.lock_fd, 0) == 0 &&
      area_incomplete_report(S.dir_fd, S.tree_fd, S.lock_fd) == 0 &&
      (n = pread(S.lock_fd, report, sizeof report - 1, 0)) > 0) {
    report[n] = '\0';
    if (report[n - 1] == '\n')
      report[n - 1] = '\0';
    log_msg("%s was written; %s", S.out, report);
  }
  area_unregister(S.mnt);
  /* Move the area out of the way at once (sstfs --unmount takes its
   * disappearance as success), then delete it. */
  char done[PATH_MAX + 32];
  snprintf(done, sizeof done, "%s.done.%ld", S.dir, (long)getpid());
  const char *victim = rename(S.dir, done) == 0 ? done : S.dir;
  if (area_remove_tree(victim) != 0)
    log_msg("%s: committed, but the staging area %s could not be removed",
            S.out, victim);
}

/* Opens the staging area for OUT: a new one, or an existing one to resume
 * (after the checks and the question). 0, or 1 with a message. */
static int take_area(void) {
  struct stat st;
  int exists = stat(S.dir, &st) == 0;
  if (exists && check_target() != 0)
    return 1;
  char holder[PATH_MAX];
  int rc = area_lock_out(S.out, S.dir, &S.out_lock_fd, holder, sizeof holder);
  if (rc == EBUSY) {
    fprintf(stderr, "sstfs: %s is being staged by another sstfs%s%s%s\n",
            S.out, holder[0] ? " (staging area " : "", holder,
            holder[0] ? ")" : "");
    return 1;
  }
  if (rc) {
    fprintf(stderr, "sstfs: %s.lock: %s\n", S.out, strerror(rc));
    return 1;
  }
  if (!exists) {
    if (access(S.out, F_OK) == 0 && !S.conf.overwrite) {
      fprintf(stderr, "sstfs: %s exists; use -o overwrite to replace it\n",
              S.out);
      return 1;
    }
  } else {
    if ((rc = lock_area()) != 0) {
      fprintf(stderr, "sstfs: staging area %s: %s\n", S.dir,
              rc == EBUSY ? "in use by a running sstfs" : strerror(rc));
      return 1;
    }
    say_last_error();
    if (check_resume() != 0)
      return 1;
  }
  if ((rc = open_area(!exists)) == 0 && !exists)
    rc = lock_area();
  if (rc) {
    fprintf(stderr, "sstfs: staging area %s: %s\n", S.dir,
            rc == EBUSY ? "in use by a running sstfs" : strerror(rc));
    return 1;
  }
  if (!exists)
    return 0;
  if (!S.conf.overwrite && area_out_unchanged(S.dir_fd, S.out) == EEXIST) {
    fprintf(stderr,
            "sstfs: %s appeared (or was replaced) after this staging area "
            "was made; resume with -o resume,overwrite to replace it\n",
            S.out);
    return 1;
  }
  size_t incomplete;
  if ((rc = area_sweep(S.dir, S.dir_fd, S.conf.keep_incomplete,
                       &incomplete)) != 0) {
    fprintf(stderr, "sstfs: staging area %s: files open for writing: %s\n",
            S.dir, strerror(rc));
    return 1;
  }
  unlinkat(S.dir_fd, "error", 0);
  return 0;
}

static int sstfs_stage_run(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts opts = {0};
  struct fuse *fuse = NULL;
  int status = 1, rc;
  S.dir_fd = S.tree_fd = S.wh_fd = S.tmp_fd = S.writing_fd = S.lock_fd = -1;
  S.out_lock_fd = -1;
  S.is_root = geteuid() == 0;

  if (fuse_opt_parse(&args, &S.conf, stage_opts, stage_opt_proc) != 0)
    return 2;
  if (S.conf.show_help) {
    fputs(stage_usage, stdout);
    status = 0;
    goto out_args;
  }
  /* A bad mount point is an error (1), not a usage error (2): look at it
   * before libfuse does. */
  if (S.conf.out != NULL && S.conf.mnt_arg != NULL &&
      sstfs_check_mountpoint(S.conf.mnt_arg) != 0)
    goto out_args;
  if (fuse_parse_cmdline(&args, &opts) != 0 || S.conf.out == NULL ||
      opts.mountpoint == NULL) {
    fprintf(stderr, "usage: sstfs --stage OUT.sstable MOUNTPOINT "
                    "[--base TABLE] [-o OPTION,...]\n"
                    "Try 'sstfs --stage --help' for more information.\n");
    status = 2;
    goto out_opts;
  }
  S.foreground = opts.foreground;
  snprintf(S.mnt, sizeof S.mnt, "%s", opts.mountpoint);
  if (absolute_out(S.conf.out) != 0) {
    fprintf(stderr, "sstfs: %s: no such directory for the table\n",
            S.conf.out);
    goto out_opts;
  }
  if (snprintf(S.dir, sizeof S.dir, "%s",
               S.conf.stagedir ? S.conf.stagedir : S.out) >=
          (int)sizeof S.dir - 8 ||
      (!S.conf.stagedir && strlen(S.dir) + 7 > sizeof S.dir)) {
    fprintf(stderr, "sstfs: %s: %s\n", S.dir, strerror(ENAMETOOLONG));
    goto out_opts;
  }
  if (!S.conf.stagedir)
    strcat(S.dir, ".stage");
  for (int i = 0; i < S.conf.nbases; i++) {
    sst_error err;
    if (realpath(S.conf.bases[i], S.base_path[i]) == NULL) {
      fprintf(stderr, "sstfs: %s: %s\n", S.conf.bases[i], strerror(errno));
      goto out_base;
    }
    if (sst_reader_open(S.base_path[i], NULL, &S.base[i], &err) != 0) {
      fprintf(stderr, "sstfs: %s\n", err.msg);
      goto out_base;
    }
    S.nbase++;
  }
  if (S.conf.delta && S.nbase == 0) {
    fprintf(stderr, "sstfs: -o delta needs --base\n");
    status = 2;
    goto out_base;
  }
  if (S.nbase > 0 &&
      sst_tree_open_stack((const sst_reader *const *)S.base, S.nbase, 0,
                          &S.base_tree) != 0) {
    fprintf(stderr, "sstfs: %s: cannot be shown as a tree\n",
            S.base_path[0]);
    goto out_base;
  }
  if (take_area() != 0)
    goto out_area;

  /* The staging area names the mount, so --unmount can find it. The mount
   * enforces the modes and owners it shows (for -o allow_other). */
  char *mopts = NULL, fsname[PATH_MAX + 16];
  snprintf(fsname, sizeof fsname, "fsname=%s", S.dir);
  if (fuse_opt_add_opt_escaped(&mopts, fsname) ||
      fuse_opt_add_opt(&mopts, "subtype=sstfs") ||
      fuse_opt_add_opt(&mopts, "default_permissions") ||
      fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, mopts)) {
    free(mopts);
    fprintf(stderr, "sstfs: out of memory\n");
    goto out_area;
  }
  free(mopts);
  fuse = fuse_new(&args, &stage_ops, sizeof stage_ops, NULL);
  if (fuse == NULL)
    goto out_area;
  if (fuse_mount(fuse, opts.mountpoint) != 0) {
    fprintf(stderr, "sstfs: %s could not be mounted (see above)\n",
            opts.mountpoint);
    goto out_fuse;
  }
  if (catch_stop_signals(fuse_get_session(fuse)) != 0)
    goto out_unmount;
  if (!S.conf.nouring) {
    int urc = sstfs_uring_attach(fuse_get_session(fuse), log_msg);
    if (urc != 0)
      fprintf(stderr, "sstfs: io_uring not used: %s\n", strerror(-urc));
  }
  if (!opts.foreground)
    openlog("sstfs", LOG_PID, LOG_DAEMON);
  if (sstfs_daemonize(opts.foreground) != 0)
    goto out_unmount;
  S.created = 0; /* mounted: from here on the area is kept */
  {
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if ((rc = area_write_file(S.dir_fd, "pid", pid)) != 0 && n > 0)
      log_msg("%s/pid: %s", S.dir, strerror(rc));
  }
  area_register(S.mnt, S.dir, S.dir_fd);

  if (opts.singlethread) {
    rc = fuse_loop(fuse);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    rc = lc ? fuse_loop_mt(fuse, lc) : -1;
    fuse_loop_cfg_destroy(lc);
  }
  int sig = stop_signal;
  release_stop_signals();
  fuse_unmount(fuse);
  uint64_t through_uring = sstfs_uring_detach();
  if (through_uring > 0 && opts.foreground)
    log_msg("%llu requests were served through io_uring",
            (unsigned long long)through_uring);
  fuse_destroy(fuse);
  fuse = NULL;

  static char err[5 * PATH_MAX + 512];
  if (sig != 0) {
    /* Only an unmount or a sync commits: a table that looks complete but
     * holds half a copy is the worst outcome. */
    snprintf(err, sizeof err,
             "stopped by SIG%s: %s was not written; the staged files are "
             "kept in %s (resume with sstfs --stage %s %s -o resume)",
             sigabbrev_np(sig), S.out, S.dir, S.out, S.mnt);
    record_error(err);
    goto out_area;
  }
  /* The mount is gone: write the table. */
  rc = commit(err, sizeof err);
  if (rc == 0) {
    finish_committed();
    status = 0;
  } else {
    static char msg[sizeof err + 2 * PATH_MAX + 64];
    snprintf(msg, sizeof msg,
             "commit of %s failed: %s; staged files are kept in %s", S.out,
             err, S.dir);
    record_error(msg);
  }
  goto out_area;

out_unmount:
  release_stop_signals();
  fuse_unmount(fuse);
out_fuse:
  if (fuse)
    fuse_destroy(fuse);
out_area:
  if (S.dir_fd >= 0)
    unlinkat(S.dir_fd, "pid", 0);
  int *fds[] = {&S.dir_fd, &S.tree_fd, &S.wh_fd, &S.tmp_fd, &S.writing_fd};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (*fds[i] >= 0)
      close(*fds[i]);
  /* A start that failed leaves nothing behind that it made. */
  if (S.created && area_remove_tree(S.dir) != 0)
    fprintf(stderr, "sstfs: %s could not be removed\n", S.dir);
  if (S.lock_fd >= 0)
    close(S.lock_fd);
  area_unlock_out(S.out, S.out_lock_fd);
out_base:
  sst_tree_close(S.base_tree);
  for (size_t i = 0; i < S.nbase; i++)
    sst_reader_close(S.base[i]);
out_opts:
  free(opts.mountpoint);
out_args:
  free(S.conf.out);
  free(S.conf.stagedir);
  free(S.conf.mnt_arg);
  fuse_opt_free_args(&args);
  return status;
}

/* ------------------------------------------------------------------ */
/* sstfs --unmount                                                      */

/* Finds the mount's source (fsname) and type in /proc/self/mounts. */
static int find_mount(const char *mnt, char *source, size_t len, int *ours) {
  FILE *f = fopen("/proc/self/mounts", "r");
  if (f == NULL)
    return errno;
  char line[3 * PATH_MAX], src[PATH_MAX], dir[PATH_MAX], type[64];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%4095s %4095s %63s", src, dir, type) != 3)
      continue;
    /* /proc/mounts escapes spaces and the like as \ooo */
    char unesc[PATH_MAX];
    size_t o = 0;
    for (size_t i = 0; dir[i] && o + 1 < sizeof unesc; i++) {
      if (dir[i] == '\\' && dir[i + 1] && dir[i + 2] && dir[i + 3]) {
        unesc[o++] = (char)((dir[i + 1] - '0') * 64 + (dir[i + 2] - '0') * 8 +
                            (dir[i + 3] - '0'));
        i += 3;
      } else {
        unesc[o++] = dir[i];
      }
    }
    unesc[o] = '\0';
    if (strcmp(unesc, mnt) == 0) {
      snprintf(source, len, "%s", src);
      *ours = strcmp(type, "fuse.sstfs") == 0;
      found = 1;
    }
  }
  fclose(f);
  return found ? 0 : ENOENT;
}

/* mountpoint as an absolute path. A dead mount cannot be resolved itself
 * (ENOTCONN), so its last name is taken as it stands. */
static int mount_path(const char *mountpoint, char *mnt, size_t len) {
  if (realpath(mountpoint, mnt) != NULL)
    return 0;
  int rc = errno;
  char *copy = strdup(mountpoint), *dir = NULL, *name;
  if (copy == NULL)
    return ENOMEM;
  char *slash = strrchr(copy, '/');
  while (slash != NULL && slash != copy && slash[1] == '\0') {
    *slash = '\0'; /* trailing slashes */
    slash = strrchr(copy, '/');
  }
  if (slash == NULL) {
    name = copy;
    dir = realpath(".", NULL);
  } else {
    *slash = '\0';
    name = slash + 1;
    dir = realpath(copy[0] ? copy : "/", NULL);
  }
  if (dir != NULL && *name && strcmp(name, ".") && strcmp(name, "..") &&
      snprintf(mnt, len, "%s/%s", strcmp(dir, "/") ? dir : "", name) <
          (int)len)
    rc = 0;
  free(dir);
  free(copy);
  return rc;
}

/* What became of a staging mount that is no longer mounted. Returns the
 * exit status: 1 (nothing was written then), or 2 if nothing is known. */
static int unmounted_report(const char *mnt) {
  char area[PATH_MAX], msg[PATH_MAX + 512], target[PATH_MAX + 16];
  if (area_lookup(mnt, area, sizeof area) != 0)
    return 2;
  int fd = open(area, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 2;
  const char *out = "its table";
  if (area_read_file(fd, "target", target, sizeof target) > 4 &&
      strncmp(target, "out ", 4) == 0) {
    target[strcspn(target, "\n")] = '\0';
    out = target + 4;
  }
  if (area_read_file(fd, "error", msg, sizeof msg) > 0)
    fprintf(stderr, "sstfs: %s is not mounted; its last staging mount ended "
                    "without writing %s: %s",
            mnt, out, msg);
  else
    fprintf(stderr,
            "sstfs: %s is not mounted; its staging daemon stopped without "
            "writing %s; the staging area %s is kept (resume it with "
            "sstfs --stage %s %s -o resume)\n",
            mnt, out, area, out, mnt);
  close(fd);
  return 1;
}

int sstfs_unmount_main(const char *mountpoint) {
  char mnt[PATH_MAX], source[PATH_MAX];
  int ours = 0, rc;
  if ((rc = mount_path(mountpoint, mnt, sizeof mnt)) != 0) {
    fprintf(stderr, "sstfs: %s: %s\n", mountpoint, strerror(rc));
    return 1;
  }
  if (find_mount(mnt, source, sizeof source, &ours) != 0 || !ours) {
    if (unmounted_report(mnt) == 1)
      return 1;
    fprintf(stderr, "sstfs: %s: not an sstfs mount\n", mnt);
    return 1;
  }
  /* A staging mount's source is its staging area; its lock is held by
   * the daemon until it exits. A read-only mount's source is a table. */
  char p[PATH_MAX + 16], target[PATH_MAX + 16] = "";
  snprintf(p, sizeof p, "%s/lock", source);
  int lock = open(p, O_RDONLY | O_CLOEXEC);
  int dir_fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    area_read_file(dir_fd, "target", target, sizeof target);
    target[strcspn(target, "\n")] = '\0';
    close(dir_fd);
  }
  const char *out = strncmp(target, "out ", 4) == 0 ? target + 4 : "the table";
  if (run("fusermount3", "-u", "--", mnt) != 0) {
    fprintf(stderr, "sstfs: could not unmount %s\n", mnt);
    if (lock >= 0)
      close(lock);
    return 1;
  }
  if (lock < 0)
    return 0; /* a read-only mount: nothing to wait for */
  /* Wait for the commit: the area moves away once the table is written;
   * the daemon exits, releasing the lock and leaving the area with an
   * error, when it is not. */
  struct stat st;
  while (stat(source, &st) == 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (stat(source, &st) != 0) {
    /* Committed: the staging area is gone. What the daemon had to add is
     * in the lock file (finish_committed). */
    char report[4096];
    ssize_t n = pread(lock, report, sizeof report - 1, 0);
    if (n > 0) {
      report[n] = '\0';
      fprintf(stderr, "sstfs: %s was written; %s", out, report);
    }
    close(lock);
    return 0;
  }
  close(lock);
  FILE *f;
  snprintf(p, sizeof p, "%s/error", source);
  char msg[4 * PATH_MAX] = "";
  if ((f = fopen(p, "r")) != NULL) {
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = '\0';
    fclose(f);
    fprintf(stderr, "sstfs: the table was not written: %s", msg);
  } else {
    fprintf(stderr,
            "sstfs: the daemon stopped without writing %s; the staging "
            "area %s is kept (resume it with sstfs --stage %s %s -o "
            "resume)\n",
            out, source, out, mnt);
  }
  return 1;
}
