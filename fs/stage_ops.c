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
#include <sys/xattr.h>
#include <unistd.h>

#include "area.h"
#include "common.h"

/* Taken shared by every operation that changes the staging area, and
 * exclusively by a commit while mounted (st_fsyncdir), so that such a
 * commit sees no change half done. A commit waits for the changes under
 * way, not for every later one: the lock prefers writers. */
static pthread_rwlock_t stage_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* The names of staged hard links. libfuse's path API gives the kernel an
 * inode per name, each with its own cached attributes: a change made
 * through one name (a write, chmod, another link) leaves the others'
 * stale. So the names of each staged file with more than one link are
 * noted as they are looked up or made, and a change to the file
 * invalidates what the kernel holds for all of them. A name that has
 * gone since costs an invalidation that finds nothing. */
typedef struct link_names {
  uint64_t ino; /* tree/'s inode number; 0: a free slot */
  char **paths;
  size_t n;
} link_names;

static pthread_mutex_t links_lock = PTHREAD_MUTEX_INITIALIZER;
static link_names *links;
static size_t links_n, links_cap;

#define LINK_NAMES_MAX 64 /* names kept per file */

static link_names *links_slot(link_names *v, size_t cap, uint64_t ino) {
  size_t j = (size_t)(ino * 0x9E3779B97F4A7C15ull) % cap;
  while (v[j].ino != 0 && v[j].ino != ino)
    j = (j + 1) % cap;
  return &v[j];
}

/* Notes that path names the staged file ino (which has several links). */
static void links_note(uint64_t ino, const char *path) {
  if (ino == 0)
    return;
  pthread_mutex_lock(&links_lock);
  if (2 * (links_n + 1) > links_cap) {
    size_t cap = links_cap ? 2 * links_cap : 64;
    link_names *v = calloc(cap, sizeof *v);
    if (v == NULL)
      goto out;
    for (size_t i = 0; i < links_cap; i++)
      if (links[i].ino != 0)
        *links_slot(v, cap, links[i].ino) = links[i];
    free(links);
    links = v;
    links_cap = cap;
  }
  link_names *l = links_slot(links, links_cap, ino);
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->paths[i], path) == 0)
      goto out;
  if (l->n == LINK_NAMES_MAX)
    goto out;
  char **paths = realloc(l->paths, (l->n + 1) * sizeof *paths);
  char *copy = strdup(path);
  if (paths == NULL || copy == NULL) {
    free(copy);
    if (paths != NULL)
      l->paths = paths;
    goto out;
  }
  if (l->ino == 0)
    links_n++;
  l->ino = ino;
  l->paths = paths;
  l->paths[l->n++] = copy;
out:
  pthread_mutex_unlock(&links_lock);
}

/* The file ino changed: the kernel forgets the attributes it holds for
 * each of its names. */
static void links_changed(uint64_t ino) {
  char **paths = NULL;
  size_t n = 0;
  pthread_mutex_lock(&links_lock);
  link_names *l = links_cap ? links_slot(links, links_cap, ino) : NULL;
  if (l != NULL && l->ino == ino && (paths = malloc(l->n * sizeof *paths))) {
    for (size_t i = 0; i < l->n; i++)
      if ((paths[n] = strdup(l->paths[i])) != NULL)
        n++;
  }
  pthread_mutex_unlock(&links_lock);
  struct fuse_context *ctx = fuse_get_context();
  for (size_t i = 0; i < n; i++) {
    if (ctx != NULL && ctx->fuse != NULL)
      fuse_invalidate_path(ctx->fuse, paths[i]);
    free(paths[i]);
  }
  free(paths);
}

/* links_changed for the staged file at path if it has several links
 * (st: its attributes, if known). */
static void links_changed_at(const char *path, const struct stat *st) {
  struct stat buf;
  const char *name;
  if (st == NULL) {
    int dfd = ov_at(&S, path, &name);
    if (fstatat(dfd, name, &buf, AT_SYMLINK_NOFOLLOW) != 0)
      return;
    st = &buf;
  }
  if (S_ISREG(st->st_mode) && st->st_nlink > 1)
    links_changed(st->st_ino);
}

/* A base name linked to a copy-up (ov_linked_up): noted, and what the
 * kernel holds of it forgotten. */
