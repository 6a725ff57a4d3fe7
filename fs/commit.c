/* commit.c — the staging area becomes the table: the files of tree/,
 * sorted by key, merged with the base tables' keys (a staged file replaces
 * the key it names; a whiteout drops keys, or writes tombstones in a
 * delta), through the library's writer. It takes the staging mount's
 * state as an argument and knows nothing of FUSE. */
#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "area.h"
#include "common.h"

/* Errors of the scan of tree/, in the words of a staging commit. */
typedef struct commit_ctx {
  char *err;
  size_t errlen;
} commit_ctx;

static int on_problem(void *ctx, const sst_scan_problem *p) {
  commit_ctx *c = ctx;
  switch (p->kind) {
  case SST_SCAN_SPECIAL:
    return 0; /* the mount makes none: nothing to commit */
  case SST_SCAN_BADNAME:
    snprintf(c->err, c->errlen, "%s: cannot be a key: %s", p->path,
             sst_strerror(p->code));
    return p->code;
  case SST_SCAN_DUPLICATE:
    if (p->key_len > 0 && p->key[p->key_len - 1] == '/')
      snprintf(c->err, c->errlen,
               "staged %s and %s are the same key: a directory's entry "
               "and a file's key (such as x/%%= beside x, or %%= at the "
               "top), which one table cannot both hold",
               p->path[0] ? p->path : ".", p->other);
    else
      snprintf(c->err, c->errlen, "staged files %s and %s are the same key",
               p->path, p->other);
    return EEXIST;
  default: /* a system error, or a file that changed while it was read */
    snprintf(c->err, c->errlen, "staged file %s: %s",
             p->path[0] ? p->path : ".", p->message);
    return p->code ? p->code : EIO;
  }
}

/* Whether a base key is under a whiteout. A directory's entry ("a/b/")
 * is the directory's path; the root's ("/") is never hidden. */
static int base_key_hidden(stage *s, const sst_entry *e, int also_dir) {
  static char path[SST_PATH_MAX + 1];
  size_t n, len = e->key_len;
  if ((e->flags & SST_FLAG_META) && e->meta.type == SST_TYPE_DIR) {
    if (len == 1)
      return 0;
    len--, also_dir = 0;
  }
  if (sst_path_from_key(e->key, len, 0, also_dir, path, &n) != 0)
    return 1;
  return ov_hidden(s, path);
}

/* The base's hard-link groups that a commit carries: each (table,
 * link_id) gets a new link_id after the staged files' ones, the number of
 * its names carried, and once its value is written, where it lies. */
typedef struct link_group {
  uint64_t source_id; /* source << 48 | base link_id; 0: a free slot */
  uint64_t id;
  uint32_t names;
  int written;
  uint64_t offset, len;
  uint32_t checksum;
} link_group;

typedef struct link_map {
  link_group *v;
  size_t cap, n;
  uint64_t next_id;
} link_map;

static uint64_t group_key(const sst_entry *e) {
  return (uint64_t)e->source << 48 | (e->meta.link_id & ((1ull << 48) - 1));
}

/* The group of e, added if new. NULL when out of memory. */
static link_group *link_group_of(link_map *m, const sst_entry *e) {
  uint64_t k = group_key(e);
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    link_group *v = calloc(cap, sizeof *v);
    if (v == NULL)
      return NULL;
    for (size_t i = 0; i < m->cap; i++) {
      if (m->v[i].source_id == 0)
        continue;
      size_t j = (size_t)(m->v[i].source_id * 0x9E3779B97F4A7C15ull) % cap;
      while (v[j].source_id != 0)
        j = (j + 1) % cap;
      v[j] = m->v[i];
    }
    free(m->v);
    m->v = v;
    m->cap = cap;
  }
  size_t j = (size_t)(k * 0x9E3779B97F4A7C15ull) % m->cap;
  while (m->v[j].source_id != 0 && m->v[j].source_id != k)
    j = (j + 1) % m->cap;
  if (m->v[j].source_id == 0) {
    m->v[j].source_id = k;
    m->v[j].id = ++m->next_id;
    m->n++;
  }
  return &m->v[j];
}

/* Adds the base entry e to w as it is: its value, its metadata with its
 * extended attributes, a hard link sharing its group's value. */
