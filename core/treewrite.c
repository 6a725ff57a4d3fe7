/* treewrite.c — a directory tree made table entries: the walk, the keys
 * of relative paths, their order, duplicate keys, and the streaming of
 * each file into a writer with the checks that it did not change. This
 * file owns that path for `sst pack` and for the staging mount's commit;
 * with the metadata option it also makes directories and symlinks
 * entries, groups hard links, and reads each entry's metadata and
 * extended attributes (format version 2, sst_meta).
 *
 * Directories are kept as a tree of names (scan_dir: a parent and a
 * name), so a path of any length costs one name per directory. Every
 * name is opened relative to its parent's descriptor: the kernel never
 * sees more than one name at a time. The descriptors of the directories
 * along the current path form a chain that moving to a nearby directory
 * mostly keeps; only the deepest `window` levels hold a descriptor, the
 * others are opened again from the top when needed, so a tree of any
 * depth fits in a bounded number of descriptors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"
#include "sstpath.h"

#define COPY_CHUNK ((size_t)1 << 20) /* files are read this much at a time */
#define WINDOW_MAX 256               /* directory descriptors held at most */
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* O_NONBLOCK: a FIFO put in a file's place must not hang the writer. */
#define FILE_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

typedef struct scan_dir {
  size_t parent;   /* index in sst_scan.dirs; the top is 0, its own parent */
  size_t depth;    /* 0 for the top */
  size_t path_len; /* of its path relative to the top */
  char *name;
} scan_dir;

#define NO_GROUP SIZE_MAX

typedef struct scan_entry {
  sst_scan_file f; /* key and path share one allocation, at f.key */
  size_t dir;      /* the directory holding it */
  size_t group;    /* its hard-link group in sst_scan.groups, or NO_GROUP */
  nlink_t st_nlink;
} scan_entry;

/* Names of one inode (metadata only). The first name written writes the
 * value and keeps what the others share: where the value lies, and the
 * metadata (one inode has one mode, owner, mtime and attribute set). */
typedef struct link_group {
  size_t first; /* the entry of its first name in key order */
  uint32_t names;
  uint64_t link_id;
  int written;
  uint64_t offset, len;
  uint32_t checksum;
  sst_meta meta;
  uint8_t *xattrs; /* meta.xattrs points here */
} link_group;

/* The directories open along one path: level k is at depth k + 1;
 * levels below `low` hold no descriptor. */
typedef struct level {
  size_t dir;
  int fd;
} level;

typedef struct chain {
  level *levels;
  size_t depth, cap, low, window;
} chain;

/* One directory being walked: its names, read in full when it was
 * entered, so that the walk holds no descriptor per level. */
typedef struct frame {
  size_t dir;
  char *names; /* NUL-terminated, one after another */
  size_t size, cap, next;
} frame;

struct sst_scan {
  sst_scan_options opts;
  int root;
  scan_dir *dirs;
  size_t n_dirs, cap_dirs;
  scan_entry *files;
  size_t n_files, cap_files;
  link_group *groups;
  size_t n_groups;
  uint64_t total_bytes;
  chain ch;
  char *rel; /* a path relative to the top, NUL-terminated */
  size_t rel_cap;
  uint8_t *key; /* SST_KEY_MAX bytes of scratch */
  uint8_t *buf; /* COPY_CHUNK bytes, for writing */
  sst_scan_progress written;
  char msg[160];
};

void sst_scan_options_init(sst_scan_options *opts) {
  memset(opts, 0, sizeof *opts);
}

void sst_tree_writer_options_init(sst_writer_options *o) {
  sst_writer_options_init(o);
  o->zstd_level = SST_TREE_ZSTD_LEVEL;
  o->value_block = SST_TREE_VALUE_BLOCK;
  o->dedup = 1;
}

/* Makes room for `need` elements of `size` bytes in p, whose capacity
 * *cap doubles from `first`. Returns the array, or NULL (p unchanged). */
static void *grow(void *p, size_t *cap, size_t need, size_t size,
                  size_t first) {
  if (need <= *cap)
    return p;
  size_t c = *cap ? *cap : first;
  while (c < need)
    c *= 2;
  void *q = realloc(p, c * size);
  if (q != NULL)
    *cap = c;
  return q;
}

/* ---- problems and progress ---------------------------------------- */

static int report(sst_scan *s, sst_scan_problem *p) {
  if (p->message == NULL)
    p->message = p->kind == SST_SCAN_ESYS ? strerror(p->code) : s->msg;
  int rc;
  if (s->opts.on_problem != NULL)
    rc = s->opts.on_problem(s->opts.ctx, p);
  else
    rc = p->kind == SST_SCAN_SPECIAL || p->kind == SST_SCAN_DUPLICATE ? 0
                                                                      : p->code;
  if (rc == 0 && !p->can_skip && p->kind != SST_SCAN_DUPLICATE)
    rc = p->code;
  return rc;
}

static int report_errno(sst_scan *s, const char *path, int code, int can_skip) {
  sst_scan_problem p = {
      .kind = SST_SCAN_ESYS, .code = code, .path = path, .can_skip = can_skip};
  return report(s, &p);
}

