/* stage_main.c — `sstfs --stage`: options, start-up, and the end of the
 * mount (a commit after an unmount; none after a signal). */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "area.h"
#include "common.h"
#include "daemon.h"
#include "uring.h"

/* One staging mount per process (zeroed, so it takes no room in the
 * binary). */
stage S;

static int sstfs_stage_run(int argc, char *argv[]);

static const char stage_usage[] =
    "NAME\n"
    "    sstfs --stage - a writable tree that becomes a table when unmounted\n"
    "\n"
    "SYNOPSIS\n"
    "    sstfs --stage OUT.sstable MOUNTPOINT [--base TABLE] [-o OPTION,...]\n"
    "    sstfs --unmount MOUNTPOINT\n"
    "\n"
    "DESCRIPTION\n"
    "    Mounts an empty writable tree (or, with --base, the tree of TABLE)\n"
    "    at MOUNTPOINT. Whatever is created, written, renamed or deleted\n"
    "    there becomes the new table OUT.sstable when the mount ends: OUT is\n"
    "    then either its old self or the complete new table, never partial.\n"
    "    Paths become keys by the same rules as the read-only mount\n"
    "    (docs/PATHS.md).\n"
    "\n"
    "    The table keeps the tree: regular files, directories (empty ones\n"
    "    too), symlinks and hard links (their data once), each with its\n"
    "    mode, owner, mtime in nanoseconds and user.* extended attributes.\n"
    "    Devices, FIFOs and sockets fail with EPERM; extended attributes\n"
    "    outside user.* with ENOTSUP. With --base, the base's entries show\n"
    "    their stored metadata, and a change to it (chmod, chown, touch,\n"
    "    setfattr) copies the entry into the staging area, so that it\n"
    "    lands in the table; with -o delta such an entry is written whole,\n"
    "    and a removed directory or symlink leaves tombstones.\n"
    "\n"
    "    File contents live in a staging area on disk (OUT.stage/ beside\n"
    "    OUT), not in memory.\n"
    "\n"
    "WHEN THE TABLE IS WRITTEN\n"
    "    Only when the mount ends by an unmount (sstfs --unmount MOUNTPOINT,\n"
    "    fusermount3 -u, umount), or on sync MOUNTPOINT. SIGTERM, SIGINT or\n"
    "    SIGHUP stop the daemon without writing anything: the mount goes,\n"
    "    the staging area is kept for -o resume, and the log says so.\n"
    "\n"
    "    sstfs --unmount MOUNTPOINT unmounts, waits until the table is\n"
    "    written, and exits 0 only if it was; otherwise it prints why, and\n"
    "    the staging area is kept for a later resume. It also says what\n"
    "    became of a staging mount that is no longer mounted. In the\n"
    "    foreground (-f), sstfs --stage exits with the status of the commit.\n"
    "\n"
    "    sync MOUNTPOINT (an fsync of the mount's root directory) writes OUT\n"
    "    from what is staged at that moment and leaves the mount as it is:\n"
    "    changes under way finish first, later ones wait until OUT is\n"
    "    written. sync exits 0 only if OUT was written. The end of the\n"
    "    mount writes OUT again. An fsync of any other directory makes the\n"
    "    staging area durable and writes no table.\n"
    "\n"
    "    A commit replaces only an OUT that this staging area wrote (by a\n"
    "    sync): if a table appeared at OUT after the mount started, the\n"
    "    commit fails and OUT is left as it is, unless -o overwrite. While\n"
    "    a daemon stages OUT it holds OUT.lock, so that no second staging\n"
    "    area (-o stagedir=) can write OUT at the same time.\n"
    "\n"
    "RESUMING\n"
    "    Files closed before the daemon dies (even by SIGKILL) are in the\n"
    "    staging area when it restarts; files fsynced before the machine\n"
    "    stops likewise. Starting the same command again finds the area,\n"
    "    says why its last mount ended without a table, and offers to\n"
    "    resume it (-o resume does so without asking). A staging area is\n"
    "    never discarded on its own.\n"
    "\n"
    "    A file that was open for writing when the daemon died, and was not\n"
    "    closed or fsynced since, may be incomplete. The resume names each\n"
    "    such file with its size and moves it to OUT.stage/incomplete/, out\n"
    "    of the mount and of the table: copy it again, or resume with\n"
    "    -o keep_incomplete to keep it as it is. sstfs --unmount names the\n"
    "    files that were left out.\n"
    "\n"
    "OTHER USERS\n"
    "    With -o allow_other, the mount enforces the modes and owners it\n"
    "    shows, as a kernel file system does. What a user creates belongs\n"
    "    to that user (and to the parent's group where the parent is\n"
    "    setgid); a write or a chown by a user other than root clears\n"
    "    setuid and setgid bits. The mount's root is 0755, owned by the\n"
    "    user who mounted. A daemon not running as root owns all it stages.\n"
    "\n"
    "OPTIONS\n"
    "    --base TABLE      start from TABLE's contents (read from TABLE\n"
    "                      until changed); several --base stack, the last\n"
    "                      on top, as in a read-only mount of them\n"
    "    -o delta          with --base: write only what changed: new and\n"
    "                      changed files, and a tombstone for each deleted\n"
    "                      key, so that OUT stacks over the base\n"
    "    -o overwrite      allow OUT to exist already, or to appear during\n"
    "                      the mount (it is replaced)\n"
    "    -o resume         resume an existing staging area\n"
    "    -o keep_incomplete\n"
    "                      on resume, keep files that were open for writing\n"
    "                      when the last daemon died as they are (see\n"
    "                      RESUMING)\n"
    "    -o stagedir=DIR   the staging area (default OUT.stage)\n"
    "    -o compress=zstd[:LEVEL]|none\n"
    "                      compress OUT's values with zstd at LEVEL (1 to\n"
    "                      19; zstd alone is 10, the default), or store them\n"
    "                      as they are (see sst pack --help), on one\n"
    "                      thread for each CPU online\n"
    "    -o nodedup        store every copy of identical files (by default\n"
    "                      identical contents are stored once)\n"
    "    -o allow_other    let other users in (see OTHER USERS and\n"
    "                      /etc/fuse.conf)\n"
    "    -o nouring        never take requests through io_uring (see\n"
    "                      PERFORMANCE)\n"
    "    -f, -d, -s        foreground, debug, single-threaded\n"
    "\n"
    "FILES\n"
    "    OUT.stage/        the staging area: tree/ (the staged files),\n"
    "                      error (why the last mount ended without a\n"
    "                      table), incomplete/ (files left out on resume)\n"
    "    OUT.lock          held while a daemon stages OUT; a daemon killed\n"
    "                      by SIGKILL leaves it, and the next one takes it\n"
    "    /run/sstfs/       (root; else $XDG_RUNTIME_DIR/sstfs/) which\n"
    "                      staging area each mount point uses\n"
    "\n"
    "PERFORMANCE\n"
    "    Each file copied in costs several FUSE requests. On Linux 6.14 and\n"
    "    later, FUSE can pass them through io_uring, one queue per CPU,\n"
    "    which on most machines makes copying small files much faster.\n"
    "    The kernel offers it only when the fuse module allows it; as root:\n"
    "        echo Y > /sys/module/fuse/parameters/enable_uring\n"
    "    (or fuse.enable_uring=1 on the kernel command line). sstfs uses\n"
    "    it whenever it is offered, and /dev/fuse otherwise.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on success; 1 on failure, including a bad mount point, and a\n"
    "    daemon in the foreground stopped by a signal (nothing is lost:\n"
    "    the staging area is kept); 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "    sstfs --stage new.sstable /mnt/new && cp -a data/. /mnt/new/ &&\n"
    "        sstfs --unmount /mnt/new\n"
    "    sstfs --stage v2.sstable /mnt/v2 --base v1.sstable\n"
    "    sync /mnt/v2     # v2.sstable now holds the tree as it is\n"
    "    sstfs --stage new.sstable /mnt/new -o resume   # after a crash\n";