static int carry(stage *s, const sst_entry *e, link_map *links, sst_writer *w,
                 char *err, size_t errlen) {
  const sst_reader *b = s->base[e->source];
  uint8_t *xattrs = NULL;
  link_group *g = NULL;
  int rc = 0;
  if (e->flags & SST_FLAG_META) {
    sst_meta m = e->meta;
    if (m.link_id != 0) {
      if ((g = link_group_of(links, e)) == NULL)
        return ENOMEM;
      m.nlink = g->names;
      m.link_id = m.nlink > 1 ? g->id : 0;
      if (m.nlink < 2)
        m.nlink = 1, g = NULL;
    }
    if (m.xattr_len > 0 && (rc = ov_base_xattrs(s, e, &xattrs)) != 0) {
      snprintf(err, errlen, "%s: extended attributes of a base entry: %s",
               sst_reader_path(b), strerror(rc));
      return rc;
    }
    m.xattrs = xattrs;
    rc = sst_writer_set_meta(w, &m);
    free(xattrs);
    if (rc)
      return rc;
    if (g != NULL && g->written)
      return sst_writer_add_shared(w, e->key, e->key_len, g->offset, g->len,
                                   g->checksum);
  }
  int read_rc;
  rc = sst_writer_add_from(w, e->key, e->key_len, b, e, &read_rc);
  if (read_rc) {
    snprintf(err, errlen, "%s: a base value: %s", sst_reader_path(b),
             sst_strerror(rc));
    return rc;
  }
  if (rc == 0 && g != NULL) {
    rc = sst_writer_last_value(w, &g->offset, &g->len, &g->checksum);
    g->written = rc == 0;
  }
  return rc;
}

