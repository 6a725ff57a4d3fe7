/* iter.c — the public iterator: a thin front over the two kinds of
 * traversal, one table (cursor.c) or a stack of several seen as one
 * (stack.c). It only forwards; neither kind knows of it, and the stack
 * reads its tables through cursors, not through sst_iter. */
#include <errno.h>
#include <stdlib.h>

#include "cursor.h"
#include "stack.h"

/* Exactly one of the two is set. */
struct sst_iter {
  sst_cursor *one;  /* a single table */
  sst_stack *stack; /* several tables as one */
};

int sst_iter_new(const sst_reader *r, sst_iter **out) {
  return sst_iter_new_stack(&r, 1, out);
}

int sst_iter_new_stack(const sst_reader *const *readers, size_t n,
                       sst_iter **out) {
  sst_iter *it = calloc(1, sizeof *it);
  if (it == NULL)
    return ENOMEM;
  /* A stack of one table has the same entries, positions and sources as
   * the table: it is read directly. */
  int rc = n == 1 ? sst_cursor_new(readers[0], &it->one)
                  : sst_stack_new(readers, n, &it->stack);
  if (rc) {
    free(it);
    return rc;
  }
  *out = it;
  return 0;
}

void sst_iter_free(sst_iter *it) {
  if (it == NULL)
    return;
  sst_cursor_free(it->one);
  sst_stack_free(it->stack);
  free(it);
}

void sst_iter_set_skip_tombstones(sst_iter *it, int on) {
  if (it->one)
    sst_cursor_set_skip_tombstones(it->one, on);
  else
    sst_stack_set_skip_tombstones(it->stack, on);
}

int sst_iter_seek_first(sst_iter *it) {
  return it->one ? sst_cursor_seek_first(it->one)
                 : sst_stack_seek_first(it->stack);
}

int sst_iter_seek(sst_iter *it, const void *key, size_t key_len) {
  return it->one ? sst_cursor_seek(it->one, key, key_len)
                 : sst_stack_seek(it->stack, key, key_len);
}

int sst_iter_range(sst_iter *it, const void *from, size_t from_len,
                   const void *to, size_t to_len) {
  return it->one ? sst_cursor_range(it->one, from, from_len, to, to_len)
                 : sst_stack_range(it->stack, from, from_len, to, to_len);
}

int sst_iter_prefix(sst_iter *it, const void *prefix, size_t prefix_len) {
  return it->one ? sst_cursor_prefix(it->one, prefix, prefix_len)
                 : sst_stack_prefix(it->stack, prefix, prefix_len);
}

int sst_iter_seek_position(sst_iter *it, uint64_t pos) {
  return it->one ? sst_cursor_seek_position(it->one, pos)
                 : sst_stack_seek_position(it->stack, pos);
}

int sst_iter_next(sst_iter *it) {
  return it->one ? sst_cursor_next(it->one) : sst_stack_next(it->stack);
}

int sst_iter_valid(const sst_iter *it) {
  return it->one ? sst_cursor_valid(it->one) : sst_stack_valid(it->stack);
}

int sst_iter_status(const sst_iter *it) {
  return it->one ? sst_cursor_status(it->one) : sst_stack_status(it->stack);
}

const sst_entry *sst_iter_entry(const sst_iter *it) {
  return it->one ? sst_cursor_entry(it->one) : sst_stack_entry(it->stack);
}
