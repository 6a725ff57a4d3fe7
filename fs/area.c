/* area.c — what keeps a staging area and its output safe (see area.h). */
#include "area.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "stage.h"

ssize_t area_read_file(int dir_fd, const char *name, char *buf, size_t len) {
  int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || len == 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  size_t n = 0;
  while (n + 1 < len) {
    ssize_t got = read(fd, buf + n, len - 1 - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    n += (size_t)got;
  }
  buf[n] = '\0';
  close(fd);
  return (ssize_t)n;
}

int area_write_file(int dir_fd, const char *name, const char *text) {
  char tmp[NAME_MAX + 1];
  if (snprintf(tmp, sizeof tmp, ".%s.new", name) >= (int)sizeof tmp)
    return ENAMETOOLONG;
  int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  size_t len = strlen(text);
  int rc = write(fd, text, len) == (ssize_t)len ? 0 : errno ? errno : EIO;
  if (rc == 0 && fsync(fd) != 0)
    rc = errno;
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc == 0 && renameat(dir_fd, tmp, dir_fd, name) != 0)
    rc = errno;
  if (rc)
    unlinkat(dir_fd, tmp, 0);
  return rc;
}

int area_remove_tree(const char *path) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
    _exit(127);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    return -1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The output's lock.                                                  */

static int lock_path(const char *out, char *p, size_t len) {
  return snprintf(p, len, "%s.lock", out) >= (int)len ? ENAMETOOLONG : 0;
}

int area_lock_out(const char *out, const char *area, int *fd, char *holder,
                  size_t holder_len) {
  char p[PATH_MAX];
  int rc = lock_path(out, p, sizeof p);
  if (rc)
    return rc;
  if (holder_len)
    holder[0] = '\0';
  /* The last holder removes the file before it lets go: a lock taken on
   * a file that is no longer at its name is no lock, so try again. */
  for (int tries = 0; tries < 100; tries++) {
    int f = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0)
      return errno;
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
      rc = errno == EWOULDBLOCK ? EBUSY : errno;
      if (rc == EBUSY && holder_len) {
        ssize_t n = pread(f, holder, holder_len - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
      }
      close(f);
      return rc;
    }
    struct stat a, b;
    if (fstat(f, &a) == 0 && stat(p, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      size_t n = strlen(area);
      if (ftruncate(f, 0) != 0 || pwrite(f, area, n, 0) != (ssize_t)n ||
          pwrite(f, "\n", 1, (off_t)n) != 1) {
        rc = errno ? errno : EIO;
        unlink(p);
        close(f);
        return rc;
      }
      *fd = f;
      return 0;
    }
    close(f);
  }
  return EAGAIN;
}

void area_unlock_out(const char *out, int fd) {
  char p[PATH_MAX];
  if (fd < 0)
    return;
  if (lock_path(out, p, sizeof p) == 0)
    unlink(p);
  close(fd);
}

/* ------------------------------------------------------------------ */
/* The output as this area last wrote it.                              */

