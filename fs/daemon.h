/* daemon.h — put the sstfs daemon in the background; check its mount
 * point. */
#ifndef SSTFS_DAEMON_H
#define SSTFS_DAEMON_H

/* What fuse_daemonize() does (fork; the parent exits once the child is
 * set up; the child leaves the working directory and the terminal's
 * stdin, stdout and stderr), except that the child starts a process group
 * of its own instead of a session. Staying in the session keeps it in the
 * scheduler's autogroup of the programs that use the mount: a request is
 * then a wake-up within one group, and copying small files into a staging
 * mount runs about 1.8 times as fast (docs/BENCHMARKS.md). Its own process
 * group keeps the terminal's job-control signals away from it; it keeps
 * the session's controlling terminal, but never reads or writes it. The
 * parent exits 0 once the child is set up, 1 if the child fails first.
 * With foreground set, it only changes directory to "/" (and calls
 * on_ready, below). Returns 0 (in the child) or -1 with a message on
 * stderr. Call it while the process runs a single thread: the child is
 * made with _Fork(), which skips fork()'s handlers. When on_ready is not
 * NULL, the child (or, in the foreground, the process) calls
 * on_ready(arg) before the parent exits. */
int sstfs_daemonize(int foreground, void (*on_ready)(void *), void *arg);

/* Whether mountpoint is a directory one can mount on: 0, or -1 with one
 * line on stderr naming it and the reason (for a dead mount, how to clear
 * it). */
int sstfs_check_mountpoint(const char *mountpoint);

#endif
