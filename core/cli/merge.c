/* merge.c — sst merge: tables into one, in one streaming pass, later
 * tables winning. Metadata goes along with its entry; the names of a
 * hard-link group that reach OUT keep sharing one value there, the
 * groups numbered again in OUT's key order. A group's name count in OUT
 * is known only after the merge has seen them all, so tables with
 * metadata take a first pass over the keys (not the values) to count. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sstpath.h"

enum {
  OPT_DROP = OPT_LONG_ONLY,
  OPT_BLOCK_KEYS,
  OPT_COMPRESS,
  OPT_VALUE_BLOCK,
  OPT_DEDUP,
  OPT_NO_DEDUP
};

/* A hard-link group of one input table, as OUT holds it. */
typedef struct merge_link {
  uint64_t link_id; /* in its table; 0: a free slot */
  unsigned source;
  uint32_t names;  /* of its names, those that reach OUT */
  uint64_t out_id; /* its link_id in OUT, 0 until its first name */
  int written;     /* its value is in OUT, at: */
  uint64_t offset, len;
  uint32_t checksum;
} merge_link;

typedef struct merger {
  const command *c;
  char **paths; /* the input tables' names */
  sst_reader **readers;
  sst_writer *w;
  merge_link *links; /* open addressing; cap a power of two */
  size_t n_links, cap_links;
  uint64_t next_id;
  uint8_t *xattrs; /* SST_XATTRS_MAX bytes, once needed */
  uint64_t keys, tombstones, bytes;
} merger;

static merge_link *merge_link_slot(const merger *m, unsigned source,
                                   uint64_t link_id) {
  size_t mask = m->cap_links - 1;
  size_t i = (size_t)((link_id * 31 + source) * 0x9E3779B97F4A7C15ull) & mask;
  while (m->links[i].link_id != 0 &&
         (m->links[i].link_id != link_id || m->links[i].source != source))
    i = (i + 1) & mask;
  return &m->links[i];
}

/* Counts one more name of group (source, link_id) in OUT. */
static int merge_link_count(merger *m, unsigned source, uint64_t link_id) {
  if (2 * (m->n_links + 1) > m->cap_links) {
    size_t cap = m->cap_links ? 2 * m->cap_links : 64;
    merge_link *old = m->links;
    size_t old_cap = m->cap_links;
    if ((m->links = calloc(cap, sizeof *m->links)) == NULL) {
      m->links = old;
      return ENOMEM;
    }
    m->cap_links = cap;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].link_id != 0)
        *merge_link_slot(m, old[i].source, old[i].link_id) = old[i];
    free(old);
  }
  merge_link *l = merge_link_slot(m, source, link_id);
  if (l->link_id == 0) {
    *l = (merge_link){.link_id = link_id, .source = source};
    m->n_links++;
  }
  l->names++;
  return 0;
}

static int is_link(const sst_entry *e) {
  return (e->flags & SST_FLAG_META) && !(e->flags & SST_FLAG_TOMBSTONE) &&
         e->meta.type == SST_TYPE_FILE && e->meta.link_id != 0;
}

/* The first pass: how many names of each group reach OUT. */
static int merge_count_links(merger *m, sst_iter *it) {
  int rc;
  for (rc = sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
       rc = sst_iter_next(it)) {
    const sst_entry *e = sst_iter_entry(it);
    if (is_link(e) &&
        (rc = merge_link_count(m, e->source, e->meta.link_id)) != 0)
      return rc;
  }
  return rc != 0 ? rc : sst_iter_status(it);
}

/* "sst merge: TABLE: WHAT key 'KEY': REASON"; returns EXIT_FAIL. */
static int merge_key_error(const merger *m, const sst_entry *e,
                           const char *what, int rc) {
  char shown[SST_KEY_RENDER_SIZE];
  sst_key_render(e->key, e->key_len, shown, sizeof shown);
  progress_hide();
  fprintf(stderr, "sst %s: %s: %s key '%s': %s\n", m->c->name,
          m->paths[e->source], what, shown, sst_strerror(rc));
  return EXIT_FAIL;
}

/* Copies one entry to OUT with its metadata; a later name of a hard-link
 * group shares the value its first name wrote. Returns EXIT_OK, or
 * EXIT_FAIL after saying why. */
