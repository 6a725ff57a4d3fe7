/* query.c — reading a table: sst get looks keys up, sst scan prints a
 * range or prefix of records, sst dump prints them all. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
  OPT_ESCAPE = OPT_LONG_ONLY,
  OPT_PREFIX,
  OPT_FROM,
  OPT_TO,
  OPT_KEYS_ONLY,
  OPT_TOMBSTONES,
};

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
  char shown[SST_KEY_RENDER_SIZE];
  sst_key_render(key->bytes, key->len, shown, sizeof shown);
  if (rc == SST_ENOTFOUND)
    fprintf(stderr, "sst %s: %s: key '%s' not found\n", c->name, path, shown);
  else
    fprintf(stderr, "sst %s: %s: key '%s': %s\n", c->name, path, shown,
            sst_strerror(rc));
  return EXIT_FAIL;
}

const command_help cmd_get_help = {
    .synopsis = "    sst get [--escape] TABLE KEY...",
    .text =
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
};

int cmd_get(const command *c, int argc, char **argv) {
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
  char shown[SST_KEY_RENDER_SIZE];
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
      char shown[SST_KEY_RENDER_SIZE];
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

const command_help cmd_scan_help = {
    .synopsis =
        "    sst scan TABLE [--prefix P | [--from A] [--to B]] [--keys-only]\n"
        "             [--escape] [-d DELIM] [--tombstones]",
    .text =
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
};

int cmd_scan(const command *c, int argc, char **argv) {
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

const command_help cmd_dump_help = {
    .synopsis = "    sst dump [-d DELIM] [--escape] TABLE",
    .text =
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
};

int cmd_dump(const command *c, int argc, char **argv) {
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
