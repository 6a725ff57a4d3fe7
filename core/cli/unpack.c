/* unpack.c — sst unpack: a table's keys written out as a directory
 * tree, named as the sstfs mount shows them. Entries with metadata
 * (format version 2) become directories, symlinks and hard links, with
 * their modes, owners, mtimes and extended attributes; a directory's are
 * set once everything under it is written, which key order tells: the
 * keys under "a/" follow the entry "a/" without a gap. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "dir_stack.h"
#include "sstpath.h"

/* Writes all of p to fd; returns 0 or an errno value. */
static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR && !interrupted)
      continue;
    if (n < 0)
      return errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* A directory entry whose metadata waits for everything under it. The
 * pending directories nest: each one's key is a prefix of the next, so
 * one buffer (dir_key) holds the keys of all. */
typedef struct pending_dir {
  size_t prefix_len; /* its key with the "/"; 0 for the top ("/") */
  sst_meta meta;
} pending_dir;

/* The first name written of a hard-link group. */
typedef struct link_name {
  uint64_t link_id; /* 0: a free slot */
  char *path;
} link_name;

typedef struct unpacker {
  const command *c;
  const char *table, *dir;
  unsigned path_flags;
  int quiet;
  int same_owner; /* restore owners: by default when run as root */
  const sst_reader *r;
  sst_iter *probe; /* finds keys under key + "/" */
  uint8_t *key;    /* the current key, SST_KEY_MAX + 1 bytes */
  char *path;      /* its path, SST_PATH_MAX + 1 bytes */
  dir_stack ds;
  dir_stack link_ds; /* reaches the first names of hard-link groups */
  uint8_t *dir_key;  /* the deepest pending directory's key */
  pending_dir *pending;
  size_t n_pending, cap_pending;
  link_name *links; /* open addressing by link_id; cap a power of two */
  size_t n_links, cap_links;
  uint8_t *xattrs; /* SST_XATTRS_MAX bytes, once needed */
  progress_line line;
  uint64_t files, bytes, tombstones, total_files, total_bytes;
  uint64_t dirs, symlinks, hard_links, warnings;
} unpacker;

static int unpack_key_error(const unpacker *u, const sst_entry *e,
                            const char *what, int rc) {
  char shown[SST_KEY_RENDER_SIZE];
  sst_key_render(e->key, e->key_len, shown, sizeof shown);
  progress_hide();
  fprintf(stderr, "sst %s: %s: %s key '%s': %s\n", u->c->name, u->table, what,
          shown, sst_strerror(rc));
  return EXIT_FAIL;
}

static void unpack_tick(unpacker *u) {
  if (!progress_due(&u->line))
    return;
  double secs = u->line.last - u->line.started;
  double mb = (double)u->bytes / 1e6;
  progress_draw(&u->line,
                "sst unpack: %" PRIu64 "/%" PRIu64
                " files, %.1f/%.1f MB, %.1f MB/s",
                u->files, u->total_files, mb, (double)u->total_bytes / 1e6,
                secs > 0 ? mb / secs : 0.0);
}

/* Whether a live key starts with the current key + "/", so that the key's
 * file takes its "%!" name beside the directory. `next` is the entry after
 * the key (NULL at the end): it settles most cases without a seek; only a
 * next key such as key + "-x", which sorts before key + "/", needs one. */
static int unpack_also_dir(unpacker *u, size_t key_len, const sst_entry *next,
                           int *also_dir) {
  *also_dir = 0;
  if ((u->path_flags & SST_PATH_FLAT) || next == NULL ||
      key_len + 1 > SST_KEY_MAX)
    return 0;
  if (next->key_len <= key_len || memcmp(next->key, u->key, key_len) != 0 ||
      next->key[key_len] > '/')
    return 0; /* every key under key + "/" would sort before next */
  if (next->key[key_len] == '/' && !(next->flags & SST_FLAG_TOMBSTONE)) {
    *also_dir = 1;
    return 0;
  }
  u->key[key_len] = '/';
  int rc = sst_iter_prefix(u->probe, u->key, key_len + 1);
  while (rc == 0 && sst_iter_valid(u->probe) &&
         (sst_iter_entry(u->probe)->flags & SST_FLAG_TOMBSTONE))
    rc = sst_iter_next(u->probe);
  if (rc == 0)
    rc = sst_iter_status(u->probe);
  *also_dir = rc == 0 && sst_iter_valid(u->probe);
  return rc;
}

