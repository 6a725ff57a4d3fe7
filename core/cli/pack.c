/* pack.c — sst pack: a table from a directory tree, one key for each
 * regular file, directory and symlink, with their metadata (or with
 * --no-metadata, one plain key for each regular file). The library's tree
 * scan (sst_scan_tree and sst_scan_write_all, core/treewrite.c) walks
 * DIR, sorts the entries by key and streams each into the table; this
 * file opens DIR and the writer, turns the scan's problems and progress
 * into messages, and sums up. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sstpath.h"

typedef struct packer {
  const command *c;
  const char *dir, *output;
  unsigned path_flags;
  int strict, quiet, no_metadata;
  sst_writer_options writer;
  int output_exists; /* TABLE exists: leave it out if it lies in DIR */
  dev_t output_dev;
  ino_t output_ino;

  int reported; /* a problem was told: the failure needs no other word */
  uint64_t skipped;
  size_t files_packed, dirs_packed, links_packed;
  uint64_t bytes_packed;
  progress_line line;
  double write_started;
} packer;

/* What the scan found wrong at a path: a special file is skipped with a
 * word (refused with --strict), a pair of names with one key is told and
 * the scan goes on to the next pair, anything else stops the pack. */
static int pack_problem(void *ctx, const sst_scan_problem *pr) {
  packer *p = ctx;
  size_t len = strlen(pr->path);
  if (pr->kind == SST_SCAN_SPECIAL && !p->strict) {
    progress_hide();
    fprintf(stderr, "sst %s: skipping %s ", p->c->name, pr->what);
    put_path(p->dir, pr->path, len);
    fputc('\n', stderr);
    p->skipped++;
    return 0;
  }
  p->reported = 1;
  if (pr->kind == SST_SCAN_SPECIAL)
    return path_error(p->c, p->dir, pr->path, len, "%s (--strict)",
                      pr->message);
  if (pr->kind == SST_SCAN_DUPLICATE) {
    char shown[SST_KEY_RENDER_SIZE];
    sst_key_render(pr->key, pr->key_len, shown, sizeof shown);
    progress_hide();
    fprintf(stderr, "sst %s: ", p->c->name);
    put_path(p->dir, pr->path, len);
    fputs(" and ", stderr);
    put_path(p->dir, pr->other, strlen(pr->other));
    fprintf(stderr, " give the same key '%s'%s\n", shown,
            !p->no_metadata && pr->key_len > 0 &&
                    pr->key[pr->key_len - 1] == '/'
                ? " (a directory's entry and a file's key; with "
                  "--no-metadata directories get no entries)"
                : "");
    return 0; /* every pair is told; the scan then fails */
  }
  if (pr->kind == SST_SCAN_BADNAME && pr->code == SST_EINVAL &&
      (p->path_flags & SST_PATH_FLAT))
    return path_error(p->c, p->dir, pr->path, len,
                      "is in a subdirectory: with --flat, files must lie "
                      "directly in %s (or in %%+ piece directories)",
                      p->dir);
  return path_error(p->c, p->dir, pr->path, len, "%s", pr->message);
}

/* Draws the progress line now and then; stops the work on an interrupt. */
static int pack_progress(void *ctx, const sst_scan_progress *pr) {
  packer *p = ctx;
  if (interrupted)
    return EXIT_FAIL;
  if (!progress_due(&p->line))
    return 0;
  if (!pr->writing) {
    progress_draw(&p->line, "sst pack: scanning, %" PRIu64 " files, %.1f MB",
                  pr->files, (double)pr->bytes / 1e6);
    return 0;
  }
  double secs = p->line.last - p->write_started;
  double mb = (double)pr->bytes / 1e6;
  progress_draw(&p->line,
                "sst pack: %" PRIu64 "/%" PRIu64
                " files, %.1f/%.1f MB, %.1f MB/s",
                pr->files, pr->total_files, mb, (double)pr->total_bytes / 1e6,
                secs > 0 ? mb / secs : 0.0);
  return 0;
}

/* After the scan (writing 0) or the write failed with rc: says why,
 * unless a problem was already told or the pack was interrupted. */
