/* fuzz_table.c — libFuzzer harness for the table reader: the input is a
 * table file. Whatever its bytes, opening it, point lookups, every kind of
 * scan, seeks to positions, verify and the tree view answer without a
 * crash, and every value they hand out lies inside the file.
 *
 * When sst_reader_verify() accepts the table, it is sound, and the answers
 * must also agree with one another: every key a scan finds is found by
 * lookups and by its position, scans see exactly the footer's key count,
 * and every name a directory lists is found by a lookup as the same node.
 * The table stacked on itself (sst_iter_new_stack, sst_stack_find,
 * sst_tree_open_stack) must show the same keys and names, from the top.
 *
 * For half the inputs the checksums are repaired first (see "repairing
 * checksums" below), so that mutations get past them.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>

#include "sstable.h"
#include "sstpath.h"

#define MAX_STEPS 2048 /* entries visited by a full scan */
#define MAX_SHORT 32   /* entries visited by a scan after a seek */
#define MAX_KEYS 48    /* keys kept from the full scan for lookups */
#define MAX_NAMES 48   /* names kept from one directory listing */
#define MAX_SUBDIRS 8  /* directories listed one level below the root */

static volatile uint8_t sink;

static void fail(const char *what) {
  fprintf(stderr, "fuzz_table: %s\n", what);
  abort();
}

static void touch(const uint8_t *p, uint64_t len) {
  if (len > 0) {
    sink ^= p[0];
    sink ^= p[len - 1];
  }
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al > bl) - (al < bl);
}

typedef struct saved_key {
  uint8_t *key;
  size_t len;
  sst_entry e; /* e.key is not kept */
} saved_key;

typedef struct fuzz {
  const uint8_t *in;
  size_t in_len;
  uint64_t rng;
  sst_reader *r;
  const uint8_t *data;
  uint64_t size;
  sst_info info;
  int sound; /* verify accepted the table */
  sst_iter *it;
  saved_key keys[MAX_KEYS];
  size_t nkeys;
} fuzz;

/* A deterministic stream of numbers from the input, so that a crash
 * reproduces from its file alone. */
static uint64_t next_rand(fuzz *f) {
  f->rng = f->rng * 6364136223846793005ull + 1442695040888963407ull;
  return f->rng >> 17;
}

/* A slice of the input of 1 to max bytes (the whole input if shorter). */
static const uint8_t *input_slice(fuzz *f, size_t max, size_t *len) {
  if (f->in_len == 0) {
    *len = 0;
    return f->in;
  }
  size_t n = 1 + (size_t)(next_rand(f) % max);
  if (n > f->in_len)
    n = f->in_len;
  size_t at = (size_t)(next_rand(f) % (f->in_len - n + 1));
  *len = n;
  return f->in + at;
}

#define APART (SST_FLAG_PACKED | SST_FLAG_CHUNKED)

/* An entry's value must lie inside the file (a value stored compressed:
 * its chunks, or its offset within its block), and read as itself. */
static void check_value(fuzz *f, const sst_entry *e) {
  uint64_t stored =
      (e->flags & SST_FLAG_CHUNKED) ? e->value_stored : e->value_len;
  if (!(e->flags & SST_FLAG_PACKED) &&
      (e->value_offset > f->size || stored > f->size - e->value_offset))
    fail("an entry's value lies outside the file");
  if (e->flags & SST_FLAG_TOMBSTONE)
    return;
  const uint8_t *v = NULL;
  int rc = sst_reader_value(f->r, e, &v);
  if (rc == 0) {
    if (!(e->flags & APART) && v != f->data + e->value_offset)
      fail("sst_reader_value: pointer is not the entry's offset");
    touch(v, e->value_len);
  } else if (f->sound) {
    fail("sst_reader_value failed on a verified table");
  }
  (void)sst_reader_value_check(f->r, e);
  /* Pieces of it, at a few offsets: the same bytes as the whole. */
  uint8_t piece[512];
  uint64_t offs[3] = {0, e->value_len / 2, e->value_len ? e->value_len - 1 : 0};
  for (int k = 0; k < 3; k++) {
    size_t got;
    rc = sst_reader_read(f->r, e, offs[k], piece, sizeof piece, &got);
    if (rc == 0 && (got > sizeof piece || got > e->value_len - offs[k]))
      fail("sst_reader_read: more bytes than asked or than the value has");
    if (rc == 0 && (e->flags & APART) && v != NULL && f->sound &&
        memcmp(piece, v + offs[k], got) != 0)
      fail("verified table: sst_reader_read disagrees with the value");
    if (rc != 0 && f->sound && (e->flags & APART))
      fail("sst_reader_read failed on a verified table");
  }
}