/* ---- metadata ----------------------------------------------------- */

/* A problem that leaves the entry written, only without some of its
 * metadata: "sst unpack: warning: DIR/PATH: MESSAGE". */
__attribute__((format(printf, 4, 5))) static void
unpack_warn(unpacker *u, const char *path, size_t path_len, const char *fmt,
            ...) {
  progress_hide();
  fprintf(stderr, "sst %s: warning: ", u->c->name);
  put_path(u->dir, path, path_len);
  fputs(": ", stderr);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  u->warnings++;
}

/* Sets the extended attributes of e on fd; a table that cannot give
 * them fails, one the file system refuses is a warning. */
static int unpack_xattrs(unpacker *u, int fd, const sst_entry *e,
                         size_t path_len) {
  if (e->meta.xattr_len > SST_XATTRS_MAX)
    return unpack_key_error(u, e, "extended attributes of", SST_ECORRUPT);
  if (u->xattrs == NULL && (u->xattrs = malloc(SST_XATTRS_MAX)) == NULL) {
    fprintf(stderr, "sst %s: out of memory\n", u->c->name);
    return EXIT_FAIL;
  }
  int rc = sst_reader_xattrs(u->r, e, u->xattrs);
  if (rc != 0)
    return unpack_key_error(u, e, "extended attributes of", rc);
  size_t pos = 0;
  sst_xattr x;
  while ((rc = sst_xattrs_next(u->xattrs, e->meta.xattr_len, &pos, &x)) == 1) {
    char name[SST_NAME_MAX + 1];
    if (x.name_len == 0 || x.name_len > SST_NAME_MAX ||
        memchr(x.name, '\0', x.name_len) != NULL)
      return unpack_key_error(u, e, "extended attributes of", SST_ECORRUPT);
    memcpy(name, x.name, x.name_len);
    name[x.name_len] = '\0';
    if (fsetxattr(fd, name, x.value, x.value_len, 0) != 0)
      unpack_warn(u, u->path, path_len, "cannot set extended attribute %s: %s",
                  name, strerror(errno));
  }
  if (rc < 0)
    return unpack_key_error(u, e, "extended attributes of", rc);
  return EXIT_OK;
}

/* Gives what was written for e (open as fd, or with fd -1 a symlink, name
 * in dfd) e's metadata: owner first (a chown clears setuid, setgid and
 * security.capability), then extended attributes, mode and mtime. */
static int unpack_meta(unpacker *u, int fd, int dfd, const char *name,
                       const sst_entry *e, size_t path_len) {
  const sst_meta *m = &e->meta;
  if (u->same_owner &&
      (fd >= 0 ? fchown(fd, m->uid, m->gid)
               : fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW)) != 0)
    unpack_warn(u, u->path, path_len,
                "cannot set owner %" PRIu32 ":%" PRIu32 ": %s", m->uid, m->gid,
                strerror(errno));
  if (fd >= 0 && m->xattr_len > 0 &&
      unpack_xattrs(u, fd, e, path_len) != EXIT_OK)
    return EXIT_FAIL;
  if (fd >= 0 && fchmod(fd, m->mode & 07777) != 0)
    unpack_warn(u, u->path, path_len, "cannot set mode %04o: %s",
                (unsigned)(m->mode & 07777), strerror(errno));
  struct timespec times[2] = {
      {.tv_nsec = UTIME_OMIT},
      {.tv_sec = (time_t)m->mtime_sec, .tv_nsec = (long)m->mtime_nsec}};
  if ((fd >= 0 ? futimens(fd, times)
               : utimensat(dfd, name, times, AT_SYMLINK_NOFOLLOW)) != 0)
    unpack_warn(u, u->path, path_len, "cannot set modification time: %s",
                strerror(errno));
  return EXIT_OK;
}

