/* stage.h — the staging mount: a writable tree that becomes a table.
 *
 * `sstfs --stage OUT MOUNTPOINT` keeps what is written in a staging area
 * beside OUT (OUT.stage/, or -o stagedir=DIR):
 *
 *   target      what the stage is for: OUT and the base table, if any
 *   tree/       what was written, as real files, directories, symlinks
 *               and hard links under their names, with the modes,
 *               owners, times and user.* extended attributes the mount
 *               shows and the table keeps
 *   whiteouts/  with --base: a regular file at P hides the base's P and
 *               everything under it
 *   tmp/        copies of base files in progress
 *   writing/    a marker per file open for writing (fs/area.h); on
 *               resume such files go to incomplete/ (incomplete.list)
 *   lock        flock'ed by the daemon;  pid  the daemon's pid
 *   error       why the last mount ended without writing OUT
 *   written     OUT as this area last wrote it (a commit replaces no
 *               other OUT without -o overwrite)
 *   mountpoint  where it was last mounted (for sstfs --unmount)
 *
 * OUT.lock beside OUT is flock'ed too, so that two areas never stage one
 * OUT.
 *
 * With --base TABLE the mount shows the base table's tree with the staged
 * changes over it (as overlayfs does): untouched base files are read from
 * the base table, and show the metadata stored with them; a base entry is
 * copied into tree/ (with that metadata) only when it is opened for
 * writing, truncated, renamed, linked to, or its metadata changes; a
 * directory then without its children, which listings still take from
 * the base.
 *
 * When the mount is unmounted, the union of tree/ and the base becomes OUT
 * through the library's writer (temporary file, fsync, rename), and the
 * staging area is removed. If the commit fails, or a signal stopped the
 * daemon (which then commits nothing), the area stays, with the reason in
 * `error`, and `sstfs --stage ... -o resume` picks it up again. An fsync
 * of the mount's root (`sync MOUNTPOINT`) writes OUT the same way while
 * the mount goes on. Names map to keys through the same codec as
 * the read-only mount (docs/PATHS.md).
 *
 * The rooms: stage_main.c (options, start-up, the end of the mount),
 * area.c (the staging area: locks, resume, markers, error file),
 * overlay.c (tree/ over the base), stage_ops.c (the FUSE operations),
 * commit.c (the table from the staging area), unmount.c (sstfs
 * --unmount). This header holds what they share.
 */
#ifndef SSTFS_STAGE_H
#define SSTFS_STAGE_H

#define FUSE_USE_VERSION 312

#include <fuse.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sstable.h"
#include "sstpath.h"

#define MAX_BASES 64

typedef struct stage_conf {
  char *out, *stagedir;
  char *bases[MAX_BASES];
  int nbases;
  char *mnt_arg; /* MOUNTPOINT as given */
  int overwrite, resume, delta, nouring, keep_incomplete;
  int show_help;
  char *compress; /* -o compress=zstd[:LEVEL]|none (NULL: zstd) */
  int nodedup;
  int zstd_level; /* from compress: 0 for none */
} stage_conf;

/* A staging mount's state. */
typedef struct stage {
  stage_conf conf;
  char out[PATH_MAX], dir[PATH_MAX], mnt[PATH_MAX];
  int dir_fd, tree_fd, wh_fd, tmp_fd, writing_fd;
  int lock_fd;     /* flock'ed while a daemon uses the area (see lock_area) */
  int out_lock_fd; /* OUT.lock, flock'ed likewise (area_lock_out) */
  int created;     /* this run made the area: a failed start removes it */
  int is_root;     /* the daemon can give what it stages to its users */
  mode_t umask;    /* the daemon's, which the file system applies too */
  /* The base: tables stacked, the last on top (one --base each). */
  sst_reader *base[MAX_BASES];
  char base_path[MAX_BASES][PATH_MAX];
  size_t nbase;
  sst_tree *base_tree;
} stage;

/* The staging mount of this process (stage_main.c), which the FUSE
 * operations serve. */
extern stage S;

/* ---- sstfs --stage and sstfs --unmount (stage_main.c, unmount.c) ---- */

/* Runs a staging mount; argv as given to sstfs. Returns the exit status:
 * in the foreground, that of the commit. */
int sstfs_stage_main(int argc, char *argv[]);

/* Unmounts a staging mount, waits for its table to be written and returns
 * 0 if it was, else prints why and returns 1. A read-only mount is simply
 * unmounted; a mount that is gone is reported on. */
int sstfs_unmount_main(const char *mountpoint);

/* ---- The overlay (overlay.c): tree/ over the base ---- */

