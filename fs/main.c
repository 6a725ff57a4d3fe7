/* main.c — the sstfs command: options and start-up of a read-only mount
 * (fs/ro.c serves it), or `--stage` (fs/stage_main.c) and `--unmount`
 * (fs/unmount.c). */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common.h"
#include "daemon.h"
#include "ro.h"
#include "spill.h"
#include "sstable.h"
#include "sstpath.h"
#include "stage.h"
#include "uring.h"

static const char usage_text[] =
    "NAME\n"
    "    sstfs - mount an SSTable as a read-only directory tree\n"
    "\n"
    "SYNOPSIS\n"
    "    sstfs [OPTION]... TABLE... MOUNTPOINT\n"
    "    mount -t fuse.sstfs TABLE MOUNTPOINT [-o OPTION,...]\n"
    "    sstfs --stage OUT.sstable MOUNTPOINT [--base TABLE] (see --stage "
    "--help)\n"
    "    sstfs --unmount MOUNTPOINT\n"
    "    sstfs --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    Shows every key of TABLE as a file whose content is the key's value.\n"
    "    A '/' in a key separates directories. Keys that cannot be a path as\n"
    "    they stand (empty, '.' or '..' components, NUL bytes, components\n"
    "    over 255 bytes, a key that is also a directory) appear under escaped\n"
    "    names that begin with %=, %! or %+ (see docs/PATHS.md); every key is\n"
    "    reachable. The mount is read-only: changes fail with EROFS. A value\n"
    "    whose checksum does not match fails with EIO for that file only, and\n"
    "    is logged with its key.\n"
    "\n"
    "    A table packed from a tree (sst pack) shows what it stored: types\n"
    "    (directories, empty ones too, and symlinks), modes, owners,\n"
    "    modification times, hard links and extended attributes. Keys\n"
    "    without such metadata are read-only files (0444) in directories\n"
    "    (0555) that bear the table's modification time.\n"
    "\n"
    "    A TABLE may be an http://, https:// or s3:// URL (stacks may mix\n"
    "    files and URLs). It is read with HTTP range requests: the end of\n"
    "    the file (footer, index and usually every key) in one request at\n"
    "    mount time, then 256 KiB blocks as they are read, kept in a\n"
    "    cache of 16 MiB; reads in order fetch up to 8 MiB ahead, and the\n"
    "    requests of one read go out at once, up to 4 in flight. The\n"
    "    version mounted is pinned by its ETag: if the\n"
    "    object changes on the server, reads fail with EIO and one log line\n"
    "    names the URL. A failed request is tried four times, then that\n"
    "    read fails with EIO. A 404 or 403 at mount time fails the mount.\n"
    "    An s3://BUCKET/KEY URL is read the same way from an S3 store,\n"
    "    every request signed (SigV4) with AWS_ACCESS_KEY_ID and\n"
    "    AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or the profile\n"
    "    AWS_PROFILE of ~/.aws/credentials; AWS_REGION names the region\n"
    "    (default us-east-1) and AWS_ENDPOINT_URL another store than\n"
    "    Amazon S3 (path style: ENDPOINT/BUCKET/KEY).\n"
    "\n"
    "    With several TABLEs, they are stacked, the last on top: a key's\n"
    "    entry in the highest table that holds it wins, and a deletion\n"
    "    (tombstone) there hides it. See sst merge to fold them into one.\n"
    "\n"
    "    The table is opened and checked before the command returns: a\n"
    "    missing or damaged table or a bad mount point fails the command\n"
    "    and nothing is mounted. Unmount with `fusermount3 -u MOUNTPOINT`, or\n"
    "    send the daemon SIGTERM or SIGINT.\n"
    "\n"
    "OPTIONS\n"
    "    -f               stay in the foreground (log to stderr, not syslog)\n"
    "    -d               debug: foreground, and print every FUSE request\n"
    "    -s               serve requests on one thread, whatever the tables\n"
    "    -o threads       serve requests on a pool of threads (libfuse's\n"
    "                     -o max_threads=N and max_idle_threads=N bound it;\n"
    "                     without a pool they do nothing).\n"
    "                     The default is one thread when every TABLE is a\n"
    "                     file, and the pool when one is a URL, whose reads\n"
    "                     wait on the network. On one thread a request's\n"
    "                     work is done between two reads of the kernel's\n"
    "                     queue; the pool lets reads that wait on a slow disk\n"
    "                     overlap, and costs the daemon memory of its own\n"
    "                     (thread stacks and start-up code, about 0.5 MiB)\n"
    "    -o flat          every key at the top level, '/' escaped as %2F\n"
    "    -o uid=N,gid=N   owner of every file (default: the owner stored "
    "in the\n"
    "                     table, else who mounts)\n"
    "    -o umask=M       mode bits to clear (octal) from the modes stored in "
    "the\n"
    "                     table, else from 0444 for files, 0555 for dirs\n"
    "    -o block_cache=SIZE  bytes of decompressed value blocks and chunks\n"
    "                     kept, per table, for tables with compressed values\n"
    "                     (default 256K, and at least two of the table's\n"
    "                     largest blocks or chunks); each is decompressed and\n"
    "                     checked once while kept. SIZE: a number of bytes,\n"
    "                     or with K, M, G or T (powers of 1024)\n"
    "    -o cache=DIR     keep the blocks fetched of tables behind URLs in\n"
    "                     DIR (it must exist), for the next mount of the same\n"
    "                     version: such a mount asks the server only whether\n"
    "                     the table changed. Each block is checked against\n"
    "                     its checksum before use. Several mounts may share\n"
    "                     DIR\n"
    "    -o cache_size=SIZE  the most disk DIR may use (default 1G, at least\n"
    "                     4M): the blocks used least recently are removed to\n"
    "                     make room. Mounts sharing DIR should give the same\n"
    "                     SIZE\n"
    "    -o allow_other   let other users in (see /etc/fuse.conf)\n"
    "    -o OPT           any other FUSE mount option (see mount.fuse3(8))\n"
    "    -h, --help       show this help\n"
    "    -V, --version    show the version\n"
    "\n"
    "EXIT STATUS\n"
    "    0 when mounted (in the foreground: when unmounted cleanly), 1 on\n"
    "    error, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "    sstfs data.sstable /mnt/data && ls /mnt/data && fusermount3 -u "
    "/mnt/data\n"
    "    mount -t fuse.sstfs /srv/data.sstable /mnt/data -o allow_other\n"
    "    fstab: /srv/data.sstable /mnt/data fuse.sstfs ro,allow_other 0 0\n";

