/* sst.c — the sst command-line tool: build a table from records, look keys
 * up, scan ranges and prefixes, dump, pack a directory tree into a table
 * and unpack it, show statistics, verify.
 *
 * Each subcommand is a cmd_<name>() that parses its own options with
 * getopt_long and returns the exit status: 0 success, 1 failure, 2 usage.
 * Everything goes through the public API in sstable.h and sstpath.h;
 * internal.h is used for sst_key_render(), so that messages show keys the
 * same way the library does, and sst_key_cmp(), the table's key order.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sstable.h"
#include "sstpath.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct command command;
struct command {
  const char *name;
  int (*run)(const command *c, int argc, char **argv);
  const char *synopsis; /* the SYNOPSIS lines, for usage errors */
  const char *summary;  /* one line, for `sst --help` */
  const char *help;     /* the rest of the page */
};

/* ---- progress line ------------------------------------------------------ */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line on stderr, redrawn in place while a long command runs, shown
 * only when stderr is a terminal. */
typedef struct progress_line {
  int shown;
  double started; /* when the command started */
  double last;    /* when the line was last drawn */
  int width;      /* of the line on screen */
} progress_line;

static void progress_start(progress_line *pl, int wanted) {
  pl->shown = wanted && isatty(STDERR_FILENO);
  pl->started = pl->last = now_seconds(); /* first line after 0.2 s */
  pl->width = 0;
}

/* Whether it is time to redraw: at most five times a second. */
static int progress_due(progress_line *pl) {
  if (!pl->shown)
    return 0;
  double now = now_seconds();
  if (now - pl->last < 0.2)
    return 0;
  pl->last = now;
  return 1;
}

/* The line on screen, if any, so that a message can clear it first. */
static progress_line *progress_on_screen;

__attribute__((format(printf, 2, 3))) static void
progress_draw(progress_line *pl, const char *fmt, ...) {
  if (!pl->shown)
    return;
  char line[200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if (n >= (int)sizeof line)
    n = (int)sizeof line - 1;
  fprintf(stderr, "\r%s%*s", line, pl->width > n ? pl->width - n : 0, "");
  pl->width = n;
  progress_on_screen = pl;
}

static void progress_clear(progress_line *pl) {
  if (pl->width > 0)
    fprintf(stderr, "\r%*s\r", pl->width, "");
  pl->width = 0;
  if (progress_on_screen == pl)
    progress_on_screen = NULL;
}

/* Clears the progress line, if one is shown, before a message; the next
 * tick draws it again below the message. */
static void progress_hide(void) {
  if (progress_on_screen != NULL)
    progress_clear(progress_on_screen);
}

/* ---- messages and usage ------------------------------------------------ */

static void print_help(const command *c, FILE *to) {
  fprintf(to, "NAME\n    sst %s - %s\n\nSYNOPSIS\n%s\n\n%s", c->name,
          c->summary, c->synopsis, c->help);
}

__attribute__((format(printf, 2, 3))) static int
usage_error(const command *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "sst %s: ", c->name);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nUsage:\n%s\nTry 'sst %s --help' for more information.\n",
          c->synopsis, c->name);
  return EXIT_USAGE;
}

/* Explains what getopt_long refused (it is run with opterr = 0 and a
 * leading ':' in the option string, so nothing is printed for us). */
static int bad_option(const command *c, int opt, char **argv) {
  const char *word = argv[optind - 1];
  if (opt == ':')
    return usage_error(c, "option '%s' needs an argument", word);
  if (optopt > 0 && optopt < 128 && strncmp(word, "--", 2) != 0)
    return usage_error(c, "unknown option '-%c'", optopt);
  return usage_error(c, "unknown option '%s'", word);
}

/* Prints a library failure: its message if it left one, else the code. */
static void print_failure(const command *c, const char *context, int rc,
                          const sst_error *err) {
  progress_hide();
  if (err != NULL && err->code == rc && err->msg[0] != '\0')
    fprintf(stderr, "sst %s: %s\n", c->name, err->msg);
  else
    fprintf(stderr, "sst %s: %s: %s\n", c->name, context, sst_strerror(rc));
}

/* ---- argument parsing ------------------------------------------------- */

/* One byte, or the two characters \t for a tab. */
static int parse_delimiter(const command *c, const char *arg, int escape,
                           unsigned char *out) {
  if (strcmp(arg, "\\t") == 0)
    *out = '\t';
  else if (strlen(arg) == 1)
    *out = (unsigned char)arg[0];
  else
    return usage_error(c, "delimiter '%s' is not one byte (or \\t)", arg);
  if (*out == '\n' || *out == '\r')
    return usage_error(c, "a line ending cannot be the delimiter");
  if (escape && *out == '\\')
    return usage_error(c, "a backslash cannot be the delimiter with --escape");
  return 0;
}

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const command *c, const char *opt, const char *arg,
                      uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(arg, &end, 10);
  unsigned shift = 0;
  static const char units[] = "KMGT";
  if (end != arg && *end != '\0' && end[1] == '\0') {
    const char *unit = strchr(units, toupper((unsigned char)*end));
    if (unit != NULL) {
      shift = 10 * (unsigned)(unit - units + 1);
      end++;
    }
  }
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || n == 0 ||
      n > (UINT64_MAX >> shift))
    return usage_error(c, "%s: '%s' is not a size such as 512M", opt, arg);
  *out = (uint64_t)n << shift;
  return 0;
}

static int parse_count(const command *c, const char *opt, const char *arg,
                       uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || n == 0 ||
      n > UINT32_MAX)
    return usage_error(c, "%s: '%s' is not a positive number", opt, arg);
  *out = (uint32_t)n;
  return 0;
}

/* A key given on the command line, decoded if --escape is set. The bytes
 * are malloc'ed; *key is NULL after a usage error. */
static int parse_key(const command *c, const char *arg, int escape,
                     uint8_t **key, size_t *len) {
  size_t n = strlen(arg);
  *key = malloc(n + 1);
  if (*key == NULL) {
    fprintf(stderr, "sst %s: out of memory\n", c->name);
    return EXIT_FAIL;
  }
  memcpy(*key, arg, n + 1);
  *len = n;
  if (escape && sst_unescape((const uint8_t *)arg, n, *key, len) != 0) {
    free(*key);
    *key = NULL;
    return usage_error(c, "'%s' is not a valid escaped key", arg);
  }
  return 0;
}

/* ---- standard output ---------------------------------------------------- */

/* The first error writing stdout. EPIPE means the reader (say `head`) has
 * gone: output stops quietly, as SIGPIPE is ignored. */
static int out_error;

static int out_bytes(const void *p, size_t n) {
  if (out_error == 0 && n > 0) {
    errno = 0;
    if (fwrite(p, 1, n, stdout) != n)
      out_error = errno != 0 ? errno : EIO;
  }
  return out_error;
}

static int out_byte(unsigned char c) { return out_bytes(&c, 1); }

/* Flushes stdout; returns 0, or 1 after reporting a failure. */
static int out_finish(const command *c) {
  if (out_error == 0) {
    errno = 0;
    if (fflush(stdout) != 0)
      out_error = errno != 0 ? errno : EIO;
  }
  if (out_error == 0)
    return 0;
  if (out_error != EPIPE)
    fprintf(stderr, "sst %s: writing output: %s\n", c->name,
            strerror(out_error));
  return 1;
}

static int open_table(const command *c, const char *path, sst_reader **r) {
  sst_error err = {0};
  int rc = sst_reader_open(path, NULL, r, &err);
  if (rc != 0)
    print_failure(c, path, rc, &err);
  return rc;
}

