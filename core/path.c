/* path.c — keys as paths (docs/PATHS.md): the name codec and the tree view
 * of a table used by the mount.
 *
 * A component is the bytes of a key between two '/' (the whole key in flat
 * mode). Its name is the component itself when that is a clean file name,
 * else "%=" + escaped bytes ("%!" for a file whose component is also a
 * directory's). When that is longer than 255 bytes, the component is cut
 * into pieces of CHUNK raw bytes, each a directory "%+" + escaped piece,
 * until the rest fits; the rest then takes the "%=" or "%!" form.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sstpath.h"

#define CHUNK 84 /* 2 + 3 * 84 = 254: any escaped piece fits a name */

enum piece_kind { PIECE_FINAL, PIECE_CHUNK };

static int byte_needs_escape(uint8_t c) {
  return c == '%' || c == '/' || c < 0x20 || c == 0x7f;
}

static size_t escaped_len(const uint8_t *b, size_t n) {
  size_t len = n;
  for (size_t i = 0; i < n; i++)
    len += byte_needs_escape(b[i]) ? 2 : 0;
  return len;
}

static char *escape_into(char *out, const uint8_t *b, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    if (byte_needs_escape(b[i])) {
      *out++ = '%';
      *out++ = hex[b[i] >> 4];
      *out++ = hex[b[i] & 15];
    } else {
      *out++ = (char)b[i];
    }
  }
  return out;
}

static int has_marker(const uint8_t *c, size_t n) {
  return n >= 2 && c[0] == '%' && (c[1] == '=' || c[1] == '!' || c[1] == '+');
}

/* A component that can be a file name as it stands. */
static int is_clean(const uint8_t *c, size_t n) {
  if (n == 0 || n > SST_NAME_MAX || has_marker(c, n))
    return 0;
  if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
    return 0;
  return memchr(c, '\0', n) == NULL && memchr(c, '/', n) == NULL;
}

/* The name of the piece of component c that starts at `start`; writes it
 * NUL-terminated to name (SST_NAME_MAX + 1 bytes) and the raw bytes it
 * covers to *covered. REQUIRES start <= n. */
static enum piece_kind piece_name(const uint8_t *c, size_t n, size_t start,
                                  int conflict, char *name, size_t *covered) {
  assert(start <= n);
  char *end;
  if (start == 0 && !conflict && is_clean(c, n)) {
    memcpy(name, c, n);
    end = name + n;
    *covered = n;
  } else if (2 + escaped_len(c + start, n - start) <= SST_NAME_MAX) {
    name[0] = '%';
    name[1] = conflict ? '!' : '=';
    end = escape_into(name + 2, c + start, n - start);
    *covered = n - start;
  } else {
    /* The rest escapes to more than 253 bytes, 3 at most per byte. */
    assert(n - start > CHUNK);
    name[0] = '%';
    name[1] = '+';
    end = escape_into(name + 2, c + start, CHUNK);
    *covered = CHUNK;
    *end = '\0';
    return PIECE_CHUNK;
  }
  *end = '\0';
  return PIECE_FINAL;
}

/* Whether the pieces of c have a boundary at start.
 * REQUIRES start > 0. */
static int is_piece_boundary(const uint8_t *c, size_t n, size_t start,
                             int conflict) {
  assert(start > 0);
  if (start % CHUNK != 0 || start >= n)
    return 0;
  char name[SST_NAME_MAX + 1];
  size_t covered;
  return piece_name(c, n, start - CHUNK, conflict, name, &covered) ==
         PIECE_CHUNK;
}