/* ---- directories ---------------------------------------------------- */

/* Sets the metadata of the deepest pending directory, now that nothing
 * more goes under it, and forgets it. */
static int unpack_close_dir(unpacker *u) {
  const pending_dir *d = &u->pending[--u->n_pending];
  sst_entry e = {.key = u->dir_key,
                 .key_len = d->prefix_len > 0 ? d->prefix_len : 1,
                 .flags = SST_FLAG_META,
                 .meta = d->meta};
  int fd = u->ds.root;
  size_t path_len = 0;
  u->path[0] = '\0';
  if (d->prefix_len > 0) {
    int rc = sst_path_from_key(u->dir_key, d->prefix_len - 1, u->path_flags, 0,
                               u->path, &path_len);
    if (rc != 0)
      return unpack_key_error(u, &e, "path of", rc);
    size_t failed;
    if ((rc = dir_stack_enter(&u->ds, u->path, path_len, &fd, &failed)) != 0)
      return path_error(u->c, u->dir, u->path, failed, "%s", strerror(rc));
  } else {
    u->dir_key[0] = '/';
  }
  return unpack_meta(u, fd, -1, NULL, &e, path_len);
}

/* Closes the pending directories that key is not under. */
static int unpack_leave_dirs(unpacker *u, const uint8_t *key, size_t key_len) {
  while (u->n_pending > 0) {
    size_t n = u->pending[u->n_pending - 1].prefix_len;
    if (key != NULL && n <= key_len && memcmp(key, u->dir_key, n) == 0)
      return EXIT_OK;
    if (unpack_close_dir(u) != EXIT_OK)
      return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* A directory's entry: the directory now, its metadata once everything
 * under it is written. The top's ("/") is DIR's, set last. With --flat
 * there are no directories: the entries are left out. */
static int unpack_dir(unpacker *u, const sst_entry *e) {
  if (u->path_flags & SST_PATH_FLAT)
    return EXIT_OK;
  int top = e->key_len == 1 && e->key[0] == '/';
  if (!top && e->key[e->key_len - 1] != '/')
    return unpack_key_error(u, e, "directory entry", SST_ECORRUPT);
  if (!top) {
    size_t path_len, failed;
    int rc = sst_path_from_key(e->key, e->key_len - 1, u->path_flags, 0,
                               u->path, &path_len);
    if (rc != 0)
      return unpack_key_error(u, e, "path of", rc);
    int fd;
    if ((rc = dir_stack_enter(&u->ds, u->path, path_len, &fd, &failed)) != 0)
      return path_error(u->c, u->dir, u->path, failed, "%s",
                        rc == EINVAL ? "not a valid directory name"
                                     : strerror(rc));
  }
  if (u->n_pending == u->cap_pending) {
    size_t cap = u->cap_pending ? 2 * u->cap_pending : 64;
    pending_dir *p = realloc(u->pending, cap * sizeof *p);
    if (p == NULL) {
      fprintf(stderr, "sst %s: out of memory\n", u->c->name);
      return EXIT_FAIL;
    }
    u->pending = p;
    u->cap_pending = cap;
  }
  u->pending[u->n_pending++] =
      (pending_dir){.prefix_len = top ? 0 : e->key_len, .meta = e->meta};
  if (!top)
    memcpy(u->dir_key, e->key, e->key_len);
  u->dirs++;
  return EXIT_OK;
}

/* ---- hard links ----------------------------------------------------- */

static link_name *unpack_link_slot(const unpacker *u, uint64_t link_id) {
  if (u->cap_links == 0)
    return NULL;
  size_t mask = u->cap_links - 1;
  size_t i = (size_t)(link_id * 0x9E3779B97F4A7C15ull) & mask;
  while (u->links[i].link_id != 0 && u->links[i].link_id != link_id)
    i = (i + 1) & mask;
  return &u->links[i];
}

/* Remembers path as the first name of group link_id; 0 or ENOMEM. */
static int unpack_link_add(unpacker *u, uint64_t link_id, const char *path) {
  if (2 * (u->n_links + 1) > u->cap_links) {
    size_t cap = u->cap_links ? 2 * u->cap_links : 64;
    link_name *old = u->links;
    size_t old_cap = u->cap_links;
    if ((u->links = calloc(cap, sizeof *u->links)) == NULL) {
      u->links = old;
      return ENOMEM;
    }
    u->cap_links = cap;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].link_id != 0)
        *unpack_link_slot(u, old[i].link_id) = old[i];
    free(old);
  }
  char *copy = strdup(path);
  if (copy == NULL)
    return ENOMEM;
  *unpack_link_slot(u, link_id) = (link_name){link_id, copy};
  u->n_links++;
  return 0;
}

