/* daemon.c — put the sstfs daemon in the background (see daemon.h). */
#include "daemon.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

int sstfs_daemonize(int foreground) {
  if (foreground) {
    (void)!chdir("/");
    return 0;
  }
  int ready[2];
  if (pipe(ready) != 0) {
    fprintf(stderr, "sstfs: pipe: %s\n", strerror(errno));
    return -1;
  }
  switch (fork()) {
  case -1:
    fprintf(stderr, "sstfs: fork: %s\n", strerror(errno));
    close(ready[0]);
    close(ready[1]);
    return -1;
  case 0:
    break;
  default: {
    char c;
    close(ready[1]);
    /* The child holds the mount; the command returns when it is ready. */
    (void)!read(ready[0], &c, 1);
    _exit(0);
  }
  }
  close(ready[0]);
  if (setpgid(0, 0) != 0) {
    fprintf(stderr, "sstfs: setpgid: %s\n", strerror(errno));
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
  char c = 1;
  (void)!write(ready[1], &c, 1);
  close(ready[1]);
  return 0;
}
