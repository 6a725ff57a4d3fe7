/* pack.c — sst pack: a table from a directory tree, one key for each
 * regular file. The tree is walked first, the files sorted by key, then
 * each is streamed into the table. */
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

/* A regular file found by the walk. key and path share one allocation. */
typedef struct pack_file {
  uint8_t *key;
  size_t key_len;
  const char *path; /* relative to DIR */
} pack_file;

typedef struct packer {
  const command *c;
  const char *dir, *output;
  unsigned path_flags;
  int strict, quiet;
  sst_writer_options writer;
  int output_exists; /* TABLE exists: leave it out if it lies in DIR */
  dev_t output_dev;
  ino_t output_ino;

  pack_file *files;
  size_t n_files, cap_files;
  uint64_t total_bytes, skipped;
  char *rel; /* path of the entry being walked, relative to DIR */
  size_t rel_len, rel_cap;
  uint8_t *key; /* SST_KEY_MAX bytes of scratch */

  progress_line line;
  double write_started;
  uint64_t files_done, bytes_done;
} packer;

static void packer_free(packer *p) {
  for (size_t i = 0; i < p->n_files; i++)
    free(p->files[i].key);
  free(p->files);
  free(p->rel);
  free(p->key);
}

static int pack_errno(packer *p, int code) {
  return path_error(p->c, p->dir, p->rel, p->rel_len, "%s", strerror(code));
}

static int pack_oom(packer *p) {
  progress_hide();
  fprintf(stderr, "sst %s: out of memory\n", p->c->name);
  return EXIT_FAIL;
}

/* Sets rel to the entry `name` of the directory at rel[0..base). */
static int pack_rel_set(packer *p, size_t base, const char *name) {
  size_t n = strlen(name), len = base + (base > 0) + n;
  if (len + 1 > p->rel_cap) {
    size_t cap = p->rel_cap ? p->rel_cap : 256;
    while (cap < len + 1)
      cap *= 2;
    char *r = realloc(p->rel, cap);
    if (r == NULL)
      return ENOMEM;
    p->rel = r;
    p->rel_cap = cap;
  }
  if (base > 0)
    p->rel[base] = '/';
  memcpy(p->rel + base + (base > 0), name, n + 1);
  p->rel_len = len;
  return 0;
}

static const char *special_kind(mode_t mode) {
  if (S_ISLNK(mode))
    return "symlink";
  if (S_ISFIFO(mode))
    return "FIFO";
  if (S_ISSOCK(mode))
    return "socket";
  if (S_ISCHR(mode))
    return "character device";
  if (S_ISBLK(mode))
    return "block device";
  return "special file";
}

static int pack_special(packer *p, mode_t mode) {
  if (p->strict)
    return path_error(p->c, p->dir, p->rel, p->rel_len,
                      "is a %s, not a regular file (--strict)",
                      special_kind(mode));
  progress_hide();
  fprintf(stderr, "sst %s: skipping %s ", p->c->name, special_kind(mode));
  put_path(p->dir, p->rel, p->rel_len);
  fputc('\n', stderr);
  p->skipped++;
  return EXIT_OK;
}

static void pack_scan_tick(packer *p) {
  if (progress_due(&p->line))
    progress_draw(&p->line, "sst pack: scanning, %zu files, %.1f MB",
                  p->n_files, (double)p->total_bytes / 1e6);
}

/* Records the regular file at rel with its key. */
static int pack_add(packer *p, const struct stat *st) {
  size_t key_len;
  int rc = sst_path_to_key(p->rel, p->path_flags, p->key, &key_len);
  if (rc == SST_EINVAL && (p->path_flags & SST_PATH_FLAT))
    return path_error(p->c, p->dir, p->rel, p->rel_len,
                      "is in a subdirectory: with --flat, files must lie "
                      "directly in %s (or in %%+ piece directories)",
                      p->dir);
  if (rc == SST_EKEYSIZE)
    return path_error(p->c, p->dir, p->rel, p->rel_len,
                      "gives an empty key or one longer than %u bytes",
                      SST_KEY_MAX);
  if (rc != 0)
    return path_error(p->c, p->dir, p->rel, p->rel_len,
                      "cannot be made a key: %s", sst_strerror(rc));
  if (p->n_files == p->cap_files) {
    size_t cap = p->cap_files ? p->cap_files * 2 : 1024;
    pack_file *f = realloc(p->files, cap * sizeof *f);
    if (f == NULL)
      return pack_oom(p);
    p->files = f;
    p->cap_files = cap;
  }
  uint8_t *mem = malloc(key_len + p->rel_len + 1);
  if (mem == NULL)
    return pack_oom(p);
  memcpy(mem, p->key, key_len);
  memcpy(mem + key_len, p->rel, p->rel_len + 1);
  p->files[p->n_files++] = (pack_file){
      .key = mem, .key_len = key_len, .path = (const char *)mem + key_len};
  p->total_bytes += (uint64_t)st->st_size;
  pack_scan_tick(p);
  return EXIT_OK;
}

