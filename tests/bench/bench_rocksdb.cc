// bench_rocksdb.cc — the same work as bench_sst.c, done by RocksDB, for
// scripts/bench-core.
//
//   bench_rocksdb --dir DIR [--records N] [--gets G] [--tuned]
//
// Build: rocksdb::SstFileWriter with default Options writes the N records
// (the same bytes as bench_sst.c makes), Finish() included in the time.
// Finish() syncs the file; the time also includes an fsync of the directory,
// which sst_writer_finish() does too, so both builds end equally durable.
//
// Gets: a DB opened in DIR/db with default Options ingests the file
// (IngestExternalFile, moving it in), and G random existing keys are read
// with DB::Get into a PinnableSlice: RocksDB's own point-lookup path, with
// its default block cache. An untimed pass over every key warms it first.
//
// --tuned gives RocksDB its best case for this read pattern instead of the
// defaults: no compression, a bloom filter of 10 bits a key (as sst writes
// by default) and a 1 GiB block cache that holds the whole table.
//
// Prints one RESULT line, and INFO lines with the settings RocksDB used.

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>

#include "bench_rand.h"

namespace {

// ---- the shared record generator (same code in bench_sst.c) ----------

const uint64_t kSeed = 0x5eedf00dcafe1234ull;
const uint64_t kGetSeed = 0x0ddba11deadbeefull;
const size_t kKeyLen = 20; // "user/%010llu/item"
const size_t kGetBatches = 5;

const char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct Records {
  std::vector<uint8_t> blob; // key then value, record after record
  std::vector<uint64_t> off;
  std::vector<uint16_t> val_len;
  uint64_t input_bytes = 0;

  rocksdb::Slice key(size_t i) const {
    return rocksdb::Slice(reinterpret_cast<const char *>(&blob[off[i]]),
                          kKeyLen);
  }
  rocksdb::Slice value(size_t i) const {
    return rocksdb::Slice(
        reinterpret_cast<const char *>(&blob[off[i] + kKeyLen]), val_len[i]);
  }
};

void make_records(Records *rs, size_t n) {
  rs->blob.resize(n * (kKeyLen + 88));
  rs->off.resize(n);
  rs->val_len.resize(n);
  uint64_t s = kSeed, id = 0, pos = 0;
  for (size_t i = 0; i < n; i++) {
    id += 1 + bench_rand(&s) % 4;
    uint8_t *p = &rs->blob[pos];
    char key[32];
    snprintf(key, sizeof key, "user/%010" PRIu64 "/item", id);
    memcpy(p, key, kKeyLen);
    size_t vl = 72 + bench_rand(&s) % 17;
    for (size_t j = 0; j < vl; j += 8) {
      uint64_t r = bench_rand(&s);
      for (size_t b = j; b < j + 8 && b < vl; b++, r >>= 8)
        p[kKeyLen + b] = static_cast<uint8_t>(kAlphabet[r & 63]);
    }
    rs->off[i] = pos;
    rs->val_len[i] = static_cast<uint16_t>(vl);
    pos += kKeyLen + vl;
  }
  rs->input_bytes = pos;
}

uint64_t records_fnv(const Records &rs) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < rs.input_bytes; i++)
    h = (h ^ rs.blob[i]) * 0x100000001b3ull;
  return h;
}

// ---- helpers --------------------------------------------------------

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) +
         static_cast<double>(ts.tv_nsec) * 1e-9;
}

void check(const rocksdb::Status &s, const char *what) {
  if (!s.ok()) {
    fprintf(stderr, "bench_rocksdb: %s: %s\n", what, s.ToString().c_str());
    exit(1);
  }
}

void fsync_dir(const std::string &dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    perror("bench_rocksdb: fsync of directory");
    exit(1);
  }
  close(fd);
}

void usage() {
  fprintf(stderr, "usage: bench_rocksdb --dir DIR [--records N] [--gets G] "
                  "[--tuned]\n");
  exit(2);
}

} // namespace

