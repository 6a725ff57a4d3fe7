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
 *
 * Below the codec: the tree view of a table (path.c), and the scan that
 * turns a directory tree into table entries (treewrite.c).
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

/* A file, directory or symlink of the tree. Tables with file metadata
 * (format version 2, docs/FORMAT.md) give nodes their stored type and
 * metadata: a META entry of type DIR whose key is a directory's key
 * prefix ("a/b/"; the root's is "/") is that directory's entry (it makes
 * the directory exist even when nothing else lies under it, and is not
 * listed as a child); a META entry of type SYMLINK is a symlink whose
 * value is its target. In flat mode keys are files only: directory
 * entries then show as files. Entries without metadata are as in
 * version 1: files, and directories implied by key prefixes. */
typedef struct sst_node {
  uint64_t ino;
  int is_dir;      /* type == SST_TYPE_DIR */
  unsigned type;   /* SST_TYPE_FILE, SST_TYPE_DIR or SST_TYPE_SYMLINK */
  sst_entry entry; /* a file's or symlink's entry; a directory's own entry
                      when it has one (then entry.flags has SST_FLAG_META),
                      else all zero. entry.key is not set. */
} sst_node;

/* Opens a tree view of r (which must outlive it). Inode numbers come from
 * positions in the table, so nothing is held per key or per directory.
 * The one exception is hard links: every name of a hard-link group
 * (entries with one link_id) has the group's inode number, and the tree
 * remembers, for each group that lookup or list has returned, the
 * position of one of its names, so that stat can find it again: 32 bytes
 * at most per group seen, in one table that doubles as it fills, kept
 * until close. Tables without hard links cost nothing.
 * Errors: ENOMEM, EFBIG (table larger than 64 TiB), or an error reading
 * the root directory's entry. Thread safe. */
int sst_tree_open(const sst_reader *r, unsigned flags, sst_tree **out);

/* A tree view of n tables stacked, readers[n - 1] on top: a key's entry in
 * the highest table that holds it wins, a tombstone there hides it, and
 * listings merge all tables in one pass (sst_iter_new_stack). Nodes'
 * entries carry their table's index in entry.source. The array is copied;
 * the readers must outlive the tree. */
int sst_tree_open_stack(const sst_reader *const *readers, size_t n,
                        unsigned flags, sst_tree **out);
void sst_tree_close(sst_tree *t);

/* The node called name in directory dir. Errors: SST_ENOTFOUND, ENOTDIR,
 * ENAMETOOLONG, SST_ECORRUPT/SST_ECHECKSUM for a damaged block. */
int sst_tree_lookup(sst_tree *t, uint64_t dir, const char *name, sst_node *out);

/* The node of an inode number from lookup or list. SST_ENOTFOUND if it
 * names nothing (or a hard-link group that lookup and list never
 * returned). */
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

/* ------------------------------------------------------------------ */
/* A directory tree made a table (core/treewrite.c): the one walk that */
/* `sst pack` and the staging mount's commit share.                    */
/*                                                                     */
/* sst_scan_tree walks a directory, gives every regular file the key   */
/* of its relative path (sst_path_to_key) and sorts the files by key;  */
/* sst_scan_write_file streams one of them into a writer the caller    */
/* opened, checking that it did not change. sst_scan_write_all and     */
/* sst_pack_tree do the whole tree. Every problem tied to a path goes  */
/* to one callback, which decides whether the entry is skipped or the  */
/* work stops; the library prints nothing.                             */
/*                                                                     */
/* With sst_scan_options.metadata the scan keeps the tree itself       */
/* (format version 2, sst_meta in sstable.h): directories and symlinks */
/* become entries too, and every entry carries its type, permission    */
/* bits, owner, mtime, hard-link group and extended attributes.        */

typedef struct sst_scan sst_scan;

/* What went wrong (sst_scan_problem.kind). */
enum {
  SST_SCAN_ESYS = 1,  /* a system call failed on path: code is its errno */
  SST_SCAN_SPECIAL,   /* path is neither a regular file nor a directory
                         (nor, with metadata, a symlink); what says
                         which: code is 0 */
  SST_SCAN_BADNAME,   /* path cannot be made a key: code is SST_EINVAL (in
                         flat mode: a file in a real subdirectory) or
                         SST_EKEYSIZE (empty, or longer than SST_KEY_MAX) */
  SST_SCAN_DUPLICATE, /* path and other give the same key: SST_EDUPKEY */
  SST_SCAN_CHANGED,   /* writing: the file is not what the scan saw, or
                         changed while it was read: SST_ECHANGED */
};

typedef struct sst_scan_problem {
  int kind;
  int code;           /* an errno value or an SST_E* code, as above */
  const char *path;   /* relative to the scanned directory, "" for the
                         directory itself */
  const char *other;  /* SST_SCAN_DUPLICATE: the second path; else NULL */
  const uint8_t *key; /* the file's key when it has one; else NULL */
  size_t key_len;
  const char *what;    /* SST_SCAN_SPECIAL: "symlink" (without
                          metadata only), "FIFO", "socket", "character
                          device", "block device" or "special file";
                          else NULL */
  const char *message; /* what is wrong, to follow "PATH: ", e.g. "is a
                          FIFO, not a regular file", "Permission denied",
                          "grew while it was read (from 10 bytes)" */
  int can_skip;        /* the entry can be left out (see the callback) */
} sst_scan_problem;

