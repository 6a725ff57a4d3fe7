/* install_prog.c — a program that uses the installed library: writes a
 * table of one record to the path it is given, reads it back and prints
 * the value's length. test_install.sh builds it against the installed
 * header and pkg-config file only. */
#include <sstable.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  sst_writer *w;
  sst_error err;
  if (argc < 2 || sst_writer_open(argv[1], NULL, &w, &err)) return 1;
  if (sst_writer_add(w, "k", 1, "v", 1) || sst_writer_finish(w, &err)) return 1;
  sst_writer_free(w);
  sst_reader *r;
  const unsigned char *v;
  unsigned long long n = 0;
  uint64_t vl;
  if (sst_reader_open(argv[1], NULL, &r, &err)) return 1;
  if (sst_reader_get(r, "k", 1, &v, &vl) || vl != 1 || v[0] != 'v') return 1;
  n = vl;
  sst_reader_close(r);
  printf("%llu\n", n);
  return 0;
}