static int report_changed(sst_scan *s, const scan_entry *e, int can_skip) {
  sst_scan_problem p = {.kind = SST_SCAN_CHANGED,
                        .code = SST_ECHANGED,
                        .path = e->f.path,
                        .key = e->f.key,
                        .key_len = e->f.key_len,
                        .can_skip = can_skip};
  return report(s, &p);
}

static int progress(sst_scan *s, const sst_scan_progress *p) {
  return s->opts.on_progress != NULL ? s->opts.on_progress(s->opts.ctx, p) : 0;
}

static int scan_progress(sst_scan *s) {
  sst_scan_progress p = {.files = s->n_files, .bytes = s->total_bytes};
  return progress(s, &p);
}

/* ---- the chain of open directories ---------------------------------- */

static void chain_init(chain *c) {
  memset(c, 0, sizeof *c);
  c->window = WINDOW_MAX;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur / 4 < c->window)
    c->window = rl.rlim_cur / 4 > 8 ? (size_t)rl.rlim_cur / 4 : 8;
}

/* Keeps the first `keep` levels. */
static void chain_cut(chain *c, size_t keep) {
  for (; c->depth > keep; c->depth--)
    if (c->depth > c->low)
      close(c->levels[c->depth - 1].fd);
  if (c->low > c->depth)
    c->low = c->depth;
}

/* Opens the chain's levels again from the top; the deepest `window` keep
 * their descriptors. On failure *failed is the directory that could not
 * be opened and the chain is empty. */
static int chain_reopen(sst_scan *s, size_t *failed) {
  chain *c = &s->ch;
  size_t keep_from = c->depth > c->window ? c->depth - c->window : 0;
  int parent = s->root;
  for (size_t k = 0; k < c->depth; k++) {
    int fd = openat(parent, s->dirs[c->levels[k].dir].name, DIR_FLAGS);
    int e = errno;
    if (k > keep_from)
      c->levels[k - 1].fd = parent;
    else if (k > 0)
      close(parent);
    if (fd < 0) {
      for (size_t j = keep_from; j < k; j++)
        close(c->levels[j].fd);
      *failed = c->levels[k].dir;
      c->depth = c->low = 0;
      return e;
    }
    parent = fd;
  }
  c->levels[c->depth - 1].fd = parent;
  c->low = keep_from;
  return 0;
}

/* Sets *fd to a descriptor of directory d, owned by the chain and valid
 * until the next call. On failure *failed is the directory (d or one of
 * its parents) that could not be opened. */
static int chain_enter(sst_scan *s, size_t d, int *fd, size_t *failed) {
  chain *c = &s->ch;
  const scan_dir *dirs = s->dirs;
  size_t depth = dirs[d].depth;
  if (depth == 0 || (depth <= c->depth && depth > c->low &&
                     c->levels[depth - 1].dir == d)) { /* open already */
    *fd = depth > 0 ? c->levels[depth - 1].fd : s->root;
    return 0;
  }
  size_t x = d; /* the deepest directory above d (or d) on the chain */
  while (dirs[x].depth > 0 &&
         !(dirs[x].depth <= c->depth && c->levels[dirs[x].depth - 1].dir == x))
    x = dirs[x].parent;
  size_t common = dirs[x].depth;
  chain_cut(c, common);
  level *lv = grow(c->levels, &c->cap, depth, sizeof *lv, 16);
  if (lv == NULL)
    return ENOMEM;
  c->levels = lv;
  int rc;
  if (common > 0 && common == c->low && (rc = chain_reopen(s, failed)) != 0)
    return rc;
  for (size_t y = d; dirs[y].depth > common; y = dirs[y].parent)
    lv[dirs[y].depth - 1].dir = y;
  for (; c->depth < depth; c->depth++) {
    int parent = c->depth > 0 ? lv[c->depth - 1].fd : s->root;
    size_t k = lv[c->depth].dir;
    if ((lv[c->depth].fd = openat(parent, dirs[k].name, DIR_FLAGS)) < 0) {
      *failed = k;
      return errno;
    }
    if (c->depth + 1 - c->low > c->window)
      close(lv[c->low++].fd);
  }
  *fd = lv[depth - 1].fd;
  return 0;
}

/* Sets *dfd to a descriptor of directory d (owned by the chain) on the
 * way to `path`, which starts with d's path. A directory that cannot be
 * opened is reported; *dfd is -1 when the callback skips it. */
static int enter(sst_scan *s, size_t d, const char *path, int *dfd) {
  size_t failed;
  int rc = chain_enter(s, d, dfd, &failed);
  if (rc == 0 || rc == ENOMEM)
    return rc;
  *dfd = -1;
  char *dir_path = strndup(path, s->dirs[failed].path_len);
  if (dir_path == NULL)
    return ENOMEM;
  rc = report_errno(s, dir_path, rc, 1);
  free(dir_path);
  return rc;
}

/* ---- the walk ------------------------------------------------------- */