static void linked_up(const char *path) {
  struct stat st;
  if (fstatat(S.tree_fd, ov_rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0)
    links_note(st.st_ino, path);
  struct fuse_context *ctx = fuse_get_context();
  if (ctx != NULL && ctx->fuse != NULL)
    fuse_invalidate_path(ctx->fuse, path);
}

void stage_ops_free_links(void) {
  for (size_t i = 0; i < links_cap; i++) {
    for (size_t j = 0; j < links[i].n; j++)
      free(links[i].paths[j]);
    free(links[i].paths);
  }
  free(links);
  links = NULL;
  links_n = links_cap = 0;
}

static int st_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd = ov_at(&S, path, &name);
  if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISREG(st->st_mode) && st->st_nlink > 1)
      links_note(st->st_ino, path);
    return 0;
  }
  if (dfd != S.tree_fd)
    return -errno;
  if (errno != ENOENT)
    return -errno;
  sst_node n;
  int rc = ov_base_node(&S, path, &n);
  if (rc)
    return -rc;
  ov_base_stat(&S, path, &n, st);
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

static mode_t kept_mode(mode_t mode, int is_dir) {
  return ov_kept_mode(&S, mode, is_dir);
}

/* A new entry belongs to whoever asked for it: the request's uid, and its
 * gid unless the parent directory is setgid, where it takes the parent's
 * group as on any Linux file system. The mode is set again after the
 * chown, which clears setuid and setgid bits. Only a daemon running as
 * root can give entries away; any other owns what it stages. fd is a new
 * file's descriptor, or -1 for a new directory or symbolic link (mode 0),
 * found by dfd and name. */
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
    if (fd < 0 && mode != 0) /* a new directory inherits the bit */
      mode |= S_ISGID;
  }
  int rc = fd >= 0 ? fchown(fd, ctx->uid, gid)
                   : fchownat(dfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc == 0 && (fd >= 0 || mode != 0))
    rc = fd >= 0 ? fchmod(fd, mode & 07777)
                 : fchmodat(dfd, name, mode & 07777, 0);
  return rc == 0 ? 0 : errno;
}

static int st_mkdir(const char *path, mode_t mode) {
  const char *r = ov_rel(path);
  int rc = ov_stage_parents(&S, r);
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
  int wrote; /* written through: at its close, tell the other names */
  const sst_reader *base;
  sst_entry entry; /* a base value: read in place, or through the reader
                      when it is stored compressed */
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
    if ((rc = ov_stage_parents(&S, r)) != 0)
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
  h->wrote = 0;
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
  h->wrote = 0;
  h->base = b;
  h->entry = n.entry;
  h->entry.key = NULL; /* not kept: only the value is read */
  handle_open(h, fi);
  fi->keep_cache = 1;
  return 0;
}

static int st_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi) {
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd >= 0) {
    ssize_t n = pread(h->fd, buf, size, off);
    return n < 0 ? -errno : (int)n;
  }
  const sst_entry *e = &h->entry;
  if (off < 0 || (uint64_t)off >= e->value_len)
    return 0;
  if (e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) {
    size_t got;
    int rc = sst_reader_read(h->base, e, (uint64_t)off, buf, size, &got);
    if (rc) {
      sstfs_log("%s: base value of %s: %s", sst_reader_path(h->base),
                ov_rel(path), sst_strerror(rc));
      return -EIO;
    }
    return (int)got;
  }
  uint64_t n = e->value_len - (uint64_t)off;
  if (n > size)
    n = size;
  memcpy(buf, sst_reader_data(h->base) + e->value_offset + (uint64_t)off,
         (size_t)n);
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
  h->wrote = 1;
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
  handle *h = (handle *)(uintptr_t)fi->fh;
  if (h->fd >= 0)
    unmark(h);
  struct stat st;
  if (h->fd >= 0 && h->wrote && fstat(h->fd, &st) == 0)
    links_changed_at(path, &st);
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
    h->wrote = 1;
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
  if (rc == 0 && fstat(fd, &st) == 0)
    links_changed_at(path, &st);
  close(fd);
  return rc;
}

static int staged_for_meta(const char *path, int *dfd, const char **name);

/* A base entry at path is gone: its parent directory changed, as on any
 * file system (its mtime is now). A parent only in the base is staged
 * first, with its metadata. */
