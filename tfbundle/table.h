// The sorted string table TensorFlow keeps a TensorBundle's index in: LevelDB's
// table format (TF's tensorflow/core/lib/io/table_format.txt), read by our own
// bounded parser and written by LevelDB's TableBuilder.
//
// Layout: data blocks, a metaindex block, an index block, then a 48-byte
// footer (two varint64 block handles, zero padding, magic 0xdb4775248b80fb57).
// Every block is followed by a type byte (0 raw, 1 Snappy) and the masked
// CRC32C of contents + type. Inside a block, keys are prefix-compressed
// against the previous key and a restart array lists the entries that store
// their key whole. docs/tensorflow_format.md says why reading is our own code
// and writing is LevelDB's. Thread-safe (pure functions).
#ifndef MESHCKPT_TFBUNDLE_TABLE_H_
#define MESHCKPT_TFBUNDLE_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt::tf {

inline constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
inline constexpr size_t kTableFooterSize = 48;

struct TableEntry {
  std::string key;
  std::string value;
  friend bool operator==(const TableEntry& a, const TableEntry& b) {
    return a.key == b.key && a.value == b.value;
  }
};

struct TableReadLimits {
  // No block may decompress to more than this (TF writes 256 KiB blocks).
  int64_t max_block_bytes = int64_t{64} << 20;
  // Off only for fuzzing (to reach the parsing behind the checksums) and
  // forensic reads of damaged files; every reader keeps it on.
  bool verify_checksums = true;
};

// Every entry of the table `file` (the whole file's bytes), in key order.
// DataLoss for damage (bad checksum, block outside the file, keys out of
// order, malformed entries, truncation), with `filename` and the block's
// offset in the message; InvalidArgument for a file that is recognisably
// something else (HDF5, text).
absl::StatusOr<std::vector<TableEntry>> ReadTable(absl::string_view file,
                                                  absl::string_view filename,
                                                  const TableReadLimits& limits = {});

struct TableWriteOptions {
  // TF writes uncompressed index tables (since 1.2, for older readers);
  // Snappy is here so that tests and fuzz seeds cover the compressed path.
  bool snappy = false;
  // Small blocks give tests several blocks from few entries.
  int block_size = 4096;
};

// A table holding `entries`, which must be sorted strictly by key (bytewise,
// as TF's comparator); InvalidArgument otherwise.
absl::StatusOr<std::string> BuildTable(const std::vector<TableEntry>& entries,
                                       const TableWriteOptions& options = {});

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_TABLE_H_