static int frame_add(frame *f, const char *name) {
  size_t n = strlen(name) + 1;
  char *names = grow(f->names, &f->cap, f->size + n, 1, 1024);
  if (names == NULL)
    return ENOMEM;
  f->names = names;
  memcpy(f->names + f->size, name, n);
  f->size += n;
  return 0;
}

/* Reads the names in directory `name` of parent into f; an errno value on
 * failure (f->names then freed). */
static int frame_read(frame *f, int parent, const char *name) {
  int fd = openat(parent, name, DIR_FLAGS);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return e;
  }
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      rc = errno;
      break;
    }
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
        (rc = frame_add(f, de->d_name)) != 0)
      break;
  }
  closedir(d);
  if (rc != 0) {
    free(f->names);
    f->names = NULL;
  }
  return rc;
}

static int add_dir(sst_scan *s, size_t parent, const char *name,
                   size_t path_len) {
  scan_dir *d = grow(s->dirs, &s->cap_dirs, s->n_dirs + 1, sizeof *d, 64);
  if (d == NULL)
    return ENOMEM;
  s->dirs = d;
  char *copy = strdup(name);
  if (copy == NULL)
    return ENOMEM;
  s->dirs[s->n_dirs++] =
      (scan_dir){.parent = parent,
                 .depth = parent == SIZE_MAX ? 0 : s->dirs[parent].depth + 1,
                 .path_len = path_len,
                 .name = copy};
  return 0;
}

static const char *special_kind(mode_t mode) {
  if (S_ISLNK(mode))
    return "symlink";
  if (S_ISFIFO(mode))
    return "FIFO";
  if (S_ISSOCK(mode))
    return "socket";
  if (S_ISCHR(mode))
    return "character device";
  if (S_ISBLK(mode))
    return "block device";
  return "special file";
}

static int report_special(sst_scan *s, mode_t mode) {
  sst_scan_problem p = {.kind = SST_SCAN_SPECIAL,
                        .path = s->rel,
                        .what = special_kind(mode),
                        .can_skip = 1};
  if (s->opts.metadata)
    snprintf(s->msg, sizeof s->msg,
             "is a %s: a table holds only regular files, directories and "
             "symlinks",
             p.what);
  else
    snprintf(s->msg, sizeof s->msg, "is a %s, not a regular file", p.what);
  return report(s, &p);
}

static int report_badname(sst_scan *s, int rc) {
  sst_scan_problem p = {
      .kind = SST_SCAN_BADNAME, .code = rc, .path = s->rel, .can_skip = 1};
  if (rc == SST_EINVAL && (s->opts.path_flags & SST_PATH_FLAT))
    snprintf(s->msg, sizeof s->msg,
             "is in a subdirectory: in flat mode, files must lie directly "
             "in the top directory (or in %%+ piece directories)");
  else if (rc == SST_EKEYSIZE)
    snprintf(s->msg, sizeof s->msg,
             "gives an empty key or one longer than %u bytes", SST_KEY_MAX);
  else
    snprintf(s->msg, sizeof s->msg, "cannot be made a key: %s",
             sst_strerror(rc));
  return report(s, &p);
}

/* Records the entry at rel (rel_len bytes; "" for the top), in directory
 * dir, with the key in s->key. */
static int add_entry(sst_scan *s, size_t dir, size_t rel_len, size_t key_len,
                     unsigned type, const struct stat *st) {
  scan_entry *f =
      grow(s->files, &s->cap_files, s->n_files + 1, sizeof *f, 1024);
  if (f == NULL)
    return ENOMEM;
  s->files = f;
  uint8_t *mem = malloc(key_len + rel_len + 1);
  if (mem == NULL)
    return ENOMEM;
  memcpy(mem, s->key, key_len);
  memcpy(mem + key_len, s->rel, rel_len + 1);
  s->files[s->n_files++] =
      (scan_entry){.f = {.key = mem,
                         .key_len = key_len,
                         .path = (const char *)mem + key_len,
                         .path_len = rel_len,
                         .size = (uint64_t)st->st_size,
                         .mtime_sec = (int64_t)st->st_mtim.tv_sec,
                         .mtime_nsec = st->st_mtim.tv_nsec,
                         .dev = (uint64_t)st->st_dev,
                         .ino = (uint64_t)st->st_ino,
                         .type = type,
                         .nlink = 1},
                   .dir = dir,
                   .group = NO_GROUP,
                   .st_nlink = st->st_nlink};
  if (type == SST_TYPE_DIR)
    s->files[s->n_files - 1].f.size = 0;
  else
    s->total_bytes += (uint64_t)st->st_size;
  return 0;
}

/* Records the regular file (or with metadata, symlink) at rel. */
static int add_file(sst_scan *s, size_t dir, size_t rel_len, unsigned type,
                    const struct stat *st) {
  size_t key_len;
  int rc = sst_path_to_key(s->rel, s->opts.path_flags, s->key, &key_len);
  if (rc != 0)
    return report_badname(s, rc);
  return add_entry(s, dir, rel_len, key_len, type, st);
}

/* Records the entry of the directory at rel (metadata only): its key is
 * the key of its path and "/". A "%+" piece directory, part of one long
 * name rather than a directory of the table, gets none: its path and
 * "/x" gives a key that does not end in "/x". */