/* An entry's metadata is in range, and its attributes decode or fail
 * cleanly (on a verified table, decode). */
static void check_meta(fuzz *f, const sst_entry *e) {
  if (!(e->flags & SST_FLAG_META))
    return;
  const sst_meta *m = &e->meta;
  if (m->type > SST_TYPE_SYMLINK || m->mode > 07777 ||
      m->mtime_nsec > 999999999 || m->nlink == 0 ||
      m->xattr_len > SST_XATTRS_MAX)
    fail("an entry's metadata is out of range");
  if (m->type == SST_TYPE_DIR && e->value_len != 0)
    fail("a directory entry has a value");
  if (m->xattr_len == 0)
    return;
  if (m->xattr_off > f->size || m->xattr_len > f->size - m->xattr_off)
    fail("an entry's attributes lie outside the file");
  uint8_t *buf = malloc(m->xattr_len);
  if (buf == NULL)
    fail("out of memory");
  if (sst_reader_xattrs(f->r, e, buf) == 0) {
    size_t pos = 0;
    sst_xattr x;
    int rc, n = 0;
    while ((rc = sst_xattrs_next(buf, m->xattr_len, &pos, &x)) == 1) {
      if (x.name_len == 0 || x.name_len > 255 || x.value_len > 65536)
        fail("an attribute is out of range");
      touch((const uint8_t *)x.name, x.name_len);
      n++;
    }
    if (rc != 0 || n == 0)
      fail("an entry's attributes do not decode");
  } else if (f->sound) {
    fail("verified table: sst_reader_xattrs failed");
  }
  free(buf);
}

static void check_entry(fuzz *f, const sst_entry *e) {
  if (e->key_len == 0 || e->key_len > SST_KEY_MAX)
    fail("an entry's key length is out of range");
  touch(e->key, e->key_len);
  if (e->position >= f->size)
    fail("an entry's position lies outside the file");
  check_value(f, e);
  check_meta(f, e);
}

static void save_key(fuzz *f, const sst_entry *e) {
  if (f->nkeys == MAX_KEYS)
    return;
  saved_key *s = &f->keys[f->nkeys];
  if ((s->key = malloc(e->key_len)) == NULL)
    fail("out of memory");
  memcpy(s->key, e->key, e->key_len);
  s->len = e->key_len;
  s->e = *e;
  s->e.key = NULL;
  f->nkeys++;
}

/* Walks the iterator from where it stands, at most max entries.
 * Returns the entries seen; *ended says it stopped by itself. */
static uint64_t walk(fuzz *f, int rc, uint64_t max, int skip_tombstones,
                     int save, int *ended) {
  uint64_t seen = 0;
  uint8_t *prev = NULL;
  size_t prev_len = 0;
  if (f->sound && (prev = malloc(SST_KEY_MAX)) == NULL)
    fail("out of memory");
  while (rc == 0 && sst_iter_valid(f->it) && seen < max) {
    const sst_entry *e = sst_iter_entry(f->it);
    check_entry(f, e);
    if (skip_tombstones && (e->flags & SST_FLAG_TOMBSTONE))
      fail("skipping tombstones, the iterator stopped on one");
    if (prev != NULL) {
      if (seen > 0 && key_cmp(prev, prev_len, e->key, e->key_len) >= 0)
        fail("verified table: a scan's keys do not increase");
      memcpy(prev, e->key, e->key_len);
      prev_len = e->key_len;
    }
    if (save && (seen < MAX_KEYS / 2 || next_rand(f) % 8 == 0))
      save_key(f, e);
    seen++;
    rc = sst_iter_next(f->it);
  }
  *ended = rc != 0 || !sst_iter_valid(f->it);
  if (rc != sst_iter_status(f->it) && rc != 0)
    fail("an iterator's status differs from what it returned");
  if (f->sound && rc != 0)
    fail("verified table: a scan met an error");
  free(prev);
  return seen;
}

static void full_scans(fuzz *f) {
  int ended;
  sst_iter_set_skip_tombstones(f->it, 0);
  uint64_t all = walk(f, sst_iter_seek_first(f->it), MAX_STEPS, 0, 1, &ended);
  if (f->sound && ended && all != f->info.key_count)
    fail("verified table: a full scan does not see key_count entries");
  sst_iter_set_skip_tombstones(f->it, 1);
  uint64_t live = walk(f, sst_iter_seek_first(f->it), MAX_STEPS, 1, 0, &ended);
  if (f->sound && ended && live != f->info.key_count - f->info.tombstone_count)
    fail("verified table: live keys do not match the footer's counts");
  sst_iter_set_skip_tombstones(f->it, 0);
}

