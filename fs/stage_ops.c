/* stage_ops.c — the staging mount's FUSE operations (libfuse's path API:
 * staging is dominated by writes, and paths map directly onto tree/).
 * Each turns a request into overlay calls (overlay.c) and errno values;
 * the operations that change the staging area run under stage_lock. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "area.h"
#include "common.h"

/* Taken shared by every operation that changes the staging area, and
 * exclusively by a commit while mounted (st_fsyncdir), so that such a
 * commit sees no change half done. A commit waits for the changes under
 * way, not for every later one: the lock prefers writers. */
static pthread_rwlock_t stage_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static int st_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = ov_at(&S, path, &name);
  if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (dfd != S.tree_fd)
    return -errno;
  if (errno != ENOENT)
    return -errno;
  sst_node n;
  int rc = ov_base_node(&S, path, &n);
  if (rc)
    return -rc;
  ov_base_stat(&S, &n, st);
  return 0;
}

static int st_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  filler(buf, ".", NULL, 0, 0);
  filler(buf, "..", NULL, 0, 0);
  list_ctx l = {.s = &S, .path = path, .buf = buf, .filler = filler, .fill = 1};
  return -ov_list(&S, &l);
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
  /* Made by the daemon's own user with a mode its umask left whole: the
   * file system already gave it that owner, group and mode. */
  if (ctx->uid == geteuid() && ctx->gid == getegid() &&
      (mode & 07777 & S.umask) == 0)
    return 0;
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
  const char *r = ov_rel(path);
  int rc = ov_make_parents(S.tree_fd, r);
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
  struct handle *prev, *next; /* in open_handles */
} handle;

static pthread_mutex_t mark_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every open handle: a mount stopped by a signal gets no release for
 * them, and stage_ops_close_all frees them then. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static handle *open_handles;

/* Records h as open and hands it to fi. */
static void handle_open(handle *h, struct fuse_file_info *fi) {
  pthread_mutex_lock(&handles_lock);
  h->prev = NULL;
  h->next = open_handles;
  if (open_handles != NULL)
    open_handles->prev = h;
  open_handles = h;
  pthread_mutex_unlock(&handles_lock);
  fi->fh = (uint64_t)(uintptr_t)h;
}

static void handle_forget(handle *h) {
  pthread_mutex_lock(&handles_lock);
  if (h->prev != NULL)
    h->prev->next = h->next;
  else
    open_handles = h->next;
  if (h->next != NULL)
    h->next->prev = h->prev;
  pthread_mutex_unlock(&handles_lock);
}

void stage_ops_close_all(void) {
  pthread_mutex_lock(&handles_lock);
  while (open_handles != NULL) {
    handle *h = open_handles;
    open_handles = h->next;
    /* Markers stay: these files were open for writing when it stopped. */
    if (h->fd >= 0)
      close(h->fd);
    free(h);
  }
  pthread_mutex_unlock(&handles_lock);
}

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
    sstfs_log("%s/writing: %s", S.dir, strerror(rc));
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
  int dfd = ov_at(&S, path, &r), created, rc;
  flags = (flags & ~O_NOFOLLOW) | O_NOFOLLOW | O_CLOEXEC;
  int fd = open_created(dfd, r, flags, kept_mode(mode, 0), &created);
  /* The parent is missing from tree/ only where it is a base directory
   * with nothing staged under it yet. */
  if (fd < 0 && errno == ENOENT && (flags & O_CREAT) && dfd == S.tree_fd &&
      strchr(r, '/')) {
    if ((rc = ov_make_parents(S.tree_fd, r)) != 0)
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
  handle_open(h, fi);
  return 0;
fail:
  if (created)
    unlinkat(dfd, r, 0);
  close(fd);
  free(h);
  return -rc;
}

static int st_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  return open_staged(path, fi->flags | O_CREAT, mode, fi);
}