/* Called once per problem; every pointer in p is valid during the call
 * only. Returning 0 leaves the entry out and goes on when p->can_skip
 * (a directory that cannot be read is left out with everything under
 * it); any other value stops the work, and the function that called back
 * returns that value. When p->can_skip is 0, returning 0 also stops, with
 * p->code; for SST_SCAN_DUPLICATE, returning 0 goes on to the next pair
 * and the scan then fails with SST_EDUPKEY. */
typedef int (*sst_scan_problem_fn)(void *ctx, const sst_scan_problem *p);

typedef struct sst_scan_progress {
  int writing;          /* 0 while scanning, 1 while writing */
  uint64_t files;       /* scanning: regular files (with metadata, all
                           entries) found so far; writing: those written
                           (or skipped) so far */
  uint64_t bytes;       /* their sizes as found; bytes written so far */
  uint64_t total_files; /* writing: what the scan found; 0 while scanning */
  uint64_t total_bytes;
} sst_scan_progress;

/* Called after every entry the scan looks at, after every chunk written
 * and every file finished, and when a read is interrupted by a signal
 * (EINTR), so that a caller can stop on a signal; often, so throttle any
 * drawing. Returning non-zero stops the work, and the function that
 * called back returns that value. */
typedef int (*sst_scan_progress_fn)(void *ctx, const sst_scan_progress *p);

typedef struct sst_scan_options {
  unsigned path_flags; /* SST_PATH_FLAT, as for sst_path_to_key */
  /* NULL: a special file is left out, every other problem stops the work
   * with its code (the scan with SST_EDUPKEY after a duplicate). */
  sst_scan_problem_fn on_problem;
  sst_scan_progress_fn on_progress; /* may be NULL */
  void *ctx;                        /* passed to both */
  /* With exclude set, the regular file with this device and inode
   * number is left out without a word (a table being written into the
   * directory it is packed from). */
  int exclude;
  uint64_t exclude_dev, exclude_ino;
  /* Non-zero: keep the tree's metadata, for a version 2 table (`sst
   * pack` sets it unless --no-metadata). Every entry is looked at with
   * lstat, and each entry written carries an sst_meta:
   * - a directory becomes an entry of its own (SST_TYPE_DIR, empty
   *   value), keyed by its path's key and "/"; the top directory's key
   *   is "/". So empty directories are kept. A "%+" piece directory
   *   (part of a long name, docs/PATHS.md) gets no entry, and in flat
   *   mode no directory does;
   * - a symlink is an entry (SST_TYPE_SYMLINK) whose value is its
   *   target, read with readlinkat, never followed; FIFOs, sockets and
   *   devices are still reported as SST_SCAN_SPECIAL;
   * - regular files with more than one link are grouped by device and
   *   inode: the group's first name in key order writes the value and
   *   the others share it (sst_writer_add_shared); all carry one
   *   link_id (groups numbered 1.. in key order of their first names)
   *   and nlink, the number of the group's names found in the tree. A
   *   file whose other names lie outside the tree is a plain file;
   * - mode & 07777, uid, gid and the mtime in nanoseconds, as fstat
   *   gives them when the entry is written; the extended attributes
   *   flistxattr lists on a file or directory (not on a symlink),
   *   sorted by name and encoded with sst_xattrs_encode.
   * Zero (the default): a plain key/value table of the regular files,
   * symlinks reported as SST_SCAN_SPECIAL, as in version 1. */
  int metadata;
} sst_scan_options;

/* Fills *opts with the defaults: no flags, no callbacks, no exclusion,
 * no metadata. */
void sst_scan_options_init(sst_scan_options *opts);

/* One entry found by the scan: a regular file, or with metadata also a
 * directory or a symlink. */
typedef struct sst_scan_file {
  const uint8_t *key; /* sst_path_to_key of path */
  size_t key_len;
  const char *path; /* relative to the scanned directory, NUL-terminated */
  size_t path_len;
  uint64_t size;     /* st_size as the scan saw it (0 for a directory) */
  int64_t mtime_sec; /* st_mtim as the scan saw it */
  long mtime_nsec;
  uint64_t dev, ino;
  unsigned type;    /* SST_TYPE_FILE; with metadata, SST_TYPE_DIR or
                       SST_TYPE_SYMLINK too */
  uint32_t nlink;   /* with metadata: names of its hard-link group in
                       the tree; 1 when it has none */
  uint64_t link_id; /* with metadata: its hard-link group, 0 if none */
} sst_scan_file;

