/* info.c — sst info shows a table's statistics, sst verify checks every
 * byte of it. */
#include <getopt.h>
#include <inttypes.h>

#include "cli.h"

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
  printf("metadata: %s\n", in->features & SST_FEATURE_META
                               ? "yes (types, modes, owners, times, links, "
                                 "extended attributes)"
                               : "no (plain keys and values)");
  if (in->format_version >= 2) {
    printf("value region: %" PRIu64 " bytes\n", in->value_region);
    printf("key region: %" PRIu64 " bytes\n", in->key_region);
    printf("key blocks stored: %" PRIu64 " bytes for %" PRIu64
           " bytes of key blocks (%.1f%%)\n",
           in->key_blocks_stored, in->key_blocks_raw,
           in->key_blocks_raw ? 100.0 * (double)in->key_blocks_stored /
                                    (double)in->key_blocks_raw
                              : 100.0);
    if (in->features & SST_FEATURE_VALUES) {
      printf("compression: zstd, %" PRIu64 " value blocks, chunks of %" PRIu32
             " bytes\n",
             in->value_blocks, in->chunk_size);
      printf("compression dictionary: %" PRIu32 " bytes\n", in->dict_bytes);
    } else {
      printf("compression: none\n");
    }
    printf("values stored: %" PRIu64 " bytes for %" PRIu64
           " bytes of values (%.1f%%)\n",
           in->value_region, in->value_bytes,
           in->value_bytes
               ? 100.0 * (double)in->value_region / (double)in->value_bytes
               : 100.0);
    printf("deduplicated: %" PRIu64 " values, %" PRIu64 " bytes\n",
           in->dedup_values, in->dedup_bytes);
  }
}

const command_help cmd_info_help = {
    .synopsis = "    sst info TABLE...",
    .text =
        "DESCRIPTION\n"
        "    Prints, one per line as NAME: VALUE, the table's path, format\n"
        "    version, file size, number of keys and tombstones, bytes of keys\n"
        "    and values, number of key blocks, index interval, index size,\n"
        "    Bloom filter size, and whether entries carry file metadata\n"
        "    (metadata: yes for a table from sst pack, no for plain keys and\n"
        "    values). A version 2 table also shows the sizes of its value\n"
        "    region (the values, at the start of the file) and its key\n"
        "    region (key blocks, filters, metadata, index and footer, after\n"
        "    them), the bytes its key blocks take against their size\n"
        "    decompressed, its compression (zstd or none, value blocks,\n"
        "    chunk size, the dictionary's size), the bytes its values take\n"
        "    in the file against the bytes they hold (compressed and\n"
        "    uncompressed; a value shared by several keys counts once\n"
        "    stored, once per key held), and the values stored once for\n"
        "    several keys\n"
        "    (deduplicated: how many keys, how many bytes they hold). Only\n"
        "    the footer, index and properties are read: use sst verify to\n"
        "    check the whole file.\n"
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
        "    sst info data.sstable | grep '^keys:'\n"
        "    sst info site.sstable | grep '^metadata:'\n",
};

int cmd_info(const command *c, int argc, char **argv) {
  int status = help_only_options(c, argc, argv);
  if (status >= 0)
    return status;
  if (argc - optind < 1)
    return usage_error(c, "needs a table");
  status = EXIT_OK;
  for (int i = optind; i < argc; i++) {
    sst_reader *r;
    if (open_table_noting_stage(c, argv[i], &r) != 0) {
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

const command_help cmd_verify_help = {
    .synopsis = "    sst verify TABLE...",
    .text =
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
};

int cmd_verify(const command *c, int argc, char **argv) {
  int status = help_only_options(c, argc, argv);
  if (status >= 0)
    return status;
  if (argc - optind < 1)
    return usage_error(c, "needs at least one table");
  status = EXIT_OK;
  for (int i = optind; i < argc; i++)
    if (verify_one(c, argv[i]) != EXIT_OK)
      status = EXIT_FAIL;
  if (out_finish(c) != 0)
    status = EXIT_FAIL;
  return status;
}
