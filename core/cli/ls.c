/* ls.c — sst ls: a table's entries one per line, as ls -l or tar -tv
 * show files: type and mode, links, owner, size, time, key, and where a
 * symlink points. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* "drwxr-xr-x": the type, then the permission bits with setuid, setgid
 * and sticky shown as s/S and t/T, as ls does. */
static void ls_mode(const sst_entry *e, char out[11]) {
  uint32_t m = e->meta.mode;
  unsigned type = e->meta.type;
  if (!(e->flags & SST_FLAG_META)) { /* a plain entry: a read-only file */
    m = 0444;
    type = SST_TYPE_FILE;
  }
  out[0] = type == SST_TYPE_DIR ? 'd' : type == SST_TYPE_SYMLINK ? 'l' : '-';
  static const char rwx[] = "rwxrwxrwx";
  for (int i = 0; i < 9; i++)
    out[1 + i] = (m & (0400u >> i)) ? rwx[i] : '-';
  if (m & 04000)
    out[3] = out[3] == 'x' ? 's' : 'S';
  if (m & 02000)
    out[6] = out[6] == 'x' ? 's' : 'S';
  if (m & 01000)
    out[9] = out[9] == 'x' ? 't' : 'T';
  out[10] = '\0';
}

/* The mtime as "2024-05-01 12:34:56.123456789" in UTC. */
static void ls_time(const sst_meta *m, char *out, size_t cap) {
  time_t t = (time_t)m->mtime_sec;
  struct tm tm;
  if ((int64_t)t != m->mtime_sec || gmtime_r(&t, &tm) == NULL) {
    snprintf(out, cap, "@%" PRId64 ".%09" PRIu32, m->mtime_sec, m->mtime_nsec);
    return;
  }
  size_t n = strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%09" PRIu32, m->mtime_nsec);
}

/* Bytes as a name: printable ASCII and bytes from 0x80 up (UTF-8) as
 * they are, a backslash as \\, any other byte as \xHH, so that one
 * entry is always one line. */
static void ls_name(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t b = p[i];
    if (b == '\\') {
      out_bytes("\\\\", 2);
    } else if ((b >= 0x20 && b < 0x7f) || b >= 0x80) {
      out_byte(b);
    } else {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02X", b);
      out_bytes(hex, 4);
    }
  }
}

/* Prints one entry; EXIT_FAIL after reporting a damaged symlink value. */
static int ls_entry(const command *c, const sst_reader *r, const char *path,
                    const sst_entry *e) {
  char mode[11], line[160], when[64];
  ls_mode(e, mode);
  if (e->flags & SST_FLAG_META) {
    ls_time(&e->meta, when, sizeof when);
    snprintf(line, sizeof line,
             "%s %3" PRIu32 " %6" PRIu32 " %6" PRIu32 " %12" PRIu64 " %s ",
             mode, e->meta.nlink, e->meta.uid, e->meta.gid, e->value_len, when);
  } else {
    snprintf(line, sizeof line, "%s %3d %6s %6s %12" PRIu64 " %-29s ", mode, 1,
             "-", "-", e->value_len, "-");
  }
  out_bytes(line, strlen(line));
  ls_name(e->key, e->key_len);
  if ((e->flags & SST_FLAG_META) && e->meta.type == SST_TYPE_SYMLINK) {
    const uint8_t *target;
    int rc = sst_reader_value(r, e, &target);
    if (rc != 0) {
      out_byte('\n');
      char shown[SST_KEY_RENDER_SIZE];
      sst_key_render(e->key, e->key_len, shown, sizeof shown);
      fflush(stdout);
      fprintf(stderr, "sst %s: %s: symlink key '%s': %s\n", c->name, path,
              shown, sst_strerror(rc));
      return EXIT_FAIL;
    }
    out_bytes(" -> ", 4);
    ls_name(target, (size_t)e->value_len);
  }
  out_byte('\n');
  return EXIT_OK;
}