static int merge_entry(merger *m, const sst_entry *e) {
  int rc;
  m->keys++;
  if (e->flags & SST_FLAG_TOMBSTONE) {
    m->tombstones++;
    if ((rc = sst_writer_add_tombstone(m->w, e->key, e->key_len)) != 0)
      return merge_key_error(m, e, "writing", rc);
    return EXIT_OK;
  }
  const sst_reader *r = m->readers[e->source];
  merge_link *l = NULL;
  if (e->flags & SST_FLAG_META) {
    sst_meta meta = e->meta;
    meta.xattrs = NULL;
    if (meta.xattr_len > 0) {
      if (meta.xattr_len > SST_XATTRS_MAX)
        return merge_key_error(m, e, "extended attributes of", SST_ECORRUPT);
      if (m->xattrs == NULL && (m->xattrs = malloc(SST_XATTRS_MAX)) == NULL)
        return merge_key_error(m, e, "extended attributes of", ENOMEM);
      if ((rc = sst_reader_xattrs(r, e, m->xattrs)) != 0)
        return merge_key_error(m, e, "extended attributes of", rc);
      meta.xattrs = m->xattrs;
    }
    meta.link_id = 0;
    meta.nlink = 1;
    if (is_link(e) &&
        (l = merge_link_slot(m, e->source, e->meta.link_id))->names > 1) {
      if (l->out_id == 0)
        l->out_id = ++m->next_id;
      meta.link_id = l->out_id;
      meta.nlink = l->names;
    } else {
      l = NULL; /* its other names did not reach OUT: a plain file */
    }
    if ((rc = sst_writer_set_meta(m->w, &meta)) != 0)
      return merge_key_error(m, e, "metadata of", rc);
    if (l != NULL && l->written) {
      if ((rc = sst_writer_add_shared(m->w, e->key, e->key_len, l->offset,
                                      l->len, l->checksum)) != 0)
        return merge_key_error(m, e, "writing", rc);
      return EXIT_OK;
    }
  }
  int read_rc;
  rc = sst_writer_add_from(m->w, e->key, e->key_len, r, e, &read_rc);
  if (read_rc) {
    progress_hide();
    fprintf(stderr, "sst merge: %s: a value at offset %" PRIu64 ": %s\n",
            m->paths[e->source], e->value_offset, sst_strerror(read_rc));
    return EXIT_FAIL;
  }
  if (rc != 0)
    return merge_key_error(m, e, "writing", rc);
  m->bytes += e->key_len + e->value_len;
  if (l != NULL) {
    if ((rc = sst_writer_last_value(m->w, &l->offset, &l->len, &l->checksum)) !=
        0)
      return merge_key_error(m, e, "writing", rc);
    l->written = 1;
  }
  return EXIT_OK;
}

/* The options after --compress and the rest of merge's help. */
#define MERGE_HELP_TAIL                                                        \
  "    -q, --quiet\n"                                                          \
  "        No progress line and no summary.\n"                                 \
  "    -h, --help\n"                                                           \
  "        Show this help.\n"                                                  \
  "\n"                                                                         \
  "EXIT STATUS\n"                                                              \
  "    0 if OUT was written, 1 on an error (OUT is then left as it\n"          \
  "    was), 2 on a usage error.\n"                                            \
  "\n"                                                                         \
  "EXAMPLES\n"                                                                 \
  "    sst merge -o v3.sstable v1.sstable delta2.sstable delta3.sstable\n"     \
  "    sst merge --drop-tombstones -o all.sstable base.sstable d.sstable\n"

const command_help cmd_merge_help = {
    .synopsis = "    sst merge -o OUT [--drop-tombstones] [--block-keys N]\n"
                "              [--compress C] [--dedup | --no-dedup]\n"
                "              [--value-block SIZE] [-j N] [-q]\n"
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
        "    Entries keep their metadata (tables written by sst pack):\n"
        "    type, mode, owner, time and extended attributes. The names of\n"
        "    a hard-link group that reach OUT still share one copy of the\n"
        "    content there, with the link count of the names OUT holds; a\n"
        "    name left alone by the merge becomes a plain file. Tables with\n"
        "    metadata are read twice: once for the keys, to count each\n"
        "    group's names, then to write.\n"
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
        "        Keys per key block in OUT (default 64).\n" COMPRESS_HELP(
            "zstd when an input table has compressed values,\n"
            "        else none",
            "6, or 10\n"
            "        when the inputs are tables of trees (sst pack's)",
            "--dedup when an input table\n"
            "        has compressed values",
            "128K, or 256K when the\n"
            "        inputs are tables of trees") MERGE_HELP_TAIL,
};

