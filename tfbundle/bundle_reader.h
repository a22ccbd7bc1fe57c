// tfbundle/ owns TensorFlow's own checkpoint formats: TensorBundle V2
// files, TensorFlow's object graph and .meta files. A leaf library: it uses
// base/ and its own protos, which stay inside it.
//
// BundleReader: reads a TensorFlow TensorBundle V2 checkpoint, `<prefix>.index`
// plus `<prefix>.data-NNNNN-of-MMMMM`, as tf.train.Checkpoint and
// tf.compat.v1.train.Saver write it.
//
//   auto reader = BundleReader::Open("/ckpt/model.ckpt-100");
//   for (const BundleEntry& e : (*reader)->entries()) { ... e.key(), e.shape() ... }
//   absl::StatusOr<TensorValue> w = (*reader)->ReadTensor("dense/kernel");
//
// Checksums: ReadTensor and VerifyEntry check the entry's CRC32C, which
// covers the whole entry. ReadBytes and ReadBox read part of an entry (what a
// rank's shards need) and cannot check that CRC without reading the rest: by
// default they check nothing; with `verify_partial_reads` they first stream
// the whole entry once through the CRC (remembered per entry, so later
// partial reads of it cost nothing more).
//
// Input is untrusted: only regular files are opened, every offset and size
// is checked against the file before it is used, and allocations are bounded
// by file sizes. Errors: NotFound (no index, no such key), InvalidArgument
// (not a V2 bundle, e.g. a V1 checkpoint; bad request), DataLoss (damage,
// checksum mismatch, missing data file), FailedPrecondition (written for
// newer readers), Unimplemented (DT_VARIANT, DT_RESOURCE, unknown dtypes;
// partial reads of partitioned tensors), each naming the key and the file.
// Thread-safe: all methods are const and may run concurrently.
#ifndef MESHCKPT_TFBUNDLE_BUNDLE_READER_H_
#define MESHCKPT_TFBUNDLE_BUNDLE_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt::tf {

class RandomAccessFile;

struct BundleReaderOptions {
  // Partial reads first verify the whole entry's CRC32C (once per entry).
  bool verify_partial_reads = false;
  // An index larger than this is refused rather than read into memory.
  int64_t max_index_bytes = int64_t{1} << 30;
};

// "<prefix>.index" and "<prefix>.data-%05d-of-%05d".
std::string IndexFilename(absl::string_view prefix);
std::string DataFilename(absl::string_view prefix, int shard, int num_shards);

class BundleReader {
 public:
  static absl::StatusOr<std::unique_ptr<BundleReader>> Open(
      std::string prefix, BundleReaderOptions options = {});
  ~BundleReader();

  const std::string& prefix() const { return prefix_; }
  const BundleHeader& header() const { return header_; }
  // Every tensor entry in key order (TF's bytewise order); no header.
  const std::vector<BundleEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const BundleEntry* Find(absl::string_view key) const;

  // The whole tensor, CRC32C verified; byte order converted to little-endian.
  // A partitioned tensor (TF1 PartitionedVariable: an entry with slices) is
  // assembled from its slice entries, which must tile it exactly.
  absl::StatusOr<TensorValue> ReadTensor(absl::string_view key) const;
  // Streams the entry through its CRC32C without keeping it.
  absl::Status VerifyEntry(absl::string_view key) const;
  // Every readable entry (skips DT_VARIANT, DT_RESOURCE and unknown dtypes,
  // which it lists in `skipped` when given). A partitioned tensor's entry
  // verifies its slice entries.
  absl::Status VerifyAll(std::vector<std::string>* skipped = nullptr) const;

  // Bytes [byte_offset, byte_offset + out.size()) of a fixed-size entry, in
  // little-endian element order; both ends must fall on element boundaries.
  absl::Status ReadBytes(absl::string_view key, int64_t byte_offset,
                         absl::Span<char> out) const;
  // The box [origin, origin + size) of a fixed-size tensor, row-major, into
  // `out` (exactly the box's bytes).
  absl::Status ReadBox(absl::string_view key, absl::Span<const int64_t> origin,
                       absl::Span<const int64_t> size, absl::Span<char> out) const;

 private:
  BundleReader(std::string prefix, BundleReaderOptions options, BundleHeader header,
               std::vector<BundleEntry> entries);
  absl::StatusOr<const BundleEntry*> FindReadable(absl::string_view key,
                                                  bool fixed_size) const;
  absl::StatusOr<const RandomAccessFile*> DataFile(const BundleEntry& e) const;
  // Reads [e.offset() + rel, + out.size()) of e's data file.
  absl::Status ReadEntryBytes(const BundleEntry& e, int64_t rel,
                              absl::Span<char> out) const;
  absl::Status VerifyOnce(const BundleEntry& e) const;
  // Assembles a partitioned tensor from its slice entries (each verified).
  absl::StatusOr<TensorValue> ReadPartitioned(const BundleEntry& full) const;

  std::string prefix_;
  BundleReaderOptions options_;
  BundleHeader header_;
  std::vector<BundleEntry> entries_;
  mutable absl::Mutex mu_;
  mutable std::map<int, std::unique_ptr<RandomAccessFile>> data_files_
      ABSL_GUARDED_BY(mu_);
  mutable std::set<std::string> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_BUNDLE_READER_H_
