/* sst.c — the sst command-line tool: build a table from records, look keys
 * up, scan ranges and prefixes, dump, show statistics, verify.
 *
 * Each subcommand is a cmd_<name>() that parses its own options with
 * getopt_long and returns the exit status: 0 success, 1 failure, 2 usage.
 * Everything goes through the public API in sstable.h; internal.h is used
 * for sst_key_render() only, so that messages show keys the same way the
 * library does.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sstable.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct command command;
struct command {
  const char *name;
  int (*run)(const command *c, int argc, char **argv);
  const char *synopsis; /* the SYNOPSIS lines, for usage errors */
  const char *summary;  /* one line, for `sst --help` */
  const char *help;     /* the rest of the page */
};

/* ---- messages and usage ------------------------------------------------ */

static void print_help(const command *c, FILE *to) {
  fprintf(to, "NAME\n    sst %s - %s\n\nSYNOPSIS\n%s\n%s", c->name, c->summary,
          c->synopsis, c->help);
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

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
  int shown; /* stderr is a terminal */
  double started;
  double last; /* when the progress line was last drawn */
  int width;   /* of the progress line on screen */
  uint64_t records;
  uint64_t skipped;
  uint64_t bytes_done;  /* bytes of the inputs already read */
  uint64_t input_bytes; /* of the current input, estimated from records */
} build_progress;

__attribute__((format(printf, 2, 3))) static void
progress_draw(build_progress *pg, const char *fmt, ...) {
  char line[200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  fprintf(stderr, "\r%s%*s", line, pg->width > n ? pg->width - n : 0, "");
  pg->width = n;
}

static void progress_clear(build_progress *pg) {
  if (pg->width > 0)
    fprintf(stderr, "\r%*s\r", pg->width, "");
  pg->width = 0;
}

/* Bytes of the current input read so far: the file position where there
 * is one, else the size of the records parsed. */
static uint64_t input_position(int fd, const build_progress *pg) {
  off_t pos = lseek(fd, 0, SEEK_CUR);
  return pos >= 0 ? (uint64_t)pos : pg->input_bytes;
}

/* Redraws the progress line at most five times a second. */
static void progress_tick(build_progress *pg, int fd) {
  double now = now_seconds();
  if (now - pg->last < 0.2)
    return;
  pg->last = now;
  double mb = (double)(pg->bytes_done + input_position(fd, pg)) / 1e6;
  double secs = now - pg->started;
  progress_draw(pg, "sst build: %" PRIu64 " records, %.1f MB read, %.1f MB/s",
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
      fprintf(stderr, "sst %s: %s:%" PRIu64 ": sorting: %s\n", c->name, name,
              sst_records_line_count(p), sst_strerror(rc));
      break;
    }
    pg->records++;
    pg->input_bytes += key_len + value_len + 2;
    if (pg->shown)
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
          now_seconds() - pg->started, o->output);
}

static int build_run(const command *c, build_opts *o, char **inputs,
                     int n_inputs) {
  build_progress pg = {.shown = isatty(STDERR_FILENO),
                       .started = now_seconds()};
  pg.last = pg.started; /* the first line after 0.2 s, with a real rate */
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
    if (pg.shown)
      progress_draw(&pg, "sst build: %" PRIu64 " records read, writing %s",
                    pg.records, o->output);
    status = build_write(c, o, s, &keys);
  }
  sst_sorter_free(s);
  progress_clear(&pg);
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
    if (open_table(c, argv[i], &r) != 0) {
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

/* ---- the commands ------------------------------------------------------- */

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
        "    once complete: after any error, OUT is left as it was.\n"
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
        "        Skip lines without a delimiter, counting them in the\n"
        "        summary, instead of failing.\n"
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
         "    sst scan users.sstable --prefix al --keys-only\n");
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