static int pack_failed(packer *p, int rc, int writing) {
  if (p->reported || (interrupted && rc != ENOMEM))
    return EXIT_FAIL;
  progress_hide();
  if (rc == ENOMEM)
    fprintf(stderr, "sst %s: out of memory\n", p->c->name);
  else if (writing)
    fprintf(stderr, "sst %s: writing %s: %s\n", p->c->name, p->output,
            sst_strerror(rc));
  else
    path_error(p->c, p->dir, "", 0, "%s", sst_strerror(rc));
  return EXIT_FAIL;
}

/* Writes the scanned files to the table. Until sst_writer_finish()
 * succeeds, TABLE is untouched; freeing an unfinished writer removes its
 * temporary file. */
static int pack_output(packer *p, sst_scan *s) {
  sst_writer *w;
  sst_error err = {0};
  int rc = sst_writer_open(p->output, &p->writer, &w, &err);
  if (rc != 0) {
    print_failure(p->c, p->output, rc, &err);
    return EXIT_FAIL;
  }
  int status = EXIT_OK;
  if ((rc = sst_scan_write_all(s, w)) != 0)
    status = pack_failed(p, rc, 1);
  else if (interrupted)
    status = EXIT_FAIL;
  if (status == EXIT_OK) {
    for (size_t i = 0; i < sst_scan_count(s); i++) {
      unsigned type = sst_scan_get(s, i)->type;
      if (type == SST_TYPE_DIR)
        p->dirs_packed++;
      else if (type == SST_TYPE_SYMLINK)
        p->links_packed++;
      else
        p->files_packed++;
    }
    progress_draw(&p->line, "sst pack: %zu entries, finishing %s",
                  sst_scan_count(s), p->output);
    if ((rc = sst_writer_finish(w, &err)) != 0) {
      print_failure(p->c, p->output, rc, &err);
      status = EXIT_FAIL;
    }
    p->bytes_packed = sst_writer_value_bytes(w);
  }
  sst_writer_free(w);
  return status;
}

/* Notes TABLE's identity, so that the scan leaves it out if it lies in
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
  int root = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return path_error(p->c, p->dir, "", 0, "%s", strerror(errno));
  sst_scan_options opts;
  sst_scan_options_init(&opts);
  opts.path_flags = p->path_flags;
  opts.on_problem = pack_problem;
  opts.on_progress = pack_progress;
  opts.ctx = p;
  opts.exclude = p->output_exists;
  opts.exclude_dev = (uint64_t)p->output_dev;
  opts.exclude_ino = (uint64_t)p->output_ino;
  opts.metadata = !p->no_metadata;
  sst_scan *s = NULL;
  int rc = sst_scan_tree(root, &opts, &s);
  close(root); /* the scan keeps its own descriptor */
  p->write_started = now_seconds();
  int status = rc != 0 ? pack_failed(p, rc, 0) : pack_output(p, s);
  sst_scan_free(s);
  progress_clear(&p->line);
  if (status == EXIT_OK && !p->quiet) {
    char skipped[64] = "", others[96] = "";
    if (p->skipped > 0)
      snprintf(skipped, sizeof skipped, ", %" PRIu64 " %s skipped", p->skipped,
               p->skipped == 1 ? "entry" : "entries");
    if (!p->no_metadata)
      snprintf(others, sizeof others, ", %zu %s, %zu %s", p->dirs_packed,
               p->dirs_packed == 1 ? "directory" : "directories",
               p->links_packed, p->links_packed == 1 ? "symlink" : "symlinks");
    fprintf(stderr, "sst %s: %zu %s%s packed%s, %.1f MB in %.2f s -> %s\n",
            p->c->name, p->files_packed,
            p->files_packed == 1 ? "file" : "files", others, skipped,
            (double)p->bytes_packed / 1e6, now_seconds() - p->line.started,
            p->output);
  }
  return status;
}