/* Walks the directory dirfd (which stays the caller's: the scan keeps a
 * duplicate of it) to any depth: every name is opened relative to its
 * parent, so no path is ever longer than one name (no PATH_MAX limit) and
 * no symlink is followed; besides its duplicate of dirfd it holds at most
 * 256 directory descriptors (a quarter of RLIMIT_NOFILE if that is less)
 * and one being listed or read. Entries are visited depth first, each
 * directory's in readdir order. Directories are descended into (empty
 * ones leave no trace, unless with metadata), regular files recorded with
 * their key, anything else reported as SST_SCAN_SPECIAL (with metadata:
 * directories and symlinks recorded too, see sst_scan_options). The
 * entries are then sorted by key (memcmp order, as in a table), then by
 * path, and every pair of paths with one key is reported
 * (SST_SCAN_DUPLICATE: a name and its escaped spelling, such as c and
 * %=c; with metadata also a directory "a" and a file "a/%=", both the
 * key "a/").
 * On success *out owns the scan; free it with sst_scan_free(). On failure
 * *out is untouched and the result is a callback's return value,
 * SST_EDUPKEY, the code of a problem that cannot be skipped, ENOMEM
 * (without a callback) or an errno from duplicating dirfd. opts may be
 * NULL for the defaults; it is copied. Not thread safe: one thread at a
 * time may use a scan. */
int sst_scan_tree(int dirfd, const sst_scan_options *opts, sst_scan **out);

/* Entries found, and the sum of their sizes as the scan saw them (a
 * hard-link group's size counted once). */
size_t sst_scan_count(const sst_scan *s);
uint64_t sst_scan_bytes(const sst_scan *s);

/* The i-th entry in key order, owned by the scan and valid until
 * sst_scan_free. REQUIRES: i < sst_scan_count(s). */
const sst_scan_file *sst_scan_get(const sst_scan *s, size_t i);

/* Adds file i to w as one key, its content streamed in chunks of 1 MiB
 * (never the whole file in memory), opened relative to its directory
 * without following a symlink, and without waiting on a FIFO put in its
 * place.
 * REQUIRES: w is open and not inside a value; its last key is less than
 * file i's key (a caller that merges another source, such as a base
 * table, adds that source's keys in between).
 * Problems, through the callback: opening the file or a directory on
 * its way fails (SST_SCAN_ESYS), or the file is no longer a regular file
 * or not the size the scan saw (SST_SCAN_CHANGED), all found before the
 * key is added and skippable; then a read fails (SST_SCAN_ESYS), the file
 * grows past or ends short of that size, or its size or mtime after
 * reading differ from before (SST_SCAN_CHANGED), none skippable.
 * Returns 0 when the file was added or skipped; a callback's value or a
 * problem's code; ENOMEM; or an error of the writer as it returned it
 * (without a callback). After a failure once the key was begun, w is
 * left inside a value: free it without finishing it. Writing progress
 * (files and bytes written) is counted across calls on one scan.
 * With metadata, entry i is written with sst_writer_set_meta before its
 * key. A directory or symlink is looked at again with fstat or lstat
 * (and readlinkat), and one that is missing or no longer of its type is
 * skippable (SST_SCAN_ESYS, SST_SCAN_CHANGED). A hard link whose group's
 * value was written already shares it (sst_writer_add_shared) after a
 * check that the name is still that inode; when the group's first name
 * was skipped, the next one writes the value. Reading extended
 * attributes can fail (SST_SCAN_ESYS: E2BIG when they encode to more
 * than SST_XATTRS_MAX bytes), skippable. */
int sst_scan_write_file(sst_scan *s, size_t i, sst_writer *w);

/* sst_scan_write_file for every file, in key order; stops at the first
 * failure and returns it. REQUIRES: as for sst_scan_write_file with the
 * first file. */
int sst_scan_write_all(sst_scan *s, sst_writer *w);

/* Frees the scan and closes its descriptors. NULL is allowed. */
void sst_scan_free(sst_scan *s);

/* The writer options of a table of a tree, as sst pack and the staging
 * commit write it (sst_writer_options_init otherwise): values compressed
 * with zstd at SST_TREE_ZSTD_LEVEL, small ones in value blocks of
 * SST_TREE_VALUE_BLOCK bytes, identical files stored once. Measured on
 * /usr/include (docs/BENCHMARKS.md): at level 10 in 256 KiB blocks the
 * table is smaller than the image mksquashfs -comp zstd makes (level 15,
 * 128 KiB blocks), and is written over 4 times as fast; level 6 in 128
 * KiB blocks, the writer's default, makes it about 5% larger. */
#define SST_TREE_ZSTD_LEVEL 10
#define SST_TREE_VALUE_BLOCK (256u << 10)
void sst_tree_writer_options_init(sst_writer_options *o);

/* The whole tree under dirfd into w: sst_scan_tree, sst_scan_write_all,
 * sst_scan_free. It does not finish w (nor free it): on success the
 * caller finishes it; on failure w may be inside a value, so the caller
 * frees it unfinished. Returns what those return. */
int sst_pack_tree(int dirfd, const sst_scan_options *opts, sst_writer *w);

#ifdef __cplusplus
}
#endif
#endif
