/* cli.h — what the sst commands share: the command table's types, help
 * pages and usage errors, the progress line, argument parsing, standard
 * output, opening a table, interrupts, and paths in messages.
 *
 * Each command is a cmd_<name>() in the file of its family, with its help
 * page beside it; main.c holds the table that names them. A command
 * parses its own options with getopt_long (opterr is 0 and option strings
 * start with ':', so bad_option() explains what it refused) and returns
 * the exit status. Everything goes through the library's public headers,
 * sstable.h and sstpath.h.
 */
#ifndef SST_CLI_H
#define SST_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sstable.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The first getopt_long value of an option without a short form. */
#define OPT_LONG_ONLY 256

/* A command's help page, kept beside its cmd_<name>(): the SYNOPSIS
 * lines, also shown after a usage error, and the rest of the page. */
typedef struct command_help {
  const char *synopsis;
  const char *text;
} command_help;

typedef struct command command;
struct command {
  const char *name;
  int (*run)(const command *c, int argc, char **argv);
  const char *summary;      /* one line, for `sst --help` and NAME */
  const command_help *help; /* the page, in the command's file */
};

/* The commands, one file per family. */
int cmd_build(const command *c, int argc, char **argv);
int cmd_get(const command *c, int argc, char **argv);
int cmd_scan(const command *c, int argc, char **argv);
int cmd_dump(const command *c, int argc, char **argv);
int cmd_pack(const command *c, int argc, char **argv);
int cmd_unpack(const command *c, int argc, char **argv);
int cmd_ls(const command *c, int argc, char **argv);
int cmd_merge(const command *c, int argc, char **argv);
int cmd_info(const command *c, int argc, char **argv);
int cmd_verify(const command *c, int argc, char **argv);
extern const command_help cmd_build_help, cmd_get_help, cmd_scan_help,
    cmd_dump_help, cmd_pack_help, cmd_unpack_help, cmd_ls_help, cmd_merge_help,
    cmd_info_help, cmd_verify_help;

/* ---- messages and usage ------------------------------------------------ */

/* The whole help page of c: NAME, SYNOPSIS and the rest. */
void print_help(const command *c, FILE *to);

/* Reports a usage error with c's synopsis; returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int usage_error(const command *c,
                                                      const char *fmt, ...);

/* Explains what getopt_long refused; returns EXIT_USAGE. */
int bad_option(const command *c, int opt, char **argv);

/* The options of a command that takes only -h/--help: -1 when there were
 * none (its arguments start at optind), else the status to exit with
 * (after the help page, or a usage error). */
int help_only_options(const command *c, int argc, char **argv);

/* Prints a library failure: its message if it left one, else the code. */
void print_failure(const command *c, const char *context, int rc,
                   const sst_error *err);

/* Prints DIR/REL (DIR alone when rel_len is 0) to stderr. */
void put_path(const char *dir, const char *rel, size_t rel_len);

/* Reports "sst CMD: DIR/REL: MESSAGE"; returns EXIT_FAIL. */
__attribute__((format(printf, 5, 6))) int
path_error(const command *c, const char *dir, const char *rel, size_t rel_len,
           const char *fmt, ...);

/* ---- progress line ------------------------------------------------------ */

/* Seconds on the monotonic clock. */
double now_seconds(void);

/* One line on stderr, redrawn in place while a long command runs, shown
 * only when stderr is a terminal. */
typedef struct progress_line {
  int shown;
  double started; /* when the command started */
  double last;    /* when the line was last drawn */
  int width;      /* of the line on screen */
} progress_line;

void progress_start(progress_line *pl, int wanted);

/* Whether it is time to redraw: at most five times a second. */
int progress_due(progress_line *pl);

__attribute__((format(printf, 2, 3))) void progress_draw(progress_line *pl,
                                                         const char *fmt, ...);
void progress_clear(progress_line *pl);

/* Clears the progress line, if one is shown, before a message; the next
 * tick draws it again below the message. */
void progress_hide(void);

/* ---- argument parsing ------------------------------------------------- */

/* Each returns 0, or reports a usage error and returns EXIT_USAGE. */

/* One byte, or the two characters \t for a tab. */
int parse_delimiter(const command *c, const char *arg, int escape,
                    unsigned char *out);

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
int parse_size(const command *c, const char *opt, const char *arg,
               uint64_t *out);

/* A positive 32-bit number. */
int parse_count(const command *c, const char *opt, const char *arg,
                uint32_t *out);

