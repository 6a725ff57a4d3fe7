// bench_rocksdb_compact.cc — RocksDB's compaction of two overlapping
// tables, the peer of `sst merge` in scripts/bench-merge.
//
//   bench_rocksdb_compact prepare DIR A.csv B.csv
//       Writes DIR/a.sst and DIR/b.sst from the two files of sorted
//       "key,value" lines with rocksdb::SstFileWriter (default Options),
//       untimed. Prints a line with the record counts.
//   bench_rocksdb_compact compact DIR DB [--no-compression]
//       Opens a fresh DB at DB (default Options, create_if_missing), ingests
//       DIR/a.sst, then DIR/b.sst (copies: IngestExternalFile with default
//       options, so a.sst, which the empty DB cannot overlap, goes to the
//       bottom level L6, and b.sst, whose keys overlap it, to L5), all
//       untimed; then times CompactRange(nullptr, nullptr) with default
//       CompactRangeOptions, which merges L5 into L6 in one compaction
//       (B's entry of a key wins, as it is newer). RocksDB syncs the
//       compaction's output files and its MANIFEST before CompactRange
//       returns. Afterwards, untimed, counts the keys in the DB and the
//       bytes of its table files. With --no-compression the DB (and so the
//       compaction output) uses no compression instead of the default.
//
// Prints "RESULT engine=rocksdb compact_s=... keys=... out_bytes=..." and
// an INFO line with the layout before the compaction and the settings.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/version.h>

namespace {

void die_on(const rocksdb::Status &s, const char *what) {
  if (!s.ok()) {
    fprintf(stderr, "bench_rocksdb_compact: %s: %s\n", what,
            s.ToString().c_str());
    exit(1);
  }
}

double seconds_now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Writes the records of the sorted CSV file csv into the table sst.
uint64_t write_table(const char *csv, const std::string &sst) {
  FILE *in = fopen(csv, "r");
  if (in == nullptr) {
    perror(csv);
    exit(1);
  }
  rocksdb::Options options;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  die_on(writer.Open(sst), "SstFileWriter::Open");
  char *line = nullptr;
  size_t cap = 0;
  ssize_t len;
  uint64_t n = 0;
  while ((len = getline(&line, &cap, in)) > 0) {
    if (line[len - 1] == '\n')
      len--;
    char *comma = static_cast<char *>(memchr(line, ',', (size_t)len));
    if (comma == nullptr) {
      fprintf(stderr, "bench_rocksdb_compact: %s: a line without a comma\n",
              csv);
      exit(1);
    }
    rocksdb::Slice key(line, (size_t)(comma - line));
    rocksdb::Slice value(comma + 1, (size_t)(line + len - comma - 1));
    die_on(writer.Put(key, value), "SstFileWriter::Put");
    n++;
  }
  free(line);
  fclose(in);
  die_on(writer.Finish(), "SstFileWriter::Finish");
  return n;
}

const char *compression_name(rocksdb::CompressionType c) {
  switch (c) {
  case rocksdb::kNoCompression:
    return "none";
  case rocksdb::kSnappyCompression:
    return "snappy";
  case rocksdb::kZSTD:
    return "zstd";
  case rocksdb::kLZ4Compression:
    return "lz4";
  default:
    return "other";
  }
}

// "L5:1 L6:1": the table files of each non-empty level.
std::string layout(rocksdb::DB *db, uint64_t *bytes) {
  rocksdb::ColumnFamilyMetaData meta;
  db->GetColumnFamilyMetaData(&meta);
  std::string s;
  *bytes = 0;
  for (const auto &level : meta.levels) {
    if (level.files.empty())
      continue;
    if (!s.empty())
      s += ",";
    s += "L" + std::to_string(level.level) + ":" +
         std::to_string(level.files.size());
    for (const auto &f : level.files)
      *bytes += f.size;
  }
  return s.empty() ? "empty" : s;
}

int prepare(const char *dir, const char *a_csv, const char *b_csv) {
  uint64_t na = write_table(a_csv, std::string(dir) + "/a.sst");
  uint64_t nb = write_table(b_csv, std::string(dir) + "/b.sst");
  printf("PREPARED a_records=%llu b_records=%llu\n", (unsigned long long)na,
         (unsigned long long)nb);
  return 0;
}

int compact(const char *dir, const char *db_path, bool no_compression) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.error_if_exists = true;
  if (no_compression)
    options.compression = rocksdb::kNoCompression;
  rocksdb::DB *db = nullptr;
  die_on(rocksdb::DB::Open(options, db_path, &db), "DB::Open");

  rocksdb::IngestExternalFileOptions ingest; // copies, leaves the inputs
  die_on(db->IngestExternalFile({std::string(dir) + "/a.sst"}, ingest),
         "IngestExternalFile a.sst");
  die_on(db->IngestExternalFile({std::string(dir) + "/b.sst"}, ingest),
         "IngestExternalFile b.sst");
  uint64_t in_bytes = 0;
  std::string before = layout(db, &in_bytes);

  rocksdb::CompactRangeOptions cro;
  double t0 = seconds_now();
  die_on(db->CompactRange(cro, nullptr, nullptr), "CompactRange");
  double t1 = seconds_now();

  uint64_t out_bytes = 0;
  std::string after = layout(db, &out_bytes);
  uint64_t keys = 0;
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    rocksdb::Iterator *it = db->NewIterator(ro);
    for (it->SeekToFirst(); it->Valid(); it->Next())
      keys++;
    die_on(it->status(), "Iterator");
    delete it;
  }
  die_on(db->Close(), "DB::Close");
  delete db;

  printf("RESULT engine=rocksdb%s compact_s=%.6f keys=%llu in_bytes=%llu "
         "out_bytes=%llu\n",
         no_compression ? "-nocomp" : "", t1 - t0, (unsigned long long)keys,
         (unsigned long long)in_bytes, (unsigned long long)out_bytes);
  printf("INFO engine=rocksdb%s version=%d.%d.%d compression=%s "
         "before=%s after=%s max_subcompactions=%u\n",
         no_compression ? "-nocomp" : "", ROCKSDB_MAJOR, ROCKSDB_MINOR,
         ROCKSDB_PATCH, compression_name(options.compression), before.c_str(),
         after.c_str(), options.max_subcompactions);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "prepare") == 0)
    return prepare(argv[2], argv[3], argv[4]);
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "compact") == 0) {
    bool no_comp = argc == 5 && strcmp(argv[4], "--no-compression") == 0;
    if (argc == 5 && !no_comp) {
      fprintf(stderr, "bench_rocksdb_compact: unknown option %s\n", argv[4]);
      return 2;
    }
    return compact(argv[2], argv[3], no_comp);
  }
  fprintf(stderr,
          "usage: bench_rocksdb_compact prepare DIR A.csv B.csv\n"
          "       bench_rocksdb_compact compact DIR DB [--no-compression]\n");
  return 2;
}
