/* unmount.c — `sstfs --unmount MOUNTPOINT`: unmount, then wait for the
 * staging daemon's commit and say how it ended; also what became of a
 * staging mount that is no longer mounted. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "area.h"

static int run(const char *cmd, const char *arg1, const char *arg2,
               const char *arg3) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp(cmd, cmd, arg1, arg2, arg3, (char *)NULL);
    _exit(127);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) < 0)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Finds the mount's source (fsname) and type in /proc/self/mounts. */
static int find_mount(const char *mnt, char *source, size_t len, int *ours) {
  FILE *f = fopen("/proc/self/mounts", "r");
  if (f == NULL)
    return errno;
  char line[3 * PATH_MAX], src[PATH_MAX], dir[PATH_MAX], type[64];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%4095s %4095s %63s", src, dir, type) != 3)
      continue;
    /* /proc/mounts escapes spaces and the like as \ooo */
    char unesc[PATH_MAX];
    size_t o = 0;
    for (size_t i = 0; dir[i] && o + 1 < sizeof unesc; i++) {
      if (dir[i] == '\\' && dir[i + 1] && dir[i + 2] && dir[i + 3]) {
        unesc[o++] = (char)((dir[i + 1] - '0') * 64 + (dir[i + 2] - '0') * 8 +
                            (dir[i + 3] - '0'));
        i += 3;
      } else {
        unesc[o++] = dir[i];
      }
    }
    unesc[o] = '\0';
    if (strcmp(unesc, mnt) == 0) {
      snprintf(source, len, "%s", src);
      *ours = strcmp(type, "fuse.sstfs") == 0;
      found = 1;
    }
  }
  fclose(f);
  return found ? 0 : ENOENT;
}

/* mountpoint as an absolute path. A dead mount cannot be resolved itself
 * (ENOTCONN), so its last name is taken as it stands. */
static int mount_path(const char *mountpoint, char *mnt, size_t len) {
  if (realpath(mountpoint, mnt) != NULL)
    return 0;
  int rc = errno;
  char *copy = strdup(mountpoint), *dir = NULL, *name;
  if (copy == NULL)
    return ENOMEM;
  char *slash = strrchr(copy, '/');
  while (slash != NULL && slash != copy && slash[1] == '\0') {
    *slash = '\0'; /* trailing slashes */
    slash = strrchr(copy, '/');
  }
  if (slash == NULL) {
    name = copy;
    dir = realpath(".", NULL);
  } else {
    *slash = '\0';
    name = slash + 1;
    dir = realpath(copy[0] ? copy : "/", NULL);
  }
  if (dir != NULL && *name && strcmp(name, ".") && strcmp(name, "..") &&
      snprintf(mnt, len, "%s/%s", strcmp(dir, "/") ? dir : "", name) < (int)len)
    rc = 0;
  free(dir);
  free(copy);
  return rc;
}

/* What became of a staging mount that is no longer mounted. Returns the
 * exit status: 1 (nothing was written then), or 2 if nothing is known. */
static int unmounted_report(const char *mnt) {
  char area[PATH_MAX], msg[PATH_MAX + 512], target[PATH_MAX + 16];
  if (area_lookup(mnt, area, sizeof area) != 0)
    return 2;
  int fd = open(area, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 2;
  const char *out = "its table";
  if (area_read_file(fd, "target", target, sizeof target) > 4 &&
      strncmp(target, "out ", 4) == 0) {
    target[strcspn(target, "\n")] = '\0';
    out = target + 4;
  }
  if (area_read_file(fd, "error", msg, sizeof msg) > 0)
    fprintf(stderr,
            "sstfs: %s is not mounted; its last staging mount ended "
            "without writing %s: %s",
            mnt, out, msg);
  else
    fprintf(stderr,
            "sstfs: %s is not mounted; its staging daemon stopped without "
            "writing %s; the staging area %s is kept (resume it with "
            "sstfs --stage %s %s -o resume)\n",
            mnt, out, area, out, mnt);
  close(fd);
  return 1;
}

int sstfs_unmount_main(const char *mountpoint) {
  char mnt[PATH_MAX], source[PATH_MAX];
  int ours = 0, rc;
  if ((rc = mount_path(mountpoint, mnt, sizeof mnt)) != 0) {
    fprintf(stderr, "sstfs: %s: %s\n", mountpoint, strerror(rc));
    return 1;
  }
  if (find_mount(mnt, source, sizeof source, &ours) != 0 || !ours) {
    if (unmounted_report(mnt) == 1)
      return 1;
    fprintf(stderr, "sstfs: %s: not an sstfs mount\n", mnt);
    return 1;
  }
  /* A staging mount's source is its staging area; its lock is held by
   * the daemon until it exits. A read-only mount's source is a table. */
  char p[PATH_MAX + 16], target[PATH_MAX + 16] = "";
  snprintf(p, sizeof p, "%s/lock", source);
  int lock = open(p, O_RDONLY | O_CLOEXEC);
  int dir_fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    area_read_file(dir_fd, "target", target, sizeof target);
    target[strcspn(target, "\n")] = '\0';
    close(dir_fd);
  }
  const char *out = strncmp(target, "out ", 4) == 0 ? target + 4 : "the table";
  if (run("fusermount3", "-u", "--", mnt) != 0) {
    fprintf(stderr, "sstfs: could not unmount %s\n", mnt);
    if (lock >= 0)
      close(lock);
    return 1;
  }
  if (lock < 0)
    return 0; /* a read-only mount: nothing to wait for */
  /* Wait for the commit: the area moves away once the table is written;
   * the daemon exits, releasing the lock and leaving the area with an
   * error, when it is not. */
  struct stat st;
  while (stat(source, &st) == 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (stat(source, &st) != 0) {
    /* Committed: the staging area is gone. What the daemon had to add is
     * in the lock file (finish_committed). */
    char report[4096];
    ssize_t n = pread(lock, report, sizeof report - 1, 0);
    if (n > 0) {
      report[n] = '\0';
      fprintf(stderr, "sstfs: %s was written; %s", out, report);
    }
    close(lock);
    return 0;
  }
  close(lock);
  FILE *f;
  snprintf(p, sizeof p, "%s/error", source);
  char msg[4 * PATH_MAX] = "";
  if ((f = fopen(p, "r")) != NULL) {
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = '\0';
    fclose(f);
    fprintf(stderr, "sstfs: the table was not written: %s", msg);
  } else {
    fprintf(stderr,
            "sstfs: the daemon stopped without writing %s; the staging "
            "area %s is kept (resume it with sstfs --stage %s %s -o "
            "resume)\n",
            out, source, out, mnt);
  }
  return 1;
}
