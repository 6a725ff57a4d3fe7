/* iter.c — ordered traversal of a table, with seek, ranges and prefixes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

enum bound { BOUND_NONE, BOUND_UPPER, BOUND_PREFIX };

struct sst_iter {
  const sst_reader *r;
  uint64_t block; /* index of the block being read */
  sst_handle h;
  sst_block b;
  sst_block_entry be;
  uint8_t *keybuf; /* SST_KEY_MAX bytes: the current key */
  sst_entry e;
  int valid, status;
  enum bound bound;
  uint8_t *bound_key;
  size_t bound_len;
  int skip_tombstones;
  sst_stack *stack; /* set: several tables as one (stack.c) */
};

/* Loads key block i into it->h and it->b. */
static int load_block(sst_iter *it, uint64_t i) {
  it->block = i;
  sst_table_cached_handle(it->r, i, &it->h);
  return sst_table_block(it->r, i, &it->h, &it->b, 0);
}

int sst_iter_new(const sst_reader *r, sst_iter **out) {
  sst_iter *it = calloc(1, sizeof *it);
  if (it == NULL || (it->keybuf = malloc(SST_KEY_MAX)) == NULL ||
      (it->bound_key = malloc(SST_KEY_MAX)) == NULL) {
    sst_iter_free(it);
    return ENOMEM;
  }
  it->r = r;
  *out = it;
  return 0;
}

int sst_iter_new_stack(const sst_reader *const *readers, size_t n,
                       sst_iter **out) {
  if (n == 1)
    return sst_iter_new(readers[0], out);
  sst_iter *it = calloc(1, sizeof *it);
  if (it == NULL)
    return ENOMEM;
  int rc = sst_stack_new(readers, n, &it->stack);
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
  sst_stack_free(it->stack);
  free(it->b.own);
  free(it->keybuf);
  free(it->bound_key);
  free(it);
}

static int stop(sst_iter *it, int rc) {
  it->valid = 0;
  it->status = rc;
  return rc;
}

/* Makes the decoded entry current, unless it lies past the bound. */
static int settle(sst_iter *it) {
  int rc = sst_table_entry(&it->h, &it->be, &it->e);
  if (rc)
    return stop(it, rc);
  it->e.key = it->keybuf;
  it->e.key_len = it->be.key_len;
  it->valid = 1;
  if (it->bound == BOUND_UPPER &&
      sst_key_cmp(it->keybuf, it->be.key_len, it->bound_key, it->bound_len) >=
          0)
    it->valid = 0;
  if (it->bound == BOUND_PREFIX &&
      (it->be.key_len < it->bound_len ||
       memcmp(it->keybuf, it->bound_key, it->bound_len) != 0))
    it->valid = 0;
  return 0;
}

/* Loads block i and makes its first entry current. */
static int enter_block(sst_iter *it, uint64_t i) {
  it->valid = 0;
  if (i >= it->r->f.block_count)
    return 0;
  int rc = load_block(it, i);
  if (rc)
    return stop(it, rc);
  if (it->b.entries_len == 0)
    return stop(it, SST_ECORRUPT);
  it->be.off = 0;
  if ((rc = sst_block_decode(&it->b, it->keybuf, 0, &it->be)))
    return stop(it, rc);
  return settle(it);
}

static int step(sst_iter *it);

/* With skip_tombstones, moves past deleted keys to the next live one. */
static int live(sst_iter *it, int rc) {
  while (rc == 0 && it->valid && it->skip_tombstones &&
         (it->e.flags & SST_FLAG_TOMBSTONE))
    rc = step(it);
  return rc;
}

void sst_iter_set_skip_tombstones(sst_iter *it, int on) {
  it->skip_tombstones = on;
  if (it->stack)
    sst_stack_set_skip_tombstones(it->stack, on);
}

int sst_iter_seek_first(sst_iter *it) {
  if (it->stack)
    return sst_stack_seek_first(it->stack);
  it->status = 0;
  it->bound = BOUND_NONE;
  return live(it, enter_block(it, 0));
}

/* Positions at the first key >= key, keeping the bound. */
static int seek(sst_iter *it, const uint8_t *key, size_t key_len) {
  it->status = 0;
  it->valid = 0;
  int64_t bi;
  int rc = sst_table_find_block(it->r, key, key_len, &bi);
  if (rc)
    return stop(it, rc);
  if (bi < 0)
    return enter_block(it, 0);
  if ((rc = load_block(it, (uint64_t)bi)))
    return stop(it, rc);
  int found;
  if ((rc = sst_block_seek(&it->b, key, key_len, it->keybuf, &it->be,
                           &found)))
    return stop(it, rc);
  return found ? settle(it) : enter_block(it, it->block + 1);
}