static int add_dir_entry(sst_scan *s, size_t dir, size_t rel_len,
                         const struct stat *st) {
  char *r = grow(s->rel, &s->rel_cap, rel_len + 3, 1, 256);
  if (r == NULL)
    return ENOMEM;
  s->rel = r;
  memcpy(s->rel + rel_len, "/x", 3);
  size_t key_len;
  int rc = sst_path_to_key(s->rel, s->opts.path_flags, s->key, &key_len);
  s->rel[rel_len] = '\0';
  if (rc != 0)
    return report_badname(s, rc);
  if (key_len < 2 || memcmp(s->key + key_len - 2, "/x", 2) != 0)
    return 0; /* a piece */
  return add_entry(s, dir, rel_len, key_len - 1, SST_TYPE_DIR, st);
}

/* Looks at entry `name` of the directory of frame f (its path is in rel,
 * rel_len long); a directory is read into *child (child->names stays
 * NULL for anything else). */
static int visit(sst_scan *s, const frame *f, const char *name, size_t rel_len,
                 frame *child) {
  int dfd;
  int rc = enter(s, f->dir, s->rel, &dfd);
  if (rc != 0 || dfd < 0)
    return rc;
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return report_errno(s, s->rel, errno, 1);
  if (S_ISDIR(st.st_mode)) {
    if ((rc = add_dir(s, f->dir, name, rel_len)) != 0)
      return rc;
    child->dir = s->n_dirs - 1;
    if ((rc = frame_read(child, dfd, name)) == ENOMEM)
      return rc;
    if (rc != 0)
      return report_errno(s, s->rel, rc, 1);
    if (s->opts.metadata && !(s->opts.path_flags & SST_PATH_FLAT))
      return add_dir_entry(s, f->dir, rel_len, &st);
    return 0;
  }
  if (S_ISLNK(st.st_mode) && s->opts.metadata)
    return add_file(s, f->dir, rel_len, SST_TYPE_SYMLINK, &st);
  if (!S_ISREG(st.st_mode))
    return report_special(s, st.st_mode);
  if (s->opts.exclude && (uint64_t)st.st_dev == s->opts.exclude_dev &&
      (uint64_t)st.st_ino == s->opts.exclude_ino)
    return 0;
  return add_file(s, f->dir, rel_len, SST_TYPE_FILE, &st);
}

/* Walks the tree depth first, recording every regular file. */
static int walk(sst_scan *s) {
  frame *stack = malloc(64 * sizeof *stack);
  if (stack == NULL)
    return ENOMEM;
  size_t depth = 0, cap = 64;
  memset(&stack[0], 0, sizeof stack[0]);
  int rc = frame_read(&stack[0], s->root, ".");
  if (rc == ENOMEM || (rc != 0 && (rc = report_errno(s, "", rc, 1)) != 0)) {
    free(stack);
    return rc;
  }
  if (stack[0].names != NULL)
    depth = 1;
  while (rc == 0 && depth > 0) {
    frame *f = &stack[depth - 1];
    if (f->next == f->size) {
      free(f->names);
      depth--;
      continue;
    }
    const char *name = f->names + f->next;
    f->next += strlen(name) + 1;
    size_t base = s->dirs[f->dir].path_len, n = strlen(name);
    size_t rel_len = base + (base > 0) + n;
    char *r = grow(s->rel, &s->rel_cap, rel_len + 1, 1, 256);
    if (r == NULL) {
      rc = ENOMEM;
      break;
    }
    s->rel = r;
    if (base > 0)
      s->rel[base] = '/';
    memcpy(s->rel + base + (base > 0), name, n + 1);
    frame *st = grow(stack, &cap, depth + 1, sizeof *st, 64);
    if (st == NULL) {
      rc = ENOMEM;
      break;
    }
    stack = st;
    f = &stack[depth - 1];
    frame *child = &stack[depth];
    memset(child, 0, sizeof *child);
    rc = visit(s, f, name, rel_len, child);
    if (child->names != NULL) {
      if (rc == 0)
        depth++;
      else
        free(child->names);
    }
    if (rc == 0)
      rc = scan_progress(s);
  }
  while (depth > 0)
    free(stack[--depth].names);
  free(stack);
  return rc;
}

static int entry_cmp(const void *a, const void *b) {
  const sst_scan_file *x = &((const scan_entry *)a)->f;
  const sst_scan_file *y = &((const scan_entry *)b)->f;
  int c = sst_key_cmp(x->key, x->key_len, y->key, y->key_len);
  return c != 0 ? c : strcmp(x->path, y->path);
}