/* Lookups of a key the table holds (known) or of any bytes. */
static void lookups(fuzz *f, const uint8_t *key, size_t len,
                    const saved_key *known) {
  sst_entry e;
  int rc = sst_reader_find(f->r, key, len, &e);
  if (rc == 0) {
    if (e.key != key || e.key_len != len)
      fail("sst_reader_find: e->key is not the caller's key");
    check_entry(f, &e);
  }
  if (known != NULL && f->sound &&
      (rc != 0 || e.position != known->e.position ||
       e.flags != known->e.flags || e.value_len != known->e.value_len ||
       e.value_offset != known->e.value_offset))
    fail("verified table: sst_reader_find disagrees with a scan");

  const uint8_t *v = NULL;
  uint64_t vlen = 0;
  rc = sst_reader_get(f->r, key, len, &v, &vlen);
  int apart = rc == 0 && (e.flags & APART);
  if (rc == 0) {
    if (!apart && (v < f->data || (uint64_t)(v - f->data) > f->size ||
                   vlen > f->size - (uint64_t)(v - f->data)))
      fail("sst_reader_get: the value lies outside the file");
    touch(v, vlen);
  }
  if (known != NULL && f->sound) {
    int dead = (known->e.flags & SST_FLAG_TOMBSTONE) != 0;
    if (dead ? rc != SST_ENOTFOUND
             : rc != 0 || vlen != known->e.value_len ||
                   (!apart && v != f->data + known->e.value_offset))
      fail("verified table: sst_reader_get disagrees with a scan");
  }

  int ended;
  rc = sst_iter_seek(f->it, key, len);
  if (rc == 0 && sst_iter_valid(f->it)) {
    const sst_entry *s = sst_iter_entry(f->it);
    check_entry(f, s);
    if (f->sound && key_cmp(s->key, s->key_len, key, len) < 0)
      fail("verified table: seek landed before its key");
    if (known != NULL && f->sound &&
        (s->key_len != len || memcmp(s->key, key, len) != 0))
      fail("verified table: seek to a key in the table missed it");
  } else if (known != NULL && f->sound) {
    fail("verified table: seek to a key in the table failed");
  }
  (void)walk(f, rc, MAX_SHORT, 0, 0, &ended);

  /* Every key a prefix scan gives starts with the prefix. */
  size_t plen = len > 1 ? len / 2 + (size_t)(next_rand(f) % (len / 2)) : len;
  rc = sst_iter_prefix(f->it, key, plen);
  uint64_t n = 0;
  while (rc == 0 && sst_iter_valid(f->it) && n++ < MAX_SHORT) {
    const sst_entry *s = sst_iter_entry(f->it);
    check_entry(f, s);
    if (s->key_len < plen || memcmp(s->key, key, plen) != 0)
      fail("a prefix scan gave a key without the prefix");
    rc = sst_iter_next(f->it);
  }
  if (known != NULL && f->sound && n == 0)
    fail("verified table: a prefix scan missed a key in the table");
}

/* A range scan from `from` to `to` (either may be NULL): every key is
 * below `to`, and, on a verified table, not below `from`. */
static void range_scan(fuzz *f, const uint8_t *from, size_t from_len,
                       const uint8_t *to, size_t to_len) {
  int rc = sst_iter_range(f->it, from, from_len, to, to_len);
  uint64_t n = 0;
  while (rc == 0 && sst_iter_valid(f->it) && n++ < MAX_SHORT) {
    const sst_entry *s = sst_iter_entry(f->it);
    check_entry(f, s);
    if (to != NULL && key_cmp(s->key, s->key_len, to, to_len) >= 0)
      fail("a range scan went past its end");
    if (f->sound && from != NULL &&
        key_cmp(s->key, s->key_len, from, from_len) < 0)
      fail("verified table: a range scan started before its start");
    rc = sst_iter_next(f->it);
  }
}

static void seek_position(fuzz *f, uint64_t pos, const saved_key *known) {
  int rc = sst_iter_seek_position(f->it, pos);
  if (rc == 0 && sst_iter_valid(f->it)) {
    const sst_entry *s = sst_iter_entry(f->it);
    check_entry(f, s);
    if (s->position != pos)
      fail("seek_position landed on another position");
    if (known != NULL && f->sound &&
        (s->key_len != known->len || memcmp(s->key, known->key, s->key_len)))
      fail("verified table: seek_position found another key");
    for (int i = 0; i < 3 && rc == 0 && sst_iter_valid(f->it); i++) {
      check_entry(f, sst_iter_entry(f->it));
      rc = sst_iter_next(f->it);
    }
  } else if (known != NULL && f->sound) {
    fail("verified table: seek_position to an entry failed");
  }
}