const command_help cmd_ls_help = {
    .synopsis = "    sst ls [--escape] TABLE [PREFIX]",
    .text =
        "DESCRIPTION\n"
        "    Lists the entries of TABLE in key order, one line each, as ls\n"
        "    -l or tar -tv show files; with PREFIX, only the keys that start\n"
        "    with it. Deleted keys (tombstones) are not shown. A line is:\n"
        "\n"
        "        TYPE+MODE LINKS UID GID SIZE DATE TIME KEY [-> TARGET]\n"
        "\n"
        "    TYPE is - for a regular file, d for a directory, l for a\n"
        "    symbolic link; MODE the permission bits as ls shows them (s\n"
        "    and S for setuid and setgid, t and T for sticky). LINKS is the\n"
        "    number of names of the file's hard-link group in the table (1\n"
        "    for most entries). Owner and group are numeric: the table\n"
        "    stores ids, not names, and names on this system may differ\n"
        "    from the system the tree was packed on. SIZE is the value's\n"
        "    length in bytes: the content of a file, the target of a\n"
        "    symbolic link, 0 for a directory. DATE and TIME are the\n"
        "    modification time in UTC to the nanosecond (2024-05-01\n"
        "    12:34:56.123456789), or @SECONDS.NANOSECONDS when out of the\n"
        "    calendar's range. KEY is the entry's key: a directory's ends\n"
        "    in /, and the top directory of a packed tree is /. A symbolic\n"
        "    link shows its target after ->.\n"
        "\n"
        "    Entries without metadata (tables from sst build or sst pack\n"
        "    --no-metadata) show as read-only regular files, -r--r--r--,\n"
        "    with their size and - for owner, group and time, as the sstfs\n"
        "    mount shows them.\n"
        "\n"
        "    Keys and targets are printed as they are, except that a\n"
        "    backslash is written \\\\ and a control byte (below 0x20, and\n"
        "    0x7f) \\xHH, so that each entry is one line. Bytes from 0x80 up\n"
        "    (UTF-8) are printed as they are.\n"
        "\n"
        "OPTIONS\n"
        "    --escape\n"
        "        PREFIX carries backslash escapes (\\\\ \\n \\t \\0 \\xHH).\n"
        "    -h, --help\n"
        "        Show this help.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 on success, 1 if the table cannot be read (or a symbolic\n"
        "    link's target is damaged), 2 on a usage error.\n"
        "\n"
        "EXAMPLES\n"
        "    sst ls site.sstable\n"
        "    sst ls site.sstable css/\n"
        "    sst ls backup.sstable | grep '^l'          # the symlinks\n",
};

enum { OPT_LS_ESCAPE = OPT_LONG_ONLY };

int cmd_ls(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"escape", no_argument, NULL, OPT_LS_ESCAPE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int escape = 0, opt;
  while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (opt) {
    case OPT_LS_ESCAPE:
      escape = 1;
      break;
    case 'h':
      print_help(c, stdout);
      return EXIT_OK;
    default:
      return bad_option(c, opt, argv);
    }
  }
  int n = argc - optind;
  if (n < 1 || n > 2)
    return usage_error(c, "needs a table and at most one prefix");
  const char *path = argv[optind];
  uint8_t *prefix = NULL;
  size_t prefix_len = 0;
  if (n == 2) {
    int rc = parse_key(c, argv[optind + 1], escape, &prefix, &prefix_len);
    if (rc != 0)
      return rc;
  }
  sst_reader *r;
  if (open_table_noting_stage(c, path, &r) != 0) {
    free(prefix);
    return EXIT_FAIL;
  }
  sst_iter *it;
  int rc = sst_iter_new(r, &it);
  int status = EXIT_OK;
  if (rc == 0) {
    sst_iter_set_skip_tombstones(it, 1);
    rc = prefix != NULL ? sst_iter_prefix(it, prefix, prefix_len)
                        : sst_iter_seek_first(it);
    for (; rc == 0 && sst_iter_valid(it) && status == EXIT_OK && out_error == 0;
         rc = sst_iter_next(it))
      status = ls_entry(c, r, path, sst_iter_entry(it));
    if (rc == 0)
      rc = sst_iter_status(it);
    sst_iter_free(it);
  }
  if (rc != 0 && status == EXIT_OK) {
    fflush(stdout);
    fprintf(stderr, "sst %s: %s: %s\n", c->name, path, sst_strerror(rc));
    status = EXIT_FAIL;
  }
  sst_reader_close(r);
  free(prefix);
  if (out_finish(c) != 0)
    status = EXIT_FAIL;
  return status;
}