/* "/a/b" -> "a/b"; "/" -> "." (for the *at calls). */
const char *ov_rel(const char *path);

/* Whether path names a file libfuse hid (unlinked while open). */
int ov_is_hidden(const char *path);

/* Where path lives: its directory fd (tree/, or tmp/ for hidden files)
 * and, in *name, the name relative to it. */
int ov_at(stage *s, const char *path, const char **name);

/* Creates the parent directories of relpath under fd. 0 or errno. */
int ov_make_parents(int fd, const char *relpath);

/* Whether the base's entry at relpath is hidden by a whiteout (at it or
 * an ancestor); 1 when there is no base. */
int ov_hidden(stage *s, const char *relpath);

/* The base's node at path, if visible. 0 or an errno value. */
int ov_base_node(stage *s, const char *path, sst_node *n);

/* Records that the base's entry at relpath is gone. 0 or errno. */
int ov_whiteout(stage *s, const char *relpath);

/* Copies the base file at path into tree/ (before a change to it), with
 * its metadata (a symbolic link as a link; the other names of a hard
 * link, where the base shows them, as links to the copy); the base
 * directory at path with every visible entry under it. The parent's times are
 * kept: a copy changes nothing the mount shows. */
int ov_copy_up(stage *s, const char *path, const sst_node *n);
int ov_copy_up_dir(stage *s, const char *path, const sst_node *dir);

/* Creates the directories above relpath that tree/ lacks, each with the
 * owner, mode, extended attributes and mtime of the base directory it
 * stands for (if the base has them). 0 or errno. */
int ov_stage_parents(stage *s, const char *relpath);

/* The mode bits tree/ keeps of a mode: all of them when the daemon runs as
 * root (it reads what it stages whatever the mode), else the owner's
 * access on top, so that the commit can read. */
mode_t ov_kept_mode(stage *s, mode_t mode, int is_dir);

/* The base's metadata for the node at path: a file's entry, or a
 * directory's entry ("DIR/", "/" for the root). 0 with *e set (e->key is
 * NULL), or ENOENT when the base holds none (a version 1 entry, or a
 * directory only implied by its files' keys). */
int ov_base_meta(stage *s, const char *path, const sst_node *n, sst_entry *e);

/* The encoded extended attributes of a base entry with metadata, in
 * *buf (malloc'ed, the caller frees it; NULL when there are none). 0, or
 * EIO (logged) for damage, or ENOMEM. */
int ov_base_xattrs(stage *s, const sst_entry *e, uint8_t **buf);

/* Before a change to the metadata of the base entry at path: a file or
 * symbolic link is copied up (ov_copy_up), a directory made in tree/
 * with the base's metadata, without its children (the listing still
 * shows them from the base). */
int ov_copy_up_meta(stage *s, const char *path, const sst_node *n);

/* Frees what the overlay learnt of the base's hard links (the names of
 * each group, found at the first copy-up of one). */
void ov_free_groups(void);

/* Called, when set, with the mount's path ("/a/b") of each name of a
 * base hard link that a copy-up linked to the copy, whose attributes
 * have changed (stage_ops.c makes the kernel forget them). */
extern void (*ov_linked_up)(const char *path);

/* A new staging area over a base: the root of tree/ takes the base
 * root's metadata (its "/" entry), if it has one. */
int ov_init_root(stage *s);

/* The attributes shown for a base entry at path: its stored metadata
 * where it has some. Inode numbers are apart from tree/'s; the names of a
 * base hard-link group share one. */
void ov_base_stat(stage *s, const char *path, const sst_node *n,
                  struct stat *st);

/* A listing of the union at path: staged entries, then the visible base
 * entries; count says how many, and with fill each goes to filler. */
typedef struct list_ctx {
  stage *s;
  const char *path;
  void *buf;
  fuse_fill_dir_t filler;
  int count; /* entries seen (for emptiness checks) */
  int fill;  /* hand them to filler */
} list_ctx;
int ov_list(stage *s, list_ctx *l);
int ov_is_empty(stage *s, const char *path);

/* ---- The operations (stage_ops.c) and the commit (commit.c) ---- */

extern const struct fuse_operations stage_ops;

/* Closes and frees the files still open when the mount ended without
 * releasing them (stopped by a signal), leaving their markers. Call once
 * the session is gone. */
void stage_ops_close_all(void);

/* Frees the record of the names of staged hard links. Call once the
 * session is gone. */
void stage_ops_free_links(void);

/* Writes OUT from tree/ and the base. 0, or an error code with err
 * saying why. Takes no lock: the caller keeps the area still. */
int stage_commit(stage *s, char *err, size_t errlen);

#endif