/* One directory of the walk. Its names are read in full when it is
 * entered and its descriptor closed, so the walk holds no descriptor per
 * level and no C stack frame per level: a tree of any depth is walked. */
typedef struct walk_dir {
  char *names; /* NUL-terminated names, one after another */
  size_t size, cap;
  size_t next; /* offset of the next name to visit */
  size_t base; /* length of the directory's path in rel */
} walk_dir;

static int walk_dir_add(walk_dir *wd, const char *name) {
  size_t n = strlen(name) + 1;
  if (wd->size + n > wd->cap) {
    size_t cap = wd->cap ? wd->cap : 1024;
    while (cap < wd->size + n)
      cap *= 2;
    char *names = realloc(wd->names, cap);
    if (names == NULL)
      return ENOMEM;
    wd->names = names;
    wd->cap = cap;
  }
  memcpy(wd->names + wd->size, name, n);
  wd->size += n;
  return 0;
}

/* Reads the names in directory `name` of parent (the path in rel) into wd;
 * entries come in readdir order and are sorted by key afterwards. */
static int pack_read_dir(packer *p, int parent, const char *name,
                         walk_dir *wd) {
  memset(wd, 0, sizeof *wd);
  wd->base = p->rel_len;
  int fd = openat(parent, name, DIR_OPEN_FLAGS);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return pack_errno(p, e);
  }
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      rc = errno;
      break;
    }
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
        (rc = walk_dir_add(wd, de->d_name)) != 0)
      break;
  }
  closedir(d);
  if (rc != 0) {
    free(wd->names);
    wd->names = NULL;
    return rc == ENOMEM ? pack_oom(p) : pack_errno(p, rc);
  }
  return EXIT_OK;
}

/* Looks at the entry in rel, called name in directory parent; a directory
 * is pushed onto the walk. */
static int pack_visit(packer *p, int parent, const char *name, walk_dir **stack,
                      size_t *depth, size_t *cap) {
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return pack_errno(p, errno);
  if (S_ISDIR(st.st_mode)) {
    if (*depth == *cap) {
      size_t n = *cap ? *cap * 2 : 64;
      walk_dir *s = realloc(*stack, n * sizeof *s);
      if (s == NULL)
        return pack_oom(p);
      *stack = s;
      *cap = n;
    }
    int status = pack_read_dir(p, parent, name, &(*stack)[*depth]);
    if (status == EXIT_OK)
      (*depth)++;
    return status;
  }
  if (!S_ISREG(st.st_mode))
    return pack_special(p, st.st_mode);
  if (p->output_exists && st.st_dev == p->output_dev &&
      st.st_ino == p->output_ino)
    return EXIT_OK; /* the table being replaced */
  return pack_add(p, &st);
}

/* Walks DIR, open as root, depth first, recording every regular file. */
static int pack_walk(packer *p, int root) {
  walk_dir *stack = NULL;
  size_t depth = 0, cap = 0;
  dir_stack ds;
  dir_stack_init(&ds, root, 0);
  int status = pack_visit(p, root, ".", &stack, &depth, &cap);
  while (status == EXIT_OK && depth > 0 && !interrupted) {
    walk_dir *wd = &stack[depth - 1];
    if (wd->next == wd->size) {
      free(wd->names);
      depth--;
      continue;
    }
    const char *name = wd->names + wd->next;
    wd->next += strlen(name) + 1;
    if (pack_rel_set(p, wd->base, name) != 0) {
      status = pack_oom(p);
      break;
    }
    int dfd;
    size_t failed;
    int rc = dir_stack_enter(&ds, p->rel, wd->base, &dfd, &failed);
    if (rc != 0)
      status = path_error(p->c, p->dir, p->rel, failed, "%s", strerror(rc));
    else
      status = pack_visit(p, dfd, name, &stack, &depth, &cap);
  }
  if (depth > 0 && status == EXIT_OK) /* interrupted */
    status = EXIT_FAIL;
  while (depth > 0)
    free(stack[--depth].names);
  free(stack);
  dir_stack_free(&ds);
  return status;
}

