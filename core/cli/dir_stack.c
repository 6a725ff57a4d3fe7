/* dir_stack.c — see dir_stack.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir_stack.h"

/* The most levels that hold a descriptor at once (fewer under a low
 * RLIMIT_NOFILE). */
#define DIR_STACK_OPEN 256

void dir_stack_init(dir_stack *ds, int root, int create) {
  memset(ds, 0, sizeof *ds);
  ds->root = root;
  ds->create = create;
  ds->window = DIR_STACK_OPEN;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur / 4 < ds->window)
    ds->window = rl.rlim_cur / 4 > 8 ? (size_t)rl.rlim_cur / 4 : 8;
}

/* Keeps the first `keep` levels. */
static void dir_stack_pop(dir_stack *ds, size_t keep) {
  for (; ds->depth > keep; ds->depth--)
    if (ds->depth > ds->low)
      close(ds->fds[ds->depth - 1]);
  if (ds->low > ds->depth)
    ds->low = ds->depth;
  ds->len = keep > 0 ? ds->ends[keep - 1] : 0;
  if (ds->path != NULL)
    ds->path[ds->len] = '\0';
}

void dir_stack_free(dir_stack *ds) {
  dir_stack_pop(ds, 0);
  free(ds->path);
  free(ds->fds);
  free(ds->ends);
}

static int dir_stack_reserve(dir_stack *ds, size_t path_len) {
  if (path_len + 1 > ds->cap) {
    size_t cap = ds->cap ? ds->cap : 256;
    while (cap < path_len + 1)
      cap *= 2;
    char *p = realloc(ds->path, cap);
    if (p == NULL)
      return ENOMEM;
    ds->path = p;
    ds->cap = cap;
  }
  if (ds->depth == ds->max) {
    size_t max = ds->max ? ds->max * 2 : 16;
    int *fds = realloc(ds->fds, max * sizeof *fds);
    if (fds == NULL)
      return ENOMEM;
    ds->fds = fds;
    size_t *ends = realloc(ds->ends, max * sizeof *ends);
    if (ends == NULL)
      return ENOMEM;
    ds->ends = ends;
    ds->max = max;
  }
  return 0;
}

/* Opens level k's directory in parent. */
static int dir_stack_open_level(dir_stack *ds, int parent, size_t k) {
  size_t start = k > 0 ? ds->ends[k - 1] + 1 : 0;
  char saved = ds->path[ds->ends[k]];
  ds->path[ds->ends[k]] = '\0';
  int fd = openat(parent, ds->path + start, DIR_OPEN_FLAGS);
  ds->path[ds->ends[k]] = saved;
  return fd;
}

/* Opens every level again from the root, keeping the deepest ones. */
static int dir_stack_reopen(dir_stack *ds, size_t *failed) {
  size_t keep_from = ds->depth > ds->window ? ds->depth - ds->window : 0;
  int parent = ds->root;
  for (size_t k = 0; k < ds->depth; k++) {
    int fd = dir_stack_open_level(ds, parent, k);
    int e = errno;
    if (k > 0 && k - 1 < keep_from)
      close(parent);
    if (fd < 0) {
      for (size_t j = keep_from; j < k; j++)
        close(ds->fds[j]);
      *failed = ds->ends[k];
      return e;
    }
    if (k >= keep_from)
      ds->fds[k] = fd;
    parent = fd;
  }
  ds->low = keep_from;
  return 0;
}

/* The common levels of the open path and rel[0..len). */
static size_t dir_stack_common(const dir_stack *ds, const char *rel,
                               size_t len) {
  if (ds->len <= len && (ds->len == 0 || memcmp(ds->path, rel, ds->len) == 0) &&
      (ds->len == len || rel[ds->len] == '/' || ds->depth == 0))
    return ds->depth; /* the usual case: the same directory or below */
  size_t same = 0;
  while (same < ds->len && same < len && ds->path[same] == rel[same])
    same++;
  size_t keep = 0;
  while (keep < ds->depth && ds->ends[keep] <= same &&
         (ds->ends[keep] == len || rel[ds->ends[keep]] == '/'))
    keep++;
  return keep;
}

/* Opens (or with create, makes) the directory rel[0..len) and sets *fd to
 * it; the descriptor stays owned by ds and is valid until the next call.
 * On failure returns an errno value (EINVAL for an empty, "." or ".."
 * component) and sets *failed to the length of the path that failed. */
int dir_stack_enter(dir_stack *ds, const char *rel, size_t len, int *fd,
                    size_t *failed) {
  dir_stack_pop(ds, dir_stack_common(ds, rel, len));
  *failed = ds->len;
  if (ds->depth > 0 && ds->low == ds->depth) {
    int rc = dir_stack_reopen(ds, failed);
    if (rc != 0) {
      dir_stack_pop(ds, 0);
      return rc;
    }
  }
  while (ds->len < len) {
    size_t start = ds->depth > 0 ? ds->len + 1 : 0;
    const char *slash = memchr(rel + start, '/', len - start);
    size_t end = slash != NULL ? (size_t)(slash - rel) : len;
    const char *name = rel + start;
    size_t n = end - start;
    *failed = end;
    if (n == 0 || (n == 1 && name[0] == '.') ||
        (n == 2 && name[0] == '.' && name[1] == '.'))
      return EINVAL;
    int rc = dir_stack_reserve(ds, end);
    if (rc != 0)
      return rc;
    memcpy(ds->path + ds->len, rel + ds->len, end - ds->len);
    ds->path[end] = '\0';
    name = ds->path + start;
    int parent = ds->depth > 0 ? ds->fds[ds->depth - 1] : ds->root;
    int dfd = openat(parent, name, DIR_OPEN_FLAGS);
    if (dfd < 0 && errno == ENOENT && ds->create) {
      if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST)
        return errno;
      dfd = openat(parent, name, DIR_OPEN_FLAGS);
    }
    if (dfd < 0) {
      rc = errno;
      ds->path[ds->len] = '\0';
      return rc;
    }
    ds->fds[ds->depth] = dfd;
    ds->ends[ds->depth++] = end;
    ds->len = end;
    if (ds->depth - ds->low > ds->window) {
      close(ds->fds[ds->low]);
      ds->fds[ds->low++] = -1;
    }
  }
  *fd = ds->depth > 0 ? ds->fds[ds->depth - 1] : ds->root;
  return 0;
}

/* Opens the directory holding the file at rel (relative to ds's root) and
 * sets *name to the file's name in it. Reports a failure. */
int dir_stack_parent(const command *c, dir_stack *ds, const char *top,
                     const char *rel, int *fd, const char **name) {
  const char *slash = strrchr(rel, '/');
  *name = slash != NULL ? slash + 1 : rel;
  *fd = ds->root;
  if (slash == NULL)
    return EXIT_OK;
  size_t failed = 0;
  int rc = dir_stack_enter(ds, rel, (size_t)(slash - rel), fd, &failed);
  if (rc == EINVAL)
    return path_error(c, top, rel, failed, "not a valid directory name");
  if (rc != 0)
    return path_error(c, top, rel, failed, "%s", strerror(rc));
  return EXIT_OK;
}
