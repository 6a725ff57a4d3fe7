/* cursor.c — ordered traversal of one table, with seek, ranges, prefixes
 * and positions. */
#include "cursor.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

enum bound { BOUND_NONE, BOUND_UPPER, BOUND_PREFIX };

struct sst_cursor {
  const sst_reader *r;
  uint64_t block; /* index of the block being read */
  int loaded;     /* h and b hold block `block` */
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
};

/* Loads key block i into c->h and c->b. REQUIRES i < block_count. */
static int load_block(sst_cursor *c, uint64_t i) {
  /* A seek into the block already held (the next name of a directory
   * being listed, a lookup after readdir) reads nothing: with
   * pread_blocks every load is a system call. */
  if (c->loaded && c->block == i)
    return 0;
  c->loaded = 0;
  c->block = i;
  sst_table_cached_handle(c->r, i, &c->h);
  int rc = sst_table_block(c->r, i, &c->h, &c->b, 0);
  c->loaded = rc == 0;
  return rc;
}

int sst_cursor_new(const sst_reader *r, sst_cursor **out) {
  sst_cursor *c = calloc(1, sizeof *c);
  if (c == NULL || (c->keybuf = malloc(SST_KEY_MAX)) == NULL ||
      (c->bound_key = malloc(SST_KEY_MAX)) == NULL) {
    sst_cursor_free(c);
    return ENOMEM;
  }
  c->r = r;
  *out = c;
  return 0;
}

void sst_cursor_free(sst_cursor *c) {
  if (c == NULL)
    return;
  free(c->b.own);
  free(c->keybuf);
  free(c->bound_key);
  free(c);
}

static int stop(sst_cursor *c, int rc) {
  c->valid = 0;
  c->status = rc;
  return rc;
}

/* Makes the decoded entry current, unless it lies past the bound. */
static int settle(sst_cursor *c) {
  int rc = sst_table_entry(c->r, &c->h, &c->b, &c->be, &c->e);
  if (rc)
    return stop(c, rc);
  c->e.key = c->keybuf;
  c->e.key_len = c->be.key_len;
  c->valid = 1;
  if (c->bound == BOUND_UPPER &&
      sst_key_cmp(c->keybuf, c->be.key_len, c->bound_key, c->bound_len) >= 0)
    c->valid = 0;
  if (c->bound == BOUND_PREFIX &&
      (c->be.key_len < c->bound_len ||
       memcmp(c->keybuf, c->bound_key, c->bound_len) != 0))
    c->valid = 0;
  return 0;
}

/* Loads block i and makes its first entry current. */
static int enter_block(sst_cursor *c, uint64_t i) {
  c->valid = 0;
  if (i >= c->r->f.block_count)
    return 0;
  int rc = load_block(c, i);
  if (rc)
    return stop(c, rc);
  if (c->b.entries_len == 0)
    return stop(c, SST_ECORRUPT);
  c->be.off = 0;
  if ((rc = sst_block_decode(&c->b, c->keybuf, 0, &c->be)))
    return stop(c, rc);
  return settle(c);
}

/* Moves to the next entry, tombstones included. */
static int step(sst_cursor *c) {
  if (!c->valid)
    return c->status;
  size_t prev_len = c->be.key_len;
  c->be.off = c->be.next;
  if (c->be.off >= c->b.entries_len)
    return enter_block(c, c->block + 1);
  int rc = sst_block_decode(&c->b, c->keybuf, prev_len, &c->be);
  if (rc)
    return stop(c, rc);
  return settle(c);
}

/* With skip_tombstones, moves past deleted keys to the next live one. */
static int live(sst_cursor *c, int rc) {
  while (rc == 0 && c->valid && c->skip_tombstones &&
         (c->e.flags & SST_FLAG_TOMBSTONE))
    rc = step(c);
  return rc;
}

void sst_cursor_set_skip_tombstones(sst_cursor *c, int on) {
  c->skip_tombstones = on;
}

int sst_cursor_seek_first(sst_cursor *c) {
  c->status = 0;
  c->bound = BOUND_NONE;
  return live(c, enter_block(c, 0));
}

