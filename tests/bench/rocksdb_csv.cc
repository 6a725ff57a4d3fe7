// rocksdb_csv.cc — the peer of `sst build` in scripts/bench-core's
// whole-process rows: "key,value" lines into a table written by RocksDB.
//
//   rocksdb_csv OUT [INPUT]
//
// Reads INPUT (standard input if absent or -) line by line with getline,
// splits each line at its first comma and Puts key and value into a
// rocksdb::SstFileWriter with default Options, which needs the keys in
// strictly increasing order (sort the input first, e.g. with
// `LC_ALL=C sort -t, -k1,1`). Finish() syncs the file; the directory is
// synced too, so the table ends as durable as one from `sst build` (fsync
// of the file, rename, fsync of the directory). A line without a comma, or
// a key out of order, is an error (exit 1).

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>

namespace {

void die_on(const rocksdb::Status &s, const char *what) {
  if (!s.ok()) {
    fprintf(stderr, "rocksdb_csv: %s: %s\n", what, s.ToString().c_str());
    exit(1);
  }
}

void fsync_dir_of(const char *path) {
  std::string copy(path);
  int fd = open(dirname(&copy[0]), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    perror("rocksdb_csv: fsync of directory");
    exit(1);
  }
  close(fd);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: rocksdb_csv OUT [INPUT]\n");
    return 2;
  }
  FILE *in = stdin;
  if (argc == 3 && strcmp(argv[2], "-") != 0 &&
      (in = fopen(argv[2], "r")) == nullptr) {
    perror(argv[2]);
    return 1;
  }
  rocksdb::Options options;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  die_on(writer.Open(argv[1]), "SstFileWriter::Open");
  char *line = nullptr;
  size_t cap = 0;
  ssize_t len;
  unsigned long long n = 0;
  while ((len = getline(&line, &cap, in)) > 0) {
    n++;
    if (line[len - 1] == '\n')
      len--;
    char *comma = static_cast<char *>(memchr(line, ',', (size_t)len));
    if (comma == nullptr) {
      fprintf(stderr, "rocksdb_csv: line %llu: no comma\n", n);
      return 1;
    }
    rocksdb::Slice key(line, (size_t)(comma - line));
    rocksdb::Slice value(comma + 1, (size_t)(line + len - comma - 1));
    die_on(writer.Put(key, value), "SstFileWriter::Put");
  }
  free(line);
  die_on(writer.Finish(), "SstFileWriter::Finish");
  fsync_dir_of(argv[1]);
  return 0;
}