static void unpack_links_free(unpacker *u) {
  for (size_t i = 0; i < u->cap_links; i++)
    free(u->links[i].path);
  free(u->links);
  u->links = NULL;
  u->cap_links = u->n_links = 0;
}

/* ---- files and symlinks --------------------------------------------- */

static int unpack_exists(const unpacker *u, const sst_entry *e,
                         size_t path_len) {
  char shown[SST_KEY_RENDER_SIZE];
  sst_key_render(e->key, e->key_len, shown, sizeof shown);
  return path_error(u->c, u->dir, u->path, path_len,
                    "exists already: another key has the path of key '%s'",
                    shown);
}

/* Writes one live entry as a regular file: with metadata, created 0600
 * and given its own once written. */
static int unpack_one(unpacker *u, const sst_entry *e, int also_dir) {
  size_t path_len;
  int rc = sst_path_from_key(e->key, e->key_len, u->path_flags, also_dir,
                             u->path, &path_len);
  if (rc != 0)
    return unpack_key_error(u, e, "path of", rc);
  /* A value stored in chunks is read (and checked) a piece at a time;
   * any other whole, and checked, first. */
  int chunked = (e->flags & SST_FLAG_CHUNKED) != 0;
  const uint8_t *value = NULL;
  uint8_t *piece = NULL;
  if (!chunked && (rc = sst_reader_value(u->r, e, &value)) != 0)
    return unpack_key_error(u, e, "value of", rc);
  if (chunked && (piece = malloc(COPY_CHUNK)) == NULL)
    return unpack_key_error(u, e, "value of", ENOMEM);
  int dfd;
  const char *name;
  if (dir_stack_parent(u->c, &u->ds, u->dir, u->path, &dfd, &name) != 0) {
    free(piece);
    return EXIT_FAIL;
  }
  int meta = (e->flags & SST_FLAG_META) != 0;
  int fd =
      openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             meta ? 0600 : 0644);
  if (fd < 0) {
    int err = errno;
    free(piece);
    if (err == EEXIST)
      return unpack_exists(u, e, path_len);
    return path_error(u->c, u->dir, u->path, path_len, "%s", strerror(err));
  }
  uint64_t left = e->value_len;
  int read_rc = 0;
  while (left > 0 && rc == 0 && !interrupted) {
    size_t n = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
    if (chunked) {
      size_t got;
      read_rc = sst_reader_read(u->r, e, e->value_len - left, piece, n, &got);
      if (read_rc)
        break;
      value = piece;
    }
    rc = write_all(fd, value, n);
    value += n;
    left -= n;
    u->bytes += n;
    unpack_tick(u);
  }
  free(piece);
  if (read_rc) {
    close(fd);
    unlinkat(dfd, name, 0);
    return unpack_key_error(u, e, "value of", read_rc);
  }
  int status = EXIT_OK;
  if (rc == 0 && left == 0 && meta)
    status = unpack_meta(u, fd, dfd, name, e, path_len);
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc != 0 || left > 0 || status != EXIT_OK) { /* no partial file */
    unlinkat(dfd, name, 0);
    if (interrupted || status != EXIT_OK)
      return EXIT_FAIL;
    return path_error(u->c, u->dir, u->path, path_len, "%s", strerror(rc));
  }
  u->files++;
  return EXIT_OK;
}