/* --compress: "zstd" (level zstd_level), "zstd:LEVEL" (1..19) or "none";
 * sets o->zstd_level. zstd alone is level SST_CLI_ZSTD_LEVEL for sst build
 * and sst merge, SST_TREE_ZSTD_LEVEL (sstpath.h) for sst pack. */
#define SST_CLI_ZSTD_LEVEL 6
int parse_compress(const command *c, const char *arg, int zstd_level,
                   sst_writer_options *o);

/* -j, --jobs: how many threads compress (1..SST_THREADS_MAX); sets
 * o->threads. default_jobs() is one a CPU online. */
int parse_jobs(const command *c, const char *arg, sst_writer_options *o);
/* --value-block: 4K..4M, with a K or M suffix; sets o->value_block. */
int parse_value_block(const command *c, const char *arg, sst_writer_options *o);
unsigned default_jobs(void);

/* The help text of --compress and --dedup, for commands that write. */
#define COMPRESS_HELP(dflt, zstd_level, dedup_dflt, block_dflt)                \
  "    --compress zstd[:LEVEL]|none\n"                                         \
  "        Compress values with zstd at LEVEL (1 to 19), or store them\n"      \
  "        as they are (none); zstd alone is level " zstd_level ".\n"          \
  "        Compressed, small values are stored together in blocks\n"           \
  "        (--value-block), each compressed as one (with a dictionary\n"       \
  "        trained on them when it makes the table smaller), and larger\n"     \
  "        ones in chunks of 128 KiB, so that a read decompresses one\n"       \
  "        block or chunk. Uncompressed values are read in place, with\n"      \
  "        no decoding.\n"                                                     \
  "        Default: " dflt ".\n"                                               \
  "    --dedup, --no-dedup\n"                                                  \
  "        Store identical values once (found by hash, confirmed byte for\n"   \
  "        byte), or every copy. Default: " dedup_dflt ".\n"                   \
  "    --value-block SIZE\n"                                                   \
  "        Size of the blocks small values are stored together in (4K to\n"    \
  "        4M); values up to a quarter of it go into blocks. Larger blocks\n"  \
  "        compress better; a read of one small value then decompresses\n"     \
  "        more. Default: " block_dflt ".\n"                                   \
  "    -j, --jobs N\n"                                                         \
  "        Compress on N threads while files are read (default: one for\n"     \
  "        each CPU online). The table is the same byte for byte whatever\n"   \
  "        N is.\n"

/* A key given on the command line, decoded if escape is set. The bytes
 * are malloc'ed; *key is NULL after a usage error. EXIT_FAIL when out of
 * memory. */
int parse_key(const command *c, const char *arg, int escape, uint8_t **key,
              size_t *len);

/* ---- standard output ---------------------------------------------------- */

/* The first error writing stdout, or 0. EPIPE means the reader (say
 * `head`) has gone: output stops quietly, as SIGPIPE is ignored. */
extern int out_error;

/* Write to stdout unless an error came before; return out_error. */
int out_bytes(const void *p, size_t n);
int out_byte(unsigned char c);

/* Flushes stdout; returns 0, or 1 after reporting a failure. */
int out_finish(const command *c);

/* ---- tables ------------------------------------------------------------- */

/* Opens a table with the default options; reports a failure. */
int open_table(const command *c, const char *path, sst_reader **r);

/* open_table, and when the table does not exist, what the staging area
 * of `sstfs --stage TABLE` beside it (TABLE.stage) says about it. */
int open_table_noting_stage(const command *c, const char *path, sst_reader **r);

/* ---- interrupts (pack, unpack) ------------------------------------------ */

/* Files are copied through a buffer of this size: no file is ever held
 * whole in memory. */
#define COPY_CHUNK ((size_t)1 << 20)

/* The signal that asked the command to stop, or 0. Commands that catch
 * interrupts check it between files and chunks and stop as after an error
 * (pack removes its temporary table), then die of the signal so that a
 * shell sees why. A signal that comes once the work is complete changes
 * nothing. */
extern volatile sig_atomic_t interrupted;

/* Catches SIGINT, SIGTERM and SIGHUP into `interrupted`; a signal ignored
 * on entry (nohup, a background job) stays ignored. */
void catch_interrupts(void);

/* Returns status; but after an interrupt that made the command fail, says
 * so and dies of the signal. */
int finish_status(const command *c, int status);

#endif
