/* stage.h — the staging mount: `sstfs --stage OUT MOUNTPOINT` and
 * `sstfs --unmount MOUNTPOINT` (fs/stage.c). */
#ifndef SSTFS_STAGE_H
#define SSTFS_STAGE_H

/* Runs a staging mount; argv as given to sstfs. Returns the exit status:
 * in the foreground, that of the commit. */
int sstfs_stage_main(int argc, char *argv[]);

/* Unmounts a staging mount, waits for its table to be written and returns
 * 0 if it was, else prints why and returns 1. A read-only mount is simply
 * unmounted. */
int sstfs_unmount_main(const char *mountpoint);

#endif