/* Another name of a hard-link group: a link to the first. */
static int unpack_link(unpacker *u, const sst_entry *e, int also_dir,
                       const char *first) {
  size_t path_len;
  int rc = sst_path_from_key(e->key, e->key_len, u->path_flags, also_dir,
                             u->path, &path_len);
  if (rc != 0)
    return unpack_key_error(u, e, "path of", rc);
  int dfd, sfd;
  const char *name, *sname;
  if (dir_stack_parent(u->c, &u->ds, u->dir, u->path, &dfd, &name) != 0 ||
      dir_stack_parent(u->c, &u->link_ds, u->dir, first, &sfd, &sname) != 0)
    return EXIT_FAIL;
  if (linkat(sfd, sname, dfd, name, 0) != 0) {
    if (errno == EEXIST)
      return unpack_exists(u, e, path_len);
    return path_error(u->c, u->dir, u->path, path_len, "cannot link to %s: %s",
                      first, strerror(errno));
  }
  u->files++;
  u->hard_links++;
  return EXIT_OK;
}

/* A regular file with metadata: the first name of its hard-link group
 * is written, the others linked to it. */
static int unpack_file(unpacker *u, const sst_entry *e, int also_dir) {
  uint64_t id = e->meta.link_id;
  const link_name *l = id != 0 ? unpack_link_slot(u, id) : NULL;
  if (l != NULL && l->link_id == id)
    return unpack_link(u, e, also_dir, l->path);
  int status = unpack_one(u, e, also_dir);
  if (status == EXIT_OK && id != 0 && unpack_link_add(u, id, u->path) != 0) {
    fprintf(stderr, "sst %s: out of memory\n", u->c->name);
    return EXIT_FAIL;
  }
  return status;
}

/* A symlink: its target is the value, stored as it is (never followed
 * here, whatever it names). */
static int unpack_symlink(unpacker *u, const sst_entry *e, int also_dir) {
  size_t path_len;
  int rc = sst_path_from_key(e->key, e->key_len, u->path_flags, also_dir,
                             u->path, &path_len);
  if (rc != 0)
    return unpack_key_error(u, e, "path of", rc);
  const uint8_t *value;
  if ((rc = sst_reader_value(u->r, e, &value)) != 0)
    return unpack_key_error(u, e, "value of", rc);
  char target[4096];
  if (e->value_len == 0 || e->value_len >= sizeof target ||
      memchr(value, '\0', (size_t)e->value_len) != NULL) {
    char shown[SST_KEY_RENDER_SIZE];
    sst_key_render(e->key, e->key_len, shown, sizeof shown);
    progress_hide();
    fprintf(stderr, "sst %s: %s: symlink key '%s': its target is %s\n",
            u->c->name, u->table, shown,
            e->value_len == 0 ? "empty"
            : e->value_len >= sizeof target
                ? "longer than 4095 bytes"
                : "not a path (it holds a NUL byte)");
    return EXIT_FAIL;
  }
  memcpy(target, value, (size_t)e->value_len);
  target[e->value_len] = '\0';
  int dfd;
  const char *name;
  if (dir_stack_parent(u->c, &u->ds, u->dir, u->path, &dfd, &name) != 0)
    return EXIT_FAIL;
  if (symlinkat(target, dfd, name) != 0) {
    if (errno == EEXIST)
      return unpack_exists(u, e, path_len);
    return path_error(u->c, u->dir, u->path, path_len, "%s", strerror(errno));
  }
  u->bytes += e->value_len;
  u->symlinks++;
  return unpack_meta(u, -1, dfd, name, e, path_len);
}