static void positions(fuzz *f) {
  for (size_t i = 0; i < f->nkeys; i++) {
    seek_position(f, f->keys[i].e.position, &f->keys[i]);
    seek_position(f, f->keys[i].e.position + 1, NULL);
  }
  const uint64_t fixed[] = {0,           1,       16,         f->size / 2,
                            f->size - 1, f->size, UINT64_MAX, UINT64_MAX / 2};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    seek_position(f, fixed[i], NULL);
  for (int i = 0; i < 8; i++)
    seek_position(f, f->size ? next_rand(f) % f->size : 0, NULL);
}

/* ---- the tree view ----------------------------------------------------- */

typedef struct listed {
  char name[SST_NAME_MAX + 1];
  sst_node node;
  uint64_t next_cookie;
} listed;

typedef struct listing {
  listed items[MAX_NAMES];
  size_t n;
} listing;

static int collect(void *ctx, const char *name, const sst_node *node,
                   uint64_t next_cookie) {
  listing *l = ctx;
  size_t n = strnlen(name, SST_NAME_MAX + 1);
  if (n == 0 || n > SST_NAME_MAX || strchr(name, '/') ||
      strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    fail("a listing gave a name that is not a valid file name");
  if (l->n == MAX_NAMES)
    return 1;
  listed *it = &l->items[l->n++];
  memcpy(it->name, name, n + 1);
  it->node = *node;
  it->next_cookie = next_cookie;
  return 0;
}

static void check_node(fuzz *f, const sst_node *node) {
  if (!node->is_dir) {
    sst_entry e = node->entry;
    e.key = NULL;
    check_value(f, &e);
    if (node->entry.flags & SST_FLAG_TOMBSTONE)
      fail("the tree shows a tombstone as a file");
  }
}

static void same_node(fuzz *f, const sst_node *a, const sst_node *b,
                      const char *what) {
  if (f->sound && (a->ino != b->ino || a->is_dir != b->is_dir ||
                   (!a->is_dir && (a->entry.position != b->entry.position ||
                                   a->entry.value_len != b->entry.value_len))))
    fail(what);
}

/* Lists dir (bounded), then looks up and stats every name it gave. */
static void tree_dir(fuzz *f, sst_tree *t, uint64_t dir, listing *l) {
  l->n = 0;
  int rc = sst_tree_list(t, dir, 0, collect, l);
  if (f->sound && rc != 0)
    fail("verified table: listing a directory failed");
  for (size_t i = 0; i < l->n; i++) {
    const listed *it = &l->items[i];
    check_node(f, &it->node);
    sst_node node;
    rc = sst_tree_lookup(t, dir, it->name, &node);
    if (rc == 0)
      check_node(f, &node);
    else if (f->sound)
      fail("verified table: a listed name is not found by lookup");
    if (rc == 0)
      same_node(f, &it->node, &node,
                "verified table: lookup gives another node than the listing");
    rc = sst_tree_stat(t, it->node.ino, &node);
    if (rc == 0)
      check_node(f, &node);
    else if (f->sound)
      fail("verified table: a listed inode does not stat");
    if (rc == 0)
      same_node(f, &it->node, &node,
                "verified table: stat gives another node than the listing");
  }
  /* Resuming from a cookie gives the next name. */
  if (l->n >= 2) {
    size_t k = (size_t)(next_rand(f) % (l->n - 1));
    listing *rest = malloc(sizeof *rest);
    if (rest == NULL)
      fail("out of memory");
    rest->n = 0;
    rc = sst_tree_list(t, dir, l->items[k].next_cookie, collect, rest);
    if (f->sound && (rc != 0 || rest->n == 0 ||
                     strcmp(rest->items[0].name, l->items[k + 1].name) != 0))
      fail("verified table: a listing resumed from a cookie goes astray");
    free(rest);
  }
}

/* Names made of input bytes, plain and behind each escape marker. */
static void junk_lookups(fuzz *f, sst_tree *t, uint64_t dir) {
  static const char *const markers[] = {"", "%=", "%!", "%+"};
  char name[SST_NAME_MAX + 40];
  for (size_t m = 0; m < 4; m++) {
    size_t len, ml = strlen(markers[m]);
    const uint8_t *s = input_slice(f, SST_NAME_MAX + 20, &len);
    memcpy(name, markers[m], ml);
    memcpy(name + ml, s, len);
    name[ml + len] = '\0';
    sst_node node;
    if (sst_tree_lookup(t, dir, name, &node) == 0)
      check_node(f, &node);
  }
}

/* The tree of the table alone, or of the table stacked on itself (which
 * must show the same names); root receives the root's listing. */
static void tree(fuzz *f, unsigned flags, int stacked, listing *root) {
  sst_tree *t;
  const sst_reader *two[2] = {f->r, f->r};
  int rc = stacked ? sst_tree_open_stack(two, 2, flags, &t)
                   : sst_tree_open(f->r, flags, &t);
  if (rc != 0) {
    if (f->sound)
      fail("verified table: opening a tree view failed");
    return;
  }
  listing *sub = malloc(sizeof *sub);
  if (sub == NULL)
    fail("out of memory");
  tree_dir(f, t, SST_TREE_ROOT, root);
  junk_lookups(f, t, SST_TREE_ROOT);
  size_t dirs = 0;
  for (size_t i = 0; i < root->n && dirs < MAX_SUBDIRS; i++) {
    if (!root->items[i].node.is_dir)
      continue;
    dirs++;
    tree_dir(f, t, root->items[i].node.ino, sub);
    junk_lookups(f, t, root->items[i].node.ino);
  }
  /* Inode numbers no listing gave. */
  for (int i = 0; i < 6; i++) {
    uint64_t ino = next_rand(f) << 20 ^ next_rand(f);
    sst_node node;
    if (sst_tree_stat(t, ino, &node) == 0)
      check_node(f, &node);
    sub->n = 0;
    (void)sst_tree_list(t, ino, 0, collect, sub);
    (void)sst_tree_list(t, SST_TREE_ROOT, next_rand(f) % (f->size + 1), collect,
                        sub);
  }
  (void)sst_tree_keys_listed(t);
  free(sub);
  sst_tree_close(t);
}

static void trees(fuzz *f, unsigned flags) {
  listing *alone = malloc(sizeof *alone), *stacked = malloc(sizeof *stacked);
  if (alone == NULL || stacked == NULL)
    fail("out of memory");
  alone->n = stacked->n = 0;
  tree(f, flags, 0, alone);
  tree(f, flags, 1, stacked);
  if (f->sound) {
    int same = alone->n == stacked->n;
    for (size_t i = 0; same && i < alone->n; i++)
      same = strcmp(alone->items[i].name, stacked->items[i].name) == 0 &&
             alone->items[i].node.is_dir == stacked->items[i].node.is_dir;
    if (!same)
      fail("verified table: stacked on itself, its root lists other names");
  }
  free(alone);
  free(stacked);
}

/* ---- the table stacked on itself ---------------------------------------- */

/* A stacked entry: at position offset * 2 + source, with its value inside
 * the file; on a verified table, from the top table (source 1), since the
 * bottom one holds the same keys. (On a damaged one, a seek in one table
 * may miss a key the other shows.) */
static void check_stack_entry(fuzz *f, const sst_entry *e) {
  if (e->key_len == 0 || e->key_len > SST_KEY_MAX)
    fail("a stacked entry's key length is out of range");
  touch(e->key, e->key_len);
  if (e->source > 1 || e->position % 2 != e->source ||
      e->position / 2 >= f->size)
    fail("a stacked entry's source or position is out of range");
  if (f->sound && e->source != 1)
    fail("verified table: stacked on itself, an entry of the bottom table");
  check_value(f, e);
}

static void stack_on_itself(fuzz *f) {
  const sst_reader *two[2] = {f->r, f->r};
  sst_iter *it;
  if (sst_iter_new_stack(two, 2, &it) != 0)
    fail("sst_iter_new_stack failed");
  /* keys[0 .. MAX_KEYS / 2) are the first entries of the table, in order. */
  size_t first = f->nkeys < MAX_KEYS / 2 ? f->nkeys : MAX_KEYS / 2;
  uint64_t n = 0;
  int rc;
  for (rc = sst_iter_seek_first(it);
       rc == 0 && sst_iter_valid(it) && n < MAX_STEPS;
       rc = sst_iter_next(it), n++) {
    const sst_entry *e = sst_iter_entry(it);
    check_stack_entry(f, e);
    if (f->sound && n < first &&
        (e->key_len != f->keys[n].len ||
         memcmp(e->key, f->keys[n].key, e->key_len) != 0 ||
         e->position != f->keys[n].e.position * 2 + 1))
      fail("verified table: stacked on itself, a scan differs");
  }
  if (f->sound && (rc != 0 || (n < MAX_STEPS && n != f->info.key_count)))
    fail("verified table: stacked on itself, a scan sees other keys");
  sst_iter_set_skip_tombstones(it, 1);
  n = 0;
  for (rc = sst_iter_seek_first(it);
       rc == 0 && sst_iter_valid(it) && n < MAX_STEPS;
       rc = sst_iter_next(it), n++) {
    if (sst_iter_entry(it)->flags & SST_FLAG_TOMBSTONE)
      fail("skipping tombstones, a stacked iterator stopped on one");
    check_stack_entry(f, sst_iter_entry(it));
  }
  for (size_t i = 0; i < f->nkeys; i++) {
    const saved_key *k = &f->keys[i];
    sst_entry e;
    rc = sst_stack_find(two, 2, k->key, k->len, &e);
    if (rc == 0)
      check_stack_entry(f, &e);
    if (f->sound && (rc != 0 || e.position != k->e.position * 2 + 1))
      fail("verified table: stacked on itself, a lookup differs");
    size_t plen = k->len / 2 + 1;
    rc = sst_iter_prefix(it, k->key, plen);
    for (int j = 0; j < 4 && rc == 0 && sst_iter_valid(it); j++) {
      const sst_entry *p = sst_iter_entry(it);
      check_stack_entry(f, p);
      if (p->key_len < plen || memcmp(p->key, k->key, plen) != 0)
        fail("a stacked prefix scan gave a key without the prefix");
      rc = sst_iter_next(it);
    }
    rc = sst_iter_range(it, k->key, k->len, NULL, 0);
    if (rc == 0 && sst_iter_valid(it))
      check_stack_entry(f, sst_iter_entry(it));
  }
  for (int i = 0; i < 4; i++) {
    size_t len;
    const uint8_t *key = input_slice(f, 40, &len);
    sst_entry e;
    if (sst_stack_find(two, 2, key, len, &e) == 0)
      check_stack_entry(f, &e);
    rc = sst_iter_seek(it, key, len);
    if (rc == 0 && sst_iter_valid(it))
      check_stack_entry(f, sst_iter_entry(it));
    rc = sst_iter_seek_position(it, next_rand(f) % (2 * f->size + 2));
    if (rc == 0 && sst_iter_valid(it))
      check_stack_entry(f, sst_iter_entry(it));
  }
  sst_iter_free(it);
}

/* ---- repairing checksums ------------------------------------------------ */

/* A mutated table nearly always fails a checksum, so the reader would
 * rarely get past them to the structures they cover. For half the inputs
 * the harness first repairs a copy, following docs/FORMAT.md with a
 * decoder of its own: value checksums in key entries, filter bits for the
 * keys and partition checksums, key block, index, header and footer
 * checksums, and the footer's counts. Then the garbage inside the blocks
 * reaches the decoders, and mutations that happen to keep the layout make
 * tables that verify, whose answers are then checked against each other. */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t checksum(const uint8_t *p, size_t n) {
  return (uint32_t)XXH3_64bits(p, n);
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 127) << shift;
    if ((b & 128) == 0) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

/* `region` [lo, hi) lies inside a file of n bytes. */
static int inside(uint64_t lo, uint64_t len, uint64_t n) {
  return lo <= n && len <= n - lo;
}

typedef struct block_entry {
  const uint8_t *key; /* whole key, in the walker's buffer */
  size_t key_len;
  uint8_t *payload;
  uint64_t payload_len;
} block_entry;

/* Calls fn for each entry of the block [b, b + len) that decodes, until
 * one does not. */
static void walk_block(uint8_t *b, uint64_t len, uint8_t *keybuf,
                       void (*fn)(void *, const block_entry *), void *ctx) {
  if (len < 4)
    return;
  uint64_t count = get32(b + len - 4);
  if (count > (len - 4) / 4)
    return;
  const uint8_t *p = b, *end = b + (len - 4 - 4 * count);
  size_t prev = 0;
  while (p < end) {
    uint64_t shared, unshared, plen;
    if (!get_varint(&p, end, &shared) || !get_varint(&p, end, &unshared) ||
        !get_varint(&p, end, &plen) || shared > prev ||
        unshared > SST_KEY_MAX - shared || unshared > (uint64_t)(end - p) ||
        plen > (uint64_t)(end - p) - unshared)
      return;
    memcpy(keybuf + shared, p, (size_t)unshared);
    p += unshared;
    block_entry e = {keybuf, (size_t)(shared + unshared), b + (p - b), plen};
    p += plen;
    prev = e.key_len;
    fn(ctx, &e);
  }
}

typedef struct repair {
  uint8_t *buf;
  uint64_t n;
  uint32_t version;
  uint64_t keys_off; /* version 2: start of the key region */
  uint64_t filter_off;
  uint32_t probes;
  uint64_t values_off, block_off; /* of the key block being repaired */
  uint8_t *part;                  /* its filter partition, or NULL */
  uint64_t part_len;
  uint64_t entries, tombstones, key_bytes, value_bytes, blocks;
  uint8_t *keybuf;
} repair;

static void repair_entry(void *ctx, const block_entry *e) {
  repair *r = ctx;
  const uint8_t *p = e->payload, *end = e->payload + e->payload_len;
  uint64_t len, rel;
  if (p == end)
    return;
  unsigned flags = *p++;
  uint64_t extra;
  if (!get_varint(&p, end, &len) || !get_varint(&p, end, &rel) ||
      ((flags & 0x0c) && !get_varint(&p, end, &extra)) || end - p < 4)
    return;
  if (r->version >= 2 && (flags & 0x0c)) {
    /* Packed or chunked: its checksums are the block's and the chunk
     * table's, not repaired here. */
  } else if (r->version >= 2 && (flags & 0x10)) { /* shared: absolute */
    if (inside(rel, len, r->keys_off))
      put32(e->payload + (p - e->payload), checksum(r->buf + rel, (size_t)len));
  } else {
    uint64_t room = r->block_off - r->values_off;
    if (rel <= room && len <= room - rel)
      put32(e->payload + (p - e->payload),
            checksum(r->buf + r->values_off + rel, (size_t)len));
  }
  r->entries++;
  r->tombstones += flags & 1;
  r->key_bytes += e->key_len;
  r->value_bytes += len;
  if (r->part != NULL) {
    uint64_t m = (r->part_len - 4) * 8, h = XXH3_64bits(e->key, e->key_len);
    uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1;
    for (uint32_t j = 0; j < r->probes; j++) {
      uint64_t bit = ((uint64_t)h1 + (uint64_t)j * h2) % m;
      r->part[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
  }
}

static void repair_block(void *ctx, const block_entry *ie) {
  repair *r = ctx;
  const uint8_t *p = ie->payload, *end = ie->payload + ie->payload_len;
  uint64_t values_off, values_len, block_rel = 0, block_len, filter_rel,
                                   filter_len;
  r->blocks++;
  if (!get_varint(&p, end, &values_off) || !get_varint(&p, end, &values_len) ||
      (r->version >= 2 && !get_varint(&p, end, &block_rel)) ||
      !get_varint(&p, end, &block_len) || !get_varint(&p, end, &filter_rel) ||
      !get_varint(&p, end, &filter_len) ||
      !inside(values_off, values_len, r->n) ||
      block_rel > UINT64_MAX - r->keys_off)
    return;
  /* Version 1: the block follows its values; 2: in the key region. */
  uint64_t block_off =
      r->version >= 2 ? r->keys_off + block_rel : values_off + values_len;
  uint64_t values_end = values_off + values_len;
  if (!inside(block_off, block_len, r->n) || r->n - block_off - block_len < 4)
    return;
  r->values_off = values_off;
  r->block_off = values_end;
  r->part = NULL;
  if (r->probes > 0 && filter_rel <= UINT64_MAX - r->filter_off &&
      filter_len >= 5 && inside(r->filter_off + filter_rel, filter_len, r->n)) {
    r->part = r->buf + r->filter_off + filter_rel;
    r->part_len = filter_len;
  }
  uint8_t *block = r->buf + block_off;
  uint8_t *keybuf = malloc(SST_KEY_MAX);
  if (keybuf == NULL)
    fail("out of memory");
  walk_block(block, block_len, keybuf, repair_entry, r);
  free(keybuf);
  if (r->part != NULL)
    put32(r->part + r->part_len - 4,
          checksum(r->part, (size_t)(r->part_len - 4)));
  put32(block + block_len, checksum(block, (size_t)block_len));
}

static void repair_table(uint8_t *buf, size_t n) {
  if (n < 16)
    return;
  put32(buf + 12, checksum(buf, 12));
  if (n < 16 + 128)
    return;
  uint8_t *foot = buf + n - 128;
  uint64_t footer_off = n - 128;
  uint64_t index_off = get64(foot), index_len = get64(foot + 8);
  if (index_len >= 4 && inside(index_off, index_len, footer_off) &&
      footer_off - index_off - index_len >= 4) {
    repair r = {.buf = buf,
                .n = n,
                .version = get32(foot + 112),
                .keys_off = get64(foot + 96),
                .filter_off = get64(foot + 16),
                .probes = get32(foot + 88)};
    /* The properties block of version 2 sits before the index. */
    uint64_t props_off = get64(foot + 104);
    if (r.version >= 2 && props_off < index_off && index_off - props_off >= 5)
      put32(buf + index_off - 4,
            checksum(buf + props_off, (size_t)(index_off - props_off - 4)));
    if (r.probes > 30)
      r.probes = 0;
    uint8_t *keybuf = malloc(SST_KEY_MAX);
    if (keybuf == NULL)
      fail("out of memory");
    walk_block(buf + index_off, index_len, keybuf, repair_block, &r);
    free(keybuf);
    put32(buf + index_off + index_len,
          checksum(buf + index_off, (size_t)index_len));
    put64(foot + 32, r.entries);
    put64(foot + 40, r.tombstones);
    put64(foot + 48, r.key_bytes);
    put64(foot + 56, r.value_bytes);
    put64(foot + 64, r.blocks);
  }
  put32(foot + 116, checksum(foot, 116));
}

/* ---- the run ---------------------------------------------------------- */

static void keys_and_ranges(fuzz *f) {
  for (size_t i = 0; i < f->nkeys; i++)
    lookups(f, f->keys[i].key, f->keys[i].len, &f->keys[i]);
  for (size_t i = 0; i + 1 < f->nkeys; i++)
    range_scan(f, f->keys[i].key, f->keys[i].len, f->keys[i + 1].key,
               f->keys[i + 1].len);
  range_scan(f, NULL, 0, NULL, 0);
  if (f->nkeys > 0)
    range_scan(f, NULL, 0, f->keys[f->nkeys / 2].key,
               f->keys[f->nkeys / 2].len);

  /* Keys the table may or may not hold: slices of the input, and each
   * saved key with a byte more or less. */
  static uint8_t big[SST_KEY_MAX + 2];
  for (int i = 0; i < 8; i++) {
    size_t len;
    const uint8_t *k = input_slice(f, 40, &len);
    lookups(f, k, len, NULL);
    size_t len2;
    const uint8_t *k2 = input_slice(f, 40, &len2);
    range_scan(f, k, len, k2, len2);
  }
  for (size_t i = 0; i < f->nkeys && i < 8; i++) {
    size_t len = f->keys[i].len;
    memcpy(big, f->keys[i].key, len);
    big[len] = (uint8_t)next_rand(f);
    lookups(f, big, len + 1, NULL);
    if (len > 1)
      lookups(f, big, len - 1, NULL);
  }
  memset(big, 'k', sizeof big);
  lookups(f, big, SST_KEY_MAX, NULL);
  lookups(f, big, 0, NULL);
}

static void run(fuzz *f) {
  sst_reader_info(f->r, &f->info);
  if (f->info.file_size != f->size)
    fail("sst_reader_info: file size is not the input's");
  f->data = sst_reader_data(f->r);
  touch(f->data, f->size);
  (void)sst_reader_path(f->r);
  if (sst_reader_fd(f->r) < 0)
    fail("sst_reader_fd: no descriptor");
  sst_error err;
  memset(&err, 0, sizeof err);
  int rc = sst_reader_verify(f->r, &err);
  if (rc != 0 &&
      (err.code != rc || strnlen(err.msg, sizeof err.msg) == sizeof err.msg))
    fail("sst_reader_verify: bad error report");
  f->sound = rc == 0;
  if (sst_iter_new(f->r, &f->it) != 0)
    fail("sst_iter_new failed");
  full_scans(f);
  keys_and_ranges(f);
  positions(f);
  sst_iter_free(f->it);
  stack_on_itself(f);
  trees(f, 0);
  trees(f, SST_PATH_FLAT);
  for (size_t i = 0; i < f->nkeys; i++)
    free(f->keys[i].key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz f;
  memset(&f, 0, sizeof f);
  f.in = data;
  f.in_len = size;
  f.size = size;
  f.rng = size;
  for (size_t i = 0; i < size; i++)
    f.rng = (f.rng ^ data[i]) * 1099511628211ull;

  const uint8_t *table = data;
  uint8_t *repaired = NULL;
  if ((f.rng >> 5) & 1) {
    if ((repaired = malloc(size ? size : 1)) == NULL)
      fail("out of memory");
    memcpy(repaired, data, size);
    repair_table(repaired, size);
    table = repaired;
  }
  int fd = memfd_create("fuzz_table", MFD_CLOEXEC);
  if (fd < 0)
    fail("memfd_create failed");
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, table + done, size - done);
    if (n <= 0)
      fail("writing the input to the memfd failed");
    done += (size_t)n;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

  /* Every way of serving values: checked on every read or not at all,
   * with pages kept or given back, blocks read through the mapping or
   * with pread. */
  sst_reader_options opts;
  sst_reader_options_init(&opts);
  opts.verify_values = (f.rng >> 3) & 1;
  opts.release_pages = (f.rng >> 4) & 1;
  opts.pread_blocks = (f.rng >> 6) & 1;
  sst_error err;
  memset(&err, 0, sizeof err);
  int rc = sst_reader_open(path, &opts, &f.r, &err);
  if (rc == 0) {
    if (f.r == NULL)
      fail("sst_reader_open: success without a reader");
    run(&f);
    sst_reader_close(f.r);
  } else if (f.r != NULL || err.code != rc ||
             strnlen(err.msg, sizeof err.msg) == sizeof err.msg ||
             err.msg[0] == '\0') {
    fail("sst_reader_open: bad error report");
  }
  close(fd);
  free(repaired);
  return 0;
}