static int pack_file_cmp(const void *a, const void *b) {
  const pack_file *x = a, *y = b;
  int c = sst_key_cmp(x->key, x->key_len, y->key, y->key_len);
  return c != 0 ? c : strcmp(x->path, y->path);
}

/* Sorts the files by key and reports every pair of names that give the
 * same key (a name and its escaped spelling, such as a and %!a). */
static int pack_sort(packer *p) {
  if (p->n_files > 1)
    qsort(p->files, p->n_files, sizeof *p->files, pack_file_cmp);
  int status = EXIT_OK;
  for (size_t i = 1; i < p->n_files; i++) {
    const pack_file *a = &p->files[i - 1], *b = &p->files[i];
    if (sst_key_cmp(a->key, a->key_len, b->key, b->key_len) != 0)
      continue;
    char shown[SST_KEY_RENDER_SIZE];
    sst_key_render(a->key, a->key_len, shown, sizeof shown);
    progress_hide();
    fprintf(stderr, "sst %s: ", p->c->name);
    put_path(p->dir, a->path, strlen(a->path));
    fputs(" and ", stderr);
    put_path(p->dir, b->path, strlen(b->path));
    fprintf(stderr, " give the same key '%s'\n", shown);
    status = EXIT_FAIL;
  }
  return status;
}

static void pack_write_tick(packer *p) {
  if (!progress_due(&p->line))
    return;
  double secs = p->line.last - p->write_started;
  double mb = (double)p->bytes_done / 1e6;
  progress_draw(&p->line,
                "sst pack: %" PRIu64 "/%zu files, %.1f/%.1f MB, %.1f MB/s",
                p->files_done, p->n_files, mb, (double)p->total_bytes / 1e6,
                secs > 0 ? mb / secs : 0.0);
}

static int pack_writer_error(packer *p, int rc) {
  progress_hide();
  fprintf(stderr, "sst %s: writing %s: %s\n", p->c->name, p->output,
          sst_strerror(rc));
  return EXIT_FAIL;
}

/* Streams the content of an open file into the table as f's value. */
static int pack_stream(packer *p, const pack_file *f, int fd, uint8_t *buf,
                       sst_writer *w) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return path_error(p->c, p->dir, f->path, strlen(f->path), "%s",
                      strerror(errno));
  if (!S_ISREG(st.st_mode))
    return path_error(p->c, p->dir, f->path, strlen(f->path),
                      "is no longer a regular file");
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  int rc = sst_writer_begin_value(w, f->key, f->key_len);
  if (rc != 0)
    return pack_writer_error(p, rc);
  uint64_t expected = (uint64_t)st.st_size, got = 0;
  while (!interrupted) {
    ssize_t n = read(fd, buf, COPY_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return path_error(p->c, p->dir, f->path, strlen(f->path), "%s",
                        strerror(errno));
    if (n == 0)
      break;
    got += (uint64_t)n;
    if (got > expected) /* growing: stop rather than read a log forever */
      break;
    if ((rc = sst_writer_append_value(w, buf, (size_t)n)) != 0)
      return pack_writer_error(p, rc);
    p->bytes_done += (uint64_t)n;
    pack_write_tick(p);
  }
  if (interrupted)
    return EXIT_FAIL;
  if (got > expected)
    return path_error(p->c, p->dir, f->path, strlen(f->path),
                      "grew while it was read (from %" PRIu64 " bytes)",
                      expected);
  if (got < expected)
    return path_error(p->c, p->dir, f->path, strlen(f->path),
                      "shrank while it was read (from %" PRIu64
                      " bytes to %" PRIu64 ")",
                      expected, got);
  if ((rc = sst_writer_end_value(w)) != 0)
    return pack_writer_error(p, rc);
  return EXIT_OK;
}