/* Writes one live entry: as a plain file, or as its metadata says. */
static int unpack_entry(unpacker *u, const sst_entry *e, int also_dir) {
  if (unpack_leave_dirs(u, e->key, e->key_len) != EXIT_OK)
    return EXIT_FAIL;
  if (!(e->flags & SST_FLAG_META))
    return unpack_one(u, e, also_dir);
  switch (e->meta.type) {
  case SST_TYPE_DIR:
    return unpack_dir(u, e);
  case SST_TYPE_SYMLINK:
    return unpack_symlink(u, e, also_dir);
  case SST_TYPE_FILE:
    return unpack_file(u, e, also_dir);
  default:
    return unpack_key_error(u, e, "entry type of", SST_ECORRUPT);
  }
}

/* Writes every live key of the table, in key order. */
static int unpack_entries(unpacker *u) {
  sst_iter *it = NULL;
  int rc = sst_iter_new(u->r, &it);
  if (rc == 0)
    rc = sst_iter_new(u->r, &u->probe);
  if (rc == 0)
    rc = sst_iter_seek_first(it);
  int status = EXIT_OK;
  while (rc == 0 && status == EXIT_OK && !interrupted && sst_iter_valid(it)) {
    sst_entry e = *sst_iter_entry(it);
    memcpy(u->key, e.key, e.key_len);
    e.key = u->key;
    if ((rc = sst_iter_next(it)) != 0)
      break;
    if (e.flags & SST_FLAG_TOMBSTONE) {
      u->tombstones++;
      continue;
    }
    int also_dir;
    const sst_entry *next = sst_iter_valid(it) ? sst_iter_entry(it) : NULL;
    if ((rc = unpack_also_dir(u, e.key_len, next, &also_dir)) != 0)
      break;
    status = unpack_entry(u, &e, also_dir);
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  if (rc == 0 && u->probe != NULL)
    rc = sst_iter_status(u->probe);
  if (rc != 0 && status == EXIT_OK) {
    progress_hide();
    fprintf(stderr, "sst %s: %s: %s\n", u->c->name, u->table, sst_strerror(rc));
    status = EXIT_FAIL;
  }
  if (status == EXIT_OK && interrupted && sst_iter_valid(it))
    status = EXIT_FAIL;
  if (status == EXIT_OK) /* the directories' metadata, the top's last */
    status = unpack_leave_dirs(u, NULL, 0);
  sst_iter_free(u->probe);
  u->probe = NULL;
  sst_iter_free(it);
  return status;
}

/* Creates DIR, or checks that it is empty, and opens it as *root. */
static int unpack_open_dir(const unpacker *u, int *root) {
  if (mkdir(u->dir, 0755) != 0 && errno != EEXIST)
    return path_error(u->c, u->dir, "", 0, "%s", strerror(errno));
  int fd = open(u->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return path_error(u->c, u->dir, "", 0, "%s", strerror(errno));
  int list_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
  if (d == NULL) {
    int e = errno;
    if (list_fd >= 0)
      close(list_fd);
    close(fd);
    return path_error(u->c, u->dir, "", 0, "%s", strerror(e));
  }
  int empty = 1;
  struct dirent *de;
  errno = 0;
  while (empty && (de = readdir(d)) != NULL)
    empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
  int e = errno;
  closedir(d);
  if (e != 0 || !empty) {
    close(fd);
    if (e != 0)
      return path_error(u->c, u->dir, "", 0, "%s", strerror(e));
    return path_error(u->c, u->dir, "", 0,
                      "not empty (sst unpack writes into a new or empty "
                      "directory only)");
  }
  *root = fd;
  return EXIT_OK;
}

static int unpack_run(unpacker *u) {
  progress_start(&u->line, !u->quiet);
  sst_reader *r;
  if (open_table(u->c, u->table, &r) != 0)
    return EXIT_FAIL;
  u->r = r;
  sst_info info;
  sst_reader_info(r, &info);
  u->total_files = info.key_count - info.tombstone_count;
  u->total_bytes = info.value_bytes;
  int root = -1;
  int status = unpack_open_dir(u, &root);
  if (status == EXIT_OK) {
    u->key = malloc(SST_KEY_MAX + 1);
    u->path = malloc(SST_PATH_MAX + 1);
    u->dir_key = malloc(SST_KEY_MAX + 1);
    if (u->key == NULL || u->path == NULL || u->dir_key == NULL) {
      fprintf(stderr, "sst %s: out of memory\n", u->c->name);
      status = EXIT_FAIL;
    }
  }
  if (status == EXIT_OK) {
    dir_stack_init(&u->ds, root, 1);
    dir_stack_init(&u->link_ds, root, 0);
    status = unpack_entries(u);
    dir_stack_free(&u->link_ds);
    dir_stack_free(&u->ds);
  }
  if (root >= 0)
    close(root);
  free(u->key);
  free(u->path);
  free(u->dir_key);
  free(u->pending);
  free(u->xattrs);
  unpack_links_free(u);
  sst_reader_close(r);
  progress_clear(&u->line);
  if (status == EXIT_OK && !u->quiet) {
    char tombstones[64] = "", others[160] = "", warnings[64] = "";
    if (u->tombstones > 0)
      snprintf(tombstones, sizeof tombstones,
               ", %" PRIu64 " deleted %s left out", u->tombstones,
               u->tombstones == 1 ? "key" : "keys");
    if (u->dirs + u->symlinks + u->hard_links > 0)
      snprintf(others, sizeof others,
               " (%" PRIu64 " hard %s), %" PRIu64 " %s, %" PRIu64 " %s",
               u->hard_links, u->hard_links == 1 ? "link" : "links", u->dirs,
               u->dirs == 1 ? "directory" : "directories", u->symlinks,
               u->symlinks == 1 ? "symlink" : "symlinks");
    if (u->warnings > 0)
      snprintf(warnings, sizeof warnings, ", %" PRIu64 " %s", u->warnings,
               u->warnings == 1 ? "warning" : "warnings");
    fprintf(stderr,
            "sst %s: %" PRIu64 " %s%s written%s%s, %.1f MB in %.2f s "
            "-> %s\n",
            u->c->name, u->files, u->files == 1 ? "file" : "files", others,
            tombstones, warnings, (double)u->bytes / 1e6,
            now_seconds() - u->line.started, u->dir);
  }
  return status;
}

const command_help cmd_unpack_help = {
    .synopsis =
        "    sst unpack [--flat] [--same-owner | --no-same-owner] [-q]\n"
        "               TABLE DIR",
    .text =
        "DESCRIPTION\n"
        "    Writes each key of TABLE, in key order, as a file under DIR\n"
        "    whose content is the key's value. The file's path is the key,\n"
        "    with / separating directories, created as needed.\n"
        "\n"
        "    A key that cannot be a path as it stands gets an escaped name,\n"
        "    the one the sstfs mount shows (docs/PATHS.md). That is a key\n"
        "    with an empty, . or .. component (a/./b is written a/%=./b), a\n"
        "    NUL byte, a component longer than 255 bytes (cut into %+\n"
        "    directories), a component starting with %=, %! or %+, or a key\n"
        "    that other keys continue with / (the file a beside a/b is\n"
        "    written %!a). Other bytes, newlines and invalid UTF-8\n"
        "    included, are kept as they are. sst pack decodes these names,\n"
        "    so packing DIR gives back the same keys and values.\n"
        "\n"
        "    A table written by sst pack holds the tree's metadata, and\n"
        "    unpacking gives the tree back: directories (empty ones too),\n"
        "    symbolic links (with the stored target, whatever it names),\n"
        "    hard links (every name of a group linked to the first one\n"
        "    written), extended attributes, permission bits exactly as\n"
        "    stored (setuid, setgid and sticky included; the umask does not\n"
        "    apply) and modification times to the nanosecond. A file's mode\n"
        "    is set after its content, owner and attributes; a directory's\n"
        "    mode and time once everything under it is written, so a\n"
        "    read-only directory still gets its files. The table's top\n"
        "    directory entry (/) gives DIR its mode and time. Owners are set\n"
        "    (numeric uid and gid) when sst unpack runs as root, as tar\n"
        "    --same-owner does. A mode, owner, time or attribute the system\n"
        "    refuses is a warning naming the path, and the unpack goes on.\n"
        "    Access times are not stored; they are left at the time of the\n"
        "    unpack.\n"
        "\n"
        "    Nothing in DIR is ever followed: every directory is opened\n"
        "    from its parent without following a symbolic link, files are\n"
        "    created with O_EXCL and O_NOFOLLOW, and metadata is set on the\n"
        "    link itself. A table whose symbolic link a names /etc cannot\n"
        "    make a file a/x land in /etc.\n"
        "\n"
        "    Keys without metadata (tables from sst build or sst pack\n"
        "    --no-metadata) are regular files: directories get mode 0755\n"
        "    and files mode 0644, less the umask.\n"
        "\n"
        "    DIR is created if it does not exist (its parent must); if it\n"
        "    exists it must be empty. Deleted keys (tombstones) are left\n"
        "    out. Each value's checksum is checked before its file is\n"
        "    written: a damaged value stops the unpack with an error naming\n"
        "    its key. After an error or an interrupt, DIR holds the files\n"
        "    completed so far, and the directories are left writable.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: files (and hard links among them),\n"
        "    directories and symlinks written, warnings, megabytes, seconds\n"
        "    and the directory's name.\n"
        "\n"
        "OPTIONS\n"
        "    --flat\n"
        "        Write every key as a file directly in DIR, a / in a key\n"
        "        escaped as %2F (a/b becomes %=a%2Fb); only a key longer\n"
        "        than one name still takes %+ directories. Directory\n"
        "        entries are left out.\n"
        "    --same-owner\n"
        "        Set owners even when not run as root (a warning for each\n"
        "        one the system refuses).\n"
        "    --no-same-owner\n"
        "        Do not set owners, even as root: everything belongs to the\n"
        "        user running sst unpack.\n"
        "    -q, --quiet\n"
        "        Show no progress line and no summary. Warnings are still\n"
        "        shown.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if every entry was written (warnings included), 1 on an\n"
        "    error, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst unpack site.sstable site\n"
        "    sst unpack --flat logs.sstable /tmp/logs\n"
        "    sudo sst unpack backup.sstable /srv/restore    # owners too\n",
};

enum {
  OPT_FLAT = OPT_LONG_ONLY,
  OPT_SAME_OWNER,
  OPT_NO_SAME_OWNER,
};

int cmd_unpack(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"flat", no_argument, NULL, OPT_FLAT},
      {"same-owner", no_argument, NULL, OPT_SAME_OWNER},
      {"no-same-owner", no_argument, NULL, OPT_NO_SAME_OWNER},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  unpacker u = {.c = c, .same_owner = geteuid() == 0};
  int opt;
  while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_FLAT:
      u.path_flags |= SST_PATH_FLAT;
      break;
    case OPT_SAME_OWNER:
      u.same_owner = 1;
      break;
    case OPT_NO_SAME_OWNER:
      u.same_owner = 0;
      break;
    case 'q':
      u.quiet = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (argc - optind != 2)
    return usage_error(c, "needs a table and a directory");
  u.table = argv[optind];
  u.dir = argv[optind + 1];
  catch_interrupts();
  return finish_status(c, unpack_run(&u));
}
