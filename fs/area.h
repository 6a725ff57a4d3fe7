/* area.h — what keeps a staging area and its output safe (fs/area.c):
 * the output's lock, the output as the area last wrote it, the files open
 * for writing, and the record of which mount point uses which area.
 *
 * Each function takes the descriptors and paths it works on; none keeps
 * state of its own. They return 0 or an errno value. */
#ifndef SSTFS_AREA_H
#define SSTFS_AREA_H

#include <stddef.h>
#include <sys/types.h>

/* ---- The output's lock ---------------------------------------------------
 * OUT.lock beside OUT, flock'ed for as long as a daemon stages OUT, so
 * that two staging areas (one of them given with -o stagedir=) never write
 * one output. The file holds the staging area's path, for the message of
 * the one refused. */

/* Takes the lock for OUT (an absolute path) on behalf of the staging area
 * AREA; *fd receives its descriptor. EBUSY when another daemon holds it:
 * then `holder` receives that daemon's staging area (or ""). */
int area_lock_out(const char *out, const char *area, int *fd, char *holder,
                  size_t holder_len);

/* Removes OUT.lock and releases it. fd may be -1 (nothing to do). */
void area_unlock_out(const char *out, int fd);

/* ---- The output as this area last wrote it --------------------------------
 * A commit replaces OUT only if OUT is missing or is the table this area
 * wrote last (recorded in the area's file `written`), unless -o overwrite
 * was given: a table that appeared at OUT after the mount started is never
 * replaced silently. */

/* 0 if OUT is missing or is the file recorded in dir_fd's `written`;
 * EEXIST if it is another file; another errno value if it cannot be
 * told. */
int area_out_unchanged(int dir_fd, const char *out);

/* Records OUT, as it now is, in dir_fd's `written`. */
int area_out_record(int dir_fd, const char *out);

/* ---- Files open for writing -----------------------------------------------
 * While a staged file is open for writing and not yet closed or fsynced,
 * writing/INO.N (an empty file) says so; it outlives a daemon that dies.
 * When the area is resumed, each such file (found in tree/ by its inode
 * number) is moved to incomplete/ under its name, out of the mount and out
 * of the commit, and listed in the file `incomplete.list` (one name a
 * line); or, when kept, only listed. */

/* Makes marker `name` (at least 48 bytes) for inode ino in writing_fd. */
int area_mark(int writing_fd, ino_t ino, char *name);

/* Removes the marker `name` in writing_fd. */
void area_unmark(int writing_fd, const char *name);

/* Handles the files that were open for writing when the last daemon of
 * the area at `dir` stopped (see above): moves them to incomplete/, or
 * with keep leaves them in tree/; lists them on stderr, each with its
 * size. Empties writing/. *count receives how many there were. */
int area_sweep(const char *dir, int dir_fd, int keep, size_t *count);

/* Writes to fd the names in the area's `incomplete.list` that tree_fd
 * holds no file at now (left out of the table), one a line, after a
 * heading; writes nothing if there are none. */
int area_incomplete_report(int dir_fd, int tree_fd, int fd);

/* ---- Which area a mount point uses ----------------------------------------
 * A symbolic link per staging mount, named by a hash of the mount point,
 * pointing to its staging area, in /run/sstfs (root) or
 * $XDG_RUNTIME_DIR/sstfs: so that `sstfs --unmount` can say what became
 * of a mount that is no longer there. The area's file `mountpoint` holds
 * the mount point itself, to tell hash collisions apart. Records whose
 * area is gone are pruned whenever one is made. */

/* Records that the staging mount at mnt (absolute) uses area dir. */
void area_register(const char *mnt, const char *dir, int dir_fd);

/* Forgets the record for mnt. */
void area_unregister(const char *mnt);

/* The staging area recorded for mnt: 0 and its path in dir, or ENOENT. */
int area_lookup(const char *mnt, char *dir, size_t len);

/* ---- The staging area of a mount (the stage's state: stage.h) ----------- */

struct stage;

/* Opens the staging area for OUT: takes OUT.lock, then makes a new area,
 * or checks an existing one (its target, its lock, why its last mount
 * ended, the question to resume, OUT unchanged unless -o overwrite, the
 * files left open for writing). 0, or 1 with a message on stderr. */
int area_take(struct stage *s);

/* Records why the mount ended without a table, in the area's `error` and
 * in the log. */
void area_record_error(struct stage *s, const char *err);

/* The end of a mount that committed: what sstfs --unmount should say
 * (files left out on resume) goes into the area's lock file, which it
 * holds open, and the log; then the area and its record go. */
void area_finish(struct stage *s);

/* ---- Small things ---------------------------------------------------------
 */

/* Reads the area file `name` (in dir_fd) into buf (NUL-terminated); its
 * length, or -1 if it cannot be read. */
ssize_t area_read_file(int dir_fd, const char *name, char *buf, size_t len);

/* Writes text to the area file `name` (in dir_fd) through a temporary
 * file and a rename, synced. */
int area_write_file(int dir_fd, const char *name, const char *text);

/* rm -rf path (the area holds trees of any depth). 0 or -1. */
int area_remove_tree(const char *path);

#endif