/* Opens each file again, in key order, and streams it into the table. */
static int pack_write(packer *p, int root, sst_writer *w) {
  uint8_t *buf = malloc(COPY_CHUNK);
  if (buf == NULL)
    return pack_oom(p);
  dir_stack ds;
  dir_stack_init(&ds, root, 0);
  p->write_started = now_seconds();
  int status = EXIT_OK;
  for (size_t i = 0; i < p->n_files && status == EXIT_OK && !interrupted; i++) {
    const pack_file *f = &p->files[i];
    int dfd;
    const char *name;
    status = dir_stack_parent(p->c, &ds, p->dir, f->path, &dfd, &name);
    if (status != EXIT_OK)
      break;
    /* O_NONBLOCK: a FIFO put in the file's place must not hang us. */
    int fd = openat(dfd, name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      status = path_error(p->c, p->dir, f->path, strlen(f->path), "%s",
                          strerror(errno));
      break;
    }
    status = pack_stream(p, f, fd, buf, w);
    close(fd);
    p->files_done++;
  }
  if (status == EXIT_OK && p->files_done < p->n_files) /* interrupted */
    status = EXIT_FAIL;
  dir_stack_free(&ds);
  free(buf);
  return status;
}

/* Writes the sorted files to the table. Until sst_writer_finish()
 * succeeds, TABLE is untouched; freeing an unfinished writer removes its
 * temporary file. */
static int pack_output(packer *p, int root) {
  sst_writer *w;
  sst_error err = {0};
  int rc = sst_writer_open(p->output, &p->writer, &w, &err);
  if (rc != 0) {
    print_failure(p->c, p->output, rc, &err);
    return EXIT_FAIL;
  }
  int status = pack_write(p, root, w);
  if (interrupted)
    status = EXIT_FAIL;
  if (status == EXIT_OK) {
    progress_draw(&p->line, "sst pack: %zu files, finishing %s", p->n_files,
                  p->output);
    if ((rc = sst_writer_finish(w, &err)) != 0) {
      print_failure(p->c, p->output, rc, &err);
      status = EXIT_FAIL;
    }
  }
  sst_writer_free(w);
  return status;
}

/* Notes TABLE's identity, so that the walk leaves it out if it lies in
 * DIR, and refuses a TABLE that is a directory before any work. */
static int pack_check_output(packer *p) {
  struct stat st;
  if (stat(p->output, &st) != 0)
    return errno == ENOENT
               ? EXIT_OK
               : path_error(p->c, p->output, "", 0, "%s", strerror(errno));
  if (S_ISDIR(st.st_mode))
    return path_error(p->c, p->output, "", 0, "is a directory");
  p->output_exists = 1;
  p->output_dev = st.st_dev;
  p->output_ino = st.st_ino;
  return EXIT_OK;
}

static int pack_run(packer *p) {
  progress_start(&p->line, !p->quiet);
  if (pack_check_output(p) != EXIT_OK)
    return EXIT_FAIL;
  if ((p->key = malloc(SST_KEY_MAX)) == NULL)
    return pack_oom(p);
  int root = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return pack_errno(p, errno);
  int status = pack_walk(p, root);
  if (status == EXIT_OK)
    status = pack_sort(p);
  if (status == EXIT_OK)
    status = pack_output(p, root);
  close(root);
  progress_clear(&p->line);
  if (status == EXIT_OK && !p->quiet) {
    char skipped[64] = "";
    if (p->skipped > 0)
      snprintf(skipped, sizeof skipped, ", %" PRIu64 " %s skipped", p->skipped,
               p->skipped == 1 ? "entry" : "entries");
    fprintf(stderr, "sst %s: %zu %s packed%s, %.1f MB in %.2f s -> %s\n",
            p->c->name, p->n_files, p->n_files == 1 ? "file" : "files", skipped,
            (double)p->bytes_done / 1e6, now_seconds() - p->line.started,
            p->output);
  }
  return status;
}