/* The options after --compress and the rest of pack's help. */
#define PACK_HELP_TAIL                                                         \
  "    --block-keys N\n"                                                       \
  "        Keys per index entry: a key block holds at most N keys\n"           \
  "        (default 64).\n"                                                    \
  "    --no-filter\n"                                                          \
  "        Write no Bloom filter.\n"                                           \
  "    -q, --quiet\n"                                                          \
  "        Show no progress line and no summary. Skipped entries and\n"        \
  "        errors are still reported.\n"                                       \
  "    -h, --help\n"                                                           \
  "        Show this help.\n"                                                  \
  "\n"                                                                         \
  "EXIT STATUS\n"                                                              \
  "    0 if the table was written, 1 on an error (named with its\n"            \
  "    path), 2 on a usage error.\n"                                           \
  "\n"                                                                         \
  "EXAMPLES\n"                                                                 \
  "    sst pack site/ site.sstable\n"                                          \
  "    sst pack --strict -q photos photos.sstable\n"                           \
  "    sst pack --no-metadata data/ data.sstable   # plain keys\n"             \
  "    sst pack src/ t.sstable && sst unpack t.sstable copy/ &&\n"             \
  "        rsync -a -H -X -n -i -c src/ copy/      # prints nothing\n"

const command_help cmd_pack_help = {
    .synopsis =
        "    sst pack [--no-metadata] [--flat] [--strict] [--block-keys N]\n"
        "             [--no-filter] [--compress C] [--dedup | --no-dedup]\n"
        "             [--value-block SIZE] [-j N] [-q] DIR TABLE",
    .text =
        "DESCRIPTION\n"
        "    Walks DIR and writes TABLE, a table that holds the tree: one\n"
        "    key for each regular file, directory and symbolic link in it,\n"
        "    with its metadata. A file's key is its path relative to DIR,\n"
        "    names joined with /, and its value the file's content. A\n"
        "    directory's key is its path followed by / (DIR itself is /),\n"
        "    with an empty value, so empty directories are kept. A\n"
        "    symbolic link's value is its target; links are never\n"
        "    followed (DIR itself may be one). sst unpack writes the tree\n"
        "    back; the sstfs mount shows it; sst ls lists it.\n"
        "\n"
        "    Each entry keeps its type, permission bits (setuid, setgid and\n"
        "    sticky included), numeric owner and group, modification time\n"
        "    to the nanosecond, and extended attributes (every name\n"
        "    listxattr gives on a file or directory: user.*, and as root\n"
        "    trusted.* and security.* too). Regular files with several\n"
        "    names in DIR (hard links) are stored once: every name carries\n"
        "    the same link group and shares one copy of the content. Access\n"
        "    and change times are not kept. FIFOs, sockets and devices are\n"
        "    reported on stderr as skipped, or refused with --strict.\n"
        "\n"
        "    DIR is walked first and its entries sorted by key; then each\n"
        "    file is read in 1 MiB chunks, so a file of any size can be\n"
        "    packed. Every name is opened from its parent directory, so a\n"
        "    tree of any depth is packed, whatever the length of its paths\n"
        "    (no PATH_MAX limit).\n"
        "\n"
        "    Names that are escapes (starting with %=, %! or %+, as written\n"
        "    by sst unpack and shown by the sstfs mount) are decoded into the\n"
        "    key bytes they stand for; any other name is taken as it is.\n"
        "    Unpacking a table and packing the tree again therefore gives\n"
        "    the same keys and values. Two names that give the same key (a\n"
        "    and %!a, say, or a directory a and a file a/%=, both a/) are an\n"
        "    error naming both. The %+ directories that hold pieces of a\n"
        "    long name are not directories of the table and get no entry.\n"
        "    If TABLE lies inside DIR, it is left out.\n"
        "\n"
        "    TABLE is written under a temporary name and renamed into place\n"
        "    once complete: after any error or an interrupt, TABLE is left\n"
        "    as it was. The temporary file, TABLE.tmp. and 8 hex digits, is\n"
        "    locked (flock) while it is written; one left by a pack that was\n"
        "    killed (SIGKILL, a crash) is unlocked, and the next pack, build\n"
        "    or merge of TABLE removes it.\n"
        "\n"
        "    Errors, each named with its path: an unreadable file or\n"
        "    directory, or unreadable extended attributes; two names with\n"
        "    one key; a file whose size is not what the walk saw (\"changed\n"
        "    since it was scanned (from N bytes to M)\"); a file that grows\n"
        "    or shrinks while it is read; a file rewritten in place while it\n"
        "    is read, its size or modification time different afterwards\n"
        "    (\"changed while it was read\"); an entry replaced by another\n"
        "    kind, or a hard link by another file, between the walk and\n"
        "    the write.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: files, directories and symlinks\n"
        "    packed, entries skipped, megabytes, seconds and the table's\n"
        "    name.\n"
        "\n"
        "OPTIONS\n"
        "    --no-metadata\n"
        "        Write a plain key/value table, as sst pack did before\n"
        "        tables held metadata: one key for each regular file, its\n"
        "        content as the value, nothing else. Directories exist only\n"
        "        as prefixes of their files' keys (empty ones are lost);\n"
        "        symbolic links are skipped like FIFOs (refused with\n"
        "        --strict); hard links are separate copies. Such a table can\n"
        "        be read by any version of sstfs.\n"
        "    --flat\n"
        "        Write a flat table: each file directly in DIR is one key,\n"
        "        and a / in a key is written %2F in an escaped name (a/b is\n"
        "        the file %=a%2Fb), as sst unpack --flat and sstfs -o flat\n"
        "        show them. Files in subdirectories are an error, except in\n"
        "        the %+ directories that hold pieces of a long key. No\n"
        "        directory gets an entry, not even DIR.\n"
        "    --strict\n"
        "        Fail on a device, FIFO or socket (and with --no-metadata,\n"
        "        a symbolic link) instead of skipping it.\n" COMPRESS_HELP(
            "zstd (level 10): with 256K blocks, a tree of source files\n"
            "        packs smaller than mksquashfs -comp zstd makes it, and\n"
            "        several times as fast (docs/BENCHMARKS.md)",
            "10", "--dedup", "256K") PACK_HELP_TAIL,
};