#define STAGE_OPT(t, p, v)                                                     \
  { t, offsetof(stage_conf, p), v }

static const struct fuse_opt stage_opts[] = {
    STAGE_OPT("overwrite", overwrite, 1),
    STAGE_OPT("delta", delta, 1),
    STAGE_OPT("resume", resume, 1),
    STAGE_OPT("keep_incomplete", keep_incomplete, 1),
    STAGE_OPT("stagedir=%s", stagedir, 0),
    STAGE_OPT("nouring", nouring, 1),
    STAGE_OPT("compress=%s", compress, 0),
    STAGE_OPT("nodedup", nodedup, 1),
    FUSE_OPT_KEY("--stage", SSTFS_KEY_STAGE),
    SSTFS_HELP_OPTS,
    FUSE_OPT_END,
};

static int stage_opt_proc(void *data, const char *arg, int key,
                          struct fuse_args *outargs) {
  (void)outargs;
  stage_conf *c = data;
  if (key == SSTFS_KEY_STAGE)
    return 0;
  if (key == SSTFS_KEY_HELP) {
    c->show_help = 1;
    return 0;
  }
  if (key == FUSE_OPT_KEY_NONOPT && c->out == NULL) {
    c->out = strdup(arg);
    return 0;
  }
  if (key == FUSE_OPT_KEY_NONOPT && c->mnt_arg == NULL)
    c->mnt_arg = strdup(arg); /* and kept for fuse_parse_cmdline */
  return 1;
}