static int dir_is_empty(int fd) {
  DIR *d = sstfs_opendirat(fd, "");
  if (d == NULL)
    return 0;
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

/* Whether the user.* attributes of fd are exactly those encoded in
 * buf (len bytes). */
static int same_xattrs(int fd, const uint8_t *buf, size_t len) {
  size_t count = 0, pos = 0;
  sst_xattr x;
  int more = 0;
  char name[256], value[512];
  while (len > 0 && (more = sst_xattrs_next(buf, len, &pos, &x)) > 0) {
    if (x.name_len < 5 || memcmp(x.name, "user.", 5) != 0)
      continue;
    if (x.name_len >= sizeof name || x.value_len > sizeof value)
      return 0; /* rare: say changed */
    memcpy(name, x.name, x.name_len);
    name[x.name_len] = '\0';
    ssize_t n = fgetxattr(fd, name, value, sizeof value);
    if (n < 0 || (size_t)n != x.value_len ||
        memcmp(value, x.value, x.value_len))
      return 0;
    count++;
  }
  if (more < 0)
    return 0;
  char names[4096];
  ssize_t n = flistxattr(fd, names, sizeof names);
  if (n < 0)
    return 0;
  size_t have = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
    have += strncmp(names + i, "user.", 5) == 0;
  return have == count;
}

/* In a delta: whether the staged directory f is the base's directory
 * entry e as it was (made in tree/ only to hold what changed below it,
 * or given back its metadata), so that it need not be written. */
static int dir_unchanged(stage *s, const sst_scan_file *f, const sst_entry *e) {
  if (f->type != SST_TYPE_DIR || !(e->flags & SST_FLAG_META) ||
      e->meta.type != SST_TYPE_DIR)
    return 0;
  int fd = openat(s->tree_fd, f->path[0] ? f->path : ".",
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return 0;
  int same =
      fstat(fd, &st) == 0 &&
      (st.st_mode & 07777) == ov_kept_mode(s, e->meta.mode, 1) &&
      (!s->is_root || (st.st_uid == e->meta.uid && st.st_gid == e->meta.gid)) &&
      st.st_mtim.tv_sec == e->meta.mtime_sec &&
      st.st_mtim.tv_nsec == (long)e->meta.mtime_nsec;
  if (same) {
    uint8_t *buf = NULL;
    same = ov_base_xattrs(s, e, &buf) == 0 &&
           same_xattrs(fd, buf, e->meta.xattr_len);
    free(buf);
  }
  close(fd);
  return same;
}

/* The merge of the staged entries (scan) with the base's keys. A staged
 * entry replaces the base key it names; a base key under a whiteout is
 * gone (a tombstone in a delta); the others are carried, or in a delta
 * left out as unchanged. With w NULL it only counts the names of the base
 * hard-link groups that are carried (links). */
static int merge(stage *s, sst_scan *scan, link_map *links, sst_writer *w,
                 char *err, size_t errlen) {
  size_t n = sst_scan_count(scan), i = 0;
  sst_iter *it = NULL, *probe = NULL;
  uint8_t *key = NULL;
  const sst_reader *const *bases = (const sst_reader *const *)s->base;
  int rc;
  if ((rc = sst_iter_new_stack(bases, s->nbase, &it)) ||
      (rc = sst_iter_new_stack(bases, s->nbase, &probe)))
    goto done;
  sst_iter_set_skip_tombstones(it, 1);
  sst_iter_set_skip_tombstones(probe, 1);
  if ((key = malloc(SST_KEY_MAX + 1)) == NULL) {
    rc = ENOMEM;
    goto done;
  }
  int any_whiteouts = !dir_is_empty(s->wh_fd);
  for (sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
       sst_iter_next(it)) {
    sst_entry e = *sst_iter_entry(it);
    memcpy(key, e.key, e.key_len);
    e.key = key;
    int c = -1;
    for (; rc == 0 && i < n; i++) {
      const sst_scan_file *f = sst_scan_get(scan, i);
      if ((c = sst_key_cmp(f->key, f->key_len, e.key, e.key_len)) >= 0)
        break;
      if (w != NULL)
        rc = sst_scan_write_file(scan, i, w);
    }
    if (rc)
      break;
    if (i < n && c == 0) {
      /* The staged entry wins; in a delta, a directory as it was in
       * the base is left out. */
      if (w != NULL && s->conf.delta &&
          dir_unchanged(s, sst_scan_get(scan, i), &e))
        i++;
      continue;
    }
    if (any_whiteouts) {
      key[e.key_len] = '/';
      sst_iter_prefix(probe, key, e.key_len + 1);
      if (base_key_hidden(s, &e, sst_iter_valid(probe))) {
        if (s->conf.delta && w != NULL)
          rc = sst_writer_add_tombstone(w, e.key, e.key_len);
        continue;
      }
    }
    if (s->conf.delta)
      continue;
    if (w != NULL) {
      rc = carry(s, &e, links, w, err, errlen);
    } else if ((e.flags & SST_FLAG_META) && e.meta.link_id != 0) {
      link_group *g = link_group_of(links, &e);
      if (g == NULL)
        rc = ENOMEM;
      else
        g->names++;
    }
  }
  if (rc == 0 && (rc = sst_iter_status(it)) != 0)
    snprintf(err, errlen, "base tables: %s", sst_strerror(rc));
  for (; rc == 0 && w != NULL && i < n; i++)
    rc = sst_scan_write_file(scan, i, w);
done:
  sst_iter_free(it);
  sst_iter_free(probe);
  free(key);
  return rc;
}

/* Writes OUT from tree/ and the base, with the metadata of every entry.
 * On failure, err says why. */
int stage_commit(stage *s, char *err, size_t errlen) {
  sst_scan *scan = NULL;
  sst_writer *w = NULL;
  link_map links = {0};
  commit_ctx ctx = {err, errlen};
  sst_scan_options so;
  sst_scan_options_init(&so);
  so.on_problem = on_problem;
  so.ctx = &ctx;
  so.metadata = 1;
  err[0] = '\0';
  int rc = sst_scan_tree(s->tree_fd, &so, &scan);
  if (rc)
    goto done;
  sst_error serr;
  sst_writer_options wo;
  sst_tree_writer_options_init(&wo); /* sst pack's table, byte for byte */
  wo.zstd_level = s->conf.zstd_level;
  wo.dedup = !s->conf.nodedup;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN); /* compress on every core */
  wo.threads = cpus < 1                 ? 1
               : cpus > SST_THREADS_MAX ? SST_THREADS_MAX
                                        : (unsigned)cpus;
  if ((rc = sst_writer_open(s->out, &wo, &w, &serr)) != 0) {
    snprintf(err, errlen, "%s", serr.msg);
    goto done;
  }
  if (s->nbase > 0) {
    /* The base's hard-link groups get link_ids after the staged ones,
     * and their names are counted first (some may be gone). */
    int base_meta = 0;
    for (size_t b = 0; b < s->nbase; b++) {
      sst_info info;
      sst_reader_info(s->base[b], &info);
      base_meta |= (info.features & SST_FEATURE_META) != 0;
    }
    for (size_t i = 0, n = sst_scan_count(scan); i < n; i++) {
      const sst_scan_file *f = sst_scan_get(scan, i);
      if (f->link_id > links.next_id)
        links.next_id = f->link_id;
    }
    /* The counting pass numbers the groups as the writing pass meets
     * them; it is the same walk. */
    if (base_meta && !s->conf.delta &&
        (rc = merge(s, scan, &links, NULL, err, errlen)) != 0)
      goto done;
  }
  rc = s->nbase > 0 ? merge(s, scan, &links, w, err, errlen)
                    : sst_scan_write_all(scan, w);
  /* Last, just before the rename: is OUT still what it was? */
  if (rc == 0 && !s->conf.overwrite &&
      (rc = area_out_unchanged(s->dir_fd, s->out)) != 0) {
    if (rc == EEXIST)
      snprintf(err, errlen,
               "%s appeared (or was replaced) after the staging mount "
               "started, and is not overwritten; to replace it, resume "
               "with -o resume,overwrite",
               s->out);
    else
      snprintf(err, errlen, "%s: %s", s->out, strerror(rc));
  }
  if (rc == 0 && (rc = sst_writer_finish(w, &serr)) != 0)
    snprintf(err, errlen, "%s", serr.msg);
  else if (rc && err[0] == '\0')
    snprintf(err, errlen, "%s: %s", s->out, sst_strerror(rc));
  /* What this area wrote: a later commit may replace it (after a sync). */
  int wrc = rc == 0 ? area_out_record(s->dir_fd, s->out) : 0;
  if (wrc)
    sstfs_log("%s/written: %s; a later commit of %s needs -o overwrite", s->dir,
              strerror(wrc), s->out);
done:
  if (rc && err[0] == '\0')
    snprintf(err, errlen, "%s", sst_strerror(rc));
  sst_writer_free(w);
  free(links.v);
  sst_scan_free(scan);
  return rc;
}