int sst_iter_seek(sst_iter *it, const void *key, size_t key_len) {
  if (it->stack)
    return sst_stack_seek(it->stack, key, key_len);
  it->bound = BOUND_NONE;
  return live(it, seek(it, key, key_len));
}

static void set_bound(sst_iter *it, enum bound b, const void *key,
                      size_t len) {
  it->bound = b;
  if (len > SST_KEY_MAX)
    len = SST_KEY_MAX;
  if (len)
    memcpy(it->bound_key, key, len);
  it->bound_len = len;
}

int sst_iter_range(sst_iter *it, const void *from, size_t from_len,
                   const void *to, size_t to_len) {
  if (it->stack)
    return sst_stack_range(it->stack, from, from_len, to, to_len);
  if (to != NULL)
    set_bound(it, BOUND_UPPER, to, to_len);
  else
    it->bound = BOUND_NONE;
  if (from == NULL || from_len == 0) {
    it->status = 0;
    return live(it, enter_block(it, 0));
  }
  return live(it, seek(it, from, from_len));
}

int sst_iter_prefix(sst_iter *it, const void *prefix, size_t prefix_len) {
  if (it->stack)
    return sst_stack_prefix(it->stack, prefix, prefix_len);
  if (prefix_len == 0)
    return sst_iter_seek_first(it);
  set_bound(it, BOUND_PREFIX, prefix, prefix_len);
  return live(it, seek(it, it->bound_key, it->bound_len));
}

int sst_iter_valid(const sst_iter *it) {
  return it->stack ? sst_stack_valid(it->stack) : it->valid;
}
int sst_iter_status(const sst_iter *it) {
  return it->stack ? sst_stack_status(it->stack) : it->status;
}
const sst_entry *sst_iter_entry(const sst_iter *it) {
  return it->stack ? sst_stack_entry(it->stack) : &it->e;
}

int sst_iter_next(sst_iter *it) {
  if (it->stack)
    return sst_stack_next(it->stack);
  return live(it, step(it));
}

static int step(sst_iter *it) {
  if (!it->valid)
    return it->status;
  size_t prev_len = it->be.key_len;
  it->be.off = it->be.next;
  if (it->be.off >= it->b.entries_len)
    return enter_block(it, it->block + 1);
  int rc = sst_block_decode(&it->b, it->keybuf, prev_len, &it->be);
  if (rc)
    return stop(it, rc);
  return settle(it);
}

int sst_iter_seek_position(sst_iter *it, uint64_t pos) {
  if (it->stack)
    return sst_stack_seek_position(it->stack, pos);
  const sst_reader *r = it->r;
  it->status = 0;
  it->valid = 0;
  it->bound = BOUND_NONE;
  /* Blocks lie in file order: find the last one starting at or before pos. */
  uint64_t lo = 0, hi = r->f.block_count;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (sst_table_block_off(r, mid) <= pos)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return SST_ENOTFOUND;
  int rc = load_block(it, lo - 1);
  if (rc)
    return stop(it, rc);
  if (pos - it->h.block_off >= it->b.entries_len)
    return SST_ENOTFOUND;
  size_t target = (size_t)(pos - it->h.block_off);
  /* Start from the last restart point at or before the target. */
  uint32_t rlo = 0, rhi = it->b.restart_count;
  while (rlo + 1 < rhi) {
    uint32_t mid = rlo + (rhi - rlo) / 2;
    size_t off;
    if (sst_block_restart_off(&it->b, mid, &off))
      return stop(it, SST_ECORRUPT);
    if (off <= target)
      rlo = mid;
    else
      rhi = mid;
  }
  if (sst_block_restart_off(&it->b, rlo, &it->be.off))
    return stop(it, SST_ECORRUPT);
  size_t prev_len = 0;
  while (it->be.off <= target) {
    if ((rc = sst_block_decode(&it->b, it->keybuf, prev_len, &it->be)))
      return stop(it, rc);
    if (it->be.off == target) {
      int rc2 = settle(it);
      if (rc2 == 0 && it->skip_tombstones &&
          (it->e.flags & SST_FLAG_TOMBSTONE)) {
        it->valid = 0;
        return SST_ENOTFOUND;
      }
      return rc2;
    }
    prev_len = it->be.key_len;
    it->be.off = it->be.next;
  }
  return SST_ENOTFOUND;
}
