/* overlay.c — the staging mount's tree: the staged files in tree/ over
 * the base tables (as overlayfs does). A path is looked up in tree/ first,
 * then in the base unless a whiteout hides it; listings are the union of
 * both; a base file is copied into tree/ before it changes. See stage.h
 * for the staging area's layout. */
#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common.h"
#include "spill.h"

/* "/a/b" -> "a/b"; "/" -> "." (for the *at calls). */
const char *ov_rel(const char *path) { return path[1] ? path + 1 : "."; }

/* libfuse renames a file that is unlinked while open to
 * DIR/.fuse_hiddenNNNN, and unlinks that at the last close. Such files are
 * kept in tmp/, out of the tree: never listed, never committed, never in
 * the way of an rmdir. */
#define HIDDEN_PREFIX ".fuse_hidden"

int ov_is_hidden(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strncmp(base, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) == 0;
}

int ov_at(stage *s, const char *path, const char **name) {
  if (ov_is_hidden(path)) {
    *name = strrchr(path, '/') + 1;
    return s->tmp_fd;
  }
  *name = ov_rel(path);
  return s->tree_fd;
}

/* Creates the parent directories of relpath under fd. */
int ov_make_parents(int fd, const char *relpath) {
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
int ov_hidden(stage *s, const char *relpath) {
  if (s->nbase == 0)
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
      if (fstatat(s->wh_fd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode))
        return 1;
      if (c == '\0')
        return 0;
      *p = c;
    }
  }
}

/* The base's node at path, if visible. 0 or an errno value. */
int ov_base_node(stage *s, const char *path, sst_node *n) {
  const char *r = ov_rel(path);
  if (s->nbase == 0 || ov_hidden(s, r))
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
    int rc = sst_tree_lookup(s->base_tree, n->ino, c, n);
    if (rc)
      return sstfs_errno(rc);
  }
  return 0;
}