/* OUT's absolute path, whether or not it exists yet. */
static int absolute_out(const char *out) {
  char dir[PATH_MAX], *slash;
  snprintf(dir, sizeof dir, "%s", out);
  const char *name = out;
  if ((slash = strrchr(dir, '/')) != NULL) {
    *slash = '\0';
    name = slash + 1;
    if (dir[0] == '\0')
      strcpy(dir, "/");
  } else {
    strcpy(dir, ".");
  }
  char real[PATH_MAX];
  if (realpath(dir, real) == NULL || *name == '\0')
    return -1;
  if (snprintf(S.out, sizeof S.out, "%s/%s", strcmp(real, "/") ? real : "",
               name) >= (int)sizeof S.out)
    return -1;
  return 0;
}

int sstfs_stage_main(int argc, char *argv[]) {
  /* --base may come several times: take those out before fuse_opt. */
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  int nrest = 0;
  if (rest == NULL)
    return 1;
  for (int i = 0; i < argc; i++) {
    const char *base = NULL;
    if (strcmp(argv[i], "--base") == 0 && i + 1 < argc)
      base = argv[++i];
    else if (strncmp(argv[i], "--base=", 7) == 0)
      base = argv[i] + 7;
    else
      rest[nrest++] = argv[i];
    if (base != NULL) {
      if (S.conf.nbases == MAX_BASES) {
        fprintf(stderr, "sstfs: at most %d --base tables\n", MAX_BASES);
        free(rest);
        return 2;
      }
      S.conf.bases[S.conf.nbases++] = (char *)base;
    }
  }
  int status = sstfs_stage_run(nrest, rest);
  free(rest);
  return status;
}

/* The signal that stopped the daemon, if one did: then nothing is
 * committed (only an unmount or a sync commits), and the staging area is
 * kept for -o resume. */
static volatile sig_atomic_t stop_signal;
static struct fuse_session *stop_session;

static void on_stop_signal(int sig) {
  stop_signal = sig;
  if (stop_session != NULL)
    fuse_session_exit(stop_session);
}

static int catch_stop_signals(struct fuse_session *se) {
  stop_session = se;
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old;
    /* A signal ignored by whoever started sstfs stays ignored. */
    if (sigaction(sigs[i], NULL, &old) != 0)
      return -1;
    if (old.sa_handler != SIG_IGN && sigaction(sigs[i], &sa, NULL) != 0)
      return -1;
  }
  struct sigaction ign = {.sa_handler = SIG_IGN};
  return sigaction(SIGPIPE, &ign, NULL);
}

static void release_stop_signals(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == on_stop_signal)
      sigaction(sigs[i], &dfl, NULL);
  }
  stop_session = NULL;
}

