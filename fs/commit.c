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
#include <unistd.h>

#include "area.h"
#include "common.h"

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
    snprintf(err, errlen, "%s: cannot be a key: %s", relpath, sst_strerror(rc));
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
static int collect(stage *s, file_list *l, char *err, size_t errlen) {
  size_t cap = 64, n = 0;
  char **stack = malloc(cap * sizeof *stack);
  if (stack == NULL || (stack[n++] = strdup("")) == NULL) {
    free(stack);
    return ENOMEM;
  }
  int rc = 0;
  while (n > 0 && rc == 0) {
    char *dir = stack[--n];
    DIR *d = sstfs_opendirat(s->tree_fd, dir);
    if (d == NULL) {
      rc = errno;
      snprintf(err, errlen, "staged directory %s: %s", *dir ? dir : ".",
               strerror(rc));
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

static int add_staged(stage *s, sst_writer *w, const staged_file *f, char *err,
                      size_t errlen) {
  int fd = openat(s->tree_fd, f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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
static int base_key_hidden(stage *s, const sst_entry *e, int also_dir) {
  static char path[SST_PATH_MAX + 1];
  size_t n;
  if (sst_path_from_key(e->key, e->key_len, 0, also_dir, path, &n) != 0)
    return 1;
  return ov_hidden(s, path);
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

/* Writes OUT from tree/ and the base. On failure, err says why. */
int stage_commit(stage *s, char *err, size_t errlen) {
  file_list l = {0};
  sst_writer *w = NULL;
  sst_iter *it = NULL, *probe = NULL;
  uint8_t *key = NULL;
  int rc = collect(s, &l, err, errlen);
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
  if ((rc = sst_writer_open(s->out, NULL, &w, &serr)) != 0) {
    snprintf(err, errlen, "%s", serr.msg);
    goto done;
  }
  /* Merge the sorted staged files with the base's keys. A staged file
   * replaces the base key it names; a base key under a whiteout is gone
   * (a tombstone in a delta); the others are copied, or in a delta left
   * out as unchanged. */
  size_t i = 0;
  if (s->nbase > 0) {
    const sst_reader *const *bases = (const sst_reader *const *)s->base;
    if ((rc = sst_iter_new_merged(bases, s->nbase, &it)) ||
        (rc = sst_iter_new_merged(bases, s->nbase, &probe)))
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
      for (; rc == 0 && i < l.n &&
             cmp_key(l.v[i].key, l.v[i].key_len, e.key, e.key_len) < 0;
           i++)
        rc = add_staged(s, w, &l.v[i], err, errlen);
      if (rc)
        break;
      if (i < l.n && cmp_key(l.v[i].key, l.v[i].key_len, e.key, e.key_len) == 0)
        continue; /* the staged file wins */
      if (any_whiteouts) {
        key[e.key_len] = '/';
        sst_iter_prefix(probe, key, e.key_len + 1);
        if (base_key_hidden(s, &e, sst_iter_valid(probe))) {
          if (s->conf.delta)
            rc = sst_writer_add_tombstone(w, e.key, e.key_len);
          continue;
        }
      }
      if (s->conf.delta)
        continue;
      const uint8_t *v;
      if ((rc = sst_reader_value(s->base[e.source], &e, &v)) != 0) {
        snprintf(err, errlen, "%s: a base value: %s",
                 sst_reader_path(s->base[e.source]), sst_strerror(rc));
        break;
      }
      rc = sst_writer_add(w, e.key, e.key_len, v, e.value_len);
    }
    if (rc == 0 && (rc = sst_iter_status(it)) != 0)
      snprintf(err, errlen, "base tables: %s", sst_strerror(rc));
  }
  for (; rc == 0 && i < l.n; i++)
    rc = add_staged(s, w, &l.v[i], err, errlen);
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