/* Positions at the first key >= key, keeping the bound. */
static int seek(sst_cursor *c, const uint8_t *key, size_t key_len) {
  c->status = 0;
  c->valid = 0;
  int64_t bi;
  int rc = sst_table_find_block(c->r, key, key_len, &bi);
  if (rc)
    return stop(c, rc);
  if (bi < 0)
    return enter_block(c, 0);
  if ((rc = load_block(c, (uint64_t)bi)))
    return stop(c, rc);
  int found;
  if ((rc = sst_block_seek(&c->b, key, key_len, c->keybuf, &c->be, &found)))
    return stop(c, rc);
  return found ? settle(c) : enter_block(c, c->block + 1);
}

int sst_cursor_seek(sst_cursor *c, const void *key, size_t key_len) {
  c->bound = BOUND_NONE;
  return live(c, seek(c, key, key_len));
}

static void set_bound(sst_cursor *c, enum bound b, const void *key,
                      size_t len) {
  c->bound = b;
  if (len > SST_KEY_MAX)
    len = SST_KEY_MAX;
  if (len)
    memcpy(c->bound_key, key, len);
  c->bound_len = len;
}

int sst_cursor_range(sst_cursor *c, const void *from, size_t from_len,
                     const void *to, size_t to_len) {
  if (to != NULL)
    set_bound(c, BOUND_UPPER, to, to_len);
  else
    c->bound = BOUND_NONE;
  if (from == NULL || from_len == 0) {
    c->status = 0;
    return live(c, enter_block(c, 0));
  }
  return live(c, seek(c, from, from_len));
}

int sst_cursor_prefix(sst_cursor *c, const void *prefix, size_t prefix_len) {
  if (prefix_len == 0)
    return sst_cursor_seek_first(c);
  set_bound(c, BOUND_PREFIX, prefix, prefix_len);
  return live(c, seek(c, c->bound_key, c->bound_len));
}

int sst_cursor_valid(const sst_cursor *c) { return c->valid; }
int sst_cursor_status(const sst_cursor *c) { return c->status; }

const sst_entry *sst_cursor_entry(const sst_cursor *c) {
  assert(c->valid);
  return &c->e;
}

int sst_cursor_next(sst_cursor *c) { return live(c, step(c)); }

/* The last restart point of the loaded block at or before entry offset
 * target. 0 or SST_ECORRUPT. */
static int restart_before(const sst_block *b, size_t target, size_t *off) {
  uint32_t lo = 0, hi = b->restart_count;
  while (lo + 1 < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    size_t mid_off;
    if (sst_block_restart_off(b, mid, &mid_off))
      return SST_ECORRUPT;
    if (mid_off <= target)
      lo = mid;
    else
      hi = mid;
  }
  return sst_block_restart_off(b, lo, off);
}

int sst_cursor_seek_position(sst_cursor *c, uint64_t pos) {
  c->status = 0;
  c->valid = 0;
  c->bound = BOUND_NONE;
  int64_t bi = sst_table_block_at(c->r, pos);
  if (bi < 0)
    return SST_ENOTFOUND;
  int rc = load_block(c, (uint64_t)bi);
  if (rc)
    return stop(c, rc);
  if (pos - c->h.pos >= c->b.entries_len)
    return SST_ENOTFOUND;
  size_t target = (size_t)(pos - c->h.pos);
  if (restart_before(&c->b, target, &c->be.off))
    return stop(c, SST_ECORRUPT);
  size_t prev_len = 0;
  while (c->be.off <= target) {
    if ((rc = sst_block_decode(&c->b, c->keybuf, prev_len, &c->be)))
      return stop(c, rc);
    if (c->be.off == target) {
      if ((rc = settle(c)) == 0 && c->skip_tombstones &&
          (c->e.flags & SST_FLAG_TOMBSTONE)) {
        c->valid = 0;
        return SST_ENOTFOUND;
      }
      return rc;
    }
    prev_len = c->be.key_len;
    c->be.off = c->be.next;
  }
  return SST_ENOTFOUND;
}