#define CONF_OPT(t, p, v)                                                      \
  { t, offsetof(config, p), v }

static const struct fuse_opt conf_opts[] = {
    CONF_OPT("flat", flat, 1),
    CONF_OPT("uid=%u", uid, 0),
    CONF_OPT("uid=", have_uid, 1),
    CONF_OPT("gid=%u", gid, 0),
    CONF_OPT("gid=", have_gid, 1),
    CONF_OPT("umask=%o", umask, 0),
    CONF_OPT("umask=", have_umask, 1),
    CONF_OPT("block_cache=%s", block_cache, 0),
    CONF_OPT("cache_size=%s", cache_size, 0),
    CONF_OPT("cache=%s", cache_dir, 0),
    CONF_OPT("threads", threads, 1),
    SSTFS_HELP_OPTS,
    FUSE_OPT_KEY("-V", SSTFS_KEY_VERSION),
    FUSE_OPT_KEY("--version", SSTFS_KEY_VERSION),
    FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key,
                    struct fuse_args *outargs) {
  (void)outargs;
  config *c = data;
  switch (key) {
  case SSTFS_KEY_HELP:
    c->show_help = 1;
    return 0;
  case SSTFS_KEY_VERSION:
    c->show_version = 1;
    return 0;
  case FUSE_OPT_KEY_NONOPT:
    /* Tables and the mount point; the last is handed back to
     * fuse_parse_cmdline once all are known. */
    if (c->nargs > MAX_TABLES) {
      fprintf(stderr, "sstfs: at most %d tables can be stacked\n", MAX_TABLES);
      return -1;
    }
    c->args[c->nargs++] = strdup(arg);
    return 0;
  default:
    return 1;
  }
}