/* Sorts the files by key and reports every pair of paths with one key. */
static int sort_files(sst_scan *s) {
  if (s->n_files > 1)
    qsort(s->files, s->n_files, sizeof *s->files, entry_cmp);
  int found = 0;
  for (size_t i = 1; i < s->n_files; i++) {
    const sst_scan_file *a = &s->files[i - 1].f, *b = &s->files[i].f;
    if (sst_key_cmp(a->key, a->key_len, b->key, b->key_len) != 0)
      continue;
    char shown[128];
    sst_key_render(a->key, a->key_len, shown, sizeof shown);
    snprintf(s->msg, sizeof s->msg, "gives the same key '%s'", shown);
    sst_scan_problem p = {.kind = SST_SCAN_DUPLICATE,
                          .code = SST_EDUPKEY,
                          .path = a->path,
                          .other = b->path,
                          .key = a->key,
                          .key_len = a->key_len};
    int rc = report(s, &p);
    if (rc != 0)
      return rc;
    found = 1;
  }
  return found ? SST_EDUPKEY : 0;
}

/* Regular files with more than one link, by inode, then in key order. */
static int link_cmp(const void *a, const void *b, void *arg) {
  const scan_entry *files = arg;
  const sst_scan_file *x = &files[*(const size_t *)a].f;
  const sst_scan_file *y = &files[*(const size_t *)b].f;
  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return (*(const size_t *)a > *(const size_t *)b) -
         (*(const size_t *)a < *(const size_t *)b);
}

/* Groups the names of one inode found in the tree (metadata only), and
 * numbers the groups 1.. in key order of their first names. A group's
 * size counts once in total_bytes. */
static int group_links(sst_scan *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_files; i++)
    n += s->files[i].f.type == SST_TYPE_FILE && s->files[i].st_nlink > 1;
  if (n < 2)
    return 0;
  size_t *idx = malloc(n * sizeof *idx);
  if (idx == NULL)
    return ENOMEM;
  n = 0;
  for (size_t i = 0; i < s->n_files; i++)
    if (s->files[i].f.type == SST_TYPE_FILE && s->files[i].st_nlink > 1)
      idx[n++] = i;
  qsort_r(idx, n, sizeof *idx, link_cmp, s->files);
  for (size_t a = 0, b; a < n; a = b) {
    const sst_scan_file *first = &s->files[idx[a]].f;
    for (b = a + 1; b < n && s->files[idx[b]].f.dev == first->dev &&
                    s->files[idx[b]].f.ino == first->ino;
         b++)
      ;
    if (b - a < 2)
      continue;
    link_group *g = realloc(s->groups, (s->n_groups + 1) * sizeof *s->groups);
    if (g == NULL) {
      free(idx);
      return ENOMEM;
    }
    s->groups = g;
    s->groups[s->n_groups] =
        (link_group){.first = idx[a], .names = (uint32_t)(b - a)};
    for (size_t k = a; k < b; k++) {
      s->files[idx[k]].group = s->n_groups;
      s->files[idx[k]].f.nlink = (uint32_t)(b - a);
      if (k > a)
        s->total_bytes -= s->files[idx[k]].f.size;
    }
    s->n_groups++;
  }
  free(idx);
  uint64_t next_id = 0;
  for (size_t i = 0; i < s->n_files; i++) {
    scan_entry *e = &s->files[i];
    if (e->group == NO_GROUP)
      continue;
    link_group *g = &s->groups[e->group];
    if (g->first == i)
      g->link_id = ++next_id;
    e->f.link_id = g->link_id;
  }
  return 0;
}

/* Records the top directory as the entry "/" (metadata, not flat). */
static int add_top_entry(sst_scan *s) {
  struct stat st;
  if (fstat(s->root, &st) != 0)
    return report_errno(s, "", errno, 1);
  char *r = grow(s->rel, &s->rel_cap, 1, 1, 256);
  if (r == NULL)
    return ENOMEM;
  s->rel = r;
  s->rel[0] = '\0';
  s->key[0] = '/';
  return add_entry(s, 0, 0, 1, SST_TYPE_DIR, &st);
}

int sst_scan_tree(int dirfd, const sst_scan_options *opts, sst_scan **out) {
  sst_scan *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  if (opts != NULL)
    s->opts = *opts;
  chain_init(&s->ch);
  s->root = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (s->root < 0) {
    int e = errno;
    free(s);
    return e;
  }
  int rc = (s->key = malloc(SST_KEY_MAX)) == NULL
               ? ENOMEM
               : add_dir(s, SIZE_MAX, ".", 0);
  if (rc == 0) {
    s->dirs[0].parent = 0;
    if (s->opts.metadata && !(s->opts.path_flags & SST_PATH_FLAT))
      rc = add_top_entry(s);
  }
  if (rc == 0)
    rc = walk(s);
  if (rc == 0)
    rc = sort_files(s);
  if (rc == 0 && s->opts.metadata)
    rc = group_links(s);
  if (rc != 0) {
    sst_scan_free(s);
    return rc;
  }
  s->written.writing = 1;
  s->written.total_files = s->n_files;
  s->written.total_bytes = s->total_bytes;
  *out = s;
  return 0;
}

size_t sst_scan_count(const sst_scan *s) { return s->n_files; }

uint64_t sst_scan_bytes(const sst_scan *s) { return s->total_bytes; }

const sst_scan_file *sst_scan_get(const sst_scan *s, size_t i) {
  return &s->files[i].f;
}