static int st_open(const char *path, struct fuse_file_info *fi) {
  struct stat st;
  const char *name;
  int dfd = ov_at(&S, path, &name);
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return open_staged(path, fi->flags & ~O_CREAT, 0, fi);
  sst_node n;
  int rc = ov_base_node(&S, path, &n);
  if (rc)
    return -rc;
  if (n.is_dir)
    return -EISDIR;
  int writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (writing) {
    if ((rc = ov_copy_up(&S, path, &n)) != 0)
      return -rc;
    return open_staged(path, fi->flags & ~O_CREAT, 0, fi);
  }
  const sst_reader *b = S.base[n.entry.source];
  if ((rc = sst_reader_value_check(b, &n.entry)) != 0) {
    sstfs_log("%s: base value of %s: %s", sst_reader_path(b), ov_rel(path),
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
  handle_open(h, fi);
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

static int st_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd < 0)
    return 0;
  if ((datasync ? fdatasync(h->fd) : fsync(h->fd)) != 0)
    return -errno;
  int rc = ov_is_hidden(path) ? 0 : sync_parents(ov_rel(path));
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
  handle_forget(h);
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
  int dfd = ov_at(&S, path, &name);
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (dfd != S.tree_fd)
      return -errno;
    sst_node n;
    int rc = ov_base_node(&S, path, &n);
    if (rc)
      return -rc;
    if (n.is_dir)
      return -EISDIR;
    if ((rc = ov_copy_up(&S, path, &n)) != 0)
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
  int dfd = ov_at(&S, path, &r);
  int staged = unlinkat(dfd, r, 0) == 0;
  if (!staged && errno != ENOENT)
    return -errno;
  if (dfd != S.tree_fd)
    return staged ? 0 : -ENOENT;
  sst_node n;
  if (ov_base_node(&S, path, &n) == 0) {
    if (n.is_dir)
      return staged ? 0 : -EISDIR;
    int rc = ov_whiteout(&S, r);
    if (rc)
      return -rc;
    return 0;
  }
  return staged ? 0 : -ENOENT;
}

static int st_rmdir(const char *path) {
  if (!ov_is_empty(&S, path))
    return -ENOTEMPTY;
  const char *r = ov_rel(path);
  int staged = unlinkat(S.tree_fd, r, AT_REMOVEDIR) == 0;
  if (!staged && errno != ENOENT)
    return -errno;
  sst_node n;
  if (ov_base_node(&S, path, &n) == 0 && n.is_dir) {
    int rc = ov_whiteout(&S, r);
    return rc ? -rc : 0;
  }
  return staged ? 0 : -ENOENT;
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
    if (S_ISDIR(dst.st_mode) && !ov_is_empty(&S, to))
      return -ENOTEMPTY;
  }
  size_t fl = strlen(from);
  if (strncmp(to, from, fl) == 0 && to[fl] == '/')
    return -EINVAL; /* a directory into itself */
  /* Everything that moves must be staged first. */
  sst_node n;
  int from_in_base = ov_base_node(&S, from, &n) == 0;
  if (from_in_base) {
    struct stat st;
    const char *fname;
    int ffd = ov_at(&S, from, &fname);
    int staged = fstatat(ffd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (n.is_dir)
      rc = ov_copy_up_dir(&S, from, &n);
    else if (!staged)
      rc = ov_copy_up(&S, from, &n);
    if (rc)
      return -rc;
  }
  if (dst_exists) {
    sst_node dn;
    if (ov_base_node(&S, to, &dn) == 0 &&
        (rc = ov_whiteout(&S, ov_rel(to))) != 0)
      return -rc;
    if (S_ISDIR(dst.st_mode) &&
        unlinkat(S.tree_fd, ov_rel(to), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return -errno;
  }
  const char *from_name, *to_name;
  int from_fd = ov_at(&S, from, &from_name), to_fd = ov_at(&S, to, &to_name);
  if (to_fd == S.tree_fd && (rc = ov_make_parents(S.tree_fd, to_name)) != 0)
    return -rc;
  if (renameat(from_fd, from_name, to_fd, to_name) != 0)
    return -errno;
  if (from_in_base && (rc = ov_whiteout(&S, ov_rel(from))) != 0)
    return -rc;
  return 0;
}

/* Modes and owners are kept in the staging area, so that the mount
 * enforces them (default_permissions); a table does not keep them yet.
 * Base entries take them without keeping them. */
static int st_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = ov_at(&S, path, &name);
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
  int dfd = ov_at(&S, path, &name);
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
  int dfd = ov_at(&S, path, &name);
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
    sstfs_log("%s: %s refused: a table holds only regular files and "
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
  cfg->hard_remove = 0; /* open files unlinked move to tmp/ (see ov_at(&S, )) */
  /* Only this mount changes the tree, and the kernel updates its caches
   * on every change made through it: cache names and attributes. */
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 60.0;
  return NULL;
}

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
  int rc = stage_commit(&S, err, sizeof err);
  pthread_rwlock_unlock(&stage_lock);
  if (rc == 0)
    return 0;
  sstfs_log("commit of %s on sync of the mount failed: %s; the mount goes on",
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

const struct fuse_operations stage_ops = {
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