/* Adds "-o fsname=TABLE,subtype=sstfs,ro,default_permissions": the table
 * shows in mount(8) as the source, the mount as type fuse.sstfs. */
static int add_mount_opts(struct fuse_args *args, const char *table) {
  char *opts = NULL, *fsname = malloc(strlen(table) + 8);
  if (fsname == NULL)
    return -1;
  sprintf(fsname, "fsname=%s", table);
  int rc = fuse_opt_add_opt_escaped(&opts, fsname) ||
           fuse_opt_add_opt(&opts, "subtype=sstfs") ||
           fuse_opt_add_opt(&opts, "ro") ||
           fuse_opt_add_opt(&opts, "default_permissions") ||
           fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts);
  free(fsname);
  free(opts);
  return rc ? -1 : 0;
}

/* A size: a byte count with an optional K, M, G or T suffix (powers of
 * 1024), as the sst tool reads them. 0, or -1 with a message naming
 * option. */
static int parse_size(const char *option, const char *arg, uint64_t min,
                      uint64_t *out) {
  uint64_t n;
  if (sst_parse_size(arg, &n) != 0) {
    fprintf(stderr,
            "sstfs: -o %s=%s: not a size (bytes, or a number with K, M, G "
            "or T: 64M)\n",
            option, arg);
    return -1;
  }
  if (n < min) {
    fprintf(stderr, "sstfs: -o %s=%s: less than the least, %llu bytes\n",
            option, arg, (unsigned long long)min);
    return -1;
  }
  *out = n;
  return 0;
}

/* What the library reports on its own (a table behind a URL that
 * changed, a request that failed after its retries). */
static void log_library(const char *line) { sstfs_log("%s", line); }

/* Whether a table of the stack is behind a URL. */
static int any_remote(const sstfs *fs) {
  for (size_t i = 0; i < fs->n; i++)
    if (sst_reader_fd(fs->readers[i]) < 0)
      return 1;
  return 0;
}

/* In the daemon, before the mount command returns: the decoder's code is
 * mapped once the first read comes (sst_reader_warm), and so is the code
 * of lookups and reads (sstfs_rehearse), unless a table is behind a URL:
 * a rehearsal would make requests for it. */
static void warm_readers(void *arg) {
  sstfs *fs = arg;
  for (size_t i = 0; i < fs->n; i++)
    sst_reader_warm(fs->readers[i]);
  if (!any_remote(fs))
    sstfs_rehearse(fs);
}

static void *idle_thread(void *arg) { return arg; }

/* libc binds the dynamic linker's TLS set-up (for a new stack, then for a
 * reused one) on the first thread it starts. Done in the daemon, after the
 * fork, that symbol lookup walks every loaded object's symbol tables and
 * maps their pages into it for good (docs/BENCHMARKS.md has the figure);
 * done once before the fork, the daemon inherits the bound address. */
static void bind_thread_start(void) {
  for (int round = 0; round < 2; round++) {
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
      return;
    pthread_join(t, NULL);
  }
}