void sst_scan_free(sst_scan *s) {
  if (s == NULL)
    return;
  chain_cut(&s->ch, 0);
  free(s->ch.levels);
  for (size_t i = 0; i < s->n_dirs; i++)
    free(s->dirs[i].name);
  free(s->dirs);
  for (size_t i = 0; i < s->n_files; i++)
    free((void *)s->files[i].f.key);
  free(s->files);
  for (size_t i = 0; i < s->n_groups; i++)
    free(s->groups[i].xattrs);
  free(s->groups);
  free(s->rel);
  free(s->key);
  free(s->buf);
  if (s->root >= 0)
    close(s->root);
  free(s);
}

/* ---- writing -------------------------------------------------------- */

/* Opens file e for reading and checks it is what the scan saw; every
 * problem here is reported as skippable (*fd stays -1 on a skip). */
static int open_scanned(sst_scan *s, const scan_entry *e, int *fd,
                        struct stat *st) {
  *fd = -1;
  int dfd;
  int rc = enter(s, e->dir, e->f.path, &dfd);
  if (rc != 0 || dfd < 0)
    return rc;
  size_t base = s->dirs[e->dir].path_len;
  int f = openat(dfd, e->f.path + base + (base > 0), FILE_FLAGS);
  if (f < 0)
    return report_errno(s, e->f.path, errno, 1);
  if (fstat(f, st) != 0) {
    rc = report_errno(s, e->f.path, errno, 1);
  } else if (!S_ISREG(st->st_mode)) {
    snprintf(s->msg, sizeof s->msg, "is no longer a regular file");
    rc = report_changed(s, e, 1);
  } else if ((uint64_t)st->st_size != e->f.size) {
    snprintf(s->msg, sizeof s->msg,
             "changed since it was scanned (from %" PRIu64 " bytes to %" PRIu64
             ")",
             e->f.size, (uint64_t)st->st_size);
    rc = report_changed(s, e, 1);
  } else {
    *fd = f;
    return 0;
  }
  close(f);
  return rc;
}

