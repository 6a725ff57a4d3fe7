/* overlay.c — the staging mount's tree: the staged files in tree/ over
 * the base tables (as overlayfs does). A path is looked up in tree/ first,
 * then in the base unless a whiteout hides it; listings are the union of
 * both; a base file is copied into tree/ before it changes. See stage.h
 * for the staging area's layout. */
#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Copies the base file at path into the tree (before a change to it). */
int ov_copy_up(stage *s, const char *path, const sst_node *n) {
  const char *r = ov_rel(path);
  const sst_reader *b = s->base[n->entry.source];
  int rc = sst_reader_value_check(b, &n->entry);
  if (rc) {
    sstfs_log("%s: base value of %s: %s", sst_reader_path(b), r,
              sst_strerror(rc));
    return EIO;
  }
  if ((rc = ov_make_parents(s->tree_fd, r)) != 0)
    return rc;
  static unsigned long counter;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "copy.%ld.%lu", (long)getpid(),
           __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  int fd =
      openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  rc = sst_write_all(fd, sst_reader_data(b) + n->entry.value_offset,
                     n->entry.value_len);
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc == 0 && renameat(s->tmp_fd, tmp, s->tree_fd, r) != 0)
    rc = errno;
  if (rc)
    unlinkat(s->tmp_fd, tmp, 0);
  return rc;
}

void ov_base_stat(stage *s, const sst_node *n, struct stat *st) {
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
  int rc = ov_make_parents(s->tree_fd, ov_rel(path));
  if (rc == 0 && mkdirat(s->tree_fd, ov_rel(path), 0755) != 0 &&
      errno != EEXIST)
    rc = errno;
  if (rc == 0)
    rc = sstfs_errno(sst_tree_list(s->base_tree, dir->ino, 0, copy_child, &c));
  return rc ? rc : c.rc;
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
