// BundleWriter: writes a TensorFlow TensorBundle V2 checkpoint that
// TensorFlow's own reader (tf.train.load_checkpoint, Saver, Checkpoint) opens:
// `<prefix>.data-00000-of-00001` and `<prefix>.index` (header under key "",
// num_shards 1, little-endian, version 1; entries in TF's key order, each
// with its CRC32C).
//
//   auto w = BundleWriter::Create("/out/model.ckpt");
//   (*w)->Add("dense/kernel", *TensorValue::FromBytes(TfDType::kFloat, {2, 3}, bytes));
//   absl::Status s = (*w)->Finish();
//
// A large fixed-size tensor need not be held whole: BeginEntry, then
// AppendBytes in pieces (its row-major little-endian bytes, in order), then
// EndEntry; the CRC32C is computed as the pieces go by.
//
//   (*w)->BeginEntry("emb", TfDType::kFloat, {1 << 20, 1024});
//   for (...) (*w)->AppendBytes(next_rows);
//   (*w)->EndEntry();
//
// Tensor data streams to a temporary data file as it is added; Finish()
// fsyncs and renames it into place, then writes the index atomically (temp,
// fsync, rename, directory fsync). The index is the commit record: until it
// is renamed, a reader sees no checkpoint (or the previous one at that
// prefix, whose entries will fail their CRCs against the new data file
// rather than return wrong values). Not thread-safe.
#ifndef MESHCKPT_TFBUNDLE_BUNDLE_WRITER_H_
#define MESHCKPT_TFBUNDLE_BUNDLE_WRITER_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt::tf {

struct BundleWriterOptions {
  // Snappy-compressed index blocks: TF reads them, but TF itself writes
  // uncompressed ones (for readers older than 1.1), so the default is off.
  bool compress_index = false;
  // Index block size; TF's reader takes any.
  int index_block_size = 4096;
};

class BundleWriter {
 public:
  static absl::StatusOr<std::unique_ptr<BundleWriter>> Create(
      std::string prefix, BundleWriterOptions options = {});
  // Removes the temporary data file unless Finish() succeeded.
  ~BundleWriter();

  // InvalidArgument for the empty key (the header's), a duplicate key, or a
  // dtype TF bundles cannot hold as plain data (variant, resource).
  absl::Status Add(absl::string_view key, const TensorValue& value);
  // One slice of a partitioned tensor, as TF's BundleWriter::AddSlice: the
  // data goes under EncodeTensorNameSlice(full_key, slice) and the entry of
  // `full_key` (dtype, full_shape, the list of slices) is created or
  // extended. InvalidArgument when the slice is outside full_shape, does not
  // match the value's shape, or disagrees with earlier slices' dtype/shape.
  absl::Status AddSlice(absl::string_view full_key,
                        const std::vector<int64_t>& full_shape,
                        const TensorSliceSpec& slice, const TensorValue& value);

  // A fixed-size tensor streamed in pieces. BeginEntry: InvalidArgument as
  // Add (and for DT_STRING, whose lengths come before its bytes: use Add);
  // FailedPrecondition while another entry is open. AppendBytes: any number
  // of bytes, in order; InvalidArgument past the tensor's size. EndEntry:
  // InvalidArgument unless exactly the tensor's bytes were appended. After an
  // error inside an open entry the writer is failed: every later call
  // returns that error and nothing is committed.
  absl::Status BeginEntry(absl::string_view key, TfDType dtype,
                          std::vector<int64_t> shape);
  absl::Status AppendBytes(absl::string_view bytes);
  absl::Status EndEntry();

  // FailedPrecondition while an entry is open.
  absl::Status Finish();

 private:
  BundleWriter(std::string prefix, BundleWriterOptions options, std::string temp_data,
               std::FILE* file)
      : prefix_(std::move(prefix)),
        options_(options),
        temp_data_(std::move(temp_data)),
        file_(file) {}
  absl::Status Append(absl::string_view bytes);
  // Checks of Add and BeginEntry: usable key, not added yet, storable dtype.
  absl::Status CheckNewEntry(absl::string_view key, TfDType dtype) const;

  // The entry BeginEntry opened.
  struct OpenEntry {
    BundleEntry::Fields fields;  // size is the expected byte count
    int64_t appended = 0;
    uint32_t crc = 0;  // unmasked, of the bytes appended so far
  };

  std::string prefix_;
  BundleWriterOptions options_;
  std::string temp_data_;
  std::FILE* file_;
  int64_t size_ = 0;
  bool finished_ = false;
  absl::Status status_;
  std::optional<OpenEntry> open_;
  std::map<std::string, BundleEntry> entries_;  // bytewise key order, as TF
};

// Writes `tensors` as a bundle at `prefix` in one call.
absl::Status WriteBundle(const std::string& prefix,
                         const std::vector<std::pair<std::string, TensorValue>>& tensors,
                         BundleWriterOptions options = {});

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_BUNDLE_WRITER_H_
