/* stack.c — several tables seen as one, the later ones on top.
 *
 * Each table has its own iterator (tombstones included, since a deletion
 * must hide the older tables' entry). The view's current entry is the
 * smallest key among them; when several tables hold it, the last table's
 * entry wins and the others step past it. With skip_tombstones, a winning
 * tombstone hides the key altogether.
 *
 * Positions: the entry at position p of table i has position p * n + i in
 * the view, so positions stay unique, stable and decodable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

struct sst_stack {
  size_t n;
  sst_iter **sub;
  size_t cur;
  int valid, status, skip_tombstones;
  sst_entry e;
};

int sst_stack_new(const sst_reader *const *readers, size_t n,
                  sst_stack **out) {
  sst_stack *m = calloc(1, sizeof *m);
  if (m == NULL || n == 0 || (m->sub = calloc(n, sizeof *m->sub)) == NULL) {
    free(m);
    return n == 0 ? SST_EINVAL : ENOMEM;
  }
  m->n = n;
  for (size_t i = 0; i < n; i++)
    if (sst_iter_new(readers[i], &m->sub[i]) != 0) {
      sst_stack_free(m);
      return ENOMEM;
    }
  *out = m;
  return 0;
}

void sst_stack_free(sst_stack *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++)
    sst_iter_free(m->sub[i]);
  free(m->sub);
  free(m);
}

void sst_stack_set_skip_tombstones(sst_stack *m, int on) {
  m->skip_tombstones = on;
}

static int key_cmp(const sst_entry *a, const sst_entry *b) {
  return sst_key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* Picks the winner among the sub-iterators' current entries. */
static int settle(sst_stack *m) {
  for (;;) {
    m->valid = 0;
    size_t best = m->n;
    for (size_t i = 0; i < m->n; i++) {
      if ((m->status = sst_iter_status(m->sub[i])) != 0)
        return m->status;
      if (!sst_iter_valid(m->sub[i]))
        continue;
      /* Ascending order: on equal keys the later table takes over. */
      if (best == m->n || key_cmp(sst_iter_entry(m->sub[i]),
                                  sst_iter_entry(m->sub[best])) <= 0)
        best = i;
    }
    if (best == m->n)
      return 0;
    const sst_entry *w = sst_iter_entry(m->sub[best]);
    for (size_t i = 0; i < m->n; i++) {
      if (i == best || !sst_iter_valid(m->sub[i]) ||
          key_cmp(sst_iter_entry(m->sub[i]), w) != 0)
        continue;
      int rc = sst_iter_next(m->sub[i]);
      if (rc)
        return m->status = rc;
    }
    if (m->skip_tombstones && (w->flags & SST_FLAG_TOMBSTONE)) {
      int rc = sst_iter_next(m->sub[best]);
      if (rc)
        return m->status = rc;
      continue;
    }
    m->cur = best;
    m->e = *w;
    m->e.source = (unsigned)best;
    m->e.position = w->position * m->n + best;
    m->valid = 1;
    return 0;
  }
}

int sst_stack_seek_first(sst_stack *m) {
  for (size_t i = 0; i < m->n; i++)
    sst_iter_seek_first(m->sub[i]);
  return settle(m);
}

int sst_stack_seek(sst_stack *m, const void *key, size_t len) {
  for (size_t i = 0; i < m->n; i++)
    sst_iter_seek(m->sub[i], key, len);
  return settle(m);
}

int sst_stack_range(sst_stack *m, const void *from, size_t from_len,
                    const void *to, size_t to_len) {
  for (size_t i = 0; i < m->n; i++)
    sst_iter_range(m->sub[i], from, from_len, to, to_len);
  return settle(m);
}

int sst_stack_prefix(sst_stack *m, const void *prefix, size_t len) {
  for (size_t i = 0; i < m->n; i++)
    sst_iter_prefix(m->sub[i], prefix, len);
  return settle(m);
}

int sst_stack_next(sst_stack *m) {
  if (!m->valid)
    return m->status;
  int rc = sst_iter_next(m->sub[m->cur]);
  if (rc)
    return m->status = rc;
  return settle(m);
}

int sst_stack_seek_position(sst_stack *m, uint64_t pos) {
  size_t idx = (size_t)(pos % m->n);
  m->valid = 0;
  int rc = sst_iter_seek_position(m->sub[idx], pos / m->n);
  if (rc)
    return rc;
  const sst_entry *t = sst_iter_entry(m->sub[idx]);
  for (size_t i = 0; i < m->n; i++)
    if (i != idx && (rc = sst_iter_seek(m->sub[i], t->key, t->key_len)) != 0)
      return m->status = rc;
  if ((rc = settle(m)) != 0)
    return rc;
  /* Shadowed by a later table, or deleted: nothing is at that position. */
  if (!m->valid || m->e.position != pos) {
    m->valid = 0;
    return SST_ENOTFOUND;
  }
  return 0;
}

int sst_stack_valid(const sst_stack *m) { return m->valid; }
int sst_stack_status(const sst_stack *m) { return m->status; }
const sst_entry *sst_stack_entry(const sst_stack *m) { return &m->e; }

int sst_stack_find(const sst_reader *const *readers, size_t n,
                   const void *key, size_t key_len, sst_entry *e) {
  for (size_t i = n; i-- > 0;) {
    int rc = sst_reader_find(readers[i], key, key_len, e);
    if (rc == SST_ENOTFOUND)
      continue;
    if (rc == 0) {
      e->source = (unsigned)i;
      e->position = e->position * n + i;
    }
    return rc;
  }
  return SST_ENOTFOUND;
}