/* ---- build ------------------------------------------------------------ */

typedef struct build_opts {
  sst_records_options records;
  sst_sorter_options sorter;
  sst_writer_options writer;
  const char *output;
} build_opts;

typedef struct build_progress {
  progress_line line;
  uint64_t records;
  uint64_t skipped;
  uint64_t bytes_done;  /* bytes of the inputs already read */
  uint64_t input_bytes; /* of the current input, estimated from records */
} build_progress;

/* Bytes of the current input read so far: the file position where there
 * is one, else the size of the records parsed. */
static uint64_t input_position(int fd, const build_progress *pg) {
  off_t pos = lseek(fd, 0, SEEK_CUR);
  return pos >= 0 ? (uint64_t)pos : pg->input_bytes;
}

static void progress_tick(build_progress *pg, int fd) {
  if (!progress_due(&pg->line))
    return;
  double mb = (double)(pg->bytes_done + input_position(fd, pg)) / 1e6;
  double secs = pg->line.last - pg->line.started;
  progress_draw(&pg->line,
                "sst build: %" PRIu64 " records, %.1f MB read, %.1f MB/s",
                pg->records, mb, secs > 0 ? mb / secs : 0.0);
}

/* The output name for an input: its extension, if any, replaced by
 * .sstable (dir/data.csv -> dir/data.sstable, noext -> noext.sstable). */
static char *derive_output(const char *input) {
  const char *base = strrchr(input, '/');
  base = base != NULL ? base + 1 : input;
  const char *dot = strrchr(base, '.');
  size_t stem =
      dot != NULL && dot != base ? (size_t)(dot - input) : strlen(input);
  char *out = malloc(stem + sizeof ".sstable");
  if (out != NULL) {
    memcpy(out, input, stem);
    memcpy(out + stem, ".sstable", sizeof ".sstable");
  }
  return out;
}

/* Feeds the records of one input to the sorter. */
static int build_read_input(const command *c, const char *input,
                            const build_opts *o, sst_sorter *s,
                            build_progress *pg) {
  int is_stdin = strcmp(input, "-") == 0;
  const char *name = is_stdin ? "<stdin>" : input;
  int fd = is_stdin ? STDIN_FILENO : open(input, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "sst %s: %s: %s\n", c->name, input, strerror(errno));
    return EXIT_FAIL;
  }
  sst_records *p;
  int rc = sst_records_open(fd, name, &o->records, &p);
  if (rc != 0) {
    fprintf(stderr, "sst %s: %s: %s\n", c->name, name, sst_strerror(rc));
    if (!is_stdin)
      close(fd);
    return EXIT_FAIL;
  }
  pg->input_bytes = 0;
  for (;;) {
    const uint8_t *key, *value;
    size_t key_len, value_len;
    sst_error err = {0};
    rc = sst_records_next(p, &key, &key_len, &value, &value_len, &err);
    if (rc != 0) {
      print_failure(c, name, rc, &err);
      break;
    }
    if (key == NULL)
      break;
    rc = sst_sorter_add(s, key, key_len, value, value_len);
    if (rc != 0) {
      progress_hide();
      fprintf(stderr, "sst %s: %s:%" PRIu64 ": sorting: %s\n", c->name, name,
              sst_records_line_count(p), sst_strerror(rc));
      break;
    }
    pg->records++;
    pg->input_bytes += key_len + value_len + 2;
    progress_tick(pg, fd);
  }
  pg->skipped += sst_records_skipped(p);
  pg->bytes_done += input_position(fd, pg);
  sst_records_free(p);
  if (!is_stdin)
    close(fd);
  return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* Merges the sorted records into the table. Until sst_writer_finish()
 * succeeds, the output path is untouched. */