int main(int argc, char **argv) {
  std::string dir;
  unsigned long long records = 1000000, gets = 1000000;
  bool tuned = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--tuned") {
      tuned = true;
      continue;
    }
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (a == "--dir")
      dir = v;
    else if (a == "--records")
      records = strtoull(v, nullptr, 10);
    else if (a == "--gets")
      gets = strtoull(v, nullptr, 10);
    else
      usage();
  }
  // Ids grow by up to 4 a record and must fit the key's 10 digits.
  if (dir.empty() || records == 0 || records > 1000000000 || gets == 0)
    usage();
  const size_t n = records;

  Records rs;
  make_records(&rs, n);
  std::vector<uint32_t> index(gets);
  std::vector<char> keys(gets * kKeyLen);
  uint64_t s = kGetSeed;
  for (size_t i = 0; i < gets; i++) {
    index[i] = static_cast<uint32_t>(bench_rand(&s) % n);
    memcpy(&keys[i * kKeyLen], rs.key(index[i]).data(), kKeyLen);
  }

  rocksdb::Options options;
  if (tuned) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(1ull << 30);
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    options.compression = rocksdb::kNoCompression;
  }
  const std::string path = dir + "/bench-rocksdb.sst";

  double t0 = now_s();
  {
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
    check(writer.Open(path), "SstFileWriter::Open");
    for (size_t i = 0; i < n; i++)
      check(writer.Put(rs.key(i), rs.value(i)), "SstFileWriter::Put");
    check(writer.Finish(), "SstFileWriter::Finish");
  }
  fsync_dir(dir);
  double build_s = now_s() - t0;

  FILE *f = fopen(path.c_str(), "rb");
  long file_bytes = -1;
  if (f && fseek(f, 0, SEEK_END) == 0)
    file_bytes = ftell(f);
  if (f)
    fclose(f);

  options.create_if_missing = true;
  rocksdb::DB *db = nullptr;
  check(rocksdb::DB::Open(options, dir + "/db", &db), "DB::Open");
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  t0 = now_s();
  check(db->IngestExternalFile({path}, ingest), "IngestExternalFile");
  double ingest_s = now_s() - t0;

  rocksdb::ReadOptions ro;
  rocksdb::PinnableSlice v;
  for (size_t i = 0; i < n; i++) {
    v.Reset();
    check(db->Get(ro, db->DefaultColumnFamily(), rs.key(i), &v), "warm-up Get");
  }

  // The gets run in kGetBatches batches; the batch median resists a
  // neighbour's burst of work on a shared machine.
  uint64_t sink = 0;
  double batch_ns[kGetBatches], total_s = 0;
  for (size_t b = 0; b < kGetBatches; b++) {
    size_t from = gets * b / kGetBatches, to = gets * (b + 1) / kGetBatches;
    t0 = now_s();
    for (size_t i = from; i < to; i++) {
      v.Reset();
      rocksdb::Status st =
          db->Get(ro, db->DefaultColumnFamily(),
                  rocksdb::Slice(&keys[i * kKeyLen], kKeyLen), &v);
      if (!st.ok())
        check(st, "Get");
      sink += v.size() + static_cast<uint8_t>(v.data()[0]);
    }
    double t = now_s() - t0;
    total_s += t;
    batch_ns[b] = to > from ? t * 1e9 / static_cast<double>(to - from) : 0;
  }
  std::sort(batch_ns, batch_ns + kGetBatches);
  double get_ns =
      kGetBatches % 2
          ? batch_ns[kGetBatches / 2]
          : (batch_ns[kGetBatches / 2 - 1] + batch_ns[kGetBatches / 2]) / 2;

  // Untimed check of whole values, and of keys that are not there.
  size_t checked = gets < 100000 ? gets : 100000;
  for (size_t i = 0; i < checked; i++) {
    v.Reset();
    check(db->Get(ro, db->DefaultColumnFamily(), rs.key(index[i]), &v),
          "check Get");
    if (v != rs.value(index[i])) {
      fprintf(stderr, "bench_rocksdb: value check failed\n");
      return 1;
    }
    std::string absent = rs.key(index[i]).ToString();
    absent[kKeyLen - 1] = 'n';
    v.Reset();
    if (!db->Get(ro, db->DefaultColumnFamily(), absent, &v).IsNotFound()) {
      fprintf(stderr, "bench_rocksdb: absent key check failed\n");
      return 1;
    }
  }

  auto *table =
      db->GetOptions()
          .table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  const char *compression =
      options.compression == rocksdb::kNoCompression       ? "none"
      : options.compression == rocksdb::kSnappyCompression ? "snappy"
                                                           : "other";
  printf("INFO engine=rocksdb%s version=%d.%d.%d compression=%s"
         " block_cache_bytes=%zu block_size=%zu filter=%s\n",
         tuned ? "-tuned" : "", ROCKSDB_MAJOR, ROCKSDB_MINOR, ROCKSDB_PATCH,
         compression,
         table && table->block_cache ? table->block_cache->GetCapacity() : 0,
         table ? table->block_size : 0,
         table && table->filter_policy ? table->filter_policy->Name() : "none");
  printf("RESULT engine=rocksdb%s records=%zu input_bytes=%" PRIu64
         " file_bytes=%ld build_s=%.6f ingest_ms=%.3f gets=%llu get_ns=%.1f"
         " get_mean_ns=%.1f checked=%zu data_fnv=%016" PRIx64 " sink=%" PRIu64
         "\n",
         tuned ? "-tuned" : "", n, rs.input_bytes, file_bytes, build_s,
         ingest_s * 1e3, gets, get_ns,
         total_s * 1e9 / static_cast<double>(gets), checked, records_fnv(rs),
         sink);
  check(db->Close(), "DB::Close");
  delete db;
  check(rocksdb::DestroyDB(dir + "/db", rocksdb::Options()), "DestroyDB");
  return 0;
}