/* Records that the base's entry at relpath is gone. */
int ov_whiteout(stage *s, const char *relpath) {
  int rc = ov_make_parents(s->wh_fd, relpath);
  if (rc)
    return rc;
  struct stat st;
  if (fstatat(s->wh_fd, relpath, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode)) {
    /* Whiteouts below it are subsumed: replace the directory by a file. */
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s/whiteouts/%s", s->dir, relpath);
    pid_t pid = fork();
    if (pid == 0) {
      execlp("rm", "rm", "-rf", "--", cmd, (char *)NULL);
      _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0)
      return EIO;
  }
  int fd = openat(s->wh_fd, relpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  close(fd);
  return 0;
}

/* The key of the directory entry of relpath: its key and "/", or "/" for
 * the root ("."). key holds SST_KEY_MAX + 1 bytes. */
static int dir_entry_key(const char *relpath, uint8_t *key, size_t *len) {
  if (strcmp(relpath, ".") == 0) {
    key[0] = '/';
    *len = 1;
    return 0;
  }
  int rc = sst_path_to_key(relpath, 0, key, len);
  if (rc == 0 && *len >= SST_KEY_MAX)
    rc = SST_EKEYSIZE;
  if (rc == 0)
    key[(*len)++] = '/';
  return rc;
}

int ov_base_meta(stage *s, const char *path, const sst_node *n, sst_entry *e) {
  if (!n->is_dir) {
    if (!(n->entry.flags & SST_FLAG_META))
      return ENOENT;
    *e = n->entry;
    return 0;
  }
  uint8_t *key = malloc(SST_KEY_MAX + 1);
  if (key == NULL)
    return ENOMEM;
  size_t len;
  int rc = dir_entry_key(ov_rel(path), key, &len);
  if (rc == 0)
    rc = sst_stack_find((const sst_reader *const *)s->base, s->nbase, key, len,
                        e);
  free(key);
  if (rc == 0 &&
      (!(e->flags & SST_FLAG_META) || (e->flags & SST_FLAG_TOMBSTONE) ||
       e->meta.type != SST_TYPE_DIR))
    rc = SST_ENOTFOUND;
  e->key = NULL;
  if (rc != 0 && rc != SST_ENOTFOUND && rc != SST_EKEYSIZE)
    sstfs_log("%s: the directory entry of %s: %s",
              sst_reader_path(s->base[s->nbase - 1]), ov_rel(path),
              sst_strerror(rc));
  return rc ? ENOENT : 0;
}

int ov_base_xattrs(stage *s, const sst_entry *e, uint8_t **buf) {
  *buf = NULL;
  if (e->meta.xattr_len == 0)
    return 0;
  const sst_reader *b = s->base[e->source];
  if (e->meta.xattr_len > SST_XATTRS_MAX ||
      (*buf = malloc(e->meta.xattr_len)) == NULL)
    return e->meta.xattr_len > SST_XATTRS_MAX ? EIO : ENOMEM;
  int rc = sst_reader_xattrs(b, e, *buf);
  if (rc) {
    sstfs_log("%s: extended attributes at offset %llu: %s", sst_reader_path(b),
              (unsigned long long)e->meta.xattr_off, sst_strerror(rc));
    free(*buf);
    *buf = NULL;
    return EIO;
  }
  return 0;
}

mode_t ov_kept_mode(stage *s, mode_t mode, int is_dir) {
  mode &= 07777;
  return s->is_root ? mode : mode | (is_dir ? 0700 : 0600);
}

/* Gives the staged entry `name` in dfd a base entry's owner, mode and
 * extended attributes (user.* only: the mount keeps no others); its mtime
 * too unless no_mtime. e NULL: the base has no metadata for it. */
static int apply_meta(stage *s, int dfd, const char *name, const sst_entry *e,
                      int no_mtime) {
  if (e == NULL)
    return 0;
  int link = e->meta.type == SST_TYPE_SYMLINK;
  int dir = e->meta.type == SST_TYPE_DIR;
  if (s->is_root &&
      fchownat(dfd, name, e->meta.uid, e->meta.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return errno;
  if (!link && fchmodat(dfd, name, ov_kept_mode(s, e->meta.mode, dir), 0) != 0)
    return errno;
  int rc = 0;
  if (!link && e->meta.xattr_len > 0) {
    uint8_t *buf;
    if ((rc = ov_base_xattrs(s, e, &buf)) != 0)
      return rc;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
      rc = errno;
    size_t pos = 0;
    sst_xattr x;
    int more;
    while (rc == 0 &&
           (more = sst_xattrs_next(buf, e->meta.xattr_len, &pos, &x)) != 0) {
      char xname[256];
      if (more < 0 || x.name_len >= sizeof xname) {
        rc = EIO;
        break;
      }
      memcpy(xname, x.name, x.name_len);
      xname[x.name_len] = '\0';
      if (strncmp(xname, "user.", 5) == 0 &&
          fsetxattr(fd, xname, x.value, x.value_len, 0) != 0)
        rc = errno;
    }
    if (fd >= 0)
      close(fd);
    free(buf);
    if (rc)
      return rc;
  }
  if (!no_mtime) {
    struct timespec t[2] = {
        {.tv_sec = (time_t)e->meta.mtime_sec, .tv_nsec = e->meta.mtime_nsec},
        {.tv_sec = (time_t)e->meta.mtime_sec, .tv_nsec = e->meta.mtime_nsec}};
    if (utimensat(dfd, name, t, AT_SYMLINK_NOFOLLOW) != 0)
      return errno;
  }
  return 0;
}

/* Makes the base directory at path (with its metadata) in tree/ as
 * directory `name` of dfd, unless it is there. */
static int make_dir_like_base(stage *s, int dfd, const char *name,
                              const char *path, const sst_node *n,
                              int no_mtime) {
  if (mkdirat(dfd, name, ov_kept_mode(s, 0755, 1)) != 0)
    return errno;
  sst_entry e;
  if (n == NULL || ov_base_meta(s, path, n, &e) != 0)
    return 0;
  return apply_meta(s, dfd, name, &e, no_mtime);
}

/* The times of relpath's parent in tree/, kept across a copy-up: a copy
 * into tree/ changes nothing the mount shows. */
typedef struct parent_times {
  char dir[PATH_MAX];
  struct timespec t[2];
  int ok;
} parent_times;

static void parent_save(stage *s, const char *relpath, parent_times *pt) {
  const char *slash = strrchr(relpath, '/');
  size_t n = slash ? (size_t)(slash - relpath) : 0;
  pt->ok = 0;
  if (n >= sizeof pt->dir)
    return;
  memcpy(pt->dir, relpath, n);
  pt->dir[n] = '\0';
  if (n == 0)
    strcpy(pt->dir, ".");
  struct stat st;
  if (fstatat(s->tree_fd, pt->dir, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    pt->t[0] = st.st_atim;
    pt->t[1] = st.st_mtim;
    pt->ok = 1;
  }
}

static void parent_restore(stage *s, const parent_times *pt) {
  if (pt->ok)
    utimensat(s->tree_fd, pt->dir, pt->t, AT_SYMLINK_NOFOLLOW);
}

int ov_stage_parents(stage *s, const char *relpath) {
  char buf[PATH_MAX + 1];
  if (snprintf(buf, sizeof buf, "/%s", relpath) >= (int)sizeof buf)
    return ENAMETOOLONG;
  char *first = NULL; /* the first directory made: all below it are too */
  parent_times above; /* the directory the first one is made in */
  for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    struct stat st;
    if (first == NULL &&
        fstatat(s->tree_fd, buf + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      *p = '/';
      continue;
    }
    if (first == NULL)
      parent_save(s, buf + 1, &above);
    sst_node n;
    int has = ov_base_node(s, buf, &n) == 0 && n.is_dir;
    int rc =
        make_dir_like_base(s, s->tree_fd, buf + 1, buf, has ? &n : NULL, 1);
    if (rc && rc != EEXIST)
      return rc;
    if (first == NULL)
      first = p;
    *p = '/';
  }
  if (first == NULL)
    return 0;
  /* Their mtimes last: each new child changed its parent's. Making them
   * changes nothing the mount shows: the directory above keeps its
   * times too. */
  parent_restore(s, &above);
  for (char *p = first; p; p = strchr(p + 1, '/')) {
    *p = '\0';
    sst_node n;
    sst_entry e;
    if (ov_base_node(s, buf, &n) == 0 && n.is_dir &&
        ov_base_meta(s, buf, &n, &e) == 0) {
      struct timespec t[2] = {
          {.tv_sec = (time_t)e.meta.mtime_sec, .tv_nsec = e.meta.mtime_nsec},
          {.tv_sec = (time_t)e.meta.mtime_sec, .tv_nsec = e.meta.mtime_nsec}};
      utimensat(s->tree_fd, buf + 1, t, AT_SYMLINK_NOFOLLOW);
    }
    *p = '/';
  }
  return 0;
}

/* The base's hard links: the keys of every name of every hard-link
 * group, by (table, link_id), found by one pass over the base tables at
 * the first copy-up of a hard link (a base without hard links costs
 * that pass only). */
typedef struct group_name {
  uint64_t group; /* source << 48 | link_id */
  uint8_t *key;
  size_t key_len;
} group_name;

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static group_name *groups;
static size_t groups_n;
static int groups_built;

static uint64_t group_of(unsigned source, uint64_t link_id) {
  return (uint64_t)source << 48 | (link_id & ((1ull << 48) - 1));
}

static int group_cmp(const void *a, const void *b) {
  uint64_t x = ((const group_name *)a)->group;
  uint64_t y = ((const group_name *)b)->group;
  return (x > y) - (x < y);
}

static int build_groups(stage *s) {
  size_t cap = 0;
  int rc = 0;
  for (size_t t = 0; rc == 0 && t < s->nbase; t++) {
    sst_iter *it;
    if ((rc = sst_iter_new(s->base[t], &it)) != 0)
      break;
    for (sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
         sst_iter_next(it)) {
      const sst_entry *e = sst_iter_entry(it);
      if (!(e->flags & SST_FLAG_META) || e->meta.link_id == 0)
        continue;
      if (groups_n == cap) {
        cap = cap ? 2 * cap : 64;
        group_name *v = realloc(groups, cap * sizeof *v);
        if (v == NULL) {
          rc = ENOMEM;
          break;
        }
        groups = v;
      }
      group_name *g = &groups[groups_n];
      if ((g->key = malloc(e->key_len)) == NULL) {
        rc = ENOMEM;
        break;
      }
      memcpy(g->key, e->key, e->key_len);
      g->key_len = e->key_len;
      g->group = group_of((unsigned)t, e->meta.link_id);
      groups_n++;
    }
    if (rc == 0)
      rc = sst_iter_status(it);
    sst_iter_free(it);
  }
  if (groups_n > 1)
    qsort(groups, groups_n, sizeof *groups, group_cmp);
  return rc;
}

void (*ov_linked_up)(const char *path);

void ov_free_groups(void) {
  for (size_t i = 0; i < groups_n; i++)
    free(groups[i].key);
  free(groups);
  groups = NULL;
  groups_n = 0;
  groups_built = 0;
}

/* After the copy-up of the base hard link at relpath (entry e): every
 * other name of its group that the mount shows from the base becomes a
 * hard link to the copy, as on a file system, where a change through one
 * name is seen through all. */
static int link_group_up(stage *s, const char *relpath, const sst_entry *e) {
  pthread_mutex_lock(&groups_lock);
  int rc = 0;
  if (!groups_built) {
    rc = build_groups(s);
    groups_built = rc == 0;
  }
  pthread_mutex_unlock(&groups_lock);
  if (rc) {
    sstfs_log("the hard links of %s in the base: %s", relpath,
              sst_strerror(rc));
    return rc == ENOMEM ? ENOMEM : EIO;
  }
  group_name want = {.group = group_of(e->source, e->meta.link_id)};
  group_name *g = bsearch(&want, groups, groups_n, sizeof *groups, group_cmp);
  if (g == NULL)
    return 0;
  while (g > groups && g[-1].group == want.group)
    g--;
  char *path = malloc(SST_PATH_MAX + 2);
  if (path == NULL)
    return ENOMEM;
  for (; rc == 0 && g < groups + groups_n && g->group == want.group; g++) {
    /* Its path: plain, or the "%!" form of a key that is also a
     * directory's prefix; the one the base shows as this group's. */
    for (int also_dir = 0; also_dir < 2; also_dir++) {
      size_t len;
      path[0] = '/';
      sst_node n;
      struct stat st;
      if (sst_path_from_key(g->key, g->key_len, 0, also_dir, path + 1, &len) !=
              0 ||
          strcmp(path + 1, relpath) == 0 || ov_base_node(s, path, &n) != 0 ||
          n.is_dir || n.entry.source != e->source ||
          !(n.entry.flags & SST_FLAG_META) ||
          n.entry.meta.link_id != e->meta.link_id)
        continue;
      if (fstatat(s->tree_fd, path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0)
        break; /* staged already: a file of its own now */
      if ((rc = ov_stage_parents(s, path + 1)) != 0)
        break;
      parent_times pt;
      parent_save(s, path + 1, &pt);
      if (linkat(s->tree_fd, relpath, s->tree_fd, path + 1, 0) != 0) {
        rc = errno;
        break;
      }
      parent_restore(s, &pt);
      if (ov_linked_up != NULL)
        ov_linked_up(path);
      break;
    }
  }
  free(path);
  return rc;
}

/* Writes a value stored compressed to fd, a chunk at a time. */
static int copy_value(const sst_reader *b, const sst_entry *e, int fd) {
  size_t cap = 256u << 10;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    return ENOMEM;
  int rc = 0;
  for (uint64_t off = 0; rc == 0 && off < e->value_len;) {
    size_t got;
    if ((rc = sst_reader_read(b, e, off, buf, cap, &got)) != 0)
      rc = EIO;
    else
      rc = sst_write_all(fd, buf, got);
    off += got;
  }
  free(buf);
  return rc;
}

/* Copies the base file at path into the tree (before a change to it),
 * with its metadata: a symbolic link as a link; the other names of a hard
 * link as links to the copy. */
int ov_copy_up(stage *s, const char *path, const sst_node *n) {
  const char *r = ov_rel(path);
  const sst_reader *b = s->base[n->entry.source];
  int rc = sst_reader_value_check(b, &n->entry);
  if (rc) {
    sstfs_log("%s: base value of %s: %s", sst_reader_path(b), r,
              sst_strerror(rc));
    return EIO;
  }
  sst_entry e;
  int has_meta = ov_base_meta(s, path, n, &e) == 0;
  if ((rc = ov_stage_parents(s, r)) != 0)
    return rc;
  static unsigned long counter;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "copy.%ld.%lu", (long)getpid(),
           __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  const uint8_t *v = sst_reader_data(b) + n->entry.value_offset;
  int apart = (n->entry.flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) != 0;
  if (apart && has_meta && e.meta.type == SST_TYPE_SYMLINK &&
      (rc = sst_reader_value(b, &n->entry, &v)) != 0)
    return EIO;
  if (has_meta && e.meta.type == SST_TYPE_SYMLINK) {
    char *target = strndup((const char *)v, n->entry.value_len);
    if (target == NULL)
      return ENOMEM;
    rc = strlen(target) != n->entry.value_len || target[0] == '\0' ? EIO : 0;
    if (rc == 0 && symlinkat(target, s->tmp_fd, tmp) != 0)
      rc = errno;
    free(target);
    if (rc)
      return rc;
  } else {
    int fd =
        openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return errno;
    rc = apart ? copy_value(b, &n->entry, fd)
               : sst_write_all(fd, v, n->entry.value_len);
    if (close(fd) != 0 && rc == 0)
      rc = errno;
  }
  if (rc == 0)
    rc = apply_meta(s, s->tmp_fd, tmp, has_meta ? &e : NULL, 0);
  parent_times pt;
  parent_save(s, r, &pt);
  if (rc == 0 && renameat(s->tmp_fd, tmp, s->tree_fd, r) != 0)
    rc = errno;
  if (rc) {
    unlinkat(s->tmp_fd, tmp, 0);
    return rc;
  }
  parent_restore(s, &pt);
  if (has_meta && e.meta.link_id != 0 && e.meta.nlink > 1)
    rc = link_group_up(s, r, &e);
  return rc;
}

int ov_copy_up_meta(stage *s, const char *path, const sst_node *n) {
  if (!n->is_dir)
    return ov_copy_up(s, path, n);
  const char *r = ov_rel(path);
  if (strcmp(r, ".") == 0)
    return 0; /* the root is always in tree/ */
  int rc = ov_stage_parents(s, r);
  if (rc)
    return rc;
  parent_times pt;
  parent_save(s, r, &pt);
  rc = make_dir_like_base(s, s->tree_fd, r, path, n, 0);
  if (rc == 0 || rc == EEXIST)
    parent_restore(s, &pt);
  return rc == EEXIST ? 0 : rc;
}

int ov_init_root(stage *s) {
  sst_node n = {.ino = SST_TREE_ROOT, .is_dir = 1};
  sst_entry e;
  if (s->nbase == 0 || ov_base_meta(s, "/", &n, &e) != 0)
    return 0;
  return apply_meta(s, s->tree_fd, ".", &e, 0);
}

/* Inode numbers of base entries: apart from those of tree/ (which a
 * local file system keeps below 2^62); the names of a hard-link group
 * share one. */
static uint64_t base_ino(const sst_node *n, const sst_entry *e) {
  if (e != NULL && e->meta.link_id != 0)
    return 3ull << 62 | (uint64_t)e->source << 48 |
           (e->meta.link_id & ((1ull << 48) - 1));
  return 1ull << 62 | n->ino;
}

void ov_base_stat(stage *s, const char *path, const sst_node *n,
                  struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_uid = getuid();
  st->st_gid = getgid();
  struct stat bst;
  if (fstat(s->dir_fd, &bst) == 0)
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
  sst_entry e;
  int has_meta = ov_base_meta(s, path, n, &e) == 0;
  st->st_ino = base_ino(n, has_meta ? &e : NULL);
  if (!has_meta)
    return;
  mode_t type = e.meta.type == SST_TYPE_DIR       ? S_IFDIR
                : e.meta.type == SST_TYPE_SYMLINK ? S_IFLNK
                                                  : S_IFREG;
  st->st_mode = type | (e.meta.mode & 07777);
  st->st_uid = e.meta.uid;
  st->st_gid = e.meta.gid;
  st->st_mtim.tv_sec = (time_t)e.meta.mtime_sec;
  st->st_mtim.tv_nsec = e.meta.mtime_nsec;
  st->st_atim = st->st_ctim = st->st_mtim;
  if (!n->is_dir && e.meta.nlink > 1)
    st->st_nlink = e.meta.nlink;
}

static int base_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)node, (void)next;
  list_ctx *l = ctx;
  stage *s = l->s;
  char p[PATH_MAX];
  const char *r = ov_rel(l->path);
  snprintf(p, sizeof p, "%s/%s", strcmp(r, ".") ? r : "", name);
  const char *child = p[0] == '/' ? p + 1 : p;
  struct stat st;
  if (fstatat(s->tree_fd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
      ov_hidden(s, child))
    return 0; /* shadowed by a staged entry, or deleted */
  l->count++;
  if (l->fill)
    l->filler(l->buf, name, NULL, 0, 0);
  return 0;
}

/* Lists the union at path: staged entries, then visible base entries. */
int ov_list(stage *s, list_ctx *l) {
  DIR *d = sstfs_opendirat(s->tree_fd, ov_rel(l->path));
  if (d != NULL) {
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
  if (ov_base_node(s, l->path, &n) == 0 && n.is_dir) {
    int rc = sst_tree_list(s->base_tree, n.ino, 0, base_child, l);
    if (rc)
      return sstfs_errno(rc);
  }
  return 0;
}

int ov_is_empty(stage *s, const char *path) {
  list_ctx l = {.s = s, .path = path};
  return ov_list(s, &l) == 0 && l.count == 0;
}

/* Copies every visible base file under the directory at path into the
 * tree, so that the directory can move as a whole. */
typedef struct copy_ctx {
  stage *s;
  char path[PATH_MAX];
  int rc;
} copy_ctx;

static int copy_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next);

int ov_copy_up_dir(stage *s, const char *path, const sst_node *dir) {
  copy_ctx c;
  c.s = s;
  snprintf(c.path, sizeof c.path, "%s", path);
  c.rc = 0;
  const char *r = ov_rel(path);
  int rc = ov_stage_parents(s, r);
  parent_times pt;
  parent_save(s, r, &pt);
  int made = 0;
  if (rc == 0 && strcmp(r, ".") != 0) {
    rc = make_dir_like_base(s, s->tree_fd, r, path, dir, 1);
    made = rc == 0;
    if (rc == EEXIST)
      rc = 0;
  }
  if (rc == 0)
    rc = sstfs_errno(sst_tree_list(s->base_tree, dir->ino, 0, copy_child, &c));
  if (rc == 0)
    rc = c.rc;
  /* Last, the times its new children changed. */
  sst_entry e;
  if (rc == 0 && made && ov_base_meta(s, path, dir, &e) == 0) {
    struct timespec t[2] = {
        {.tv_sec = (time_t)e.meta.mtime_sec, .tv_nsec = e.meta.mtime_nsec},
        {.tv_sec = (time_t)e.meta.mtime_sec, .tv_nsec = e.meta.mtime_nsec}};
    utimensat(s->tree_fd, r, t, AT_SYMLINK_NOFOLLOW);
  }
  if (rc == 0)
    parent_restore(s, &pt);
  return rc;
}

static int copy_child(void *ctx, const char *name, const sst_node *node,
                      uint64_t next) {
  (void)next;
  copy_ctx *c = ctx;
  stage *s = c->s;
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s/%s", strcmp(c->path, "/") ? c->path : "",
               name) >= (int)sizeof p) {
    c->rc = ENAMETOOLONG;
    return 1;
  }
  const char *r = ov_rel(p);
  struct stat st;
  int staged = fstatat(s->tree_fd, r, &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (ov_hidden(s, r) || (staged && !S_ISDIR(st.st_mode)))
    return 0;
  c->rc = node->is_dir ? ov_copy_up_dir(s, p, node) : ov_copy_up(s, p, node);
  return c->rc != 0;
}