static int build_write(const command *c, const build_opts *o, sst_sorter *s,
                       uint64_t *keys) {
  sst_writer *w;
  sst_error err = {0};
  int rc = sst_writer_open(o->output, &o->writer, &w, &err);
  if (rc != 0) {
    print_failure(c, o->output, rc, &err);
    return EXIT_FAIL;
  }
  rc = sst_sorter_finish(s, w, &err);
  if (rc == 0) {
    *keys = sst_writer_key_count(w);
    rc = sst_writer_finish(w, &err);
  }
  if (rc != 0)
    print_failure(c, o->output, rc, &err);
  sst_writer_free(w);
  return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static void build_summary(const command *c, const build_opts *o,
                          const build_progress *pg, uint64_t keys) {
  char skipped[64] = "";
  if (pg->skipped > 0)
    snprintf(skipped, sizeof skipped, ", %" PRIu64 " bad lines skipped",
             pg->skipped);
  fprintf(stderr,
          "sst %s: %" PRIu64 " records read, %" PRIu64
          " unique keys written%s, %.1f MB in %.2f s -> %s\n",
          c->name, pg->records, keys, skipped, (double)pg->bytes_done / 1e6,
          now_seconds() - pg->line.started, o->output);
}

static int build_run(const command *c, build_opts *o, char **inputs,
                     int n_inputs) {
  build_progress pg = {0};
  progress_start(&pg.line, 1);
  sst_sorter *s;
  sst_error err = {0};
  int rc = sst_sorter_new(&o->sorter, &s, &err);
  if (rc != 0) {
    print_failure(c, "sorter", rc, &err);
    return EXIT_FAIL;
  }
  int status = EXIT_OK;
  for (int i = 0; i < n_inputs && status == EXIT_OK; i++)
    status = build_read_input(c, inputs[i], o, s, &pg);
  uint64_t keys = 0;
  if (status == EXIT_OK) {
    progress_draw(&pg.line, "sst build: %" PRIu64 " records read, writing %s",
                  pg.records, o->output);
    status = build_write(c, o, s, &keys);
  }
  sst_sorter_free(s);
  progress_clear(&pg.line);
  if (status == EXIT_OK)
    build_summary(c, o, &pg, keys);
  return status;
}

enum {
  OPT_ESCAPE = 256,
  OPT_SKIP_BAD,
  OPT_MEMORY,
  OPT_TEMP_DIR,
  OPT_BLOCK_KEYS,
  OPT_NO_FILTER,
  OPT_PREFIX,
  OPT_FROM,
  OPT_TO,
  OPT_KEYS_ONLY,
  OPT_TOMBSTONES,
  OPT_FLAT,
  OPT_STRICT,
};

static int build_parse(const command *c, int argc, char **argv, build_opts *o,
                       int *help) {
  static const struct option longopts[] = {
      {"delimiter", required_argument, NULL, 'd'},
      {"output", required_argument, NULL, 'o'},
      {"escape", no_argument, NULL, OPT_ESCAPE},
      {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
      {"memory", required_argument, NULL, OPT_MEMORY},
      {"temp-dir", required_argument, NULL, OPT_TEMP_DIR},
      {"block-keys", required_argument, NULL, OPT_BLOCK_KEYS},
      {"no-filter", no_argument, NULL, OPT_NO_FILTER},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *delim = NULL;
  int opt, rc = 0;
  while (rc == 0 &&
         (opt = getopt_long(argc, argv, ":d:o:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd':
      delim = optarg;
      break;
    case 'o':
      o->output = optarg;
      break;
    case OPT_ESCAPE:
      o->records.escaped = 1;
      break;
    case OPT_SKIP_BAD:
      o->records.skip_bad = 1;
      break;
    case OPT_MEMORY:
      rc = parse_size(c, "--memory", optarg, &o->sorter.memory_budget);
      break;
    case OPT_TEMP_DIR:
      o->sorter.temp_dir = optarg;
      break;
    case OPT_BLOCK_KEYS:
      rc = parse_count(c, "--block-keys", optarg, &o->writer.block_keys);
      break;
    case OPT_NO_FILTER:
      o->writer.filter_bits_per_key = 0;
      break;
    case 'h':
      *help = 1;
      return 0;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (rc == 0 && delim != NULL)
    rc = parse_delimiter(c, delim, o->records.escaped, &o->records.delimiter);
  return rc;
}

static int cmd_build(const command *c, int argc, char **argv) {
  build_opts o;
  sst_records_options_init(&o.records);
  sst_sorter_options_init(&o.sorter);
  sst_writer_options_init(&o.writer);
  o.output = NULL;
  int help = 0;
  int rc = build_parse(c, argc, argv, &o, &help);
  if (rc != 0 || help) {
    if (help)
      print_help(c, stdout);
    return rc;
  }
  static char dash[] = "-";
  static char *stdin_only[] = {dash};
  char **inputs = optind < argc ? argv + optind : stdin_only;
  int n_inputs = optind < argc ? argc - optind : 1;
  char *derived = NULL;
  if (o.output == NULL) {
    if (strcmp(inputs[0], "-") == 0)
      return usage_error(c, "reading standard input needs -o OUT");
    o.output = derived = derive_output(inputs[0]);
    if (derived == NULL) {
      fprintf(stderr, "sst %s: out of memory\n", c->name);
      return EXIT_FAIL;
    }
  }
  for (int i = 0; i < n_inputs; i++)
    if (strcmp(inputs[i], o.output) == 0) {
      free(derived);
      return usage_error(c, "output %s is also an input", inputs[i]);
    }
  rc = build_run(c, &o, inputs, n_inputs);
  free(derived);
  return rc;
}

/* ---- get -------------------------------------------------------------- */

typedef struct cli_key {
  uint8_t *bytes;
  size_t len;
} cli_key;

static void free_keys(cli_key *keys, int n) {
  for (int i = 0; i < n; i++)
    free(keys[i].bytes);
  free(keys);
}

/* Decodes every key argument before the table is opened, so that a bad
 * escape is a usage error and nothing has been printed yet. */
static int parse_keys(const command *c, char **args, int n, int escape,
                      cli_key **out) {
  cli_key *keys = calloc((size_t)n, sizeof *keys);
  if (keys == NULL) {
    fprintf(stderr, "sst %s: out of memory\n", c->name);
    return EXIT_FAIL;
  }
  for (int i = 0; i < n; i++) {
    int rc = parse_key(c, args[i], escape, &keys[i].bytes, &keys[i].len);
    if (rc != 0) {
      free_keys(keys, n);
      return rc;
    }
  }
  *out = keys;
  return 0;
}

/* Prints one key's value; returns 0 or 1 (reported). */
static int get_one(const command *c, const sst_reader *r, const char *path,
                   const cli_key *key) {
  const uint8_t *value;
  uint64_t value_len;
  int rc = sst_reader_get(r, key->bytes, key->len, &value, &value_len);
  if (rc == 0) {
    out_bytes(value, (size_t)value_len);
    return EXIT_OK;
  }
  char shown[128];
  sst_key_render(key->bytes, key->len, shown, sizeof shown);
  if (rc == SST_ENOTFOUND)
    fprintf(stderr, "sst %s: %s: key '%s' not found\n", c->name, path, shown);
  else
    fprintf(stderr, "sst %s: %s: key '%s': %s\n", c->name, path, shown,
            sst_strerror(rc));
  return EXIT_FAIL;
}

static int cmd_get(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"escape", no_argument, NULL, OPT_ESCAPE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int escape = 0, opt;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    if (opt == OPT_ESCAPE) {
      escape = 1;
    } else if (opt == 'h') {
      print_help(c, stdout);
      return EXIT_OK;
    } else {
      return bad_option(c, opt, argv);
    }
  }
  if (argc - optind < 2)
    return usage_error(c, "needs a table and at least one key");
  const char *path = argv[optind];
  int n = argc - optind - 1;
  cli_key *keys;
  int rc = parse_keys(c, argv + optind + 1, n, escape, &keys);
  if (rc != 0)
    return rc;
  sst_reader *r;
  if (open_table(c, path, &r) != 0) {
    free_keys(keys, n);
    return EXIT_FAIL;
  }
  int status = EXIT_OK;
  for (int i = 0; i < n && out_error == 0; i++)
    if (get_one(c, r, path, &keys[i]) != EXIT_OK)
      status = EXIT_FAIL;
  if (out_finish(c) != 0)
    status = EXIT_FAIL;
  sst_reader_close(r);
  free_keys(keys, n);
  return status;
}

/* ---- printing records (scan, dump) -------------------------------------- */

typedef struct printer {
  const command *c;
  const sst_reader *r;
  const char *path;
  unsigned char delimiter;
  int escape;
  int keys_only;
  int tombstones; /* print tombstones (as a key without delimiter) */
  uint64_t tombstones_skipped;
} printer;

/* Escaping works byte by byte, so values of any size go in chunks. */
#define ESCAPE_CHUNK ((size_t)64 << 10)

static int print_escaped(const printer *pr, const uint8_t *p, uint64_t len) {
  static uint8_t buf[4 * ESCAPE_CHUNK];
  while (len > 0 && out_error == 0) {
    size_t n = len < ESCAPE_CHUNK ? (size_t)len : ESCAPE_CHUNK;
    out_bytes(buf, sst_escape(p, n, pr->delimiter, buf));
    p += n;
    len -= n;
  }
  return out_error;
}

static int print_field(const printer *pr, const uint8_t *p, uint64_t len) {
  if (pr->escape)
    return print_escaped(pr, p, len);
  return out_bytes(p, (size_t)len);
}

/* Why a plain (unescaped) line could not carry this key, or NULL. */
static const char *plain_key_problem(const printer *pr, const sst_entry *e) {
  if (memchr(e->key, '\n', e->key_len) != NULL)
    return "contains a newline";
  if (memchr(e->key, '\r', e->key_len) != NULL)
    return "contains a carriage return";
  if (!pr->keys_only && memchr(e->key, pr->delimiter, e->key_len) != NULL)
    return "contains the delimiter";
  return NULL;
}

/* Why a plain line could not carry this value, or NULL. A \r at the end
 * would be taken for half of a CRLF line ending. */
static const char *plain_value_problem(const uint8_t *v, uint64_t len) {
  if (len == 0)
    return NULL;
  if (memchr(v, '\n', (size_t)len) != NULL)
    return "contains a newline";
  if (v[len - 1] == '\r')
    return "ends with a carriage return";
  return NULL;
}

static int refuse_plain(const printer *pr, const sst_entry *e,
                        const char *whose, const char *problem) {
  char shown[128];
  sst_key_render(e->key, e->key_len, shown, sizeof shown);
  fprintf(stderr,
          "sst %s: %s: %skey '%s' %s, which a plain record cannot hold; "
          "use --escape\n",
          pr->c->name, pr->path, whose, shown, problem);
  return EXIT_FAIL;
}

/* Prints one entry as a line; returns 0 or 1 (reported). */
static int print_entry(printer *pr, const sst_entry *e) {
  int tombstone = (e->flags & SST_FLAG_TOMBSTONE) != 0;
  if (tombstone && !pr->tombstones) {
    pr->tombstones_skipped++;
    return EXIT_OK;
  }
  const char *problem;
  if (!pr->escape && (problem = plain_key_problem(pr, e)) != NULL)
    return refuse_plain(pr, e, "", problem);
  const uint8_t *value = NULL;
  int with_value = !pr->keys_only && !tombstone;
  if (with_value) {
    int rc = sst_reader_value(pr->r, e, &value);
    if (rc != 0) {
      char shown[128];
      sst_key_render(e->key, e->key_len, shown, sizeof shown);
      fprintf(stderr, "sst %s: %s: value of key '%s': %s\n", pr->c->name,
              pr->path, shown, sst_strerror(rc));
      return EXIT_FAIL;
    }
    if (!pr->escape &&
        (problem = plain_value_problem(value, e->value_len)) != NULL)
      return refuse_plain(pr, e, "the value of ", problem);
  }
  print_field(pr, e->key, e->key_len);
  if (with_value) {
    out_byte(pr->delimiter);
    print_field(pr, value, e->value_len);
  }
  out_byte('\n');
  return EXIT_OK;
}

/* Prints entries from a positioned iterator to its end. */
static int print_entries(printer *pr, sst_iter *it) {
  int status = EXIT_OK;
  while (status == EXIT_OK && out_error == 0 && sst_iter_valid(it)) {
    status = print_entry(pr, sst_iter_entry(it));
    sst_iter_next(it);
  }
  int rc = sst_iter_status(it);
  if (status == EXIT_OK && rc != 0) {
    fprintf(stderr, "sst %s: %s: %s\n", pr->c->name, pr->path,
            sst_strerror(rc));
    status = EXIT_FAIL;
  }
  if (out_finish(pr->c) != 0)
    status = EXIT_FAIL;
  return status;
}

/* ---- scan ------------------------------------------------------------- */

typedef struct scan_opts {
  const char *prefix, *from, *to, *delimiter;
} scan_opts;

/* The decoded bounds: [0] the prefix or --from, [1] --to. */
typedef struct scan_bounds {
  cli_key key[2];
  int has[2];
} scan_bounds;

static int scan_bounds_parse(const command *c, const scan_opts *s, int escape,
                             scan_bounds *b) {
  const char *args[2] = {s->prefix != NULL ? s->prefix : s->from, s->to};
  for (int i = 0; i < 2; i++) {
    if (args[i] == NULL)
      continue;
    int rc = parse_key(c, args[i], escape, &b->key[i].bytes, &b->key[i].len);
    if (rc != 0)
      return rc;
    b->has[i] = 1;
  }
  return 0;
}

static int scan_position(sst_iter *it, const scan_opts *s,
                         const scan_bounds *b) {
  if (s->prefix != NULL)
    return sst_iter_prefix(it, b->key[0].bytes, b->key[0].len);
  if (b->has[0] || b->has[1])
    return sst_iter_range(it, b->key[0].bytes, b->key[0].len, b->key[1].bytes,
                          b->key[1].len);
  return sst_iter_seek_first(it);
}

static int scan_run(printer *pr, const scan_opts *s, const scan_bounds *b) {
  sst_reader *r;
  if (open_table(pr->c, pr->path, &r) != 0)
    return EXIT_FAIL;
  pr->r = r;
  sst_iter *it = NULL;
  int rc = sst_iter_new(r, &it);
  if (rc == 0)
    rc = scan_position(it, s, b);
  int status;
  if (rc != 0) {
    fprintf(stderr, "sst %s: %s: %s\n", pr->c->name, pr->path,
            sst_strerror(rc));
    status = EXIT_FAIL;
  } else {
    status = print_entries(pr, it);
  }
  sst_iter_free(it);
  sst_reader_close(r);
  return status;
}

static int cmd_scan(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"prefix", required_argument, NULL, OPT_PREFIX},
      {"from", required_argument, NULL, OPT_FROM},
      {"to", required_argument, NULL, OPT_TO},
      {"keys-only", no_argument, NULL, OPT_KEYS_ONLY},
      {"escape", no_argument, NULL, OPT_ESCAPE},
      {"delimiter", required_argument, NULL, 'd'},
      {"tombstones", no_argument, NULL, OPT_TOMBSTONES},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  scan_opts s = {0};
  printer pr = {.c = c, .delimiter = ','};
  int opt;
  while ((opt = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_PREFIX:
      s.prefix = optarg;
      break;
    case OPT_FROM:
      s.from = optarg;
      break;
    case OPT_TO:
      s.to = optarg;
      break;
    case OPT_KEYS_ONLY:
      pr.keys_only = 1;
      break;
    case OPT_ESCAPE:
      pr.escape = 1;
      break;
    case 'd':
      s.delimiter = optarg;
      break;
    case OPT_TOMBSTONES:
      pr.tombstones = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (argc - optind != 1)
    return usage_error(c, "needs exactly one table");
  if (s.prefix != NULL && (s.from != NULL || s.to != NULL))
    return usage_error(c, "--prefix cannot be combined with --from or --to");
  if (s.delimiter != NULL &&
      parse_delimiter(c, s.delimiter, pr.escape, &pr.delimiter) != 0)
    return EXIT_USAGE;
  pr.path = argv[optind];
  scan_bounds b = {0};
  int status = scan_bounds_parse(c, &s, pr.escape, &b);
  if (status == 0)
    status = scan_run(&pr, &s, &b);
  free(b.key[0].bytes);
  free(b.key[1].bytes);
  return status;
}

/* ---- dump ------------------------------------------------------------- */

static int cmd_dump(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"delimiter", required_argument, NULL, 'd'},
      {"escape", no_argument, NULL, OPT_ESCAPE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  printer pr = {.c = c, .delimiter = ','};
  const char *delimiter = NULL;
  int opt;
  while ((opt = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
    if (opt == 'd')
      delimiter = optarg;
    else if (opt == OPT_ESCAPE)
      pr.escape = 1;
    else if (opt == 'h') {
      print_help(c, stdout);
      return EXIT_OK;
    } else
      return bad_option(c, opt, argv);
  }
  if (argc - optind != 1)
    return usage_error(c, "needs exactly one table");
  if (delimiter != NULL &&
      parse_delimiter(c, delimiter, pr.escape, &pr.delimiter) != 0)
    return EXIT_USAGE;
  pr.path = argv[optind];
  sst_reader *r;
  if (open_table(c, pr.path, &r) != 0)
    return EXIT_FAIL;
  pr.r = r;
  sst_iter *it = NULL;
  int rc = sst_iter_new(r, &it);
  if (rc == 0)
    rc = sst_iter_seek_first(it);
  int status;
  if (rc != 0) {
    fprintf(stderr, "sst %s: %s: %s\n", c->name, pr.path, sst_strerror(rc));
    status = EXIT_FAIL;
  } else
    status = print_entries(&pr, it);
  if (status == EXIT_OK && pr.tombstones_skipped > 0)
    fprintf(stderr,
            "sst %s: %s: %" PRIu64 " tombstones not dumped (records cannot "
            "express deletions)\n",
            c->name, pr.path, pr.tombstones_skipped);
  sst_iter_free(it);
  sst_reader_close(r);
  return status;
}

/* ---- info ------------------------------------------------------------- */

static void info_print(const char *path, const sst_info *in) {
  printf("path: %s\n", path);
  printf("format version: %" PRIu32 "\n", in->format_version);
  printf("file size: %" PRIu64 " bytes\n", in->file_size);
  printf("keys: %" PRIu64 "\n", in->key_count);
  printf("tombstones: %" PRIu64 "\n", in->tombstone_count);
  printf("key bytes: %" PRIu64 "\n", in->key_bytes);
  printf("value bytes: %" PRIu64 "\n", in->value_bytes);
  printf("key blocks: %" PRIu64 "\n", in->block_count);
  printf("index interval: %" PRIu32 " keys per block (block size %" PRIu32
         " bytes, restart interval %" PRIu32 ")\n",
         in->block_keys, in->block_bytes, in->restart_interval);
  printf("index bytes: %" PRIu64 "\n", in->index_bytes);
  if (in->filter_bits_per_key > 0)
    printf("filter: %" PRIu64 " bytes, %" PRIu32 " bits per key\n",
           in->filter_bytes, in->filter_bits_per_key);
  else
    printf("filter: none\n");
}

/* The first line of the staging area's `error` file (why the daemon's
 * last commit failed), or "" when there is none. */
static void read_stage_error(const char *area, char *line, size_t size) {
  line[0] = '\0';
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/error", area) >= (int)sizeof path)
    return;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
                  ? read(fd, line, size - 1)
                  : -1;
  close(fd);
  line[n > 0 ? n : 0] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
}

/* For a table that does not exist: what the staging area a staging mount
 * (sstfs --stage TABLE) keeps beside it, TABLE.stage, says about it. The
 * daemon leaves the area, with the reason in its `error` file, when a
 * commit fails; a running or stopped mount has one without. Returns 0 and
 * leaves note alone when there is no such directory. */
static int stage_note(const char *table, char *note, size_t size) {
  char area[PATH_MAX], error[512];
  struct stat st;
  if (snprintf(area, sizeof area, "%s.stage", table) >= (int)sizeof area ||
      stat(area, &st) != 0 || !S_ISDIR(st.st_mode))
    return 0;
  read_stage_error(area, error, sizeof error);
  if (error[0] != '\0')
    snprintf(note, size,
             "; the last staging commit of it failed: %s (staging area %s "
             "is kept; see sstfs --stage --help, -o resume)",
             error, area);
  else
    snprintf(note, size,
             "; a staging area %s exists (a staging mount is running or was "
             "stopped; resume it with sstfs --stage %s MOUNTPOINT -o resume)",
             area, table);
  return 1;
}

/* open_table, with what a staging area beside a missing table says. */
static int info_open(const command *c, const char *path, sst_reader **r) {
  sst_error err = {0};
  int rc = sst_reader_open(path, NULL, r, &err);
  char note[2 * PATH_MAX + 1024];
  if (rc == ENOENT && err.code == rc && stage_note(path, note, sizeof note))
    fprintf(stderr, "sst %s: %s%s\n", c->name, err.msg, note);
  else if (rc != 0)
    print_failure(c, path, rc, &err);
  return rc;
}

static int cmd_info(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    if (opt != 'h')
      return bad_option(c, opt, argv);
    print_help(c, stdout);
    return EXIT_OK;
  }
  if (argc - optind < 1)
    return usage_error(c, "needs a table");
  int status = EXIT_OK;
  for (int i = optind; i < argc; i++) {
    sst_reader *r;
    if (info_open(c, argv[i], &r) != 0) {
      status = EXIT_FAIL;
      continue;
    }
    sst_info in;
    sst_reader_info(r, &in);
    if (i > optind)
      printf("\n");
    info_print(argv[i], &in);
    sst_reader_close(r);
  }
  if (out_finish(c) != 0)
    status = EXIT_FAIL;
  return status;
}

/* ---- verify ----------------------------------------------------------- */

static int verify_one(const command *c, const char *path) {
  sst_reader *r;
  if (open_table(c, path, &r) != 0)
    return EXIT_FAIL;
  sst_error err = {0};
  int rc = sst_reader_verify(r, &err);
  if (rc != 0) {
    print_failure(c, path, rc, &err);
  } else {
    sst_info in;
    sst_reader_info(r, &in);
    printf("%s: ok (%" PRIu64 " keys, %" PRIu64 " bytes)\n", path, in.key_count,
           in.file_size);
    fflush(stdout); /* keep ok lines and messages in order on a terminal */
  }
  sst_reader_close(r);
  return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_verify(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    if (opt != 'h')
      return bad_option(c, opt, argv);
    print_help(c, stdout);
    return EXIT_OK;
  }
  if (argc - optind < 1)
    return usage_error(c, "needs at least one table");
  int status = EXIT_OK;
  for (int i = optind; i < argc; i++)
    if (verify_one(c, argv[i]) != EXIT_OK)
      status = EXIT_FAIL;
  if (out_finish(c) != 0)
    status = EXIT_FAIL;
  return status;
}

/* ---- pack and unpack: shared helpers ------------------------------------ */

/* Files are copied through a buffer of this size: no file is ever held
 * whole in memory. */
#define COPY_CHUNK ((size_t)1 << 20)

/* The signal that asked pack or unpack to stop, or 0. They check it
 * between files and chunks and stop as after an error (pack removes its
 * temporary table), then die of the signal so that a shell sees why. A
 * signal that comes once the work is complete changes nothing. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) { interrupted = sig; }

static void catch_interrupts(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    /* A signal ignored on entry (nohup, a background job) stays ignored. */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
      sigaction(sigs[i], &sa, NULL);
  }
}

static int finish_status(const command *c, int status) {
  if (interrupted && status != EXIT_OK) {
    fprintf(stderr, "sst %s: interrupted\n", c->name);
    signal(interrupted, SIG_DFL);
    raise(interrupted);
  }
  return status;
}

/* Prints DIR/REL (DIR alone when rel_len is 0) to stderr. */
static void put_path(const char *dir, const char *rel, size_t rel_len) {
  size_t n = strlen(dir);
  fputs(dir, stderr);
  if (rel_len > 0) {
    if (n == 0 || dir[n - 1] != '/')
      fputc('/', stderr);
    fwrite(rel, 1, rel_len, stderr);
  }
}

/* Reports "sst CMD: DIR/REL: MESSAGE"; returns EXIT_FAIL. */
__attribute__((format(printf, 5, 6))) static int
path_error(const command *c, const char *dir, const char *rel, size_t rel_len,
           const char *fmt, ...) {
  va_list ap;
  progress_hide();
  fprintf(stderr, "sst %s: ", c->name);
  put_path(dir, rel, rel_len);
  fputs(": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return EXIT_FAIL;
}

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
#define DIR_STACK_OPEN 256
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

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

static void dir_stack_init(dir_stack *ds, int root, int create) {
  memset(ds, 0, sizeof *ds);
  ds->root = root;
  ds->create = create;
  ds->window = DIR_STACK_OPEN;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur / 4 < ds->window)
    ds->window = rl.rlim_cur / 4 > 8 ? (size_t)rl.rlim_cur / 4 : 8;
}

/* Keeps the first `keep` levels. */
static void dir_stack_pop(dir_stack *ds, size_t keep) {
  for (; ds->depth > keep; ds->depth--)
    if (ds->depth > ds->low)
      close(ds->fds[ds->depth - 1]);
  if (ds->low > ds->depth)
    ds->low = ds->depth;
  ds->len = keep > 0 ? ds->ends[keep - 1] : 0;
  if (ds->path != NULL)
    ds->path[ds->len] = '\0';
}

static void dir_stack_free(dir_stack *ds) {
  dir_stack_pop(ds, 0);
  free(ds->path);
  free(ds->fds);
  free(ds->ends);
}

static int dir_stack_reserve(dir_stack *ds, size_t path_len) {
  if (path_len + 1 > ds->cap) {
    size_t cap = ds->cap ? ds->cap : 256;
    while (cap < path_len + 1)
      cap *= 2;
    char *p = realloc(ds->path, cap);
    if (p == NULL)
      return ENOMEM;
    ds->path = p;
    ds->cap = cap;
  }
  if (ds->depth == ds->max) {
    size_t max = ds->max ? ds->max * 2 : 16;
    int *fds = realloc(ds->fds, max * sizeof *fds);
    if (fds == NULL)
      return ENOMEM;
    ds->fds = fds;
    size_t *ends = realloc(ds->ends, max * sizeof *ends);
    if (ends == NULL)
      return ENOMEM;
    ds->ends = ends;
    ds->max = max;
  }
  return 0;
}

/* Opens level k's directory in parent. */
static int dir_stack_open_level(dir_stack *ds, int parent, size_t k) {
  size_t start = k > 0 ? ds->ends[k - 1] + 1 : 0;
  char saved = ds->path[ds->ends[k]];
  ds->path[ds->ends[k]] = '\0';
  int fd = openat(parent, ds->path + start, DIR_OPEN_FLAGS);
  ds->path[ds->ends[k]] = saved;
  return fd;
}

/* Opens every level again from the root, keeping the deepest ones. */
static int dir_stack_reopen(dir_stack *ds, size_t *failed) {
  size_t keep_from = ds->depth > ds->window ? ds->depth - ds->window : 0;
  int parent = ds->root;
  for (size_t k = 0; k < ds->depth; k++) {
    int fd = dir_stack_open_level(ds, parent, k);
    int e = errno;
    if (k > 0 && k - 1 < keep_from)
      close(parent);
    if (fd < 0) {
      for (size_t j = keep_from; j < k; j++)
        close(ds->fds[j]);
      *failed = ds->ends[k];
      return e;
    }
    if (k >= keep_from)
      ds->fds[k] = fd;
    parent = fd;
  }
  ds->low = keep_from;
  return 0;
}

/* The common levels of the open path and rel[0..len). */
static size_t dir_stack_common(const dir_stack *ds, const char *rel,
                               size_t len) {
  if (ds->len <= len && (ds->len == 0 || memcmp(ds->path, rel, ds->len) == 0) &&
      (ds->len == len || rel[ds->len] == '/' || ds->depth == 0))
    return ds->depth; /* the usual case: the same directory or below */
  size_t same = 0;
  while (same < ds->len && same < len && ds->path[same] == rel[same])
    same++;
  size_t keep = 0;
  while (keep < ds->depth && ds->ends[keep] <= same &&
         (ds->ends[keep] == len || rel[ds->ends[keep]] == '/'))
    keep++;
  return keep;
}

/* Opens (or with create, makes) the directory rel[0..len) and sets *fd to
 * it; the descriptor stays owned by ds and is valid until the next call.
 * On failure returns an errno value (EINVAL for an empty, "." or ".."
 * component) and sets *failed to the length of the path that failed. */
static int dir_stack_enter(dir_stack *ds, const char *rel, size_t len, int *fd,
                           size_t *failed) {
  dir_stack_pop(ds, dir_stack_common(ds, rel, len));
  *failed = ds->len;
  if (ds->depth > 0 && ds->low == ds->depth) {
    int rc = dir_stack_reopen(ds, failed);
    if (rc != 0) {
      dir_stack_pop(ds, 0);
      return rc;
    }
  }
  while (ds->len < len) {
    size_t start = ds->depth > 0 ? ds->len + 1 : 0;
    const char *slash = memchr(rel + start, '/', len - start);
    size_t end = slash != NULL ? (size_t)(slash - rel) : len;
    const char *name = rel + start;
    size_t n = end - start;
    *failed = end;
    if (n == 0 || (n == 1 && name[0] == '.') ||
        (n == 2 && name[0] == '.' && name[1] == '.'))
      return EINVAL;
    int rc = dir_stack_reserve(ds, end);
    if (rc != 0)
      return rc;
    memcpy(ds->path + ds->len, rel + ds->len, end - ds->len);
    ds->path[end] = '\0';
    name = ds->path + start;
    int parent = ds->depth > 0 ? ds->fds[ds->depth - 1] : ds->root;
    int dfd = openat(parent, name, DIR_OPEN_FLAGS);
    if (dfd < 0 && errno == ENOENT && ds->create) {
      if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST)
        return errno;
      dfd = openat(parent, name, DIR_OPEN_FLAGS);
    }
    if (dfd < 0) {
      rc = errno;
      ds->path[ds->len] = '\0';
      return rc;
    }
    ds->fds[ds->depth] = dfd;
    ds->ends[ds->depth++] = end;
    ds->len = end;
    if (ds->depth - ds->low > ds->window) {
      close(ds->fds[ds->low]);
      ds->fds[ds->low++] = -1;
    }
  }
  *fd = ds->depth > 0 ? ds->fds[ds->depth - 1] : ds->root;
  return 0;
}

/* Opens the directory holding the file at rel (relative to ds's root) and
 * sets *name to the file's name in it. Reports a failure. */
static int dir_stack_parent(const command *c, dir_stack *ds, const char *top,
                            const char *rel, int *fd, const char **name) {
  const char *slash = strrchr(rel, '/');
  *name = slash != NULL ? slash + 1 : rel;
  *fd = ds->root;
  if (slash == NULL)
    return EXIT_OK;
  size_t failed = 0;
  int rc = dir_stack_enter(ds, rel, (size_t)(slash - rel), fd, &failed);
  if (rc == EINVAL)
    return path_error(c, top, rel, failed, "not a valid directory name");
  if (rc != 0)
    return path_error(c, top, rel, failed, "%s", strerror(rc));
  return EXIT_OK;
}

/* ---- pack ------------------------------------------------------------- */

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
    char shown[128];
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

static int cmd_pack(const command *c, int argc, char **argv) {
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

/* ---- unpack ----------------------------------------------------------- */

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
  char shown[128];
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
    char shown[128];
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

static int cmd_unpack(const command *c, int argc, char **argv) {
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

/* ---- the commands ------------------------------------------------------- */


/* ---- merge ------------------------------------------------------------- */

static int cmd_merge(const command *c, int argc, char **argv) {
  enum { OPT_DROP = 300 };
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"drop-tombstones", no_argument, NULL, OPT_DROP},
      {"block-keys", required_argument, NULL, OPT_BLOCK_KEYS},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *out = NULL;
  int drop = 0, quiet = 0, opt;
  sst_writer_options wo;
  sst_writer_options_init(&wo);
  while ((opt = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'o':
      out = optarg;
      break;
    case OPT_DROP:
      drop = 1;
      break;
    case OPT_BLOCK_KEYS:
      if (parse_count(c, "--block-keys", optarg, &wo.block_keys) != 0)
        return EXIT_USAGE;
      break;
    case 'q':
      quiet = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  if (out == NULL)
    return usage_error(c, "needs -o OUT");
  int n = argc - optind;
  if (n < 1)
    return usage_error(c, "needs at least one input table");
  sst_reader **readers = calloc((size_t)n, sizeof *readers);
  if (readers == NULL)
    return EXIT_FAIL;
  int status = EXIT_FAIL, rc = 0;
  sst_error err;
  sst_iter *it = NULL;
  sst_writer *w = NULL;
  for (int i = 0; i < n; i++)
    if ((rc = sst_reader_open(argv[optind + i], NULL, &readers[i], &err))) {
      print_failure(c, argv[optind + i], rc, &err);
      goto done;
    }
  if ((rc = sst_iter_new_merged((const sst_reader *const *)readers,
                                (size_t)n, &it)) != 0 ||
      (rc = sst_writer_open(out, &wo, &w, &err)) != 0) {
    print_failure(c, out, rc, &err);
    goto done;
  }
  /* With --drop-tombstones a deleted key vanishes with all its entries. */
  sst_iter_set_skip_tombstones(it, drop);
  progress_line pl;
  progress_start(&pl, !quiet);
  uint64_t keys = 0, tombstones = 0, bytes = 0;
  for (rc = sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
       rc = sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    if (e->flags & SST_FLAG_TOMBSTONE) {
      rc = sst_writer_add_tombstone(w, e->key, e->key_len);
      tombstones++;
    } else {
      const uint8_t *v;
      if ((rc = sst_reader_value(readers[e->source], e, &v)) != 0) {
        progress_hide();
        fprintf(stderr, "sst merge: %s: a value at offset %" PRIu64 ": %s\n",
                argv[optind + (int)e->source], e->value_offset,
                sst_strerror(rc));
        break;
      }
      rc = sst_writer_add(w, e->key, e->key_len, v, e->value_len);
      bytes += e->key_len + e->value_len;
    }
    keys++;
    if (progress_due(&pl))
      progress_draw(&pl, "sst merge: %" PRIu64 " keys, %.1f MB", keys,
                    (double)bytes / 1e6);
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  progress_clear(&pl);
  if (rc != 0) {
    print_failure(c, out, rc, NULL);
    goto done;
  }
  if ((rc = sst_writer_finish(w, &err)) != 0) {
    print_failure(c, out, rc, &err);
    goto done;
  }
  if (!quiet)
    fprintf(stderr,
            "sst merge: %d tables, %" PRIu64 " keys written (%" PRIu64
            " tombstones), %.1f MB in %.2f s -> %s\n",
            n, keys, tombstones, (double)bytes / 1e6,
            now_seconds() - pl.started, out);
  status = EXIT_OK;
done:
  sst_writer_free(w);
  sst_iter_free(it);
  for (int i = 0; i < n; i++)
    sst_reader_close(readers[i]);
  free(readers);
  return status;
}

static const command commands[] = {
    {
        "build",
        cmd_build,
        "    sst build [-d DELIM] [-o OUT] [--escape] [--skip-bad]\n"
        "              [--memory BYTES] [--temp-dir DIR] [--block-keys N]\n"
        "              [--no-filter] [INPUT...]",
        "build a table from key,value records",
        "DESCRIPTION\n"
        "    Reads records, one a line, KEY DELIM VALUE, from each INPUT in\n"
        "    turn (standard input if there is none, or for -), sorts them by\n"
        "    key and writes the table OUT. The first delimiter ends the key;\n"
        "    the value may contain more of them. Lines may end in LF or CRLF,\n"
        "    the last one needs no newline, and empty lines are ignored. When\n"
        "    a key comes more than once, its last record wins. Input of any\n"
        "    size is sorted within the memory budget, spilling sorted runs\n"
        "    to temporary files.\n"
        "\n"
        "    OUT is written under a temporary name and renamed into place\n"
        "    once complete: after any error, OUT is left as it was. The\n"
        "    temporary file, OUT.tmp. and 8 hex digits, is locked (flock)\n"
        "    while it is written; one left by a writer that was killed is\n"
        "    unlocked, and the next build, pack or merge of OUT removes it.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: records read, unique keys written,\n"
        "    bad lines skipped, megabytes read, seconds and the table's name.\n"
        "\n"
        "OPTIONS\n"
        "    -d, --delimiter DELIM\n"
        "        The byte between key and value (default ','). Write a tab\n"
        "        as \\t or as a literal tab. It cannot be a newline or a\n"
        "        carriage return.\n"
        "    -o, --output OUT\n"
        "        The table to write. The default is the first INPUT with its\n"
        "        extension replaced by .sstable (data.csv -> data.sstable);\n"
        "        with standard input, -o is required.\n"
        "    --escape\n"
        "        Keys and values carry backslash escapes: \\\\ \\n \\r \\t \\0 "
        "and\n"
        "        \\xHH, as written by sst dump --escape. Any byte string can\n"
        "        then be a key or value. The delimiter cannot be \\.\n"
        "    --skip-bad\n"
        "        Skip lines without a delimiter or with an empty key,\n"
        "        counting them in the summary, instead of failing.\n"
        "    --memory BYTES\n"
        "        Memory for sorting before runs are spilled to disk (default\n"
        "        256M). Suffixes K, M, G and T multiply by powers of 1024.\n"
        "    --temp-dir DIR\n"
        "        Where spilled runs go (default $TMPDIR, else /tmp).\n"
        "    --block-keys N\n"
        "        Keys per index entry: a key block holds at most N keys\n"
        "        (default 64).\n"
        "    --no-filter\n"
        "        Write no Bloom filter (saves about 10 bits a key; lookups of\n"
        "        missing keys then read a key block).\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if the table was written, 1 on an error (such as a malformed\n"
        "    line, reported as NAME:LINE), 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst build data.csv                     # writes data.sstable\n"
        "    sst build -d '\\t' -o users.sstable users.tsv\n"
        "    zcat big.csv.gz | sst build --memory 1G -o big.sstable\n"
        "    sst dump --escape a.sstable | sst build --escape -o b.sstable\n",
    },
    {
        "get",
        cmd_get,
        "    sst get [--escape] TABLE KEY...",
        "print the values of keys",
        "DESCRIPTION\n"
        "    Writes the value of each KEY to standard output, as it is, with\n"
        "    nothing added between values. Each value's checksum is checked\n"
        "    first. A missing key is reported on stderr and the remaining\n"
        "    keys are still looked up. Put -- before keys that start with -.\n"
        "\n"
        "OPTIONS\n"
        "    --escape\n"
        "        The KEY arguments carry backslash escapes (\\\\ \\n \\r \\t "
        "\\0\n"
        "        \\xHH), so that keys with any bytes can be given.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if every key was found, 1 if a key was missing or a table or\n"
        "    value is damaged, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst get data.sstable user/42\n"
        "    sst get --escape data.sstable 'bin\\x00key' > value.bin\n",
    },
    {
        "scan",
        cmd_scan,
        "    sst scan TABLE [--prefix P | [--from A] [--to B]] [--keys-only]\n"
        "             [--escape] [-d DELIM] [--tombstones]",
        "print the records of a key range or prefix",
        "DESCRIPTION\n"
        "    Prints records in key order, one a line, KEY DELIM VALUE, the\n"
        "    format of sst dump: all of them, those whose key starts with P,\n"
        "    or those with A <= key < B (either bound may be left out). Keys\n"
        "    compare bytewise. Without --escape, a record whose bytes a line\n"
        "    cannot hold (a newline in it, the delimiter in its key) stops\n"
        "    the scan with an error.\n"
        "\n"
        "OPTIONS\n"
        "    --prefix P\n"
        "        Only keys that start with P.\n"
        "    --from A, --to B\n"
        "        Only keys from A (inclusive) up to B (exclusive).\n"
        "    --keys-only\n"
        "        Print keys only, one a line.\n"
        "    --escape\n"
        "        Print keys and values with backslash escapes, as sst dump\n"
        "        --escape does; P, A and B are then escaped too.\n"
        "    -d, --delimiter DELIM\n"
        "        The byte between key and value (default ','; \\t for tab).\n"
        "    --tombstones\n"
        "        Also print deleted keys (tombstones), as the key alone\n"
        "        with no delimiter. By default they are left out.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 on success, 1 if the table is damaged or a record cannot be\n"
        "    printed, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst scan data.sstable --prefix users/ --keys-only\n"
        "    sst scan data.sstable --from 2024-01 --to 2024-02\n",
    },
    {
        "dump",
        cmd_dump,
        "    sst dump [-d DELIM] [--escape] TABLE",
        "print every record, in a form sst build reads back",
        "DESCRIPTION\n"
        "    Prints every record of TABLE in key order, one a line, KEY DELIM\n"
        "    VALUE. sst build with the same -d and --escape options reads the\n"
        "    output back into a byte-identical table (given the default\n"
        "    build options).\n"
        "\n"
        "    Without --escape, keys and values are printed raw, so a key\n"
        "    holding the delimiter, a newline or a carriage return, or a\n"
        "    value holding a newline or ending with a carriage return, stops\n"
        "    the dump with an error naming the key. --escape can carry any\n"
        "    bytes.\n"
        "\n"
        "    Records cannot express deletions: tombstones are left out and\n"
        "    counted on stderr.\n"
        "\n"
        "OPTIONS\n"
        "    -d, --delimiter DELIM\n"
        "        The byte between key and value (default ','; \\t for tab).\n"
        "    --escape\n"
        "        Escape backslash, control bytes, DEL and the delimiter as\n"
        "        \\\\ \\n \\r \\t \\0 or \\xHH; other bytes stay as they are.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 on success, 1 if the table is damaged or a record cannot be\n"
        "    printed without --escape, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst dump data.sstable > data.csv\n"
        "    sst dump --escape -d '\\t' data.sstable | sst build --escape \\\n"
        "        -d '\\t' -o copy.sstable\n",
    },
    {
        "pack",
        cmd_pack,
        "    sst pack [--flat] [--strict] [--block-keys N] [--no-filter] [-q]\n"
        "             DIR TABLE",
        "build a table from a directory tree",
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
    },
    {
        "unpack",
        cmd_unpack,
        "    sst unpack [--flat] [-q] TABLE DIR",
        "write a table's keys out as a directory tree",
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
    },
    {
        "merge",
        cmd_merge,
        "    sst merge -o OUT [--drop-tombstones] [--block-keys N] [-q]\n"
        "              TABLE...",
        "merge tables into one, later tables winning",
        "DESCRIPTION\n"
        "    Writes OUT with every key of the TABLEs, in one streaming pass\n"
        "    (memory does not depend on the tables' sizes). When several\n"
        "    tables hold a key, the entry of the table named last wins; a\n"
        "    deletion (tombstone) in a later table hides the key's entries\n"
        "    in earlier ones. Tombstones are kept in OUT, so that it can\n"
        "    still be stacked over older tables, unless --drop-tombstones.\n"
        "    Every value's checksum is checked on the way.\n"
        "\n"
        "OPTIONS\n"
        "    -o, --output OUT\n"
        "        The table to write: under a temporary name (OUT.tmp. and 8\n"
        "        hex digits, locked while written), renamed when complete.\n"
        "        A temporary left by a merge that was killed is removed by\n"
        "        the next merge, build or pack of OUT.\n"
        "    --drop-tombstones\n"
        "        Leave deleted keys out altogether: right when the oldest\n"
        "        table takes part, so nothing older is left to hide.\n"
        "    --block-keys N\n"
        "        Keys per key block in OUT (default 64).\n"
        "    -q, --quiet\n"
        "        No progress line and no summary.\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if OUT was written, 1 on an error (OUT is then left as it\n"
        "    was), 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst merge -o v3.sstable v1.sstable delta2.sstable delta3.sstable\n"
        "    sst merge --drop-tombstones -o all.sstable base.sstable d.sstable\n",
    },
    {
        "info",
        cmd_info,
        "    sst info TABLE...",
        "show a table's statistics",
        "DESCRIPTION\n"
        "    Prints, one per line as NAME: VALUE, the table's path, format\n"
        "    version, file size, number of keys and tombstones, bytes of keys\n"
        "    and values, number of key blocks, index interval, index size and\n"
        "    Bloom filter size. Only the footer and index are read: use sst\n"
        "    verify to check the whole file.\n"
        "\n"
        "    When TABLE does not exist but the staging area of sstfs --stage\n"
        "    TABLE, TABLE.stage, does, the error says so, with the reason\n"
        "    its last commit failed if it left one (TABLE.stage/error).\n"
        "\n"
        "OPTIONS\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 on success, 1 if a table cannot be opened, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst info data.sstable\n"
        "    sst info data.sstable | grep '^keys:'\n",
    },
    {
        "verify",
        cmd_verify,
        "    sst verify TABLE...",
        "check every byte of tables",
        "DESCRIPTION\n"
        "    Reads each TABLE completely and checks every checksum, the order\n"
        "    of the keys and the layout. Prints TABLE: ok (N keys, N bytes)\n"
        "    for a sound table, and the first problem found, with its block\n"
        "    or key and offset, for a damaged one.\n"
        "\n"
        "OPTIONS\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 if every table is sound, 1 if any is damaged or cannot be\n"
        "    opened, 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst verify *.sstable\n",
    },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static void main_usage(FILE *to) {
  fprintf(to, "Usage: sst COMMAND [OPTION]... [ARG]...\n"
              "Commands:");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(to, " %s", commands[i].name);
  fprintf(to, "\nTry 'sst --help' for more information.\n");
}

static void main_help(void) {
  printf(
      "NAME\n"
      "    sst - build, query and check SSTable files\n"
      "\n"
      "SYNOPSIS\n"
      "    sst COMMAND [OPTION]... [ARG]...\n"
      "    sst help [COMMAND]\n"
      "    sst --help | --version\n"
      "\n"
      "DESCRIPTION\n"
      "    An SSTable is an immutable file of unique keys in bytewise order,\n"
      "    each with a value, and an index to find a key quickly.\n"
      "\n"
      "COMMANDS\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    printf("    %-8s %s\n", commands[i].name, commands[i].summary);
  printf("\n"
         "    sst COMMAND --help describes a command.\n"
         "\n"
         "EXIT STATUS\n"
         "    0 on success, 1 on failure, 2 on a usage error.\n"
         "\n"
         "EXAMPLES\n"
         "    sst build -o users.sstable users.csv\n"
         "    sst get users.sstable alice\n"
         "    sst scan users.sstable --prefix al --keys-only\n"
         "    sst pack site/ site.sstable && sst unpack site.sstable copy/\n");
}

static int main_help_command(int argc, char **argv) {
  if (argc < 3) {
    main_help();
    return EXIT_OK;
  }
  const command *c = find_command(argv[2]);
  if (c == NULL) {
    fprintf(stderr, "sst help: unknown command '%s'\n", argv[2]);
    main_usage(stderr);
    return EXIT_USAGE;
  }
  print_help(c, stdout);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  /* A closed pipe (sst dump t | head) shows up as EPIPE, which ends the
   * output quietly, rather than as a signal. */
  signal(SIGPIPE, SIG_IGN);
  if (!isatty(STDOUT_FILENO))
    setvbuf(stdout, NULL, _IOFBF, (size_t)1 << 20);
  opterr = 0;
  if (argc < 2) {
    main_usage(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    main_help();
    return EXIT_OK;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("sst (sstfs) %s (table format %d)\n", SST_VERSION_STRING,
           SST_FORMAT_VERSION);
    return EXIT_OK;
  }
  if (strcmp(name, "help") == 0)
    return main_help_command(argc, argv);
  const command *c = find_command(name);
  if (c == NULL) {
    fprintf(stderr, "sst: unknown command '%s'\n", name);
    main_usage(stderr);
    return EXIT_USAGE;
  }
  return c->run(c, argc - 1, argv + 1);
}
