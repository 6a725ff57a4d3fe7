/* unpack.c — sst unpack: a table's keys written out as a directory
 * tree, named as the sstfs mount shows them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dir_stack.h"
#include "sstpath.h"

/* Writes all of p to fd; returns 0 or an errno value. */
static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR && !interrupted)
      continue;
    if (n < 0)
      return errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

typedef struct unpacker {
  const command *c;
  const char *table, *dir;
  unsigned path_flags;
  int quiet;
  const sst_reader *r;
  sst_iter *probe; /* finds keys under key + "/" */
  uint8_t *key;    /* the current key, SST_KEY_MAX + 1 bytes */
  char *path;      /* its path, SST_PATH_MAX + 1 bytes */
  dir_stack ds;
  progress_line line;
  uint64_t files, bytes, tombstones, total_files, total_bytes;
} unpacker;

static int unpack_key_error(const unpacker *u, const sst_entry *e,
                            const char *what, int rc) {
  char shown[SST_KEY_RENDER_SIZE];
  sst_key_render(e->key, e->key_len, shown, sizeof shown);
  progress_hide();
  fprintf(stderr, "sst %s: %s: %s key '%s': %s\n", u->c->name, u->table, what,
          shown, sst_strerror(rc));
  return EXIT_FAIL;
}

static void unpack_tick(unpacker *u) {
  if (!progress_due(&u->line))
    return;
  double secs = u->line.last - u->line.started;
  double mb = (double)u->bytes / 1e6;
  progress_draw(&u->line,
                "sst unpack: %" PRIu64 "/%" PRIu64
                " files, %.1f/%.1f MB, %.1f MB/s",
                u->files, u->total_files, mb, (double)u->total_bytes / 1e6,
                secs > 0 ? mb / secs : 0.0);
}

/* Whether a live key starts with the current key + "/", so that the key's
 * file takes its "%!" name beside the directory. `next` is the entry after
 * the key (NULL at the end): it settles most cases without a seek; only a
 * next key such as key + "-x", which sorts before key + "/", needs one. */
static int unpack_also_dir(unpacker *u, size_t key_len, const sst_entry *next,
                           int *also_dir) {
  *also_dir = 0;
  if ((u->path_flags & SST_PATH_FLAT) || next == NULL ||
      key_len + 1 > SST_KEY_MAX)
    return 0;
  if (next->key_len <= key_len || memcmp(next->key, u->key, key_len) != 0 ||
      next->key[key_len] > '/')
    return 0; /* every key under key + "/" would sort before next */
  if (next->key[key_len] == '/' && !(next->flags & SST_FLAG_TOMBSTONE)) {
    *also_dir = 1;
    return 0;
  }
  u->key[key_len] = '/';
  int rc = sst_iter_prefix(u->probe, u->key, key_len + 1);
  while (rc == 0 && sst_iter_valid(u->probe) &&
         (sst_iter_entry(u->probe)->flags & SST_FLAG_TOMBSTONE))
    rc = sst_iter_next(u->probe);
  if (rc == 0)
    rc = sst_iter_status(u->probe);
  *also_dir = rc == 0 && sst_iter_valid(u->probe);
  return rc;
}

/* Writes one live entry as a file. */
static int unpack_one(unpacker *u, const sst_entry *e, int also_dir) {
  size_t path_len;
  int rc = sst_path_from_key(e->key, e->key_len, u->path_flags, also_dir,
                             u->path, &path_len);
  if (rc != 0)
    return unpack_key_error(u, e, "path of", rc);
  const uint8_t *value;
  if ((rc = sst_reader_value(u->r, e, &value)) != 0)
    return unpack_key_error(u, e, "value of", rc);
  int dfd;
  const char *name;
  if (dir_stack_parent(u->c, &u->ds, u->dir, u->path, &dfd, &name) != 0)
    return EXIT_FAIL;
  int fd = openat(dfd, name,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    char shown[SST_KEY_RENDER_SIZE];
    sst_key_render(e->key, e->key_len, shown, sizeof shown);
    return path_error(u->c, u->dir, u->path, path_len,
                      "exists already: another key has the path of key '%s'",
                      shown);
  }
  if (fd < 0)
    return path_error(u->c, u->dir, u->path, path_len, "%s", strerror(errno));
  uint64_t left = e->value_len;
  while (left > 0 && rc == 0 && !interrupted) {
    size_t n = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
    rc = write_all(fd, value, n);
    value += n;
    left -= n;
    u->bytes += n;
    unpack_tick(u);
  }
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc != 0 || left > 0) { /* leave no partial file behind */
    unlinkat(dfd, name, 0);
    if (interrupted)
      return EXIT_FAIL;
    return path_error(u->c, u->dir, u->path, path_len, "%s", strerror(rc));
  }
  u->files++;
  return EXIT_OK;
}