enum {
  OPT_BLOCK_KEYS = OPT_LONG_ONLY,
  OPT_NO_FILTER,
  OPT_FLAT,
  OPT_STRICT,
  OPT_NO_METADATA,
  OPT_COMPRESS,
  OPT_VALUE_BLOCK,
  OPT_DEDUP,
  OPT_NO_DEDUP,
};

int cmd_pack(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"flat", no_argument, NULL, OPT_FLAT},
      {"strict", no_argument, NULL, OPT_STRICT},
      {"no-metadata", no_argument, NULL, OPT_NO_METADATA},
      {"block-keys", required_argument, NULL, OPT_BLOCK_KEYS},
      {"no-filter", no_argument, NULL, OPT_NO_FILTER},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"value-block", required_argument, NULL, OPT_VALUE_BLOCK},
      {"dedup", no_argument, NULL, OPT_DEDUP},
      {"no-dedup", no_argument, NULL, OPT_NO_DEDUP},
      {"jobs", required_argument, NULL, 'j'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  packer p = {.c = c};
  sst_tree_writer_options_init(&p.writer);
  p.writer.threads = default_jobs();
  int opt;
  while ((opt = getopt_long(argc, argv, ":j:qh", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_FLAT:
      p.path_flags |= SST_PATH_FLAT;
      break;
    case OPT_STRICT:
      p.strict = 1;
      break;
    case OPT_NO_METADATA:
      p.no_metadata = 1;
      break;
    case OPT_BLOCK_KEYS:
      if (parse_count(c, "--block-keys", optarg, &p.writer.block_keys) != 0)
        return EXIT_USAGE;
      break;
    case OPT_NO_FILTER:
      p.writer.filter_bits_per_key = 0;
      break;
    case OPT_COMPRESS:
      if (parse_compress(c, optarg, SST_TREE_ZSTD_LEVEL, &p.writer) != 0)
        return EXIT_USAGE;
      break;
    case OPT_VALUE_BLOCK:
      if (parse_value_block(c, optarg, &p.writer) != 0)
        return EXIT_USAGE;
      break;
    case OPT_DEDUP:
      p.writer.dedup = 1;
      break;
    case OPT_NO_DEDUP:
      p.writer.dedup = 0;
      break;
    case 'j':
      if (parse_jobs(c, optarg, &p.writer) != 0)
        return EXIT_USAGE;
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
  return finish_status(c, pack_run(&p));
}