static void identity(const struct stat *st, char *buf, size_t len) {
  snprintf(buf, len, "%" PRIu64 " %" PRIu64 " %lld %lld.%09ld\n",
           (uint64_t)st->st_dev, (uint64_t)st->st_ino, (long long)st->st_size,
           (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

int area_out_unchanged(int dir_fd, const char *out) {
  struct stat st;
  if (stat(out, &st) != 0)
    return errno == ENOENT ? 0 : errno;
  char want[128], have[128];
  identity(&st, want, sizeof want);
  if (area_read_file(dir_fd, "written", have, sizeof have) < 0)
    return EEXIST;
  return strcmp(want, have) == 0 ? 0 : EEXIST;
}

int area_out_record(int dir_fd, const char *out) {
  struct stat st;
  if (stat(out, &st) != 0)
    return errno;
  char text[128];
  identity(&st, text, sizeof text);
  return area_write_file(dir_fd, "written", text);
}

/* ------------------------------------------------------------------ */
/* Files open for writing.                                             */

int area_mark(int writing_fd, ino_t ino, char *name) {
  static unsigned long seq;
  snprintf(name, 48, "%" PRIu64 ".%lu", (uint64_t)ino,
           __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
  if (mknodat(writing_fd, name, S_IFREG | 0600, 0) != 0 && errno != EEXIST)
    return errno;
  return 0;
}

void area_unmark(int writing_fd, const char *name) {
  unlinkat(writing_fd, name, 0);
}

typedef struct ino_set {
  uint64_t *v;
  size_t n;
} ino_set;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The inode numbers named in writing/; removes the markers. */
static int read_marks(int writing_fd, ino_set *s) {
  DIR *d = sstfs_opendirat(writing_fd, "");
  if (d == NULL)
    return errno;
  size_t cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char *end;
    errno = 0;
    unsigned long long ino = strtoull(e->d_name, &end, 10);
    if (errno == 0 && end != e->d_name && *end == '.') {
      if (s->n == cap) {
        cap = cap ? 2 * cap : 16;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) {
          rc = ENOMEM;
          break;
        }
        s->v = v;
      }
      s->v[s->n++] = ino;
    }
    unlinkat(writing_fd, e->d_name, 0);
  }
  closedir(d);
  if (s->n)
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
  return rc;
}

typedef struct found {
  char *path; /* relative to tree/ */
  long long size;
} found;

typedef struct found_list {
  found *v;
  size_t n, cap;
} found_list;

/* Walks the directory dir_fd/rel (depth first, any depth) for regular
 * files whose inode is in s. */
static int find_inodes(int tree_fd, const char *rel, const ino_set *s,
                       found_list *out) {
  DIR *d = sstfs_opendirat(tree_fd, rel);
  if (d == NULL)
    return errno;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    char *p = malloc(strlen(rel) + strlen(e->d_name) + 2);
    if (p == NULL) {
      rc = ENOMEM;
      break;
    }
    sprintf(p, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
    uint64_t ino = st.st_ino;
    if (S_ISDIR(st.st_mode)) {
      rc = find_inodes(tree_fd, p, s, out);
    } else if (S_ISREG(st.st_mode) &&
               bsearch(&ino, s->v, s->n, sizeof *s->v, cmp_u64) != NULL) {
      if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 8;
        found *v = realloc(out->v, cap * sizeof *v);
        if (v == NULL) {
          free(p);
          rc = ENOMEM;
          break;
        }
        out->v = v;
        out->cap = cap;
      }
      out->v[out->n++] = (found){p, (long long)st.st_size};
      continue;
    }
    free(p);
  }
  closedir(d);
  return rc;
}

/* Creates the parent directories of rel under fd. */
static int make_parents_at(int fd, const char *rel) {
  char *buf = strdup(rel);
  if (buf == NULL)
    return ENOMEM;
  int rc = 0;
  for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdirat(fd, buf, 0700) != 0 && errno != EEXIST) {
      rc = errno;
      break;
    }
    *p = '/';
  }
  free(buf);
  return rc;
}