/* Writes every live key of the table, in key order. */
static int unpack_entries(unpacker *u) {
  sst_iter *it = NULL;
  int rc = sst_iter_new(u->r, &it);
  if (rc == 0)
    rc = sst_iter_new(u->r, &u->probe);
  if (rc == 0)
    rc = sst_iter_seek_first(it);
  int status = EXIT_OK;
  while (rc == 0 && status == EXIT_OK && !interrupted && sst_iter_valid(it)) {
    sst_entry e = *sst_iter_entry(it);
    memcpy(u->key, e.key, e.key_len);
    e.key = u->key;
    if ((rc = sst_iter_next(it)) != 0)
      break;
    if (e.flags & SST_FLAG_TOMBSTONE) {
      u->tombstones++;
      continue;
    }
    int also_dir;
    const sst_entry *next = sst_iter_valid(it) ? sst_iter_entry(it) : NULL;
    if ((rc = unpack_also_dir(u, e.key_len, next, &also_dir)) != 0)
      break;
    status = unpack_one(u, &e, also_dir);
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  if (rc == 0 && u->probe != NULL)
    rc = sst_iter_status(u->probe);
  if (rc != 0 && status == EXIT_OK) {
    progress_hide();
    fprintf(stderr, "sst %s: %s: %s\n", u->c->name, u->table, sst_strerror(rc));
    status = EXIT_FAIL;
  }
  if (status == EXIT_OK && interrupted && sst_iter_valid(it))
    status = EXIT_FAIL;
  sst_iter_free(u->probe);
  u->probe = NULL;
  sst_iter_free(it);
  return status;
}

/* Creates DIR, or checks that it is empty, and opens it as *root. */
static int unpack_open_dir(const unpacker *u, int *root) {
  if (mkdir(u->dir, 0755) != 0 && errno != EEXIST)
    return path_error(u->c, u->dir, "", 0, "%s", strerror(errno));
  int fd = open(u->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return path_error(u->c, u->dir, "", 0, "%s", strerror(errno));
  int list_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR *d = list_fd >= 0 ? fdopendir(list_fd) : NULL;
  if (d == NULL) {
    int e = errno;
    if (list_fd >= 0)
      close(list_fd);
    close(fd);
    return path_error(u->c, u->dir, "", 0, "%s", strerror(e));
  }
  int empty = 1;
  struct dirent *de;
  errno = 0;
  while (empty && (de = readdir(d)) != NULL)
    empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
  int e = errno;
  closedir(d);
  if (e != 0 || !empty) {
    close(fd);
    if (e != 0)
      return path_error(u->c, u->dir, "", 0, "%s", strerror(e));
    return path_error(u->c, u->dir, "", 0,
                      "not empty (sst unpack writes into a new or empty "
                      "directory only)");
  }
  *root = fd;
  return EXIT_OK;
}

static int unpack_run(unpacker *u) {
  progress_start(&u->line, !u->quiet);
  sst_reader *r;
  if (open_table(u->c, u->table, &r) != 0)
    return EXIT_FAIL;
  u->r = r;
  sst_info info;
  sst_reader_info(r, &info);
  u->total_files = info.key_count - info.tombstone_count;
  u->total_bytes = info.value_bytes;
  int root = -1;
  int status = unpack_open_dir(u, &root);
  if (status == EXIT_OK) {
    u->key = malloc(SST_KEY_MAX + 1);
    u->path = malloc(SST_PATH_MAX + 1);
    if (u->key == NULL || u->path == NULL) {
      fprintf(stderr, "sst %s: out of memory\n", u->c->name);
      status = EXIT_FAIL;
    }
  }
  if (status == EXIT_OK) {
    dir_stack_init(&u->ds, root, 1);
    status = unpack_entries(u);
    dir_stack_free(&u->ds);
  }
  if (root >= 0)
    close(root);
  free(u->key);
  free(u->path);
  sst_reader_close(r);
  progress_clear(&u->line);
  if (status == EXIT_OK && !u->quiet) {
    char tombstones[64] = "";
    if (u->tombstones > 0)
      snprintf(tombstones, sizeof tombstones,
               ", %" PRIu64 " deleted %s left out", u->tombstones,
               u->tombstones == 1 ? "key" : "keys");
    fprintf(stderr,
            "sst %s: %" PRIu64 " %s written%s, %.1f MB in %.2f s "
            "-> %s\n",
            u->c->name, u->files, u->files == 1 ? "file" : "files", tombstones,
            (double)u->bytes / 1e6, now_seconds() - u->line.started, u->dir);
  }
  return status;
}

const command_help cmd_unpack_help = {
    .synopsis = "    sst unpack [--flat] [-q] TABLE DIR",
    .text =
        "DESCRIPTION\n"
        "    Writes each key of TABLE, in key order, as a file under DIR\n"
        "    whose content is the key's value. The file's path is the key,\n"
        "    with / separating directories, created as needed.\n"
        "\n"
        "    A key that cannot be a path as it stands gets an escaped name,\n"
        "    the one the sstfs mount shows (docs/PATHS.md). That is a key\n"
        "    with an empty, . or .. component (a/./b is written a/%=./b), a\n"
        "    NUL byte, a component longer than 255 bytes (cut into %+\n"
        "    directories), a component starting with %=, %! or %+, or a key\n"
        "    that other keys continue with / (the file a beside a/b is\n"
        "    written %!a). Other bytes, newlines and invalid UTF-8\n"
        "    included, are kept as they are. sst pack decodes these names,\n"
        "    so packing DIR gives back a byte-identical table.\n"
        "\n"
        "    DIR is created if it does not exist (its parent must); if it\n"
        "    exists it must be empty. Directories get mode 0755 and files\n"
        "    mode 0644, less the umask. Deleted keys (tombstones) are left\n"
        "    out. Each value's checksum is checked before its file is\n"
        "    written: a damaged value stops the unpack with an error naming\n"
        "    its key. After an error or an interrupt, DIR holds the files\n"
        "    completed so far.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: files written, megabytes, seconds and\n"
        "    the directory's name.\n"
        "\n"
        "OPTIONS\n"
        "    --flat\n"
        "        Write every key as a file directly in DIR, a / in a key\n"
        "        escaped as %2F (a/b becomes %=a%2Fb); only a key longer\n"
        "        than one name still takes %+ directories.\n"
        "    -q, --quiet\n"
        "        Show no progress line and no summary.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if every file was written, 1 on an error, 2 on a usage\n"
        "    error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst unpack site.sstable site\n"
        "    sst unpack --flat logs.sstable /tmp/logs\n",
};

enum {
  OPT_FLAT = OPT_LONG_ONLY,
};

int cmd_unpack(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"flat", no_argument, NULL, OPT_FLAT},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  unpacker u = {.c = c};
  int opt;
  while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_FLAT:
      u.path_flags |= SST_PATH_FLAT;
      break;
    case 'q':
      u.quiet = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (argc - optind != 2)
    return usage_error(c, "needs a table and a directory");
  u.table = argv[optind];
  u.dir = argv[optind + 1];
  catch_interrupts();
  return finish_status(c, unpack_run(&u));
}
