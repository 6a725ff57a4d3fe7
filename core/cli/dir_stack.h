/* dir_stack.h — directories along a relative path, each opened by name
 * from its parent: how sst unpack reaches the files of a tree of any
 * depth without following a symlink planted in it. */
#ifndef SST_CLI_DIR_STACK_H
#define SST_CLI_DIR_STACK_H

#include <fcntl.h>
#include <stddef.h>

#include "cli.h"

/* How every directory of the tree is opened: never through a symlink. */
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* The directories along one relative path below a root descriptor, each
 * opened by name from its parent (O_NOFOLLOW), so the kernel never sees
 * more than one name at a time: depth is not bounded by PATH_MAX, and a
 * symlink planted in the tree is never followed. Moving to another
 * directory keeps the common part, so files taken in order cost about one
 * openat each however deep they lie.
 *
 * Only the deepest `window` levels hold a descriptor (levels
 * low..depth-1); a closed level is opened again from the root, name by
 * name, when it is needed, so a tree of any depth (a 64 KiB key can have
 * 32768 components) fits in a few hundred descriptors, or a quarter of
 * the process's limit if that is less. */
typedef struct dir_stack {
  int root;
  int create; /* make missing directories, mode 0755 less the umask */
  char *path; /* the levels' path, '/'-joined and NUL-terminated */
  size_t len, cap;
  int *fds; /* fds[i]: the directory path[0..ends[i]), or -1 */
  size_t *ends;
  size_t depth, max;
  size_t low; /* levels below it hold no descriptor */
  size_t window;
} dir_stack;

/* An empty stack below root, a directory descriptor the caller keeps
 * open. With create, missing directories are made. */
void dir_stack_init(dir_stack *ds, int root, int create);

/* Closes every level's descriptor and frees the stack. */
void dir_stack_free(dir_stack *ds);

/* Opens (or with create, makes) the directory rel[0..len) and sets *fd to
 * it; the descriptor stays owned by ds and is valid until the next call.
 * On failure returns an errno value (EINVAL for an empty, "." or ".."
 * component) and sets *failed to the length of the path that failed. */
int dir_stack_enter(dir_stack *ds, const char *rel, size_t len, int *fd,
                    size_t *failed);

/* Opens the directory holding the file at rel (relative to ds's root) and
 * sets *name to the file's name in it. Reports a failure, naming the
 * path as top/rel; returns EXIT_OK or EXIT_FAIL. */
int dir_stack_parent(const command *c, dir_stack *ds, const char *top,
                     const char *rel, int *fd, const char **name);

#endif