static int open_sub(int dir_fd, const char *name) {
  if (mkdirat(dir_fd, name, 0700) != 0 && errno != EEXIST)
    return -1;
  return openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int area_sweep(const char *dir, int dir_fd, int keep, size_t *count) {
  *count = 0;
  int writing_fd = open_sub(dir_fd, "writing");
  int tree_fd = openat(dir_fd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int inc_fd = -1, list_fd = -1, rc = 0;
  ino_set s = {0};
  found_list f = {0};
  if (writing_fd < 0 || tree_fd < 0) {
    rc = errno;
    goto done;
  }
  if ((rc = read_marks(writing_fd, &s)) != 0 || s.n == 0)
    goto done;
  if ((rc = find_inodes(tree_fd, "", &s, &f)) != 0 || f.n == 0)
    goto done;
  *count = f.n;
  if (!keep) {
    if ((inc_fd = open_sub(dir_fd, "incomplete")) < 0 ||
        (list_fd = openat(dir_fd, "incomplete.list",
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) <
            0) {
      rc = errno;
      goto done;
    }
  }
  fprintf(stderr,
          "sstfs: %zu file%s open for writing when the last sstfs of %s "
          "stopped, so %s incomplete:\n",
          f.n, f.n == 1 ? " was" : "s were", dir,
          f.n == 1 ? "it may be" : "they may be");
  for (size_t i = 0; i < f.n; i++) {
    fprintf(stderr, "sstfs:   %s (%lld bytes)\n", f.v[i].path, f.v[i].size);
    if (keep)
      continue;
    if ((rc = make_parents_at(inc_fd, f.v[i].path)) != 0 ||
        renameat(tree_fd, f.v[i].path, inc_fd, f.v[i].path) != 0) {
      rc = rc ? rc : errno;
      break;
    }
    dprintf(list_fd, "%s\n", f.v[i].path);
  }
  if (rc == 0)
    fprintf(stderr,
            keep ? "sstfs: they are kept as they are (-o keep_incomplete)\n"
                 : "sstfs: they are left out of the mount and of the table "
                   "(moved to %s/incomplete/); copy them again, or resume "
                   "with -o keep_incomplete to keep them as they are\n",
            dir);
  if (rc == 0 && !keep && fsync(list_fd) != 0)
    rc = errno;
done:
  for (size_t i = 0; i < f.n; i++)
    free(f.v[i].path);
  free(f.v);
  free(s.v);
  int fds[] = {writing_fd, tree_fd, inc_fd, list_fd};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return rc;
}

int area_incomplete_report(int dir_fd, int tree_fd, int fd) {
  int lf = openat(dir_fd, "incomplete.list", O_RDONLY | O_CLOEXEC);
  if (lf < 0)
    return errno == ENOENT ? 0 : errno;
  FILE *f = fdopen(lf, "r");
  if (f == NULL) {
    close(lf);
    return errno;
  }
  char *line = NULL;
  size_t cap = 0, n = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n')
      line[len - 1] = '\0';
    struct stat st;
    if (line[0] == '\0' ||
        fstatat(tree_fd, line, &st, AT_SYMLINK_NOFOLLOW) == 0)
      continue; /* written again since */
    if (n++ == 0)
      dprintf(fd, "not in the table as they were being written when an "
                  "earlier sstfs stopped (not copied again since):\n");
    dprintf(fd, "  %s\n", line);
  }
  free(line);
  fclose(f);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Which area a mount point uses.                                      */

static int registry(char *p, size_t len) {
  const char *base = "/run";
  if (geteuid() != 0) {
    base = getenv("XDG_RUNTIME_DIR");
    if (base == NULL || base[0] != '/')
      return ENOENT;
  }
  if (snprintf(p, len, "%s/sstfs", base) >= (int)len)
    return ENAMETOOLONG;
  if (mkdir(p, 0700) != 0 && errno != EEXIST)
    return errno;
  return 0;
}

/* registry/HASH for mnt (FNV-1a, 64 bits). */
static int entry(const char *mnt, char *p, size_t len) {
  char dir[PATH_MAX];
  int rc = registry(dir, sizeof dir);
  if (rc)
    return rc;
  uint64_t h = 14695981039346656037ull;
  for (const unsigned char *c = (const unsigned char *)mnt; *c; c++)
    h = (h ^ *c) * 1099511628211ull;
  return snprintf(p, len, "%s/%016" PRIx64, dir, h) >= (int)len ? ENAMETOOLONG
                                                                : 0;
}

/* Removes the records whose staging area is gone. */
static void prune(void) {
  char p[PATH_MAX];
  if (registry(p, sizeof p) != 0)
    return;
  DIR *d = opendir(p);
  if (d == NULL)
    return;
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) != 0 &&
        errno == ENOENT)
      unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
}

void area_register(const char *mnt, const char *dir, int dir_fd) {
  char p[PATH_MAX + 64], text[PATH_MAX + 2];
  snprintf(text, sizeof text, "%s\n", mnt);
  if (area_write_file(dir_fd, "mountpoint", text) != 0 ||
      entry(mnt, p, sizeof p) != 0)
    return;
  unlink(p);
  (void)!symlink(dir, p);
  prune();
}

void area_unregister(const char *mnt) {
  char p[PATH_MAX + 64];
  if (entry(mnt, p, sizeof p) == 0)
    unlink(p);
}

int area_lookup(const char *mnt, char *dir, size_t len) {
  char p[PATH_MAX + 64], text[PATH_MAX + 2];
  if (len == 0 || entry(mnt, p, sizeof p) != 0)
    return ENOENT;
  ssize_t n = readlink(p, dir, len - 1);
  if (n <= 0)
    return ENOENT;
  dir[n] = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ENOENT;
  ssize_t got = area_read_file(fd, "mountpoint", text, sizeof text);
  close(fd);
  if (got <= 0)
    return ENOENT;
  text[strcspn(text, "\n")] = '\0';
  return strcmp(text, mnt) == 0 ? 0 : ENOENT;
}

/* ------------------------------------------------------------------ */
/* The staging area of a mount: made or resumed, and its end.          */

static void target_text(stage *s, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "out %s\n", s->out);
  for (size_t i = 0; i < s->nbase && n < len; i++) {
    struct stat st;
    stat(s->base_path[i], &st);
    n += (size_t)snprintf(buf + n, len - n, "base %s %lld %lld.%09ld\n",
                          s->base_path[i], (long long)st.st_size,
                          (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  if (s->conf.delta && n < len)
    snprintf(buf + n, len - n, "delta\n");
}

/* Takes the staging area's lock, held for the daemon's whole life (the
 * descriptor survives sstfs_daemonize's fork): a second daemon cannot take
 * over a live area, and sstfs --unmount knows the daemon has finished when
 * it can take the lock itself. EBUSY when another daemon holds it. */
static int lock_area(stage *s) {
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/lock", s->dir);
  s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd < 0)
    return errno;
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
    return errno == EWOULDBLOCK ? EBUSY : errno;
  return 0;
}

static int open_area(stage *s, int fresh) {
  if (fresh) {
    if (mkdir(s->dir, 0700) != 0)
      return errno;
    s->created = 1;
    static char text[(MAX_BASES + 1) * (PATH_MAX + 64)];
    target_text(s, text, sizeof text);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/target", s->dir);
    FILE *f = fopen(p, "w");
    if (f == NULL)
      return errno;
    fputs(text, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
      fclose(f);
      return errno;
    }
    fclose(f);
  }
  if ((s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return errno;
  const char *subs[] = {"tree", "whiteouts", "tmp", "writing"};
  int *fds[] = {&s->tree_fd, &s->wh_fd, &s->tmp_fd, &s->writing_fd};
  for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
    if (mkdirat(s->dir_fd, subs[i], 0700) != 0 && errno != EEXIST)
      return errno;
    if ((*fds[i] = openat(s->dir_fd, subs[i],
                          O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
      return errno;
  }
  /* The mount's root: the mounting user's, 0755 (the area stays 0700). */
  if (fresh && fchmod(s->tree_fd, 0755) != 0)
    return errno;
  return 0;
}

/* Why the last mount of an existing area ended without a table, if it
 * did: said before it is resumed. */
static void say_last_error(stage *s) {
  char msg[PATH_MAX + 512];
  int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (area_read_file(fd, "error", msg, sizeof msg) > 0)
    fprintf(stderr,
            "sstfs: the last staging mount of %s ended without "
            "writing it: %s%s",
            s->out, msg, msg[strlen(msg) - 1] == '\n' ? "" : "\n");
  close(fd);
}

/* An existing staging area: is it ours? */
static int check_target(stage *s) {
  static char have[(MAX_BASES + 1) * (PATH_MAX + 64)], want[sizeof have];
  char p[PATH_MAX + 16];
  have[0] = '\0';
  snprintf(p, sizeof p, "%s/target", s->dir);
  FILE *f = fopen(p, "r");
  if (f) {
    size_t n = fread(have, 1, sizeof have - 1, f);
    have[n] = '\0';
    fclose(f);
  }
  target_text(s, want, sizeof want);
  if (strcmp(have, want) != 0) {
    fprintf(stderr,
            "sstfs: %s is a staging area for something else:\n%s"
            "sstfs: it is kept; move it away or use -o stagedir=DIR\n",
            s->dir, have[0] ? have : "(no target file)\n");
    return 1;
  }
  return 0;
}

/* May we resume it? (Asked with the area locked.) */
static int check_resume(stage *s) {
  if (!s->conf.resume) {
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
      fprintf(stderr,
              "sstfs: a staging area for %s exists in %s.\n"
              "Resume it? [y/N] ",
              s->out, s->dir);
      char answer[16] = "";
      if (fgets(answer, sizeof answer, stdin) == NULL ||
          (answer[0] != 'y' && answer[0] != 'Y')) {
        fprintf(stderr, "sstfs: not resumed; the staging area is kept\n");
        return 1;
      }
    } else {
      fprintf(stderr,
              "sstfs: a staging area for %s exists in %s; resume it with "
              "-o resume (it is never discarded on its own)\n",
              s->out, s->dir);
      return 1;
    }
  }
  return 0;
}

/* Records why the mount ended without a table, for the next start, sstfs
 * --unmount and sst info; and says it in the log. */
void area_record_error(stage *s, const char *err) {
  sstfs_log("%s", err);
  size_t n = strlen(err);
  char *text = malloc(n + 2);
  if (text == NULL)
    return;
  memcpy(text, err, n);
  memcpy(text + n, "\n", 2);
  int rc = area_write_file(s->dir_fd, "error", text);
  free(text);
  if (rc)
    sstfs_log("%s/error: %s", s->dir, strerror(rc));
}

/* The end of a mount that committed: what sstfs --unmount should say goes
 * into the area's lock file, which it holds open; then the area goes. */
void area_finish(stage *s) {
  char report[4096];
  ssize_t n;
  if (ftruncate(s->lock_fd, 0) == 0 &&
      area_incomplete_report(s->dir_fd, s->tree_fd, s->lock_fd) == 0 &&
      (n = pread(s->lock_fd, report, sizeof report - 1, 0)) > 0) {
    report[n] = '\0';
    if (report[n - 1] == '\n')
      report[n - 1] = '\0';
    sstfs_log("%s was written; %s", s->out, report);
  }
  area_unregister(s->mnt);
  /* OUT.lock goes first: sstfs --unmount returns when the area does. */
  area_unlock_out(s->out, s->out_lock_fd);
  s->out_lock_fd = -1;
  /* Move the area out of the way at once (sstfs --unmount takes its
   * disappearance as success), then delete it. */
  char done[PATH_MAX + 32];
  snprintf(done, sizeof done, "%s.done.%ld", s->dir, (long)getpid());
  const char *victim = rename(s->dir, done) == 0 ? done : s->dir;
  if (area_remove_tree(victim) != 0)
    sstfs_log("%s: committed, but the staging area %s could not be removed",
              s->out, victim);
}

/* Opens the staging area for OUT: a new one, or an existing one to resume
 * (after the checks and the question). 0, or 1 with a message. */
int area_take(stage *s) {
  struct stat st;
  int exists = stat(s->dir, &st) == 0;
  if (exists && check_target(s) != 0)
    return 1;
  char holder[PATH_MAX];
  int rc =
      area_lock_out(s->out, s->dir, &s->out_lock_fd, holder, sizeof holder);
  if (rc == EBUSY) {
    fprintf(stderr, "sstfs: %s is being staged by another sstfs%s%s%s\n",
            s->out, holder[0] ? " (staging area " : "", holder,
            holder[0] ? ")" : "");
    return 1;
  }
  if (rc) {
    fprintf(stderr, "sstfs: %s.lock: %s\n", s->out, strerror(rc));
    return 1;
  }
  if (!exists) {
    if (access(s->out, F_OK) == 0 && !s->conf.overwrite) {
      fprintf(stderr, "sstfs: %s exists; use -o overwrite to replace it\n",
              s->out);
      return 1;
    }
  } else {
    if ((rc = lock_area(s)) != 0) {
      fprintf(stderr, "sstfs: staging area %s: %s\n", s->dir,
              rc == EBUSY ? "in use by a running sstfs" : strerror(rc));
      return 1;
    }
    say_last_error(s);
    if (check_resume(s) != 0)
      return 1;
  }
  if ((rc = open_area(s, !exists)) == 0 && !exists)
    rc = lock_area(s);
  if (rc) {
    fprintf(stderr, "sstfs: staging area %s: %s\n", s->dir,
            rc == EBUSY ? "in use by a running sstfs" : strerror(rc));
    return 1;
  }
  if (!exists)
    return 0;
  if (!s->conf.overwrite && area_out_unchanged(s->dir_fd, s->out) == EEXIST) {
    fprintf(stderr,
            "sstfs: %s appeared (or was replaced) after this staging area "
            "was made; resume with -o resume,overwrite to replace it\n",
            s->out);
    return 1;
  }
  size_t incomplete;
  if ((rc = area_sweep(s->dir, s->dir_fd, s->conf.keep_incomplete,
                       &incomplete)) != 0) {
    fprintf(stderr, "sstfs: staging area %s: files open for writing: %s\n",
            s->dir, strerror(rc));
    return 1;
  }
  unlinkat(s->dir_fd, "error", 0);
  return 0;
}