static int sstfs_stage_run(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts opts = {0};
  struct fuse *fuse = NULL;
  int status = 1, rc;
  S.dir_fd = S.tree_fd = S.wh_fd = S.tmp_fd = S.writing_fd = S.lock_fd = -1;
  S.out_lock_fd = -1;
  S.is_root = geteuid() == 0;
  S.umask = umask(0);
  umask(S.umask);

  if (fuse_opt_parse(&args, &S.conf, stage_opts, stage_opt_proc) != 0)
    return 2;
  if (S.conf.show_help) {
    fputs(stage_usage, stdout);
    status = 0;
    goto out_args;
  }
  /* A bad mount point is an error (1), not a usage error (2): look at it
   * before libfuse does. */
  if (S.conf.out != NULL && S.conf.mnt_arg != NULL &&
      sstfs_check_mountpoint(S.conf.mnt_arg) != 0)
    goto out_args;
  if (fuse_parse_cmdline(&args, &opts) != 0 || S.conf.out == NULL ||
      opts.mountpoint == NULL) {
    fprintf(stderr, "usage: sstfs --stage OUT.sstable MOUNTPOINT "
                    "[--base TABLE] [-o OPTION,...]\n"
                    "Try 'sstfs --stage --help' for more information.\n");
    status = 2;
    goto out_opts;
  }
  sstfs_log_init(opts.foreground);
  snprintf(S.mnt, sizeof S.mnt, "%s", opts.mountpoint);
  if (absolute_out(S.conf.out) != 0) {
    fprintf(stderr, "sstfs: %s: no such directory for the table\n", S.conf.out);
    goto out_opts;
  }
  if (snprintf(S.dir, sizeof S.dir, "%s",
               S.conf.stagedir ? S.conf.stagedir : S.out) >=
          (int)sizeof S.dir - 8 ||
      (!S.conf.stagedir && strlen(S.dir) + 7 > sizeof S.dir)) {
    fprintf(stderr, "sstfs: %s: %s\n", S.dir, strerror(ENAMETOOLONG));
    goto out_opts;
  }
  if (!S.conf.stagedir)
    strcat(S.dir, ".stage");
  for (int i = 0; i < S.conf.nbases; i++) {
    sst_error err;
    if (realpath(S.conf.bases[i], S.base_path[i]) == NULL) {
      fprintf(stderr, "sstfs: %s: %s\n", S.conf.bases[i], strerror(errno));
      goto out_base;
    }
    if (sst_reader_open(S.base_path[i], NULL, &S.base[i], &err) != 0) {
      fprintf(stderr, "sstfs: %s\n", err.msg);
      goto out_base;
    }
    S.nbase++;
  }
  S.conf.zstd_level = SST_TREE_ZSTD_LEVEL;
  if (S.conf.compress != NULL &&
      sst_parse_compress(S.conf.compress, SST_TREE_ZSTD_LEVEL,
                         &S.conf.zstd_level) != 0) {
    fprintf(stderr,
            "sstfs: -o compress=%s: not zstd, zstd:LEVEL (1 to 19) or "
            "none\n",
            S.conf.compress);
    status = 2;
    goto out_base;
  }
  if (S.conf.delta && S.nbase == 0) {
    fprintf(stderr, "sstfs: -o delta needs --base\n");
    status = 2;
    goto out_base;
  }
  if (S.nbase > 0 && sst_tree_open_stack((const sst_reader *const *)S.base,
                                         S.nbase, 0, &S.base_tree) != 0) {
    fprintf(stderr, "sstfs: %s: cannot be shown as a tree\n", S.base_path[0]);
    goto out_base;
  }
  if (area_take(&S) != 0)
    goto out_area;
  /* A new area over a base starts from the base root's metadata. */
  if (S.created && (rc = ov_init_root(&S)) != 0) {
    fprintf(stderr, "sstfs: %s/tree: %s\n", S.dir, strerror(rc));
    goto out_area;
  }

  /* The staging area names the mount, so --unmount can find it. The mount
   * enforces the modes and owners it shows (for -o allow_other). */
  char *mopts = NULL, fsname[PATH_MAX + 16];
  snprintf(fsname, sizeof fsname, "fsname=%s", S.dir);
  if (fuse_opt_add_opt_escaped(&mopts, fsname) ||
      fuse_opt_add_opt(&mopts, "subtype=sstfs") ||
      fuse_opt_add_opt(&mopts, "default_permissions") ||
      fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, mopts)) {
    free(mopts);
    fprintf(stderr, "sstfs: out of memory\n");
    goto out_area;
  }
  free(mopts);
  fuse = fuse_new(&args, &stage_ops, sizeof stage_ops, NULL);
  if (fuse == NULL)
    goto out_area;
  if (fuse_mount(fuse, opts.mountpoint) != 0) {
    fprintf(stderr, "sstfs: %s could not be mounted (see above)\n",
            opts.mountpoint);
    goto out_fuse;
  }
  if (catch_stop_signals(fuse_get_session(fuse)) != 0)
    goto out_unmount;
  if (!S.conf.nouring) {
    int urc = sstfs_uring_attach(fuse_get_session(fuse), sstfs_log);
    if (urc != 0)
      fprintf(stderr, "sstfs: io_uring not used: %s\n", strerror(-urc));
  }
  if (!opts.foreground)
    openlog("sstfs", LOG_PID, LOG_DAEMON);
  if (sstfs_daemonize(opts.foreground, NULL, NULL) != 0)
    goto out_unmount;
  S.created = 0; /* mounted: from here on the area is kept */
  {
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if ((rc = area_write_file(S.dir_fd, "pid", pid)) != 0 && n > 0)
      sstfs_log("%s/pid: %s", S.dir, strerror(rc));
  }
  area_register(S.mnt, S.dir, S.dir_fd);

  if (opts.singlethread) {
    rc = fuse_loop(fuse);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    rc = lc ? fuse_loop_mt(fuse, lc) : -1;
    fuse_loop_cfg_destroy(lc);
  }
  int sig = stop_signal;
  release_stop_signals();
  fuse_unmount(fuse);
  uint64_t through_uring = sstfs_uring_detach();
  if (through_uring > 0 && opts.foreground)
    sstfs_log("%llu requests were served through io_uring",
              (unsigned long long)through_uring);
  fuse_destroy(fuse);
  fuse = NULL;
  stage_ops_close_all();
  stage_ops_free_links();
  ov_free_groups();

  static char err[5 * PATH_MAX + 512];
  if (sig != 0) {
    /* Only an unmount or a sync commits: a table that looks complete but
     * holds half a copy is the worst outcome. */
    snprintf(err, sizeof err,
             "stopped by SIG%s: %s was not written; the staged files are "
             "kept in %s (resume with sstfs --stage %s %s -o resume)",
             sigabbrev_np(sig), S.out, S.dir, S.out, S.mnt);
    area_record_error(&S, err);
    goto out_area;
  }
  /* The mount is gone: write the table. */
  rc = stage_commit(&S, err, sizeof err);
  if (rc == 0) {
    area_finish(&S);
    status = 0;
  } else {
    static char msg[sizeof err + 2 * PATH_MAX + 64];
    snprintf(msg, sizeof msg,
             "commit of %s failed: %s; staged files are kept in %s", S.out, err,
             S.dir);
    area_record_error(&S, msg);
  }
  goto out_area;

out_unmount:
  release_stop_signals();
  fuse_unmount(fuse);
out_fuse:
  if (fuse)
    fuse_destroy(fuse);
out_area:
  if (S.dir_fd >= 0)
    unlinkat(S.dir_fd, "pid", 0);
  int *fds[] = {&S.dir_fd, &S.tree_fd, &S.wh_fd, &S.tmp_fd, &S.writing_fd};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (*fds[i] >= 0)
      close(*fds[i]);
  /* A start that failed leaves nothing behind that it made. */
  if (S.created && area_remove_tree(S.dir) != 0)
    fprintf(stderr, "sstfs: %s could not be removed\n", S.dir);
  if (S.lock_fd >= 0)
    close(S.lock_fd);
  area_unlock_out(S.out, S.out_lock_fd);
out_base:
  sst_tree_close(S.base_tree);
  for (size_t i = 0; i < S.nbase; i++)
    sst_reader_close(S.base[i]);
out_opts:
  free(opts.mountpoint);
out_args:
  free(S.conf.out);
  free(S.conf.stagedir);
  free(S.conf.compress);
  free(S.conf.mnt_arg);
  fuse_opt_free_args(&args);
  return status;
}