const command_help cmd_pack_help = {
    .synopsis =
        "    sst pack [--flat] [--strict] [--block-keys N] [--no-filter] [-q]\n"
        "             DIR TABLE",
    .text =
        "DESCRIPTION\n"
        "    Walks DIR and writes TABLE with one key for each regular file\n"
        "    in it: the key is the file's path relative to DIR, names joined\n"
        "    with /, and the value is the file's content. Files are read in\n"
        "    1 MiB chunks, so a file of any size can be packed.\n"
        "\n"
        "    Names that are escapes (starting with %=, %! or %+, as written\n"
        "    by sst unpack and shown by the sstfs mount) are decoded into the\n"
        "    key bytes they stand for; any other name is taken as it is.\n"
        "    Unpacking a table and packing the tree again therefore gives a\n"
        "    byte-identical table. Two names that give the same key (a and\n"
        "    %!a, say) are an error naming both.\n"
        "\n"
        "    Only names and contents are kept: not permissions, owners,\n"
        "    times or extended attributes, and not empty directories (a\n"
        "    table holds keys, and a directory exists only as the prefix of\n"
        "    its files' keys). Symbolic links are not followed (DIR itself\n"
        "    may be one); they, devices, FIFOs and sockets are reported on\n"
        "    stderr as skipped, or refused with --strict. If TABLE lies\n"
        "    inside DIR, it is left out.\n"
        "\n"
        "    TABLE is written under a temporary name and renamed into place\n"
        "    once complete: after any error (an unreadable file or\n"
        "    directory, a file that changes size while it is read, two\n"
        "    names with one key) or an interrupt, TABLE is left as it was.\n"
        "    The temporary file, TABLE.tmp. and 8 hex digits, is locked\n"
        "    (flock) while it is written; one left by a pack that was\n"
        "    killed (SIGKILL, a crash) is unlocked, and the next pack, build\n"
        "    or merge of TABLE removes it.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: files packed, entries skipped,\n"
        "    megabytes, seconds and the table's name.\n"
        "\n"
        "OPTIONS\n"
        "    --flat\n"
        "        Write a flat table: each file directly in DIR is one key,\n"
        "        and a / in a key is written %2F in an escaped name (a/b is\n"
        "        the file %=a%2Fb), as sst unpack --flat and sstfs -o flat\n"
        "        show them. Files in subdirectories are an error, except in\n"
        "        the %+ directories that hold pieces of a long key.\n"
        "    --strict\n"
        "        Fail on a symbolic link, device, FIFO or socket instead of\n"
        "        skipping it.\n"
        "    --block-keys N\n"
        "        Keys per index entry: a key block holds at most N keys\n"
        "        (default 64).\n"
        "    --no-filter\n"
        "        Write no Bloom filter.\n"
        "    -q, --quiet\n"
        "        Show no progress line and no summary. Skipped entries and\n"
        "        errors are still reported.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if the table was written, 1 on an error (named with its\n"
        "    path), 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst pack site/ site.sstable\n"
        "    sst pack --strict -q photos photos.sstable\n"
        "    sst unpack a.sstable tree && sst pack tree b.sstable &&\n"
        "        cmp a.sstable b.sstable                 # identical\n",
};

enum {
  OPT_BLOCK_KEYS = OPT_LONG_ONLY,
  OPT_NO_FILTER,
  OPT_FLAT,
  OPT_STRICT,
};

int cmd_pack(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"flat", no_argument, NULL, OPT_FLAT},
      {"strict", no_argument, NULL, OPT_STRICT},
      {"block-keys", required_argument, NULL, OPT_BLOCK_KEYS},
      {"no-filter", no_argument, NULL, OPT_NO_FILTER},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  packer p = {.c = c};
  sst_writer_options_init(&p.writer);
  int opt;
  while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_FLAT:
      p.path_flags |= SST_PATH_FLAT;
      break;
    case OPT_STRICT:
      p.strict = 1;
      break;
    case OPT_BLOCK_KEYS:
      if (parse_count(c, "--block-keys", optarg, &p.writer.block_keys) != 0)
        return EXIT_USAGE;
      break;
    case OPT_NO_FILTER:
      p.writer.filter_bits_per_key = 0;
      break;
    case 'q':
      p.quiet = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (argc - optind != 2)
    return usage_error(c, "needs a directory and a table");
  p.dir = argv[optind];
  p.output = argv[optind + 1];
  catch_interrupts();
  int status = pack_run(&p);
  packer_free(&p);
  return finish_status(c, status);
}