static int touch_parent(const char *path) {
  char parent[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t n = slash && slash != path ? (size_t)(slash - path) : 1;
  if (n >= sizeof parent)
    return ENAMETOOLONG;
  memcpy(parent, path, n);
  parent[n] = '\0';
  const char *name;
  int dfd, rc = staged_for_meta(parent, &dfd, &name);
  struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
  if (rc == 0 && utimensat(dfd, name, t, AT_SYMLINK_NOFOLLOW) != 0)
    rc = errno;
  return rc;
}

static int st_unlink(const char *path) {
  const char *r;
  int dfd = ov_at(&S, path, &r);
  struct stat st;
  int linked = fstatat(dfd, r, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode) && st.st_nlink > 1;
  int staged = unlinkat(dfd, r, 0) == 0;
  if (staged && linked)
    links_changed(st.st_ino); /* the other names' link count */
  if (!staged && errno != ENOENT)
    return -errno;
  if (dfd != S.tree_fd)
    return staged ? 0 : -ENOENT;
  sst_node n;
  if (ov_base_node(&S, path, &n) == 0) {
    if (n.is_dir)
      return staged ? 0 : -EISDIR;
    int rc = ov_whiteout(&S, r);
    if (rc == 0 && !staged)
      rc = touch_parent(path);
    return -rc;
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
    if (rc == 0 && !staged)
      rc = touch_parent(path);
    return -rc;
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
  if (to_fd == S.tree_fd && (rc = ov_stage_parents(&S, to_name)) != 0)
    return -rc;
  if (renameat(from_fd, from_name, to_fd, to_name) != 0)
    return -errno;
  if (from_in_base && (rc = ov_whiteout(&S, ov_rel(from))) != 0)
    return -rc;
  return 0;
}

/* The staged entry at path, for a change to its metadata: a base entry
 * is copied up first (ov_copy_up_meta), so that the change lands in the
 * table. Its directory fd and name, or an errno value. */
static int staged_for_meta(const char *path, int *dfd, const char **name) {
  *dfd = ov_at(&S, path, name);
  struct stat st;
  if (fstatat(*dfd, *name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (errno != ENOENT || *dfd != S.tree_fd)
    return errno;
  sst_node n;
  int rc = ov_base_node(&S, path, &n);
  return rc ? rc : ov_copy_up_meta(&S, path, &n);
}

/* Modes, owners, times and extended attributes are kept on the staged
 * entries themselves, so that the mount enforces them
 * (default_permissions) and the commit writes them into the table. */
static int st_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd, rc = staged_for_meta(path, &dfd, &name);
  struct stat st;
  if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    rc = errno;
  if (rc == 0 &&
      fchmodat(dfd, name, kept_mode(mode, S_ISDIR(st.st_mode)), 0) != 0)
    rc = errno;
  if (rc == 0)
    links_changed_at(path, &st);
  return -rc;
}

static int st_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi) {
  (void)fi;
  if (!S.is_root)
    return 0; /* accepted: the daemon owns all it stages */
  const char *name;
  int dfd, rc = staged_for_meta(path, &dfd, &name);
  /* The kernel checked that the caller may; chown clears setuid and
   * setgid bits as it does on any Linux file system. */
  if (rc == 0 && fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    rc = errno;
  if (rc == 0)
    links_changed_at(path, NULL);
  return -rc;
}

static int st_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
  (void)fi;
  const char *name;
  int dfd, rc = staged_for_meta(path, &dfd, &name);
  if (rc == 0 && utimensat(dfd, name, tv, AT_SYMLINK_NOFOLLOW) != 0)
    rc = errno;
  if (rc == 0)
    links_changed_at(path, NULL);
  return -rc;
}

static int st_readlink(const char *path, char *buf, size_t size) {
  if (size == 0)
    return -EINVAL;
  const char *name;
  int dfd = ov_at(&S, path, &name);
  ssize_t n = readlinkat(dfd, name, buf, size - 1);
  if (n >= 0) {
    buf[n] = '\0';
    return 0;
  }
  if (errno != ENOENT || dfd != S.tree_fd)
    return -errno;
  sst_node node;
  sst_entry e;
  int rc = ov_base_node(&S, path, &node);
  if (rc)
    return -rc;
  if (ov_base_meta(&S, path, &node, &e) != 0 || e.meta.type != SST_TYPE_SYMLINK)
    return -EINVAL;
  const sst_reader *b = S.base[e.source];
  const uint8_t *v;
  if ((rc = sst_reader_value(b, &e, &v)) != 0) {
    sstfs_log("%s: base link target of %s: %s", sst_reader_path(b),
              ov_rel(path), sst_strerror(rc));
    return -EIO;
  }
  size_t len = e.value_len < size - 1 ? (size_t)e.value_len : size - 1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  return 0;
}

static int st_symlink(const char *target, const char *path) {
  const char *r = ov_rel(path);
  int rc = ov_stage_parents(&S, r);
  if (rc)
    return -rc;
  if (symlinkat(target, S.tree_fd, r) != 0)
    return -errno;
  if ((rc = take_owner(S.tree_fd, r, -1, 0)) != 0) {
    unlinkat(S.tree_fd, r, 0);
    return -rc;
  }
  return 0;
}

/* A hard link: both names in tree/ (a base file is copied up first). */
static int st_link(const char *from, const char *to) {
  const char *fname, *tname;
  int ffd = ov_at(&S, from, &fname), tfd = ov_at(&S, to, &tname), rc = 0;
  struct stat st;
  if (fstatat(ffd, fname, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT || ffd != S.tree_fd)
      return -errno;
    sst_node n;
    if ((rc = ov_base_node(&S, from, &n)) != 0)
      return -rc;
    if (n.is_dir)
      return -EPERM;
    if ((rc = ov_copy_up(&S, from, &n)) != 0)
      return -rc;
  }
  if (tfd == S.tree_fd && (rc = ov_stage_parents(&S, tname)) != 0)
    return -rc;
  if (linkat(ffd, fname, tfd, tname, 0) != 0)
    return -errno;
  /* Every name's link count changed (see links_note). */
  if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    links_note(st.st_ino, from);
    links_note(st.st_ino, to);
    links_changed(st.st_ino);
  }
  return 0;
}

/* Extended attributes: user.* only, kept on the staged entries (a base
 * entry's are read from its table until it is copied up). Others are
 * refused (ENOTSUP) and never there (ENODATA). */
static int is_user_xattr(const char *name) {
  return strncmp(name, "user.", 5) == 0;
}

/* A descriptor of the staged entry at path for its attributes: -1 with
 * errno ENOENT when it is not staged, ELOOP for a symbolic link. */
static int staged_xattr_fd(const char *path) {
  const char *name;
  int dfd = ov_at(&S, path, &name);
  return openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

/* Calls fn for each attribute of the base entry at path. 0, ENOENT
 * (not in the base), or an errno value. */
static int base_xattrs(const char *path,
                       int (*fn)(void *ctx, const sst_xattr *x), void *ctx) {
  sst_node n;
  sst_entry e;
  int rc = ov_base_node(&S, path, &n);
  if (rc)
    return rc;
  if (ov_base_meta(&S, path, &n, &e) != 0)
    return 0;
  uint8_t *buf;
  if ((rc = ov_base_xattrs(&S, &e, &buf)) != 0 || buf == NULL)
    return rc;
  size_t pos = 0;
  sst_xattr x;
  int more;
  while ((more = sst_xattrs_next(buf, e.meta.xattr_len, &pos, &x)) > 0)
    if ((rc = fn(ctx, &x)) != 0)
      break;
  if (more < 0) {
    sstfs_log("%s: damaged extended attributes of %s",
              sst_reader_path(S.base[e.source]), ov_rel(path));
    rc = EIO;
  }
  free(buf);
  return rc;
}

typedef struct xattr_query {
  const char *name;
  char *value;
  size_t size;
  ssize_t result; /* -ENODATA until found */
} xattr_query;

static int find_xattr(void *ctx, const sst_xattr *x) {
  xattr_query *q = ctx;
  if (x->name_len != strlen(q->name) ||
      memcmp(x->name, q->name, x->name_len) != 0)
    return 0;
  if (q->size == 0)
    q->result = (ssize_t)x->value_len;
  else if (q->size < x->value_len)
    q->result = -ERANGE;
  else {
    memcpy(q->value, x->value, x->value_len);
    q->result = (ssize_t)x->value_len;
  }
  return 1; /* found: stop */
}

static int list_xattr(void *ctx, const sst_xattr *x) {
  xattr_query *q = ctx;
  if (x->name_len < 5 || memcmp(x->name, "user.", 5) != 0)
    return 0;
  size_t need = (size_t)q->result + x->name_len + 1;
  if (q->size != 0) {
    if (need > q->size) {
      q->result = -ERANGE;
      return 1;
    }
    memcpy(q->value + q->result, x->name, x->name_len);
    q->value[q->result + (ssize_t)x->name_len] = '\0';
  }
  q->result = (ssize_t)need;
  return 0;
}

static int st_getxattr(const char *path, const char *name, char *value,
                       size_t size) {
  if (!is_user_xattr(name))
    return -ENODATA;
  int fd = staged_xattr_fd(path);
  if (fd >= 0) {
    ssize_t n = fgetxattr(fd, name, value, size);
    int err = errno;
    close(fd);
    return n >= 0 ? (int)n : -err;
  }
  if (errno == ELOOP)
    return -ENODATA;
  if (errno != ENOENT || ov_is_hidden(path))
    return -errno;
  xattr_query q = {name, value, size, -ENODATA};
  int rc = base_xattrs(path, find_xattr, &q);
  return rc && rc != 1 ? -rc : (int)q.result;
}

static int st_listxattr(const char *path, char *list, size_t size) {
  int fd = staged_xattr_fd(path);
  if (fd < 0) {
    if (errno == ELOOP)
      return 0;
    if (errno != ENOENT || ov_is_hidden(path))
      return -errno;
    xattr_query q = {NULL, list, size, 0};
    int rc = base_xattrs(path, list_xattr, &q);
    return rc && rc != 1 ? -rc : (int)q.result;
  }
  /* The staged entry's, user.* only. */
  ssize_t n = flistxattr(fd, NULL, 0);
  char *all = n > 0 ? malloc((size_t)n) : NULL;
  if (n > 0 && (all == NULL || (n = flistxattr(fd, all, (size_t)n)) < 0)) {
    int err = all == NULL ? ENOMEM : errno;
    free(all);
    close(fd);
    return -(err == ERANGE ? EAGAIN : err);
  }
  int err = errno;
  close(fd);
  if (n < 0)
    return -err;
  size_t out = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(all + i) + 1) {
    size_t len = strlen(all + i) + 1;
    if (!is_user_xattr(all + i))
      continue;
    if (size != 0) {
      if (out + len > size) {
        free(all);
        return -ERANGE;
      }
      memcpy(list + out, all + i, len);
    }
    out += len;
  }
  free(all);
  return (int)out;
}

static int st_setxattr(const char *path, const char *name, const char *value,
                       size_t size, int flags) {
  if (!is_user_xattr(name))
    return -ENOTSUP;
  const char *rel;
  int dfd, rc = staged_for_meta(path, &dfd, &rel);
  if (rc)
    return -rc;
  int fd = staged_xattr_fd(path);
  if (fd < 0)
    return -(errno == ELOOP ? EPERM : errno);
  rc = fsetxattr(fd, name, value, size, flags) == 0 ? 0 : errno;
  close(fd);
  return -rc;
}

static int st_removexattr(const char *path, const char *name) {
  if (!is_user_xattr(name))
    return -ENODATA;
  int fd = staged_xattr_fd(path);
  if (fd < 0 && errno == ENOENT && !ov_is_hidden(path)) {
    /* A base entry: copied up only if it has the attribute. */
    xattr_query q = {name, NULL, 0, -ENODATA};
    int rc = base_xattrs(path, find_xattr, &q);
    if (rc && rc != 1)
      return -rc;
    if (q.result < 0)
      return (int)q.result;
    const char *rel;
    int dfd;
    if ((rc = staged_for_meta(path, &dfd, &rel)) != 0)
      return -rc;
    fd = staged_xattr_fd(path);
  }
  if (fd < 0)
    return -(errno == ELOOP ? ENODATA : errno);
  int rc = fremovexattr(fd, name) == 0 ? 0 : errno;
  close(fd);
  return -rc;
}

static int st_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  return fstatvfs(S.tree_fd, sv) == 0 ? 0 : -errno;
}

/* What a table cannot hold (devices, FIFOs, sockets) is refused with a
 * log line; the first refusal is logged, not every one. */
static int refuse(const char *what, const char *path, int err) {
  static int logged;
  if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
    sstfs_log("%s: %s refused: a table holds only regular files, "
              "directories and symbolic links (%s)",
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

static void *st_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  ov_linked_up = linked_up;
  conn->max_write = 1u << 20; /* large files arrive in 1 MiB writes */
  /* Inode numbers as tree/ has them (the names of a hard link share
   * one), and apart from them for base entries (ov_base_stat). */
  cfg->use_ino = 1;
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
SHARED(st_symlink, (const char *t, const char *p), (t, p))
SHARED(st_link, (const char *f, const char *t), (f, t))
SHARED(st_setxattr,
       (const char *p, const char *n, const char *v, size_t z, int fl),
       (p, n, v, z, fl))
SHARED(st_removexattr, (const char *p, const char *n), (p, n))

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
    .readlink = st_readlink,
    .symlink = shared_st_symlink,
    .link = shared_st_link,
    .setxattr = shared_st_setxattr,
    .getxattr = st_getxattr,
    .listxattr = st_listxattr,
    .removexattr = shared_st_removexattr,
};
