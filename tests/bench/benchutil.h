/* benchutil.h — what the helper programs of the benchmark scripts share
 * (tests/bench/fsbench.c, stagehelp.c, mergehelp.c).
 *
 * Errors end the program: each function that fails prints
 * "PROGRAM: WHAT PATH: REASON" and exits 1, since a helper has nothing
 * better to do than to stop the benchmark that runs it. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Makes the directory PATH (mode 0755) unless it exists. */
void bench_mkdir(const char *path);

/* Creates or truncates PATH (mode 0644) and writes LEN bytes of DATA. */
void bench_write_file(const char *path, const void *data, size_t len);

/* The lines of PATH without their newlines, as an array of *COUNT
 * strings. The caller owns the array and the strings. */
char **bench_read_lines(const char *path, size_t *count);

/* Frees what bench_read_lines returned. */
void bench_free_lines(char **lines, size_t count);

/* Opens and reads whole every file named in LIST (relative to ROOT), in
 * order, with read() into a 1 MiB buffer; LIST is read before the first
 * file is opened, so that only the files are timed. Prints "FILES BYTES",
 * and with SUM an XXH3 checksum of every file's bytes, in order. */
void bench_read_listed(const char *root, const char *list, int sum);

/* Reads /proc/PID/NAME into TEXT (SIZE bytes, NUL-terminated). Returns
 * the length, or -1 once the process is gone. */
ssize_t bench_read_proc(const char *pid, const char *name, char *text,
                        size_t size);

/* The number after FIELD ("\nVmHWM:") in a /proc status text, or -1. */
long bench_status_kib(const char *text, const char *field);

/* For a sampler that runs until it is told to stop: from now on, SIGTERM
 * and SIGINT only make bench_stop_requested() true. */
void bench_catch_stop(void);
int bench_stop_requested(void);

#endif