/* Streams the open file fd (st from before) as e's value. */
static int stream(sst_scan *s, const scan_entry *e, int fd,
                  const struct stat *st, sst_writer *w) {
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  int rc = sst_writer_begin_value(w, e->f.key, e->f.key_len);
  if (rc != 0)
    return rc;
  uint64_t expected = e->f.size, got = 0;
  for (;;) {
    ssize_t n = read(fd, s->buf, COPY_CHUNK);
    if (n < 0 && errno == EINTR) {
      if ((rc = progress(s, &s->written)) != 0)
        return rc;
      continue;
    }
    if (n < 0)
      return report_errno(s, e->f.path, errno, 0);
    if (n == 0)
      break;
    got += (uint64_t)n;
    if (got > expected) /* growing: stop rather than read a log forever */
      break;
    if ((rc = sst_writer_append_value(w, s->buf, (size_t)n)) != 0)
      return rc;
    s->written.bytes += (uint64_t)n;
    if ((rc = progress(s, &s->written)) != 0)
      return rc;
  }
  struct stat after;
  if (got > expected)
    snprintf(s->msg, sizeof s->msg,
             "grew while it was read (from %" PRIu64 " bytes)", expected);
  else if (got < expected)
    snprintf(s->msg, sizeof s->msg,
             "shrank while it was read (from %" PRIu64 " bytes to %" PRIu64 ")",
             expected, got);
  else if (fstat(fd, &after) != 0)
    return report_errno(s, e->f.path, errno, 0);
  else if (after.st_size != st->st_size ||
           after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
           after.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
    snprintf(s->msg, sizeof s->msg, "changed while it was read");
  else
    return sst_writer_end_value(w);
  return report_changed(s, e, 0);
}

/* ---- metadata ------------------------------------------------------- */

static void meta_from_stat(sst_meta *m, unsigned type, const struct stat *st) {
  memset(m, 0, sizeof *m);
  m->type = type;
  m->mode = (uint32_t)st->st_mode & 07777;
  m->uid = (uint32_t)st->st_uid;
  m->gid = (uint32_t)st->st_gid;
  m->mtime_sec = (int64_t)st->st_mtim.tv_sec;
  m->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
  m->nlink = 1;
}

static int xattr_cmp(const void *a, const void *b) {
  return strcmp(((const sst_xattr *)a)->name, ((const sst_xattr *)b)->name);
}

/* The names of fd's extended attributes, NUL-terminated one after
 * another, in *names (malloc'ed; NULL when there are none). */
static int list_xattrs(int fd, char **names, size_t *size) {
  *names = NULL;
  *size = 0;
  for (;;) {
    ssize_t n = flistxattr(fd, NULL, 0);
    if (n < 0)
      return errno == ENOTSUP ? 0 : errno;
    if (n == 0)
      return 0;
    char *list = malloc((size_t)n);
    if (list == NULL)
      return ENOMEM;
    ssize_t got = flistxattr(fd, list, (size_t)n);
    if (got > 0) {
      *names = list;
      *size = (size_t)got;
      return 0;
    }
    free(list);
    if (got == 0)
      return 0;
    if (errno != ERANGE) /* ERANGE: one was added since the first call */
      return errno;
  }
}

/* The value of attribute x->name of fd into x (malloc'ed); ENODATA when
 * it went away since it was listed. */
static int get_xattr(int fd, sst_xattr *x) {
  for (;;) {
    ssize_t n = fgetxattr(fd, x->name, NULL, 0);
    if (n < 0)
      return errno;
    uint8_t *v = malloc(n > 0 ? (size_t)n : 1);
    if (v == NULL)
      return ENOMEM;
    ssize_t got = fgetxattr(fd, x->name, v, (size_t)n);
    if (got >= 0) {
      x->value = v;
      x->value_len = (size_t)got;
      return 0;
    }
    free(v);
    if (errno != ERANGE)
      return errno;
  }
}

/* Reads the extended attributes of the open file or directory fd, sorted
 * by name and encoded (sst_xattrs_encode), into *out (malloc'ed; NULL
 * and 0 bytes when there are none). E2BIG when they encode to more than
 * SST_XATTRS_MAX bytes. */
static int read_xattrs(int fd, uint8_t **out, uint32_t *out_len) {
  *out = NULL;
  *out_len = 0;
  char *names;
  size_t size;
  int rc = list_xattrs(fd, &names, &size);
  if (rc != 0 || names == NULL)
    return rc;
  size_t count = 0;
  for (size_t at = 0; at < size; at += strlen(names + at) + 1)
    count++;
  sst_xattr *x = calloc(count, sizeof *x);
  if (x == NULL) {
    free(names);
    return ENOMEM;
  }
  size_t n = 0;
  for (size_t at = 0; at < size && rc == 0; at += strlen(names + at) + 1) {
    x[n].name = names + at;
    x[n].name_len = strlen(names + at);
    if ((rc = get_xattr(fd, &x[n])) == 0)
      n++;
    else if (rc == ENODATA) /* removed since it was listed */
      rc = 0;
  }
  if (rc == 0 && n > 0) {
    qsort(x, n, sizeof *x, xattr_cmp);
    size_t len = sst_xattrs_encode(x, n, NULL, 0);
    if (len > SST_XATTRS_MAX)
      rc = E2BIG;
    else if ((*out = malloc(len)) == NULL)
      rc = ENOMEM;
    else
      *out_len = (uint32_t)sst_xattrs_encode(x, n, *out, len);
  }
  for (size_t i = 0; i < n; i++)
    free((void *)x[i].value);
  free(x);
  free(names);
  return rc;
}

static int report_xattrs(sst_scan *s, const char *path, int rc) {
  if (rc == ENOMEM)
    return rc;
  sst_scan_problem p = {
      .kind = SST_SCAN_ESYS, .code = rc, .path = path, .can_skip = 1};
  if (rc == E2BIG)
    snprintf(s->msg, sizeof s->msg,
             "has extended attributes of more than %u bytes encoded",
             SST_XATTRS_MAX);
  else
    snprintf(s->msg, sizeof s->msg, "reading extended attributes: %s",
             strerror(rc));
  p.message = s->msg;
  return report(s, &p);
}

/* The entry's name in its directory. */
static const char *entry_name(const sst_scan *s, const scan_entry *e) {
  size_t base = s->dirs[e->dir].path_len;
  return e->f.path + base + (base > 0);
}

/* Opens the directory of e and lstats e in it; *dfd is -1 after a skip. */
static int lstat_entry(sst_scan *s, const scan_entry *e, int *dfd,
                       struct stat *st) {
  int rc = enter(s, e->dir, e->f.path, dfd);
  if (rc != 0 || *dfd < 0)
    return rc;
  if (fstatat(*dfd, entry_name(s, e), st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  *dfd = -1;
  return report_errno(s, e->f.path, errno, 1);
}

/* A name of a hard-link group whose value was written: it shares it. */
static int write_link(sst_scan *s, const scan_entry *e, const link_group *g,
                      sst_writer *w) {
  int dfd;
  struct stat st;
  int rc = lstat_entry(s, e, &dfd, &st);
  if (rc != 0 || dfd < 0)
    return rc;
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_dev != e->f.dev ||
      (uint64_t)st.st_ino != e->f.ino) {
    snprintf(s->msg, sizeof s->msg,
             "is no longer a hard link of %s, as it was when scanned",
             s->files[g->first].f.path);
    return report_changed(s, e, 1);
  }
  if ((rc = sst_writer_set_meta(w, &g->meta)) != 0)
    return rc;
  return sst_writer_add_shared(w, e->f.key, e->f.key_len, g->offset, g->len,
                               g->checksum);
}

/* A regular file with its metadata; the first name of a hard-link group
 * keeps what the others share. */
static int write_file_meta(sst_scan *s, const scan_entry *e, sst_writer *w) {
  link_group *g = e->group != NO_GROUP ? &s->groups[e->group] : NULL;
  if (g != NULL && g->written)
    return write_link(s, e, g, w);
  int fd;
  struct stat st;
  int rc = open_scanned(s, e, &fd, &st);
  if (rc != 0 || fd < 0)
    return rc;
  if (g != NULL &&
      ((uint64_t)st.st_dev != e->f.dev || (uint64_t)st.st_ino != e->f.ino)) {
    snprintf(s->msg, sizeof s->msg,
             "was replaced since it was scanned (another inode)");
    rc = report_changed(s, e, 1);
    close(fd);
    return rc;
  }
  sst_meta m;
  meta_from_stat(&m, SST_TYPE_FILE, &st);
  uint8_t *xattrs;
  if ((rc = read_xattrs(fd, &xattrs, &m.xattr_len)) != 0) {
    close(fd);
    return report_xattrs(s, e->f.path, rc);
  }
  m.xattrs = xattrs;
  if (g != NULL) {
    m.nlink = e->f.nlink;
    m.link_id = e->f.link_id;
  }
  rc = sst_writer_set_meta(w, &m);
  if (rc == 0)
    rc = stream(s, e, fd, &st, w);
  close(fd);
  if (rc == 0 && g != NULL &&
      (rc = sst_writer_last_value(w, &g->offset, &g->len, &g->checksum)) == 0) {
    g->written = 1;
    g->meta = m;
    g->xattrs = xattrs;
    xattrs = NULL;
  }
  free(xattrs);
  return rc;
}

/* A directory's entry: no value, its metadata. */
static int write_dir(sst_scan *s, const scan_entry *e, sst_writer *w) {
  int fd = s->root, rc;
  if (e->f.path_len > 0) {
    int dfd;
    if ((rc = enter(s, e->dir, e->f.path, &dfd)) != 0 || dfd < 0)
      return rc;
    if ((fd = openat(dfd, entry_name(s, e), DIR_FLAGS)) < 0)
      return report_errno(s, e->f.path, errno, 1);
  }
  struct stat st;
  sst_meta m;
  uint8_t *xattrs = NULL;
  if (fstat(fd, &st) != 0) {
    rc = report_errno(s, e->f.path, errno, 1);
  } else {
    meta_from_stat(&m, SST_TYPE_DIR, &st);
    if ((rc = read_xattrs(fd, &xattrs, &m.xattr_len)) != 0) {
      rc = report_xattrs(s, e->f.path, rc);
    } else {
      m.xattrs = xattrs;
      if ((rc = sst_writer_set_meta(w, &m)) == 0)
        rc = sst_writer_add(w, e->f.key, e->f.key_len, "", 0);
    }
  }
  free(xattrs);
  if (fd != s->root)
    close(fd);
  return rc;
}

/* A symlink's entry: its target as the value, never followed. */
static int write_symlink(sst_scan *s, const scan_entry *e, sst_writer *w) {
  int dfd;
  struct stat st;
  int rc = lstat_entry(s, e, &dfd, &st);
  if (rc != 0 || dfd < 0)
    return rc;
  if (!S_ISLNK(st.st_mode)) {
    snprintf(s->msg, sizeof s->msg, "is no longer a symlink");
    return report_changed(s, e, 1);
  }
  ssize_t n = readlinkat(dfd, entry_name(s, e), (char *)s->buf, COPY_CHUNK);
  if (n < 0)
    return report_errno(s, e->f.path, errno, 1);
  sst_meta m;
  meta_from_stat(&m, SST_TYPE_SYMLINK, &st);
  if ((rc = sst_writer_set_meta(w, &m)) != 0 ||
      (rc = sst_writer_add(w, e->f.key, e->f.key_len, s->buf, (uint64_t)n)) !=
          0)
    return rc;
  s->written.bytes += (uint64_t)n;
  return 0;
}

/* A regular file, as a plain entry (no metadata). */
static int write_plain(sst_scan *s, const scan_entry *e, sst_writer *w) {
  int fd;
  struct stat st;
  int rc = open_scanned(s, e, &fd, &st);
  if (rc == 0 && fd >= 0) {
    rc = stream(s, e, fd, &st, w);
    close(fd);
  }
  return rc;
}

int sst_scan_write_file(sst_scan *s, size_t i, sst_writer *w) {
  if (s->buf == NULL && (s->buf = malloc(COPY_CHUNK)) == NULL)
    return ENOMEM;
  const scan_entry *e = &s->files[i];
  int rc;
  if (!s->opts.metadata)
    rc = write_plain(s, e, w);
  else if (e->f.type == SST_TYPE_DIR)
    rc = write_dir(s, e, w);
  else if (e->f.type == SST_TYPE_SYMLINK)
    rc = write_symlink(s, e, w);
  else
    rc = write_file_meta(s, e, w);
  if (rc != 0)
    return rc;
  s->written.files++;
  return progress(s, &s->written);
}

int sst_scan_write_all(sst_scan *s, sst_writer *w) {
  int rc = 0;
  for (size_t i = 0; i < s->n_files && rc == 0; i++)
    rc = sst_scan_write_file(s, i, w);
  return rc;
}

int sst_pack_tree(int dirfd, const sst_scan_options *opts, sst_writer *w) {
  sst_scan *s;
  int rc = sst_scan_tree(dirfd, opts, &s);
  if (rc != 0)
    return rc;
  rc = sst_scan_write_all(s, w);
  sst_scan_free(s);
  return rc;
}
