/* cli.c — the helpers every sst command shares (see cli.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "spill.h"

/* ---- progress line ------------------------------------------------------ */

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(progress_line *pl, int wanted) {
  pl->shown = wanted && isatty(STDERR_FILENO);
  pl->started = pl->last = now_seconds(); /* first line after 0.2 s */
  pl->width = 0;
}

/* Whether it is time to redraw: at most five times a second. */
int progress_due(progress_line *pl) {
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

void progress_draw(progress_line *pl, const char *fmt, ...) {
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

void progress_clear(progress_line *pl) {
  if (pl->width > 0)
    fprintf(stderr, "\r%*s\r", pl->width, "");
  pl->width = 0;
  if (progress_on_screen == pl)
    progress_on_screen = NULL;
}

/* Clears the progress line, if one is shown, before a message; the next
 * tick draws it again below the message. */
void progress_hide(void) {
  if (progress_on_screen != NULL)
    progress_clear(progress_on_screen);
}

/* ---- messages and usage ------------------------------------------------ */

void print_help(const command *c, FILE *to) {
  fprintf(to, "NAME\n    sst %s - %s\n\nSYNOPSIS\n%s\n\n%s", c->name,
          c->summary, c->help->synopsis, c->help->text);
}

int usage_error(const command *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "sst %s: ", c->name);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nUsage:\n%s\nTry 'sst %s --help' for more information.\n",
          c->help->synopsis, c->name);
  return EXIT_USAGE;
}

/* Explains what getopt_long refused (it is run with opterr = 0 and a
 * leading ':' in the option string, so nothing is printed for us). */
int bad_option(const command *c, int opt, char **argv) {
  const char *word = argv[optind - 1];
  if (opt == ':')
    return usage_error(c, "option '%s' needs an argument", word);
  if (optopt > 0 && optopt < 128 && strncmp(word, "--", 2) != 0)
    return usage_error(c, "unknown option '-%c'", optopt);
  return usage_error(c, "unknown option '%s'", word);
}

/* Prints a library failure: its message if it left one, else the code. */
void print_failure(const command *c, const char *context, int rc,
                   const sst_error *err) {
  progress_hide();
  if (err != NULL && err->code == rc && err->msg[0] != '\0')
    fprintf(stderr, "sst %s: %s\n", c->name, err->msg);
  else
    fprintf(stderr, "sst %s: %s: %s\n", c->name, context, sst_strerror(rc));
}

/* Prints DIR/REL (DIR alone when rel_len is 0) to stderr. */
void put_path(const char *dir, const char *rel, size_t rel_len) {
  size_t n = strlen(dir);
  fputs(dir, stderr);
  if (rel_len > 0) {
    if (n == 0 || dir[n - 1] != '/')
      fputc('/', stderr);
    fwrite(rel, 1, rel_len, stderr);
  }
}

/* Reports "sst CMD: DIR/REL: MESSAGE"; returns EXIT_FAIL. */
int path_error(const command *c, const char *dir, const char *rel,
               size_t rel_len, const char *fmt, ...) {
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

/* ---- argument parsing ------------------------------------------------- */

/* One byte, or the two characters \t for a tab. */
int parse_delimiter(const command *c, const char *arg, int escape,
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

/* A byte count with an optional K, M, G or T suffix (powers of 1024),
 * not 0. */
int parse_size(const command *c, const char *opt, const char *arg,
               uint64_t *out) {
  uint64_t n;
  if (sst_parse_size(arg, &n) != 0 || n == 0)
    return usage_error(c, "%s: '%s' is not a size such as 512M", opt, arg);
  *out = n;
  return 0;
}

int parse_count(const command *c, const char *opt, const char *arg,
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

int parse_jobs(const command *c, const char *arg, sst_writer_options *o) {
  uint32_t n = 0;
  if (parse_count(c, "--jobs", arg, &n) != 0)
    return EXIT_USAGE;
  if (n > SST_THREADS_MAX)
    return usage_error(c, "--jobs: at most %d threads", SST_THREADS_MAX);
  o->threads = n;
  return 0;
}

int parse_value_block(const command *c, const char *arg,
                      sst_writer_options *o) {
  uint64_t n = 0;
  if (parse_size(c, "--value-block", arg, &n) != 0)
    return EXIT_USAGE;
  if (n < (4u << 10) || n > (4u << 20))
    return usage_error(c, "--value-block: '%s' is not between 4K and 4M", arg);
  o->value_block = (uint32_t)n;
  return 0;
}

unsigned default_jobs(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > SST_THREADS_MAX ? SST_THREADS_MAX : (unsigned)n;
}

int parse_compress(const command *c, const char *arg, int zstd_level,
                   sst_writer_options *o) {
  if (sst_parse_compress(arg, zstd_level, &o->zstd_level) == 0)
    return 0;
  return usage_error(c,
                     "--compress: '%s' is not zstd, zstd:LEVEL (1 to 19) or "
                     "none",
                     arg);
}

/* A key given on the command line, decoded if --escape is set. The bytes
 * are malloc'ed; *key is NULL after a usage error. */
int parse_key(const command *c, const char *arg, int escape, uint8_t **key,
              size_t *len) {
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
int out_error;

int out_bytes(const void *p, size_t n) {
  if (out_error == 0 && n > 0) {
    errno = 0;
    if (fwrite(p, 1, n, stdout) != n)
      out_error = errno != 0 ? errno : EIO;
  }
  return out_error;
}

int out_byte(unsigned char c) { return out_bytes(&c, 1); }

/* Flushes stdout; returns 0, or 1 after reporting a failure. */
int out_finish(const command *c) {
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

/* ---- tables ----------------------------------------------------------- */

int open_table(const command *c, const char *path, sst_reader **r) {
  sst_error err = {0};
  int rc = sst_reader_open(path, NULL, r, &err);
  if (rc != 0)
    print_failure(c, path, rc, &err);
  return rc;
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
int open_table_noting_stage(const command *c, const char *path,
                            sst_reader **r) {
  sst_error err = {0};
  int rc = sst_reader_open(path, NULL, r, &err);
  char note[2 * PATH_MAX + 1024];
  if (rc == ENOENT && err.code == rc && stage_note(path, note, sizeof note))
    fprintf(stderr, "sst %s: %s%s\n", c->name, err.msg, note);
  else if (rc != 0)
    print_failure(c, path, rc, &err);
  return rc;
}

/* ---- interrupts ------------------------------------------------------- */

volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) { interrupted = sig; }

void catch_interrupts(void) {
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

int finish_status(const command *c, int status) {
  if (interrupted && status != EXIT_OK) {
    fprintf(stderr, "sst %s: interrupted\n", c->name);
    signal(interrupted, SIG_DFL);
    raise(interrupted);
  }
  return status;
}

int help_only_options(const command *c, int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int opt = getopt_long(argc, argv, ":h", longopts, NULL);
  if (opt == -1)
    return -1;
  if (opt != 'h')
    return bad_option(c, opt, argv);
  print_help(c, stdout);
  return EXIT_OK;
}
