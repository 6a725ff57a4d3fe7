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
    snprintf(c->err, c->errlen, "staged files %s and %s are the same key",
             p->path, p->other);
    return EEXIST;
  default: /* a system error, or a file that changed while it was read */
    snprintf(c->err, c->errlen, "staged file %s: %s",
             p->path[0] ? p->path : ".", p->message);
    return p->code ? p->code : EIO;
  }
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
  sst_scan *scan = NULL;
  sst_writer *w = NULL;
  sst_iter *it = NULL, *probe = NULL;
  uint8_t *key = NULL;
  commit_ctx ctx = {err, errlen};
  sst_scan_options so;
  sst_scan_options_init(&so);
  so.on_problem = on_problem;
  so.ctx = &ctx;
  err[0] = '\0';
  int rc = sst_scan_tree(s->tree_fd, &so, &scan);
  if (rc)
    goto done;
  size_t n = sst_scan_count(scan);
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
        rc = sst_scan_write_file(scan, i, w);
      }
      if (rc)
        break;
      if (i < n && c == 0)
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
  for (; rc == 0 && i < n; i++)
    rc = sst_scan_write_file(scan, i, w);
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
  sst_scan_free(scan);
  return rc;
}
