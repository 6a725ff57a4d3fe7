/* sstpath.h — keys as paths: the one mapping between table keys and file
 * names, shared by the mount (fs/), `sst pack` and `sst unpack`.
 * docs/PATHS.md is the spec; this is its code.
 *
 * In short: '/' separates components; a component that is a valid,
 * unreserved file name appears as itself. Anything else is escaped into a
 * name that starts with a marker: "%=" (an escaped component), "%!" (a file
 * whose name is also a directory's), "%+" (a directory holding one piece
 * of a component too long for one name). Names starting with a marker are
 * reserved: a component that starts with one is escaped itself.
 */
#ifndef SSTPATH_H
#define SSTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "sstable.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SST_NAME_MAX 255 /* longest file name */

/* Flags. */
#define SST_PATH_FLAT 1u /* every key at the top level, '/' escaped */

/* Longest relative path sst_path_from_key can produce for any key:
 * 3 bytes per key byte plus a marker and a separator every 84 bytes. */
#define SST_PATH_MAX (SST_KEY_MAX * 4 + 16)

/* The relative path ("a/b/c") at which the key appears. also_dir: the key
 * is also a directory prefix (some key starts with key + "/"), so its file
 * takes the "%!" form. out must hold SST_PATH_MAX + 1 bytes; the path is
 * NUL-terminated. Returns 0 or SST_EKEYSIZE. */
int sst_path_from_key(const uint8_t *key, size_t key_len, unsigned flags,
                      int also_dir, char *out, size_t *out_len);

/* The key of a relative path of regular names separated by '/' (no empty,
 * "." or ".." components). Names that are canonical escapes are decoded;
 * any other name is taken literally. key must hold SST_KEY_MAX bytes.
 * Returns 0, SST_EINVAL for a malformed path, or SST_EKEYSIZE. */
int sst_path_to_key(const char *path, unsigned flags, uint8_t *key,
                    size_t *key_len);

/* ------------------------------------------------------------------ */
/* A table seen as a directory tree.                                   */

typedef struct sst_tree sst_tree;

#define SST_TREE_ROOT 1u /* inode number of the root directory */

typedef struct sst_node {
  uint64_t ino;
  int is_dir;
  sst_entry entry; /* for a file; entry.key is not set */
} sst_node;

/* Opens a tree view of r (which must outlive it). Inode numbers come from
 * positions in the table, so nothing is held per key or per directory.
 * Errors: ENOMEM, EFBIG (table larger than 64 TiB). Thread safe. */
int sst_tree_open(const sst_reader *r, unsigned flags, sst_tree **out);

/* A tree view of n tables stacked, readers[n - 1] on top: a key's entry in
 * the highest table that holds it wins, a tombstone there hides it, and
 * listings merge all tables in one pass (sst_iter_new_merged). Nodes'
 * entries carry their table's index in entry.source. The array is copied;
 * the readers must outlive the tree. */
int sst_tree_open_stack(const sst_reader *const *readers, size_t n,
                        unsigned flags, sst_tree **out);
void sst_tree_close(sst_tree *t);

/* The node called name in directory dir. Errors: SST_ENOTFOUND, ENOTDIR,
 * ENAMETOOLONG, SST_ECORRUPT/SST_ECHECKSUM for a damaged block. */
int sst_tree_lookup(sst_tree *t, uint64_t dir, const char *name,
                    sst_node *out);

/* The node of an inode number from lookup or list. SST_ENOTFOUND if it
 * names nothing. */
int sst_tree_stat(sst_tree *t, uint64_t ino, sst_node *out);

/* Names the file at ino for a message: "TABLE: key 'KEY'", with the table
 * that holds its entry and the key's bytes shown as sst_key_render does,
 * in buf (cap bytes, always NUL-terminated, cut if need be). 0,
 * SST_EINVAL for a directory, or an error of the lookup. Thread safe. */
int sst_tree_describe(sst_tree *t, uint64_t ino, char *buf, size_t cap);

/* Lists directory dir from cookie (0: the beginning), calling fn for each
 * child with its name and the cookie that resumes after it, until fn
 * returns non-zero or the directory ends. Cookies are positions in the
 * table, so a listing resumes exactly where it stopped. Returns 0 or an
 * error. */
typedef int (*sst_tree_fn)(void *ctx, const char *name, const sst_node *node,
                           uint64_t next_cookie);
int sst_tree_list(sst_tree *t, uint64_t dir, uint64_t cookie, sst_tree_fn fn,
                  void *ctx);

/* Keys read by sst_tree_list so far (a listing reads one key per child
 * and skips each subdirectory with a seek): for tests and statistics. */
uint64_t sst_tree_keys_listed(const sst_tree *t);

#ifdef __cplusplus
}
#endif
#endif
