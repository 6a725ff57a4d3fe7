/* stack.c — several tables seen as one, the later ones on top.
 *
 * Each table has its own cursor (tombstones included, since a deletion
 * must hide the older tables' entry). The stack's current entry is the
 * smallest key among them; when several tables hold it, the last table's
 * entry wins and the others step past it. With skip_tombstones, a winning
 * tombstone hides the key altogether.
 *
 * Positions: the entry at position p of table i has position p * n + i in
 * the stack, so positions stay unique, stable and decodable.
 */
#include "stack.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "cursor.h"
#include "internal.h"

struct sst_stack {
  size_t n;
  sst_cursor **sub;
  size_t cur;
  int valid, status, skip_tombstones;
  sst_entry e;
};

int sst_stack_new(const sst_reader *const *readers, size_t n, sst_stack **out) {
  sst_stack *s = calloc(1, sizeof *s);
  if (s == NULL || n == 0 || (s->sub = calloc(n, sizeof *s->sub)) == NULL) {
    free(s);
    return n == 0 ? SST_EINVAL : ENOMEM;
  }
  s->n = n;
  for (size_t i = 0; i < n; i++)
    if (sst_cursor_new(readers[i], &s->sub[i]) != 0) {
      sst_stack_free(s);
      return ENOMEM;
    }
  *out = s;
  return 0;
}

void sst_stack_free(sst_stack *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++)
    sst_cursor_free(s->sub[i]);
  free(s->sub);
  free(s);
}

void sst_stack_set_skip_tombstones(sst_stack *s, int on) {
  s->skip_tombstones = on;
}

static int key_cmp(const sst_entry *a, const sst_entry *b) {
  return sst_key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* Picks the winner among the cursors' current entries. */
static int settle(sst_stack *s) {
  for (;;) {
    s->valid = 0;
    size_t best = s->n;
    for (size_t i = 0; i < s->n; i++) {
      if ((s->status = sst_cursor_status(s->sub[i])) != 0)
        return s->status;
      if (!sst_cursor_valid(s->sub[i]))
        continue;
      /* Ascending order: on equal keys the later table takes over. */
      if (best == s->n || key_cmp(sst_cursor_entry(s->sub[i]),
                                  sst_cursor_entry(s->sub[best])) <= 0)
        best = i;
    }
    if (best == s->n)
      return 0;
    const sst_entry *w = sst_cursor_entry(s->sub[best]);
    for (size_t i = 0; i < s->n; i++) {
      if (i == best || !sst_cursor_valid(s->sub[i]) ||
          key_cmp(sst_cursor_entry(s->sub[i]), w) != 0)
        continue;
      int rc = sst_cursor_next(s->sub[i]);
      if (rc)
        return s->status = rc;
    }
    if (s->skip_tombstones && (w->flags & SST_FLAG_TOMBSTONE)) {
      int rc = sst_cursor_next(s->sub[best]);
      if (rc)
        return s->status = rc;
      continue;
    }
    s->cur = best;
    s->e = *w;
    s->e.source = (unsigned)best;
    s->e.position = w->position * s->n + best;
    s->valid = 1;
    return 0;
  }
}

int sst_stack_seek_first(sst_stack *s) {
  for (size_t i = 0; i < s->n; i++)
    sst_cursor_seek_first(s->sub[i]);
  return settle(s);
}

int sst_stack_seek(sst_stack *s, const void *key, size_t key_len) {
  for (size_t i = 0; i < s->n; i++)
    sst_cursor_seek(s->sub[i], key, key_len);
  return settle(s);
}

int sst_stack_range(sst_stack *s, const void *from, size_t from_len,
                    const void *to, size_t to_len) {
  for (size_t i = 0; i < s->n; i++)
    sst_cursor_range(s->sub[i], from, from_len, to, to_len);
  return settle(s);
}

int sst_stack_prefix(sst_stack *s, const void *prefix, size_t prefix_len) {
  for (size_t i = 0; i < s->n; i++)
    sst_cursor_prefix(s->sub[i], prefix, prefix_len);
  return settle(s);
}

int sst_stack_next(sst_stack *s) {
  if (!s->valid)
    return s->status;
  int rc = sst_cursor_next(s->sub[s->cur]);
  if (rc)
    return s->status = rc;
  return settle(s);
}

int sst_stack_seek_position(sst_stack *s, uint64_t pos) {
  size_t idx = (size_t)(pos % s->n);
  s->valid = 0;
  int rc = sst_cursor_seek_position(s->sub[idx], pos / s->n);
  if (rc)
    return rc;
  const sst_entry *t = sst_cursor_entry(s->sub[idx]);
  for (size_t i = 0; i < s->n; i++)
    if (i != idx && (rc = sst_cursor_seek(s->sub[i], t->key, t->key_len)) != 0)
      return s->status = rc;
  if ((rc = settle(s)) != 0)
    return rc;
  /* Shadowed by a later table, or deleted: nothing is at that position. */
  if (!s->valid || s->e.position != pos) {
    s->valid = 0;
    return SST_ENOTFOUND;
  }
  return 0;
}

int sst_stack_valid(const sst_stack *s) { return s->valid; }
int sst_stack_status(const sst_stack *s) { return s->status; }
const sst_entry *sst_stack_entry(const sst_stack *s) {
  assert(s->valid);
  return &s->e;
}

int sst_stack_find(const sst_reader *const *readers, size_t n, const void *key,
                   size_t key_len, sst_entry *e) {
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