int sst_path_from_key(const uint8_t *key, size_t key_len, unsigned flags,
                      int also_dir, char *out, size_t *out_len) {
  if (key_len == 0 || key_len > SST_KEY_MAX)
    return SST_EKEYSIZE;
  int flat = (flags & SST_PATH_FLAT) != 0;
  char *o = out;
  size_t pos = 0;
  for (;;) {
    const uint8_t *c = key + pos;
    const uint8_t *slash = flat ? NULL : memchr(c, '/', key_len - pos);
    size_t n = slash ? (size_t)(slash - c) : key_len - pos;
    int last = slash == NULL;
    int conflict = last && also_dir && !flat;
    size_t start = 0, covered;
    for (;;) {
      enum piece_kind k = piece_name(c, n, start, conflict, o, &covered);
      o += strlen(o);
      start += covered;
      if (k == PIECE_FINAL)
        break;
      *o++ = '/';
    }
    if (last)
      break;
    *o++ = '/';
    pos += n + 1;
  }
  *o = '\0';
  *out_len = (size_t)(o - out);
  return 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes an escaped body if it is exactly what escape_into produces for
 * some bytes; returns the decoded length, or -1. */
static long unescape_canonical(const char *body, size_t n, uint8_t *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = (uint8_t)body[i];
    if (b == '%') {
      if (i + 2 >= n)
        return -1;
      int hi = hex_value(body[i + 1]), lo = hex_value(body[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      b = (uint8_t)(hi << 4 | lo);
      if (!byte_needs_escape(b))
        return -1;
      i += 2;
    } else if (byte_needs_escape(b)) {
      return -1;
    }
    out[o++] = b;
  }
  return (long)o;
}

enum name_kind { NAME_LITERAL, NAME_FINAL, NAME_CHUNK };

/* Reads a name: an escape ("%=", "%!", "%+" and a canonical body) gives
 * its bytes, anything else is literal. out holds SST_NAME_MAX bytes. */
static enum name_kind decode_name(const char *name, size_t n, uint8_t *out,
                                  size_t *out_len, int *conflict) {
  *conflict = 0;
  if (n >= 2 && name[0] == '%' &&
      (name[1] == '=' || name[1] == '!' || name[1] == '+')) {
    long len = unescape_canonical(name + 2, n - 2, out);
    if (len >= 0 && !(name[1] == '+' && len != CHUNK)) {
      *out_len = (size_t)len;
      *conflict = name[1] == '!';
      return name[1] == '+' ? NAME_CHUNK : NAME_FINAL;
    }
  }
  memcpy(out, name, n);
  *out_len = n;
  return NAME_LITERAL;
}

int sst_path_to_key(const char *path, unsigned flags, uint8_t *key,
                    size_t *key_len) {
  int flat = (flags & SST_PATH_FLAT) != 0;
  size_t k = 0;
  const char *p = path;
  int in_component = 0; /* the previous name was a "%+" piece */
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 0 || n > SST_NAME_MAX || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.'))
      return SST_EINVAL;
    uint8_t piece[SST_NAME_MAX];
    size_t len;
    int conflict;
    enum name_kind kind = decode_name(p, n, piece, &len, &conflict);
    if (kind == NAME_CHUNK && slash == NULL) { /* a file is never a piece */
      memcpy(piece, p, n);
      len = n;
      kind = NAME_LITERAL;
    }
    if (k + len > SST_KEY_MAX)
      return SST_EKEYSIZE;
    memcpy(key + k, piece, len);
    k += len;
    in_component = kind == NAME_CHUNK;
    if (slash == NULL)
      break;
    if (!in_component) {
      if (flat)
        return SST_EINVAL;
      if (k + 1 > SST_KEY_MAX)
        return SST_EKEYSIZE;
      key[k++] = '/';
    }
    p = slash + 1;
  }
  if (k == 0)
    return SST_EKEYSIZE;
  *key_len = k;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The tree view.                                                      */

#define OP_POOL_MAX 16 /* sets of scratch space kept for reuse */

struct sst_tree {
  const sst_reader **readers; /* the stack, readers[n - 1] on top */
  size_t n;
  int flat;
  uint64_t keys_listed; /* keys read by listings, for sst_tree_keys_listed */
  /* Scratch space of finished operations, the last one returned on top:
   * there are as many sets as calls ever ran at once, not one per thread,
   * and the next call gets the set whose pages were used last. */
  pthread_mutex_t pool_lock;
  struct op *pool[OP_POOL_MAX];
  size_t npool;
  sst_node root; /* with the root directory's entry when there is one */
  /* Hard-link groups returned so far: pairs of group key + 1 (0: an empty
   * slot) and the position of one name, open addressing, at most half
   * full. */
  pthread_mutex_t link_lock;
  uint64_t *links;
  size_t link_cap, link_n; /* slots, slots used */
};

/* Inode numbers: a file is its entry's position times two; a directory is
 * odd, with the length of its key prefix in bits 1..17 and the position of
 * the first key under it above. The root is 1 (prefix "", position 0). */
#define PREFIX_BITS 17
#define POS_SHIFT (1 + PREFIX_BITS)
/* Positions below 2^44, so that every inode number stays below 2^62: the
 * staging mount numbers base entries 2^62 + inode, hard links above. */
#define MAX_POS (1ull << (62 - POS_SHIFT))

static uint64_t file_ino(uint64_t pos) { return pos << 1; }

static uint64_t dir_ino(uint64_t pos, size_t prefix_len) {
  return 1 | ((uint64_t)prefix_len << 1) | (pos << POS_SHIFT);
}

/* A hard-link group is even with the top bit set (file inodes stay below
 * 2^47), the group's key in between: its link_id times the number of
 * tables plus its table's index. A link_id too large for that (only a
 * crafted table has one) leaves each name its own inode. */
#define LINK_BIT (1ull << 63)

static int link_key(const sst_tree *t, const sst_entry *e, uint64_t *key) {
  uint64_t id = e->meta.link_id;
  if (!(e->flags & SST_FLAG_META) || e->meta.type != SST_TYPE_FILE || id == 0 ||
      id >= (LINK_BIT >> 2) / t->n)
    return 0;
  *key = id * t->n + e->source;
  return 1;
}

static size_t link_slot(uint64_t key, size_t cap) {
  return (size_t)(((key + 1) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* Records pos as a name of link group key, unless the group has one. */
static int link_remember(sst_tree *t, uint64_t key, uint64_t pos) {
  int rc = 0;
  pthread_mutex_lock(&t->link_lock);
  if (2 * (t->link_n + 1) > t->link_cap) {
    size_t cap = t->link_cap ? 2 * t->link_cap : 64;
    uint64_t *links = calloc(cap, 2 * sizeof *links);
    if (links == NULL) {
      rc = ENOMEM;
      goto done;
    }
    for (size_t i = 0; i < t->link_cap; i++) {
      if (t->links[2 * i] == 0)
        continue;
      size_t j = link_slot(t->links[2 * i] - 1, cap);
      while (links[2 * j] != 0)
        j = (j + 1) & (cap - 1);
      links[2 * j] = t->links[2 * i];
      links[2 * j + 1] = t->links[2 * i + 1];
    }
    free(t->links);
    t->links = links;
    t->link_cap = cap;
  }
  size_t j = link_slot(key, t->link_cap);
  while (t->links[2 * j] != 0 && t->links[2 * j] != key + 1)
    j = (j + 1) & (t->link_cap - 1);
  if (t->links[2 * j] == 0) {
    t->links[2 * j] = key + 1;
    t->links[2 * j + 1] = pos;
    t->link_n++;
  }
done:
  pthread_mutex_unlock(&t->link_lock);
  return rc;
}

/* The position of a name of link group key: 0 or SST_ENOTFOUND. */
static int link_find(sst_tree *t, uint64_t key, uint64_t *pos) {
  int rc = SST_ENOTFOUND;
  pthread_mutex_lock(&t->link_lock);
  if (t->link_cap > 0) {
    size_t j = link_slot(key, t->link_cap);
    for (; t->links[2 * j] != 0; j = (j + 1) & (t->link_cap - 1))
      if (t->links[2 * j] == key + 1) {
        *pos = t->links[2 * j + 1];
        rc = 0;
        break;
      }
  }
  pthread_mutex_unlock(&t->link_lock);
  return rc;
}

/* The position of the entry behind a file or link inode. */
static int file_pos(sst_tree *t, uint64_t ino, uint64_t *pos) {
  if (ino & LINK_BIT)
    return link_find(t, (ino & ~LINK_BIT) >> 1, pos);
  *pos = ino >> 1;
  return 0;
}

/* Whether e (whose key is key[0..len)) is a directory's entry: a META
 * entry of type DIR whose key ends in '/'. In flat mode there are none. */
static int is_dir_entry(const sst_tree *t, const sst_entry *e,
                        const uint8_t *key, size_t len) {
  return !t->flat && (e->flags & SST_FLAG_META) &&
         e->meta.type == SST_TYPE_DIR && len > 0 && key[len - 1] == '/';
}

/* Whether e is the entry of the directory whose key prefix has length
 * plen (the prefix "/" is the directory "%=", which cannot have one: "/"
 * is the root's). */
static int is_entry_of(const sst_tree *t, const sst_entry *e, size_t plen) {
  return plen > 1 && e->key_len == plen &&
         is_dir_entry(t, e, e->key, e->key_len);
}

/* Whether e is the root directory's entry, "/". */
static int is_root_entry(const sst_tree *t, const sst_entry *e) {
  return e->key_len == 1 && is_dir_entry(t, e, e->key, e->key_len);
}

static void dir_entry_into(const sst_entry *e, sst_node *node) {
  node->entry = *e;
  node->entry.key = NULL;
}

/* Finds the root directory's entry, when a table has metadata. */
static int find_root(sst_tree *t) {
  t->root.ino = SST_TREE_ROOT;
  t->root.is_dir = 1;
  t->root.type = SST_TYPE_DIR;
  int meta = 0;
  for (size_t i = 0; i < t->n; i++) {
    sst_info info;
    sst_reader_info(t->readers[i], &info);
    meta |= (info.features & SST_FEATURE_META) != 0;
  }
  if (!meta || t->flat)
    return 0;
  sst_entry e;
  int rc = sst_stack_find(t->readers, t->n, "/", 1, &e);
  if (rc == SST_ENOTFOUND)
    return 0;
  if (rc == 0 && !(e.flags & SST_FLAG_TOMBSTONE) &&
      is_dir_entry(t, &e, (const uint8_t *)"/", 1))
    dir_entry_into(&e, &t->root);
  return rc;
}

int sst_tree_open(const sst_reader *r, unsigned flags, sst_tree **out) {
  return sst_tree_open_stack(&r, 1, flags, out);
}

int sst_tree_open_stack(const sst_reader *const *readers, size_t n,
                        unsigned flags, sst_tree **out) {
  if (n == 0)
    return SST_EINVAL;
  for (size_t i = 0; i < n; i++) {
    sst_info info;
    sst_reader_info(readers[i], &info);
    if (info.position_end >= MAX_POS / n) /* in a stack: pos*n+i */
      return EFBIG;
  }
  sst_tree *t = calloc(1, sizeof *t);
  if (t == NULL || (t->readers = malloc(n * sizeof *t->readers)) == NULL) {
    free(t);
    return ENOMEM;
  }
  memcpy(t->readers, readers, n * sizeof *readers);
  t->n = n;
  t->flat = (flags & SST_PATH_FLAT) != 0;
  pthread_mutex_init(&t->pool_lock, NULL);
  pthread_mutex_init(&t->link_lock, NULL);
  int rc = find_root(t);
  if (rc) {
    sst_tree_close(t);
    return rc;
  }
  *out = t;
  return 0;
}

/* Scratch space for one operation: iterators and key buffers are large
 * (64 KiB keys), so they live on the heap, one set per call. */
typedef struct op {
  sst_tree *t;
  sst_iter *it, *probe;
  uint8_t *prefix;           /* the directory's key prefix */
  size_t prefix_len, cstart; /* cstart: where its unfinished component starts */
  uint8_t *key;              /* a copy of the key being looked at */
  uint8_t *scratch;          /* for building probe keys */
  uint8_t *probe_key;        /* has_dir's own */
} op;

static void op_free(op *o) {
  sst_iter_free(o->it);
  sst_iter_free(o->probe);
  free(o->prefix);
  free(o->key);
  free(o->scratch);
  free(o->probe_key);
}

static int op_init(op *o, sst_tree *t) {
  memset(o, 0, sizeof *o);
  o->t = t;
  if (sst_iter_new_stack(t->readers, t->n, &o->it) ||
      sst_iter_new_stack(t->readers, t->n, &o->probe) ||
      (o->prefix = malloc(SST_KEY_MAX + 1)) == NULL ||
      (o->key = malloc(SST_KEY_MAX + 1)) == NULL ||
      (o->scratch = malloc(SST_KEY_MAX + 2)) == NULL ||
      (o->probe_key = malloc(SST_KEY_MAX + 2)) == NULL) {
    op_free(o);
    return ENOMEM;
  }
  /* Deleted keys are not in the tree. */
  sst_iter_set_skip_tombstones(o->it, 1);
  sst_iter_set_skip_tombstones(o->probe, 1);
  return 0;
}

/* Takes a set of scratch space from the tree's pool, or makes one. */
static op *op_get(sst_tree *t) {
  op *o = NULL;
  pthread_mutex_lock(&t->pool_lock);
  if (t->npool > 0)
    o = t->pool[--t->npool];
  pthread_mutex_unlock(&t->pool_lock);
  if (o != NULL)
    return o;
  if ((o = malloc(sizeof *o)) == NULL || op_init(o, t) != 0) {
    free(o);
    return NULL;
  }
  return o;
}

/* Gives it back for the next call, or frees it when the pool is full. */
static void op_put(op *o) {
  sst_tree *t = o->t;
  pthread_mutex_lock(&t->pool_lock);
  if (t->npool < OP_POOL_MAX) {
    t->pool[t->npool++] = o;
    o = NULL;
  }
  pthread_mutex_unlock(&t->pool_lock);
  if (o != NULL) {
    op_free(o);
    free(o);
  }
}

void sst_tree_close(sst_tree *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->npool; i++) {
    op_free(t->pool[i]);
    free(t->pool[i]);
  }
  pthread_mutex_destroy(&t->pool_lock);
  pthread_mutex_destroy(&t->link_lock);
  free(t->links);
  free(t->readers);
  free(t);
}

static int iter_error(const sst_iter *it) {
  int rc = sst_iter_status(it);
  return rc ? rc : SST_ENOTFOUND;
}

/* Loads the prefix of directory inode ino into o. */
static int load_dir(op *o, uint64_t ino) {
  o->prefix_len = 0;
  if (ino == SST_TREE_ROOT) {
    o->cstart = 0;
    return 0;
  }
  if ((ino & 1) == 0)
    return ENOTDIR;
  uint64_t pos = ino >> POS_SHIFT;
  size_t plen = (size_t)((ino >> 1) & ((1u << PREFIX_BITS) - 1));
  if (sst_iter_seek_position(o->it, pos) != 0 || !sst_iter_valid(o->it))
    return iter_error(o->it);
  const sst_entry *e = sst_iter_entry(o->it);
  if (plen == 0 || plen > e->key_len)
    return SST_ENOTFOUND;
  memcpy(o->prefix, e->key, plen);
  o->prefix_len = plen;
  o->cstart = 0;
  if (!o->t->flat)
    for (size_t i = plen; i > 0; i--)
      if (o->prefix[i - 1] == '/') {
        o->cstart = i;
        break;
      }
  return 0;
}

/* Whether some key starts with key[0..len) + "/". */
static int has_dir(op *o, const uint8_t *key, size_t len, int *rc) {
  if (len + 1 > SST_KEY_MAX)
    return 0;
  memcpy(o->probe_key, key, len);
  o->probe_key[len] = '/';
  *rc = sst_iter_prefix(o->probe, o->probe_key, len + 1);
  return *rc == 0 && sst_iter_valid(o->probe);
}

/* What a key becomes in the directory held by o. */
typedef struct child {
  int in_dir;     /* the key lies in this directory */
  int is_dir;     /* it shows as a directory (a component or a piece) */
  int is_piece;   /* the directory is a "%+" piece */
  size_t dir_len; /* key prefix of that directory */
  char name[SST_NAME_MAX + 1];
} child;

/* conflict: for a key that ends in this directory, whether it is also a
 * directory prefix (-1: unknown, find out). */
static int analyze(op *o, const uint8_t *key, size_t key_len, int conflict,
                   child *ch) {
  memset(ch, 0, sizeof *ch);
  size_t plen = o->prefix_len;
  const uint8_t *rest = key + plen;
  size_t rest_len = key_len - plen;
  const uint8_t *slash = o->t->flat ? NULL : memchr(rest, '/', rest_len);
  size_t i = slash ? (size_t)(slash - rest) : rest_len;
  const uint8_t *c = key + o->cstart;
  size_t n = plen - o->cstart + i, start = plen - o->cstart;
  int component_is_dir = slash != NULL;
  if (component_is_dir) {
    conflict = 0;
  } else if (o->t->flat) {
    conflict = 0;
  } else if (conflict < 0) {
    int rc = 0;
    conflict = has_dir(o, key, key_len, &rc);
    if (rc)
      return rc;
  }
  if (start > 0 && !is_piece_boundary(c, n, start, conflict))
    return 0;
  size_t covered;
  enum piece_kind k = piece_name(c, n, start, conflict, ch->name, &covered);
  ch->in_dir = 1;
  if (k == PIECE_CHUNK) {
    ch->is_dir = ch->is_piece = 1;
    ch->dir_len = plen + covered;
  } else if (component_is_dir) {
    ch->is_dir = 1;
    ch->dir_len = plen + i + 1;
  }
  return 0;
}

/* A directory's node; its entry when e, the first key under its prefix
 * of length len, is that entry. */
static void dir_node_at(const sst_tree *t, const sst_entry *e, size_t len,
                        sst_node *node) {
  memset(node, 0, sizeof *node);
  node->is_dir = 1;
  node->type = SST_TYPE_DIR;
  node->ino = dir_ino(e->position, len);
  if (is_entry_of(t, e, len))
    dir_entry_into(e, node);
}

/* The node of the directory whose key prefix is key[0..len): its inode
 * holds the position of the first key under it (its entry, if it has
 * one). */
static int dir_node(op *o, const uint8_t *key, size_t len, sst_node *node) {
  memcpy(o->scratch, key, len);
  int rc = sst_iter_prefix(o->probe, o->scratch, len);
  if (rc)
    return rc;
  if (!sst_iter_valid(o->probe))
    return iter_error(o->probe);
  dir_node_at(o->t, sst_iter_entry(o->probe), len, node);
  return 0;
}

/* The node of a file or symlink entry; every name of a hard-link group
 * gets the group's inode. */
static int file_node(sst_tree *t, const sst_entry *e, sst_node *node) {
  memset(node, 0, sizeof *node);
  node->entry = *e;
  node->entry.key = NULL;
  node->type = (e->flags & SST_FLAG_META) && e->meta.type == SST_TYPE_SYMLINK
                   ? SST_TYPE_SYMLINK
                   : SST_TYPE_FILE;
  node->ino = file_ino(e->position);
  uint64_t key;
  if (link_key(t, e, &key)) {
    int rc = link_remember(t, key, e->position);
    if (rc)
      return rc;
    node->ino = LINK_BIT | key << 1;
  }
  return 0;
}

/* A piece directory is listed at the first key that leads into it: is
 * there a key before `key` under the same piece name? */
static int piece_seen_before(op *o, const child *ch, const uint8_t *key,
                             size_t key_len, int *seen) {
  *seen = 0;
  sst_iter *it;
  int rc = sst_iter_new_stack(o->t->readers, o->t->n, &it);
  if (rc)
    return rc;
  sst_iter_set_skip_tombstones(it, 1);
  uint8_t *k = malloc(SST_KEY_MAX);
  if (k == NULL) {
    sst_iter_free(it);
    return ENOMEM;
  }
  for (rc = sst_iter_prefix(it, key, ch->dir_len);
       rc == 0 && sst_iter_valid(it); rc = sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    if (sst_key_cmp(e->key, e->key_len, key, key_len) >= 0)
      break;
    size_t kl = e->key_len;
    memcpy(k, e->key, kl);
    child other;
    if ((rc = analyze(o, k, kl, -1, &other)) != 0)
      break;
    if (other.in_dir && other.is_piece && strcmp(other.name, ch->name) == 0) {
      *seen = 1;
      break;
    }
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  free(k);
  sst_iter_free(it);
  return rc;
}

int sst_tree_stat(sst_tree *t, uint64_t ino, sst_node *out) {
  memset(out, 0, sizeof *out);
  if (ino == SST_TREE_ROOT) {
    *out = t->root;
    return 0;
  }
  uint64_t pos = 0;
  int rc = (ino & 1) ? 0 : file_pos(t, ino, &pos);
  if (rc)
    return rc;
  op *o = op_get(t);
  if (o == NULL)
    return ENOMEM;
  if (ino & 1) {
    /* load_dir leaves o->it at the first key under the directory. */
    if ((rc = load_dir(o, ino)) == 0) {
      dir_node_at(t, sst_iter_entry(o->it), o->prefix_len, out);
      out->ino = ino;
    }
  } else if ((rc = sst_iter_seek_position(o->it, pos)) == 0) {
    if (!sst_iter_valid(o->it))
      rc = iter_error(o->it);
    else
      rc = file_node(t, sst_iter_entry(o->it), out);
  }
  op_put(o);
  return rc;
}

int sst_tree_describe(sst_tree *t, uint64_t ino, char *buf, size_t cap) {
  if (cap == 0)
    return SST_EINVAL;
  buf[0] = '\0';
  if (ino & 1)
    return SST_EINVAL; /* a directory */
  uint64_t pos;
  int rc = file_pos(t, ino, &pos);
  if (rc)
    return rc;
  op *o = op_get(t);
  if (o == NULL)
    return ENOMEM;
  rc = sst_iter_seek_position(o->it, pos);
  if (rc == 0 && !sst_iter_valid(o->it))
    rc = iter_error(o->it);
  if (rc == 0) {
    const sst_entry *e = sst_iter_entry(o->it);
    char key[200];
    sst_key_render(e->key, e->key_len, key, sizeof key);
    snprintf(buf, cap, "%s: key '%s'", sst_reader_path(t->readers[e->source]),
             key);
  }
  op_put(o);
  return rc;
}

/* Seeks o->it to the first key under o->key[0..klen) + "/"; *d becomes
 * that entry when there is one, and stays as it was otherwise. */
static int seek_children(op *o, size_t klen, const sst_entry **d) {
  o->key[klen] = '/';
  int rc = sst_iter_prefix(o->it, o->key, klen + 1);
  if (rc == 0 && sst_iter_valid(o->it))
    *d = sst_iter_entry(o->it);
  return rc;
}

int sst_tree_lookup(sst_tree *t, uint64_t dir, const char *name,
                    sst_node *out) {
  size_t n = strlen(name);
  if (n > SST_NAME_MAX)
    return ENAMETOOLONG;
  if (n == 0 || strchr(name, '/'))
    return SST_ENOTFOUND;
  op *o = op_get(t);
  if (o == NULL)
    return ENOMEM;
  int rc = 0;
  if ((rc = load_dir(o, dir)) != 0)
    goto done;
  uint8_t piece[SST_NAME_MAX];
  size_t len;
  int conflict;
  enum name_kind kind = decode_name(name, n, piece, &len, &conflict);
  if (o->prefix_len + len + 1 > SST_KEY_MAX) {
    rc = SST_ENOTFOUND;
    goto done;
  }
  /* The key (or key prefix) the name stands for. */
  memcpy(o->key, o->prefix, o->prefix_len);
  memcpy(o->key + o->prefix_len, piece, len);
  size_t klen = o->prefix_len + len;
  child ch;
  rc = SST_ENOTFOUND;
  if (kind == NAME_CHUNK) {
    /* Any key under the piece that names it this way. */
    int irc;
    for (irc = sst_iter_prefix(o->it, o->key, klen);
         irc == 0 && sst_iter_valid(o->it); irc = sst_iter_next(o->it)) {
      const sst_entry *e = sst_iter_entry(o->it);
      memcpy(o->scratch, e->key, e->key_len);
      if ((irc = analyze(o, o->scratch, e->key_len, -1, &ch)) != 0)
        break;
      if (ch.in_dir && ch.is_piece && strcmp(ch.name, name) == 0) {
        memcpy(o->key, o->scratch, ch.dir_len);
        rc = dir_node(o, o->key, ch.dir_len, out);
        goto done;
      }
    }
    if (irc || (irc = sst_iter_status(o->it)))
      rc = irc;
    goto done;
  }
  sst_entry file = {0};
  int have_file = 0, irc;
  const sst_entry *d = NULL; /* the first key under K/, if any */
  if (t->n > 1) {
    /* A stack: the file question goes to the tables newest first, each
     * table's filter skipping it when it cannot hold K; the directory
     * question needs an ordered seek in every table. */
    irc = sst_stack_find(t->readers, t->n, o->key, klen, &file);
    if (irc == 0 && !(file.flags & SST_FLAG_TOMBSTONE) &&
        !is_dir_entry(t, &file, o->key, klen))
      have_file = 1;
    else if (irc != 0 && irc != SST_ENOTFOUND) {
      rc = irc;
      goto done;
    }
    if (!t->flat && (irc = seek_children(o, klen, &d)) != 0) {
      rc = irc;
      goto done;
    }
  } else {
    /* One table: one seek answers both questions (the keys of K/ follow
     * K, unless keys like "K-x" sort between them; then a second seek
     * finds out). */
    if ((irc = sst_iter_seek(o->it, o->key, klen)) != 0) {
      rc = irc;
      goto done;
    }
    if (sst_iter_valid(o->it) && sst_iter_entry(o->it)->key_len == klen &&
        memcmp(sst_iter_entry(o->it)->key, o->key, klen) == 0) {
      file = *sst_iter_entry(o->it);
      have_file = !is_dir_entry(t, &file, o->key, klen);
      if ((irc = sst_iter_next(o->it)) != 0) {
        rc = irc;
        goto done;
      }
    }
    if (!t->flat && sst_iter_valid(o->it)) {
      const sst_entry *nx = sst_iter_entry(o->it);
      if (nx->key_len > klen && memcmp(nx->key, o->key, klen) == 0) {
        if (nx->key[klen] == '/') {
          d = nx;
        } else if (nx->key[klen] < '/' &&
                   (irc = seek_children(o, klen, &d)) != 0) {
          rc = irc;
          goto done;
        }
      }
    }
  }
  if (d != NULL && klen == 0 && is_root_entry(t, d)) {
    /* The root's entry "/" does not make a directory "%=": a key after
     * it under "/" does. */
    if ((irc = sst_iter_next(o->it)) != 0) {
      rc = irc;
      goto done;
    }
    d = sst_iter_valid(o->it) && sst_iter_entry(o->it)->key[0] == '/'
            ? sst_iter_entry(o->it)
            : NULL;
  }
  if (sst_iter_status(o->it)) {
    rc = sst_iter_status(o->it);
    goto done;
  }
  if (have_file) {
    file.key = NULL;
    if ((rc = analyze(o, o->key, klen, d != NULL, &ch)) != 0)
      goto done;
    if (ch.in_dir && !ch.is_dir && strcmp(ch.name, name) == 0) {
      rc = file_node(t, &file, out);
      goto done;
    }
  }
  rc = SST_ENOTFOUND;
  if (d != NULL) {
    memcpy(o->scratch, d->key, d->key_len);
    if ((rc = analyze(o, o->scratch, d->key_len, 0, &ch)) != 0)
      goto done;
    rc = SST_ENOTFOUND;
    if (ch.in_dir && ch.is_dir && !ch.is_piece && strcmp(ch.name, name) == 0) {
      dir_node_at(t, d, klen + 1, out);
      rc = 0;
    }
  }
done:
  op_put(o);
  return rc;
}

#define COOKIE_END UINT64_MAX

static uint64_t cookie_here(const sst_iter *it) {
  return sst_iter_valid(it) ? sst_iter_entry(it)->position : COOKIE_END;
}

int sst_tree_list(sst_tree *t, uint64_t dir, uint64_t cookie, sst_tree_fn fn,
                  void *ctx) {
  if (cookie == COOKIE_END)
    return 0;
  op *o = op_get(t);
  if (o == NULL)
    return ENOMEM;
  int rc = 0;
  if ((rc = load_dir(o, dir)) != 0)
    goto done;
  if (cookie == 0) {
    rc = sst_iter_prefix(o->it, o->prefix, o->prefix_len);
  } else {
    rc = sst_iter_seek_position(o->it, cookie); /* unbounded */
  }
  if (rc)
    goto done;
  uint64_t keys_read = 0;
  while (sst_iter_valid(o->it)) {
    const sst_entry *e = sst_iter_entry(o->it);
    if (e->key_len < o->prefix_len ||
        memcmp(e->key, o->prefix, o->prefix_len) != 0)
      break;
    keys_read++;
    if (is_entry_of(t, e, o->prefix_len) ||
        (o->prefix_len == 0 && is_root_entry(t, e))) {
      /* The directory's own entry (or the root's) is not a child. */
      if ((rc = sst_iter_next(o->it)) != 0)
        goto done;
      continue;
    }
    size_t klen = e->key_len;
    sst_entry here = *e;
    memcpy(o->key, e->key, klen);
    /* Look one key ahead: it usually settles whether this key is also a
     * directory, without a separate seek. */
    if ((rc = sst_iter_next(o->it)) != 0)
      goto done;
    int conflict = 0;
    if (sst_iter_valid(o->it)) {
      const sst_entry *nx = sst_iter_entry(o->it);
      if (nx->key_len > klen && memcmp(nx->key, o->key, klen) == 0)
        conflict = nx->key[klen] == '/' ? 1 : nx->key[klen] < '/' ? -1 : 0;
    }
    child ch;
    if ((rc = analyze(o, o->key, klen, conflict, &ch)) != 0)
      goto done;
    if (!ch.in_dir)
      continue;
    sst_node node;
    if (ch.is_dir) {
      int seen = 0;
      if (ch.is_piece && (rc = piece_seen_before(o, &ch, o->key, klen, &seen)))
        goto done;
      if ((rc = dir_node(o, o->key, ch.dir_len, &node)) != 0)
        goto done;
      /* Everything under a component directory is skipped with one seek. */
      size_t sub = ch.is_piece ? 0 : ch.dir_len;
      if (ch.is_piece) {
        const uint8_t *slash =
            memchr(o->key + ch.dir_len, '/', klen - ch.dir_len);
        if (slash && !t->flat)
          sub = (size_t)(slash - o->key) + 1;
      }
      if (sub) {
        memcpy(o->scratch, o->key, sub);
        o->scratch[sub - 1] = '/' + 1;
        if ((rc = sst_iter_range(o->it, o->scratch, sub, NULL, 0)) != 0)
          goto done;
      }
      if (seen)
        continue;
    } else {
      if ((rc = file_node(t, &here, &node)) != 0)
        goto done;
    }
    if (fn(ctx, ch.name, &node, cookie_here(o->it)))
      break;
  }
  rc = sst_iter_status(o->it);
  __atomic_fetch_add(&t->keys_listed, keys_read, __ATOMIC_RELAXED);
done:
  op_put(o);
  return rc;
}

uint64_t sst_tree_keys_listed(const sst_tree *t) {
  return __atomic_load_n(&t->keys_listed, __ATOMIC_RELAXED);
}