int main(int argc, char *argv[]) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--stage") == 0)
      return sstfs_stage_main(argc, argv);
    if (strcmp(argv[i], "--unmount") == 0) {
      if (i + 1 >= argc || argc != 3) {
        fprintf(stderr, "usage: sstfs --unmount MOUNTPOINT\n");
        return 2;
      }
      return sstfs_unmount_main(argv[i + 1]);
    }
  }
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts opts = {0};
  struct fuse_session *se = NULL;
  /* Static: its slot tables are zero pages until used, instead of 64 KiB
   * of stack written at start-up that the daemon would inherit. */
  static sstfs fs;
  /* Buffers of 32 KiB and more (the scratch space of lookups, listing
   * buffers) get their own mappings, given back when freed. The heap grows
   * by no more than it needs (no top pad), so that such a buffer is never
   * carved from spare room at its top and left resident there. One arena
   * serves all worker threads: their small allocations go through each
   * thread's cache without the lock anyway, and every extra arena would
   * keep pages of its own resident. */
  mallopt(M_MMAP_THRESHOLD, 32 << 10);
  mallopt(M_TOP_PAD, 0);
  mallopt(M_ARENA_MAX, 1);
  int status = 1, rc;

  if (fuse_opt_parse(&args, &fs.conf, conf_opts, opt_proc) != 0) {
    status = 2;
    goto out_args;
  }
  if (fs.conf.show_help) {
    fputs(usage_text, stdout);
    status = 0;
    goto out_args;
  }
  if (fs.conf.show_version) {
    printf("sstfs " SST_VERSION_STRING
           " (table format %d, FUSE %s, staging over io_uring: %s)\n",
           SST_FORMAT_VERSION, fuse_pkgversion(),
           sstfs_uring_built() ? "yes" : "no");
    status = 0;
    goto out_args;
  }
  if (fs.conf.nargs < 2) {
    fprintf(stderr, "usage: sstfs [OPTION]... TABLE... MOUNTPOINT\n"
                    "Try 'sstfs --help' for more information.\n");
    status = 2;
    goto out_args;
  }
  /* A bad mount point is an error (1), not a usage error. */
  if (sstfs_check_mountpoint(fs.conf.args[fs.conf.nargs - 1]) != 0)
    goto out_args;
  if (fuse_opt_add_arg(&args, fs.conf.args[fs.conf.nargs - 1]) != 0 ||
      fuse_parse_cmdline(&args, &opts) != 0 || opts.mountpoint == NULL) {
    status = 2;
    goto out_opts;
  }
  if (opts.singlethread && fs.conf.threads) {
    fprintf(stderr, "sstfs: -s and -o threads contradict each other\n");
    status = 2;
    goto out_opts;
  }
  if (!fs.conf.have_uid)
    fs.conf.uid = getuid();
  if (!fs.conf.have_gid)
    fs.conf.gid = getgid();
  sstfs_log_init(opts.foreground);
  sst_set_log(log_library);

  /* Open and check every table before anything is mounted. */
  sst_reader_options ro;
  sst_reader_options_init(&ro);
  ro.release_pages = 1; /* keep the daemon small whatever is read */
  ro.pread_blocks = 1;
  /* 256 KiB: two 128 KiB chunks of a large value (sst pack's default;
   * its value blocks of 256 KiB get 512 KiB, see below), the piece a read
   * is in and the one before it, which reads in order need; a reply holds its
   * pieces in the cache past the bound while it is sent
   * (sst_reader_read_spans). Cold tar and grep -r of /usr/include took the same
   * time as with 512 KiB, for a smaller peak (docs/BENCHMARKS.md). The reader
   * keeps room for two of a table's largest pieces whatever the bound. */
  ro.cache_bytes = (uint64_t)256 << 10;
  if (fs.conf.block_cache != NULL &&
      parse_size("block_cache", fs.conf.block_cache, 1, &ro.cache_bytes) != 0) {
    status = 2;
    goto out_reader;
  }
  if (fs.conf.cache_size != NULL) {
    if (fs.conf.cache_dir == NULL) {
      fprintf(stderr,
              "sstfs: -o cache_size=%s bounds the cache directory of tables "
              "behind URLs,\n"
              "which needs -o cache=DIR; the memory kept of decompressed "
              "blocks is\n"
              "-o block_cache=SIZE\n",
              fs.conf.cache_size);
      status = 2;
      goto out_reader;
    }
    if (parse_size("cache_size", fs.conf.cache_size, (uint64_t)4 << 20,
                   &ro.cache_max) != 0) {
      status = 2;
      goto out_reader;
    }
  }
  /* The daemon's working directory becomes / once it is in the
   * background: the cache directory is made absolute first. */
  char cache_dir[PATH_MAX];
  if (fs.conf.cache_dir != NULL) {
    if (realpath(fs.conf.cache_dir, cache_dir) == NULL) {
      fprintf(stderr, "sstfs: -o cache=%s: %s\n", fs.conf.cache_dir,
              strerror(errno));
      goto out_reader;
    }
    ro.cache_dir = cache_dir;
  }
  char table[PATH_MAX], first[PATH_MAX];
  for (int i = 0; i < fs.conf.nargs - 1; i++) {
    const char *arg = fs.conf.args[i];
    sst_error err;
    if (sst_name_is_url(arg)) {
      if (strlen(arg) >= sizeof table) {
        fprintf(stderr, "sstfs: %s: %s\n", arg, strerror(ENAMETOOLONG));
        goto out_reader;
      }
      strcpy(table, arg);
    } else if (realpath(arg, table) == NULL) {
      fprintf(stderr, "sstfs: %s: %s\n", arg, strerror(errno));
      goto out_reader;
    }
    if ((rc = sst_reader_open(table, &ro, &fs.readers[fs.n], &err)) != 0) {
      fprintf(stderr, "sstfs: %s\n", err.msg);
      goto out_reader;
    }
    fs.n++;
    /* Times: the newest table's. */
    struct stat st;
    if (sst_name_is_url(table)) {
      memset(&st, 0, sizeof st);
      st.st_mtim.tv_sec = (time_t)sst_reader_mtime(fs.readers[fs.n - 1]);
    }
    if ((sst_name_is_url(table) || stat(table, &st) == 0) &&
        (st.st_mtim.tv_sec > fs.mtime.tv_sec ||
         (st.st_mtim.tv_sec == fs.mtime.tv_sec &&
          st.st_mtim.tv_nsec > fs.mtime.tv_nsec)))
      fs.mtime = st.st_mtim;
    if (i == 0)
      snprintf(first, sizeof first, "%s", table);
  }
  if ((rc = sst_tree_open_stack((const sst_reader *const *)fs.readers, fs.n,
                                fs.conf.flat ? SST_PATH_FLAT : 0, &fs.tree)) !=
      0) {
    fprintf(stderr, "sstfs: %s: %s\n", first, sst_strerror(rc));
    goto out_reader;
  }
  /* One thread unless a table is behind a URL: local reads take
   * microseconds, and threads cost the daemon its own memory without
   * speeding up the reads measured in docs/BENCHMARKS.md. */
  int one_thread = opts.singlethread || (!fs.conf.threads && !any_remote(&fs));
  if (add_mount_opts(&args, first) != 0) {
    fprintf(stderr, "sstfs: out of memory\n");
    goto out_tree;
  }

  se = fuse_session_new(&args, &sstfs_ops, sizeof sstfs_ops, &fs);
  if (se == NULL)
    goto out_tree;
  if (fuse_set_signal_handlers(se) != 0)
    goto out_session;
  if (fuse_session_mount(se, opts.mountpoint) != 0)
    goto out_signals;
  if (!opts.foreground)
    openlog("sstfs", LOG_PID, LOG_DAEMON);
  /* Threads start in the daemon: libfuse's pool, and the read-ahead
   * thread of a table behind a URL. */
  if ((!one_thread || any_remote(&fs)) && !opts.foreground)
    bind_thread_start();
  if (sstfs_daemonize(opts.foreground, warm_readers, &fs) != 0)
    goto out_unmount;

  if (one_thread) {
    rc = fuse_session_loop(se);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (lc == NULL) {
      rc = -1;
    } else {
      fuse_loop_cfg_set_clone_fd(lc, opts.clone_fd);
      fuse_loop_cfg_set_max_threads(lc, opts.max_threads);
      if (opts.max_idle_threads != UINT_MAX) /* UINT_MAX: not given */
        fuse_loop_cfg_set_idle_threads(lc, opts.max_idle_threads);
      rc = fuse_session_loop_mt(se, lc);
      fuse_loop_cfg_destroy(lc);
    }
  }
  /* A loop ended by SIGTERM, SIGINT or SIGHUP returns the signal number:
   * that is a clean unmount too. */
  status = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
out_unmount:
  fuse_session_unmount(se);
out_signals:
  fuse_remove_signal_handlers(se);
out_session:
  fuse_session_destroy(se);
out_tree:
  sst_tree_close(fs.tree);
out_reader:
  for (size_t i = 0; i < fs.n; i++)
    sst_reader_close(fs.readers[i]);
out_opts:
  free(opts.mountpoint);
out_args:
  for (int i = 0; i < fs.conf.nargs; i++)
    free(fs.conf.args[i]);
  free(fs.conf.cache_dir);
  free(fs.conf.cache_size);
  free(fs.conf.block_cache);
  fuse_opt_free_args(&args);
  return status;
}