int cmd_merge(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"drop-tombstones", no_argument, NULL, OPT_DROP},
      {"block-keys", required_argument, NULL, OPT_BLOCK_KEYS},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"value-block", required_argument, NULL, OPT_VALUE_BLOCK},
      {"dedup", no_argument, NULL, OPT_DEDUP},
      {"no-dedup", no_argument, NULL, OPT_NO_DEDUP},
      {"jobs", required_argument, NULL, 'j'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *out = NULL;
  int drop = 0, quiet = 0, opt;
  int dedup_set = 0, block_set = 0;
  const char *compress = NULL; /* read again once the inputs are known */
  sst_writer_options wo;
  sst_writer_options_init(&wo);
  wo.threads = default_jobs();
  while ((opt = getopt_long(argc, argv, ":o:j:qh", longopts, NULL)) != -1) {
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
    case OPT_COMPRESS:
      if (parse_compress(c, optarg, SST_CLI_ZSTD_LEVEL, &wo) != 0)
        return EXIT_USAGE;
      compress = optarg;
      break;
    case OPT_VALUE_BLOCK:
      if (parse_value_block(c, optarg, &wo) != 0)
        return EXIT_USAGE;
      block_set = 1;
      break;
    case OPT_DEDUP:
    case OPT_NO_DEDUP:
      wo.dedup = opt == OPT_DEDUP;
      dedup_set = 1;
      break;
    case 'j':
      if (parse_jobs(c, optarg, &wo) != 0)
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
  merger m = {.c = c, .paths = argv + optind, .readers = readers};
  int any_meta = 0;
  for (int i = 0; i < n; i++) {
    if ((rc = sst_reader_open(argv[optind + i], NULL, &readers[i], &err))) {
      print_failure(c, argv[optind + i], rc, &err);
      goto done;
    }
    sst_info info;
    sst_reader_info(readers[i], &info);
    any_meta |= (info.features & SST_FEATURE_META) != 0;
    /* Compressed inputs make a compressed OUT unless told otherwise. */
    if (info.features & SST_FEATURE_VALUES) {
      if (compress == NULL)
        wo.zstd_level = SST_CLI_ZSTD_LEVEL;
      if (!dedup_set)
        wo.dedup = 1;
    }
  }
  /* Tables of trees (sst pack's, the staging commit's) merge into one
   * written as they are: level 10 in 256 KiB value blocks. */
  if (any_meta) {
    if (compress != NULL) /* zstd alone is the tree's level */
      (void)parse_compress(c, compress, SST_TREE_ZSTD_LEVEL, &wo);
    else if (wo.zstd_level != 0)
      wo.zstd_level = SST_TREE_ZSTD_LEVEL;
    if (!block_set)
      wo.value_block = SST_TREE_VALUE_BLOCK;
  }
  if ((rc = sst_iter_new_stack((const sst_reader *const *)readers, (size_t)n,
                               &it)) != 0 ||
      (rc = sst_writer_open(out, &wo, &m.w, &err)) != 0) {
    print_failure(c, out, rc, &err);
    goto done;
  }
  /* With --drop-tombstones a deleted key vanishes with all its entries. */
  sst_iter_set_skip_tombstones(it, drop);
  progress_line pl;
  progress_start(&pl, !quiet);
  if (any_meta && (rc = merge_count_links(&m, it)) != 0) {
    progress_clear(&pl);
    print_failure(c, out, rc, NULL);
    goto done;
  }
  int failed = 0;
  for (rc = sst_iter_seek_first(it); rc == 0 && sst_iter_valid(it);
       rc = sst_iter_next(it)) {
    if (merge_entry(&m, sst_iter_entry(it)) != EXIT_OK) {
      failed = 1;
      break;
    }
    if (progress_due(&pl))
      progress_draw(&pl, "sst merge: %" PRIu64 " keys, %.1f MB", m.keys,
                    (double)m.bytes / 1e6);
  }
  if (rc == 0)
    rc = sst_iter_status(it);
  progress_clear(&pl);
  if (failed)
    goto done;
  if (rc != 0) {
    print_failure(c, out, rc, NULL);
    goto done;
  }
  if ((rc = sst_writer_finish(m.w, &err)) != 0) {
    print_failure(c, out, rc, &err);
    goto done;
  }
  if (!quiet)
    fprintf(stderr,
            "sst merge: %d tables, %" PRIu64 " keys written (%" PRIu64
            " tombstones), %.1f MB in %.2f s -> %s\n",
            n, m.keys, m.tombstones, (double)m.bytes / 1e6,
            now_seconds() - pl.started, out);
  status = EXIT_OK;
done:
  sst_writer_free(m.w);
  free(m.links);
  free(m.xattrs);
  sst_iter_free(it);
  for (int i = 0; i < n; i++)
    sst_reader_close(readers[i]);
  free(readers);
  return status;
}
