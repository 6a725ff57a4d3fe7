/* merge.c — sst merge: tables into one, in one streaming pass, later
 * tables winning. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>

#include "cli.h"

enum { OPT_DROP = OPT_LONG_ONLY, OPT_BLOCK_KEYS };

const command_help cmd_merge_help = {
    .synopsis =
        "    sst merge -o OUT [--drop-tombstones] [--block-keys N] [-q]\n"
        "              TABLE...",
    .text =
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
        "    sst merge --drop-tombstones -o all.sstable base.sstable "
        "d.sstable\n",
};

int cmd_merge(const command *c, int argc, char **argv) {
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
  sst_error err = {0};
  sst_iter *it = NULL;
  sst_writer *w = NULL;
  for (int i = 0; i < n; i++)
    if ((rc = sst_reader_open(argv[optind + i], NULL, &readers[i], &err))) {
      print_failure(c, argv[optind + i], rc, &err);
      goto done;
    }
  if ((rc = sst_iter_new_stack((const sst_reader *const *)readers, (size_t)n,
                               &it)) != 0 ||
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
