/* build.c — sst build: a table from key,value records, streamed to the
 * writer while they come in key order, sorted within a memory budget
 * from the first one that does not. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Records are read one by one, by key: small value blocks keep a lookup
 * cheap, and with a trained dictionary they compress about as well as
 * large ones (300,000 records: 24.8 MB at 16 KiB and at 128 KiB, a get
 * 19 us against 149 us; docs/BENCHMARKS.md). */
#define BUILD_VALUE_BLOCK (16u << 10)

typedef struct build_opts {
  sst_records_options records;
  sst_sorter_options sorter;
  sst_writer_options writer;
  const char *output;
  int quiet;
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

/* Where records go. While keys come in increasing order they stream
 * straight into the output's writer, one record held back (pending) until
 * the next key shows it is not followed by a record of the same key: the
 * last of equal keys wins. At the first key out of order, the records
 * written so far are completed as a table in the writer's temporary file,
 * which the sorter takes as its oldest run, and every record from then on
 * goes to the sorter. */
typedef struct build_sink {
  const build_opts *o;
  sst_writer *stream; /* the output's writer while keys come in order */
  sst_sorter *sorter; /* NULL until a key comes out of order */
  uint8_t *pending;   /* key then value */
  size_t pending_cap, pending_key_len;
  uint64_t pending_value_len;
  int have_pending;
} build_sink;

static int hold_pending(build_sink *k, const uint8_t *key, size_t key_len,
                        const uint8_t *value, size_t value_len) {
  size_t need = key_len + value_len;
  if (need > k->pending_cap) {
    size_t cap = k->pending_cap ? k->pending_cap : 4096;
    while (cap < need)
      cap *= 2;
    uint8_t *p = realloc(k->pending, cap);
    if (p == NULL)
      return ENOMEM;
    k->pending = p;
    k->pending_cap = cap;
  }
  memcpy(k->pending, key, key_len);
  memcpy(k->pending + key_len, value, value_len);
  k->pending_key_len = key_len;
  k->pending_value_len = value_len;
  k->have_pending = 1;
  return 0;
}

static int write_pending(build_sink *k) {
  if (!k->have_pending)
    return 0;
  k->have_pending = 0;
  return sst_writer_add(k->stream, k->pending, k->pending_key_len,
                        k->pending + k->pending_key_len, k->pending_value_len);
}

/* The first key out of order: what was streamed becomes the sorter's
 * oldest run. */
static int switch_to_sorter(const command *c, build_sink *k) {
  const char *tmp;
  sst_error err = {0};
  int rc = write_pending(k);
  if (rc == 0)
    rc = sst_writer_finish_temp(k->stream, &tmp, &err);
  if (rc != 0) {
    print_failure(c, k->o->output, rc, &err);
    return rc;
  }
  if ((rc = sst_sorter_new(&k->o->sorter, &k->sorter, &err)) != 0 ||
      (rc = sst_sorter_add_table(k->sorter, tmp, &err)) != 0) {
    print_failure(c, "sorter", rc, &err);
    return rc;
  }
  return 0;
}

/* Takes one record; 0, or an error already reported. */
static int sink_add(const command *c, build_sink *k, const char *name,
                    uint64_t line, const uint8_t *key, size_t key_len,
                    const uint8_t *value, size_t value_len) {
  int rc;
  if (key_len > SST_KEY_MAX) {
    progress_hide();
    fprintf(stderr, "sst %s: %s:%" PRIu64 ": key of %zu bytes: %s\n", c->name,
            name, line, key_len, sst_strerror(SST_EKEYSIZE));
    return SST_EKEYSIZE;
  }
  if (k->sorter == NULL) {
    int cmp = k->have_pending
                  ? sst_key_cmp(key, key_len, k->pending, k->pending_key_len)
                  : 1;
    if (cmp >= 0) {
      if (cmp > 0 && (rc = write_pending(k)) != 0) {
        print_failure(c, k->o->output, rc, NULL);
        return rc;
      }
      if ((rc = hold_pending(k, key, key_len, value, value_len)) != 0)
        print_failure(c, name, rc, NULL);
      return rc;
    }
    if ((rc = switch_to_sorter(c, k)) != 0)
      return rc;
  }
  rc = sst_sorter_add(k->sorter, key, key_len, value, value_len);
  if (rc != 0) {
    progress_hide();
    fprintf(stderr, "sst %s: %s:%" PRIu64 ": sorting: %s\n", c->name, name,
            line, sst_strerror(rc));
  }
  return rc;
}

/* Feeds the records of one input to the sink. */
static int build_read_input(const command *c, const char *input, build_sink *k,
                            build_progress *pg) {
  int is_stdin = strcmp(input, "-") == 0;
  const char *name = is_stdin ? "<stdin>" : input;
  int fd = is_stdin ? STDIN_FILENO : open(input, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "sst %s: %s: %s\n", c->name, input, strerror(errno));
    return EXIT_FAIL;
  }
  sst_records *p;
  int rc = sst_records_open(fd, name, &k->o->records, &p);
  if (rc != 0) {
    fprintf(stderr, "sst %s: %s: %s\n", c->name, name, sst_strerror(rc));
    if (!is_stdin)
      close(fd);
    return EXIT_FAIL;
  }
  pg->input_bytes = 0;
  sst_error err = {0}; /* out of the loop: clearing it took 6% of the time */
  for (;;) {
    const uint8_t *key, *value;
    size_t key_len, value_len;
    rc = sst_records_next(p, &key, &key_len, &value, &value_len, &err);
    if (rc != 0) {
      print_failure(c, name, rc, &err);
      break;
    }
    if (key == NULL)
      break;
    rc = sink_add(c, k, name, sst_records_line_count(p), key, key_len, value,
                  value_len);
    if (rc != 0)
      break;
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

/* Completes the output: the streamed table, or the sorter's merge of the
 * streamed part and the rest into a second writer. Until
 * sst_writer_finish() succeeds, the output path is untouched. */
static int build_write(const command *c, build_sink *k, uint64_t *keys) {
  sst_error err = {0};
  int rc;
  if (k->sorter == NULL) {
    if ((rc = write_pending(k)) == 0) {
      *keys = sst_writer_key_count(k->stream);
      rc = sst_writer_finish(k->stream, &err);
    }
    if (rc != 0)
      print_failure(c, k->o->output, rc, &err);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sst_writer *w;
  rc = sst_writer_open(k->o->output, &k->o->writer, &w, &err);
  if (rc != 0) {
    print_failure(c, k->o->output, rc, &err);
    return EXIT_FAIL;
  }
  rc = sst_sorter_finish(k->sorter, w, &err);
  if (rc == 0) {
    *keys = sst_writer_key_count(w);
    rc = sst_writer_finish(w, &err);
  }
  if (rc != 0)
    print_failure(c, k->o->output, rc, &err);
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
  progress_start(&pg.line, !o->quiet);
  build_sink k = {.o = o};
  sst_error err = {0};
  int rc = sst_writer_open(o->output, &o->writer, &k.stream, &err);
  if (rc != 0) {
    print_failure(c, o->output, rc, &err);
    return EXIT_FAIL;
  }
  int status = EXIT_OK;
  for (int i = 0; i < n_inputs && status == EXIT_OK; i++)
    status = build_read_input(c, inputs[i], &k, &pg);
  uint64_t keys = 0;
  if (status == EXIT_OK) {
    progress_draw(&pg.line, "sst build: %" PRIu64 " records read, writing %s",
                  pg.records, o->output);
    status = build_write(c, &k, &keys);
  }
  sst_sorter_free(k.sorter);
  sst_writer_free(k.stream); /* removes the streamed part's table */
  free(k.pending);
  progress_clear(&pg.line);
  if (status == EXIT_OK && !o->quiet)
    build_summary(c, o, &pg, keys);
  else if (status == EXIT_OK && pg.skipped > 0)
    fprintf(stderr, "sst %s: %" PRIu64 " bad lines skipped\n", c->name,
            pg.skipped);
  return status;
}

/* The options after --compress and the rest of build's help. */
#define BUILD_HELP_TAIL                                                        \
  "    -q, --quiet\n"                                                          \
  "        Show no progress line and no summary; the number of bad lines\n"    \
  "        skipped, if any, and errors are still reported.\n"                  \
  "    -h, --help\n"                                                           \
  "        Show this help.\n"                                                  \
  "\n"                                                                         \
  "EXIT STATUS\n"                                                              \
  "    0 if the table was written, 1 on an error (such as a malformed\n"       \
  "    line, reported as NAME:LINE), 2 on a usage error.\n"                    \
  "\n"                                                                         \
  "EXAMPLES\n"                                                                 \
  "    sst build data.csv                     # writes data.sstable\n"         \
  "    sst build -d '\\t' -o users.sstable users.tsv\n"                        \
  "    zcat big.csv.gz | sst build --memory 1G -o big.sstable\n"               \
  "    LC_ALL=C sort -s -t, -k1,1 big.csv | sst build -o big.sstable\n"        \
  "    sst build --sort-threads 1 --memory 64M -o t.sstable t.csv\n"           \
  "    sst dump --escape a.sstable | sst build --escape -o b.sstable\n"

const command_help cmd_build_help = {
    .synopsis =
        "    sst build [-d DELIM] [-o OUT] [--escape] [--skip-bad]\n"
        "              [--memory BYTES] [--sort-threads N] [--temp-dir DIR]\n"
        "              [--block-keys N] [--no-filter] [--compress C]\n"
        "              [--dedup | --no-dedup] [--value-block SIZE] [-j N]\n"
        "              [-q] [INPUT...]",
    .text =
        "DESCRIPTION\n"
        "    Reads records, one a line, KEY DELIM VALUE, from each INPUT in\n"
        "    turn (standard input if there is none, or for -), sorts them by\n"
        "    key and writes the table OUT. The first delimiter ends the key;\n"
        "    the value may contain more of them. Lines may end in LF or CRLF,\n"
        "    the last one needs no newline, and empty lines are ignored. When\n"
        "    a key comes more than once, its last record wins.\n"
        "\n"
        "    Input already in key order (bytewise, as LC_ALL=C sort orders\n"
        "    it; repeated keys allowed) is written to the table as it is "
        "read:\n"
        "    nothing is sorted or held in memory, so it takes little more\n"
        "    time and memory than reading it. At the first key smaller than\n"
        "    the one before, what was written so far is completed as a\n"
        "    table beside OUT and the rest of the input is sorted, then\n"
        "    merged with it: nothing read before is sorted again or lost, and\n"
        "    the last record of a key still wins. Input in any order is\n"
        "    sorted within the memory budget (--memory), spilling sorted\n"
        "    runs to temporary files; other threads sort full batches while\n"
        "    reading goes on (--sort-threads). To have sorted input\n"
        "    streamed, sort it with LC_ALL=C sort -s -t DELIM -k1,1: -s keeps\n"
        "    repeated keys in input order, so that the same record wins.\n"
        "\n"
        "    OUT is written under a temporary name and renamed into place\n"
        "    once complete: after any error, OUT is left as it was. The\n"
        "    temporary file, OUT.tmp. and 8 hex digits, is locked (flock)\n"
        "    while it is written; one left by a writer that was killed is\n"
        "    unlocked, and the next build, pack or merge of OUT removes it.\n"
        "    The part of the input that came in key order before a key out\n"
        "    of order waits in a second such file until OUT is complete.\n"
        "\n"
        "    While stderr is a terminal a progress line is shown. At the end\n"
        "    a summary goes to stderr: records read, unique keys written,\n"
        "    bad lines skipped, megabytes read, seconds and the table's name.\n"
        "    -q shows neither.\n"
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
        "        Memory for records being sorted, every batch counted, before\n"
        "        sorted runs are spilled to disk (default 256M). Suffixes K,\n"
        "        M, G and T multiply by powers of 1024. Input in key order\n"
        "        uses none of it.\n"
        "    --sort-threads N\n"
        "        Threads that read and sort input out of key order (default:\n"
        "        the number of CPUs online, at least 2, at most 4). With 1,\n"
        "        reading stops while a full batch (all of --memory) is\n"
        "        sorted. With N > 1, N - 1 threads sort full batches, each a\n"
        "        quarter of --memory at most (and 32M), and spill runs while\n"
        "        reading goes on. The table is the same whatever N.\n"
        "    --temp-dir DIR\n"
        "        Where spilled runs go (default $TMPDIR, else /tmp).\n"
        "    --block-keys N\n"
        "        Keys per index entry: a key block holds at most N keys\n"
        "        (default 64).\n"
        "    --no-filter\n"
        "        Write no Bloom filter (saves about 10 bits a key; lookups of\n"
        "        missing keys then read a key block).\n" COMPRESS_HELP(
            "none (values are read in place; records are often\n"
            "        small, and a lookup then decodes nothing)",
            "6", "--no-dedup",
            "16K (a lookup decompresses little;\n"
            "        with the dictionary, records compress about as well as\n"
            "        in 128K blocks; 4K makes a lookup that misses the\n"
            "        cache about twice as fast, for a table 2 to 11%\n"
            "        larger)") BUILD_HELP_TAIL,
};

enum {
  OPT_ESCAPE = OPT_LONG_ONLY,
  OPT_SKIP_BAD,
  OPT_MEMORY,
  OPT_SORT_THREADS,
  OPT_TEMP_DIR,
  OPT_BLOCK_KEYS,
  OPT_NO_FILTER,
  OPT_COMPRESS,
  OPT_VALUE_BLOCK,
  OPT_DEDUP,
  OPT_NO_DEDUP,
};

static int build_parse(const command *c, int argc, char **argv, build_opts *o,
                       int *help) {
  static const struct option longopts[] = {
      {"delimiter", required_argument, NULL, 'd'},
      {"output", required_argument, NULL, 'o'},
      {"escape", no_argument, NULL, OPT_ESCAPE},
      {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
      {"memory", required_argument, NULL, OPT_MEMORY},
      {"sort-threads", required_argument, NULL, OPT_SORT_THREADS},
      {"temp-dir", required_argument, NULL, OPT_TEMP_DIR},
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
  const char *delim = NULL;
  int opt, rc = 0;
  while (rc == 0 &&
         (opt = getopt_long(argc, argv, ":d:o:j:qh", longopts, NULL)) != -1) {
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
    case OPT_SORT_THREADS:
      rc = parse_count(c, "--sort-threads", optarg, &o->sorter.threads);
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
    case OPT_COMPRESS:
      rc = parse_compress(c, optarg, SST_CLI_ZSTD_LEVEL, &o->writer);
      break;
    case OPT_VALUE_BLOCK:
      rc = parse_value_block(c, optarg, &o->writer);
      break;
    case OPT_DEDUP:
    case OPT_NO_DEDUP:
      o->writer.dedup = opt == OPT_DEDUP;
      break;
    case 'j':
      rc = parse_jobs(c, optarg, &o->writer);
      break;
    case 'q':
      o->quiet = 1;
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

int cmd_build(const command *c, int argc, char **argv) {
  build_opts o;
  sst_records_options_init(&o.records);
  sst_sorter_options_init(&o.sorter);
  sst_writer_options_init(&o.writer);
  o.writer.threads = default_jobs();
  o.writer.value_block = BUILD_VALUE_BLOCK;
  o.output = NULL;
  o.quiet = 0;
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
