/* daemon.c — put the sstfs daemon in the background (see daemon.h). */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int sstfs_daemonize(int foreground, void (*on_ready)(void *), void *arg) {
  if (foreground) {
    (void)!chdir("/");
    if (on_ready != NULL)
      on_ready(arg);
    return 0;
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    fprintf(stderr, "sstfs: pipe: %s\n", strerror(errno));
    return -1;
  }
  /* _Fork: the process has one thread here, but once it has started any
   * (sstfs binds thread start-up before detaching), fork() runs glibc's
   * multi-threaded child-side resets, which map several more pages of libc
   * into the daemon for locks that no other thread can hold. */
  pid_t pid = _Fork();
  if (pid < 0) {
    fprintf(stderr, "sstfs: fork: %s\n", strerror(errno));
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  if (pid > 0) {
    /* Both sides set the group, so no Ctrl-C can reach the child in
     * between. The command returns when the child is ready, and fails if
     * the child does not say so (it exited, having unmounted). */
    (void)setpgid(pid, pid);
    close(ready[1]);
    char c = 1;
    ssize_t n;
    do
      n = read(ready[0], &c, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 && c == 0 ? 0 : 1);
  }
  close(ready[0]);
  if (setpgid(0, 0) != 0) {
    fprintf(stderr, "sstfs: setpgid: %s\n", strerror(errno));
    close(ready[1]);
    return -1;
  }
  (void)!chdir("/");
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2)
      close(null);
  }
  if (on_ready != NULL)
    on_ready(arg);
  char c = 0;
  (void)!write(ready[1], &c, 1);
  close(ready[1]);
  return 0;
}

int sstfs_check_mountpoint(const char *mountpoint) {
  struct stat st;
  if (stat(mountpoint, &st) != 0) {
    int err = errno;
    if (err == ENOTCONN)
      fprintf(stderr,
              "sstfs: mount point %s: %s: the daemon of a mount there has "
              "stopped; clear it with: sstfs --unmount %s\n",
              mountpoint, strerror(err), mountpoint);
    else
      fprintf(stderr, "sstfs: mount point %s: %s\n", mountpoint, strerror(err));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, "sstfs: mount point %s: %s\n", mountpoint,
            strerror(ENOTDIR));
    return -1;
  }
  return 0;
}
